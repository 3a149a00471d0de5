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
        "unreachable",
        "rare",
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

/// A scenario on which the reference coordinator fails most seeds (every
/// retry budget 1): for the paths that only a failing run takes.
const FAILING: &str = "tests/fixtures/tiny-budgets.toml";

/// The last line of stdout, parsed as JSON.
fn last_json(o: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let last = text.lines().last().unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: last line {last:?} of {text}"))
}

/// Issue 14: nonsense run lengths are refused, not run as nothing.
#[test]
fn empty_or_absurd_runs_are_refused() {
    bad_input(&["fuzz", "--seeds", "0"], "--seeds 0");
    bad_input(&["compare", "--seeds", "0"], "--seeds 0");
    bad_input(
        &["fuzz", "--seeds", "2", "--jobs", "0"],
        "--jobs 0 is outside 1..=1024",
    );
    bad_input(
        &["fuzz", "--seeds", "2", "--jobs", "100000"],
        "--jobs 100000",
    );
    bad_input(&["bench", "--seeds", "2", "--jobs", "0"], "--jobs 0");
    bad_input(
        &["fuzz", "--shard", "200/1000", "--seeds", "100"],
        "more shards than seeds",
    );
    bad_input(
        &["scenarios", "--scenarios", "missing-dir"],
        "missing-dir: no such directory",
    );
}

/// Issue 14: clap's "required arguments were not provided" keeps the names.
#[test]
fn a_missing_argument_is_named() {
    bad_input(&["merge"], "<FILES>");
}

/// Issue 14: a closed stdout (`sagasim fuzz | head -0`) is a normal exit,
/// not a panic, for every subcommand that prints.
#[test]
fn broken_pipe_is_a_normal_exit() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("pipe-report");
    let d = dir.display().to_string();
    let summary = temp_file(
        "pipe-summary.json",
        &String::from_utf8_lossy(&sagasim(&["fuzz", "--seeds", "3", "--json"]).stdout),
    );
    for (args, code) in [
        (vec!["fuzz", "--seeds", "50"], 0),
        (vec!["fuzz", FAILING, "--seeds", "20"], 1),
        (vec!["bench", "--seeds", "2", "--rss-seeds", "2"], 0),
        (vec!["report", "--seed", "1", "--out", &d], 0),
        (vec!["merge", &summary], 0),
        (vec!["scenarios"], 0),
        (vec!["run", "--seed", "3"], 0),
        (vec!["compare", "--seeds", "3"], 0),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sagasim"))
            .args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader goes away at once
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// Issue 14: a bad `--failures` / `--report` path loses nothing: the summary
/// and the failing seeds are printed, and the error names the path asked for.
#[test]
fn a_bad_output_path_still_prints_the_run() {
    for flag in ["--failures", "--report"] {
        let out = sagasim(&["fuzz", FAILING, "--seeds", "10", flag, "/nonexistent/dir/x"]);
        let (stdout, err) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!("{flag} /nonexistent/dir/x:")),
            "{err}"
        );
        assert!(!err.contains("tmp"), "names the temp file: {err}");
        assert!(
            stdout.contains("replay: cargo run --release -- replay"),
            "{stdout}"
        );
        assert!(stdout.contains("tiny-budgets: 10 seeds"), "{stdout}");
    }
}

/// A seed of [`FAILING`] that fails (its first, 2).
const FAILING_SEED: &str = "2";

/// Issue 14: `shrink --out FILE` names the path it could not use.
#[test]
fn shrink_out_names_the_path() {
    let file = temp_file("not-a-dir", "");
    bad_input(
        &["shrink", FAILING, "--seed", FAILING_SEED, "--out", &file],
        &file,
    );
}

/// Issue 14: `report --plan` does not overwrite `report --seed` of the same seed.
#[test]
fn report_of_a_plan_and_of_a_seed_do_not_collide() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-both");
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.display().to_string();
    let plan = temp_file("empty-plan.json", "{}");
    let by_seed = sagasim(&["report", "--seed", "4", "--out", &d]);
    let by_plan = sagasim(&["report", "--seed", "4", "--plan", &plan, "--out", &d]);
    assert_eq!(by_seed.status.code(), Some(0));
    assert_eq!(by_plan.status.code(), Some(0));
    let first = |o: &Output| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .unwrap()
            .to_string()
    };
    assert_ne!(first(&by_seed), first(&by_plan));
    assert!(std::path::Path::new(&first(&by_seed)).is_file());
    assert!(std::path::Path::new(&first(&by_plan)).is_file());
}

/// Issue 14: the JSON line is last, even with `compare --html`.
#[test]
fn compare_json_is_the_last_line_with_html() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("compare-json-html");
    let out = sagasim(&[
        "compare",
        "--seeds",
        "3",
        "--json",
        "--html",
        &dir.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(last_json(&out)["points"].is_array());
    assert!(String::from_utf8_lossy(&out.stdout).contains("wrote "));
}

/// Issue 14: CI-grade JSON: schema, run metadata, hex trace hashes,
/// failures with invariant, seed and replay command.
#[test]
fn fuzz_json_line_carries_the_run_and_replayable_failures() {
    let out = sagasim(&[
        "fuzz", FAILING, "--seeds", "12", "--start", "3", "--shard", "2/3", "--jobs", "2", "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let j = last_json(&out);
    assert_eq!(j["schema"], 2);
    assert!(j["coverage"].as_object().is_some_and(|c| c.len() > 300));
    assert!(j["unreachable"].as_object().is_some_and(|u| !u.is_empty()));
    assert_eq!(j["sagasim_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(j["scenario"], "tiny-budgets");
    assert_eq!(j["scenario_path"], FAILING);
    assert_eq!(j["coordinator"], "saga");
    assert_eq!(j["start"], 3);
    assert_eq!(j["range_seeds"], 12);
    assert_eq!(j["shard"]["index"], 2);
    assert_eq!(j["shard"]["count"], 3);
    assert_eq!(j["jobs"], 2);
    assert_eq!(j["seeds"], 4);
    let f = &j["failing"][0];
    let seed = f["seed"].as_u64().unwrap();
    assert_eq!((seed - 3) % 3, 1, "a seed of shard 2/3");
    assert!(f["invariant"]
        .as_str()
        .unwrap()
        .chars()
        .all(|c| c.is_ascii_lowercase() || c == '-'));
    let hash = f["trace_hash"].as_str().unwrap();
    assert!(
        hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "{hash}"
    );
    assert_eq!(
        f["replay"],
        format!("cargo run --release -- replay {FAILING} --seed {seed}")
    );
}

/// Issue 14: `merge` refuses duplicated and missing shards (a CI matrix that
/// lost a job must not report green) and lists failing seeds with replays.
#[test]
fn merge_checks_its_shards() {
    let shard = |k: u64| {
        let out = sagasim(&[
            "fuzz",
            FAILING,
            "--seeds",
            "9",
            "--json",
            "--shard",
            &format!("{k}/3"),
        ]);
        temp_file(
            &format!("m-shard-{k}.json"),
            &String::from_utf8_lossy(&out.stdout),
        )
    };
    let (s1, s2, s3) = (shard(1), shard(2), shard(3));
    bad_input(&["merge", &s1, &s1, &s1, &s1], "shard 1/3 appears twice");
    bad_input(&["merge", &s1, &s2], "shard 3/3 is missing");
    let whole = temp_file(
        "m-whole.json",
        &String::from_utf8_lossy(&sagasim(&["fuzz", "--seeds", "9", "--json"]).stdout),
    );
    bad_input(&["merge", &s1, &whole], "cannot merge");
    let merged = sagasim(&["merge", &s1, &s2, &s3]);
    assert_eq!(merged.status.code(), Some(1));
    let text = String::from_utf8_lossy(&merged.stdout);
    assert!(
        text.contains("replay: cargo run --release -- replay"),
        "{text}"
    );
    assert_eq!(last_json(&merged)["seeds"], 9);
}

/// Issue 14: seeds are streamed: `--seeds u64::MAX` starts at once in flat
/// memory, and SIGINT stops it with the partial summary (exit 130).
#[test]
fn a_huge_run_streams_and_stops_on_sigint() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sagasim"))
        .args([
            "fuzz",
            "--seeds",
            "18446744073709551615",
            "--json",
            "--jobs",
            "2",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(rss_kib < 200 * 1024, "RSS {rss_kib} KiB after 1.5 s");
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Stops within seconds: read on a thread, give up after 30 s.
    let (tx, rx) = std::sync::mpsc::channel();
    let out = {
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut { stdout }, &mut text);
            let _ = tx.send(text);
        });
        rx.recv_timeout(std::time::Duration::from_secs(30))
            .expect("stops within 30 s of SIGINT")
    };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(out.contains("interrupted: "), "{out}");
    let j: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(j["interrupted"], true);
    assert!(j["seeds"].as_u64().unwrap() > 0);
}

/// Issue 14: a missing `--scenarios` directory is named, not an empty list.
#[test]
fn a_missing_scenarios_directory_is_named() {
    bad_input(
        &["fuzz", "--scenarios", "missing-dir", "--seeds", "1"],
        "missing-dir: no such scenarios directory",
    );
}

/// The hash a `run`/`replay` output line reports.
fn trace_hash_of(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out
        .lines()
        .find(|l| l.contains("trace hash"))
        .unwrap_or_else(|| panic!("no trace hash in {out}"));
    let at = line.find("trace hash ").unwrap() + "trace hash ".len();
    line[at..at + 16].to_string()
}

/// Issue 17: `--coordinator NAME` on the built-in binary; a newcomer sees a
/// real failure, and its printed replay command reproduces it as printed.
#[test]
fn fuzz_with_the_naive_coordinator_fails_and_its_replay_command_works_as_printed() {
    let o = sagasim(&["fuzz", "--coordinator", "naive", "--seeds", "30", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let json = last_json(&o);
    assert_eq!(json["coordinator"], "naive");
    let failure = &json["failing"][0];
    let replay = failure["replay"].as_str().expect("a replay command");
    assert!(replay.contains("--coordinator naive"), "{replay}");
    let args: Vec<&str> = replay
        .strip_prefix("cargo run --release -- ")
        .expect("as README runs it")
        .split(' ')
        .collect();
    let replayed = sagasim(&args);
    assert_eq!(replayed.status.code(), Some(1), "{replayed:?}");
    let seed = failure["seed"].as_u64().unwrap().to_string();
    let run = sagasim(&["run", "--coordinator", "naive", "--seed", &seed, "--quiet"]);
    assert_eq!(trace_hash_of(&replayed), trace_hash_of(&run));
    assert_eq!(
        failure["trace_hash"].as_str().unwrap(),
        trace_hash_of(&run),
        "the JSON record's hash is the replay's"
    );
    bad_input(&["fuzz", "--coordinator", "nope"], "known: naive, saga");
}

/// A regression file names its coordinator; the command line may not
/// contradict it, and replaying it without `--coordinator` uses it.
#[test]
fn a_regressions_coordinator_is_used_and_never_silently_overridden() {
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("naive-regressions");
    let _ = std::fs::remove_dir_all(&out);
    let shrunk = sagasim(&[
        "shrink",
        "--coordinator",
        "naive",
        "--seed",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(shrunk.status.code(), Some(1), "{shrunk:?}");
    let file = out.join("hotel-checkout-naive-1.json");
    let path = file.to_str().unwrap();
    let replayed = sagasim(&["replay", "--plan", path]);
    assert_eq!(replayed.status.code(), Some(1), "fails again with naive");
    assert!(String::from_utf8_lossy(&replayed.stdout).contains("(coordinator naive)"));
    bad_input(
        &["replay", "--coordinator", "saga", "--plan", path],
        "found with coordinator `naive`",
    );
    bad_input(
        &["replay", "crash-storm", "--plan", path],
        "regression is of scenario `hotel-checkout`",
    );
}

/// Issue 18 (terminal): failures are printed last, after the coverage, so
/// they do not scroll away; `--check-determinism` says what it compared.
#[test]
fn fuzz_prints_failures_after_coverage_and_what_determinism_checked() {
    let o = sagasim(&["fuzz", "--coordinator", "naive", "--seeds", "12"]);
    let out = String::from_utf8_lossy(&o.stdout);
    let coverage = out
        .find("coverage (seeds that hit each path)")
        .expect("coverage");
    let failure = out.find("\nseed ").expect("a failing seed");
    assert!(coverage < failure, "{out}");
    assert!(!out.contains('\x1b'), "no colour when piped: {out}");
    assert!(out.trim_end().lines().last().unwrap().contains("12 seeds"));
    let o = sagasim(&["fuzz", "--seeds", "7", "--check-determinism"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(
            "determinism: 7 seeds run twice (again on a fresh thread); every trace hash matched"
        ),
        "{out}"
    );
    let o = sagasim(&["fuzz", "--seeds", "7"]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("determinism:"));
}

/// Issue 17: a scenario given by path. The failure record carries the
/// whole replay handle; shrink records the path, and both the command it
/// prints and a bare `replay --plan FILE` load the scenario from there; the
/// report names the handle too.
#[test]
fn a_scenario_given_by_path_replays_from_its_regression_and_handle() {
    let scenario = "tests/fixtures/my-scenario.toml";
    let o = sagasim(&[
        "fuzz",
        scenario,
        "--coordinator",
        "naive",
        "--seeds",
        "30",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let json = last_json(&o);
    let failure = &json["failing"][0];
    let handle = &failure["handle"];
    assert_eq!(handle["scenario"], "my-scenario");
    assert_eq!(handle["scenario_path"], scenario);
    assert_eq!(handle["coordinator"], "naive");
    assert_eq!(handle["workload"], "hotel_checkout_automatic");
    assert_eq!(handle["plan"], "seed");
    assert_eq!(handle["seed"], failure["seed"]);
    assert_eq!(handle["sagasim_version"], json["sagasim_version"]);

    let seed = failure["seed"].as_u64().unwrap().to_string();
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("by-path-regressions");
    let _ = std::fs::remove_dir_all(&out);
    let shrunk = sagasim(&[
        "shrink",
        scenario,
        "--coordinator",
        "naive",
        "--seed",
        &seed,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(shrunk.status.code(), Some(1), "{shrunk:?}");
    let file = out.join(format!("my-scenario-naive-{seed}.json"));
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(saved["scenario_path"], scenario);
    let stdout = String::from_utf8_lossy(&shrunk.stdout);
    let printed = stdout
        .lines()
        .find_map(|l| l.strip_prefix("replay: cargo run --release -- "))
        .expect("shrink prints a replay command");
    let as_printed = sagasim(&printed.split(' ').collect::<Vec<_>>());
    assert_eq!(as_printed.status.code(), Some(1), "{as_printed:?}");
    let bare = sagasim(&["replay", "--plan", file.to_str().unwrap()]);
    assert_eq!(bare.status.code(), Some(1), "{bare:?}");
    assert_eq!(trace_hash_of(&as_printed), trace_hash_of(&bare));

    let reports = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("by-path-reports");
    let r = sagasim(&[
        "report",
        "--plan",
        file.to_str().unwrap(),
        "--out",
        reports.to_str().unwrap(),
    ]);
    let md_path = String::from_utf8_lossy(&r.stdout)
        .lines()
        .find(|l| l.ends_with(".md"))
        .expect("report prints its markdown path")
        .to_string();
    let md = std::fs::read_to_string(md_path).unwrap();
    assert!(
        md.contains("\"scenario_path\":\"tests/fixtures/my-scenario.toml\""),
        "{md}"
    );
    assert!(
        md.contains("replay: `cargo run --release -- replay --coordinator naive"),
        "{md}"
    );

    // A handle naming a workload this binary does not run is refused.
    let mut other = saved.clone();
    other["workload"] = "order_flow".into();
    let other_file = temp_file("other-workload.json", &other.to_string());
    bad_input(
        &["replay", "--plan", &other_file],
        "found with workload `order_flow`",
    );
}
