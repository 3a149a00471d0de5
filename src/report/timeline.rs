//! The timeline model: a run's trace read as lanes, message arrows, marks
//! and bands, plus the (deliberately non-linear) time scale they are drawn
//! on.
//!
//! How the trace is read (the event texts are `sim::net`'s and
//! `sim::world`'s; a call is named by `(caller, callee, #index)`, the index
//! counting calls on that link):
//! - request arrow: `send` on the caller (`-> callee #i …`) to each
//!   `deliver` on the callee (`#i from caller…`); a second delivery of a
//!   duplicated call gets its own arrow from the same send;
//! - reply arrow: `reply` on the callee (`-> caller #i …`) to `recv` on the
//!   caller (`<- callee #i …`), first reply first (when a duplicate makes
//!   two replies, the earlier one is taken to be the one received; the
//!   trace does not say which copy won);
//! - a request that never arrives (`drop-request`, `refused`, `partition`
//!   of the request, `no-server`) becomes a short stub towards the callee
//!   ending in an ✕; a reply that never arrives (`drop-reply`, `partition`
//!   of the reply) a stub towards the caller; a reply nobody received (its
//!   caller had given up, or a duplicate's second reply) a grey stub;
//! - faults are marks on the lane where the event happened: the caller for
//!   `drop-request`, `duplicate`, `delay`, `refused`, `timeout`; the callee
//!   for `drop-reply`, `partition`, injected brown-outs and late arrivals
//!   (both read off the `deliver` text); the named node for the world's
//!   `crash`, `restart`, `pause`, `resume` (which also shade the lane while
//!   the node is down or paused);
//! - saga state: `recover`, `notify`, `step-call`, `step-outcome` on the
//!   coordinator, `tool-call`/`tool-answer`/`tool-give-up` on agents;
//! - the plan's partition and brown-out windows shade the lanes they name
//!   (clipped to the safety phase, when faults act); `heal` and the
//!   verdict's violations are vertical lines.
//!
//! Not here: drawing (`svg.rs`) and limits on what is drawn (thinning is a
//! drawing decision; this model keeps everything).

use std::collections::{BTreeMap, VecDeque};

use crate::check::Verdict;
use crate::sim::FaultPlan;
use crate::trace::{Trace, TraceEvent};

/// Which way a message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dir {
    Request,
    Reply,
}

/// How an arrow looks: what happened to the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Style {
    Normal,
    /// The second copy of a duplicated request.
    Duplicate,
    /// A request the plan delayed (possibly past the caller's timeout).
    Delayed,
    /// Arrived after its caller gave up.
    Late,
    /// Delivered with an injected brown-out failure.
    Injected,
    /// Never arrived; ends in an ✕ (the mark at its end says why).
    Lost,
    /// A reply that arrived nowhere: the caller had gone, or a copy's.
    Orphan,
}

impl Style {
    pub fn class(self) -> &'static str {
        match self {
            Style::Normal => "normal",
            Style::Duplicate => "duplicate",
            Style::Delayed => "delayed",
            Style::Late => "late",
            Style::Injected => "injected",
            Style::Lost => "lost",
            Style::Orphan => "orphan",
        }
    }
}

/// One message arrow between two lanes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrow {
    pub dir: Dir,
    pub style: Style,
    pub from_lane: usize,
    pub to_lane: usize,
    pub t0_us: u64,
    /// Arrival; for a stub (`Lost`, `Orphan`), where it was last seen.
    pub t1_us: u64,
    pub title: String,
}

impl Arrow {
    /// A stub stops short of the target lane.
    pub fn is_stub(&self) -> bool {
        matches!(self.style, Style::Lost | Style::Orphan)
    }
}

/// What a mark stands for. The order is the legend's and the count's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MarkKind {
    // Faults on calls.
    DropRequest,
    DropReply,
    Duplicate,
    Delay,
    DelayPastTimeout,
    Partition,
    Refused,
    Timeout,
    NoServer,
    Injected,
    Late,
    // Faults on nodes.
    Crash,
    Restart,
    Pause,
    Resume,
    DiskCrash,
    // Saga state.
    Recover,
    Notify,
    StepCall,
    OutcomeApplied,
    OutcomeFound,
    OutcomeNotFound,
    OutcomeTransient,
    OutcomeUnknown,
    OutcomeRejected,
    ToolCall,
    ToolAnswer,
    ToolGiveUp,
    // Bookkeeping.
    Fsync,
    Other,
}

/// Broad families of marks (drawing priority and thinning).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    Fault,
    State,
    Plain,
}

/// The glyph of a mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Cross,
    Ring,
    Square,
    Dot,
    Diamond,
    TriUp,
    TriDown,
    TriRight,
    Bars,
    Tick,
}

impl MarkKind {
    pub const ALL: [MarkKind; 30] = [
        MarkKind::DropRequest,
        MarkKind::DropReply,
        MarkKind::Duplicate,
        MarkKind::Delay,
        MarkKind::DelayPastTimeout,
        MarkKind::Partition,
        MarkKind::Refused,
        MarkKind::Timeout,
        MarkKind::NoServer,
        MarkKind::Injected,
        MarkKind::Late,
        MarkKind::Crash,
        MarkKind::Restart,
        MarkKind::Pause,
        MarkKind::Resume,
        MarkKind::DiskCrash,
        MarkKind::Recover,
        MarkKind::Notify,
        MarkKind::StepCall,
        MarkKind::OutcomeApplied,
        MarkKind::OutcomeFound,
        MarkKind::OutcomeNotFound,
        MarkKind::OutcomeTransient,
        MarkKind::OutcomeUnknown,
        MarkKind::OutcomeRejected,
        MarkKind::ToolCall,
        MarkKind::ToolAnswer,
        MarkKind::ToolGiveUp,
        MarkKind::Fsync,
        MarkKind::Other,
    ];

    /// CSS class and the name in counts (the trace's own word where there
    /// is one).
    pub fn class(self) -> &'static str {
        match self {
            MarkKind::DropRequest => "drop-request",
            MarkKind::DropReply => "drop-reply",
            MarkKind::Duplicate => "duplicate",
            MarkKind::Delay => "delay",
            MarkKind::DelayPastTimeout => "delay-past-timeout",
            MarkKind::Partition => "partition",
            MarkKind::Refused => "refused",
            MarkKind::Timeout => "timeout",
            MarkKind::NoServer => "no-server",
            MarkKind::Injected => "injected",
            MarkKind::Late => "late-arrival",
            MarkKind::Crash => "crash",
            MarkKind::Restart => "restart",
            MarkKind::Pause => "pause",
            MarkKind::Resume => "resume",
            MarkKind::DiskCrash => "disk-crash",
            MarkKind::Recover => "recover",
            MarkKind::Notify => "notify",
            MarkKind::StepCall => "step-call",
            MarkKind::OutcomeApplied => "outcome-applied",
            MarkKind::OutcomeFound => "outcome-found",
            MarkKind::OutcomeNotFound => "outcome-not-found",
            MarkKind::OutcomeTransient => "outcome-transient",
            MarkKind::OutcomeUnknown => "outcome-unknown",
            MarkKind::OutcomeRejected => "outcome-rejected",
            MarkKind::ToolCall => "tool-call",
            MarkKind::ToolAnswer => "tool-answer",
            MarkKind::ToolGiveUp => "tool-give-up",
            MarkKind::Fsync => "fsync",
            MarkKind::Other => "other",
        }
    }

    /// What the legend says.
    pub fn describe(self) -> &'static str {
        match self {
            MarkKind::DropRequest => "request dropped",
            MarkKind::DropReply => "reply dropped after apply",
            MarkKind::Duplicate => "request duplicated",
            MarkKind::Delay => "request delayed",
            MarkKind::DelayPastTimeout => "request delayed past timeout",
            MarkKind::Partition => "lost to a partition",
            MarkKind::Refused => "refused (callee down)",
            MarkKind::Timeout => "caller timed out",
            MarkKind::NoServer => "no server",
            MarkKind::Injected => "brown-out injected",
            MarkKind::Late => "arrived after caller gave up",
            MarkKind::Crash => "crash",
            MarkKind::Restart => "restart",
            MarkKind::Pause => "pause",
            MarkKind::Resume => "resume",
            MarkKind::DiskCrash => "unsynced writes lost",
            MarkKind::Recover => "coordinator recovery",
            MarkKind::Notify => "saga status",
            MarkKind::StepCall => "step call",
            MarkKind::OutcomeApplied => "outcome: applied",
            MarkKind::OutcomeFound => "reconcile: found",
            MarkKind::OutcomeNotFound => "reconcile: not found",
            MarkKind::OutcomeTransient => "outcome: transient",
            MarkKind::OutcomeUnknown => "outcome: unknown",
            MarkKind::OutcomeRejected => "outcome: rejected",
            MarkKind::ToolCall => "agent tool call",
            MarkKind::ToolAnswer => "agent got an answer",
            MarkKind::ToolGiveUp => "agent gave up",
            MarkKind::Fsync => "fsync",
            MarkKind::Other => "other event",
        }
    }

    pub fn group(self) -> Group {
        use MarkKind::*;
        match self {
            DropRequest | DropReply | Duplicate | Delay | DelayPastTimeout | Partition
            | Refused | Timeout | NoServer | Injected | Late | Crash | Restart | Pause | Resume
            | DiskCrash => Group::Fault,
            Recover | Notify | StepCall | OutcomeApplied | OutcomeFound | OutcomeNotFound
            | OutcomeTransient | OutcomeUnknown | OutcomeRejected | ToolCall | ToolAnswer
            | ToolGiveUp => Group::State,
            Fsync | Other => Group::Plain,
        }
    }

    pub fn shape(self) -> Shape {
        use MarkKind::*;
        match self {
            DropRequest | DropReply | Partition | NoServer | ToolGiveUp => Shape::Cross,
            Timeout | Late => Shape::Ring,
            Refused | Crash | DiskCrash => Shape::Square,
            Duplicate => Shape::Dot,
            Delay | DelayPastTimeout | Resume => Shape::TriRight,
            Injected => Shape::TriDown,
            Restart => Shape::TriUp,
            Pause => Shape::Bars,
            Recover | Notify | ToolAnswer => Shape::Diamond,
            OutcomeApplied | OutcomeFound | OutcomeNotFound | OutcomeTransient | OutcomeUnknown
            | OutcomeRejected => Shape::Dot,
            StepCall | ToolCall | Fsync | Other => Shape::Tick,
        }
    }
}

/// One mark. `toward` places it part of the way to another lane (the ✕ at
/// the end of a lost message's stub).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    pub kind: MarkKind,
    pub lane: usize,
    pub toward: Option<usize>,
    pub t_us: u64,
    pub title: String,
    /// A short label drawn next to the mark (saga status changes).
    pub label: Option<String>,
}

/// What a band shades.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum BandKind {
    Down,
    Paused,
    Partition,
    Brownout,
}

impl BandKind {
    pub fn class(self) -> &'static str {
        match self {
            BandKind::Down => "down",
            BandKind::Paused => "paused",
            BandKind::Partition => "partition",
            BandKind::Brownout => "brownout",
        }
    }
}

/// A shaded interval of one lane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Band {
    pub kind: BandKind,
    pub lane: usize,
    pub t0_us: u64,
    pub t1_us: u64,
    pub title: String,
}

/// A vertical line across every lane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// `heal` or `violation`.
    pub class: &'static str,
    pub t_us: u64,
    pub label: String,
    pub title: String,
}

/// The whole picture of one run, before any thinning.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    pub lanes: Vec<String>,
    pub arrows: Vec<Arrow>,
    pub marks: Vec<Mark>,
    pub bands: Vec<Band>,
    pub rules: Vec<Rule>,
    /// End of the safety phase and of the run.
    pub safety_end_us: u64,
    pub end_us: u64,
    /// Events whose text did not parse as expected (drawn as plain marks).
    pub unparsed: u64,
}

// ---- parsing the event texts ------------------------------------------

/// `#12…` -> (12, rest after the digits).
fn hash_index(s: &str) -> Option<(u32, &str)> {
    let s = s.strip_prefix('#')?;
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    Some((s[..end].parse().ok()?, &s[end..]))
}

/// A node name: up to the next space (node names have none).
fn word(s: &str) -> (&str, &str) {
    match s.find(' ') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// `-> name #i …` (send, drop-request, duplicate, delay, reply) or
/// `<- name #i …` (recv).
fn arrow_text<'t>(text: &'t str, prefix: &str) -> Option<(&'t str, u32, &'t str)> {
    let (name, rest) = word(text.strip_prefix(prefix)?);
    let (i, rest) = hash_index(rest.strip_prefix(' ')?)?;
    Some((name, i, rest))
}

/// `name #i …` (refused, timeout).
fn name_index(text: &str) -> Option<(&str, u32)> {
    let (name, rest) = word(text);
    let (i, _) = hash_index(rest.strip_prefix(' ')?)?;
    Some((name, i))
}

/// `#i from name…` (deliver) -> (i, name, tail).
fn deliver_text(text: &str) -> Option<(u32, &str, &str)> {
    let (i, rest) = hash_index(text)?;
    let (name, tail) = word(rest.strip_prefix(" from ")?);
    Some((i, name, tail))
}

/// `#i to name …` (drop-reply).
fn drop_reply_text(text: &str) -> Option<(u32, &str)> {
    let (i, rest) = hash_index(text)?;
    let (name, _) = word(rest.strip_prefix(" to ")?);
    Some((i, name))
}

/// `request #i from name …` / `reply #i to name …` (partition, no-server)
/// -> (is_request, i, name).
fn lost_text(text: &str) -> Option<(bool, u32, &str)> {
    if let Some(rest) = text.strip_prefix("request ") {
        let (i, rest) = hash_index(rest)?;
        let (name, _) = word(rest.strip_prefix(" from ")?);
        Some((true, i, name))
    } else {
        let rest = text.strip_prefix("reply ")?;
        let (i, rest) = hash_index(rest)?;
        let (name, _) = word(rest.strip_prefix(" to ")?);
        Some((false, i, name))
    }
}

/// The outcome word of a `step-outcome` text (`saga step Op: Word {…}`).
fn outcome_kind(text: &str) -> MarkKind {
    let word = text
        .split_once(": ")
        .map(|(_, o)| o.split([' ', '{']).next().unwrap_or(""))
        .unwrap_or("");
    match word {
        "Applied" => MarkKind::OutcomeApplied,
        "Found" => MarkKind::OutcomeFound,
        "NotFound" => MarkKind::OutcomeNotFound,
        "Transient" => MarkKind::OutcomeTransient,
        "Unknown" => MarkKind::OutcomeUnknown,
        "Rejected" => MarkKind::OutcomeRejected,
        _ => MarkKind::Other,
    }
}

/// The short label of a `notify` text (`res-1: Running { step: "x", … }`).
fn notify_label(text: &str) -> String {
    let (key, status) = text.split_once(": ").unwrap_or(("", text));
    let word = status.split([' ', '{']).next().unwrap_or(status);
    let step = status
        .split_once("step: \"")
        .and_then(|(_, r)| r.split_once('"'))
        .map(|(s, _)| s);
    match step {
        Some(step) => format!("{key} {word} {step}"),
        None => format!("{key} {word}"),
    }
}

/// The title of an event: when, where, what.
fn title_of(e: &TraceEvent) -> String {
    format!(
        "{} {} {}: {}",
        super::fmt_us(e.t_us),
        e.node,
        e.kind,
        e.text
    )
}

type CallKey = (usize, usize, u32);

struct Builder {
    t: Timeline,
    lane_of: BTreeMap<String, usize>,
    /// Open sends by (caller, callee, index): time, title, style.
    sends: BTreeMap<CallKey, (u64, String, Style)>,
    /// Replies not yet received, by (caller, callee, index).
    replies: BTreeMap<CallKey, VecDeque<(u64, String)>>,
    /// Since when a node is down / paused.
    down_since: BTreeMap<usize, u64>,
    paused_since: BTreeMap<usize, u64>,
}

impl Builder {
    /// The lane of a node name; `coordinator/disk` is the coordinator's.
    /// Unknown names get a lane of their own at the end.
    fn lane(&mut self, node: &str) -> usize {
        let node = node.split('/').next().unwrap_or(node);
        if let Some(&l) = self.lane_of.get(node) {
            return l;
        }
        let l = self.t.lanes.len();
        self.t.lanes.push(node.to_string());
        self.lane_of.insert(node.to_string(), l);
        l
    }

    fn mark(&mut self, kind: MarkKind, lane: usize, e: &TraceEvent) {
        self.t.marks.push(Mark {
            kind,
            lane,
            toward: None,
            t_us: e.t_us,
            title: title_of(e),
            label: None,
        });
    }

    /// A stub from the open send of `key` that ends at `e` with an ✕.
    fn lost_request(&mut self, kind: MarkKind, key: CallKey, e: &TraceEvent) {
        let (t0, send_title) = match self.sends.get(&key) {
            Some((t0, title, _)) => (*t0, title.clone()),
            None => (e.t_us, String::new()),
        };
        self.t.arrows.push(Arrow {
            dir: Dir::Request,
            style: Style::Lost,
            from_lane: key.0,
            to_lane: key.1,
            t0_us: t0,
            t1_us: e.t_us,
            title: format!("{send_title}\n{}", title_of(e)),
        });
        self.t.marks.push(Mark {
            kind,
            lane: key.0,
            toward: Some(key.1),
            t_us: e.t_us,
            title: title_of(e),
            label: None,
        });
    }

    /// A stub from the callee at `t0` towards the caller, ending at `e`.
    fn lost_reply(&mut self, kind: MarkKind, key: CallKey, t0: u64, first: String, e: &TraceEvent) {
        self.t.arrows.push(Arrow {
            dir: Dir::Reply,
            style: Style::Lost,
            from_lane: key.1,
            to_lane: key.0,
            t0_us: t0,
            t1_us: e.t_us,
            title: if first.is_empty() {
                title_of(e)
            } else {
                format!("{first}\n{}", title_of(e))
            },
        });
        self.t.marks.push(Mark {
            kind,
            lane: key.1,
            toward: Some(key.0),
            t_us: e.t_us,
            title: title_of(e),
            label: None,
        });
    }

    fn event(&mut self, e: &TraceEvent) {
        // The supervisor's events name their node in the text, or are
        // global: they get no lane of their own.
        if e.node == "world" && self.world_event(e) {
            return;
        }
        let here = self.lane(&e.node);
        let parsed = match e.kind.as_str() {
            "send" => arrow_text(&e.text, "-> ").map(|(to, i, _)| {
                let to = self.lane(to);
                self.sends
                    .insert((here, to, i), (e.t_us, title_of(e), Style::Normal));
            }),
            "drop-request" => arrow_text(&e.text, "-> ").map(|(to, i, _)| {
                let to = self.lane(to);
                self.lost_request(MarkKind::DropRequest, (here, to, i), e);
            }),
            "duplicate" | "delay" => arrow_text(&e.text, "-> ").map(|(to, i, _)| {
                let to = self.lane(to);
                let (kind, style) = match e.kind.as_str() {
                    "duplicate" => (MarkKind::Duplicate, Style::Normal),
                    _ if e.text.contains("past timeout") => {
                        (MarkKind::DelayPastTimeout, Style::Delayed)
                    }
                    _ => (MarkKind::Delay, Style::Delayed),
                };
                if let Some(send) = self.sends.get_mut(&(here, to, i)) {
                    send.2 = style;
                }
                self.mark(kind, here, e);
            }),
            "refused" => name_index(&e.text).map(|(to, i)| {
                let to = self.lane(to);
                self.lost_request(MarkKind::Refused, (here, to, i), e);
            }),
            "timeout" => name_index(&e.text).map(|_| self.mark(MarkKind::Timeout, here, e)),
            "deliver" => deliver_text(&e.text).map(|(i, from, tail)| {
                let from = self.lane(from);
                let key = (from, here, i);
                let injected = tail.contains("injected=");
                let late = tail.contains("late");
                let copy = tail.contains("duplicate");
                let (t0, send_title, send_style) =
                    self.sends
                        .get(&key)
                        .cloned()
                        .unwrap_or((e.t_us, String::new(), Style::Normal));
                let style = if injected {
                    Style::Injected
                } else if late {
                    Style::Late
                } else if copy {
                    Style::Duplicate
                } else {
                    send_style
                };
                self.t.arrows.push(Arrow {
                    dir: Dir::Request,
                    style,
                    from_lane: from,
                    to_lane: here,
                    t0_us: t0,
                    t1_us: e.t_us,
                    title: format!("{send_title}\n{}", title_of(e)),
                });
                if injected {
                    self.mark(MarkKind::Injected, here, e);
                }
                if late {
                    self.mark(MarkKind::Late, here, e);
                }
            }),
            "reply" => arrow_text(&e.text, "-> ").map(|(to, i, _)| {
                let caller = self.lane(to);
                self.replies
                    .entry((caller, here, i))
                    .or_default()
                    .push_back((e.t_us, title_of(e)));
            }),
            "recv" => arrow_text(&e.text, "<- ").map(|(callee, i, _)| {
                let callee = self.lane(callee);
                let key = (here, callee, i);
                let (t0, reply_title) = self
                    .replies
                    .get_mut(&key)
                    .and_then(VecDeque::pop_front)
                    .unwrap_or((e.t_us, String::new()));
                self.t.arrows.push(Arrow {
                    dir: Dir::Reply,
                    style: Style::Normal,
                    from_lane: callee,
                    to_lane: here,
                    t0_us: t0,
                    t1_us: e.t_us,
                    title: format!("{reply_title}\n{}", title_of(e)),
                });
            }),
            "drop-reply" => drop_reply_text(&e.text).map(|(i, caller)| {
                let caller = self.lane(caller);
                self.lost_reply(
                    MarkKind::DropReply,
                    (caller, here, i),
                    e.t_us,
                    String::new(),
                    e,
                );
            }),
            "partition" | "no-server" => lost_text(&e.text).map(|(request, i, other)| {
                let other = self.lane(other);
                let kind = if e.kind == "partition" {
                    MarkKind::Partition
                } else {
                    MarkKind::NoServer
                };
                if request {
                    self.lost_request(kind, (other, here, i), e);
                } else {
                    let key = (other, here, i);
                    let (t0, first) = self
                        .replies
                        .get_mut(&key)
                        .and_then(VecDeque::pop_front)
                        .unwrap_or((e.t_us, String::new()));
                    self.lost_reply(kind, key, t0, first, e);
                }
            }),
            kind => {
                let mark = match kind {
                    "disk-crash" => MarkKind::DiskCrash,
                    "recover" => MarkKind::Recover,
                    "notify" => MarkKind::Notify,
                    "step-call" => MarkKind::StepCall,
                    "step-outcome" => outcome_kind(&e.text),
                    "tool-call" => MarkKind::ToolCall,
                    "tool-answer" => MarkKind::ToolAnswer,
                    "tool-give-up" => MarkKind::ToolGiveUp,
                    "fsync" => MarkKind::Fsync,
                    _ => MarkKind::Other,
                };
                self.mark(mark, here, e);
                if mark == MarkKind::Notify {
                    if let Some(m) = self.t.marks.last_mut() {
                        m.label = Some(notify_label(&e.text));
                    }
                }
                Some(())
            }
        };
        if parsed.is_none() {
            self.t.unparsed += 1;
            self.mark(MarkKind::Other, here, e);
        }
    }

    /// A `world` event: crash/restart/pause/resume of the node its text
    /// names, `heal`, `end`. False if it is none of these.
    fn world_event(&mut self, e: &TraceEvent) -> bool {
        match e.kind.as_str() {
            "crash" | "restart" | "pause" | "resume" => {
                let lane = self.lane(e.text.trim());
                let kind = match e.kind.as_str() {
                    "crash" => {
                        self.down_since.insert(lane, e.t_us);
                        self.paused_since.remove(&lane);
                        MarkKind::Crash
                    }
                    "restart" => {
                        if let Some(t0) = self.down_since.remove(&lane) {
                            self.band(BandKind::Down, lane, t0, e.t_us, "down (crashed)");
                        }
                        MarkKind::Restart
                    }
                    "pause" => {
                        self.paused_since.insert(lane, e.t_us);
                        MarkKind::Pause
                    }
                    _ => {
                        if let Some(t0) = self.paused_since.remove(&lane) {
                            self.band(BandKind::Paused, lane, t0, e.t_us, "paused");
                        }
                        MarkKind::Resume
                    }
                };
                self.mark(kind, lane, e);
                true
            }
            "heal" => {
                self.t.rules.push(Rule {
                    class: "heal",
                    t_us: e.t_us,
                    label: "faults off".into(),
                    title: title_of(e),
                });
                true
            }
            "end" => true,
            _ => false,
        }
    }

    fn band(&mut self, kind: BandKind, lane: usize, t0_us: u64, t1_us: u64, title: &str) {
        self.t.bands.push(Band {
            kind,
            lane,
            t0_us,
            t1_us,
            title: format!(
                "{} {title} from {} to {}",
                self.t.lanes[lane],
                super::fmt_us(t0_us),
                super::fmt_us(t1_us)
            ),
        });
    }
}

impl Timeline {
    /// Read `trace` (and the plan's windows, and the verdict's violations)
    /// onto `lanes`; nodes the trace names that are not in `lanes` get a
    /// lane of their own after them.
    pub fn build(
        lanes: &[String],
        trace: &Trace,
        plan: &FaultPlan,
        verdict: &Verdict,
        safety_end_ms: u64,
        end_ms: u64,
    ) -> Timeline {
        let mut b = Builder {
            t: Timeline {
                lanes: Vec::new(),
                safety_end_us: safety_end_ms.saturating_mul(1000),
                ..Timeline::default()
            },
            lane_of: BTreeMap::new(),
            sends: BTreeMap::new(),
            replies: BTreeMap::new(),
            down_since: BTreeMap::new(),
            paused_since: BTreeMap::new(),
        };
        for l in lanes {
            b.lane(l);
        }
        for e in &trace.events {
            b.event(e);
        }
        let last_us = trace.events.last().map_or(0, |e| e.t_us);
        let end_us = end_ms.saturating_mul(1000).max(last_us);
        b.t.end_us = end_us;

        // Nodes still down or paused at the end; replies nobody took.
        for (lane, t0) in std::mem::take(&mut b.down_since) {
            b.band(BandKind::Down, lane, t0, end_us, "down (crashed)");
        }
        for (lane, t0) in std::mem::take(&mut b.paused_since) {
            b.band(BandKind::Paused, lane, t0, end_us, "paused");
        }
        for ((caller, callee, _), queue) in std::mem::take(&mut b.replies) {
            for (t0, title) in queue {
                b.t.arrows.push(Arrow {
                    dir: Dir::Reply,
                    style: Style::Orphan,
                    from_lane: callee,
                    to_lane: caller,
                    t0_us: t0,
                    t1_us: t0,
                    title: format!("{title}\n(no one received this reply: its caller had given up, or it answered a duplicate)"),
                });
            }
        }

        // The plan's windows, while faults act.
        let clip = |from_ms: u64, until_ms: u64| {
            let t0 = from_ms.saturating_mul(1000);
            let t1 = until_ms.saturating_mul(1000).min(b.t.safety_end_us);
            (t0 < t1).then_some((t0, t1))
        };
        let mut windows = Vec::new();
        for p in &plan.partitions {
            if let Some((t0, t1)) = clip(p.from_ms, p.until_ms) {
                let title = format!("partition {} / {}", p.a, p.b);
                windows.push((BandKind::Partition, p.a.clone(), t0, t1, title.clone()));
                windows.push((BandKind::Partition, p.b.clone(), t0, t1, title));
            }
        }
        for w in &plan.brownouts {
            if let Some((t0, t1)) = clip(w.from_ms, w.until_ms) {
                let title = format!(
                    "brown-out of {}: {:?} on {}‰ of requests",
                    w.service, w.fault, w.permille
                );
                windows.push((BandKind::Brownout, w.service.clone(), t0, t1, title));
            }
        }
        for (kind, node, t0, t1, title) in windows {
            let lane = b.lane(&node);
            b.band(kind, lane, t0, t1, &title);
        }

        for (n, v) in verdict.all().enumerate() {
            b.t.rules.push(Rule {
                class: "violation",
                t_us: v.at_ms.saturating_mul(1000),
                label: format!("V{}", n + 1),
                title: format!("V{}: {v}", n + 1),
            });
        }

        let t = b.t;
        debug_assert!(t.arrows.iter().all(|a| a.t0_us <= a.t1_us || a.is_stub()));
        debug_assert!(t
            .marks
            .iter()
            .all(|m| m.lane < t.lanes.len() && m.toward.is_none_or(|l| l < t.lanes.len())));
        t
    }

    /// How many marks of each kind, in [`MarkKind::ALL`] order, zeros
    /// included.
    pub fn counts(&self) -> Vec<(MarkKind, u64)> {
        let mut n: BTreeMap<MarkKind, u64> = BTreeMap::new();
        for m in &self.marks {
            *n.entry(m.kind).or_default() += 1;
        }
        MarkKind::ALL
            .iter()
            .map(|k| (*k, n.get(k).copied().unwrap_or(0)))
            .collect()
    }

    /// Every instant something is drawn at, sorted, without repeats.
    pub fn instants(&self) -> Vec<u64> {
        let mut ts: Vec<u64> = Vec::with_capacity(self.marks.len() + 2 * self.arrows.len() + 2);
        ts.push(0);
        ts.push(self.end_us);
        ts.extend(self.marks.iter().map(|m| m.t_us));
        ts.extend(self.arrows.iter().flat_map(|a| [a.t0_us, a.t1_us]));
        ts.extend(self.rules.iter().map(|r| r.t_us.min(self.end_us)));
        ts.sort_unstable();
        ts.dedup();
        ts
    }
}

// ---- the time scale ---------------------------------------------------

/// Idle stretches longer than this are drawn as a fixed-width break.
pub const GAP_US: u64 = 2_000_000;
/// Width of a break.
pub const GAP_PX: f64 = 44.0;
/// Distinct instants at least 1 ms apart are at least this far apart.
pub const MIN_STEP_PX: f64 = 3.0;
/// The width the active (uncompressed) time aims at.
pub const TARGET_PX: f64 = 1000.0;
/// The widest a timeline gets; past it the minimum step shrinks.
pub const MAX_WIDTH_PX: f64 = 30_000.0;

/// A compressed idle stretch.
#[derive(Clone, Debug, PartialEq)]
pub struct Gap {
    pub t0_us: u64,
    pub t1_us: u64,
    pub x0: f64,
    pub x1: f64,
}

/// Simulated time -> x, piecewise linear through one knot per instant.
#[derive(Clone, Debug)]
pub struct Scale {
    knots: Vec<(u64, f64)>,
    pub gaps: Vec<Gap>,
    /// Pixels per millisecond of active time.
    pub px_per_ms: f64,
    pub min_step_px: f64,
    pub width: f64,
    /// Milliseconds of time outside the gaps.
    pub active_ms: u64,
}

impl Scale {
    /// A scale through `instants` (sorted, distinct, non-empty).
    pub fn new(instants: &[u64]) -> Scale {
        assert!(!instants.is_empty(), "a scale needs an instant");
        debug_assert!(instants.windows(2).all(|w| w[0] < w[1]));
        let steps = || instants.windows(2).map(|w| w[1] - w[0]);
        let active_us: u64 = steps().filter(|d| *d <= GAP_US).sum();
        let px_per_ms = (TARGET_PX / (active_us.max(1) as f64 / 1000.0)).clamp(0.01, 2.0);
        let gaps_n = steps().filter(|d| *d > GAP_US).count() as f64;
        let spaced_n = steps().filter(|d| *d >= 1000 && *d <= GAP_US).count() as f64;
        let room = MAX_WIDTH_PX - TARGET_PX - gaps_n * GAP_PX;
        let min_step_px = if spaced_n > 0.0 {
            MIN_STEP_PX.min((room / spaced_n).max(0.0))
        } else {
            MIN_STEP_PX
        };
        let mut knots = Vec::with_capacity(instants.len());
        let mut gaps = Vec::new();
        let mut x = 0.0f64;
        knots.push((instants[0], x));
        for w in instants.windows(2) {
            let d = w[1] - w[0];
            let x0 = x;
            if d > GAP_US {
                x += GAP_PX;
                gaps.push(Gap {
                    t0_us: w[0],
                    t1_us: w[1],
                    x0,
                    x1: x,
                });
            } else {
                let linear = d as f64 / 1000.0 * px_per_ms;
                x += if d >= 1000 {
                    linear.max(min_step_px)
                } else {
                    linear
                };
            }
            knots.push((w[1], x));
        }
        Scale {
            knots,
            gaps,
            px_per_ms,
            min_step_px,
            width: x,
            active_ms: active_us / 1000,
        }
    }

    /// x of `t_us` (clamped to the first and last instant).
    pub fn x(&self, t_us: u64) -> f64 {
        let i = self.knots.partition_point(|k| k.0 <= t_us);
        if i == 0 {
            return self.knots[0].1;
        }
        if i == self.knots.len() {
            return self.knots[i - 1].1;
        }
        let (ta, xa) = self.knots[i - 1];
        let (tb, xb) = self.knots[i];
        xa + (xb - xa) * ((t_us - ta) as f64 / (tb - ta) as f64)
    }

    /// Pixels per millisecond actually drawn outside the gaps, on average
    /// (at least `px_per_ms`; more where the minimum step stretches).
    pub fn density(&self) -> f64 {
        let drawn_px = self.width - GAP_PX * self.gaps.len() as f64;
        (drawn_px / self.active_ms.max(1) as f64).max(self.px_per_ms)
    }

    /// Whether `t_us` falls strictly inside a compressed gap.
    pub fn in_gap(&self, t_us: u64) -> bool {
        let i = self.gaps.partition_point(|g| g.t1_us <= t_us);
        self.gaps.get(i).is_some_and(|g| g.t0_us < t_us)
    }

    /// Axis ticks: round times (ms) at least ~90 px apart, none inside a
    /// gap, none closer than 70 px to the previous one.
    pub fn ticks(&self, end_us: u64) -> Vec<(u64, f64)> {
        const STEPS_MS: [u64; 19] = [
            1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 30_000,
            60_000, 120_000, 300_000, 600_000,
        ];
        let end_ms = end_us / 1000;
        // The minimum step stretches busy stretches: pick the step from the
        // drawn density, not the nominal one.
        let density = self.density();
        let step = STEPS_MS
            .iter()
            .copied()
            .find(|s| *s as f64 * density >= 90.0 && end_ms / *s <= 20_000)
            .unwrap_or(3_600_000);
        let mut out: Vec<(u64, f64)> = Vec::new();
        let mut t = 0u64;
        while t <= end_ms {
            let t_us = t * 1000;
            if !self.in_gap(t_us) {
                let x = self.x(t_us);
                if out.last().is_none_or(|(_, lx)| x - lx >= 70.0) {
                    out.push((t, x));
                }
            }
            t += step;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t_us: u64, node: &str, kind: &str, text: &str) -> TraceEvent {
        TraceEvent {
            t_us,
            node: node.into(),
            kind: kind.into(),
            text: text.into(),
        }
    }

    fn lanes() -> Vec<String> {
        ["coordinator", "stripe", "salesforce", "agent-1"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn build(events: Vec<TraceEvent>) -> Timeline {
        let trace = Trace {
            len: events.len() as u64,
            events,
            hash: 0,
        };
        Timeline::build(
            &lanes(),
            &trace,
            &FaultPlan::default(),
            &Verdict::default(),
            100,
            100,
        )
    }

    #[test]
    fn request_and_reply_arrows_match_by_link_and_index() {
        let t = build(vec![
            ev(1_000, "coordinator", "send", "-> stripe #0 Stripe(..)"),
            ev(
                1_500,
                "coordinator",
                "send",
                "-> salesforce #0 Salesforce(..)",
            ),
            ev(2_000, "salesforce", "deliver", "#0 from coordinator"),
            ev(3_000, "stripe", "deliver", "#0 from coordinator"),
            ev(9_000, "stripe", "reply", "-> coordinator #0 Stripe(ok)"),
            ev(9_500, "coordinator", "recv", "<- stripe #0 Stripe(ok)"),
        ]);
        let got: Vec<_> = t
            .arrows
            .iter()
            .map(|a| (a.dir, a.from_lane, a.to_lane, a.t0_us, a.t1_us, a.style))
            .collect();
        assert_eq!(
            got,
            vec![
                (Dir::Request, 0, 2, 1_500, 2_000, Style::Normal),
                (Dir::Request, 0, 1, 1_000, 3_000, Style::Normal),
                (Dir::Reply, 1, 0, 9_000, 9_500, Style::Normal),
            ]
        );
        assert_eq!(t.unparsed, 0);
        assert!(t.marks.is_empty());
    }

    #[test]
    fn faults_become_marks_stubs_and_bands() {
        let t = build(vec![
            ev(1_000, "coordinator", "send", "-> stripe #0 X"),
            ev(1_000, "coordinator", "drop-request", "-> stripe #0"),
            ev(2_000, "coordinator", "send", "-> stripe #1 X"),
            ev(
                2_000,
                "coordinator",
                "duplicate",
                "-> stripe #1 copy after +5ms",
            ),
            ev(3_000, "stripe", "deliver", "#1 from coordinator"),
            ev(
                8_000,
                "stripe",
                "deliver",
                "#1 from coordinator (duplicate)",
            ),
            ev(
                9_000,
                "stripe",
                "drop-reply",
                "#1 to coordinator lost after apply: Y",
            ),
            ev(9_500, "stripe", "reply", "-> coordinator #1 Y"),
            ev(10_000, "world", "crash", "salesforce"),
            ev(12_000, "coordinator", "send", "-> salesforce #0 X"),
            ev(13_000, "coordinator", "refused", "salesforce #0 is down"),
            ev(20_000, "world", "restart", "salesforce"),
            ev(21_000, "coordinator", "timeout", "stripe #1 after 5000ms"),
            ev(
                22_000,
                "salesforce",
                "deliver",
                "#1 from coordinator injected=Throttle",
            ),
            ev(23_000, "coordinator/disk", "fsync", "1 record(s) durable"),
            ev(
                24_000,
                "coordinator",
                "notify",
                "res-1: Running { step: \"charge\", phase: Forward }",
            ),
            ev(
                25_000,
                "coordinator",
                "step-outcome",
                "saga-res-1 charge Action: Unknown { reason: \"timeout\" }",
            ),
        ]);
        let count = |k: MarkKind| t.marks.iter().filter(|m| m.kind == k).count();
        assert_eq!(count(MarkKind::DropRequest), 1);
        assert_eq!(count(MarkKind::Duplicate), 1);
        assert_eq!(count(MarkKind::DropReply), 1);
        assert_eq!(count(MarkKind::Crash), 1);
        assert_eq!(count(MarkKind::Restart), 1);
        assert_eq!(count(MarkKind::Refused), 1);
        assert_eq!(count(MarkKind::Timeout), 1);
        assert_eq!(count(MarkKind::Injected), 1);
        assert_eq!(count(MarkKind::Fsync), 1);
        assert_eq!(count(MarkKind::OutcomeUnknown), 1);
        let notify = t.marks.iter().find(|m| m.kind == MarkKind::Notify).unwrap();
        assert_eq!(notify.label.as_deref(), Some("res-1 Running charge"));
        let styles: Vec<_> = t.arrows.iter().map(|a| (a.dir, a.style)).collect();
        assert_eq!(
            styles,
            vec![
                (Dir::Request, Style::Lost),      // dropped
                (Dir::Request, Style::Normal),    // first copy
                (Dir::Request, Style::Duplicate), // second copy
                (Dir::Reply, Style::Lost),        // reply dropped after apply
                (Dir::Request, Style::Lost),      // refused
                (Dir::Request, Style::Injected),  // no send seen: starts at deliver
                (Dir::Reply, Style::Orphan),      // the copy's reply, never received
            ]
        );
        assert_eq!(t.bands.len(), 1);
        assert_eq!(t.bands[0].kind, BandKind::Down);
        assert_eq!((t.bands[0].t0_us, t.bands[0].t1_us), (10_000, 20_000));
        assert_eq!(
            t.lanes,
            lanes(),
            "disk events live on the coordinator's lane"
        );
        assert_eq!(t.unparsed, 0);
    }

    #[test]
    fn unknown_nodes_get_a_lane_and_bad_texts_are_counted() {
        let t = build(vec![
            ev(1_000, "pms-2", "send", "-> stripe #0 X"),
            ev(2_000, "coordinator", "send", "garbage"),
        ]);
        assert_eq!(t.lanes.last().map(String::as_str), Some("pms-2"));
        assert_eq!(t.unparsed, 1);
        assert_eq!(t.marks[0].kind, MarkKind::Other);
    }

    #[test]
    fn scale_compresses_idle_gaps_and_stays_monotone() {
        let s = Scale::new(&[0, 1_000, 1_000_000, 40_000_000, 41_000_000]);
        assert_eq!(s.gaps.len(), 1, "only the 39 s stretch is idle enough");
        let g = &s.gaps[0];
        assert_eq!((g.t0_us, g.t1_us), (1_000_000, 40_000_000));
        assert!((g.x1 - g.x0 - GAP_PX).abs() < 1e-9);
        assert!(s.in_gap(20_000_000) && !s.in_gap(40_000_000));
        let xs: Vec<f64> = (0..=41).map(|k| s.x(k * 1_000_000)).collect();
        assert!(xs.windows(2).all(|w| w[0] <= w[1]), "{xs:?}");
        assert!((s.x(41_000_000) - s.width).abs() < 1e-9);
        let ticks = s.ticks(41_000_000);
        assert!(ticks.iter().all(|(t, _)| !s.in_gap(t * 1000)));
        assert!(ticks.windows(2).all(|w| w[1].1 - w[0].1 >= 70.0));
    }
}
