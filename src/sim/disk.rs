//! Simulated durable storage: one append-only log per node.
//!
//! `write` puts a record in the page cache (a running process reads it
//! back at once); `fsync` makes everything written before it durable after
//! the disk's latency; a crash loses every write not yet fsynced — and
//! only those. The store lives in the world, outside the node's tasks, so it
//! survives madsim's `kill`, and the node's init closure reopens it on
//! restart.
//!
//! Each durable record remembers the simulated time its fsync completed,
//! so the checkers can prove "intent durable before effect".
//!
//! Not here: torn writes and corruption (a later fault kind), file names.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A record made durable, with the simulated time (µs) its fsync finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Durable<T> {
    /// The record as written.
    pub record: T,
    /// Simulated time (µs since the run began) when the fsync that made
    /// it durable completed.
    pub synced_at_us: u64,
}

struct State<T> {
    durable: Vec<Durable<T>>,
    pending: Vec<T>,
    /// Bumped by every crash: an fsync that began before a crash must not
    /// make anything durable after it.
    epoch: u64,
    fsyncs: u64,
}

/// Handle to one node's disk. Cloning shares the same disk.
pub struct Disk<T> {
    name: String,
    fsync_latency: Duration,
    state: Arc<Mutex<State<T>>>,
}

impl<T> Clone for Disk<T> {
    fn clone(&self) -> Self {
        Disk {
            name: self.name.clone(),
            fsync_latency: self.fsync_latency,
            state: self.state.clone(),
        }
    }
}

impl<T: Clone + std::fmt::Debug> Disk<T> {
    /// An empty disk. `name` labels its trace events (the node's name);
    /// every [`Disk::fsync`] takes `fsync_latency` of simulated time.
    pub fn new(name: impl Into<String>, fsync_latency: Duration) -> Self {
        Disk {
            name: name.into(),
            fsync_latency,
            state: Arc::new(Mutex::new(State {
                durable: Vec::new(),
                pending: Vec::new(),
                epoch: 0,
                fsyncs: 0,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().expect("disk lock")
    }

    /// Append a record to the page cache (not yet durable).
    pub fn write(&self, record: T) {
        self.lock().pending.push(record);
    }

    /// Make every record written before this call durable. Takes the disk's
    /// latency in simulated time; a crash meanwhile makes nothing durable.
    pub async fn fsync(&self) {
        let (epoch, n) = {
            let st = self.lock();
            (st.epoch, st.pending.len())
        };
        tokio::time::sleep(self.fsync_latency).await;
        let now_us = crate::trace::sim_time_us();
        let mut st = self.lock();
        if st.epoch != epoch {
            return; // crashed while syncing: the writes are gone
        }
        let n = n.min(st.pending.len());
        let moved: Vec<T> = st.pending.drain(..n).collect();
        let count = moved.len();
        st.durable.extend(moved.into_iter().map(|record| Durable {
            record,
            synced_at_us: now_us,
        }));
        st.fsyncs += 1;
        drop(st);
        crate::emit!(self.name, "fsync", "{count} record(s) durable");
    }

    /// What a running process reads: durable records, then the page cache.
    pub fn read(&self) -> Vec<T> {
        let st = self.lock();
        st.durable
            .iter()
            .map(|d| d.record.clone())
            .chain(st.pending.iter().cloned())
            .collect()
    }

    /// Only the durable records, with their fsync times (for checkers).
    pub fn durable(&self) -> Vec<Durable<T>> {
        self.lock().durable.clone()
    }

    /// Number of completed fsyncs.
    pub fn fsyncs(&self) -> u64 {
        self.lock().fsyncs
    }

    /// Power loss: every write not yet fsynced is lost.
    pub fn crash(&self) {
        let mut st = self.lock();
        let lost = st.pending.len();
        st.pending.clear();
        st.epoch += 1;
        drop(st);
        crate::emit!(self.name, "disk-crash", "{lost} unsynced record(s) lost");
    }
}
