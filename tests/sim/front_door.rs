//! Issue 14, the front door as a property: arbitrary scenario values, plan
//! files and argument vectors never make `sagasim` panic, hang or exceed a
//! memory bound. Every case runs the real binary under `ulimit -v` with a
//! wall-clock deadline and must end with exit code 0, 1, 2 or 130, and bad
//! input must be one line on stderr.
//!
//! Runs stay tiny: the values are edge cases (0, 1, limits, limit + 1,
//! u32/u64 maxima, inf, NaN, negative), but any run the generator asks for
//! is at most a couple of seeds (`--seeds` is capped, or made to overflow).
//! The cases are drawn mostly valid, so a case often gets past validation
//! to a run: a panic there (the transport's unknown node, an overflow in a
//! debug build) is caught too.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Virtual memory limit of one case (KiB): the binary with two worker
/// threads needs well under a quarter of this.
const MEMORY_LIMIT_KIB: u64 = 2 * 1024 * 1024;
/// Wall-clock limit of one case: every case is validation plus at most a
/// tiny run.
const DEADLINE: Duration = Duration::from_secs(60);

fn cases(n: u32) -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(n),
        failure_persistence: None,
        ..Config::default()
    }
}

/// A fresh directory for one property's files (and the working directory of
/// its runs: `report`, `shrink` and `--failures` write only there).
fn work_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("front-door")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Run the binary with `args` in `dir` under the memory limit and the
/// deadline; fail the case on a panic, a hang, a signal or an exit code
/// outside 0/1/2/130, or on bad input that is not one line.
fn front_door(dir: &Path, args: &[String]) -> Result<(), TestCaseError> {
    let err_path = dir.join("stderr.txt");
    let err_file = std::fs::File::create(&err_path).unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {MEMORY_LIMIT_KIB} && exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_sagasim"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err_file)
        .spawn()
        .unwrap();
    // Wall time of a child process, outside every simulation.
    #[allow(clippy::disallowed_methods)]
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            return Err(TestCaseError::fail(format!(
                "{args:?}: no answer within {DEADLINE:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    prop_assert!(!err.contains("panicked"), "{args:?}: {err}");
    prop_assert!(
        !err.contains("memory allocation") && !err.contains("out of memory"),
        "{args:?}: over the memory bound: {err}"
    );
    let code = status.code();
    prop_assert!(
        matches!(code, Some(0 | 1 | 2 | 130)),
        "{args:?}: exit {status:?}: {err}"
    );
    if code == Some(2) {
        prop_assert_eq!(err.trim_end().lines().count(), 1, "{:?}: {}", args, err);
    }
    Ok(())
}

/// Edge values of each kind of field, mostly valid.
fn rate() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => prop::sample::select(vec!["0", "0.05", "0.3", "1"]),
        1 => prop::sample::select(vec!["inf", "-inf", "nan", "-0.5", "1.5", "1e308"]),
    ]
    .prop_map(str::to_string)
}

fn ms() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => prop::sample::select(vec!["1", "500", "20000", "86400000"]),
        1 => prop::sample::select(vec![
            "0",
            "86400001",
            "4294967295",
            "9223372036854775807",
            "18446744073709551615",
            "-1",
        ]),
    ]
    .prop_map(str::to_string)
}

fn count() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => prop::sample::select(vec!["0", "1", "3", "100"]),
        1 => prop::sample::select(vec!["101", "1001", "4294967295", "-1", "1.5"]),
    ]
    .prop_map(str::to_string)
}

fn signed() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "0",
        "-1",
        "500",
        "60000",
        "-9223372036854775808",
        "9223372036854775807",
    ])
    .prop_map(str::to_string)
}

fn node() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["coordinator", "stripe", "salesforce", "inventory", "agent-1"]),
        1 => prop::sample::select(vec!["mainframe", "agent-9", "", "agent-0"]),
    ]
    .prop_map(str::to_string)
}

/// The kind of a scenario field: which pool its values come from.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Rate,
    Ms,
    Count,
    Signed,
    Rooms,
}

fn value(kind: Kind) -> BoxedStrategy<String> {
    match kind {
        Kind::Rate => rate().boxed(),
        Kind::Ms => ms().boxed(),
        Kind::Count => count().boxed(),
        Kind::Signed => signed().boxed(),
        Kind::Rooms => count()
            .prop_map(|n| format!("{{ standard = {n} }}"))
            .boxed(),
    }
}

/// One `key = value` of a scenario, with its section: every numeric field
/// the issue names, and their neighbours, equally likely.
fn field() -> impl Strategy<Value = (String, String)> {
    use Kind::*;
    let table: &[(&str, &[&str], Kind)] = &[
        ("faults", &["drop_request", "drop_reply", "duplicate"], Rate),
        ("faults", &["delay_past_timeout", "delay", "inject"], Rate),
        (
            "faults",
            &["max_delay_ms", "max_down_ms", "max_pause_ms"],
            Ms,
        ),
        (
            "faults",
            &["max_window_ms", "max_clock_jump_ms", "max_long_pause_ms"],
            Ms,
        ),
        (
            "faults",
            &["clock_jumps", "long_pauses", "operator_events"],
            Count,
        ),
        (
            "faults",
            &[
                "authorization_expiries",
                "session_revocations",
                "crm_deletions",
                "crm_restorations",
                "booking_cancellations",
            ],
            Count,
        ),
        (
            "faults",
            &["crashes", "pauses", "partitions", "brownouts"],
            Count,
        ),
        ("faults", &["clock_skews", "calls_per_link"], Count),
        ("faults", &["max_clock_offset_ms", "max_drift_ppm"], Signed),
        (
            "timeouts",
            &["stripe_ms", "salesforce_ms", "inventory_ms"],
            Ms,
        ),
        (
            "workload",
            &["start_spread_ms", "tool_timeout_ms", "tool_wait_ms"],
            Ms,
        ),
        ("workload", &["agent_retry_ms", "hold_ttl_ms"], Ms),
        (
            "workload",
            &["agents", "nights", "first_night", "agent_attempts_max"],
            Count,
        ),
        ("workload", &["price_cents"], Signed),
        ("phases", &["safety_ms", "liveness_ms"], Ms),
        ("coordinator", &["late_window_ms", "saga_deadline_ms"], Ms),
        ("coordinator", &["backoff_cap_ms", "backoff_base_ms"], Ms),
        (
            "coordinator",
            &["reconcile_attempts_max", "sweep_rounds_max"],
            Count,
        ),
        ("coordinator", &["compensation_attempts_max"], Count),
        ("latency.stripe", &["min_ms", "p50_ms", "max_ms"], Ms),
        ("latency.net", &["min_ms", "max_ms"], Ms),
        (
            "stripe",
            &["idempotency_key_ttl_ms", "search_index_delay_ms"],
            Ms,
        ),
        ("inventory", &["room_types"], Rooms),
    ];
    let keys: Vec<(&str, &str, Kind)> = table
        .iter()
        .flat_map(|(section, ks, kind)| ks.iter().map(move |k| (*section, *k, *kind)))
        .collect();
    prop::sample::select(keys).prop_flat_map(|(section, key, kind)| {
        value(kind).prop_map(move |v| (section.to_string(), format!("{key} = {v}")))
    })
}

/// A fault plan as JSON, with node names and times from the edge pools.
fn plan_json() -> impl Strategy<Value = String> {
    let call = (
        node(),
        node(),
        count(),
        ms(),
        prop::sample::select(vec![
            "drop_request",
            "drop_reply",
            "duplicate",
            "delay_past_timeout",
            "delay",
        ]),
    )
        .prop_map(|(from, to, index, t, kind)| {
            let time = match kind {
                "duplicate" => format!(", \"gap_ms\": {t}"),
                "delay" | "delay_past_timeout" => format!(", \"extra_ms\": {t}"),
                _ => String::new(),
            };
            format!(
                r#"{{"from": "{from}", "to": "{to}", "index": {index}, "kind": "{kind}"{time}}}"#
            )
        });
    let crash = (node(), ms(), prop::option::of(ms())).prop_map(|(n, at, down)| {
        let down = down.map_or(String::new(), |d| format!(", \"down_ms\": {d}"));
        format!(r#"{{"node": "{n}", "at_ms": {at}{down}}}"#)
    });
    let pause = (node(), ms(), ms())
        .prop_map(|(n, at, f)| format!(r#"{{"node": "{n}", "at_ms": {at}, "for_ms": {f}}}"#));
    let partition = (node(), node(), ms(), ms()).prop_map(|(a, b, f, u)| {
        format!(r#"{{"a": "{a}", "b": "{b}", "from_ms": {f}, "until_ms": {u}}}"#)
    });
    let brownout = (node(), ms(), ms(), count()).prop_map(|(s, f, u, p)| {
        format!(
            r#"{{"service": "{s}", "from_ms": {f}, "until_ms": {u}, "fault": "throttle", "permille": {p}}}"#
        )
    });
    let clock = (node(), signed(), signed())
        .prop_map(|(n, o, d)| format!(r#"{{"node": "{n}", "offset_ms": {o}, "drift_ppm": {d}}}"#));
    let list = |s: BoxedStrategy<String>| prop::collection::vec(s, 0..3).prop_map(|v| v.join(", "));
    (
        list(call.boxed()),
        list(crash.boxed()),
        list(pause.boxed()),
        list(partition.boxed()),
        list(brownout.boxed()),
        list(clock.boxed()),
    )
        .prop_map(|(calls, crashes, pauses, partitions, brownouts, clocks)| {
            format!(
                r#"{{"calls": [{calls}], "crashes": [{crashes}], "pauses": [{pauses}], "partitions": [{partitions}], "brownouts": [{brownouts}], "clocks": [{clocks}]}}"#
            )
        })
}

fn plan_toml() -> impl Strategy<Value = String> {
    let crash = (node(), ms(), prop::option::of(ms())).prop_map(|(n, at, down)| {
        let down = down.map_or(String::new(), |d| format!(", down_ms = {d}"));
        format!(r#"{{ node = "{n}", at_ms = {at}{down} }}"#)
    });
    let delay = (node(), node(), ms()).prop_map(|(from, to, t)| {
        format!(r#"{{ from = "{from}", to = "{to}", index = 0, kind = "delay", extra_ms = {t} }}"#)
    });
    (
        prop::collection::vec(crash, 0..3),
        prop::collection::vec(delay, 0..2),
    )
        .prop_map(|(crashes, calls)| {
            format!(
                "[plan]\ncrashes = [{}]\ncalls = [{}]\n",
                crashes.join(", "),
                calls.join(", ")
            )
        })
}

/// A scenario file: `fields` fields, with probability `plan` a fixed plan.
fn scenario_toml(fields: std::ops::Range<usize>, plan: f64) -> impl Strategy<Value = String> {
    (
        prop::collection::vec(field(), fields),
        prop::option::weighted(plan, plan_toml()),
    )
        .prop_map(|(fields, plan)| {
            let mut sections: std::collections::BTreeMap<String, Vec<String>> = Default::default();
            for (section, line) in fields {
                let lines = sections.entry(section).or_default();
                // A key twice is a TOML error: keep the first.
                let key = line.split(" = ").next().unwrap().to_string();
                if !lines.iter().any(|l| l.starts_with(&format!("{key} = "))) {
                    lines.push(line);
                }
            }
            let mut text = "name = \"front-door\"\n".to_string();
            for (section, lines) in sections {
                text.push_str(&format!("[{section}]\n{}\n", lines.join("\n")));
            }
            text.push_str(&plan.unwrap_or_default());
            text
        })
}

/// Write each scenario to a file and fuzz three seeds of it: three, because
/// a swarm turns each fault kind on with probability 1/2, so a bad value
/// that got past validation is drawn in most cases.
fn scenarios_answer_cleanly(name: &str, strategy: impl Strategy<Value = String>, n: u32) {
    let dir = work_dir(name);
    let file = dir.join("front-door.toml");
    let mut runner = TestRunner::new(cases(n));
    runner
        .run(&(strategy, 0u64..1000), |(text, start)| {
            std::fs::write(&file, &text).unwrap();
            let f = file.display().to_string();
            let start = start.to_string();
            let args = ["fuzz", &f, "--seeds", "3", "--jobs", "1", "--start", &start];
            front_door(&dir, &args.map(String::from))
                .map_err(|e| TestCaseError::fail(format!("{e}\n--- {f}:\n{text}")))?;
            Ok(())
        })
        .unwrap();
}

/// One field at a time, half of the values out of range: every check of
/// `Scenario::validate` is reached on its own (with the other fields at
/// their defaults), so removing any one of them shows here.
#[test]
fn any_single_scenario_value_is_run_or_refused_cleanly() {
    scenarios_answer_cleanly("one-field", scenario_toml(1..2, 0.15), 300);
}

/// Several fields and a fixed plan together (cross-field rules, plans).
#[test]
fn any_scenario_file_is_run_or_refused_cleanly() {
    scenarios_answer_cleanly("combined", scenario_toml(0..5, 0.4), 100);
}

#[test]
fn any_plan_file_is_replayed_or_refused_cleanly() {
    let dir = work_dir("plan");
    let file = dir.join("plan.json");
    let mut runner = TestRunner::new(cases(100));
    runner
        .run(&(plan_json(), any::<bool>()), |(json, regression)| {
            let text = if regression {
                format!(
                    r#"{{"scenario": "hotel-checkout", "seed": 3, "invariant": "x", "note": "y", "plan": {json}}}"#
                )
            } else {
                json
            };
            std::fs::write(&file, &text).unwrap();
            let f = file.display().to_string();
            front_door(&dir, &["replay".into(), "--plan".into(), f])
                .map_err(|e| TestCaseError::fail(format!("{e}\n--- plan:\n{text}")))?;
            Ok(())
        })
        .unwrap();
}

/// A command line: a subcommand and a few flags with edge values. Runs are
/// capped at two seeds (`--seeds` is added when missing; the largest
/// `--seeds` comes with a `--start` that makes the range overflow).
fn argv(fixture: String) -> impl Strategy<Value = Vec<String>> {
    let sub = prop::sample::select(vec![
        "run",
        "fuzz",
        "replay",
        "shrink",
        "bench",
        "report",
        "compare",
        "merge",
        "scenarios",
        "nope",
    ]);
    let scenario = prop::sample::select(vec![
        "hotel-checkout".to_string(),
        "crash-storm".to_string(),
        "no-such".to_string(),
        "../x.toml".to_string(),
        String::new(),
        fixture,
    ]);
    let flag = prop_oneof![
        prop::sample::select(vec!["0", "1", "2", "-1", "x", "18446744073709551616"])
            .prop_map(|v| vec!["--seeds".to_string(), v.to_string()]),
        Just(
            vec!["--start", "5", "--seeds", "18446744073709551615"]
                .into_iter()
                .map(String::from)
                .collect()
        ),
        prop::sample::select(vec!["0", "1", "17", "18446744073709551615", "-3"])
            .prop_map(|v| vec!["--start".to_string(), v.to_string()]),
        prop::sample::select(vec!["0", "1", "2", "1024", "1025", "100000", "-3"])
            .prop_map(|v| vec!["--jobs".to_string(), v.to_string()]),
        prop::sample::select(vec![
            "1/2", "2/2", "0/2", "3/2", "200/1000", "x", "1/0", "1/"
        ])
        .prop_map(|v| vec!["--shard".to_string(), v.to_string()]),
        prop::sample::select(vec!["0", "7", "18446744073709551615", "-1"])
            .prop_map(|v| vec!["--seed".to_string(), v.to_string()]),
        prop::sample::select(vec!["naive", "saga", "saga,saga", "x", ""])
            .prop_map(|v| vec!["--coordinators".to_string(), v.to_string()]),
        prop::sample::select(vec!["missing-dir", ".", "/"])
            .prop_map(|v| vec!["--scenarios".to_string(), v.to_string()]),
        // Never "/": the tests may run as root.
        prop::sample::select(vec!["out", "/nonexistent/x", "plan.json"])
            .prop_map(|v| vec!["--out".to_string(), v.to_string()]),
        prop::sample::select(vec!["plan.json", "missing.json", "/"])
            .prop_map(|v| vec!["--plan".to_string(), v.to_string()]),
        prop::sample::select(vec!["--failures", "--report", "--html"]).prop_flat_map(|f| {
            prop::sample::select(vec!["f.out", "/nonexistent/f", "sub/dir/f", "plan.json/x"])
                .prop_map(move |p| vec![f.to_string(), p.to_string()])
        }),
        prop::sample::select(vec![
            "--json",
            "--quiet",
            "--stop-on-failure",
            "--check-determinism",
            "--bogus"
        ])
        .prop_map(|f| vec![f.to_string()]),
    ];
    (
        sub,
        prop::option::of(scenario),
        prop::collection::vec(flag, 0..4),
    )
        .prop_map(|(sub, scenario, flags)| {
            let mut args = vec![sub.to_string()];
            args.extend(scenario);
            let mut seen = std::collections::BTreeSet::new();
            for f in flags {
                // A flag twice is a clap error every time: keep the first.
                if seen.insert(f[0].clone()) || f.len() == 4 {
                    args.extend(f);
                }
            }
            let has = |flag: &str| args.iter().any(|a| a == flag);
            if matches!(sub, "fuzz" | "compare" | "bench") && !has("--seeds") {
                args.extend(["--seeds".to_string(), "2".to_string()]);
            }
            if sub == "bench" {
                args.extend(["--rss-seeds".to_string(), "2".to_string()]);
            }
            args
        })
}

#[test]
fn any_command_line_answers_cleanly() {
    let dir = work_dir("argv");
    std::fs::write(
        dir.join("plan.json"),
        r#"{"crashes": [{"node": "stripe", "at_ms": 100}]}"#,
    )
    .unwrap();
    std::fs::write(dir.join("f.out"), "").unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tiny-budgets.toml")
        .display()
        .to_string();
    let mut runner = TestRunner::new(cases(150));
    runner
        .run(&argv(fixture), |args| front_door(&dir, &args))
        .unwrap();
}
