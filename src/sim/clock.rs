//! Per-node clocks with offset and drift.
//!
//! Simulated time (madsim) is one global truth. Each node *reads* it through
//! its own clock: `epoch + elapsed + offset + drift`. Services use their
//! node's clock for TTLs and expiry (a PMS hold, a Stripe authorization, an
//! idempotency key's 24 h), the coordinator for its deadlines — so clock
//! skew changes behaviour exactly where it does in production.
//!
//! Not here: timers. Sleeping is always in true simulated time (a skewed
//! clock reads wrong; it does not tick at another speed for `sleep`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Wall-clock reading of simulated time zero: 2026-01-01T00:00:00Z, in ms.
pub const EPOCH_MS: u64 = 1_767_225_600_000;

/// One node's clock error.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClockSkew {
    /// The node whose clock is off (a name of the world's topology).
    pub node: String,
    /// Constant offset, positive = the node's clock runs ahead.
    #[serde(default)]
    pub offset_ms: i64,
    /// Rate error in parts per million (1000 ppm = 3.6 s per hour).
    #[serde(default)]
    pub drift_ppm: i64,
    /// A forward step of the clock at a simulated instant (an NTP step
    /// after a long drift, a VM resumed after a suspend): from `at_ms` on,
    /// the node reads `by_ms` later. Time it set (a hold's TTL, a deadline)
    /// runs out that much sooner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jump: Option<ClockJump>,
}

/// A forward step of one node's clock (see [`ClockSkew::jump`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClockJump {
    /// When, in simulated ms since the start of the run.
    pub at_ms: u64,
    /// How far forward, in ms (a clock that steps back is not modelled:
    /// readings would repeat).
    pub by_ms: u64,
}

/// The clocks of all nodes of one run.
#[derive(Clone, Debug, Default)]
pub struct Clocks {
    skews: BTreeMap<String, (i64, i64, Option<ClockJump>)>,
}

impl Clocks {
    /// The clocks of one run; a node without a skew reads true simulated
    /// time. A later skew for the same node replaces an earlier one.
    pub fn new(skews: &[ClockSkew]) -> Self {
        let mut map = BTreeMap::new();
        for s in skews {
            map.insert(s.node.clone(), (s.offset_ms, s.drift_ppm, s.jump));
        }
        Clocks { skews: map }
    }

    /// The node's clock reading (ms since the Unix epoch) at `elapsed_ms`
    /// of simulated time.
    pub fn read_ms(&self, node: &str, elapsed_ms: u64) -> u64 {
        let (offset, drift, jump) = self.skews.get(node).copied().unwrap_or((0, 0, None));
        let elapsed = i128::from(elapsed_ms);
        let stepped = jump
            .filter(|j| elapsed_ms >= j.at_ms)
            .map_or(0, |j| i128::from(j.by_ms));
        let t = i128::from(EPOCH_MS)
            + elapsed
            + i128::from(offset)
            + elapsed * i128::from(drift) / 1_000_000
            + stepped;
        u64::try_from(t.max(0)).unwrap_or(u64::MAX)
    }

    /// The simulated elapsed ms at which `node`'s clock read `reading_ms`
    /// (the inverse of [`Clocks::read_ms`], to the millisecond; a reading
    /// the clock skipped over in a jump maps to the jump's instant).
    pub fn elapsed_at(&self, node: &str, reading_ms: u64) -> u64 {
        let (offset, drift, jump) = self.skews.get(node).copied().unwrap_or((0, 0, None));
        let unstepped = |reading: i128| {
            let t = reading - i128::from(EPOCH_MS) - i128::from(offset);
            let elapsed = t * 1_000_000 / (1_000_000 + i128::from(drift));
            u64::try_from(elapsed.max(0)).unwrap_or(u64::MAX)
        };
        let reading = i128::from(reading_ms);
        match jump {
            Some(j) => {
                let before = unstepped(reading);
                if before < j.at_ms {
                    before
                } else {
                    unstepped(reading - i128::from(j.by_ms)).max(j.at_ms)
                }
            }
            None => unstepped(reading),
        }
    }

    /// The node's clock now (inside a runtime).
    pub fn now_ms(&self, node: &str) -> u64 {
        self.read_ms(node, elapsed_ms())
    }
}

/// Simulated milliseconds since the start of the run (0 outside a runtime).
pub fn elapsed_ms() -> u64 {
    madsim::time::TimeHandle::try_current()
        .map(|t| u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_and_drift_apply_per_node() {
        let c = Clocks::new(&[
            ClockSkew {
                jump: None,
                node: "inventory".into(),
                offset_ms: 5_000,
                drift_ppm: 0,
            },
            ClockSkew {
                jump: None,
                node: "stripe".into(),
                offset_ms: -2_000,
                drift_ppm: 1_000,
            },
        ]);
        assert_eq!(c.read_ms("coordinator", 10_000), EPOCH_MS + 10_000);
        assert_eq!(c.read_ms("inventory", 10_000), EPOCH_MS + 15_000);
        // 1000 ppm over one hour = 3.6 s fast, minus the 2 s offset.
        assert_eq!(
            c.read_ms("stripe", 3_600_000),
            EPOCH_MS + 3_600_000 - 2_000 + 3_600
        );
        for e in [0, 1, 999, 3_600_000, 86_400_000] {
            for n in ["coordinator", "inventory", "stripe"] {
                let back = c.elapsed_at(n, c.read_ms(n, e));
                assert!(back.abs_diff(e) <= 1, "{n} {e} -> {back}");
            }
        }
    }

    #[test]
    fn a_jump_steps_the_reading_forward_and_the_inverse_follows() {
        let c = Clocks::new(&[ClockSkew {
            node: "inventory".into(),
            offset_ms: 0,
            drift_ppm: 0,
            jump: Some(ClockJump {
                at_ms: 10_000,
                by_ms: 60_000,
            }),
        }]);
        assert_eq!(c.read_ms("inventory", 9_999), EPOCH_MS + 9_999);
        assert_eq!(c.read_ms("inventory", 10_000), EPOCH_MS + 70_000);
        assert_eq!(c.elapsed_at("inventory", EPOCH_MS + 9_999), 9_999);
        assert_eq!(c.elapsed_at("inventory", EPOCH_MS + 70_000), 10_000);
        assert_eq!(c.elapsed_at("inventory", EPOCH_MS + 80_000), 20_000);
        // A reading the clock skipped maps to the jump.
        assert_eq!(c.elapsed_at("inventory", EPOCH_MS + 30_000), 10_000);
    }
}
