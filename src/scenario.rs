//! Scenario files (`scenarios/*.toml`) -> the configuration of a run.
//!
//! A scenario is data, not code: which saga variant, how many agents and
//! rooms, prices, declining cards, each service's configuration and
//! latency, the swarm profile, the phase lengths, and whether
//! `NeedsOperator` is an acceptable ending. Adding a scenario is adding a
//! file. Every field has a default, so a scenario says only what differs.
//!
//! Errors name the file and, for TOML errors, the line and column; limits
//! (agents, nights, plan size, simulated time) are part of the contract.
//!
//! Not here: running it (`world::run`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::services::inventory::InventoryConfig;
use crate::services::salesforce::SalesforceConfig;
use crate::services::stripe::StripeConfig;
use crate::sim::faults::{in_range, FaultPlan, SwarmProfile, Topology, MAX_TIME_MS};
use crate::sim::serve::ServiceLatency;
use crate::sim::NetConfig;

/// The scenario used when none is named.
pub const DEFAULT_SCENARIO: &str = "hotel-checkout";
/// Most agents (concurrent checkouts) in one run.
pub const MAX_AGENTS: u32 = 256;
/// Longest simulated run (safety + liveness), one simulated day; also the
/// limit of every other duration of a scenario except the TTLs.
pub const MAX_SIM_MS: u64 = MAX_TIME_MS;
/// Longest TTL (Stripe idempotency keys and authorizations, PMS holds): a
/// year, so `now + ttl` never overflows.
pub const MAX_TTL_MS: u64 = 366 * 86_400_000;
/// Most rooms of one type.
pub const MAX_ROOMS: u32 = 100_000;
/// Longest stay the PMS may allow.
pub const MAX_NIGHTS: u32 = 366;
/// Latest first night (a night number on the PMS's calendar).
pub const MAX_FIRST_NIGHT: u32 = 1_000_000;
/// Highest price of one checkout: $100,000,000 (sums over every agent and
/// retry stay far inside an `i64`).
pub const MAX_PRICE_CENTS: i64 = 10_000_000_000;
/// Most tool calls one agent may make.
pub const MAX_AGENT_ATTEMPTS: u32 = 10_000;
/// Largest scenario or plan file accepted.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// One scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Not empty; a loaded file's name must equal its file stem.
    pub name: String,
    /// One paragraph for reports (may be empty).
    #[serde(default)]
    pub description: String,
    /// Which saga variant the hotel workload runs.
    #[serde(default)]
    pub saga: SagaSection,
    /// Who checks out what.
    #[serde(default)]
    pub workload: Workload,
    /// The reference coordinator's configuration (retries, windows, limits).
    #[serde(default)]
    pub coordinator: crate::saga::Config,
    /// The simulated Stripe; declining cards come from
    /// `workload.declining_agents` (see [`Scenario::stripe_config`]).
    #[serde(default)]
    pub stripe: StripeConfig,
    /// The simulated Salesforce.
    #[serde(default)]
    pub salesforce: SalesforceConfig,
    /// The simulated PMS (rooms, holds).
    #[serde(default)]
    pub inventory: InventoryConfig,
    /// Processing time per service, network latency, fsync time.
    #[serde(default)]
    pub latency: Latencies,
    /// The coordinator's timeout per service call.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// The swarm profile: which faults each seed may turn on.
    #[serde(default)]
    pub faults: SwarmProfile,
    /// The workload swarm: what each seed may draw of its workload (agents,
    /// rooms, declines, capture, price, hold TTL, attempts); absent: every
    /// seed runs `[workload]` as written.
    #[serde(default)]
    pub swarm: Option<WorkloadSwarm>,
    /// A fixed fault plan: when present, every seed runs this plan instead
    /// of a swarm plan (named cases such as the article's).
    #[serde(default)]
    pub plan: Option<FaultPlan>,
    /// Lengths of the safety and liveness phases.
    #[serde(default)]
    pub phases: Phases,
    /// Which endings the checks accept.
    #[serde(default)]
    pub checks: Checks,
}

/// `[saga]`: which variant of the hotel checkout runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SagaSection {
    /// `automatic` (charge at once) or `manual` (authorize, capture after
    /// the room is confirmed).
    pub capture: CaptureModeName,
}

impl Default for SagaSection {
    fn default() -> Self {
        SagaSection {
            capture: CaptureModeName::Automatic,
        }
    }
}

/// How the hotel checkout takes the money (`[saga] capture`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureModeName {
    #[default]
    /// Charge at once.
    Automatic,
    /// Authorize, capture after the room is confirmed.
    Manual,
}

/// Who checks out what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Workload {
    /// Agents, each checking out one reservation (`res-N` for `cust-N`).
    pub agents: u32,
    /// The room type every agent books (must exist in `[inventory]`).
    pub room_type: String,
    /// The first night of every stay (a night number on the PMS's
    /// calendar), at most [`MAX_FIRST_NIGHT`].
    pub first_night: u32,
    /// Nights per stay: 1 to `inventory.max_nights`.
    pub nights: u32,
    /// What each checkout charges, in cents (the whole stay): 1 to
    /// [`MAX_PRICE_CENTS`].
    pub price_cents: i64,
    /// Agent numbers (1-based) whose card declines.
    pub declining_agents: BTreeSet<u32>,
    /// Agents start spread over this window.
    pub start_spread_ms: u64,
    /// The agent's timeout for one tool call.
    pub tool_timeout_ms: u64,
    /// How long the tool waits for a decision before answering "still
    /// running" (ms).
    pub tool_wait_ms: u64,
    /// Tool calls an agent makes before giving up.
    pub agent_attempts_max: u32,
    /// Pause between an agent's calls (after a timeout or "still running").
    pub agent_retry_ms: u64,
    /// Hold TTL the coordinator asks the PMS for.
    pub hold_ttl_ms: u64,
    /// Agents (1-based) whose final bill is lower than what they authorized
    /// (`capture_cents`): with manual capture, the capture is partial.
    pub partial_capture_agents: BTreeSet<u32>,
    /// What a partial capture takes, in cents: 1 to `price_cents`.
    pub capture_cents: i64,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            agents: 4,
            room_type: "standard".into(),
            first_night: 100,
            nights: 2,
            price_cents: 25_000,
            declining_agents: BTreeSet::new(),
            start_spread_ms: 2_000,
            tool_timeout_ms: 10_000,
            tool_wait_ms: 8_000,
            agent_attempts_max: 200,
            agent_retry_ms: 1_000,
            hold_ttl_ms: 900_000,
            partial_capture_agents: BTreeSet::new(),
            capture_cents: 20_000,
        }
    }
}

/// `[swarm]`: the bounds of each seed's workload draw. Each field left out
/// keeps `[workload]`'s value; `[lo, hi]` ranges are inclusive.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkloadSwarm {
    /// Agents per run.
    pub agents: Option<[u32; 2]>,
    /// Rooms of the booked room type (contention for the last room).
    pub rooms: Option<[u32; 2]>,
    /// Highest share of agents whose card declines: each seed draws a share
    /// up to it, then each agent declines with that probability.
    pub decline_share: f64,
    /// Capture modes to draw from (empty: `[saga] capture`).
    pub capture: Vec<CaptureModeName>,
    /// Highest share of agents whose capture is partial (manual capture
    /// only), drawn like `decline_share`; the amount is drawn between half
    /// the price and the price less a cent.
    pub partial_capture_share: f64,
    /// Price of a checkout, in cents.
    pub price_cents: Option<[i64; 2]>,
    /// Hold TTL the coordinator asks for, in ms: half the seeds keep
    /// `[workload]`'s, half draw one log-uniformly in this range (a short
    /// TTL stands for any stall that outlives a hold: a pause, a clock step,
    /// a slow service).
    pub hold_ttl_ms: Option<[u64; 2]>,
    /// Tool calls an agent makes before giving up.
    pub agent_attempts: Option<[u32; 2]>,
    /// Highest share of agents whose card asks for 3-D Secure
    /// (`stripe.requires_action_customers`), drawn like `decline_share`.
    pub requires_action_share: f64,
    /// Highest share of agents who pay by a method that settles later
    /// (`stripe.processing_customers`), drawn like `decline_share`.
    pub processing_share: f64,
    /// Highest share of agents whose card was closed since: a refund to it
    /// fails (`stripe.refund_failing_customers`), drawn like
    /// `decline_share`.
    pub closed_card_share: f64,
    /// How long refunds stay `pending`, in ms: half the seeds keep
    /// `stripe.refund_settle_ms`, half draw one uniformly in this range.
    pub refund_settle_ms: Option<[u64; 2]>,
}

impl WorkloadSwarm {
    /// Every range ordered and within the limits of the `[workload]` field
    /// it draws, every share a probability.
    pub fn validate(&self) -> Result<(), String> {
        fn range<T: PartialOrd + std::fmt::Display + Copy>(
            field: &str,
            r: Option<[T; 2]>,
            lo: T,
            hi: T,
        ) -> Result<(), String> {
            let Some([a, b]) = r else { return Ok(()) };
            in_range(&format!("swarm.{field}[0]"), a, lo, hi)?;
            in_range(&format!("swarm.{field}[1]"), b, a, hi)
        }
        range("agents", self.agents, 1, MAX_AGENTS)?;
        range("rooms", self.rooms, 1, MAX_ROOMS)?;
        range("price_cents", self.price_cents, 1, MAX_PRICE_CENTS)?;
        range("hold_ttl_ms", self.hold_ttl_ms, 1, MAX_TIME_MS)?;
        range("agent_attempts", self.agent_attempts, 1, MAX_AGENT_ATTEMPTS)?;
        range("refund_settle_ms", self.refund_settle_ms, 0, MAX_TIME_MS)?;
        for (field, p) in [
            ("swarm.decline_share", self.decline_share),
            ("swarm.partial_capture_share", self.partial_capture_share),
            ("swarm.requires_action_share", self.requires_action_share),
            ("swarm.processing_share", self.processing_share),
            ("swarm.closed_card_share", self.closed_card_share),
        ] {
            if !(p.is_finite() && (0.0..=1.0).contains(&p)) {
                return Err(format!(
                    "{field} = {p} is not a probability (a finite number in 0..=1)"
                ));
            }
        }
        Ok(())
    }
}

/// One seed's workload, drawn within `[swarm]` (recorded in its plan, so a
/// replay of the plan runs the same workload whatever the seed).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadDraw {
    /// Agents.
    pub agents: u32,
    /// Rooms of the booked room type.
    pub rooms: u32,
    /// Agents whose card declines.
    pub declining_agents: BTreeSet<u32>,
    /// Capture mode.
    pub capture: CaptureModeName,
    /// Agents whose capture is partial.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub partial_capture_agents: BTreeSet<u32>,
    /// What a partial capture takes.
    pub capture_cents: i64,
    /// Price of a checkout.
    pub price_cents: i64,
    /// Hold TTL the coordinator asks for.
    pub hold_ttl_ms: u64,
    /// Tool calls per agent.
    pub agent_attempts_max: u32,
    /// Agents whose card asks for 3-D Secure.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub requires_action_agents: BTreeSet<u32>,
    /// Agents whose payment settles later (`processing`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub processing_agents: BTreeSet<u32>,
    /// Agents whose card was closed (refunds to it fail).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub closed_card_agents: BTreeSet<u32>,
    /// How long refunds stay `pending`, in ms (`None`: the scenario's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_settle_ms: Option<u64>,
}

/// Processing time per service, and the network between nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Latencies {
    /// One-way latency of each leg between nodes.
    pub net: NetConfig,
    /// The coordinator's disk: how long an fsync takes.
    pub fsync_ms: u64,
    /// Stripe's processing time per request.
    pub stripe: ServiceLatency,
    /// Salesforce's processing time per request.
    pub salesforce: ServiceLatency,
    /// The PMS's processing time per request.
    pub inventory: ServiceLatency,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            net: NetConfig::default(),
            fsync_ms: 15,
            stripe: ServiceLatency {
                min_ms: 80,
                p50_ms: 300,
                max_ms: 4_000,
            },
            salesforce: ServiceLatency {
                min_ms: 150,
                p50_ms: 800,
                max_ms: 8_000,
            },
            inventory: ServiceLatency {
                min_ms: 10,
                p50_ms: 50,
                max_ms: 1_000,
            },
        }
    }
}

/// The coordinator's timeout per service call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    /// Per Stripe call; 1 to [`MAX_SIM_MS`].
    pub stripe_ms: u64,
    /// Per Salesforce call; 1 to [`MAX_SIM_MS`].
    pub salesforce_ms: u64,
    /// Per PMS call; 1 to [`MAX_SIM_MS`].
    pub inventory_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            stripe_ms: 5_000,
            salesforce_ms: 10_000,
            inventory_ms: 2_000,
        }
    }
}

/// Simulated time of each phase of a run; together at most [`MAX_SIM_MS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Phases {
    /// Faults are injected until then.
    pub safety_ms: u64,
    /// Then, faults off: the system must converge within this much more.
    pub liveness_ms: u64,
}

impl Default for Phases {
    fn default() -> Self {
        Phases {
            safety_ms: 60_000,
            liveness_ms: 600_000,
        }
    }
}

/// `[checks]`: what the invariants accept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Checks {
    /// Whether a saga may end `NeedsOperator` without failing the run.
    pub needs_operator_allowed: bool,
}

/// Why a scenario cannot be used. Each is one line for the user.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// No `<name>.toml` in the scenarios directory.
    #[error("unknown scenario `{name}` (known: {known})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The scenarios that exist, comma-separated.
        known: String,
    },
    /// The file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The error from the file system.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("{path}: file is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: String,
    },
    /// Not valid TOML, or not a scenario (unknown or mistyped field).
    #[error("{path}: {message}")]
    Toml {
        /// The file.
        path: String,
        /// The parser's message, with line and column when known.
        message: String,
    },
    /// Parsed, but a value is out of range or the rules between fields
    /// fail ([`Scenario::validate`]), or the name does not match the file.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// One line naming the field and the allowed range.
        message: String,
    },
}

/// Whether a scenario named on a command line is a path to a file (it
/// ends in `.toml` or has a `/`) rather than a name in the scenarios
/// directory.
pub fn is_path(name_or_path: &str) -> bool {
    name_or_path.ends_with(".toml") || name_or_path.contains('/')
}

impl Scenario {
    /// Parse a scenario from TOML text; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Toml {
            path: path.to_string(),
            message: toml_message(text, &e),
        })?;
        s.validate().map_err(|message| ScenarioError::Invalid {
            path: path.to_string(),
            message,
        })?;
        Ok(s)
    }

    /// The file a scenario name or path stands for: a path if it ends in
    /// `.toml` or holds a `/`, else `dir/<name>.toml`, which must exist.
    pub fn resolve(name_or_path: &str, dir: &Path) -> Result<PathBuf, ScenarioError> {
        let path = if is_path(name_or_path) {
            PathBuf::from(name_or_path)
        } else {
            if !dir.is_dir() {
                return Err(ScenarioError::Io {
                    path: dir.display().to_string(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no such scenarios directory",
                    ),
                });
            }
            let p = dir.join(format!("{name_or_path}.toml"));
            if !p.is_file() {
                return Err(ScenarioError::Unknown {
                    name: name_or_path.to_string(),
                    known: list(dir).join(", "),
                });
            }
            p
        };
        Ok(path)
    }

    /// Load a scenario by name (from `dir`) or by path (anything ending in
    /// `.toml` or containing a path separator).
    pub fn load(name_or_path: &str, dir: &Path) -> Result<Scenario, ScenarioError> {
        let path = Scenario::resolve(name_or_path, dir)?;
        let shown = path.display().to_string();
        let meta = std::fs::metadata(&path).map_err(|source| ScenarioError::Io {
            path: shown.clone(),
            source,
        })?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(ScenarioError::TooLarge { path: shown });
        }
        let text = std::fs::read_to_string(&path).map_err(|source| ScenarioError::Io {
            path: shown.clone(),
            source,
        })?;
        let s = Scenario::parse(&text, &shown)?;
        let stem = path.file_stem().and_then(|x| x.to_str()).unwrap_or("");
        if s.name != stem {
            return Err(ScenarioError::Invalid {
                path: shown,
                message: format!(
                    "name = \"{}\" must match the file name (\"{stem}\")",
                    s.name
                ),
            });
        }
        Ok(s)
    }

    /// Check every field against its documented limit and the cross-field
    /// rules; a fixed `[plan]` is checked like a plan file (known nodes,
    /// times within limits). Returns one line naming the field and the
    /// allowed range. The one place a scenario is validated, whether it
    /// came from a file or was built in code.
    pub fn validate(&self) -> Result<(), String> {
        let w = &self.workload;
        if self.name.trim().is_empty() {
            return Err("`name` must not be empty".into());
        }
        in_range("workload.agents", w.agents, 1, MAX_AGENTS)?;
        if !self.inventory.room_types.contains_key(&w.room_type) {
            return Err(format!(
                "workload.room_type `{}` is not in inventory.room_types",
                w.room_type
            ));
        }
        for (room, n) in &self.inventory.room_types {
            in_range(&format!("inventory.room_types.{room}"), *n, 1, MAX_ROOMS)?;
        }
        in_range(
            "inventory.overbooking_limit",
            self.inventory.overbooking_limit,
            0,
            MAX_ROOMS,
        )?;
        for (room, n) in &self.inventory.overbooking {
            if !self.inventory.room_types.contains_key(room) {
                return Err(format!(
                    "inventory.overbooking names room type `{room}`, not in inventory.room_types"
                ));
            }
            in_range(&format!("inventory.overbooking.{room}"), *n, 0, MAX_ROOMS)?;
        }
        in_range(
            "inventory.max_nights",
            self.inventory.max_nights,
            1,
            MAX_NIGHTS,
        )?;
        in_range("workload.nights", w.nights, 1, self.inventory.max_nights)?;
        in_range("workload.first_night", w.first_night, 0, MAX_FIRST_NIGHT)?;
        in_range("workload.price_cents", w.price_cents, 1, MAX_PRICE_CENTS)?;
        for (field, agents) in [
            ("declining_agents", &w.declining_agents),
            ("partial_capture_agents", &w.partial_capture_agents),
        ] {
            if let Some(a) = agents.iter().find(|a| **a == 0 || **a > w.agents) {
                return Err(format!(
                    "workload.{field} names agent {a}, not in 1..={}",
                    w.agents
                ));
            }
        }
        if !w.partial_capture_agents.is_empty() {
            in_range("workload.capture_cents", w.capture_cents, 1, w.price_cents)?;
        }
        if let Some(swarm) = &self.swarm {
            swarm.validate()?;
        }
        in_range(
            "workload.agent_attempts_max",
            w.agent_attempts_max,
            1,
            MAX_AGENT_ATTEMPTS,
        )?;
        in_range(
            "workload.tool_timeout_ms",
            w.tool_timeout_ms,
            1,
            MAX_TIME_MS,
        )?;
        for (field, ms) in [
            ("workload.start_spread_ms", w.start_spread_ms),
            ("workload.tool_wait_ms", w.tool_wait_ms),
            ("workload.agent_retry_ms", w.agent_retry_ms),
            ("workload.hold_ttl_ms", w.hold_ttl_ms),
            ("latency.fsync_ms", self.latency.fsync_ms),
            (
                "stripe.search_index_delay_ms",
                self.stripe.search_index_delay_ms,
            ),
        ] {
            in_range(field, ms, 0, MAX_TIME_MS)?;
        }
        for (field, ms) in [
            (
                "stripe.idempotency_key_ttl_ms",
                self.stripe.idempotency_key_ttl_ms,
            ),
            (
                "stripe.authorization_ttl_ms",
                self.stripe.authorization_ttl_ms,
            ),
            ("stripe.refund_settle_ms", self.stripe.refund_settle_ms),
            ("stripe.processing_ms", self.stripe.processing_ms),
            (
                "inventory.default_hold_ttl_ms",
                self.inventory.default_hold_ttl_ms,
            ),
            ("inventory.max_hold_ttl_ms", self.inventory.max_hold_ttl_ms),
        ] {
            in_range(field, ms, 0, MAX_TTL_MS)?;
        }
        for (field, ms) in [
            ("timeouts.stripe_ms", self.timeouts.stripe_ms),
            ("timeouts.salesforce_ms", self.timeouts.salesforce_ms),
            ("timeouts.inventory_ms", self.timeouts.inventory_ms),
        ] {
            in_range(field, ms, 1, MAX_TIME_MS)?;
        }
        let net = self.latency.net;
        in_range("latency.net.max_ms", net.max_ms, 0, MAX_TIME_MS)?;
        in_range("latency.net.min_ms", net.min_ms, 0, net.max_ms)?;
        for (name, l) in [
            ("stripe", self.latency.stripe),
            ("salesforce", self.latency.salesforce),
            ("inventory", self.latency.inventory),
        ] {
            in_range(&format!("latency.{name}.max_ms"), l.max_ms, 0, MAX_TIME_MS)?;
            in_range(&format!("latency.{name}.p50_ms"), l.p50_ms, 0, l.max_ms)?;
            in_range(&format!("latency.{name}.min_ms"), l.min_ms, 0, l.p50_ms)?;
        }
        self.faults.validate()?;
        self.salesforce.validate()?;
        let total = self
            .phases
            .safety_ms
            .saturating_add(self.phases.liveness_ms);
        if total > MAX_SIM_MS {
            return Err(format!(
                "phases: safety_ms + liveness_ms = {total} exceeds the limit of {MAX_SIM_MS} ms"
            ));
        }
        self.coordinator.validate().map_err(|e| e.to_string())?;
        // Every time above is at most MAX_TIME_MS: this sum cannot overflow.
        let longest_delay = self.faults.max_delay_ms.saturating_add(
            self.timeouts
                .stripe_ms
                .max(self.timeouts.salesforce_ms)
                .max(self.timeouts.inventory_ms),
        );
        if self.coordinator.late_window_ms <= longest_delay {
            return Err(format!(
                "coordinator.late_window_ms = {} must exceed the longest in-flight time \
                 (faults.max_delay_ms + the longest timeout = {longest_delay} ms)",
                self.coordinator.late_window_ms
            ));
        }
        // The sweep looks for late effects only once the late window has
        // passed: a shorter liveness phase cannot reach quiescence.
        if self.phases.liveness_ms <= self.coordinator.late_window_ms {
            return Err(format!(
                "phases.liveness_ms = {} must exceed coordinator.late_window_ms = {} \
                 (sagas finish only after the late window)",
                self.phases.liveness_ms, self.coordinator.late_window_ms
            ));
        }
        // Deletions by others are a property of the org the coordinator
        // reads (it sweeps its CRM writes there); the swarm draws them only
        // where they are declared.
        for (field, n) in [
            ("faults.crm_deletions", self.faults.crm_deletions),
            ("faults.crm_restorations", self.faults.crm_restorations),
        ] {
            if n > 0 && !self.salesforce.others_delete_records {
                return Err(format!(
                    "{field} = {n} needs salesforce.others_delete_records = true \
                     (an org whose records others delete; the coordinator reads it)"
                ));
            }
        }
        // A long pause may begin as the safety phase ends: the coordinator
        // resumes in the liveness phase and still has a late window to wait.
        let after_pause = self
            .faults
            .max_long_pause_ms
            .saturating_add(self.coordinator.late_window_ms);
        if self.faults.long_pauses > 0 && self.phases.liveness_ms <= after_pause {
            return Err(format!(
                "phases.liveness_ms = {} must exceed faults.max_long_pause_ms + \
                 coordinator.late_window_ms = {after_pause} (a coordinator paused as the \
                 safety phase ends must still finish), or set faults.long_pauses = 0",
                self.phases.liveness_ms
            ));
        }
        // The plan's times and size here; its node names need the world's
        // topology, which a user workload extends with its own services:
        // `check_plan` (the CLI calls it for the hotel world).
        if let Some(plan) = &self.plan {
            plan.check_limits().map_err(|e| format!("plan: {e}"))?;
        }
        Ok(())
    }

    /// Check a fixed `[plan]` against the world it will run in (known
    /// nodes, windows, limits), as a plan file is checked. `path` names the
    /// scenario in the error.
    pub fn check_plan(&self, topo: &Topology, path: &str) -> Result<(), ScenarioError> {
        let invalid = |message: String| ScenarioError::Invalid {
            path: path.to_string(),
            message: format!("plan: {message}"),
        };
        match &self.plan {
            Some(plan) if plan.workload.is_some() => Err(invalid(
                "a fixed plan runs `[workload]` as written: set its values there, not a `workload` draw".into(),
            )),
            Some(plan) => plan.validate(topo).map_err(|e| invalid(e.to_string())),
            None => Ok(()),
        }
    }

    /// The scenario a plan runs: its workload draw applied (agents, rooms,
    /// declines, capture, price, hold TTL, attempts), validated as a
    /// scenario file is. The error names the plan field.
    pub fn for_plan(&self, plan: &FaultPlan) -> Result<Scenario, String> {
        let s = self.apply_draw(plan)?;
        if plan.workload.is_some() {
            s.validate().map_err(|e| format!("plan's workload: {e}"))?;
        }
        Ok(s)
    }

    /// [`Scenario::for_plan`] for a plan already validated (a swarm plan, or
    /// one checked on the way in), without validating the whole scenario
    /// again on every run: panics on a draw that names agents it does not
    /// have.
    pub fn drawn(&self, plan: &FaultPlan) -> Scenario {
        let s = match self.apply_draw(plan) {
            Ok(s) => s,
            Err(e) => panic!("unvalidated plan reached a run: {e}"),
        };
        debug_assert!(
            plan.workload.is_none() || s.validate().is_ok(),
            "unvalidated plan reached a run"
        );
        s
    }

    /// This scenario with `plan`'s workload draw written into it (the
    /// agents each per-customer draw names are checked; nothing else is).
    fn apply_draw(&self, plan: &FaultPlan) -> Result<Scenario, String> {
        let Some(d) = &plan.workload else {
            return Ok(self.clone());
        };
        let mut s = self.clone();
        s.workload.agents = d.agents;
        s.inventory
            .room_types
            .insert(s.workload.room_type.clone(), d.rooms);
        s.workload.declining_agents = d.declining_agents.clone();
        s.saga.capture = d.capture;
        s.workload.partial_capture_agents = d.partial_capture_agents.clone();
        s.workload.capture_cents = d.capture_cents;
        s.workload.price_cents = d.price_cents;
        s.workload.hold_ttl_ms = d.hold_ttl_ms;
        s.workload.agent_attempts_max = d.agent_attempts_max;
        for (agents, customers) in [
            (
                &d.requires_action_agents,
                &mut s.stripe.requires_action_customers,
            ),
            (&d.processing_agents, &mut s.stripe.processing_customers),
            (
                &d.closed_card_agents,
                &mut s.stripe.refund_failing_customers,
            ),
        ] {
            if let Some(a) = agents.iter().find(|a| **a == 0 || **a > d.agents) {
                return Err(format!(
                    "plan's workload: names agent {a}, not in 1..={}",
                    d.agents
                ));
            }
            customers.extend(agents.iter().map(|a| Scenario::customer(*a)));
        }
        if let Some(ms) = d.refund_settle_ms {
            s.stripe.refund_settle_ms = ms;
        }
        Ok(s)
    }

    /// Draw seed `seed`'s workload within `[swarm]` (`None` without one).
    pub fn draw_workload(&self, seed: u64) -> Option<WorkloadDraw> {
        use rand::Rng;
        let sw = self.swarm.as_ref()?;
        let w = &self.workload;
        let mut rng = crate::sim::rng::rng_for(seed, "workload");
        let pick_u32 = |r: Option<[u32; 2]>, keep: u32, rng: &mut crate::sim::rng::SimRng| {
            r.map_or(keep, |[lo, hi]| rng.gen_range(lo..=hi))
        };
        let agents = pick_u32(sw.agents, w.agents, &mut rng);
        let rooms = pick_u32(sw.rooms, self.inventory.room_types[&w.room_type], &mut rng);
        let agent_attempts_max = pick_u32(sw.agent_attempts, w.agent_attempts_max, &mut rng);
        let price_cents = sw
            .price_cents
            .map_or(w.price_cents, |[lo, hi]| rng.gen_range(lo..=hi));
        let capture = if sw.capture.is_empty() {
            self.saga.capture
        } else {
            sw.capture[rng.gen_range(0..sw.capture.len())]
        };
        let share = |max: f64, rng: &mut crate::sim::rng::SimRng| -> BTreeSet<u32> {
            let p: f64 = max * rng.gen::<f64>();
            (1..=agents).filter(|_| rng.gen_bool(p)).collect()
        };
        let declining_agents = if sw.decline_share > 0.0 {
            share(sw.decline_share, &mut rng)
        } else {
            w.declining_agents
                .iter()
                .copied()
                .filter(|a| *a <= agents)
                .collect()
        };
        let (partial_capture_agents, capture_cents) =
            if sw.partial_capture_share > 0.0 && price_cents >= 2 {
                (
                    share(sw.partial_capture_share, &mut rng),
                    rng.gen_range(price_cents / 2..price_cents),
                )
            } else {
                (
                    w.partial_capture_agents
                        .iter()
                        .copied()
                        .filter(|a| *a <= agents)
                        .collect(),
                    w.capture_cents.min(price_cents),
                )
            };
        let hold_ttl_ms = match sw.hold_ttl_ms {
            Some([lo, hi]) if rng.gen_bool(0.5) => {
                let (lo, hi) = ((lo.max(1)) as f64, (hi.max(1)) as f64);
                let ttl = (lo * (hi / lo).powf(rng.gen::<f64>())).round() as u64;
                ttl.clamp(lo as u64, hi as u64)
            }
            _ => w.hold_ttl_ms,
        };
        // Drawn last, so that adding them left every earlier draw of a
        // seed as it was.
        let card = |max: f64, rng: &mut crate::sim::rng::SimRng| {
            if max > 0.0 {
                share(max, rng)
            } else {
                BTreeSet::new()
            }
        };
        let requires_action_agents = card(sw.requires_action_share, &mut rng);
        let processing_agents = card(sw.processing_share, &mut rng);
        let closed_card_agents = card(sw.closed_card_share, &mut rng);
        let refund_settle_ms = match sw.refund_settle_ms {
            Some([lo, hi]) if rng.gen_bool(0.5) => Some(rng.gen_range(lo..=hi)),
            _ => None,
        };
        Some(WorkloadDraw {
            requires_action_agents,
            processing_agents,
            closed_card_agents,
            refund_settle_ms,
            agents,
            rooms,
            declining_agents,
            capture,
            partial_capture_agents,
            capture_cents,
            price_cents,
            hold_ttl_ms,
            agent_attempts_max,
        })
    }

    /// Customer id of agent `n` (1-based).
    pub fn customer(n: u32) -> String {
        format!("cust-{n}")
    }

    /// Business key (reservation id) of agent `n`.
    pub fn business_key(n: u32) -> String {
        format!("res-{n}")
    }

    /// The Stripe configuration with the workload's declining cards added.
    pub fn stripe_config(&self) -> StripeConfig {
        let mut c = self.stripe.clone();
        for a in &self.workload.declining_agents {
            c.declining_customers.insert(Scenario::customer(*a));
        }
        c
    }
}

/// Names of the scenarios in `dir`, sorted.
pub fn list(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let p = e.path();
                    (p.extension().is_some_and(|x| x == "toml"))
                        .then(|| p.file_stem()?.to_str().map(str::to_string))
                        .flatten()
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The scenarios directory: `./scenarios` if present, else the one in the
/// source tree this binary was built from.
pub fn default_dir() -> PathBuf {
    let local = PathBuf::from("scenarios");
    if local.is_dir() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
    }
}

/// A one-line TOML error with line and column.
fn toml_message(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {col}: {msg}")
        }
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_scenario_takes_defaults() {
        let s = Scenario::parse("name = \"x\"\n", "x.toml").unwrap();
        assert_eq!(s.workload.agents, 4);
        assert_eq!(s.saga.capture, CaptureModeName::Automatic);
    }

    #[test]
    fn toml_errors_carry_line_and_column() {
        let e = Scenario::parse("name = \"x\"\n[workload]\nagents = \"many\"\n", "bad.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("bad.toml: line 3, column 10"), "{e}");
        let e = Scenario::parse("name = \"x\"\nbogus = 1\n", "b.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn limits_are_enforced() {
        let e = Scenario::parse("name = \"x\"\n[workload]\nagents = 100000\n", "l.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("workload.agents"), "{e}");
        let e = Scenario::parse(
            "name = \"x\"\n[workload]\nroom_type = \"suite\"\n",
            "l.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("suite"), "{e}");
    }

    #[test]
    fn deletions_and_long_pauses_need_what_they_rest_on() {
        // Admin deletions only in an org that says others delete records
        // (the coordinator reads it, and sweeps its CRM writes there).
        let e = Scenario::parse("name = \"x\"\n[faults]\ncrm_deletions = 1\n", "d.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("salesforce.others_delete_records"), "{e}");
        let ok = "name = \"x\"\n[faults]\ncrm_deletions = 1\n\
                  [salesforce]\nothers_delete_records = true\n";
        assert!(Scenario::parse(ok, "d.toml").is_ok());
        // A long pause must fit in the liveness phase with a late window.
        let e = Scenario::parse(
            "name = \"x\"\n[faults]\nmax_long_pause_ms = 600000\n",
            "p.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("faults.max_long_pause_ms"), "{e}");
    }

    #[test]
    fn unknown_scenario_lists_known_ones() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let e = Scenario::load("no-such-thing", &dir)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown scenario `no-such-thing`"), "{e}");
        assert!(e.contains(DEFAULT_SCENARIO), "{e}");
    }
}
