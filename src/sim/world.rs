//! The deterministic world of one run: one madsim runtime per seed, named
//! nodes, their disks and clocks, the nemesis that crashes and pauses them
//! on the plan's schedule, and the two phases (safety, then liveness).
//!
//! Use [`simulate`] to run a body in a fresh runtime with a trace recorder,
//! and a [`World`] inside it to create nodes and apply node faults. A run
//! is a pure function of `(seed, plan, body)`.
//!
//! Not here: what nodes do (services, coordinator, agents), message faults
//! (`net.rs`), or invariants (`check`).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::runtime::{Handle, NodeHandle, Runtime};

use super::clock::{elapsed_ms, Clocks};
use super::disk::Disk;
use super::faults::FaultPlan;
use crate::emit;
use crate::trace::{Recorder, Trace, TraceMode};

/// Run `body` in a fresh madsim runtime seeded with `seed`, recording the
/// trace. Call it on any thread; each call builds its own runtime.
pub fn simulate<T, F, Fut>(seed: u64, mode: TraceMode, body: F) -> (T, Trace)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    let recorder = Recorder::new(mode);
    let rt = Runtime::with_seed_and_config(seed, madsim::Config::default());
    let out = tracing::subscriber::with_default(recorder.clone(), || rt.block_on(body()));
    drop(rt);
    (out, recorder.finish())
}

struct NodeRec {
    handle: NodeHandle,
    up: bool,
    paused: bool,
}

/// Called when a node crashes (its disks drop unsynced writes).
type CrashHook = Box<dyn Fn() + Send>;

struct Inner {
    seed: u64,
    plan: Arc<FaultPlan>,
    clocks: Clocks,
    fsync_latency: Duration,
    faults_on: AtomicBool,
    /// Crashes and pauses the nemesis applied (for coverage).
    crashes: AtomicU64,
    pauses: AtomicU64,
    names: Vec<String>,
    /// By position in `names` (`None` until started): looked up on every
    /// message, so by index rather than by name.
    nodes: Mutex<Vec<Option<NodeRec>>>,
    crash_hooks: Mutex<BTreeMap<String, Vec<CrashHook>>>,
    nemesis: Mutex<Option<madsim::task::JoinHandle<()>>>,
}

/// Handle to the world of one run. Cheap to clone.
#[derive(Clone)]
pub struct World {
    inner: Arc<Inner>,
}

/// How the two phases of a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhaseReport {
    /// Simulated time when faults stopped.
    pub safety_end_ms: u64,
    /// Simulated time when the run ended.
    pub end_ms: u64,
    /// Whether the system was done (quiescent) before the liveness limit.
    pub converged: bool,
    /// Node crashes during the run (a crash of a node already down does
    /// not count).
    pub crashes: u64,
    /// Node pauses during the run (a pause of a node that is down or
    /// already paused does not count).
    pub pauses: u64,
}

impl World {
    /// A world for the given node names (which the plan may name). Must be
    /// called inside a runtime; nodes are started with [`World::start_node`].
    pub fn new(
        seed: u64,
        plan: impl Into<Arc<FaultPlan>>,
        node_names: &[&str],
        fsync_latency: Duration,
    ) -> Self {
        let plan = plan.into();
        let clocks = Clocks::new(&plan.clocks);
        World {
            inner: Arc::new(Inner {
                seed,
                plan,
                clocks,
                fsync_latency,
                faults_on: AtomicBool::new(true),
                crashes: AtomicU64::new(0),
                pauses: AtomicU64::new(0),
                names: node_names.iter().map(|s| s.to_string()).collect(),
                nodes: Mutex::new(node_names.iter().map(|_| None).collect()),
                crash_hooks: Mutex::new(BTreeMap::new()),
                nemesis: Mutex::new(None),
            }),
        }
    }

    /// The run's seed (every latency and processing time mixes it in).
    pub fn seed(&self) -> u64 {
        self.inner.seed
    }

    /// The fault plan this world applies.
    pub fn plan(&self) -> &FaultPlan {
        &self.inner.plan
    }

    /// Every node name, in the world's fixed order.
    pub fn node_names(&self) -> Vec<String> {
        self.inner.names.clone()
    }

    /// Whether faults are still being injected (false in the liveness phase).
    pub fn faults_on(&self) -> bool {
        self.inner.faults_on.load(Ordering::Relaxed)
    }

    /// The node's own clock (skewed), in ms since the Unix epoch.
    pub fn clock_ms(&self, node: &str) -> u64 {
        self.inner.clocks.now_ms(node)
    }

    /// Start a node. `init` runs at boot and again at every restart; state
    /// it needs to survive a crash (its disk) must be created outside it.
    ///
    /// `init` itself runs in the context of whoever starts or restarts the
    /// node (the supervisor); only the future it returns runs *on* the node.
    /// Spawn and start work inside that future, or it outlives crashes.
    pub fn start_node<F, Fut>(&self, name: &str, init: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let i = self
            .position(name)
            .unwrap_or_else(|| panic!("node {name} is not in the world's node list"));
        let handle = Handle::current()
            .create_node()
            .name(name)
            .init(init)
            .build();
        let mut nodes = self.inner.nodes.lock().expect("world lock");
        assert!(nodes[i].is_none(), "node {name} started twice");
        nodes[i] = Some(NodeRec {
            handle,
            up: true,
            paused: false,
        });
    }

    /// A fresh disk owned by `node`: it loses unsynced writes when the node
    /// crashes. Create it once, outside the node's init closure.
    pub fn disk<T: Clone + std::fmt::Debug + Send + 'static>(&self, node: &str) -> Disk<T> {
        let disk = Disk::new(format!("{node}/disk"), self.inner.fsync_latency);
        let d = disk.clone();
        self.inner
            .crash_hooks
            .lock()
            .expect("world lock")
            .entry(node.to_string())
            .or_default()
            .push(Box::new(move || d.crash()));
        disk
    }

    /// Position of `node` in the world's node list (a handful of names: a
    /// scan is cheaper than a map lookup, and it runs on every message).
    pub(crate) fn position(&self, node: &str) -> Option<usize> {
        self.inner.names.iter().position(|n| n == node)
    }

    /// Whether `node` is started and not crashed (a paused node is up).
    /// False for a name the world does not know.
    pub fn is_up(&self, node: &str) -> bool {
        self.position(node).is_some_and(|i| self.is_up_by_index(i))
    }

    /// [`World::is_up`] for the node at position `i` of the node list.
    pub(crate) fn is_up_by_index(&self, i: usize) -> bool {
        let nodes = self.inner.nodes.lock().expect("world lock");
        nodes.get(i).and_then(Option::as_ref).is_some_and(|n| n.up)
    }

    pub(crate) fn node_handle_by_index(&self, i: usize) -> Option<NodeHandle> {
        let nodes = self.inner.nodes.lock().expect("world lock");
        let id = nodes.get(i)?.as_ref().filter(|n| n.up)?.handle.id();
        drop(nodes);
        // Ask the runtime each time: a restart replaces the node's spawner.
        Handle::current().get_node(id)
    }

    /// Crash a node: its tasks die, its memory is gone, its disks lose what
    /// was not fsynced. No-op if it is already down.
    pub fn crash(&self, node: &str) {
        let id = {
            let mut nodes = self.inner.nodes.lock().expect("world lock");
            let Some(rec) = self.position(node).and_then(|i| nodes[i].as_mut()) else {
                return;
            };
            if !rec.up {
                return;
            }
            rec.up = false;
            rec.paused = false;
            rec.handle.id()
        };
        self.inner.crashes.fetch_add(1, Ordering::Relaxed);
        emit!("world", "crash", "{node}");
        Handle::current().kill(id);
        if let Some(hooks) = self.inner.crash_hooks.lock().expect("world lock").get(node) {
            for hook in hooks {
                hook();
            }
        }
    }

    /// Restart a crashed node: its init closure runs again. No-op if up.
    pub fn restart(&self, node: &str) {
        let id = {
            let mut nodes = self.inner.nodes.lock().expect("world lock");
            let Some(rec) = self.position(node).and_then(|i| nodes[i].as_mut()) else {
                return;
            };
            if rec.up {
                return;
            }
            rec.up = true;
            rec.handle.id()
        };
        emit!("world", "restart", "{node}");
        Handle::current().restart(id);
    }

    /// Stall every task of a node until [`World::resume`].
    pub fn pause(&self, node: &str) {
        let id = {
            let mut nodes = self.inner.nodes.lock().expect("world lock");
            let Some(rec) = self
                .position(node)
                .and_then(|i| nodes[i].as_mut())
                .filter(|r| r.up && !r.paused)
            else {
                return;
            };
            rec.paused = true;
            rec.handle.id()
        };
        self.inner.pauses.fetch_add(1, Ordering::Relaxed);
        emit!("world", "pause", "{node}");
        Handle::current().pause(id);
    }

    /// Let a paused node's tasks run again. No-op if it is not paused.
    pub fn resume(&self, node: &str) {
        let id = {
            let mut nodes = self.inner.nodes.lock().expect("world lock");
            let Some(rec) = self
                .position(node)
                .and_then(|i| nodes[i].as_mut())
                .filter(|r| r.paused)
            else {
                return;
            };
            rec.paused = false;
            rec.handle.id()
        };
        emit!("world", "resume", "{node}");
        Handle::current().resume(id);
    }

    /// End the safety phase: faults off, every node up and running, links
    /// healed (the transport stops applying partitions once faults are off).
    pub fn heal(&self) {
        self.inner.faults_on.store(false, Ordering::Relaxed);
        emit!("world", "heal", "faults off; liveness phase");
        for name in self.node_names() {
            self.resume(&name);
            self.restart(&name);
        }
    }

    /// Apply the plan's crashes and pauses on schedule, until healed.
    /// Spawn it on the supervisor: `tokio::spawn(world.clone().nemesis())`.
    pub async fn nemesis(self) {
        #[derive(Debug)]
        enum Act {
            Crash(String),
            Restart(String),
            Pause(String),
            Resume(String),
        }
        let mut acts: Vec<(u64, usize, Act)> = Vec::new();
        let plan = &self.inner.plan;
        for c in &plan.crashes {
            acts.push((c.at_ms, acts.len(), Act::Crash(c.node.clone())));
            if let Some(d) = c.down_ms {
                acts.push((
                    c.at_ms.saturating_add(d),
                    acts.len(),
                    Act::Restart(c.node.clone()),
                ));
            }
        }
        for p in &plan.pauses {
            acts.push((p.at_ms, acts.len(), Act::Pause(p.node.clone())));
            acts.push((
                p.at_ms.saturating_add(p.for_ms),
                acts.len(),
                Act::Resume(p.node.clone()),
            ));
        }
        acts.sort_by_key(|(t, i, _)| (*t, *i));
        for (at_ms, _, act) in acts {
            let now = elapsed_ms();
            if at_ms > now {
                tokio::time::sleep(Duration::from_millis(at_ms - now)).await;
            }
            if !self.faults_on() {
                return;
            }
            match act {
                Act::Crash(n) => self.crash(&n),
                Act::Restart(n) => self.restart(&n),
                Act::Pause(n) => self.pause(&n),
                Act::Resume(n) => self.resume(&n),
            }
        }
    }

    /// End the run: stop every node's tasks and the nemesis, and let the
    /// executor drop them. madsim keeps a task that never finishes alive
    /// after the runtime is gone (its task info holds its own waker), so
    /// without this every run would leak its nodes' state. Call last,
    /// after reading the results.
    pub async fn shutdown(&self) {
        if let Some(n) = self.inner.nemesis.lock().expect("world lock").take() {
            n.abort();
        }
        let ids: Vec<_> = {
            let mut nodes = self.inner.nodes.lock().expect("world lock");
            nodes
                .iter_mut()
                .flatten()
                .map(|rec| {
                    rec.up = false;
                    rec.handle.id()
                })
                .collect()
        };
        let handle = Handle::current();
        for id in ids {
            handle.kill(id);
        }
        // Killed tasks are dropped when the executor next polls them.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    /// Run the two phases: faults until `safety_ms` (or until `done`), then
    /// heal and wait until `done` again, at most `liveness_ms` more.
    /// `done` is polled every `poll_ms` of simulated time.
    pub async fn run_phases(
        &self,
        safety_ms: u64,
        liveness_ms: u64,
        poll_ms: u64,
        mut done: impl FnMut() -> bool,
    ) -> PhaseReport {
        let poll = Duration::from_millis(poll_ms.max(1));
        let nemesis = tokio::spawn(self.clone().nemesis());
        *self.inner.nemesis.lock().expect("world lock") = Some(nemesis);
        while elapsed_ms() < safety_ms && !done() {
            tokio::time::sleep(poll).await;
        }
        let safety_end_ms = elapsed_ms();
        self.heal();
        let limit = safety_end_ms.saturating_add(liveness_ms);
        let mut converged = done();
        while !converged && elapsed_ms() < limit {
            tokio::time::sleep(poll).await;
            converged = done();
        }
        let end_ms = elapsed_ms();
        emit!(
            "world",
            "end",
            "safety ended {safety_end_ms}ms, run ended {end_ms}ms, converged={converged}"
        );
        PhaseReport {
            safety_end_ms,
            end_ms,
            converged,
            crashes: self.inner.crashes.load(Ordering::Relaxed),
            pauses: self.inner.pauses.load(Ordering::Relaxed),
        }
    }
}
