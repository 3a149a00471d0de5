//! Every delivery decision happens when the plan says, and never otherwise.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sagasim::services::Injected;
use sagasim::sim::faults::{Brownout, CallFault, CallFaultKind, Crash, Partition};
use sagasim::sim::net::{CallError, Delivery, Handler, NetStats};
use sagasim::sim::{simulate, FaultPlan, Net, NetConfig, World};
use sagasim::trace::TraceMode;

/// What the callee `b` saw: (arrival ms, delivery) per applied request.
type Seen = Arc<Mutex<Vec<(u64, Delivery)>>>;

/// A non-idempotent counter: every delivery increments it.
fn counter(seen: Seen) -> Handler<u32, u64> {
    Arc::new(move |_req, delivery| {
        let seen = seen.clone();
        Box::pin(async move {
            let mut s = seen.lock().unwrap();
            s.push((sagasim::sim::clock::elapsed_ms(), delivery));
            s.len() as u64
        })
    })
}

/// When a call ended (ms) and how.
type Timed = (u64, Result<u64, CallError>);

struct Outcome {
    results: Vec<Timed>,
    seen: Vec<(u64, Delivery)>,
    stats: NetStats,
}

/// Nodes `a` and `b`; `b` serves the counter; `a` makes `calls` calls with a
/// 1 s timeout, `gap_ms` apart; then the run idles 60 s so late requests land.
fn run(plan: FaultPlan, calls: u32, gap_ms: u64) -> Outcome {
    run_with(plan, calls, gap_ms, |_| {})
}

fn run_with(
    plan: FaultPlan,
    calls: u32,
    gap_ms: u64,
    during: impl Fn(&World) + 'static,
) -> Outcome {
    let (out, _trace) = simulate(7, TraceMode::Full, move || async move {
        let world = World::new(7, plan, &["a", "b"], Duration::from_millis(1));
        let net: Net<u32, u64> = Net::new(&world, NetConfig::default());
        let seen: Seen = Arc::default();
        {
            let (net, seen) = (net.clone(), seen.clone());
            world.start_node("b", move || {
                net.serve("b", counter(seen.clone()));
                std::future::pending::<()>()
            });
        }
        let results: Arc<Mutex<Vec<Timed>>> = Arc::default();
        {
            let (net, results) = (net.clone(), results.clone());
            world.start_node("a", move || {
                let (net, results) = (net.clone(), results.clone());
                async move {
                    for i in 0..calls {
                        let r = net.call("a", "b", i, Duration::from_secs(1)).await;
                        results
                            .lock()
                            .unwrap()
                            .push((sagasim::sim::clock::elapsed_ms(), r));
                        tokio::time::sleep(Duration::from_millis(gap_ms)).await;
                    }
                }
            });
        }
        tokio::spawn(world.clone().nemesis());
        during(&world);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let results = results.lock().unwrap().clone();
        let seen = seen.lock().unwrap().clone();
        Outcome {
            results,
            seen,
            stats: net.stats(),
        }
    });
    out
}

fn call_fault(index: u32, fault: CallFaultKind) -> FaultPlan {
    FaultPlan {
        calls: vec![CallFault {
            from: "a".into(),
            to: "b".into(),
            index,
            fault,
        }],
        ..FaultPlan::default()
    }
}

#[test]
fn without_faults_every_call_is_delivered_once_and_answered() {
    let o = run(FaultPlan::default(), 50, 10);
    assert_eq!(o.seen.len(), 50);
    assert!(o.results.iter().all(|(_, r)| r.is_ok()));
    assert_eq!(o.results.last().unwrap().1, Ok(50));
    let s = o.stats;
    assert_eq!(
        (
            s.dropped_requests,
            s.dropped_replies,
            s.duplicated,
            s.timeouts,
            s.injected
        ),
        (0, 0, 0, 0, 0)
    );
}

#[test]
fn dropped_request_is_not_applied_and_the_caller_times_out() {
    let o = run(call_fault(2, CallFaultKind::DropRequest), 5, 10);
    let errs: Vec<usize> = (0..5).filter(|&i| o.results[i].1.is_err()).collect();
    assert_eq!(errs, vec![2], "only call #2 fails");
    assert_eq!(o.results[2].1, Err(CallError::Timeout));
    assert_eq!(o.seen.len(), 4, "the dropped request was never applied");
    assert!(o.seen.iter().all(|(_, d)| d.index != 2));
}

#[test]
fn dropped_reply_leaves_the_effect_and_the_caller_timed_out() {
    let o = run(call_fault(0, CallFaultKind::DropReply), 1, 10);
    assert_eq!(o.results[0].1, Err(CallError::Timeout));
    assert_eq!(o.seen.len(), 1, "the callee applied the request");
    assert_eq!(o.stats.dropped_replies, 1);
    // The caller waited its full timeout.
    assert!(o.results[0].0 >= 1000);
}

#[test]
fn duplicate_is_applied_twice_by_a_non_idempotent_handler() {
    let o = run(
        call_fault(0, CallFaultKind::Duplicate { gap_ms: 30 }),
        1,
        10,
    );
    assert_eq!(o.seen.len(), 2, "both copies applied");
    assert_eq!(o.seen[0].1.copy, 0);
    assert_eq!(o.seen[1].1.copy, 1);
    assert!(o.seen[1].0 >= o.seen[0].0);
    assert_eq!(o.results[0].1, Ok(1), "the caller gets the first reply");
}

#[test]
fn delayed_request_arrives_after_the_callers_timeout() {
    let o = run(
        call_fault(0, CallFaultKind::DelayPastTimeout { extra_ms: 5_000 }),
        1,
        10,
    );
    let (gave_up_at, r) = o.results[0];
    assert_eq!(r, Err(CallError::Timeout));
    assert_eq!(o.seen.len(), 1, "the request still arrives");
    let arrived_at = o.seen[0].0;
    assert!(
        arrived_at >= gave_up_at + 5_000,
        "arrived {arrived_at} ms, caller gave up {gave_up_at} ms"
    );
    assert_eq!(o.stats.late_arrivals, 1);
}

#[test]
fn injected_fault_reaches_the_handler_for_that_call_only() {
    let o = run(
        call_fault(
            1,
            CallFaultKind::Inject {
                fault: Injected::FailAfterApply,
            },
        ),
        3,
        10,
    );
    let injected: Vec<Option<Injected>> = o.seen.iter().map(|(_, d)| d.injected).collect();
    assert_eq!(injected, vec![None, Some(Injected::FailAfterApply), None]);
}

#[test]
fn brownout_window_injects_only_inside_the_window() {
    let plan = FaultPlan {
        brownouts: vec![Brownout {
            service: "b".into(),
            from_ms: 1_000,
            until_ms: 2_000,
            fault: Injected::Throttle,
            permille: 1000,
        }],
        ..FaultPlan::default()
    };
    let o = run(plan, 30, 100);
    for (t, d) in &o.seen {
        let inside = (1_000..2_000).contains(t);
        assert_eq!(d.injected.is_some(), inside, "delivery at {t} ms");
    }
    assert!(o.seen.iter().any(|(_, d)| d.injected.is_some()));
}

#[test]
fn partition_stops_traffic_both_ways_and_heals() {
    let plan = FaultPlan {
        partitions: vec![Partition {
            a: "b".into(),
            b: "a".into(),
            from_ms: 2_000,
            until_ms: 6_000,
        }],
        ..FaultPlan::default()
    };
    // a -> b: calls every 500 ms.
    let o = run(plan.clone(), 20, 500);
    for (t, r) in &o.results {
        // A call sent in the window (t is when it ended: sent ~1 s earlier
        // when it timed out) fails; calls well outside succeed.
        if *t < 2_000 || *t > 7_100 {
            assert!(r.is_ok(), "call ending at {t} ms should succeed: {r:?}");
        }
    }
    assert!(o.results.iter().any(|(_, r)| r.is_err()));
    assert!(o.seen.iter().all(|(t, _)| !(2_000..6_000).contains(t)));

    // b -> a direction: the same window blocks it.
    let (blocked, _) = simulate(3, TraceMode::HashOnly, move || async move {
        let world = World::new(3, plan, &["a", "b"], Duration::from_millis(1));
        let net: Net<u32, u64> = Net::new(&world, NetConfig::default());
        let seen: Seen = Arc::default();
        {
            let (net, seen) = (net.clone(), seen.clone());
            world.start_node("a", move || {
                net.serve("a", counter(seen.clone()));
                std::future::pending::<()>()
            });
        }
        world.start_node("b", std::future::pending::<()>);
        tokio::time::sleep(Duration::from_millis(3_000)).await;
        let during = net.call("b", "a", 0, Duration::from_secs(1)).await;
        tokio::time::sleep(Duration::from_millis(4_000)).await;
        let after = net.call("b", "a", 1, Duration::from_secs(1)).await;
        (during, after)
    });
    assert_eq!(blocked.0, Err(CallError::Timeout));
    assert_eq!(blocked.1, Ok(1));
}

#[test]
fn heal_turns_faults_off() {
    let plan = FaultPlan {
        partitions: vec![Partition {
            a: "a".into(),
            b: "b".into(),
            from_ms: 0,
            until_ms: 1_000_000,
        }],
        ..FaultPlan::default()
    };
    let o = run_with(plan, 10, 1_000, |w| {
        let w = w.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(4_500)).await;
            w.heal();
        });
    });
    for (t, r) in &o.results {
        assert_eq!(r.is_ok(), *t > 5_000, "call ending {t} ms: {r:?}");
    }
}

#[test]
fn a_crashed_node_refuses_and_serves_again_after_restart() {
    let plan = FaultPlan {
        crashes: vec![Crash {
            node: "b".into(),
            at_ms: 1_500,
            down_ms: Some(3_000),
        }],
        ..FaultPlan::default()
    };
    let o = run(plan, 10, 1_000);
    let refused: Vec<u64> = o
        .results
        .iter()
        .filter(|(_, r)| *r == Err(CallError::Refused))
        .map(|(t, _)| *t)
        .collect();
    assert!(!refused.is_empty());
    assert!(
        refused.iter().all(|t| (1_500..4_600).contains(t)),
        "{refused:?}"
    );
    assert!(
        o.results.last().unwrap().1.is_ok(),
        "serves after restart: {:?}",
        o.results
    );
}
