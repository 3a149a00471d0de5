//! Issue 15: what each seed draws besides its faults — its workload
//! (`[swarm]`: agents, rooms, declines, capture mode, partial captures,
//! price, hold TTL, attempts) and the environment's own events (a PMS
//! operator, the card network) — and that seeds of different scenarios
//! draw different plans.

use std::collections::BTreeSet;
use std::process::Command;

use sagasim::check::check;
use sagasim::check::coverage::coverage;
use sagasim::check::truth::{Expectations, Progress, Truth};
use sagasim::harness::{reference, run_checked, Checked};
use sagasim::saga::SagaStatus;
use sagasim::scenario::{CaptureModeName, Scenario, WorkloadDraw};
use sagasim::services::stripe::{CancellationReason, PaymentIntentStatus};
use sagasim::sim::faults::{EnvEvent, EnvKind};
use sagasim::sim::FaultPlan;
use sagasim::trace::TraceMode;
use sagasim::world::run::{plan_for, RunOutcome};

use crate::checkout::scenario;

/// A draw of one agent, one room, manual capture: the shape the event
/// tests below need, whatever the seed would draw.
fn one_manual_checkout(partial: bool) -> WorkloadDraw {
    WorkloadDraw {
        agents: 1,
        rooms: 1,
        declining_agents: BTreeSet::new(),
        capture: CaptureModeName::Manual,
        partial_capture_agents: if partial { [1].into() } else { BTreeSet::new() },
        capture_cents: 18_000,
        price_cents: 25_000,
        hold_ttl_ms: 900_000,
        agent_attempts_max: 200,
        ..WorkloadDraw::default()
    }
}

fn plan(workload: WorkloadDraw, events: Vec<EnvEvent>) -> FaultPlan {
    FaultPlan {
        workload: Some(workload),
        events,
        ..FaultPlan::default()
    }
}

#[test]
fn each_seed_draws_its_workload_within_the_scenario_bounds_and_records_it() {
    let s = scenario("hotel-checkout");
    let bounds = s.swarm.clone().expect("the default scenario has a [swarm]");
    let mut captures = BTreeSet::new();
    let (mut partial, mut declines, mut short_ttl, mut contended) = (0, 0, 0, 0);
    for seed in 0..400 {
        let p = plan_for(&s, seed);
        let d = p.workload.clone().expect("a swarm plan records its draw");
        let [lo, hi] = bounds.agents.unwrap();
        assert!((lo..=hi).contains(&d.agents), "{d:?}");
        let [lo, hi] = bounds.rooms.unwrap();
        assert!((lo..=hi).contains(&d.rooms), "{d:?}");
        let [lo, hi] = bounds.price_cents.unwrap();
        assert!((lo..=hi).contains(&d.price_cents), "{d:?}");
        assert!(d
            .declining_agents
            .iter()
            .all(|a| (1..=d.agents).contains(a)));
        assert!(d.capture_cents < d.price_cents);
        captures.insert(d.capture);
        partial += usize::from(
            !d.partial_capture_agents.is_empty() && d.capture == CaptureModeName::Manual,
        );
        declines += usize::from(!d.declining_agents.is_empty());
        short_ttl += usize::from(d.hold_ttl_ms < 60_000);
        contended += usize::from(d.agents > d.rooms);
        // The drawn scenario is a valid one, and is what the run runs.
        let drawn = s.for_plan(&p).expect("a drawn scenario validates");
        assert_eq!(drawn.workload.agents, d.agents);
        if seed < 3 {
            let c = run_checked(&s, seed, &p, TraceMode::HashOnly, reference());
            assert_eq!(c.outcome.agents.len(), d.agents as usize);
            assert_eq!(
                c.outcome.workload.name(),
                match d.capture {
                    CaptureModeName::Automatic => "hotel_checkout_automatic",
                    CaptureModeName::Manual => "hotel_checkout_manual",
                }
            );
        }
    }
    assert_eq!(captures.len(), 2, "both capture modes drawn");
    for (what, n) in [
        ("partial captures", partial),
        ("declining cards", declines),
        ("holds shorter than a minute", short_ttl),
        ("more agents than rooms", contended),
    ] {
        assert!(n >= 20, "{what} in only {n} of 400 seeds");
    }
}

#[test]
fn seeds_of_different_scenarios_draw_different_plans() {
    // crm-refuses and stripe-refunds share a topology (four agents) and a
    // fault profile; before plans mixed in the scenario's name, seed n drew
    // the same faults in each.
    let (a, b) = (scenario("crm-refuses"), scenario("stripe-refunds"));
    assert_eq!(a.faults, b.faults);
    let same = (0..50)
        .filter(|seed| plan_for(&a, *seed).calls == plan_for(&b, *seed).calls)
        .count();
    assert!(same < 5, "{same} of 50 seeds drew the same call faults");
    // And a scenario's plan is still a pure function of its seed.
    assert_eq!(plan_for(&a, 9), plan_for(&a, 9));
}

#[test]
fn a_partial_capture_takes_the_final_bill_and_releases_the_rest() {
    let s = scenario("hotel-checkout");
    let p = plan(one_manual_checkout(true), vec![]);
    let c = run_checked(&s, 1, &p, TraceMode::HashOnly, reference());
    assert!(c.verdict.ok(), "{:?}", c.verdict.first());
    assert_eq!(c.outcome.agents[0].answer, Some(SagaStatus::Completed));
    let pi = c.outcome.stripe.payment_intents.values().next().unwrap();
    assert_eq!(pi.status, PaymentIntentStatus::Succeeded);
    assert_eq!(
        pi.amount_received_cents, 18_000,
        "the final bill, not the hold"
    );
    assert_eq!(c.outcome.stripe.net_cents("cust-1"), 18_000);
}

#[test]
fn a_room_type_taken_out_of_order_before_the_confirm_is_compensated() {
    let s = scenario("hotel-checkout");
    let out_of_order = EnvEvent {
        at_ms: 0,
        what: EnvKind::RoomType {
            service: "inventory".into(),
            room_type: "standard".into(),
            capacity: 1,
            out_of_order: true,
        },
    };
    let mut draw = one_manual_checkout(false);
    draw.capture = CaptureModeName::Automatic;
    let c = run_checked(
        &s,
        1,
        &plan(draw, vec![out_of_order]),
        TraceMode::HashOnly,
        reference(),
    );
    assert!(c.verdict.ok(), "{:?}", c.verdict.first());
    assert!(
        matches!(&c.outcome.agents[0].answer, Some(SagaStatus::Compensated { reason }) if reason.contains("confirm_room")),
        "{:?}",
        c.outcome.agents[0].answer
    );
    assert_eq!(c.outcome.stripe.net_cents("cust-1"), 0, "refunded");
    assert!(c.outcome.inventory.bookings.is_empty());
}

/// The card network ends the authorization while the saga is past its
/// pivot: the capture can only fail, the room is booked, and the only
/// honest answer is NeedsOperator — which the checks accept because the
/// services show Stripe did it (`cancellation_reason = automatic`).
#[test]
fn an_authorization_the_network_ends_after_the_pivot_goes_to_an_operator() {
    let s = scenario("hotel-checkout");
    // Find when the room is confirmed, then end the authorization just
    // after it (before the capture).
    let clean = run_checked(
        &s,
        1,
        &plan(one_manual_checkout(false), vec![]),
        TraceMode::Full,
        reference(),
    );
    let confirmed_ms = clean
        .trace
        .events
        .iter()
        .find(|e| e.text.contains("confirm_room Action: Applied"))
        .map(|e| e.t_us.div_ceil(1000))
        .expect("the room is confirmed");
    let expire = EnvEvent {
        at_ms: confirmed_ms,
        what: EnvKind::AuthorizationsExpire {
            service: "stripe".into(),
        },
    };
    let c = run_checked(
        &s,
        1,
        &plan(one_manual_checkout(false), vec![expire.clone()]),
        TraceMode::HashOnly,
        reference(),
    );
    let pi = c.outcome.stripe.payment_intents.values().next().unwrap();
    assert_eq!(pi.cancellation_reason, Some(CancellationReason::Automatic));
    assert!(
        matches!(&c.outcome.agents[0].answer, Some(SagaStatus::NeedsOperator { reason }) if reason.contains("capture")),
        "{:?}",
        c.outcome.agents[0].answer
    );
    assert_eq!(
        c.outcome.inventory.bookings.len(),
        1,
        "the room stays booked"
    );
    assert!(c.verdict.ok(), "{:?}", c.verdict.first());
    assert_eq!(c.outcome.stripe.authorizations_expired_early, 1);
}

#[test]
fn a_plan_file_with_an_invalid_workload_draw_is_refused_in_one_line() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let mut draw = one_manual_checkout(true);
    draw.capture_cents = 30_000; // above the price
    let file = dir.join("bad-draw.json");
    std::fs::write(&file, serde_json::to_string(&plan(draw, vec![])).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sagasim"))
        .args(["replay", "--plan", file.to_str().unwrap()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("workload.capture_cents"), "{err}");
    // A fixed [plan] may not carry a draw: [workload] says it.
    let s: Result<Scenario, _> = toml::from_str(
        "name = \"x\"\n[plan.workload]\nagents = 1\nrooms = 1\ndeclining_agents = []\ncapture = \"manual\"\ncapture_cents = 1\nprice_cents = 2\nhold_ttl_ms = 1\nagent_attempts_max = 1\n",
    );
    let s = s.expect("parses");
    let topo = sagasim::world::run::topology(&s);
    assert!(s.check_plan(&topo, "x.toml").is_err());
}

/// One agent, one room, automatic capture, no faults: the saga completes.
fn one_automatic_checkout() -> WorkloadDraw {
    let mut draw = one_manual_checkout(false);
    draw.capture = CaptureModeName::Automatic;
    draw
}

/// When the only caller of a clean run of `draw` was told its stay is
/// booked, on the simulated clock, and the run (for the ids).
fn answered(s: &Scenario, draw: &WorkloadDraw) -> (u64, Checked) {
    let clean = run_checked(
        s,
        1,
        &plan(draw.clone(), vec![]),
        TraceMode::HashOnly,
        reference(),
    );
    assert!(clean.verdict.ok(), "{:?}", clean.verdict.first());
    let agent = &clean.outcome.agents[0];
    assert_eq!(agent.answer, Some(SagaStatus::Completed));
    (agent.answered_ms.expect("answered"), clean)
}

/// Progress of each resource of the only business key.
fn progress_of(out: &RunOutcome) -> Vec<(String, Progress)> {
    let truth = Truth::of(out);
    let expect = Expectations::of(&out.workload);
    let (_, k) = truth.keys.iter().next().expect("one business key");
    expect
        .progress(k)
        .into_iter()
        .map(|(r, p)| (r.to_string(), p))
        .collect()
}

/// The checks of `out` break `invariant` with facts that say `fact`.
fn assert_flagged(s: &Scenario, out: &RunOutcome, invariant: &str, fact: &str) {
    let v = check(s, out);
    assert!(
        v.all()
            .any(|x| x.invariant == invariant && x.facts.contains(fact)),
        "{:?}",
        v.all().collect::<Vec<_>>()
    );
}

/// One checkout that completes, and a guest who cancels its booking at the
/// front desk just after the caller was told it is booked.
fn guest_cancels_after_completion() -> (Scenario, Checked) {
    let s = scenario("hotel-checkout");
    let draw = one_automatic_checkout();
    let (done_ms, _) = answered(&s, &draw);
    let cancel = EnvEvent {
        at_ms: done_ms + 1,
        what: EnvKind::BookingCancelled {
            service: "inventory".into(),
            nth: 0,
        },
    };
    let c = run_checked(
        &s,
        1,
        &plan(draw, vec![cancel]),
        TraceMode::HashOnly,
        reference(),
    );
    (s, c)
}

/// A guest cancels the booking of a saga that completed: the PMS lists the
/// cancellation as the guest's, truth judges the booking removed by the
/// environment (after it was done), so the caller's `Completed` stands and
/// every invariant holds. Without `Progress::Removed` the booking counts
/// as nothing left and `all-or-nothing` fails.
#[test]
fn a_guest_cancelling_a_completed_sagas_booking_is_the_environments_removal() {
    let (s, c) = guest_cancels_after_completion();
    // The PMS: the one booking made, cancelled at the front desk.
    let pms = &c.outcome.inventory;
    assert_eq!(pms.bookings.len(), 1);
    let b = pms.bookings.values().next().unwrap();
    assert!(!b.stands(), "{b:?}");
    assert_eq!(pms.guest_cancellations, vec![b.id.clone()]);
    // The saga completed, and the checks excuse the guest's cancellation.
    assert_eq!(c.outcome.agents[0].answer, Some(SagaStatus::Completed));
    assert!(c.verdict.ok(), "{:?}", c.verdict.first());
    let progress = progress_of(&c.outcome);
    assert!(
        progress.iter().any(|(_, p)| matches!(
            p,
            Progress::Removed { was_done: true, what } if what.contains("cancelled by the guest")
        )),
        "{progress:?}"
    );
    let cov = coverage(&c.outcome);
    assert!(cov.0["pms: a completed saga's booking cancelled by the guest"] > 0);

    // Negative control: the same end state, but nobody at the desk
    // cancelled it (as if the coordinator had cancelled its own completed
    // booking). The excuse is the guest's alone: the check flags it.
    let mut own = c.outcome.clone();
    own.inventory.guest_cancellations.clear();
    assert_flagged(&s, &own, "all-or-nothing", "no inventory");
    assert!(progress_of(&own)
        .iter()
        .all(|(_, p)| !matches!(p, Progress::Removed { .. })));
}

/// A guest cancelling a booking does not hide a second booking the saga
/// made: at-most-once counts the cancelled one too.
#[test]
fn a_second_booking_is_still_flagged_when_the_guest_cancelled_one() {
    let (s, c) = guest_cancels_after_completion();
    assert!(c.verdict.ok(), "{:?}", c.verdict.first());
    // Forge a second, standing booking of the same saga (a coordinator
    // that confirmed twice): the guest's cancellation of the first does
    // not excuse it.
    let mut twice = c.outcome.clone();
    let (&n, first) = twice.inventory.bookings.iter().next_back().unwrap();
    let mut second = first.clone();
    second.id = format!("bk-{}", n + 1);
    assert!(!second.stands());
    second.cancelled_ms = None;
    assert!(second.stands());
    twice.inventory.bookings.insert(n + 1, second);
    assert_flagged(&s, &twice, "at-most-once", "2 bookings");
}

/// An admin deletes the saga's `Booking__c` (to the Recycle Bin) after
/// the saga completed. A fixed plan may carry the event whatever the
/// profile draws (`faults.crm_deletions` is 0 by default). Salesforce
/// lists the deletion as the admin's, truth judges the record removed by
/// the environment after it was done, and every invariant holds; the same
/// record deleted by nobody in particular is flagged.
#[test]
fn an_admin_deleting_a_completed_sagas_booking_record_is_the_environments_removal() {
    let s = scenario("hotel-checkout");
    assert_eq!(s.faults.crm_deletions, 0, "off by default");
    let draw = one_automatic_checkout();
    let (done_ms, clean) = answered(&s, &draw);
    // The admin picks the nth live record in id order: find the booking's.
    let live: Vec<&sagasim::services::salesforce::SfRecord> = clean
        .outcome
        .salesforce
        .records
        .values()
        .filter(|r| !r.is_deleted)
        .collect();
    assert_eq!(live.len(), 2, "a Booking__c and an Opportunity");
    let nth = live
        .iter()
        .position(|r| r.object == "Booking__c")
        .expect("the booking record") as u32;
    let delete = EnvEvent {
        at_ms: done_ms + 1,
        what: EnvKind::RecordDeleted {
            service: "salesforce".into(),
            nth,
        },
    };
    let p = plan(draw, vec![delete]);
    let topo = sagasim::world::run::topology(&s);
    p.validate(&topo).expect("a fixed plan may delete records");
    let c = run_checked(&s, 1, &p, TraceMode::HashOnly, reference());
    // Salesforce: the booking record in the Recycle Bin, by the admin.
    let sf = &c.outcome.salesforce;
    assert_eq!(sf.admin_deletions.len(), 1);
    let rec = &sf.records[&sf.admin_deletions[0]];
    assert_eq!(rec.object, "Booking__c");
    assert!(rec.is_deleted);
    assert_eq!(rec.fields["Status__c"], "Confirmed", "{rec:?}");
    // The saga completed; the checks judge the deletion the environment's.
    assert_eq!(c.outcome.agents[0].answer, Some(SagaStatus::Completed));
    assert!(c.verdict.ok(), "{:?}", c.verdict.first());
    let progress = progress_of(&c.outcome);
    assert!(
        progress.iter().any(|(r, p)| r == "Booking__c"
            && matches!(p, Progress::Removed { was_done: true, what } if what.contains("deleted by an admin"))),
        "{progress:?}"
    );
    let cov = coverage(&c.outcome);
    assert!(cov.0["salesforce: a completed saga's record deleted by an admin"] > 0);

    // Negative control: the record deleted, but not by an admin (as if the
    // coordinator had deleted its own completed record): flagged.
    let mut own = c.outcome.clone();
    own.salesforce.admin_deletions.clear();
    assert_flagged(&s, &own, "all-or-nothing", "no Booking__c");
}
