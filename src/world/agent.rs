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
    pub agent: u32,
    pub business_key: String,
    /// Simulated ms of its first tool call.
    pub first_call_ms: Option<u64>,
    /// Simulated ms of its last decided answer.
    pub answered_ms: Option<u64>,
    pub answer: Option<SagaStatus>,
    pub calls: u32,
    pub timeouts: u32,
    pub boots: u32,
    pub gave_up: bool,
    /// Whether the current incarnation is done (answered or gave up).
    pub finished: bool,
}

/// How an agent behaves.
#[derive(Clone, Debug)]
pub struct AgentPlan {
    pub name: String,
    pub input: SagaInput,
    pub start_at_ms: u64,
    pub timeout: Duration,
    pub retry: Duration,
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
