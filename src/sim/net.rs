//! Our request/response transport: every call between nodes goes through
//! the fault plan.
//!
//! A call from `from` to `to` gets a per-link index (0, 1, 2… on that
//! link); the plan addresses faults by `(from, to, index)`. The request
//! travels as a task spawned *on the callee node* (so a crash of the callee
//! loses it, and it still arrives when the caller has given up); the reply
//! comes back over a oneshot channel. The caller always ends with exactly
//! one of: the reply, [`CallError::Timeout`], or [`CallError::Refused`]
//! (node down when the call was made).
//!
//! Decisions, all from the plan, never otherwise:
//! - deliver, with per-leg latency drawn from `(seed, link, index)`;
//! - drop the request (not applied; caller times out);
//! - drop the reply after the callee applied the request;
//! - duplicate the request (both copies applied; the first reply wins);
//! - delay the request past the caller's timeout, or by a fixed extra;
//! - inject a service error (brown-out), per call or per window;
//! - partition windows: traffic is lost both ways while a link is cut.
//!
//! Not here: service semantics (the handler's job) or node crashes
//! (`world.rs`; the transport only asks whether a node is up).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::faults::{CallFaultKind, FaultPlan};
use super::rng::{between, mix};
use super::world::World;
use crate::emit;
use crate::services::Injected;
use crate::trace::Payload;

/// What a handler learns about the delivery it serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// A brown-out the plan forces on this request.
    pub injected: Option<Injected>,
    /// 0 for the original, 1 for a duplicate copy.
    pub copy: u8,
    /// Index of the call on its link.
    pub index: u32,
    /// The caller's node index (in the world's node order).
    pub from: u32,
}

/// A node's request handler.
pub type Handler<Req, Resp> =
    Arc<dyn Fn(Req, Delivery) -> Pin<Box<dyn Future<Output = Resp> + Send>> + Send + Sync>;

/// How a call ends when there is no reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No reply within the caller's timeout: the request may or may not
    /// have been applied.
    #[error("timed out")]
    Timeout,
    /// The callee was down when the call was made: not applied.
    #[error("connection refused")]
    Refused,
}

/// Network latency of one leg (request or reply), uniform in the range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetConfig {
    /// Shortest one-way latency of a leg, in ms.
    pub min_ms: u64,
    /// Longest one-way latency of a leg, in ms (inclusive).
    pub max_ms: u64,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            min_ms: 1,
            max_ms: 10,
        }
    }
}

/// Counters of what the transport did (for tests and coverage).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetStats {
    /// Calls made, whatever their end.
    pub calls: u64,
    /// Requests (copies included) handed to the callee's handler.
    pub delivered: u64,
    /// Replies that reached a caller still waiting for them.
    pub replies: u64,
    /// Requests the plan dropped (`DropRequest`).
    pub dropped_requests: u64,
    /// Replies the plan dropped after the callee applied the request.
    pub dropped_replies: u64,
    /// Calls the plan duplicated (each counts once, not per copy).
    pub duplicated: u64,
    /// Requests the plan delayed past the caller's timeout.
    pub delayed_past_timeout: u64,
    /// Requests the plan delayed by a fixed extra (`Delay`).
    pub delayed: u64,
    /// Deliveries that carried an injected service error (per call or
    /// brown-out window).
    pub injected: u64,
    /// Requests or replies lost to a partition window (each leg counts).
    pub partitioned: u64,
    /// Calls refused because the callee was down when they were made.
    pub refused: u64,
    /// Calls that ended in [`CallError::Timeout`].
    pub timeouts: u64,
    /// Requests that arrived after their caller had already timed out.
    pub late_arrivals: u64,
}

struct State<Req, Resp> {
    names: Vec<String>,
    handlers: Vec<Option<Handler<Req, Resp>>>,
    counters: BTreeMap<(usize, usize), u32>,
    /// Sorted by key (looked up by binary search: cheaper to build per
    /// run than a map).
    call_faults: Vec<((usize, usize, u32), CallFaultKind)>,
    partitions: Vec<(usize, usize, u64, u64)>,
    brownouts: Vec<(usize, u64, u64, Injected, u16)>,
    stats: NetStats,
    in_flight: u64,
}

/// The transport of one run, for one request/response type pair.
pub struct Net<Req, Resp> {
    world: World,
    cfg: NetConfig,
    state: Arc<Mutex<State<Req, Resp>>>,
}

impl<Req, Resp> State<Req, Resp> {
    fn call_fault(&self, from: usize, to: usize, index: u32) -> Option<CallFaultKind> {
        self.call_faults
            .binary_search_by_key(&(from, to, index), |&(k, _)| k)
            .ok()
            .map(|i| self.call_faults[i].1)
    }
}

impl<Req, Resp> Clone for Net<Req, Resp> {
    fn clone(&self) -> Self {
        Net {
            world: self.world.clone(),
            cfg: self.cfg,
            state: self.state.clone(),
        }
    }
}

struct InFlight<Req, Resp> {
    state: Arc<Mutex<State<Req, Resp>>>,
}

impl<Req, Resp> Drop for InFlight<Req, Resp> {
    fn drop(&mut self) {
        if let Ok(mut st) = self.state.lock() {
            st.in_flight -= 1;
        }
    }
}

/// Where a delivery task puts its reply; the caller marks it when it gives up.
struct Slot<Resp> {
    tx: Option<oneshot::Sender<Resp>>,
    gave_up: bool,
}

type ReplySlot<Resp> = Arc<Mutex<Slot<Resp>>>;

impl<Req, Resp> Net<Req, Resp>
where
    Req: Clone + Debug + Serialize + Send + 'static,
    Resp: Debug + Serialize + Send + 'static,
{
    /// A transport over the world's nodes, applying the world's plan.
    pub fn new(world: &World, cfg: NetConfig) -> Self {
        let names = world.node_names();
        let plan: &FaultPlan = world.plan();
        let id = |n: &str| {
            world
                .position(n)
                .unwrap_or_else(|| panic!("plan names unknown node {n} (validate plans first)"))
        };
        let mut call_faults: Vec<_> = plan
            .calls
            .iter()
            .map(|c| ((id(&c.from), id(&c.to), c.index), c.fault))
            .collect();
        // A hand-written plan may name one call twice: the last entry wins
        // (as it did when this was a map).
        call_faults.sort_by_key(|&(k, _)| k);
        call_faults.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                *kept = *later;
            }
            same
        });
        let partitions = plan
            .partitions
            .iter()
            .map(|p| (id(&p.a), id(&p.b), p.from_ms, p.until_ms))
            .collect();
        let brownouts = plan
            .brownouts
            .iter()
            .map(|b| (id(&b.service), b.from_ms, b.until_ms, b.fault, b.permille))
            .collect();
        let handlers = names.iter().map(|_| None).collect();
        Net {
            world: world.clone(),
            cfg,
            state: Arc::new(Mutex::new(State {
                names,
                handlers,
                counters: BTreeMap::new(),
                call_faults,
                partitions,
                brownouts,
                stats: NetStats::default(),
                in_flight: 0,
            })),
        }
    }

    fn id(&self, node: &str) -> usize {
        self.world
            .position(node)
            .unwrap_or_else(|| panic!("unknown node {node}"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<Req, Resp>> {
        self.state.lock().expect("net lock")
    }

    /// Register (or replace, after a restart) the handler of a node.
    pub fn serve(&self, node: &str, handler: Handler<Req, Resp>) {
        let mut st = self.lock();
        let i = self.id(node);
        st.handlers[i] = Some(handler);
    }

    /// What the transport did so far.
    pub fn stats(&self) -> NetStats {
        self.lock().stats
    }

    /// Drop every handler: handlers capture clones of the transport (a
    /// coordinator's client calls through it), so without this the state of
    /// a finished run keeps itself alive. Call at the end of a run.
    pub fn shutdown(&self) {
        let mut st = self.lock();
        for h in st.handlers.iter_mut() {
            *h = None;
        }
    }

    /// Requests or replies still travelling (0 = the network is quiet).
    pub fn in_flight(&self) -> u64 {
        self.lock().in_flight
    }

    fn leg_ms(&self, parts: &[u64]) -> u64 {
        between(
            mix(self.world.seed(), parts),
            self.cfg.min_ms,
            self.cfg.max_ms.max(self.cfg.min_ms),
        )
    }

    fn partitioned(&self, a: usize, b: usize) -> bool {
        if !self.world.faults_on() {
            return false;
        }
        let now = super::clock::elapsed_ms();
        let st = self.lock();
        st.partitions.iter().any(|&(x, y, from, until)| {
            ((x == a && y == b) || (x == b && y == a)) && from <= now && now < until
        })
    }

    fn brownout(&self, to: usize, parts: &[u64]) -> Option<Injected> {
        if !self.world.faults_on() {
            return None;
        }
        let now = super::clock::elapsed_ms();
        let st = self.lock();
        st.brownouts
            .iter()
            .find(|&&(s, from, until, _, permille)| {
                s == to
                    && from <= now
                    && now < until
                    && between(mix(self.world.seed(), parts), 0, 999) < u64::from(permille)
            })
            .map(|b| b.3)
    }

    /// Send `req` from node `from` to node `to` and wait for the reply.
    pub async fn call(
        &self,
        from: &str,
        to: &str,
        req: Req,
        timeout: Duration,
    ) -> Result<Resp, CallError> {
        let (fi, ti, index, fault) = {
            let mut st = self.lock();
            let (fi, ti) = (self.id(from), self.id(to));
            let counter = st.counters.entry((fi, ti)).or_insert(0);
            let index = *counter;
            *counter += 1;
            let fault = if self.world.faults_on() {
                st.call_fault(fi, ti, index)
            } else {
                None
            };
            st.stats.calls += 1;
            (fi, ti, index, fault)
        };
        emit!(from, "send", "-> {to} #{index} {:?}", Payload(&req));
        let key = |leg: u64, copy: u64| [fi as u64, ti as u64, u64::from(index), leg, copy];

        if !self.world.is_up_by_index(ti) {
            tokio::time::sleep(Duration::from_millis(self.leg_ms(&key(0, 0)))).await;
            self.lock().stats.refused += 1;
            emit!(from, "refused", "{to} #{index} is down");
            return Err(CallError::Refused);
        }

        let (tx, rx) = oneshot::channel();
        let slot: ReplySlot<Resp> = Arc::new(Mutex::new(Slot {
            tx: Some(tx),
            gave_up: false,
        }));
        match fault {
            Some(CallFaultKind::DropRequest) => {
                self.lock().stats.dropped_requests += 1;
                emit!(from, "drop-request", "-> {to} #{index}");
            }
            Some(CallFaultKind::Duplicate { gap_ms }) => {
                self.lock().stats.duplicated += 1;
                emit!(from, "duplicate", "-> {to} #{index} copy after +{gap_ms}ms");
                let first = self.leg_ms(&key(0, 0));
                self.deliver(fi, ti, index, 0, req.clone(), first, false, slot.clone());
                let second = self.leg_ms(&key(0, 1)).saturating_add(gap_ms);
                self.deliver(fi, ti, index, 1, req, second, false, slot.clone());
            }
            Some(CallFaultKind::DelayPastTimeout { extra_ms }) => {
                self.lock().stats.delayed_past_timeout += 1;
                let delay = u64::try_from(timeout.as_millis())
                    .unwrap_or(u64::MAX)
                    .saturating_add(extra_ms);
                emit!(
                    from,
                    "delay",
                    "-> {to} #{index} arrives +{delay}ms (past timeout)"
                );
                self.deliver(fi, ti, index, 0, req, delay, false, slot.clone());
            }
            Some(CallFaultKind::Delay { extra_ms }) => {
                self.lock().stats.delayed += 1;
                let delay = self.leg_ms(&key(0, 0)).saturating_add(extra_ms);
                emit!(from, "delay", "-> {to} #{index} arrives +{delay}ms");
                self.deliver(fi, ti, index, 0, req, delay, false, slot.clone());
            }
            Some(CallFaultKind::DropReply) => {
                let lat = self.leg_ms(&key(0, 0));
                self.deliver(fi, ti, index, 0, req, lat, true, slot.clone());
            }
            Some(CallFaultKind::Inject { .. }) | None => {
                let lat = self.leg_ms(&key(0, 0));
                self.deliver(fi, ti, index, 0, req, lat, false, slot.clone());
            }
        }

        // Simulated time (madsim's clock), not the wall clock.
        let deadline = madsim::time::TimeHandle::current().now_instant() + timeout;
        let result = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(_)) => {
                // The reply will never come (dropped, lost, callee crashed):
                // the caller only learns that by its timeout.
                tokio::time::sleep_until(deadline).await;
                Err(CallError::Timeout)
            }
            Err(_) => Err(CallError::Timeout),
        };
        // From now on the caller is gone: a late reply has nowhere to go.
        {
            let mut s = slot.lock().expect("reply slot");
            s.tx = None;
            s.gave_up = result.is_err();
        }
        match &result {
            // The reply event on the callee printed (and hashed) this very
            // response: show it again, do not format it again to hash.
            Ok(resp) => crate::emit_echo!(from, "recv", resp, "<- {to} #{index}"),
            Err(_) => {
                self.lock().stats.timeouts += 1;
                emit!(
                    from,
                    "timeout",
                    "{to} #{index} after {}ms",
                    timeout.as_millis()
                );
            }
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &self,
        fi: usize,
        ti: usize,
        index: u32,
        copy: u8,
        req: Req,
        delay_ms: u64,
        drop_reply: bool,
        slot: ReplySlot<Resp>,
    ) {
        let Some(node) = self.world.node_handle_by_index(ti) else {
            return;
        };
        self.lock().in_flight += 1;
        let guard = InFlight {
            state: self.state.clone(),
        };
        let net = self.clone();
        node.spawn(async move {
            let _guard = guard;
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            let (from, to, handler, forced) = {
                let st = net.lock();
                (
                    st.names[fi].clone(),
                    st.names[ti].clone(),
                    st.handlers[ti].clone(),
                    st.call_fault(fi, ti, index),
                )
            };
            if net.partitioned(fi, ti) {
                net.lock().stats.partitioned += 1;
                emit!(to, "partition", "request #{index} from {from} lost");
                return;
            }
            let Some(handler) = handler else {
                emit!(to, "no-server", "request #{index} from {from} dropped");
                return;
            };
            let mut injected = match forced {
                Some(CallFaultKind::Inject { fault }) if net.world.faults_on() => Some(fault),
                _ => None,
            };
            if injected.is_none() {
                injected = net.brownout(ti, &[fi as u64, ti as u64, u64::from(index), 9, 0]);
            }
            let late = slot.lock().expect("reply slot").gave_up;
            {
                let mut st = net.lock();
                st.stats.delivered += 1;
                if injected.is_some() {
                    st.stats.injected += 1;
                }
                if late {
                    st.stats.late_arrivals += 1;
                }
            }
            let tag = match (copy, late) {
                (0, false) => "",
                (0, true) => " (late: caller gave up)",
                (_, false) => " (duplicate)",
                (_, true) => " (duplicate, late)",
            };
            match injected {
                Some(f) => emit!(to, "deliver", "#{index} from {from}{tag} injected={f:?}"),
                None => emit!(to, "deliver", "#{index} from {from}{tag}"),
            }
            let resp = handler(
                req,
                Delivery {
                    injected,
                    copy,
                    index,
                    from: fi as u32,
                },
            )
            .await;
            if drop_reply && copy == 0 {
                net.lock().stats.dropped_replies += 1;
                emit!(
                    to,
                    "drop-reply",
                    "#{index} to {from} lost after apply: {:?}",
                    Payload(&resp)
                );
                return;
            }
            emit!(to, "reply", "-> {from} #{index} {:?}", Payload(&resp));
            let back = net.leg_ms(&[fi as u64, ti as u64, u64::from(index), 1, u64::from(copy)]);
            tokio::time::sleep(Duration::from_millis(back)).await;
            if net.partitioned(fi, ti) {
                net.lock().stats.partitioned += 1;
                emit!(to, "partition", "reply #{index} to {from} lost");
                return;
            }
            let tx = slot.lock().expect("reply slot").tx.take();
            if let Some(tx) = tx {
                if tx.send(resp).is_ok() {
                    net.lock().stats.replies += 1;
                }
            }
        });
    }
}
