//! A small built-in workload that exercises the world until the hotel
//! checkout lands (then it is replaced, not kept as a second scenario).
//!
//! A `bank` node keeps balances on its disk (intent-free: each applied
//! operation is written and fsynced before the reply) and dedupes keyed
//! deposits; `client-N` nodes make keyed deposits with retries on timeout,
//! like any careful client. Invariant: a keyed deposit is applied at most
//! once, and the balance equals the sum of applied deposits.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::disk::Disk;
use super::faults::{FaultPlan, SwarmProfile, Topology};
use super::net::{CallError, Handler, Net, NetConfig};
use super::world::{simulate, PhaseReport, World};
use crate::emit;
use crate::services::Injected;
use crate::trace::{Trace, TraceMode};

/// A request to the bank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BankReq {
    /// Idempotent deposit: applied at most once per key.
    Deposit {
        key: String,
        cents: u64,
    },
    /// Non-idempotent deposit: every delivery applies it.
    DepositUnkeyed {
        cents: u64,
    },
    Balance,
}

/// The bank's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BankResp {
    Ok { balance: u64, replayed: bool },
    Busy,
    Error,
}

/// One durable bank record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub key: Option<String>,
    pub cents: u64,
}

/// The bank's in-memory state, rebuilt from its disk on restart.
#[derive(Debug, Default)]
struct Bank {
    balance: u64,
    keys: BTreeSet<String>,
}

impl Bank {
    fn recover(disk: &Disk<Applied>) -> Bank {
        let mut b = Bank::default();
        for rec in disk.read() {
            b.balance += rec.cents;
            if let Some(k) = rec.key {
                b.keys.insert(k);
            }
        }
        b
    }
}

/// Node names of the demo world.
pub fn node_names(clients: usize) -> Vec<String> {
    let mut v = vec!["bank".to_string()];
    v.extend((1..=clients).map(|i| format!("client-{i}")));
    v
}

/// The demo's topology (for swarm plans).
pub fn topology(clients: usize) -> Topology {
    let nodes = node_names(clients);
    Topology {
        links: nodes[1..]
            .iter()
            .map(|c| (c.clone(), "bank".to_string()))
            .collect(),
        crashable: nodes.clone(),
        services: vec!["bank".to_string()],
        nodes,
    }
}

/// What one demo run produced.
#[derive(Debug)]
pub struct DemoOutcome {
    pub phases: PhaseReport,
    /// Durable records of the bank.
    pub applied: Vec<Applied>,
    /// Keys each client saw acknowledged.
    pub acked: BTreeMap<String, Vec<String>>,
    pub stats: super::net::NetStats,
}

/// Serve the bank on `net` with state rebuilt from `disk`.
fn bank_handler(disk: Disk<Applied>) -> Handler<BankReq, BankResp> {
    let bank = Arc::new(Mutex::new(Bank::recover(&disk)));
    Arc::new(move |req, delivery| {
        let bank = bank.clone();
        let disk = disk.clone();
        Box::pin(async move {
            if delivery.injected == Some(Injected::Throttle) {
                return BankResp::Busy;
            }
            if delivery.injected == Some(Injected::FailBeforeApply) {
                return BankResp::Error;
            }
            let (record, replayed) = {
                let mut b = bank.lock().expect("bank");
                match &req {
                    BankReq::Deposit { key, cents } => {
                        if b.keys.contains(key) {
                            (None, true)
                        } else {
                            b.keys.insert(key.clone());
                            b.balance += cents;
                            (
                                Some(Applied {
                                    key: Some(key.clone()),
                                    cents: *cents,
                                }),
                                false,
                            )
                        }
                    }
                    BankReq::DepositUnkeyed { cents } => {
                        b.balance += cents;
                        (
                            Some(Applied {
                                key: None,
                                cents: *cents,
                            }),
                            false,
                        )
                    }
                    BankReq::Balance => (None, false),
                }
            };
            if let Some(r) = record {
                disk.write(r);
                disk.fsync().await;
            }
            if delivery.injected == Some(Injected::FailAfterApply) {
                return BankResp::Error;
            }
            let balance = bank.lock().expect("bank").balance;
            BankResp::Ok { balance, replayed }
        })
    })
}

/// Run the demo: `clients` clients, `ops` keyed deposits each, under `plan`.
pub fn run(
    seed: u64,
    plan: FaultPlan,
    clients: usize,
    ops: usize,
    mode: TraceMode,
) -> (DemoOutcome, Trace) {
    simulate(seed, mode, move || async move {
        let names = node_names(clients);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let world = World::new(seed, plan, &refs, Duration::from_millis(2));
        let net: Net<BankReq, BankResp> = Net::new(&world, NetConfig::default());
        let disk: Disk<Applied> = world.disk("bank");
        {
            let net = net.clone();
            let disk = disk.clone();
            world.start_node("bank", move || {
                net.serve("bank", bank_handler(disk.clone()));
                std::future::pending::<()>()
            });
        }
        let acked: Arc<Mutex<BTreeMap<String, Vec<String>>>> = Arc::default();
        let finished: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        for c in 1..=clients {
            let name = format!("client-{c}");
            let net = net.clone();
            let acked = acked.clone();
            let finished = finished.clone();
            let me = name.clone();
            world.start_node(&name, move || {
                let net = net.clone();
                let acked = acked.clone();
                let finished = finished.clone();
                let me = me.clone();
                async move {
                    // A restarted client starts over: keyed deposits make
                    // that safe.
                    for op in 0..ops {
                        let key = format!("{me}-op{op}");
                        let req = BankReq::Deposit {
                            key: key.clone(),
                            cents: 100 + op as u64,
                        };
                        for attempt in 0..8u32 {
                            match net
                                .call(&me, "bank", req.clone(), Duration::from_millis(500))
                                .await
                            {
                                Ok(BankResp::Ok { .. }) => {
                                    acked
                                        .lock()
                                        .expect("acked")
                                        .entry(me.clone())
                                        .or_default()
                                        .push(key.clone());
                                    break;
                                }
                                Ok(_) | Err(CallError::Timeout) | Err(CallError::Refused) => {
                                    let backoff = 50u64 << attempt.min(6);
                                    emit!(
                                        me,
                                        "retry",
                                        "{key} attempt {} after {backoff}ms",
                                        attempt + 1
                                    );
                                    tokio::time::sleep(Duration::from_millis(backoff)).await;
                                }
                            }
                        }
                    }
                    finished.lock().expect("finished").insert(me.clone());
                }
            });
        }
        let done = {
            let finished = finished.clone();
            let net = net.clone();
            move || finished.lock().expect("finished").len() == clients && net.in_flight() == 0
        };
        let phases = world.run_phases(30_000, 60_000, 100, done).await;
        let acked = acked.lock().expect("acked").clone();
        DemoOutcome {
            phases,
            applied: disk.durable().into_iter().map(|d| d.record).collect(),
            acked,
            stats: net.stats(),
        }
    })
}

/// The demo's swarm plan for a seed.
pub fn swarm_plan(seed: u64, clients: usize) -> FaultPlan {
    FaultPlan::swarm(seed, &SwarmProfile::default(), &topology(clients), 30_000)
}
