//! Regression files: a scenario + seed + fault plan that once broke an
//! invariant, with a note of the bug. `tests/regressions/*.json`; every
//! `cargo test` runs them all.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::sim::FaultPlan;

/// One committed regression: a fault plan that once broke an invariant,
/// with the replay handle that runs it again (see [`ReplayHandle`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regression {
    /// The scenario's name.
    pub scenario: String,
    /// The scenario file's path, when the scenario was given by path (a
    /// scenario that is not in the scenarios directory): replay loads it
    /// from there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario_path: Option<String>,
    /// The seed the run was built from (its callers, service quirks).
    pub seed: u64,
    /// The invariant it broke.
    pub invariant: String,
    /// One line: what the bug was.
    pub note: String,
    /// The shrunk fault plan.
    pub plan: FaultPlan,
    /// The workload it ran (absent: the scenario's bundled workload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// The coordinator it ran (absent: the reference coordinator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinator: Option<String>,
    /// The sagasim version that wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sagasim_version: Option<String>,
}

/// Everything that runs one failing run again, anywhere: which workload,
/// scenario and coordinator, which seed and which fault plan, and the
/// sagasim version that found it. Every regression file, report, failure
/// line and JSON failure record carries one; a command line that names
/// something else is an error, never a silent choice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayHandle {
    /// The workload's name.
    pub workload: String,
    /// The scenario's name.
    pub scenario: String,
    /// The scenario file's path, when it was given by path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario_path: Option<String>,
    /// The coordinator's name.
    pub coordinator: String,
    /// The seed.
    pub seed: u64,
    /// [`ReplayHandle::SEED_PLAN`] (the seed's own fault plan) or the path
    /// of the plan or regression file that holds the plan.
    pub plan: String,
    /// The sagasim version that ran it.
    pub sagasim_version: String,
}

impl ReplayHandle {
    /// The `plan` of a run of the seed's own fault plan.
    pub const SEED_PLAN: &'static str = "seed";

    /// The handle of `seed`'s own plan, by this sagasim version.
    pub fn of_seed(
        workload: &str,
        scenario: &str,
        scenario_path: Option<String>,
        coordinator: &str,
        seed: u64,
    ) -> ReplayHandle {
        ReplayHandle {
            workload: workload.to_string(),
            scenario: scenario.to_string(),
            scenario_path,
            coordinator: coordinator.to_string(),
            seed,
            plan: ReplayHandle::SEED_PLAN.to_string(),
            sagasim_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// The scenario path worth recording for a scenario given on a command line
/// as `name_or_path`: the path when it was a path, nothing for a name.
pub fn scenario_path_of(name_or_path: &str) -> Option<String> {
    crate::scenario::is_path(name_or_path).then(|| name_or_path.to_string())
}

/// Why a regression file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RegressionError {
    /// It cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// It is not a regression file's JSON.
    #[error("{path}: line {line}, column {column}: {message}")]
    Json {
        /// The file.
        path: String,
        /// Where the JSON is wrong (1-based).
        line: usize,
        /// Where on that line (1-based).
        column: usize,
        /// What serde said.
        message: String,
    },
    /// It is over the size limit.
    #[error("{path}: file is larger than {limit} bytes")]
    TooLarge {
        /// The file.
        path: String,
        /// The limit, in bytes.
        limit: u64,
    },
}

impl Regression {
    /// The handle that replays this regression from the file at `path`
    /// (absent names are the defaults the file was written under: the
    /// scenario's bundled workload, the reference coordinator).
    pub fn handle(&self, path: &Path, default_workload: &str) -> ReplayHandle {
        ReplayHandle {
            workload: self
                .workload
                .clone()
                .unwrap_or_else(|| default_workload.to_string()),
            scenario: self.scenario.clone(),
            scenario_path: self.scenario_path.clone(),
            coordinator: self
                .coordinator
                .clone()
                .unwrap_or_else(|| crate::reference::NAME.to_string()),
            seed: self.seed,
            plan: path.display().to_string(),
            sagasim_version: self
                .sagasim_version
                .clone()
                .unwrap_or_else(|| "unknown".to_string()),
        }
    }

    /// Read and parse a regression file (at most `MAX_FILE_BYTES`).
    pub fn load(path: &Path) -> Result<Regression, RegressionError> {
        let shown = path.display().to_string();
        let limit = crate::scenario::MAX_FILE_BYTES;
        let meta = std::fs::metadata(path).map_err(|source| RegressionError::Io {
            path: shown.clone(),
            source,
        })?;
        if meta.len() > limit {
            return Err(RegressionError::TooLarge { path: shown, limit });
        }
        let text = std::fs::read_to_string(path).map_err(|source| RegressionError::Io {
            path: shown.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| RegressionError::Json {
            path: shown,
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })
    }

    /// Write atomically (temp file + rename); refuses to overwrite.
    pub fn save_new(&self, path: &Path) -> Result<(), RegressionError> {
        let shown = path.display().to_string();
        if path.exists() {
            return Err(RegressionError::Io {
                path: shown,
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "a regression file of that name exists; not overwriting it",
                ),
            });
        }
        let text = serde_json::to_string_pretty(self).expect("regressions serialise");
        let tmp = path.with_extension("json.tmp");
        let io = |source| RegressionError::Io {
            path: shown.clone(),
            source,
        };
        std::fs::write(&tmp, text + "\n").map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}
