//! The event trace: what happened in one run, in order, with a stable hash.
//!
//! Every message, delivery decision, fault, crash and saga state change is a
//! `tracing` event with target `sagasim` (use the [`emit!`](crate::emit)
//! macro). A [`Recorder`] installed for the duration of one run collects them,
//! stamps each with the *simulated* time, and folds each into a 64-bit
//! hash ([`TraceHasher`]); message payloads enter the hash as digests of
//! their serialisation ([`Payload`]), not as text. The hash is stable
//! across machines and runs: it sees only simulated time, node names and
//! the event text (no addresses, no wall time).
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
        $crate::tracing::event!(
            target: "sagasim",
            $crate::tracing::Level::INFO,
            node = %$node,
            kind = $kind,
            message = format_args!($($arg)+)
        )
    };
}

/// Emit one trace event that repeats a value an earlier event already
/// hashed: `emit_echo!(node, kind, echo, "format {}", args)`. Full traces
/// show ` {echo:?}` after the text; the hash skips it, and hash-only mode
/// does not format it at all. Use it only for a value that is the very
/// object an earlier event printed (a reply as the caller receives it).
#[macro_export]
macro_rules! emit_echo {
    ($node:expr, $kind:expr, $echo:expr, $($arg:tt)+) => {
        $crate::tracing::event!(
            target: "sagasim",
            $crate::tracing::Level::INFO,
            node = %$node,
            kind = $kind,
            message = format_args!($($arg)+),
            echo = ?$echo
        )
    };
}

thread_local! {
    /// Whether a [`Payload`] formats as its digest (while hashing) or as
    /// its `Debug` text (while keeping a readable event).
    static DIGEST: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A message payload in a trace event: `emit!(n, k, "{:?}", Payload(&req))`.
///
/// Kept traces show its `Debug` text. The hash sees a 64-bit digest of its
/// compact serde encoding (bincode: fields in order, no names, no padding)
/// instead, in both modes, so fuzzing never `Debug`-formats a request or a
/// reply: that formatting was an eighth of fuzzing time (callgrind, issue
/// 8). The digest covers every serialised field, so a payload that differs
/// between two runs of a seed still changes the hash.
pub struct Payload<'a, T>(pub &'a T);

impl<T: fmt::Debug + serde::Serialize> fmt::Debug for Payload<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if DIGEST.with(std::cell::Cell::get) {
            let mut h = TraceHasher::default();
            // Our own message types only; bincode fails only on a sequence
            // of unknown length (`#[serde(flatten)]`), which no payload has.
            // Loud, not a silent hole in the hash.
            if let Err(e) = bincode::serialize_into(&mut h, self.0) {
                panic!("trace payload does not serialise: {e}");
            }
            write!(f, "{:016x}", h.finish())
        } else {
            fmt::Debug::fmt(self.0, f)
        }
    }
}

/// Run `f` with payloads formatting as digests.
fn digesting<R>(f: impl FnOnce() -> R) -> R {
    DIGEST.with(|d| d.set(true));
    let r = f();
    DIGEST.with(|d| d.set(false));
    r
}

/// One recorded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEvent {
    /// Simulated time since the start of the run, in microseconds.
    pub t_us: u64,
    /// The node it happened on (`"world"` for the supervisor; a disk is
    /// `"{node}/disk"`).
    pub node: String,
    /// A short fixed word: `send`, `deliver`, `drop-reply`, `crash`, …
    pub kind: String,
    /// The formatted message (with ` {echo:?}` appended for an
    /// [`emit_echo!`](crate::emit_echo) event).
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
    /// Stable 64-bit hash of every event ([`TraceHasher`]).
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
    /// Keep every event (reports, replays, tests that read the trace), and
    /// hash them.
    Full,
    /// Fuzzing: count and hash, keep nothing (no allocation per event).
    HashOnly,
}

/// The FNV-1a 64-bit offset basis (the starting value of [`fnv1a`]).
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a over bytes, continuing from `h`. Stable by construction.
pub fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// The trace hash: a word-at-a-time fold over a byte stream, stable by
/// construction (little-endian words, fixed constants). It depends only on
/// the bytes written, not on how they were split into writes, so both
/// modes feed it straight from the formatter. It replaced byte-at-a-time
/// FNV-1a for speed (issue 8).
#[derive(Clone, Copy, Debug)]
pub struct TraceHasher {
    h: u64,
    /// Bytes not yet folded: `Debug` writes many tiny pieces (`": "`,
    /// field names), so they are gathered and folded a block at a time.
    buf: [u8; BLOCK],
    nbuf: usize,
    len: u64,
}

const BLOCK: usize = 32;
const FOLD_K: u64 = 0x517c_c1b7_2722_0a95;

impl Default for TraceHasher {
    fn default() -> Self {
        TraceHasher {
            h: FNV_OFFSET,
            buf: [0; BLOCK],
            nbuf: 0,
            len: 0,
        }
    }
}

impl TraceHasher {
    #[inline]
    fn fold(&mut self, w: u64) {
        self.h = (self.h.rotate_left(5) ^ w).wrapping_mul(FOLD_K);
    }

    fn fold_block(&mut self, block: &[u8]) {
        for w in block.chunks_exact(8) {
            self.fold(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
    }

    /// Feed bytes.
    #[inline]
    pub fn write(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        let free = BLOCK - self.nbuf;
        if bytes.len() < free {
            let dst = &mut self.buf[self.nbuf..self.nbuf + bytes.len()];
            if bytes.len() <= 16 {
                copy_small(dst, bytes);
            } else {
                dst.copy_from_slice(bytes);
            }
            self.nbuf += bytes.len();
            return;
        }
        let (head, rest) = bytes.split_at(free);
        self.buf[self.nbuf..].copy_from_slice(head);
        let block = self.buf;
        self.fold_block(&block);
        bytes = rest;
        let mut blocks = bytes.chunks_exact(BLOCK);
        for b in &mut blocks {
            self.fold_block(b);
        }
        let tail = blocks.remainder();
        self.buf[..tail.len()].copy_from_slice(tail);
        self.nbuf = tail.len();
    }

    /// The hash of everything written so far.
    pub fn finish(&self) -> u64 {
        let mut end = *self;
        let mut last = [0u8; BLOCK];
        last[..end.nbuf].copy_from_slice(&end.buf[..end.nbuf]);
        end.fold_block(&last[..end.nbuf.div_ceil(8) * 8]);
        end.fold(end.len);
        // Final avalanche (splitmix64's finaliser, as `sim::rng::splitmix`
        // without its additive step, so hashes in existing reports hold).
        let mut z = end.h;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// `dst.copy_from_slice(src)` for at most 16 bytes, as two overlapping
/// fixed-size copies: no call to `memcpy`, which for the many tiny pieces
/// `Debug` writes cost as much as the hashing itself.
#[inline]
fn copy_small(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    debug_assert!(n <= 16 && dst.len() == n);
    if n >= 8 {
        dst[..8].copy_from_slice(&src[..8]);
        dst[n - 8..].copy_from_slice(&src[n - 8..]);
    } else if n >= 4 {
        dst[..4].copy_from_slice(&src[..4]);
        dst[n - 4..].copy_from_slice(&src[n - 4..]);
    } else if n >= 2 {
        dst[..2].copy_from_slice(&src[..2]);
        dst[n - 2..].copy_from_slice(&src[n - 2..]);
    } else if n == 1 {
        dst[0] = src[0];
    }
}

impl std::io::Write for TraceHasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        TraceHasher::write(self, buf);
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        TraceHasher::write(self, buf);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl fmt::Write for TraceHasher {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write(s.as_bytes());
        Ok(())
    }
}

struct State {
    mode: TraceMode,
    trace: Trace,
    hasher: TraceHasher,
    // Scratch buffers reused for every event (full mode).
    node: String,
    kind: String,
    text: String,
    echo: String,
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
    /// An empty recorder that keeps events or only hashes them, per `mode`.
    pub fn new(mode: TraceMode) -> Self {
        Recorder {
            state: Arc::new(Mutex::new(State {
                mode,
                trace: Trace::default(),
                hasher: TraceHasher::default(),
                node: String::new(),
                kind: String::new(),
                text: String::new(),
                echo: String::new(),
            })),
        }
    }

    /// The trace recorded so far (events are moved out).
    pub fn finish(&self) -> Trace {
        let mut st = self.state.lock().expect("trace lock");
        let hash = st.hasher.finish();
        let mut t = std::mem::take(&mut st.trace);
        t.hash = hash;
        t
    }
}

/// Full mode: the fields of one event, as readable text (not hashed).
struct Fields<'a> {
    node: &'a mut String,
    kind: &'a mut String,
    text: &'a mut String,
    echo: &'a mut String,
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
            "echo" => {
                let _ = write!(self.echo, " {value:?}");
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

/// The hashed form of an event, in both modes: node, kind and message,
/// formatted straight into the hasher (no text kept); echoes are left out. Relies on the field order `emit!` fixes (node, kind, message).
struct HashFields<'a> {
    h: &'a mut TraceHasher,
}

impl Visit for HashFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "kind" | "node" => {
                self.h.write(value.as_bytes());
                self.h.write(&[0]);
            }
            _ => {
                let _ = write!(self.h, "{}={} ", field.name(), value);
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.h, "{value:?}");
            }
            "echo" => {}
            "kind" | "node" => {
                let _ = write!(self.h, "{value:?}");
                self.h.write(&[0]);
            }
            _ => {
                let _ = write!(self.h, " {}={:?}", field.name(), value);
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
        st.trace.len += 1;
        st.hasher.write(&t_us.to_le_bytes());
        digesting(|| event.record(&mut HashFields { h: &mut st.hasher }));
        st.hasher.write(&[0xff]);
        if st.mode == TraceMode::HashOnly {
            return;
        }
        st.node.clear();
        st.kind.clear();
        st.text.clear();
        st.echo.clear();
        event.record(&mut Fields {
            node: &mut st.node,
            kind: &mut st.kind,
            text: &mut st.text,
            echo: &mut st.echo,
        });
        st.text.push_str(&st.echo);
        st.trace.events.push(TraceEvent {
            t_us,
            node: st.node.clone(),
            kind: st.kind.clone(),
            text: st.text.clone(),
        });
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
    fn trace_hasher_depends_on_the_bytes_not_on_how_they_were_split() {
        let text = b"0123456789abcdefghijklmnopqrstuvwxyz, a longer line of trace text";
        let mut whole = TraceHasher::default();
        whole.write(text);
        for split in [1, 3, 7, 8, 9, 17] {
            let mut parts = TraceHasher::default();
            for chunk in text.chunks(split) {
                parts.write(chunk);
            }
            assert_eq!(parts.finish(), whole.finish(), "split {split}");
        }
        let mut other = TraceHasher::default();
        other.write(b"0123456789abcdefghijklmnopqrstuvwxyz, a longer line of trace texT");
        assert_ne!(other.finish(), whole.finish());
        // Trailing zero bytes count (length is folded in).
        let (mut a, mut b) = (TraceHasher::default(), TraceHasher::default());
        a.write(b"ab");
        b.write(b"ab\0");
        assert_ne!(a.finish(), b.finish());
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

        // An echo is shown in full traces and left out of the hash.
        let echoed = |mode, echo: &'static str| {
            let rec = Recorder::new(mode);
            tracing::subscriber::with_default(rec.clone(), || {
                crate::emit_echo!("coordinator", "recv", echo, "<- stripe #{}", 0);
            });
            rec.finish()
        };
        let full = echoed(TraceMode::Full, "Ok(1)");
        assert_eq!(full.events[0].text, "<- stripe #0 \"Ok(1)\"");
        assert_eq!(full.hash, echoed(TraceMode::Full, "Ok(2)").hash);
        assert_eq!(full.hash, echoed(TraceMode::HashOnly, "Ok(1)").hash);
    }
}
