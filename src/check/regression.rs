//! Regression files: a scenario + seed + fault plan that once broke an
//! invariant, with a note of the bug. `tests/regressions/*.json`; every
//! `cargo test` runs them all.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::sim::FaultPlan;

/// One committed regression.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regression {
    pub scenario: String,
    pub seed: u64,
    /// The invariant it broke.
    pub invariant: String,
    /// One line: what the bug was.
    pub note: String,
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

/// Why a regression file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RegressionError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: line {line}, column {column}: {message}")]
    Json {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: file is larger than {limit} bytes")]
    TooLarge { path: String, limit: u64 },
}

impl Regression {
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
