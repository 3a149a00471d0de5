//! The HTML page of one run: verdict first, then the timeline, the fault
//! counts, the agents, the run's numbers, the fault plan and the raw trace.
//!
//! Self-contained by construction: one inline `<style>`, inline SVG, no
//! `<script>`, no links, fonts or images, and a Content-Security-Policy
//! that forbids loading anything (so even a slip in escaping could neither
//! run a script nor reach the network). Every string from a file or the
//! trace goes through [`escape`].
//!
//! Not here: the SVG itself (`svg.rs`), the markdown (`markdown.rs`).

use std::fmt::Write as _;

use super::sagas;
use super::svg::{self, glyph};
use super::timeline::{Group, MarkKind, Timeline};
use super::{clip, escape, fmt_ms, Report};

/// Most trace lines in the page's raw-trace section, and characters each.
pub const MAX_TRACE_LINES: usize = 5_000;
pub const MAX_TRACE_LINE_CHARS: usize = 400;
/// Width the fit-to-width timeline is zoomed to (a 1400 px window less
/// the page's margins).
pub const FIT_WIDTH_PX: f64 = 1330.0;
/// Most characters of the fault plan's JSON shown.
pub const MAX_PLAN_CHARS: usize = 200_000;

const CSS: &str = r#"
:root{--fg:#1d2330;--muted:#5b6475;--line:#d9dde5;--ok:#2b9348;--bad:#c1121f}
*{box-sizing:border-box}
body{margin:0;padding:20px 28px 40px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:#fff}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:26px 0 8px}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.description{margin:0 0 6px;color:var(--muted)}
.meta{margin:0;color:var(--muted)}
.meta span{margin-right:18px}
.verdict{margin-top:16px;padding:12px 16px;border-radius:6px;border:2px solid}
.verdict h2{margin:0 0 6px;font-size:19px}
.verdict.ok{border-color:var(--ok);background:#eef8f0}
.verdict.ok h2{color:var(--ok)}
.verdict.fail{border-color:var(--bad);background:#fdeeee}
.verdict.fail h2{color:var(--bad)}
.verdict p{margin:4px 0}
table{border-collapse:collapse;margin:6px 0}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f5f8;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.zero td{color:#9aa1ad}
.verdict table{background:#fff}
.facts{max-width:70ch}
ul.notes{margin:4px 0 8px;padding-left:20px;color:var(--muted)}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;margin:6px 0 10px;font-size:12.5px;color:var(--muted)}
.legend span{white-space:nowrap}
.legend svg{vertical-align:middle;margin-right:3px}
.tl-wrap{display:flex;border:1px solid var(--line);border-radius:6px;background:#fff}
.tl-scroll{overflow-x:auto;flex:1}
svg text{font:11px system-ui,sans-serif;fill:var(--fg)}
.lane-label{text-anchor:end;font-weight:600;font-size:12px}
.axis-caption{fill:var(--muted)}
.lane{stroke:#c9ced8;stroke-width:1}
.axis-line{stroke:#8a93a3}
.tick line{stroke:#eef0f4}
.tick text{fill:var(--muted);text-anchor:middle;font-size:10.5px}
.gap-band{fill:#f1f2f4;stroke:#c9ced8;stroke-dasharray:3 3}
.gap-label{fill:#7a8291;text-anchor:middle;font-size:10.5px}
.phase.liveness{fill:#f2faf4}
.band.down{fill:url(#hatch);stroke:#6c6f75;stroke-width:.6}
#hatch path{stroke:#9097a3;stroke-width:2}
.band.paused{fill:#e3e5ea;stroke:#9097a3;stroke-width:.6}
.band.partition{fill:rgba(123,44,191,.16)}
.band.brownout{fill:rgba(214,51,108,.16)}
.msg{stroke-width:1.2;fill:none}
.arrows.request .msg{stroke:#4a6fa5}
.arrows.reply .msg{stroke:#2a9d8f}
.arrows.duplicate .msg{stroke:#ff7f0e;stroke-dasharray:5 3;stroke-width:1.6}
.arrows.delayed .msg{stroke:#d49a00;stroke-dasharray:6 3;stroke-width:1.6}
.arrows.late .msg{stroke:#b8860b;stroke-dasharray:2 2;stroke-width:1.6}
.arrows.injected .msg{stroke:#d6336c;stroke-width:1.6}
.arrows.lost .msg{stroke:#d62728;stroke-dasharray:3 2;stroke-width:1.6}
.arrows.orphan .msg{stroke:#a5abb5;stroke-dasharray:2 3}
#ah-request path{fill:#4a6fa5}
#ah-reply path{fill:#2a9d8f}
#ah-fault path{fill:#d62728}
.mark{stroke-width:1.3}
.mark.drop-request,.mark.drop-reply,.mark.partition,.mark.no-server,.mark.tool-give-up{fill:none;stroke-width:2.4}
.mark.drop-request{stroke:#d62728}
.mark.drop-reply{stroke:#a4161a}
.mark.partition{stroke:#7b2cbf}
.mark.no-server{stroke:#6c757d}
.mark.tool-give-up{stroke:#d62728}
.mark.duplicate{fill:#ff7f0e}
.mark.delay{fill:#e6a700}
.mark.delay-past-timeout{fill:#b36b00}
.mark.refused{fill:#8b0000}
.mark.timeout{fill:none;stroke:#d62728;stroke-width:2}
.mark.late-arrival{fill:none;stroke:#b8860b;stroke-width:2}
.mark.injected{fill:#d6336c}
.mark.crash{fill:#111}
.mark.restart,.mark.resume{fill:#2b9348}
.mark.pause{fill:none;stroke:#333;stroke-width:2}
.mark.disk-crash{fill:#555}
.mark.recover{fill:#7b2cbf}
.mark.notify{fill:#1f77b4}
.mark.step-call{stroke:#1f77b4;stroke-width:2}
.mark.outcome-applied{fill:#2b9348}
.mark.outcome-found{fill:#20a4a4}
.mark.outcome-not-found{fill:#6c757d}
.mark.outcome-transient{fill:#e6a700}
.mark.outcome-unknown{fill:#ff7f0e}
.mark.outcome-rejected{fill:#d62728}
.mark.tool-call{stroke:#555;stroke-width:2}
.mark.tool-answer{fill:#555}
.mark.fsync{stroke:#b8bec9}
.mark.other{stroke:#9aa1ad}
.status-label{font-size:10px;fill:#1f4e79}
.rule line{stroke-width:1.4}
.rule.heal line{stroke:#2b9348;stroke-dasharray:4 3}
.rule.heal text{fill:#2b9348;font-weight:600}
.rule.violation line{stroke:var(--bad);stroke-width:2}
.rule.violation text{fill:var(--bad);font-weight:700}
pre.plan,pre.trace{background:#f7f8fa;border:1px solid var(--line);border-radius:6px;padding:10px;overflow:auto;max-height:480px}
details summary{cursor:pointer;font-weight:600}
footer{margin-top:30px;color:var(--muted);font-size:12px}
.saga{display:flex;gap:10px;border-left:5px solid;padding:4px 0 4px 8px;margin:4px 0;background:#fafbfc}
.saga-key{min-width:64px;font-weight:700;font-family:ui-monospace,Menlo,monospace;font-size:13px;padding-top:2px}
.chips{display:flex;flex-wrap:wrap;gap:3px 4px}
.chip{display:inline-block;border:1px solid #d0d7de;border-radius:10px;padding:1px 7px;font-size:12px;background:#fff;white-space:nowrap}
.chip b{font-weight:500;color:var(--muted);font-size:11px}
.chip.agent{background:#f3f5f8}
.chip.ok{border-color:#8cd39f;background:#eef8f0}
.chip.fail{border-color:#f3a6a6;background:#fdeeee}
.chip.fault{border-color:#f0c36d;background:#fff6e0}
.chip.violated{outline:2px solid var(--bad);outline-offset:1px}
.chip .vmark,.chip.vmark,a.vmark{color:#fff;background:var(--bad);border-radius:8px;padding:0 5px;font-weight:700;text-decoration:none}
.led{margin-top:4px;font-size:12.5px}.led ul{margin:2px 0;padding-left:18px}
#fit{margin:4px 4px 8px 0}
"#;

fn kind_legend(kind: MarkKind) -> String {
    format!(
        "<span><svg width=\"14\" height=\"14\" viewBox=\"0 0 14 14\"><path class=\"mark {}\" d=\"{}\"/></svg>{}</span>",
        kind.class(),
        glyph(kind.shape(), 7.0, 7.0, 4.5),
        kind.describe()
    )
}

fn arrow_legend(dir: &str, style: &str, what: &str) -> String {
    format!(
        "<span><svg width=\"30\" height=\"14\" viewBox=\"0 0 30 14\"><g class=\"arrows {dir} {style}\"><line class=\"msg\" x1=\"1\" y1=\"7\" x2=\"29\" y2=\"7\"/></g></svg>{what}</span>"
    )
}

fn band_legend(class: &str, what: &str) -> String {
    format!(
        "<span><svg width=\"22\" height=\"14\" viewBox=\"0 0 22 14\"><rect class=\"{class}\" x=\"1\" y=\"2\" width=\"20\" height=\"10\"/></svg>{what}</span>"
    )
}

fn legend(t: &Timeline) -> String {
    use super::timeline::{BandKind, Dir, Style};
    let mut s = String::from("<div class=\"legend\">");
    for (dir, style, what) in [
        (Dir::Request, Style::Normal, "request"),
        (Dir::Reply, Style::Normal, "reply"),
        (Dir::Request, Style::Duplicate, "duplicate copy"),
        (Dir::Request, Style::Delayed, "delayed"),
        (Dir::Request, Style::Late, "late arrival"),
        (Dir::Request, Style::Injected, "brown-out injected"),
        (Dir::Request, Style::Lost, "lost (ends in ✕)"),
        (Dir::Reply, Style::Orphan, "reply nobody took"),
    ] {
        // Styles other than normal are drawn in one colour either way.
        let on_page = t
            .arrows
            .iter()
            .any(|a| a.style == style && (style != Style::Normal || a.dir == dir));
        if on_page {
            let d = if dir == Dir::Request {
                "request"
            } else {
                "reply"
            };
            s.push_str(&arrow_legend(d, style.class(), what));
        }
    }
    for (kind, class, what) in [
        (BandKind::Down, "band down", "node down"),
        (BandKind::Paused, "band paused", "node paused"),
        (BandKind::Partition, "band partition", "partition window"),
        (BandKind::Brownout, "band brownout", "brown-out window"),
    ] {
        if t.bands.iter().any(|b| b.kind == kind) {
            s.push_str(&band_legend(class, what));
        }
    }
    if t.safety_end_us < t.end_us {
        s.push_str(&band_legend(
            "phase liveness",
            "liveness phase (faults off)",
        ));
    }
    // Only the marks on the page.
    for (kind, n) in t.counts() {
        if n > 0 {
            s.push_str(&kind_legend(kind));
        }
    }
    s.push_str("</div>");
    s
}

/// Render the page.
pub fn render(r: &Report<'_>) -> String {
    let out = r.outcome;
    let sc = r.scenario;
    // The sagas first: the node timeline draws each violation where it
    // happened (its saga's event), not at the time the check ran.
    let saga_lanes = sagas::lanes(r);
    let sites = sagas::violation_sites(r, &saga_lanes);
    let placed = sagas::placed(r.verdict, &saga_lanes, &sites);
    let t = Timeline::build(
        &r.lanes(),
        r.trace,
        &out.plan,
        &placed,
        out.phases.safety_end_ms,
        out.phases.end_ms,
    );
    let drawn = svg::draw(&t);
    let name = escape(&sc.name);
    let seed = r.seed();
    let mut h = String::with_capacity(64 * 1024 + drawn.timeline_svg.len());

    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(h, "<title>sagasim report: {name}, seed {seed}</title>");
    let _ = writeln!(h, "<style>{CSS}</style>\n</head>\n<body>");

    // Header.
    let _ = write!(
        h,
        "<header id=\"top\"><h1>{name} <span class=\"mono\">seed {seed}</span></h1>"
    );
    if !sc.description.is_empty() {
        let _ = write!(
            h,
            "<p class=\"description\">{}</p>",
            escape(&sc.description)
        );
    }
    let _ = writeln!(
        h,
        "<p class=\"meta\"><span>{} events</span><span>trace hash <code>{:016x}</code></span><span>{} fault(s) in plan</span><span>faults off at {}</span><span>run ended at {}{}</span></p></header>",
        r.trace.len,
        r.trace.hash,
        out.plan.len(),
        fmt_ms(out.phases.safety_end_ms),
        fmt_ms(out.phases.end_ms),
        if out.phases.converged {
            ", converged"
        } else {
            ", did not converge"
        }
    );

    let lanes = saga_lanes;
    // Verdict.
    let n = r.verdict.all().count();
    if n == 0 {
        h.push_str("<section id=\"verdict\" class=\"verdict ok\"><h2>✔ Every invariant held</h2>");
    } else {
        let _ = write!(
            h,
            "<section id=\"verdict\" class=\"verdict fail\"><h2>✘ {n} invariant violation{}</h2>",
            if n == 1 { "" } else { "s" }
        );
        h.push_str("<table class=\"violations\"><thead><tr><th>#</th><th>invariant</th><th>kind</th><th>business key</th><th>at</th><th>facts</th></tr></thead><tbody>");
        let kinds = r
            .verdict
            .safety
            .iter()
            .map(|v| ("safety", v))
            .chain(r.verdict.liveness.iter().map(|v| ("eventual", v)));
        for (i, (kind, v)) in kinds.enumerate() {
            let site = sites.get(i).copied().flatten();
            let led: String = site
                .map(|s| sagas::led_there(&lanes, s))
                .unwrap_or_default()
                .iter()
                .map(|(id, text)| format!("<li><a href=\"#{id}\">{}</a></li>", escape(text)))
                .collect();
            let _ = write!(
                h,
                "<tr class=\"violation\" id=\"v{}\"><td>V{}</td><td><strong>{}</strong></td><td>{kind}</td><td>{}</td><td class=\"num\">{} ms{}</td><td class=\"facts\">{}{}</td></tr>",
                i + 1,
                i + 1,
                escape(&v.invariant),
                if v.business_key.is_empty() {
                    "–".to_string()
                } else {
                    escape(&v.business_key)
                },
                v.at_ms,
                site.map(|(l, c)| format!("<br><a href=\"#s{l}-{c}\">where it happened</a>"))
                    .unwrap_or_default(),
                escape(&sagas::plain(&v.facts)),
                if led.is_empty() {
                    String::new()
                } else {
                    format!("<div class=\"led\">Led there (same key):<ul>{led}</ul></div>")
                }
            );
        }
        h.push_str("</tbody></table>");
        h.push_str("<p>Each violation is marked V1, V2, … on its saga's lane below, at the event where it happened, and as a red line on the node timeline.</p>");
    }
    let _ = writeln!(
        h,
        "<p>Replay: <code>{}</code></p>",
        escape(&r.replay_command())
    );
    if let Some(handle) = r.handle_json() {
        let _ = writeln!(h, "<p>Handle: <code>{}</code></p>", escape(&handle));
    }
    h.push_str("</section>");

    sagas::render_lanes(&mut h, r, &lanes);
    sagas::render_summary(&mut h, r, &lanes);

    // Timeline.
    h.push_str("<section id=\"timeline\"><h2>Timeline, one lane per node</h2><ul class=\"notes\">");
    for note in &drawn.notes {
        let _ = write!(h, "<li>{}</li>", escape(note));
    }
    if t.unparsed > 0 {
        let _ = write!(
            h,
            "<li>{} event(s) did not read as expected and are drawn as plain marks.</li>",
            t.unparsed
        );
    }
    if r.trace.events.is_empty() && r.trace.len > 0 {
        h.push_str("<li>The trace was recorded hash-only: no events to draw.</li>");
    }
    h.push_str("<li>Hover over an arrow, a mark or a band for the full event text; the saga lanes above say the same in words.</li></ul>");
    // Fit to a 1400 px window: zoom the labels and the timeline together
    // (computed here: the page has no script).
    let zoom = (FIT_WIDTH_PX / drawn.width_px).min(1.0);
    let _ = write!(
        h,
        "<style>#fit:checked~.tl-wrap{{zoom:{zoom:.3}}}#fit:checked~.tl-wrap .tl-scroll{{overflow-x:hidden}}</style>"
    );
    h.push_str("<input type=\"checkbox\" id=\"fit\" checked><label for=\"fit\"> fit the timeline to the window (untick to scroll at full scale)</label>");
    h.push_str(&legend(&t));
    let _ = writeln!(
        h,
        "<div class=\"tl-wrap\">{}<div class=\"tl-scroll\">{}</div></div></section>",
        drawn.labels_svg, drawn.timeline_svg
    );

    // Fault counts.
    h.push_str("<section id=\"faults\"><h2>Faults seen in the trace</h2><table class=\"counts\"><thead><tr><th>fault</th><th>count</th><th>meaning</th></tr></thead><tbody>");
    for (kind, count) in t.counts() {
        if kind.group() != Group::Fault {
            continue;
        }
        let _ = write!(
            h,
            "<tr{}><td class=\"mono\">{}</td><td class=\"num\">{count}</td><td>{}</td></tr>",
            if count == 0 { " class=\"zero\"" } else { "" },
            kind.class(),
            kind.describe()
        );
    }
    h.push_str("</tbody></table><p class=\"meta\">Restarts include the ones at the start of the liveness phase, when every crashed node comes back.</p></section>\n");

    // Agents.
    h.push_str("<section id=\"agents\"><h2>Agents</h2><table class=\"agents\"><thead><tr><th>agent</th><th>business key</th><th>answer</th><th>tool calls</th><th>timeouts</th><th>boots</th><th>gave up</th><th>first call</th><th>answered</th></tr></thead><tbody>");
    let ms = |v: Option<u64>| v.map_or("–".to_string(), |v| format!("{v} ms"));
    for a in &out.agents {
        let _ = write!(
            h,
            "<tr><td>agent-{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            a.agent,
            escape(&a.business_key),
            a.answer
                .as_ref()
                .map_or("no answer".to_string(), |s| escape(&sagas::status_words(s))),
            a.calls,
            a.timeouts,
            a.boots,
            if a.gave_up { "yes" } else { "no" },
            ms(a.first_call_ms),
            ms(a.answered_ms)
        );
    }
    h.push_str("</tbody></table></section>\n");

    // Transport counters.
    h.push_str("<section id=\"net\"><h2>Transport counters</h2><table class=\"net\"><tbody>");
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(out.net) {
        for (k, v) in map {
            let _ = write!(
                h,
                "<tr><td class=\"mono\">{}</td><td class=\"num\">{}</td></tr>",
                escape(&k),
                escape(&v.to_string())
            );
        }
    }
    h.push_str("</tbody></table></section>\n");

    // Coverage: what this run reached of the catalogue.
    let (total, rows) = r.coverage();
    let _ = write!(
        h,
        "<section id=\"coverage\"><h2>Coverage: {} of {total} catalogue entries reached</h2>\
         <details><summary>entries (calls for a response entry)</summary>\
         <table class=\"net\"><tbody>",
        rows.len()
    );
    for (entry, n) in &rows {
        let _ = write!(
            h,
            "<tr><td class=\"mono\">{}</td><td class=\"num\">{n}</td></tr>",
            escape(entry)
        );
    }
    h.push_str("</tbody></table></details></section>\n");

    // Plan.
    let plan_json = serde_json::to_string_pretty(&*out.plan).unwrap_or_default();
    let _ = write!(
        h,
        "<section id=\"plan\"><h2>Fault plan ({} fault(s))</h2><pre class=\"plan\">{}</pre>",
        out.plan.len(),
        escape(&clip(&plan_json, MAX_PLAN_CHARS))
    );
    if plan_json.chars().count() > MAX_PLAN_CHARS {
        let _ = write!(
            h,
            "<p class=\"meta\">Cut at {MAX_PLAN_CHARS} characters.</p>"
        );
    }
    h.push_str("</section>\n");

    // Raw trace.
    let shown = r.trace.events.len().min(MAX_TRACE_LINES);
    let _ = write!(
        h,
        "<section id=\"trace\"><details><summary>Trace ({} events{})</summary><pre class=\"trace\">",
        r.trace.events.len(),
        if shown < r.trace.events.len() {
            format!(", the first {shown} shown")
        } else {
            String::new()
        }
    );
    for e in r.trace.events.iter().take(MAX_TRACE_LINES) {
        h.push_str(&escape(&clip(&e.to_string(), MAX_TRACE_LINE_CHARS)));
        h.push('\n');
    }
    h.push_str("</pre></details></section>\n");

    let _ = write!(
        h,
        "<footer>sagasim {} · scenario {name} · seed {seed} · a pure function of (scenario, seed, plan): the same seed writes the same bytes.</footer>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    );
    debug_assert!(!h.contains("<script"));
    h
}
