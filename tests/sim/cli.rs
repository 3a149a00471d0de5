//! The command line as a user meets it: bad input is one clear line and
//! exit code 2; a failing invariant is exit 1; success is 0.

use std::process::{Command, Output};

fn sagasim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sagasim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs")
}

/// Exit 2 and exactly one line on stderr that contains `needle`.
fn bad_input(args: &[&str], needle: &str) {
    let out = sagasim(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: one line, got {err:?}"
    );
    assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
}

fn temp_file(name: &str, text: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn unknown_scenario_lists_the_known_ones() {
    bad_input(
        &["run", "no-such-scenario"],
        "unknown scenario `no-such-scenario`",
    );
    bad_input(&["fuzz", "nope", "--seeds", "1"], "hotel-checkout");
}

#[test]
fn malformed_toml_names_file_line_and_column() {
    let path = temp_file("bad.toml", "name = \"x\"\n[workload]\nagents = \"many\"\n");
    bad_input(&["run", &path], "line 3, column 10");
    let path = temp_file("limits.toml", "name = \"x\"\n[workload]\nagents = 100000\n");
    bad_input(&["run", &path], "workload.agents");
}

#[test]
fn bad_shard_and_seed_ranges_are_refused() {
    bad_input(&["fuzz", "--shard", "5/4"], "shard 5/4");
    bad_input(&["fuzz", "--shard", "two"], "not of the form K/N");
    bad_input(&["fuzz", "--seed", "-1"], "--seed");
    bad_input(&["run", "--seed", "18446744073709551616"], "--seed");
    bad_input(
        &["fuzz", "--start", "18446744073709551615", "--seeds", "2"],
        "overflows",
    );
}

#[test]
fn bad_plan_files_are_refused_with_a_location() {
    let path = temp_file("bad-plan.json", "{\"calls\": [ {\"from\": 1 ]}");
    bad_input(&["replay", "--plan", &path], "line 1");
    let path = temp_file(
        "unknown-node.json",
        "{\"crashes\": [{\"node\": \"mainframe\", \"at_ms\": 5}]}",
    );
    bad_input(&["replay", "--plan", &path], "mainframe");
    bad_input(&["replay"], "--seed N or --plan FILE");
    let path = temp_file("not-a-summary.json", "hello\n");
    bad_input(&["merge", &path], "no JSON summary line");
}

#[test]
fn run_and_replay_of_a_seed_print_identical_traces() {
    let run = sagasim(&["run", "--seed", "5"]);
    let replay = sagasim(&["replay", "--seed", "5"]);
    assert_eq!(run.status.code(), Some(0));
    assert_eq!(replay.status.code(), Some(0));
    let strip = |o: &Output| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| !l.starts_with("replay:"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&run), strip(&replay));
    assert!(strip(&run).iter().any(|l| l.contains("trace hash")));
}

#[test]
fn sharded_fuzz_merged_equals_one_run() {
    let one = sagasim(&["fuzz", "--seeds", "200", "--json", "--jobs", "2"]);
    assert_eq!(
        one.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    let mut files = Vec::new();
    for k in 1..=3 {
        let shard = format!("{k}/3");
        let out = sagasim(&["fuzz", "--seeds", "200", "--json", "--shard", &shard]);
        assert_eq!(out.status.code(), Some(0));
        files.push(temp_file(
            &format!("shard-{k}.json"),
            &String::from_utf8_lossy(&out.stdout),
        ));
    }
    let mut args = vec!["merge"];
    args.extend(files.iter().map(String::as_str));
    let merged = sagasim(&args);
    assert_eq!(merged.status.code(), Some(0));
    let last = |o: &Output| -> serde_json::Value {
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        serde_json::from_str(text.lines().last().unwrap()).unwrap()
    };
    let (a, b) = (last(&one), last(&merged));
    for key in [
        "seeds",
        "failures",
        "first_failing_seed",
        "failing",
        "coverage",
    ] {
        assert_eq!(a[key], b[key], "{key}");
    }
}

#[test]
fn fuzz_writes_a_markdown_summary_report() {
    let path = temp_file("fuzz-report.md", "");
    std::fs::remove_file(&path).unwrap();
    let out = sagasim(&["fuzz", "--seeds", "40", "--report", &path]);
    assert_eq!(out.status.code(), Some(0));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("## Outcomes"), "{text}");
    assert!(text.contains("| every invariant held | 40 |"), "{text}");
    assert!(text.contains("| agent retry deduplicated |"), "{text}");
}

#[test]
fn compare_writes_the_table_as_self_contained_html() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("compare-html");
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.display().to_string();
    let out = sagasim(&["compare", "--seeds", "20", "--html", &d]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(dir.join("compare-hotel-checkout-0-20.html")).unwrap();
    assert!(page.contains("<th>naive</th><th>saga</th>"), "{page}");
    assert!(page.contains("double charges (checkouts)"));
    assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("<script"));
}

/// A scenario file `NAME.toml` (its `name` matches) holding `body`.
fn scenario_file(name: &str, body: &str) -> String {
    temp_file(
        &format!("{name}.toml"),
        &format!("name = \"{name}\"\n{body}"),
    )
}

/// Issue 14: every scenario value is range-checked; the one line names the
/// file, the field and the allowed range.
#[test]
fn scenario_values_out_of_range_are_refused_with_field_and_range() {
    const MAX: &str = "18446744073709551615";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "rate-inf",
            "[faults]\ndrop_request = inf\n".into(),
            "faults.drop_request = inf",
        ),
        (
            "rate-nan",
            "[faults]\ndrop_reply = nan\n".into(),
            "faults.drop_reply = NaN",
        ),
        (
            "rate-neg",
            "[faults]\nduplicate = -0.5\n".into(),
            "faults.duplicate = -0.5",
        ),
        ("rate-big", "[faults]\ninject = 1.5\n".into(), "0..=1"),
        (
            "max-delay",
            format!("[faults]\nmax_delay_ms = {MAX}\n"),
            "faults.max_delay_ms",
        ),
        (
            "crashes",
            "[faults]\ncrashes = 4294967295\n".into(),
            "faults.crashes = 4294967295 is outside 0..=100",
        ),
        (
            "calls",
            "[faults]\ncalls_per_link = 4294967295\n".into(),
            "faults.calls_per_link",
        ),
        (
            "t-stripe",
            format!("[timeouts]\nstripe_ms = {MAX}\n"),
            "timeouts.stripe_ms",
        ),
        (
            "t-sf",
            format!("[timeouts]\nsalesforce_ms = {MAX}\n"),
            "timeouts.salesforce_ms",
        ),
        (
            "t-inv",
            format!("[timeouts]\ninventory_ms = {MAX}\n"),
            "timeouts.inventory_ms",
        ),
        (
            "t-zero",
            "[timeouts]\nstripe_ms = 0\n".into(),
            "timeouts.stripe_ms = 0 is outside 1..=",
        ),
        (
            "spread",
            format!("[workload]\nstart_spread_ms = {MAX}\n"),
            "workload.start_spread_ms",
        ),
        (
            "tool",
            format!("[workload]\ntool_timeout_ms = {MAX}\n"),
            "workload.tool_timeout_ms",
        ),
        (
            "phases-0",
            "[phases]\nsafety_ms = 0\nliveness_ms = 0\n".into(),
            "phases.liveness_ms = 0",
        ),
        (
            "rooms-0",
            "[inventory]\nroom_types = { standard = 0 }\n".into(),
            "inventory.room_types.standard = 0 is outside 1..=",
        ),
        (
            "lat",
            "[latency.stripe]\nmin_ms = 500\np50_ms = 100\nmax_ms = 50\n".into(),
            "latency.stripe",
        ),
    ];
    for (name, body, needle) in &cases {
        let path = scenario_file(name, body);
        bad_input(&["run", &path, "--quiet"], needle);
        bad_input(&["run", &path, "--quiet"], &format!("{name}.toml"));
        bad_input(&["fuzz", &path, "--seeds", "1"], needle);
    }
}

/// Issue 14: a scenario's `[plan]` is checked like a plan file (it used to
/// panic in the transport on an unknown node).
#[test]
fn scenario_plan_is_validated_like_a_plan_file() {
    let path = scenario_file(
        "plan-node",
        "[plan]\ncrashes = [{ node = \"mainframe\", at_ms = 5 }]\n",
    );
    bad_input(&["run", &path], "mainframe");
    bad_input(
        &["fuzz", &path, "--seeds", "2"],
        "plan: crash names unknown node",
    );
    for (name, plan, needle) in [
        ("plan-at", "crashes = [{ node = \"stripe\", at_ms = 18446744073709551615 }]", "crashes[0].at_ms"),
        ("plan-down", "crashes = [{ node = \"stripe\", at_ms = 1, down_ms = 18446744073709551615 }]", "crashes[0].down_ms"),
        ("plan-extra", "calls = [{ from = \"coordinator\", to = \"stripe\", index = 0, kind = \"delay\", extra_ms = 18446744073709551615 }]", "calls[0].extra_ms"),
    ] {
        let path = scenario_file(name, &format!("[plan]\n{plan}\n"));
        bad_input(&["run", &path], needle);
    }
}

/// Issue 14: the same limits on a plan file given to `replay --plan`.
#[test]
fn plan_file_times_are_range_checked() {
    for (name, json, needle) in [
        (
            "p-at.json",
            r#"{"crashes":[{"node":"stripe","at_ms":18446744073709551615}]}"#,
            "crashes[0].at_ms = 18446744073709551615 is outside 0..=86400000",
        ),
        (
            "p-down.json",
            r#"{"crashes":[{"node":"stripe","at_ms":1,"down_ms":18446744073709551615}]}"#,
            "crashes[0].down_ms",
        ),
        (
            "p-extra.json",
            r#"{"calls":[{"from":"coordinator","to":"stripe","index":0,"kind":"delay","extra_ms":18446744073709551615}]}"#,
            "calls[0].extra_ms",
        ),
        (
            "p-drift.json",
            r#"{"clocks":[{"node":"stripe","drift_ppm":-1000000}]}"#,
            "clocks[0].drift_ppm",
        ),
    ] {
        let path = temp_file(name, json);
        bad_input(&["replay", "--plan", &path], needle);
        bad_input(&["report", "--plan", &path], needle);
    }
}

/// Issue 14 / README: a scenario's `name` must match its file name.
#[test]
fn scenario_name_must_match_its_file_name() {
    let path = temp_file("renamed.toml", "name = \"original\"\n");
    bad_input(&["run", &path], "must match the file name");
}
