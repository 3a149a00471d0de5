//! Coordinator tuning: retry limits, backoff, deadline, late window — and the
//! backoff function itself (capped exponential with deterministic jitter).
//!
//! Not here: timeouts of individual calls (the driver's business: a call
//! that outlives its timeout is reported `Unknown`).

use serde::{Deserialize, Serialize};

use super::definition::SagaId;

/// Upper bounds on the configuration (a limit on everything, also on the
/// limits).
pub const ATTEMPTS_LIMIT: u32 = 100;
pub const BACKOFF_CAP_LIMIT_MS: u64 = 3_600_000;
pub const WINDOW_LIMIT_MS: u64 = 86_400_000;
pub const SWEEP_ROUNDS_LIMIT: u32 = 10;
pub const SAGAS_LIMIT: usize = 1_000_000;

/// Coordinator configuration. All durations are on the coordinator node's
/// clock (the `now_ms` the driver passes in).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Seed of the backoff jitter (the scenario seed). Jitter is a hash of
    /// (seed, saga, step, attempt): no RNG state, same delays on replay.
    pub jitter_seed: u64,
    /// First retry delay before jitter.
    pub backoff_base_ms: u64,
    /// Largest delay between forward attempts / reconciles.
    pub backoff_cap_ms: u64,
    /// Largest delay between compensation attempts (compensations are
    /// retried longer and more patiently).
    pub compensation_backoff_cap_ms: u64,
    /// Action sends per step (each `Transient` retry and each retry after a
    /// reconcile said `NotFound` counts).
    pub action_attempts_max: u32,
    /// Action sends per retriable step after the pivot, where giving up
    /// means `NeedsOperator` rather than a clean compensation.
    pub forward_attempts_after_pivot_max: u32,
    /// Reconcile calls per step in the forward direction, and per step per
    /// sweep round.
    pub reconcile_attempts_max: u32,
    /// Sends per compensation target.
    pub compensation_attempts_max: u32,
    /// Time from the start after which a saga that has not passed its pivot
    /// compensates instead of trying further. After the pivot it does not
    /// apply: the saga keeps going forward until the attempt limits.
    pub saga_deadline_ms: u64,
    /// How long a request may stay in flight, from the moment the driver
    /// sends it until the service applies it. **Must exceed the longest
    /// delivery delay the transport can produce**: the sweep checks for late
    /// effects only once this window has passed since the step's last action
    /// call returned (its client sends nothing after that).
    pub late_window_ms: u64,
    /// Sweep rounds before finalizing: a round that finds and undoes a late
    /// effect is followed by another round to verify; effects still appearing
    /// in the last round end the saga in `NeedsOperator`. The default, 3,
    /// lets a step that writes two records (a Salesforce booking and its
    /// opportunity) have late copies of both undone, one per round, and
    /// still verify (regression `stripe-async-payments-8098`).
    pub sweep_rounds_max: u32,
    /// Sagas one coordinator holds (finalized ones included, for idempotent
    /// start); a start beyond it is rejected.
    pub sagas_max: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            jitter_seed: 0,
            backoff_base_ms: 200,
            backoff_cap_ms: 5_000,
            compensation_backoff_cap_ms: 30_000,
            // Before the pivot giving up is a clean compensation, so a short
            // budget is right: 5 sends ride out a lost request or two and a
            // short brown-out (~6 s of backoff) before the saga rolls back.
            action_attempts_max: 5,
            // The budgets below end in NeedsOperator when they run out, so
            // each outlasts every outage the default swarm profile can cause:
            // faults stop with the default 60 s safety phase, and 30 tries
            // with the 5 s forward backoff cap (jittered to at least 2.5 s)
            // wait at least 63 s of backoff alone, on top of each call's
            // timeout. That covers a 20 s partition or brown-out window, a
            // 10 s crash, a 15 s delayed request, or all of them back to back
            // within the safety phase (issue 14: at 6 reconciles, 3 % of the
            // README's example scenario ended NeedsOperator during a Stripe
            // 429 brown-out).
            forward_attempts_after_pivot_max: 30,
            reconcile_attempts_max: 30,
            // Compensations back off to 30 s: 30 tries span over 7 minutes.
            compensation_attempts_max: 30,
            saga_deadline_ms: 60_000,
            late_window_ms: 30_000,
            sweep_rounds_max: 3,
            sagas_max: 10_000,
        }
    }
}

/// Why a configuration is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("coordinator config: `{field}` {problem}")]
pub struct ConfigError {
    /// The `Config` field at fault (the first one found).
    pub field: &'static str,
    /// What is wrong with it, with the allowed range and the value.
    pub problem: String,
}

/// Which backoff curve a delay is drawn from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackoffKind {
    /// Forward retries and reconciles (`backoff_cap_ms`).
    Forward,
    /// Compensations (`compensation_backoff_cap_ms`).
    Compensation,
}

impl Config {
    /// Checks every field against its limit (backoff caps between
    /// `backoff_base_ms` and the cap limit; attempts, windows, sweep rounds
    /// and `sagas_max` at least 1 and bounded). [`Coordinator::new`] calls it.
    ///
    /// [`Coordinator::new`]: super::Coordinator::new
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |field, problem: String| Err(ConfigError { field, problem });
        if self.backoff_base_ms == 0 {
            return err("backoff_base_ms", "must be at least 1".into());
        }
        for (field, cap) in [
            ("backoff_cap_ms", self.backoff_cap_ms),
            (
                "compensation_backoff_cap_ms",
                self.compensation_backoff_cap_ms,
            ),
        ] {
            if cap < self.backoff_base_ms || cap > BACKOFF_CAP_LIMIT_MS {
                return err(
                    field,
                    format!(
                        "must be between backoff_base_ms ({}) and {BACKOFF_CAP_LIMIT_MS}, got {cap}",
                        self.backoff_base_ms
                    ),
                );
            }
        }
        for (field, n) in [
            ("action_attempts_max", self.action_attempts_max),
            (
                "forward_attempts_after_pivot_max",
                self.forward_attempts_after_pivot_max,
            ),
            ("reconcile_attempts_max", self.reconcile_attempts_max),
            ("compensation_attempts_max", self.compensation_attempts_max),
        ] {
            if n == 0 || n > ATTEMPTS_LIMIT {
                return err(field, format!("must be 1 to {ATTEMPTS_LIMIT}, got {n}"));
            }
        }
        for (field, ms) in [
            ("saga_deadline_ms", self.saga_deadline_ms),
            ("late_window_ms", self.late_window_ms),
        ] {
            if ms == 0 || ms > WINDOW_LIMIT_MS {
                return err(field, format!("must be 1 to {WINDOW_LIMIT_MS}, got {ms}"));
            }
        }
        if self.sweep_rounds_max == 0 || self.sweep_rounds_max > SWEEP_ROUNDS_LIMIT {
            return err(
                "sweep_rounds_max",
                format!(
                    "must be 1 to {SWEEP_ROUNDS_LIMIT}, got {}",
                    self.sweep_rounds_max
                ),
            );
        }
        if self.sagas_max == 0 || self.sagas_max > SAGAS_LIMIT {
            return err(
                "sagas_max",
                format!("must be 1 to {SAGAS_LIMIT}, got {}", self.sagas_max),
            );
        }
        Ok(())
    }

    /// Delay before the `failures`-th retry (1-based) of `step` of `saga`:
    /// the ceiling `min(cap, base * 2^(failures-1))`, jittered into
    /// `[ceiling/2, ceiling]` ("equal jitter") by a hash of
    /// (jitter_seed, saga, step, kind, failures). Pure: same inputs, same
    /// delay, on every replay and after recovery.
    pub fn backoff_ms(&self, saga: &SagaId, step: usize, kind: BackoffKind, failures: u32) -> u64 {
        let cap_ms = match kind {
            BackoffKind::Forward => self.backoff_cap_ms,
            BackoffKind::Compensation => self.compensation_backoff_cap_ms,
        };
        let exponent = failures.saturating_sub(1).min(40);
        let ceiling_ms = self
            .backoff_base_ms
            .saturating_mul(1u64 << exponent)
            .min(cap_ms);
        let floor_ms = ceiling_ms / 2;
        let spread = ceiling_ms - floor_ms + 1;
        let delay_ms =
            floor_ms + jitter_hash(self.jitter_seed, saga, step, kind, failures) % spread;
        debug_assert!(delay_ms <= cap_ms && delay_ms >= floor_ms);
        delay_ms
    }
}

/// splitmix64's finalizer: a good, cheap 64-bit mix.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn jitter_hash(seed: u64, saga: &SagaId, step: usize, kind: BackoffKind, failures: u32) -> u64 {
    // FNV-1a over the saga id: stable across platforms and Rust versions
    // (std's hashers promise neither).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ mix64(seed);
    for b in saga.as_str().bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let kind_tag = match kind {
        BackoffKind::Forward => 1,
        BackoffKind::Compensation => 2,
    };
    h = mix64(h ^ step as u64);
    h = mix64(h ^ kind_tag);
    mix64(h ^ u64::from(failures))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let cases: Vec<(Config, &str)> = vec![
            (
                Config {
                    backoff_base_ms: 0,
                    ..Config::default()
                },
                "backoff_base_ms",
            ),
            (
                Config {
                    backoff_cap_ms: 10,
                    ..Config::default()
                },
                "backoff_cap_ms",
            ),
            (
                Config {
                    action_attempts_max: 0,
                    ..Config::default()
                },
                "action_attempts_max",
            ),
            (
                Config {
                    compensation_attempts_max: ATTEMPTS_LIMIT + 1,
                    ..Config::default()
                },
                "compensation_attempts_max",
            ),
            (
                Config {
                    late_window_ms: 0,
                    ..Config::default()
                },
                "late_window_ms",
            ),
            (
                Config {
                    sweep_rounds_max: 0,
                    ..Config::default()
                },
                "sweep_rounds_max",
            ),
            (
                Config {
                    sagas_max: 0,
                    ..Config::default()
                },
                "sagas_max",
            ),
        ];
        for (config, field) in cases {
            let e = config.validate().unwrap_err();
            assert_eq!(e.field, field);
            assert!(e.to_string().contains(field));
        }
    }

    #[test]
    fn backoff_grows_and_stays_under_the_cap() {
        let config = Config::default();
        let saga = SagaId::for_business_key("r1");
        let mut previous_ceiling = 0;
        for failures in 1..=30 {
            let d = config.backoff_ms(&saga, 1, BackoffKind::Forward, failures);
            let ceiling =
                (config.backoff_base_ms << (failures - 1).min(40)).min(config.backoff_cap_ms);
            assert!(
                d <= ceiling && d >= ceiling / 2,
                "{failures}: {d} vs {ceiling}"
            );
            assert!(ceiling >= previous_ceiling);
            previous_ceiling = ceiling;
            let c = config.backoff_ms(&saga, 1, BackoffKind::Compensation, failures);
            assert!(c <= config.compensation_backoff_cap_ms);
        }
        // The cap is reached, and compensation's larger cap is used.
        assert!(config.backoff_ms(&saga, 1, BackoffKind::Forward, 30) >= config.backoff_cap_ms / 2);
        assert!(
            config.backoff_ms(&saga, 1, BackoffKind::Compensation, 30)
                >= config.compensation_backoff_cap_ms / 2
        );
        assert_eq!(
            config.backoff_ms(&saga, 1, BackoffKind::Forward, u32::MAX),
            config.backoff_ms(&saga, 1, BackoffKind::Forward, u32::MAX)
        );
    }

    #[test]
    fn jitter_is_deterministic_and_depends_on_seed_saga_and_step() {
        let a = Config::default();
        let b = Config {
            jitter_seed: 99,
            ..Config::default()
        };
        let s1 = SagaId::for_business_key("r1");
        let s2 = SagaId::for_business_key("r2");
        let delays = |c: &Config, s: &SagaId, step| -> Vec<u64> {
            (1..=8)
                .map(|n| c.backoff_ms(s, step, BackoffKind::Forward, n))
                .collect()
        };
        assert_eq!(delays(&a, &s1, 0), delays(&a, &s1, 0));
        assert_ne!(delays(&a, &s1, 0), delays(&b, &s1, 0));
        assert_ne!(delays(&a, &s1, 0), delays(&a, &s2, 0));
        assert_ne!(delays(&a, &s1, 0), delays(&a, &s1, 1));
    }
}
