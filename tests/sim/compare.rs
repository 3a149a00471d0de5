//! The architecture comparison (issue 9): the naive orchestrator and the
//! saga coordinator on the same fault plans, measured by business metrics.

use std::sync::Arc;

use sagasim::fuzz::FuzzConfig;
use sagasim::harness::{known_coordinators, run_checked, Checked};
use sagasim::metrics::{compare, Aggregate, RunMetrics, Stale, StaleKind};
use sagasim::saga::SagaStatus;
use sagasim::scenario::{default_dir, Scenario};
use sagasim::sim::faults::Crash;
use sagasim::sim::FaultPlan;
use sagasim::trace::TraceMode;
use sagasim::workloads::hotel::naive::NaiveCoordinator;
use sagasim::workloads::hotel::{BOOKING, BOOKING_STATUS, STATUS_PENDING};
use sagasim::world::run::plan_for;

fn scenario(name: &str) -> Scenario {
    Scenario::load(name, &default_dir()).unwrap()
}

fn naive(s: &Scenario, seed: u64, plan: &FaultPlan) -> Checked {
    run_checked(s, seed, plan, TraceMode::Full, Arc::new(NaiveCoordinator))
}

fn seeds(start: u64, seeds: u64, jobs: usize) -> FuzzConfig {
    FuzzConfig {
        start,
        seeds,
        jobs,
        shard: None,
    }
}

fn by_name<'a>(aggregates: &'a [Aggregate], name: &str) -> &'a Aggregate {
    aggregates
        .iter()
        .find(|a| a.coordinator == name)
        .unwrap_or_else(|| panic!("no aggregate for {name}"))
}

/// The acceptance, on a modest number of seeds of the default
/// scenario: under the same faults the naive orchestrator double-charges
/// and leaves stale state, and the checkers (which know nothing of it) flag
/// it on the business invariant; the saga coordinator shows none of it.
#[test]
fn naive_double_charges_and_leaves_stale_state_where_the_saga_does_not() {
    let s = scenario("hotel-checkout");
    let c = compare(&s, &seeds(0, 120, 2), &known_coordinators(), |_| {});
    assert_eq!(c.seeds, 120);
    let (n, saga) = (
        by_name(&c.coordinators, "naive"),
        by_name(&c.coordinators, "saga"),
    );
    let table = c.table();
    assert_eq!((n.runs, saga.runs), (120, 120));
    assert_eq!(n.started, saga.started, "the same agents ran\n{table}");

    assert!(n.double_charges > 0, "{table}");
    assert!(n.overcharged_cents > 0, "{table}");
    assert!(n.stale > 0, "{table}");
    assert!(n.orphan_holds > 0, "{table}");
    assert!(n.answers_contradicted > 0, "{table}");
    assert!(
        n.runs_flagged_by_invariant
            .get("no-double-charge")
            .is_some_and(|r| *r > 0),
        "the checkers flag the naive double charges\n{table}"
    );

    assert_eq!(saga.double_charges, 0, "{table}");
    assert_eq!(saga.overcharged_cents, 0, "{table}");
    // The saga leaves stale state only where the services left it for an
    // operator — Stripe ended an authorization after the pivot (room
    // booked, not paid, CRM not closed), or failed the refund of a closed
    // card (paid, no room) — and never double-books or leaves the CRM
    // ahead of the PMS.
    for kind in [
        StaleKind::RoomBookedTwice,
        StaleKind::CrmConfirmedNoRoom,
        StaleKind::CrmOpenNoRoom,
    ] {
        assert_eq!(saga.stale_by_kind[&kind], 0, "{kind:?}\n{table}");
    }
    assert!(
        saga.runs_with_stale <= saga.needs_operator + saga.unanswered,
        "{table}"
    );
    assert_eq!(saga.orphan_holds, 0, "{table}");
    assert_eq!(saga.answers_contradicted, 0, "{table}");
    assert_eq!(saga.runs_flagged, 0, "{table}");
    assert_eq!(saga.completed, saga.completed_verified, "{table}");
    assert_eq!(saga.unattributed_effects + n.unattributed_effects, 0);
}

/// Same command, same table: the aggregates do not depend on the thread
/// count or on what ran before on a thread.
#[test]
fn the_comparison_is_deterministic() {
    let s = scenario("hotel-checkout");
    let one = compare(&s, &seeds(500, 60, 1), &known_coordinators(), |_| {});
    let two = compare(&s, &seeds(500, 60, 2), &known_coordinators(), |_| {});
    assert_eq!(one.coordinators, two.coordinators);
    assert_eq!(one.table(), two.table());
    assert!(!one.table().contains(" s ("), "no wall time in the table");
}

/// The article's case (the Salesforce write lands, its reply is lost)
/// against the naive orchestrator: its retry is a plain create that
/// collides with the record that landed, so it believes the CRM failed,
/// refunds and releases — and leaves a pending booking in the CRM that it
/// never learned the id of. The agent is told "compensated"; the ground
/// truth disagrees.
#[test]
fn article_case_naive_rolls_back_and_leaves_the_crm_booking_pending() {
    let s = scenario("article-salesforce-timeout");
    let c = naive(&s, 7, &plan_for(&s, 7));
    let out = &c.outcome;
    assert!(
        matches!(out.agents[0].answer, Some(SagaStatus::Compensated { .. })),
        "{:?}\n{}",
        out.agents[0],
        c.trace.render()
    );
    assert_eq!(out.stripe.net_cents("cust-1"), 0, "refunded");
    let pending: Vec<_> = out
        .salesforce
        .with_external_id(BOOKING, "saga-res-1")
        .filter(|r| r.fields.get(BOOKING_STATUS).and_then(|v| v.as_str()) == Some(STATUS_PENDING))
        .collect();
    assert_eq!(pending.len(), 1, "{}", c.trace.render());
    assert!(c
        .trace
        .of_kind("naive-error")
        .any(|e| e.text.contains("DuplicateValue")));

    let m = RunMetrics::of(out, &c.verdict);
    assert_eq!(
        m.stale,
        vec![Stale {
            business_key: "res-1".into(),
            kind: StaleKind::CrmOpenNoRoom
        }]
    );
    assert_eq!(m.contradicted, vec!["res-1"]);
    assert_eq!(m.completed_verified, 0);
    assert!(!c.verdict.ok(), "the checkers flag the naive run");
}

/// No intent log: a coordinator crash right after the charge landed makes
/// the naive orchestrator forget the flow. The agent calls again; the new
/// flow finds the only room still held by the forgotten flow and gives up.
/// The customer is charged for nothing, and the hold is orphaned.
#[test]
fn naive_forgets_a_charge_and_a_hold_across_a_crash() {
    let s = scenario("article-salesforce-timeout");
    let clean = naive(&s, 3, &FaultPlan::default());
    let charged_ms = clean
        .trace
        .events
        .iter()
        .find(|e| e.node == "coordinator" && e.kind == "recv" && e.text.contains("Succeeded"))
        .map(|e| e.t_us / 1000)
        .expect("the clean run charges");
    let plan = FaultPlan {
        crashes: vec![Crash {
            node: "coordinator".into(),
            at_ms: charged_ms + 1,
            down_ms: Some(2_000),
        }],
        ..FaultPlan::default()
    };
    let c = naive(&s, 3, &plan);
    let out = &c.outcome;
    assert!(out.phases.converged);
    assert_eq!(
        out.stripe.net_cents("cust-1"),
        25_000,
        "{}",
        c.trace.render()
    );
    assert!(out.inventory.bookings.is_empty());
    let m = RunMetrics::of(out, &c.verdict);
    assert!(
        m.stale.contains(&Stale {
            business_key: "res-1".into(),
            kind: StaleKind::PaidNoRoom
        }),
        "{m:?}\n{}",
        c.trace.render()
    );
    assert_eq!(m.orphan_holds.len(), 1, "{m:?}");
    assert!(matches!(
        out.agents[0].answer,
        Some(SagaStatus::Compensated { .. })
    ));
}

/// Issue 18: the study sweeps fault intensity over the same seeds. With no
/// faults nothing is thinned in (0 faults per run) and the ceiling of the
/// default scenario (4 agents, 3 rooms, one declining card) is 75 %; the
/// saga never double-charges at any intensity, the naive orchestrator does
/// at full intensity; the result does not depend on the thread count.
#[test]
fn the_study_sweeps_intensity_over_the_same_seeds() {
    use sagasim::study::study;
    let s = scenario("hotel-checkout");
    let st = study(
        &s,
        &seeds(0, 24, 2),
        &known_coordinators(),
        &[0, 100, 1000],
        |_| {},
    );
    assert_eq!(st.points.len(), 3);
    assert_eq!(st.points[0].faults_per_run, 0.0);
    assert!(st.points[0].faults_per_run < st.points[1].faults_per_run);
    assert!(st.points[1].faults_per_run < st.points[2].faults_per_run);
    // Every point and coordinator runs the same seeds' workloads (drawn
    // per seed, not thinned): the same checkouts, the same ceiling.
    let first = &st.points[0].coordinators[0];
    assert!(first.started >= 24 && first.could_succeed > 0, "{first:?}");
    for p in &st.points {
        for a in &p.coordinators {
            assert_eq!((a.runs, a.started), (24, first.started), "{a:?}");
            assert_eq!(a.could_succeed, first.could_succeed);
            assert_eq!(a.ceiling_rate, first.ceiling_rate);
            assert!(a.completed_verified <= a.could_succeed);
        }
        assert_eq!(p.of("saga").unwrap().double_charges, 0);
    }
    assert!(st.heaviest().of("naive").unwrap().double_charges > 0);
    // The heaviest point is exactly `compare`'s one table at 100 %.
    let c = compare(&s, &seeds(0, 24, 2), &known_coordinators(), |_| {});
    for (a, b) in c.coordinators.iter().zip(&st.heaviest().coordinators) {
        assert_eq!(a, b);
    }
    let again = study(
        &s,
        &seeds(0, 24, 1),
        &known_coordinators(),
        &[0, 100, 1000],
        |_| {},
    );
    assert_eq!(again.points, st.points);
    assert_eq!(again.claims, st.claims);
}

fn sagasim(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sagasim"))
        .args(args)
        .output()
        .unwrap()
}

/// Issue 18: `compare --json --html` carries the sweep's points, the page
/// has one inline SVG chart per measure and no script, and every example
/// seed's replay command works as printed: it replays the same run (the
/// thinned plan file exists) and exits 1 where the example is a violation.
#[test]
fn compare_page_has_charts_and_examples_that_replay_as_printed() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("compare-study");
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.display().to_string();
    let out = sagasim(&[
        "compare",
        "--seeds",
        "16",
        "--jobs",
        "2",
        "--intensities",
        "0,3,100",
        "--json",
        "--html",
        &d,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let j: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let points = j["points"].as_array().unwrap();
    assert_eq!(points.len(), 3);
    assert_eq!(points[1]["intensity_permille"], 30);
    assert!(points[2]["coordinators"][0]["success_rate_of_possible"].is_number());
    assert!(j["claims"].as_array().unwrap().len() == 2);

    let page = std::fs::read_to_string(dir.join("compare-hotel-checkout-0-16.html")).unwrap();
    assert_eq!(page.matches("<svg").count(), 5, "five charts");
    for title in [
        "Success rate",
        "Latency p50",
        "Latency p99",
        "double charge",
        "stale state",
    ] {
        assert!(page.contains(title), "{title}");
    }
    assert!(page.contains("94"), "the article's claim is on the page");
    assert!(
        !page.contains("<script") && !page.contains("http://") && !page.contains("https://"),
        "nothing loaded"
    );

    // The examples: printed with replay commands; each replays.
    let replays: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("replay: cargo run --release -- "))
        .collect();
    assert!(
        !replays.is_empty(),
        "the naive run fails somewhere\n{stdout}"
    );
    for cmd in &replays {
        let args: Vec<&str> = cmd.split_whitespace().collect();
        let r = sagasim(&args);
        assert!(
            matches!(r.status.code(), Some(0 | 1)),
            "{cmd}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
    }
    // A violation example replays as a violation, and its report is linked.
    let violation = stdout
        .lines()
        .position(|l| l.contains("naive invariant violated"))
        .expect("naive violates an invariant in 16 seeds");
    let cmd = stdout.lines().nth(violation + 1).unwrap();
    let args: Vec<&str> = cmd
        .trim()
        .strip_prefix("replay: cargo run --release -- ")
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(sagasim(&args).status.code(), Some(1), "{cmd}");
    let linked: Vec<&str> = page
        .split("<a href=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert!(!linked.is_empty());
    for href in linked {
        assert!(dir.join(href).is_file(), "{href} is linked and written");
    }
}
