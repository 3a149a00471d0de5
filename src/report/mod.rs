//! Reports of one run: a self-contained HTML page with a Jepsen-style
//! timeline, and a markdown summary.
//!
//! `sagasim report` runs a seed with the full trace and hands the result to
//! a [`Report`], which renders
//! - `<scenario>-<seed>.html`: the invariant verdict first (each violation
//!   linked to the event where it happened and to the faults of its key
//!   that led there), then one swim lane per business key with the saga's
//!   key events in plain words and a per-saga summary of the final state in
//!   each service (`sagas.rs`), then the node timeline (one lane per node,
//!   arrows for messages, marks for faults and saga state changes, fitted
//!   to a 1400 px window by default — `timeline.rs` says how the trace is
//!   read), the fault counts, the agents' results, the fault plan and the
//!   raw trace (the only place `Debug` text is shown, verbatim);
//! - `<scenario>-<seed>.md`: the same verdict and counts in a few lines.
//!
//! Both are pure functions of the run: no wall time, no absolute paths, no
//! map iteration order — the same seed gives byte-identical files. Every
//! string that came from a file or a trace goes through [`escape`] before
//! it reaches HTML or SVG. The page needs no network: inline CSS and SVG,
//! no scripts, no fonts, no images.
//!
//! Not here: running the seed (`harness::run_checked`), judging it
//! (`check`), the fuzz summary report (a later addition), and anything that
//! reads the report back.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::check::regression::ReplayHandle;
use crate::check::Verdict;
use crate::harness::Checked;
use crate::scenario::Scenario;
use crate::trace::Trace;
use crate::world::run::{node_names, plan_for, RunOutcome};

pub mod compare;
mod html;
mod markdown;
mod sagas;
pub use sagas::status_words;
mod svg;
pub(crate) mod timeline;

/// Longest file stem (`<scenario>-<seed>`) a report gets, in bytes.
pub const MAX_STEM_BYTES: usize = 120;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file or directory could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The path, as given.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// The files a report wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The HTML page.
    pub html: PathBuf,
    /// The markdown summary.
    pub markdown: PathBuf,
}

/// One run, ready to render. The parts are borrowed separately so a test
/// (or a caller with its own checker) can pair a run with any verdict.
#[derive(Clone, Copy)]
pub struct Report<'a> {
    /// The scenario the run is of.
    pub scenario: &'a Scenario,
    /// The run's outcome; its `seed` and `plan` are the report's.
    pub outcome: &'a RunOutcome,
    /// Recorded with `TraceMode::Full` (a hash-only trace draws nothing).
    pub trace: &'a Trace,
    /// The checkers' verdict on the run.
    pub verdict: &'a Verdict,
    /// How to run it again, when the caller knows (the CLI does): the
    /// command, runnable as printed, and the replay handle.
    pub replay: Option<(&'a str, &'a ReplayHandle)>,
}

impl<'a> Report<'a> {
    /// The report of a checked run of `scenario`.
    pub fn new(scenario: &'a Scenario, checked: &'a Checked) -> Self {
        Report {
            scenario,
            outcome: &checked.outcome,
            trace: &checked.trace,
            verdict: &checked.verdict,
            replay: None,
        }
    }

    /// The same report, naming the command and handle that replay it.
    pub fn with_replay(self, command: &'a str, handle: &'a ReplayHandle) -> Self {
        Report {
            replay: Some((command, handle)),
            ..self
        }
    }

    /// The replay handle as one line of JSON, when the caller gave one.
    pub fn handle_json(&self) -> Option<String> {
        let (_, h) = self.replay.as_ref()?;
        Some(serde_json::to_string(h).expect("handles serialise"))
    }

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.outcome.seed
    }

    /// The node lanes, in the world's fixed order.
    pub fn lanes(&self) -> Vec<String> {
        node_names(self.scenario)
    }

    /// The self-contained HTML page.
    pub fn html(&self) -> String {
        html::render(self)
    }

    /// The run's coverage against the catalogue of its workload and
    /// coordinator (`check::coverage`): how many entries the catalogue
    /// holds, and each entry the run reached with how often (calls for a
    /// response entry, 1 for any other), in catalogue order, then any
    /// reached outside it.
    pub fn coverage(&self) -> (usize, Vec<(String, u64)>) {
        use crate::check::coverage;
        let out = self.outcome;
        let catalogue = coverage::catalogue(&out.workload, out.uses_saga_log);
        let hit = coverage::coverage(out);
        let mut calls: std::collections::BTreeMap<String, u64> = Default::default();
        for (key, n) in &out.calls {
            let label = match &key.label {
                Some(l) => format!("{} {}", l.step, l.op),
                None => crate::world::wire::UNLABELLED.to_string(),
            };
            *calls
                .entry(coverage::response_entry(
                    &label,
                    &key.service,
                    key.kind,
                    key.class,
                ))
                .or_insert(0) += n;
        }
        let count = |e: &str| calls.get(e).copied().unwrap_or(1);
        let mut rows: Vec<(String, u64)> = catalogue
            .iter()
            .filter(|e| hit.0.contains_key(*e))
            .map(|e| (e.clone(), count(e)))
            .collect();
        for e in hit.outside(&catalogue) {
            rows.push((e.to_string(), count(e)));
        }
        (catalogue.len(), rows)
    }

    /// The markdown summary.
    pub fn markdown(&self) -> String {
        markdown::render(self)
    }

    /// The command that replays this run: the caller's (see
    /// [`Report::with_replay`]), else one built from the scenario's name
    /// and the seed for the bundled binary.
    pub fn replay_command(&self) -> String {
        if let Some((command, _)) = &self.replay {
            return command.to_string();
        }
        let name = &self.scenario.name;
        let seed = self.seed();
        // Another coordinator than the reference is named, or the command
        // would replay the reference.
        let coordinator = match self.outcome.coordinator.as_str() {
            c if c == crate::harness::reference().name() => String::new(),
            c => format!(" --coordinator {c}"),
        };
        if plan_for(self.scenario, seed) == *self.outcome.plan {
            format!("cargo run --release -- replay {name}{coordinator} --seed {seed}")
        } else {
            format!(
                "cargo run --release -- replay {name}{coordinator} --seed {seed} --plan FILE   (FILE: the fault plan below)"
            )
        }
    }

    /// `<scenario>-<seed>`, safe as a file name whatever the scenario's
    /// name holds.
    pub fn file_stem(&self) -> String {
        file_stem(&self.scenario.name, self.seed())
    }

    /// Write `<dir>/<stem>.html` and `<dir>/<stem>.md` (creating `dir`),
    /// each atomically: a temporary file in `dir`, then a rename.
    pub fn write(&self, dir: &Path) -> Result<Written, ReportError> {
        self.write_as(dir, &self.file_stem())
    }

    /// [`Report::write`] under another stem (already a safe file name, as
    /// [`file_stem`] makes them): `report --plan` adds the plan's name, so
    /// it does not overwrite the report of the seed's own plan.
    pub fn write_as(&self, dir: &Path, stem: &str) -> Result<Written, ReportError> {
        std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let html = dir.join(format!("{stem}.html"));
        let markdown = dir.join(format!("{stem}.md"));
        write_atomic(&html, &self.html())?;
        write_atomic(&markdown, &self.markdown())?;
        Ok(Written { html, markdown })
    }
}

/// `<name>-<seed>` with every byte outside `[A-Za-z0-9._-]` replaced by
/// `_`, no leading dot, and at most [`MAX_STEM_BYTES`] bytes: a scenario
/// name from a file must not steer the report outside its directory.
pub fn file_stem(name: &str, seed: u64) -> String {
    let mut safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    while safe.starts_with('.') {
        safe.replace_range(..1, "_");
    }
    if safe.is_empty() {
        safe.push_str("scenario");
    }
    let suffix = format!("-{seed}");
    safe.truncate(MAX_STEM_BYTES - suffix.len());
    safe.push_str(&suffix);
    debug_assert!(safe.len() <= MAX_STEM_BYTES);
    debug_assert!(!safe.contains('/') && !safe.starts_with('.'));
    safe
}

pub(crate) fn write_atomic(path: &Path, text: &str) -> Result<(), ReportError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let io = |p: &Path| {
        let path = p.display().to_string();
        move |source| ReportError::Io { path, source }
    };
    if let Err(e) = std::fs::write(&tmp, text) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&tmp)(e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(path)(e)
    })
}

/// Escape text for HTML and SVG, in element content and in quoted
/// attribute values alike: `& < > " '`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `text` cut to at most `max` characters, with `…` when cut.
pub(crate) fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((at, _)) => {
            let mut s = text[..at].to_string();
            s.push('…');
            s
        }
    }
}

/// Milliseconds for people: `12.345 s`, `12 s`, or `850 ms` under a second.
pub(crate) fn fmt_ms(ms: u64) -> String {
    if ms >= 1000 {
        let mut s = format!("{}.{:03}", ms / 1000, ms % 1000);
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
        s.push_str(" s");
        s
    } else {
        format!("{ms} ms")
    }
}

/// Simulated microseconds as `1234.567 ms` (the trace's own precision).
pub(crate) fn fmt_us(us: u64) -> String {
    let mut s = String::new();
    let _ = write!(s, "{}.{:03} ms", us / 1000, us % 1000);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_the_five_html_specials() {
        assert_eq!(
            escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(escape("plain-text_1.2"), "plain-text_1.2");
        assert_eq!(
            escape("&amp;"),
            "&amp;amp;",
            "escaping is not idempotent, by design"
        );
        assert_eq!(escape("é → ü"), "é → ü", "non-ASCII passes through");
    }

    #[test]
    fn file_stem_cannot_leave_the_directory() {
        assert_eq!(file_stem("hotel-checkout", 7), "hotel-checkout-7");
        assert_eq!(file_stem("../../etc/passwd", 1), "_._.._etc_passwd-1");
        assert_eq!(file_stem(".hidden", 2), "_hidden-2");
        assert_eq!(file_stem("", 3), "scenario-3");
        assert_eq!(file_stem("a<b>\"c\"", 4), "a_b__c_-4");
        let long = "x".repeat(500);
        let stem = file_stem(&long, u64::MAX);
        assert_eq!(stem.len(), MAX_STEM_BYTES);
        assert!(stem.ends_with(&format!("-{}", u64::MAX)));
    }

    #[test]
    fn clip_and_time_formats() {
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("ééé", 2), "éé…");
        assert_eq!(fmt_ms(850), "850 ms");
        assert_eq!(fmt_ms(12_000), "12 s");
        assert_eq!(fmt_ms(12_340), "12.34 s");
        assert_eq!(fmt_us(1_186_001), "1186.001 ms");
    }
}
