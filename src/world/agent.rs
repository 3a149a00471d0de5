//! The agent: the caller of the saga tool, behaving like an LLM agent
//! with a tool-calling loop. It calls `start(input)`, and on a
//! timeout or a "still running" answer it calls again with the *same*
//! business key, up to a limit. After its own crash it has forgotten
//! everything and re-issues the call.
//!
//! Its record (what it was told, when) is kept by the world for metrics
//! (latency as the agent sees it); the agent itself never reads it back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::wire::{Request, Response, COORDINATOR};
use crate::emit;
use crate::saga::{SagaInput, SagaStatus};
use crate::sim::clock::elapsed_ms;
use crate::sim::Net;

/// What one agent experienced (across its restarts).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// The agent's number (1-based; its node is `agent-{n}`).
    pub agent: u32,
    /// The business key it asks for on every call.
    pub business_key: String,
    /// Simulated ms of its first tool call.
    pub first_call_ms: Option<u64>,
    /// Simulated ms of its last decided answer.
    pub answered_ms: Option<u64>,
    /// The decided status it was told last; `None` if it never got one
    /// (every call timed out or answered "running").
    pub answer: Option<SagaStatus>,
    /// Every decided status it was told, in order: one per incarnation at
    /// most (a restarted agent asks again), so at most `boots`.
    #[serde(default)]
    pub answers: Vec<SagaStatus>,
    /// Tool calls made, over all incarnations.
    pub calls: u32,
    /// Tool calls that ended without a reply (timeout or refused).
    pub timeouts: u32,
    /// Incarnations: 1, plus one per restart after a crash.
    pub boots: u32,
    /// Whether an incarnation used up `attempts_max` calls without a
    /// decided answer.
    pub gave_up: bool,
    /// Whether the current incarnation is done (answered or gave up).
    pub finished: bool,
}

/// How an agent behaves.
#[derive(Clone, Debug)]
pub struct AgentPlan {
    /// The agent's node name (`agent-{n}`).
    pub name: String,
    /// What it asks the saga tool for, the same on every call.
    pub input: SagaInput,
    /// Simulated ms before its first call (a restarted agent that is past
    /// it calls at once).
    pub start_at_ms: u64,
    /// How long it waits for one tool call's reply.
    pub timeout: Duration,
    /// Pause between a call without a decided answer and the next.
    pub retry: Duration,
    /// Most calls per incarnation before it gives up (a restart starts the
    /// count again).
    pub attempts_max: u32,
}

/// The agent's main loop (one incarnation).
pub async fn run_agent(
    net: Net<Request, Response>,
    plan: AgentPlan,
    record: Arc<Mutex<AgentRecord>>,
) {
    {
        let mut r = record.lock().expect("agent record");
        r.boots += 1;
        r.finished = false;
    }
    let now = elapsed_ms();
    if now < plan.start_at_ms {
        tokio::time::sleep(Duration::from_millis(plan.start_at_ms - now)).await;
    }
    for attempt in 1..=plan.attempts_max {
        {
            let mut r = record.lock().expect("agent record");
            r.calls += 1;
            r.first_call_ms.get_or_insert(elapsed_ms());
        }
        emit!(
            plan.name,
            "tool-call",
            "start {} attempt {attempt}",
            plan.input.business_key
        );
        let reply = net
            .call(
                &plan.name,
                COORDINATOR,
                Request::Start(plan.input.clone()),
                plan.timeout,
            )
            .await;
        match reply {
            Ok(Response::Status(status)) if status.is_decided() => {
                emit!(
                    plan.name,
                    "tool-answer",
                    "{}: {status:?}",
                    plan.input.business_key
                );
                let mut r = record.lock().expect("agent record");
                r.answers.push(status.clone());
                r.answer = Some(status);
                r.answered_ms = Some(elapsed_ms());
                r.finished = true;
                return;
            }
            Ok(Response::Status(_running)) => {}
            Ok(other) => panic!("coordinator answered {other:?}"),
            Err(_) => record.lock().expect("agent record").timeouts += 1,
        }
        tokio::time::sleep(plan.retry).await;
    }
    emit!(plan.name, "tool-give-up", "{}", plan.input.business_key);
    let mut r = record.lock().expect("agent record");
    r.gave_up = true;
    r.finished = true;
}
