//! `sagasim report`: the HTML page's structure (an insta snapshot of a
//! normalised outline, not of every byte), escaping, self-containment, the
//! verdict of a failing run, determinism, limits on big traces, and the
//! CLI's files and exit codes.

use std::path::PathBuf;
use std::process::Command;

use sagasim::check::{Verdict, Violation};
use sagasim::harness::{reference, run_checked, Checked};
use sagasim::report::{file_stem, Report};
use sagasim::scenario::{default_dir, Scenario};
use sagasim::sim::FaultPlan;
use sagasim::trace::{Trace, TraceEvent, TraceMode};
use sagasim::world::run::{plan_for, topology};

const ARTICLE: &str = "article-salesforce-timeout";

fn article() -> (Scenario, Checked) {
    let s = Scenario::load(ARTICLE, &default_dir()).unwrap();
    let c = run_checked(&s, 7, &plan_for(&s, 7), TraceMode::Full, reference());
    (s, c)
}

/// An element of the outline: `name.class.class#id`, plus its text for the
/// few elements whose text is structure (headings, lane labels, …).
struct Node {
    sig: String,
    children: Vec<Node>,
}

const VOID: [&str; 6] = ["meta", "br", "hr", "img", "input", "link"];
const WITH_TEXT: [&str; 4] = ["h1", "h2", "th", "summary"];

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = tag[at..].find('"')?;
    Some(&tag[at..at + end])
}

/// Parse our own HTML (well-formed, attributes quoted, text escaped) into
/// a tree of element signatures. `<title>`s are hover text: dropped.
fn tree(html: &str) -> Node {
    let mut stack = vec![Node {
        sig: "document".into(),
        children: Vec::new(),
    }];
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt..];
        if rest.starts_with("<!") {
            rest = &rest[rest.find('>').unwrap() + 1..];
            continue;
        }
        let gt = rest.find('>').unwrap();
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let node = stack.pop().unwrap();
            assert!(
                node.sig == name
                    || node.sig.starts_with(&format!("{name}."))
                    || node.sig.starts_with(&format!("{name}#"))
                    || node.sig.starts_with(&format!("{name} ")),
                "</{name}> closes {}",
                node.sig
            );
            if name != "title" {
                stack.last_mut().unwrap().children.push(node);
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let name = tag.split([' ', '/']).next().unwrap().to_string();
        let mut sig = name.clone();
        if let Some(class) = attr(tag, "class") {
            for c in class.split(' ') {
                sig.push('.');
                sig.push_str(c);
            }
        }
        if let Some(id) = attr(tag, "id") {
            sig.push('#');
            sig.push_str(id);
        }
        let text = rest[..rest.find('<').unwrap_or(rest.len())].trim();
        if (WITH_TEXT.contains(&name.as_str()) || sig == "text.lane-label") && !text.is_empty() {
            sig.push_str(&format!(" \"{text}\""));
        }
        let node = Node {
            sig,
            children: Vec::new(),
        };
        if self_closing || VOID.contains(&name.as_str()) {
            stack.last_mut().unwrap().children.push(node);
        } else {
            stack.push(node);
        }
    }
    assert_eq!(stack.len(), 1, "unclosed: {}", stack.last().unwrap().sig);
    stack.pop().unwrap()
}

/// Indented lines; runs of identical sibling subtrees fold into `×N`; a
/// legend (static boilerplate) is only counted.
fn render(node: &Node, depth: usize, out: &mut String) {
    if node.sig == "div.legend" {
        out.push_str(&"  ".repeat(depth));
        out.push_str(&format!("{} ({} items)\n", node.sig, node.children.len()));
        return;
    }
    let mut parts: Vec<(String, usize)> = Vec::new();
    for child in &node.children {
        let mut s = String::new();
        render(child, depth + 1, &mut s);
        match parts.last_mut() {
            Some((last, n)) if *last == s => *n += 1,
            _ => parts.push((s, 1)),
        }
    }
    out.push_str(&"  ".repeat(depth));
    out.push_str(&node.sig);
    out.push('\n');
    for (s, n) in parts {
        if n == 1 {
            out.push_str(&s);
        } else {
            let (first, tail) = s.split_once('\n').unwrap();
            out.push_str(&format!("{first}  ×{n}\n{tail}"));
        }
    }
}

fn outline(html: &str) -> String {
    let mut out = String::new();
    render(&tree(html), 0, &mut out);
    out
}

fn assert_self_contained(html: &str) {
    assert!(!html.contains("http://"), "no http:// reference");
    assert!(!html.contains("https://"), "no https:// reference");
    assert!(!html.contains("<script"), "no script");
    assert!(!html.contains(" src="), "nothing loaded");
    assert!(!html.contains("<link"), "no linked stylesheet");
    assert!(!html.contains("@import") && !html.contains("@font-face"));
    for (i, _) in html.match_indices("url(") {
        assert!(html[i..].starts_with("url(#"), "url() only for in-page ids");
    }
}

#[test]
fn article_report_outline() {
    let (s, c) = article();
    let html = Report::new(&s, &c).html();
    assert_self_contained(&html);
    insta::assert_snapshot!("article_report_outline", outline(&html));
}

#[test]
fn strings_from_files_are_escaped() {
    let (mut s, c) = article();
    s.name = "evil<img onerror=x>".into();
    s.description = "<script>alert('pwned')</script> & \"quoted\"".into();
    let r = Report::new(&s, &c);
    let html = r.html();
    assert_self_contained(&html);
    assert!(html
        .contains("&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; &amp; &quot;quoted&quot;"));
    assert!(html.contains("evil&lt;img onerror=x&gt;"));
    assert!(!html.contains("<img"));
    let md = r.markdown();
    assert!(md.contains("&lt;script&gt;") && !md.contains("<script"));
    assert_eq!(r.file_stem(), "evil_img_onerror_x_-7");
    assert_eq!(file_stem("../x", 1), "_._x-1");
}

#[test]
fn a_failing_verdict_is_listed_at_the_top_and_drawn() {
    let (s, c) = article();
    let verdict = Verdict {
        safety: vec![Violation {
            invariant: "no-double-charge".into(),
            business_key: "res-1".into(),
            at_ms: 12_345,
            facts: "50000 cents taken <after> entry #2, price is 25000".into(),
        }],
        liveness: Vec::new(),
    };
    let r = Report {
        verdict: &verdict,
        ..Report::new(&s, &c)
    };
    let html = r.html();
    let verdict_at = html
        .find("<section id=\"verdict\" class=\"verdict fail\">")
        .unwrap();
    let timeline_at = html.find("<section id=\"timeline\">").unwrap();
    assert!(verdict_at < timeline_at, "the verdict comes first");
    let section = &html[verdict_at..timeline_at];
    for needle in [
        "1 invariant violation<",
        "<strong>no-double-charge</strong>",
        "res-1",
        "12345 ms",
        "50000 cents taken &lt;after&gt; entry #2, price is 25000",
    ] {
        assert!(section.contains(needle), "verdict section lacks {needle}");
    }
    assert!(
        html.contains("<g class=\"rule violation\">"),
        "a red line marks it"
    );
    let md = r.markdown();
    assert!(md.contains("**Verdict: 1 invariant violation.**"));
    assert!(md.contains("| V1 | no-double-charge | safety | res-1 | 12345 |"));
    // Kept under target/ for a look in a browser.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-failing");
    let w = r.write(&dir).unwrap();
    assert_eq!(std::fs::read_to_string(w.html).unwrap(), html);
}

#[test]
fn same_seed_same_bytes() {
    let (s, c1) = article();
    let (_, c2) = article();
    let (r1, r2) = (Report::new(&s, &c1), Report::new(&s, &c2));
    assert_eq!(r1.html(), r2.html());
    assert_eq!(r1.markdown(), r2.markdown());

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-determinism");
    let _ = std::fs::remove_dir_all(&dir);
    let w1 = r1.write(&dir).unwrap();
    let first = (
        std::fs::read(&w1.html).unwrap(),
        std::fs::read(&w1.markdown).unwrap(),
    );
    let w2 = r2.write(&dir).unwrap();
    assert_eq!(w1, w2);
    assert_eq!(std::fs::read(&w2.html).unwrap(), first.0);
    assert_eq!(std::fs::read(&w2.markdown).unwrap(), first.1);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "article-salesforce-timeout-7.html",
            "article-salesforce-timeout-7.md"
        ],
        "no temporary file left behind"
    );
    let html = String::from_utf8(first.0).unwrap();
    assert!(
        !html.contains(env!("CARGO_MANIFEST_DIR")),
        "no absolute paths"
    );
}

/// A synthetic trace far bigger than any scenario's: the page stays
/// bounded (arrows thinned, and it says so).
#[test]
fn big_traces_are_thinned_and_say_so() {
    let (s, c) = article();
    let mut events = Vec::new();
    for i in 0..3_000u64 {
        let t = i * 7_000;
        let (svc, n) = (
            ["stripe", "salesforce", "inventory"][(i % 3) as usize],
            i / 3,
        );
        events.push(ev(t, "coordinator", "send", &format!("-> {svc} #{n} Req")));
        events.push(ev(
            t + 1_000,
            svc,
            "deliver",
            &format!("#{n} from coordinator"),
        ));
        events.push(ev(
            t + 2_000,
            svc,
            "reply",
            &format!("-> coordinator #{n} Resp"),
        ));
        events.push(ev(
            t + 3_000,
            "coordinator",
            "recv",
            &format!("<- {svc} #{n} Resp"),
        ));
        if i % 10 == 0 {
            events.push(ev(
                t + 4_000,
                "coordinator",
                "timeout",
                &format!("{svc} #{n} after 1ms"),
            ));
        }
    }
    let trace = Trace {
        len: events.len() as u64,
        events,
        hash: 0,
    };
    let r = Report {
        trace: &trace,
        ..Report::new(&s, &c)
    };
    let html = r.html();
    let svg = &html[html.find("<svg class=\"timeline\"").unwrap()..];
    let arrows = svg.matches("<line class=\"msg\"").count();
    assert!(arrows <= 2_000, "{arrows} arrows drawn");
    assert!(html.contains("Showing 2000 of 6000 message arrows"));
    assert_eq!(
        svg.matches("class=\"mark timeout\"").count(),
        300,
        "faults never thinned"
    );
    assert!(html.len() < 4_000_000, "{} bytes", html.len());
}

fn ev(t_us: u64, node: &str, kind: &str, text: &str) -> TraceEvent {
    TraceEvent {
        t_us,
        node: node.into(),
        kind: kind.into(),
        text: text.into(),
    }
}

fn sagasim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sagasim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn report_command_writes_both_files_and_uses_run_exit_codes() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-cli/nested");
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().unwrap();
    let (code, out, err) = sagasim(&["report", ARTICLE, "--seed", "7", "--out", d]);
    assert_eq!(code, 0, "{out}{err}");
    let html = dir.join("article-salesforce-timeout-7.html");
    let md = dir.join("article-salesforce-timeout-7.md");
    assert!(out.contains(&html.display().to_string()) && out.contains(&md.display().to_string()));
    assert!(html.is_file() && md.is_file());

    let (code, _, err) = sagasim(&["report", "no-such-scenario", "--seed", "1", "--out", d]);
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 1, "{err}");
    let (code, _, err) = sagasim(&["report", ARTICLE, "--out", d]);
    assert_eq!(code, 2);
    assert!(err.contains("--seed N or --plan FILE"), "{err}");
}

/// The page's text outside the raw trace (which is the trace, verbatim,
/// folded at the bottom): tags dropped, entities kept as they are.
fn visible_text(html: &str) -> String {
    let cut = html.find("<section id=\"trace\">").unwrap_or(html.len());
    let mut out = String::new();
    let mut in_tag = false;
    let mut in_style = false;
    let page = &html[..cut];
    let mut i = 0;
    while i < page.len() {
        let rest = &page[i..];
        if rest.starts_with("<style") {
            in_style = true;
        } else if rest.starts_with("</style>") {
            in_style = false;
        }
        let c = rest.chars().next().unwrap();
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag && !in_style => out.push(c),
            _ => {}
        }
        i += c.len_utf8();
    }
    out.replace("&quot;", "\"")
}

/// Issue 18: a 4-agent naive run that fails reads without hovering: one
/// lane per business key with short texts, the violation marked at the
/// event where it happened (the duplicate charge landing, not the check)
/// and linked to the faults of the same key before it, a per-saga summary,
/// and no Rust `Debug` text anywhere on the page (hover titles included).
#[test]
fn a_failing_four_agent_run_reads_in_plain_words_per_saga() {
    let s = Scenario::load("hotel-checkout", &default_dir()).unwrap();
    let imp = sagasim::harness::known_coordinators()
        .into_iter()
        .find(|c| c.name() == "naive")
        .unwrap();
    // Seed 8's swarm faults as drawn before plans mixed in the scenario's
    // name and drew workloads: four agents, three rooms, a fixed plan.
    let plan = FaultPlan::swarm(8, &s.faults, &topology(&s), s.phases.safety_ms);
    let c = run_checked(&s, 8, &plan, TraceMode::Full, imp);
    assert!(!c.verdict.ok(), "seed 8 fails for the naive orchestrator");
    let html = Report::new(&s, &c).html();
    assert_self_contained(&html);
    let text = visible_text(&html);
    for debug in ["{ ", "Some(", "Compensated {", "\\\""] {
        assert!(!text.contains(debug), "`{debug}` on the page: {text}");
    }
    let md = Report::new(&s, &c).markdown();
    assert!(!md.contains("{ ") && !md.contains("Some("), "{md}");
    assert!(md.contains("compensated: hold_room failed 4 times"), "{md}");
    // Hover titles are plain words too.
    for t in html[..html.find("<section id=\"trace\">").unwrap()]
        .split("<title>")
        .skip(2)
    {
        let t = t.split("</title>").next().unwrap().replace("&quot;", "\"");
        assert!(!t.contains("{ ") && !t.contains("Some("), "{t}");
    }
    for key in ["res-1", "res-2", "res-3", "res-4"] {
        assert!(text.contains(key), "a lane for {key}");
    }
    assert!(
        text.contains("stripe: charge → 200"),
        "short text on the events"
    );
    assert!(text.contains("agent told: compensated"), "{text}");
    // V1 sits on the duplicate charge landing, linked from the verdict.
    let site = html.split("id=\"s0-").nth(1).map(|_| ()).is_some();
    assert!(site);
    let v1_chip = html
        .split("<span class=\"chip")
        .find(|c| c.contains("href=\"#v1\""))
        .expect("a chip marked V1");
    assert!(v1_chip.contains("stripe: charge (duplicate)"), "{v1_chip}");
    assert!(html.contains("Led there (same key)"));
    assert!(html.contains("a duplicate arrives</a>"));
    // The per-saga table: final state in each service.
    let table = &html[html.find("<section id=\"saga-summary\">").unwrap()..];
    assert!(
        table.contains("net 500.00 (peak 500.00)"),
        "res-1 paid twice"
    );
    assert!(table.contains("Booking__c Confirmed"));
    // The replay command names the coordinator.
    assert!(
        text.contains("cargo run --release -- replay hotel-checkout --coordinator naive --seed 8")
    );
    // Fit to a 1400 px window is on by default.
    assert!(html.contains("id=\"fit\" checked") && html.contains("zoom:"));
    // The legend names only what is on the page: no partition window here
    // unless the plan has one.
    let legend = &html[html.find("<div class=\"legend\">").unwrap()..];
    let legend = &legend[..legend.find("</div>").unwrap()];
    if c.outcome.plan.partitions.is_empty() {
        assert!(!legend.contains("partition window"), "{legend}");
    }
    assert!(legend.matches("<span>").count() < 30, "compact: {legend}");
}
