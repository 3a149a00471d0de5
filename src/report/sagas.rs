//! The per-saga view of one run: a swim lane per business key (one colour
//! each) holding that checkout's key events as short labelled chips that
//! read without hovering — the agent's calls and answers, and the steps
//! with their outcomes (`hold_room: applied`, `charge: rejected — stripe
//! 402 CardDeclined`) or, for a coordinator that does not report steps,
//! each service call it made for the key with what came back (`charge →
//! 200`, `upsert Booking__c → timeout`). A violation is marked on the
//! chip where it happened (the key's last event at or before the
//! violation's time) and linked to the faults and failures of the same key
//! that led there. A summary table gives per saga the steps, the answer,
//! the time, and the final state in each service.
//!
//! Everything shown is in plain words: [`plain`] turns `Debug` text
//! (`Compensated { reason: "x" }`, `Some(RateLimit)`) into `Compensated:
//! x`, `RateLimit`.
//!
//! Not here: the node timeline (`timeline.rs`, `svg.rs`); judging
//! (`check`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{clip, escape, fmt_ms, Report};
use crate::check::truth::{owner_of, Truth};
use crate::saga::SagaStatus;
use crate::trace::TraceEvent;

/// Most chips drawn in one lane (the rest are counted).
pub const MAX_CHIPS_PER_LANE: usize = 120;
/// Most characters of a chip's text.
const CHIP_CHARS: usize = 64;
/// One colour per business key, cycling.
const KEY_COLOURS: [&str; 8] = [
    "#0969da", "#bf3989", "#1a7f37", "#9a6700", "#8250df", "#0a7ea4", "#bc4c00", "#57606a",
];

/// How a chip reads: its class in the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tone {
    /// The agent asked.
    Agent,
    /// Applied, found, 2xx, completed.
    Ok,
    /// Rejected, 4xx, compensated.
    Fail,
    /// A timeout, 5xx, 429, unknown: a fault or its effect.
    Fault,
}

impl Tone {
    fn class(self) -> &'static str {
        match self {
            Tone::Agent => "agent",
            Tone::Ok => "ok",
            Tone::Fail => "fail",
            Tone::Fault => "fault",
        }
    }
}

/// One key event of a saga.
#[derive(Clone, Debug)]
pub(crate) struct Chip {
    pub t_us: u64,
    pub text: String,
    pub tone: Tone,
}

/// One business key's lane.
#[derive(Clone, Debug)]
pub(crate) struct Lane {
    pub key: String,
    pub colour: &'static str,
    pub chips: Vec<Chip>,
}

/// `Debug` text in plain words: `Some(x)` → `x`, `Name { a: 1, b: "x" }`
/// → `Name: a 1, b x`, quotes and escapes dropped, `None` kept as a word.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Closing brackets to skip (an unwrapped `Some(`).
    let mut skip_close: Vec<bool> = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    if n != '"' {
                        out.push(n);
                    }
                }
            }
            '"' => {}
            '(' if out.ends_with("Some") => {
                out.truncate(out.len() - 4);
                skip_close.push(true);
            }
            '(' | '[' => {
                out.push(c);
                skip_close.push(false);
            }
            ')' | ']' => {
                if skip_close.pop() != Some(true) {
                    out.push(c);
                }
            }
            '{' => {
                // `Name { ` → `Name: `; a bare `{` (a map) → `(`.
                if out.ends_with(' ') {
                    out.pop();
                }
                if out.ends_with(|p: char| p.is_alphanumeric() || p == '_') {
                    out.push(':');
                } else {
                    out.push('(');
                    skip_close.push(false);
                    continue;
                }
                skip_close.push(true);
            }
            '}' => {
                while out.ends_with(' ') {
                    out.pop();
                }
                if skip_close.pop() == Some(false) {
                    out.push(')');
                }
            }
            ':' if chars.peek() == Some(&' ') => {
                // `reason: x` → `reason x`
                out.push(':');
            }
            _ => out.push(c),
        }
    }
    let mut s = out.replace(": :", ":").replace("::", ":");
    while s.contains("  ") {
        s = s.replace("  ", " ");
    }
    s.trim().to_string()
}

/// A saga status in plain words: `completed`, `compensated: reason`.
pub fn status_words(s: &SagaStatus) -> String {
    match s {
        SagaStatus::Running { step, .. } => format!("still running ({step})"),
        SagaStatus::Completed => "completed".into(),
        SagaStatus::Compensated { reason } => format!("compensated: {}", plain(reason)),
        SagaStatus::NeedsOperator { reason } => format!("needs an operator: {}", plain(reason)),
        SagaStatus::Rejected { reason } => format!("rejected: {}", plain(reason)),
    }
}

fn status_tone(s: &SagaStatus) -> Tone {
    match s {
        SagaStatus::Completed => Tone::Ok,
        SagaStatus::Running { .. } | SagaStatus::NeedsOperator { .. } => Tone::Fault,
        _ => Tone::Fail,
    }
}

/// The business key a coordinator's event text names, by the attribution
/// contract (`saga-K…`, `"K"`) or through an id the services gave it
/// (`hold-N`, `pi_…`).
struct Attribution<'a> {
    keys: std::collections::BTreeSet<&'a str>,
    by_id: BTreeMap<String, String>,
}

impl<'a> Attribution<'a> {
    fn new(r: &'a Report<'_>) -> Attribution<'a> {
        let out = r.outcome;
        let keys: std::collections::BTreeSet<&str> =
            out.agents.iter().map(|a| a.business_key.as_str()).collect();
        let mut by_id = BTreeMap::new();
        for h in out.inventory.holds.values() {
            if let Some(k) = h.client_ref.as_deref().and_then(|c| owner_of(c, &keys)) {
                by_id.insert(h.id.clone(), k.to_string());
            }
        }
        for pi in out.stripe.payment_intents.values() {
            if let Some(k) = pi.metadata.get(crate::workload::META_BUSINESS_KEY) {
                by_id.insert(pi.id.clone(), k.clone());
            }
        }
        Attribution { keys, by_id }
    }

    fn key_of(&self, text: &str) -> Option<String> {
        for k in &self.keys {
            for pat in [format!("saga-{k}"), format!("\"{k}\"")] {
                let mut from = 0;
                while let Some(at) = text[from..].find(&pat) {
                    let end = from + at + pat.len();
                    let next = text[end..].chars().next();
                    if !next.is_some_and(|c| c.is_ascii_alphanumeric()) {
                        return Some(k.to_string());
                    }
                    from = end;
                }
            }
        }
        // An id quoted in the text: `"hold-2"`, `"pi_0003"`.
        text.split('"')
            .skip(1)
            .step_by(2)
            .find_map(|id| self.by_id.get(id).cloned())
    }
}

/// `-> callee #i Variant…` → (callee, i, rest).
fn send_parts(text: &str) -> Option<(&str, u32, &str)> {
    let rest = text.strip_prefix("-> ")?;
    let (callee, rest) = rest.split_once(' ')?;
    let rest = rest.strip_prefix('#')?;
    let (i, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    Some((callee, i.parse().ok()?, rest))
}

/// A service request in a few words: `hold room`, `charge`, `upsert
/// Booking__c`.
fn operation(callee: &str, body: &str) -> String {
    // `Service(Variant { … object: "X" …` → Variant (and object).
    let inner = body.split_once('(').map_or(body, |(_, r)| r);
    // A Salesforce API call wraps its request: `Api { session: …, request:
    // Upsert { … } }` reads as the request.
    let inner = match inner.strip_prefix("Api {") {
        Some(api) => api.split_once("request: ").map_or(inner, |(_, r)| r),
        None => inner,
    };
    let variant: String = inner
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let object = body
        .split_once("object: \"")
        .and_then(|(_, r)| r.split_once('"'))
        .map(|(o, _)| o);
    let words = match variant.as_str() {
        "Hold" => "hold room".to_string(),
        "Confirm" => "confirm room".to_string(),
        "Release" => "release hold".to_string(),
        "CreatePaymentIntent" => "charge".to_string(),
        "CreateRefund" | "Refund" => "refund".to_string(),
        "Capture" | "CapturePaymentIntent" => "capture".to_string(),
        "Cancel" | "CancelPaymentIntent" => "cancel payment".to_string(),
        "Login" => "log in".to_string(),
        "" => callee.to_string(),
        v if v.starts_with("List") || v.starts_with("Query") || v.starts_with("Search") => {
            format!("look up {}", object.unwrap_or(""))
        }
        v => match object {
            Some(o) => format!("{} {o}", v.to_lowercase()),
            None => v.to_lowercase(),
        },
    };
    format!("{}: {}", short_service(callee), words.trim())
}

fn short_service(name: &str) -> &str {
    match name {
        "inventory" => "pms",
        "salesforce" => "crm",
        other => other,
    }
}

/// `status: 409, … code: NoAvailability` → (`409 NoAvailability`, tone).
fn reply_words(text: &str) -> (String, Tone) {
    let status: Option<u16> = text
        .split_once("status: ")
        .and_then(|(_, r)| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok());
    let code = text
        .split_once("code: ")
        .map(|(_, r)| {
            r.strip_prefix("Some(")
                .unwrap_or(r)
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|c| !c.is_empty());
    match status {
        Some(s) => {
            let tone = match s {
                200..=299 => Tone::Ok,
                429 | 500..=599 => Tone::Fault,
                _ => Tone::Fail,
            };
            let words = match code {
                Some(c) => format!("{s} {c}"),
                None => s.to_string(),
            };
            (words, tone)
        }
        None => ("reply".into(), Tone::Ok),
    }
}

/// A step outcome line `saga-K step Phase: Outcome { … }` in words.
fn outcome_words(text: &str) -> Option<(String, Tone)> {
    let mut parts = text.splitn(3, ' ');
    let _saga = parts.next()?;
    let step = parts.next()?;
    let rest = parts.next()?;
    let (phase, outcome) = rest.split_once(": ")?;
    let kind: String = outcome
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let tone = match kind.as_str() {
        "Applied" | "Found" | "NotFound" => Tone::Ok,
        "Rejected" => Tone::Fail,
        _ => Tone::Fault,
    };
    let detail = outcome
        .split_once("reason: ")
        .map(|(_, r)| plain(r.trim_end_matches('}').trim()))
        .unwrap_or_default();
    let what = if phase.starts_with("Compensate") {
        format!("undo {step}")
    } else {
        step.to_string()
    };
    let mut s = format!("{what}: {}", plain(&kind).to_lowercase());
    if !detail.is_empty() {
        let _ = write!(s, " — {detail}");
    }
    Some((s, tone))
}

/// The lanes of a run, in agent order.
pub(crate) fn lanes(r: &Report<'_>) -> Vec<Lane> {
    let out = r.outcome;
    let attr = Attribution::new(r);
    let mut lanes: Vec<Lane> = out
        .agents
        .iter()
        .enumerate()
        .map(|(i, a)| Lane {
            key: a.business_key.clone(),
            colour: KEY_COLOURS[i % KEY_COLOURS.len()],
            chips: Vec::new(),
        })
        .collect();
    let index: BTreeMap<String, usize> = lanes
        .iter()
        .enumerate()
        .map(|(i, l)| (l.key.clone(), i))
        .collect();
    let agent_key: BTreeMap<String, String> = out
        .agents
        .iter()
        .map(|a| (format!("agent-{}", a.agent), a.business_key.clone()))
        .collect();
    let events = &r.trace.events;
    let reports_steps = events.iter().any(|e| e.kind == "step-outcome");
    // The coordinator's calls, for their replies: (callee, i) -> (lane,
    // operation, its chip when drawn).
    let mut calls: BTreeMap<(String, u32), (usize, String, Option<usize>)> = BTreeMap::new();
    // Calls whose duplicate copy was delivered and not yet answered.
    let mut duplicates: std::collections::BTreeSet<(String, u32)> = Default::default();
    let push = |lanes: &mut Vec<Lane>, lane: usize, chip: Chip| {
        lanes[lane].chips.push(chip);
        lanes[lane].chips.len() - 1
    };
    for e in events {
        let TraceEvent {
            t_us,
            node,
            kind,
            text,
        } = e;
        if let Some(key) = agent_key.get(node) {
            let lane = index[key];
            let chip = match kind.as_str() {
                "tool-call" => {
                    let attempt = text.rsplit(' ').next().unwrap_or("");
                    Some(Chip {
                        t_us: *t_us,
                        text: format!("agent asks (try {attempt})"),
                        tone: Tone::Agent,
                    })
                }
                "tool-give-up" => Some(Chip {
                    t_us: *t_us,
                    text: "agent gives up".into(),
                    tone: Tone::Fault,
                }),
                "timeout" => Some(Chip {
                    t_us: *t_us,
                    text: "agent's call timed out".into(),
                    tone: Tone::Fault,
                }),
                _ => None,
            };
            if let Some(c) = chip {
                push(&mut lanes, lane, c);
            }
            continue;
        }
        if node != crate::world::wire::COORDINATOR {
            // A service: a duplicate copy of a call delivered, and what it did.
            let index_of = |t: &str| -> Option<u32> {
                t.trim_start_matches("-> coordinator ")
                    .strip_prefix('#')?
                    .split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            };
            let call = index_of(text).map(|i| (node.clone(), i));
            let Some((lane, op)) = call
                .as_ref()
                .and_then(|c| calls.get(c))
                .map(|(l, op, _)| (*l, op.clone()))
            else {
                continue;
            };
            let call = call.expect("found above");
            if kind == "deliver" && text.contains("(duplicate)") {
                duplicates.insert(call);
                push(
                    &mut lanes,
                    lane,
                    Chip {
                        t_us: *t_us,
                        text: format!("{op}: a duplicate arrives"),
                        tone: Tone::Fault,
                    },
                );
            } else if kind == "reply" && duplicates.remove(&call) {
                let (words, tone) = reply_words(text);
                push(
                    &mut lanes,
                    lane,
                    Chip {
                        t_us: *t_us,
                        text: format!("{op} (duplicate) → {words}"),
                        tone: if tone == Tone::Ok { Tone::Fault } else { tone },
                    },
                );
            }
            continue;
        }
        match kind.as_str() {
            "step-outcome" => {
                let Some(lane) = attr.key_of(text).and_then(|k| index.get(&k).copied()) else {
                    continue;
                };
                if let Some((words, tone)) = outcome_words(text) {
                    push(
                        &mut lanes,
                        lane,
                        Chip {
                            t_us: *t_us,
                            text: words,
                            tone,
                        },
                    );
                }
            }
            "send" => {
                let Some((callee, i, body)) = send_parts(text) else {
                    continue;
                };
                if agent_key.contains_key(callee) {
                    continue;
                }
                let Some(lane) = attr.key_of(text).and_then(|k| index.get(&k).copied()) else {
                    continue;
                };
                let op = operation(callee, body);
                let at = (!reports_steps).then(|| {
                    push(
                        &mut lanes,
                        lane,
                        Chip {
                            t_us: *t_us,
                            text: format!("{op} → no reply"),
                            tone: Tone::Fault,
                        },
                    )
                });
                calls.insert((callee.to_string(), i), (lane, op, at));
            }
            "recv" | "timeout" if !reports_steps => {
                let rest = text.strip_prefix("<- ").unwrap_or(text);
                let Some((callee, rest)) = rest.split_once(" #") else {
                    continue;
                };
                let i: Option<u32> = rest
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .and_then(|n| n.parse().ok());
                let Some((lane, at)) = i
                    .and_then(|i| calls.get(&(callee.to_string(), i)))
                    .and_then(|(lane, _, at)| Some((*lane, (*at)?)))
                else {
                    continue;
                };
                let chip = &mut lanes[lane].chips[at];
                if !chip.text.ends_with("→ no reply") {
                    continue; // the first answer counts
                }
                let op = chip
                    .text
                    .trim_end_matches("→ no reply")
                    .trim_end()
                    .to_string();
                let (words, tone) = if kind == "timeout" {
                    ("timeout".to_string(), Tone::Fault)
                } else {
                    reply_words(text)
                };
                chip.text = format!("{op} → {words}");
                chip.tone = tone;
            }
            _ => {}
        }
    }
    // The agents' answers, as recorded (the last decided one).
    for (lane, a) in lanes.iter_mut().zip(&out.agents) {
        if let (Some(at_ms), Some(ans)) = (a.answered_ms, &a.answer) {
            lane.chips.push(Chip {
                t_us: at_ms * 1000,
                text: format!("agent told: {}", status_words(ans)),
                tone: status_tone(ans),
            });
        }
        lane.chips.sort_by_key(|c| c.t_us);
    }
    lanes
}

fn chip_id(lane: usize, i: usize) -> String {
    format!("s{lane}-{i}")
}

/// Where each violation happened: (lane, chip) of its key's last event at
/// or before its time.
pub(crate) fn violation_sites(r: &Report<'_>, lanes: &[Lane]) -> Vec<Option<(usize, usize)>> {
    r.verdict
        .all()
        .map(|v| {
            let lane = lanes.iter().position(|l| l.key == v.business_key)?;
            let limit_us = v.at_ms.saturating_mul(1000).saturating_add(999);
            let chips = &lanes[lane].chips;
            let at = chips
                .iter()
                .rposition(|c| c.t_us <= limit_us)
                .or(if chips.is_empty() { None } else { Some(0) })?;
            Some((lane, at))
        })
        .collect()
}

/// `verdict` with each violation's time moved to where it happened (its
/// site's event), for the node timeline's red lines.
pub(crate) fn placed(
    verdict: &crate::check::Verdict,
    lanes: &[Lane],
    sites: &[Option<(usize, usize)>],
) -> crate::check::Verdict {
    let mut v = verdict.clone();
    let n_safety = v.safety.len();
    for (i, site) in sites.iter().enumerate() {
        let Some((lane, at)) = site else { continue };
        let ms = lanes[*lane].chips[*at].t_us / 1000;
        let viol = if i < n_safety {
            &mut v.safety[i]
        } else {
            &mut v.liveness[i - n_safety]
        };
        viol.at_ms = ms.min(viol.at_ms);
    }
    v
}

/// The links from violation `i` to the faults and failures of its key
/// that led there (at most 8, the latest).
pub(crate) fn led_there(lanes: &[Lane], site: (usize, usize)) -> Vec<(String, String)> {
    let (lane, at) = site;
    let mut v: Vec<(String, String)> = lanes[lane].chips[..at]
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c.tone, Tone::Fault | Tone::Fail))
        .map(|(i, c)| (chip_id(lane, i), format!("{} {}", fmt_t(c.t_us), c.text)))
        .collect();
    let cut = v.len().saturating_sub(8);
    v.drain(..cut);
    v
}

fn fmt_t(t_us: u64) -> String {
    let ms = t_us / 1000;
    format!("{}.{:01} s", ms / 1000, (ms % 1000) / 100)
}

/// The swim lanes as HTML.
pub(crate) fn render_lanes(h: &mut String, r: &Report<'_>, lanes: &[Lane]) {
    let sites = violation_sites(r, lanes);
    h.push_str("<section id=\"sagas\"><h2>Sagas, one lane per business key</h2>");
    h.push_str("<p class=\"meta\">Each checkout's key events in order, with the simulated time. \
        <span class=\"chip agent\">agent</span> <span class=\"chip ok\">applied / 2xx / completed</span> \
        <span class=\"chip fail\">rejected / 4xx / compensated</span> \
        <span class=\"chip fault\">timeout / 5xx / 429 / unknown</span>");
    if sites.iter().any(Option::is_some) {
        h.push_str(" <span class=\"chip vmark\">V1</span> where a violation happened");
    }
    h.push_str(".</p>");
    for (li, lane) in lanes.iter().enumerate() {
        let _ = write!(
            h,
            "<div class=\"saga\" style=\"border-left-color:{0}\"><div class=\"saga-key\" style=\"color:{0}\">{1}</div><div class=\"chips\">",
            lane.colour,
            escape(&lane.key)
        );
        for (ci, c) in lane.chips.iter().take(MAX_CHIPS_PER_LANE).enumerate() {
            let badges: Vec<String> = sites
                .iter()
                .enumerate()
                .filter(|(_, s)| **s == Some((li, ci)))
                .map(|(vi, _)| format!("V{}", vi + 1))
                .collect();
            let _ = write!(
                h,
                "<span class=\"chip {}{}\" id=\"{}\"><b>{}</b> {}{}</span>",
                c.tone.class(),
                if badges.is_empty() { "" } else { " violated" },
                chip_id(li, ci),
                fmt_t(c.t_us),
                escape(&clip(&c.text, CHIP_CHARS)),
                badges
                    .iter()
                    .map(|b| format!(" <a class=\"vmark\" href=\"#{}\">{b}</a>", b.to_lowercase()))
                    .collect::<String>()
            );
        }
        if lane.chips.len() > MAX_CHIPS_PER_LANE {
            let _ = write!(
                h,
                "<span class=\"meta\">… and {} more</span>",
                lane.chips.len() - MAX_CHIPS_PER_LANE
            );
        }
        h.push_str("</div></div>");
    }
    h.push_str("</section>\n");
}

/// The per-saga summary table.
pub(crate) fn render_summary(h: &mut String, r: &Report<'_>, lanes: &[Lane]) {
    let out = r.outcome;
    let truth = Truth::of(out);
    let sites = violation_sites(r, lanes);
    h.push_str("<section id=\"saga-summary\"><h2>Per saga: steps, answer, time, final state</h2>\
        <table class=\"sagas\"><thead><tr><th>business key</th><th>events</th><th>agent was told</th>\
        <th>time</th><th>payment (Stripe)</th><th>room (PMS)</th><th>CRM (Salesforce)</th><th>violations</th></tr></thead><tbody>");
    for (li, (lane, a)) in lanes.iter().zip(&out.agents).enumerate() {
        let kt = truth.keys.get(&a.business_key);
        let money = kt.map_or("nothing".to_string(), |t| {
            let mut s = format!("net {}", cents(t.net_cents));
            if t.held_cents > 0 {
                let _ = write!(s, ", {} held", cents(t.held_cents));
            }
            if t.peak_net_cents > t.amount_cents {
                let _ = write!(s, " (peak {})", cents(t.peak_net_cents));
            }
            s
        });
        let room = kt.map_or("nothing".to_string(), |t| {
            let mut parts = Vec::new();
            if !t.bookings.is_empty() {
                parts.push(format!("booked {}", t.bookings.join(", ")));
            }
            if !t.guest_cancelled.is_empty() {
                let ids = t.guest_cancelled.join(", ");
                parts.push(format!("booked {ids}, cancelled by the guest"));
            }
            if !t.active_holds.is_empty() {
                parts.push(format!("held {}", t.active_holds.join(", ")));
            }
            if parts.is_empty() {
                "nothing".into()
            } else {
                parts.join("; ")
            }
        });
        let crm = kt.map_or("nothing".to_string(), |t| {
            let live = t.records.iter().map(|r| (r, ""));
            let deleted = t
                .admin_deleted
                .iter()
                .map(|r| (r, " (deleted by an admin)"));
            let parts: Vec<String> = live
                .chain(deleted)
                .flat_map(|((object, recs), note)| {
                    recs.iter().map(move |(_, fields)| {
                        let state = ["Status__c", "StageName"]
                            .iter()
                            .find_map(|f| fields.get(*f).and_then(|v| v.as_str()))
                            .unwrap_or("?");
                        format!("{object} {state}{note}")
                    })
                })
                .collect();
            if parts.is_empty() {
                "nothing".into()
            } else {
                parts.join(", ")
            }
        });
        let told = a.answer.as_ref().map_or("no answer".into(), status_words);
        let time = match (a.first_call_ms, a.answered_ms) {
            (Some(f), Some(t)) => format!("{} (from {})", fmt_ms(t.saturating_sub(f)), fmt_ms(f)),
            _ => "–".into(),
        };
        let vs: Vec<String> = sites
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some_and(|(l, _)| l == li))
            .map(|(vi, _)| format!("<a href=\"#v{0}\">V{0}</a>", vi + 1))
            .collect();
        let _ = write!(
            h,
            "<tr><td style=\"color:{};font-weight:600\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            lane.colour,
            escape(&lane.key),
            lane.chips.len(),
            escape(&clip(&told, 90)),
            time,
            escape(&money),
            escape(&room),
            escape(&crm),
            if vs.is_empty() { "–".into() } else { vs.join(" ") }
        );
    }
    h.push_str("</tbody></table></section>\n");
}

/// Cents as `250.00`.
fn cents(c: i64) -> String {
    let sign = if c < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", c.abs() / 100, c.abs() % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_have_no_debug_left() {
        assert_eq!(
            plain(
                r#"Compensated { reason: "`hold_room` rejected: pms 409 Some(NoAvailability)" }"#
            ),
            "Compensated: reason `hold_room` rejected: pms 409 NoAvailability"
                .replace("reason ", "reason: ")
        );
        assert_eq!(plain("Some(RateLimit)"), "RateLimit");
        assert_eq!(plain("None"), "None");
        let p = plain(
            r#"Hold { id: "hold-1", client_ref: Some("saga-res-3/hold_room"), params: {"a": "1"} }"#,
        );
        assert!(
            !p.contains("{ ") && !p.contains("Some(") && !p.contains('"'),
            "{p}"
        );
    }

    #[test]
    fn replies_and_outcomes_read_short() {
        assert_eq!(
            reply_words("<- inventory #3 Inventory(InventoryResponse { status: 409, body: Error(PmsError { code: NoAvailability, message: \"x\" }) })"),
            ("409 NoAvailability".to_string(), Tone::Fail)
        );
        assert_eq!(reply_words("status: 503, x").1, Tone::Fault);
        assert_eq!(
            outcome_words(
                "saga-res-4 charge Action: Rejected { reason: \"stripe 402 Some(CardDeclined)\" }"
            ),
            Some((
                "charge: rejected — stripe 402 CardDeclined".to_string(),
                Tone::Fail
            ))
        );
        assert_eq!(
            outcome_words(
                "saga-res-4 hold_room Compensate: Applied { reference: Some(\"hold-1\") }"
            )
            .map(|o| o.0),
            Some("undo hold_room: applied".to_string())
        );
        assert_eq!(
            operation(
                "salesforce",
                "Salesforce(Upsert { object: \"Booking__c\", x: 1 })"
            ),
            "crm: upsert Booking__c"
        );
        assert_eq!(
            operation("inventory", "Inventory(Hold { a: 1 })"),
            "pms: hold room"
        );
        assert_eq!(cents(25_000), "250.00");
        assert_eq!(cents(-5), "-0.05");
    }
}
