//! The event trace: what happened in one run, in order, with a stable hash.
//!
//! Every message, delivery decision, fault, crash and saga state change is a
//! `tracing` event with target `sagasim` (use the [`emit!`](crate::emit)
//! macro). A [`Recorder`] installed for the duration of one run collects them,
//! stamps each with the *simulated* time, and folds each into a 64-bit FNV-1a
//! hash. The hash is stable across machines and runs: it sees only simulated
//! time, node names and the event text (no addresses, no wall time).
//!
//! Not here: what the events mean (the checkers read ground truth, not the
//! trace), or rendering beyond plain text (see `report`).

use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// The tracing target every simulation event uses.
pub const TARGET: &str = "sagasim";

/// Emit one trace event: `emit!(node, kind, "format {}", args)`.
///
/// `node` is the node the event happened on (`"world"` for the supervisor),
/// `kind` a short fixed word (`send`, `deliver`, `drop-reply`, `crash`…).
#[macro_export]
macro_rules! emit {
    ($node:expr, $kind:expr, $($arg:tt)+) => {
        ::tracing::event!(
            target: "sagasim",
            ::tracing::Level::INFO,
            node = %$node,
            kind = $kind,
            message = format_args!($($arg)+)
        )
    };
}

/// One recorded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEvent {
    /// Simulated time since the start of the run, in microseconds.
    pub t_us: u64,
    pub node: String,
    pub kind: String,
    pub text: String,
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.t_us / 1000;
        let frac = self.t_us % 1000;
        write!(
            f,
            "{:>7}.{:03}ms {:<12} {:<12} {}",
            ms, frac, self.node, self.kind, self.text
        )
    }
}

/// The trace of one run.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// Events in order; empty when recorded with [`TraceMode::HashOnly`].
    pub events: Vec<TraceEvent>,
    /// Number of events seen (also counted in hash-only mode).
    pub len: u64,
    /// Stable 64-bit hash of every event.
    pub hash: u64,
}

impl Trace {
    /// The readable trace, one event per line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for e in &self.events {
            let _ = writeln!(out, "{e}");
        }
        out
    }

    /// Events of one kind, for tests.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a TraceEvent> + 'a {
        self.events.iter().filter(move |e| e.kind == kind)
    }
}

/// Whether a recorder keeps the events or only hashes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceMode {
    Full,
    /// Fuzzing: count and hash, keep nothing (no allocation per event).
    HashOnly,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a over bytes, continuing from `h`. Stable by construction.
pub fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

struct State {
    mode: TraceMode,
    trace: Trace,
    // Scratch buffers reused for every event.
    node: String,
    kind: String,
    text: String,
}

/// A `tracing` subscriber that records `sagasim` events of one run.
///
/// Install it with `tracing::subscriber::with_default` around the runtime's
/// `block_on`; take the result with [`Recorder::finish`].
#[derive(Clone)]
pub struct Recorder {
    state: Arc<Mutex<State>>,
}

impl Recorder {
    pub fn new(mode: TraceMode) -> Self {
        Recorder {
            state: Arc::new(Mutex::new(State {
                mode,
                trace: Trace {
                    events: Vec::new(),
                    len: 0,
                    hash: FNV_OFFSET,
                },
                node: String::new(),
                kind: String::new(),
                text: String::new(),
            })),
        }
    }

    /// The trace recorded so far (events are moved out).
    pub fn finish(&self) -> Trace {
        let mut st = self.state.lock().expect("trace lock");
        std::mem::take(&mut st.trace)
    }
}

struct Fields<'a> {
    node: &'a mut String,
    kind: &'a mut String,
    text: &'a mut String,
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "kind" => self.kind.push_str(value),
            "node" => self.node.push_str(value),
            _ => {
                let _ = write!(self.text, "{}={} ", field.name(), value);
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.text, "{value:?}");
            }
            "kind" => {
                let _ = write!(self.kind, "{value:?}");
            }
            "node" => {
                let _ = write!(self.node, "{value:?}");
            }
            _ => {
                let _ = write!(self.text, " {}={:?}", field.name(), value);
            }
        }
    }
}

/// Simulated microseconds since the start of the run (0 outside a runtime).
pub fn sim_time_us() -> u64 {
    madsim::time::TimeHandle::try_current()
        .map(|t| u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Subscriber for Recorder {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == TARGET
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        if event.metadata().target() != TARGET {
            return;
        }
        let t_us = sim_time_us();
        let mut st = self.state.lock().expect("trace lock");
        let st = &mut *st;
        st.node.clear();
        st.kind.clear();
        st.text.clear();
        event.record(&mut Fields {
            node: &mut st.node,
            kind: &mut st.kind,
            text: &mut st.text,
        });
        let mut h = st.trace.hash;
        h = fnv1a(h, &t_us.to_le_bytes());
        h = fnv1a(h, st.node.as_bytes());
        h = fnv1a(h, &[0]);
        h = fnv1a(h, st.kind.as_bytes());
        h = fnv1a(h, &[0]);
        h = fnv1a(h, st.text.as_bytes());
        h = fnv1a(h, &[0xff]);
        st.trace.hash = h;
        st.trace.len += 1;
        if st.mode == TraceMode::Full {
            st.trace.events.push(TraceEvent {
                t_us,
                node: st.node.clone(),
                kind: st.kind.clone(),
                text: st.text.clone(),
            });
        }
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_reference_vectors() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(FNV_OFFSET, b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn recorder_collects_sagasim_events_only_and_hashes_them() {
        let rec = Recorder::new(TraceMode::Full);
        tracing::subscriber::with_default(rec.clone(), || {
            crate::emit!("stripe", "deliver", "req #{}", 1);
            tracing::info!(target: "other", "ignored");
            crate::emit!("world", "crash", "node {}", "coordinator");
        });
        let t = rec.finish();
        assert_eq!(t.len, 2);
        assert_eq!(t.events[0].node, "stripe");
        assert_eq!(t.events[0].kind, "deliver");
        assert_eq!(t.events[0].text, "req #1");
        assert_eq!(t.events[1].kind, "crash");

        let rec2 = Recorder::new(TraceMode::HashOnly);
        tracing::subscriber::with_default(rec2.clone(), || {
            crate::emit!("stripe", "deliver", "req #{}", 1);
            crate::emit!("world", "crash", "node {}", "coordinator");
        });
        let t2 = rec2.finish();
        assert_eq!(t2.hash, t.hash, "hash-only mode hashes the same events");
        assert!(t2.events.is_empty());
    }
}
