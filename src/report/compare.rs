//! The comparison study (`sagasim compare --html DIR`) as a self-contained
//! page: the verdict on the article's claim first, then inline-SVG charts
//! of success (as told, verified, and among the checkouts that could
//! succeed), p50/p99 latency, double charges and stale state against fault
//! intensity, one line per coordinator; the sweep table; the full table at
//! the heaviest point with failures highlighted; and an example seed per
//! failing metric, linked to its report, with a replay command.
//!
//! Deterministic (no wall time on the page), escaped, inline CSS and SVG,
//! no scripts, nothing loaded.
//!
//! Not here: running the study (`crate::study`), writing the example
//! reports (`cli::compare`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{escape, file_stem, write_atomic, ReportError};
use crate::metrics::{Aggregate, Comparison, FailingMetric};
use crate::study::{fmt_intensity, fmt_pct as pct, fmt_secs as secs, Study, CLAIM_P50_MAX_MS};

/// An example seed of one failing metric of one coordinator.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    /// The coordinator that showed it.
    pub coordinator: String,
    /// What failed.
    pub metric: FailingMetric,
    /// The intensity (‰) of the example's plan.
    pub intensity_permille: u32,
    /// The seed.
    pub seed: u64,
    /// The report's file name, relative to the page, if one was written.
    pub report: Option<String>,
    /// The thinned plan file the replay command names (below 100 %).
    pub plan: Option<PathBuf>,
    /// The command that replays it, as printed.
    pub replay: String,
}

/// A colour per coordinator, by column (then cycling).
const PALETTE: [&str; 4] = ["#cf222e", "#0969da", "#8250df", "#1a7f37"];

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:16px 24px;color:#1b1f24;max-width:1340px}\
h1{font-size:22px;margin:0 0 6px}h2{font-size:17px;margin:22px 0 8px}\
p{margin:6px 0;line-height:1.4}.claim{border-left:5px solid #0969da;background:#f6f8fa;padding:8px 12px;margin:10px 0}\
.claim.ok{border-color:#1a7f37}.claim.no{border-color:#cf222e}\
.charts{display:flex;flex-wrap:wrap;gap:10px}.charts svg{border:1px solid #d0d7de;background:#fff}\
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #d0d7de;padding:3px 8px}\
td.n{text-align:right;font-variant-numeric:tabular-nums}tr.sub td:first-child{padding-left:24px;color:#57606a}\
th{background:#f6f8fa}td.bad{background:#ffebe9;color:#82071e}td.good{background:#dafbe1}\
code{background:#f6f8fa;padding:1px 4px;font-size:12px}.muted{color:#57606a}";

/// The page for a study; `examples` from `cli::compare`, `command` the
/// command that produced it.
pub fn html(st: &Study, examples: &[Example], command: &str) -> String {
    let mut out = String::new();
    let names = st.coordinator_names();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <title>compare {}</title><style>{CSS}</style></head><body>\n\
         <h1>What the architecture buys: {}</h1>\n\
         <p>Seeds {}..{} ({} per point), each run at every fault intensity against every coordinator \
         ({}). An intensity keeps that share of each seed's swarm faults (the same faults, thinned), \
         so 100&nbsp;% is the plan <code>fuzz</code> runs and 1&nbsp;% is a production-like day.</p>\n",
        escape(&st.scenario),
        escape(&st.scenario),
        st.start,
        st.start + st.seeds,
        st.seeds,
        escape(&names.join(", ")),
    );
    claim_section(&mut out, st);
    out.push_str("<h2>Against fault intensity</h2>\n<div class=\"charts\">\n");
    success_chart(&mut out, st);
    latency_chart(&mut out, st, "Latency p50, as the agent saw it (s)", &|a| {
        a.latency_p50_ms
    });
    latency_chart(&mut out, st, "Latency p99, as the agent saw it (s)", &|a| {
        a.latency_p99_ms
    });
    rate_chart(
        &mut out,
        st,
        "Runs with a double charge",
        &|a: &Aggregate| (a.runs_with_double_charge, a.runs),
    );
    rate_chart(
        &mut out,
        st,
        "Runs with stale state after quiescence",
        &|a: &Aggregate| (a.runs_with_stale, a.runs),
    );
    out.push_str("</div>\n");
    sweep_table(&mut out, st);
    examples_section(&mut out, st, examples);
    heavy_table(&mut out, st);
    let _ = write!(
        out,
        "<p>Reproduce: <code>{}</code></p>\n</body></html>\n",
        escape(command)
    );
    out
}

fn claim_section(out: &mut String, st: &Study) {
    let ceiling = st
        .points
        .first()
        .and_then(|p| p.coordinators.first())
        .map(|a| pct(a.could_succeed, a.started))
        .unwrap_or_else(|| "-".into());
    let _ = writeln!(
        out,
        "<p>The seed article claims compensation patterns reach <b>94&nbsp;% success with 2–4&nbsp;s \
         response times</b>. A declined card and a sold-out room are correct failures, so here the \
         raw rate is bounded by the ceiling ({ceiling} of the checkouts could succeed); the claim is \
         judged as 94&nbsp;% of the checkouts that <i>could</i> succeed, verified in the services' \
         ground truth, with the agent's p50 latency at most {}&nbsp;s.</p>",
        CLAIM_P50_MAX_MS / 1000
    );
    for c in &st.claims {
        let (class, text) = match (c.holds_up_to_permille, c.fails_at_permille) {
            (Some(p), None) => (
                "ok",
                format!(
                    "<b>{}</b> keeps the claim at every intensity measured, up to {} of the swarm ({:.1} faults per run).",
                    escape(&c.coordinator),
                    fmt_intensity(p),
                    c.faults_per_run.unwrap_or(0.0)
                ),
            ),
            (Some(p), Some(f)) => (
                "ok",
                format!(
                    "<b>{}</b> keeps the claim up to {} of the swarm ({:.1} faults per run), not at {}: {}.",
                    escape(&c.coordinator),
                    fmt_intensity(p),
                    c.faults_per_run.unwrap_or(0.0),
                    fmt_intensity(f),
                    why_not(st, &c.coordinator, f)
                ),
            ),
            (None, f) => (
                "no",
                format!(
                    "<b>{}</b> does not keep the claim even at the lightest intensity{}.",
                    escape(&c.coordinator),
                    f.map(|f| format!(": {}", why_not(st, &c.coordinator, f)))
                        .unwrap_or_default()
                ),
            ),
        };
        let _ = writeln!(out, "<div class=\"claim {class}\">{text}</div>");
    }
    // What faults cannot explain: sales lost at the lightest point.
    if let Some(p) = st.points.first() {
        let lost: Vec<String> = p
            .coordinators
            .iter()
            .filter(|a| a.lost_sales > 0)
            .map(|a| {
                format!(
                    "<b>{}</b> {} of {} ({})",
                    escape(&a.coordinator),
                    a.lost_sales,
                    a.could_succeed,
                    pct(a.lost_sales, a.could_succeed)
                )
            })
            .collect();
        if !lost.is_empty() {
            let _ = writeln!(
                out,
                "<p>At {} ({:.1} faults per run) already lost, of the checkouts that could succeed: {}. \
                 What is lost there is lost to the workload's step order or the coordinator, not to faults.</p>",
                fmt_intensity(p.intensity_permille),
                p.faults_per_run,
                lost.join(", ")
            );
        }
    }
}

/// What misses the claim at `permille`: success, latency or both.
fn why_not(st: &Study, coordinator: &str, permille: u32) -> String {
    let Some(a) = st
        .points
        .iter()
        .find(|p| p.intensity_permille == permille)
        .and_then(|p| p.of(coordinator))
    else {
        return "no data".into();
    };
    format!(
        "{} of the possible checkouts succeed, p50 {}",
        pct(a.completed_verified, a.could_succeed),
        secs(a.latency_p50_ms)
    )
}

/// A series: label, coordinator column, dash pattern, values (None: no data).
struct Series {
    label: String,
    column: usize,
    dash: &'static str,
    values: Vec<Option<f64>>,
}

const W: f64 = 430.0;
const H: f64 = 270.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 34.0;
const TOP: f64 = 56.0;
const BOTTOM: f64 = 44.0;

/// A line chart over the study's points: `y_max` the top of the axis,
/// `unit` after tick values, `bands` shaded y ranges with a label.
fn chart(
    out: &mut String,
    st: &Study,
    title: &str,
    y_max: f64,
    unit: &str,
    series: &[Series],
    bands: &[(f64, f64, &str)],
) {
    let n = st.points.len().max(1);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let x = |i: usize| {
        if n == 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + plot_w * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| TOP + plot_h * (1.0 - (v / y_max).clamp(0.0, 1.0));
    let _ = write!(
        out,
        "<svg width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" \
         font-family=\"system-ui,sans-serif\" font-size=\"11\" role=\"img\" aria-label=\"{}\">\
         <text x=\"10\" y=\"16\" font-size=\"13\" font-weight=\"600\">{}</text>",
        escape(title),
        escape(title)
    );
    // Legend: two rows of short entries under the title.
    for (i, s) in series.iter().enumerate() {
        let lx = 10.0 + (i % 3) as f64 * 142.0;
        let ly = 30.0 + (i / 3) as f64 * 13.0;
        let _ = write!(
            out,
            "<line x1=\"{lx}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{}\" stroke-width=\"2\" stroke-dasharray=\"{}\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            lx + 18.0,
            PALETTE[s.column % PALETTE.len()],
            s.dash,
            lx + 22.0,
            ly + 4.0,
            escape(&s.label)
        );
    }
    for (lo, hi, label) in bands {
        let _ = write!(
            out,
            "<rect x=\"{LEFT}\" y=\"{:.1}\" width=\"{plot_w}\" height=\"{:.1}\" fill=\"#1a7f37\" opacity=\"0.10\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#1a7f37\">{}</text>",
            y(*hi),
            (y(*lo) - y(*hi)).max(1.0),
            LEFT + 4.0,
            y(*hi) + 11.0,
            escape(label)
        );
    }
    for k in 0..=4 {
        let v = y_max * f64::from(k) / 4.0;
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#eaeef2\"/>\
             <text x=\"{2}\" y=\"{3:.1}\" text-anchor=\"end\" fill=\"#57606a\">{4}{unit}</text>",
            y(v),
            LEFT + plot_w,
            LEFT - 4.0,
            y(v) + 4.0,
            trim_float(v)
        );
    }
    for (i, p) in st.points.iter().enumerate() {
        let _ = write!(
            out,
            "<text x=\"{0:.1}\" y=\"{1}\" text-anchor=\"middle\">{2}</text>\
             <text x=\"{0:.1}\" y=\"{3}\" text-anchor=\"middle\" fill=\"#57606a\">{4:.1} f/run</text>",
            x(i),
            H - BOTTOM + 14.0,
            fmt_intensity(p.intensity_permille),
            H - BOTTOM + 27.0,
            p.faults_per_run
        );
    }
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#57606a\">fault intensity (share of the swarm) · faults per run</text>",
        LEFT + plot_w / 2.0,
        H - 4.0
    );
    for s in series {
        let colour = PALETTE[s.column % PALETTE.len()];
        let pts: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| format!("{:.1},{:.1}", x(i), y(v))))
            .collect();
        let _ = write!(
            out,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" stroke-dasharray=\"{}\"/>",
            pts.join(" "),
            s.dash
        );
        for (i, v) in s.values.iter().enumerate() {
            if let Some(v) = v {
                let _ = write!(
                    out,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{colour}\"/>",
                    x(i),
                    y(*v)
                );
            }
        }
        // The value at the heaviest point, written beside it.
        if let Some((i, Some(v))) = s.values.iter().enumerate().next_back() {
            if s.dash.is_empty() {
                let _ = write!(
                    out,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"{colour}\" font-weight=\"600\">{}{unit}</text>",
                    x(i) - 5.0,
                    y(*v) - 5.0,
                    trim_float(*v)
                );
            }
        }
    }
    out.push_str("</svg>\n");
}

/// `12.0` → `12`, `12.345` → `12.3`.
fn trim_float(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map_or(s.clone(), str::to_string)
}

fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| 100.0 * part as f64 / whole as f64)
}

fn per_coordinator(
    st: &Study,
    label: &str,
    dash: &'static str,
    f: &dyn Fn(&Aggregate) -> Option<f64>,
) -> Vec<Series> {
    st.coordinator_names()
        .iter()
        .enumerate()
        .map(|(column, name)| Series {
            label: format!("{name} {label}"),
            column,
            dash,
            values: st.points.iter().map(|p| p.of(name).and_then(f)).collect(),
        })
        .collect()
}

fn success_chart(out: &mut String, st: &Study) {
    let mut series = per_coordinator(st, "of possible", "", &|a| {
        rate(a.completed_verified, a.could_succeed)
    });
    series.extend(per_coordinator(st, "verified", "6 3", &|a| {
        rate(a.completed_verified, a.started)
    }));
    series.extend(per_coordinator(st, "as told", "2 3", &|a| {
        rate(a.completed, a.started)
    }));
    chart(
        out,
        st,
        "Success rate (%)",
        100.0,
        "%",
        &series,
        &[(94.0, 100.0, "article: 94 %")],
    );
}

fn latency_chart(out: &mut String, st: &Study, title: &str, f: &dyn Fn(&Aggregate) -> Option<u64>) {
    let series = per_coordinator(st, "", "", &|a| f(a).map(|v| v as f64 / 1000.0));
    let top = series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .fold(4.0_f64, |m, v| m.max(*v));
    chart(
        out,
        st,
        title,
        nice_ceiling(top),
        "s",
        &series,
        &[(2.0, 4.0, "article: 2–4 s")],
    );
}

/// A round axis top at or above `v`: 1, 2, 5 × 10^k.
fn nice_ceiling(v: f64) -> f64 {
    let mut step = 1.0;
    while step * 10.0 < v {
        step *= 10.0;
    }
    for m in [1.0, 2.0, 4.0, 5.0, 10.0] {
        if step * m >= v {
            return step * m;
        }
    }
    step * 10.0
}

fn rate_chart(out: &mut String, st: &Study, title: &str, f: &dyn Fn(&Aggregate) -> (u64, u64)) {
    let series = per_coordinator(st, "", "", &|a| {
        let (part, whole) = f(a);
        rate(part, whole)
    });
    let top = series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .fold(1.0_f64, |m, v| m.max(*v));
    chart(
        out,
        st,
        &format!("{title} (%)"),
        nice_ceiling(top).min(100.0),
        "%",
        &series,
        &[],
    );
}

fn sweep_table(out: &mut String, st: &Study) {
    out.push_str(
        "<h2>The sweep</h2>\n<table>\n<tr><th>intensity</th><th>faults per run</th><th>coordinator</th>\
         <th>success as told</th><th>verified</th><th>ceiling</th><th>verified of possible</th>\
         <th>p50</th><th>p99</th><th>runs with a double charge</th><th>runs with stale state</th></tr>\n",
    );
    for p in &st.points {
        for (i, a) in p.coordinators.iter().enumerate() {
            let of_possible_ok = crate::study::keeps_claim(a);
            let _ = write!(out, "<tr>");
            if i == 0 {
                let _ = write!(
                    out,
                    "<td class=\"n\" rowspan=\"{0}\">{1}</td><td class=\"n\" rowspan=\"{0}\">{2:.1}</td>",
                    p.coordinators.len(),
                    fmt_intensity(p.intensity_permille),
                    p.faults_per_run
                );
            }
            let bad = |part: u64| if part > 0 { " bad" } else { "" };
            let _ = writeln!(
                out,
                "<td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n{}\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n{}\">{}</td><td class=\"n{}\">{}</td></tr>",
                escape(&a.coordinator),
                pct(a.completed, a.started),
                pct(a.completed_verified, a.started),
                pct(a.could_succeed, a.started),
                if of_possible_ok { " good" } else { "" },
                pct(a.completed_verified, a.could_succeed),
                secs(a.latency_p50_ms),
                secs(a.latency_p99_ms),
                bad(a.runs_with_double_charge),
                pct(a.runs_with_double_charge, a.runs),
                bad(a.runs_with_stale),
                pct(a.runs_with_stale, a.runs),
            );
        }
    }
    out.push_str(
        "</table>\n<p class=\"muted\">Green: keeps the article's claim at that point. Red: a run failed on it.</p>\n",
    );
}

fn examples_section(out: &mut String, st: &Study, examples: &[Example]) {
    out.push_str("<h2>An example seed per failing metric</h2>\n");
    if examples.is_empty() {
        out.push_str("<p>No metric failed at any intensity.</p>\n");
        return;
    }
    out.push_str(
        "<p>The lowest seed at the lightest intensity that shows each metric: open its report, \
         or replay it with the command (from the directory <code>compare</code> ran in).</p>\n\
         <table>\n<tr><th>coordinator</th><th>metric</th><th>intensity</th><th>seed</th><th>replay</th></tr>\n",
    );
    for e in examples {
        let seed = match &e.report {
            Some(href) => format!("<a href=\"{}\">seed {}</a>", escape(href), e.seed),
            None => format!("seed {}", e.seed),
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{seed}</td><td><code>{}</code></td></tr>",
            escape(&e.coordinator),
            escape(e.metric.label()),
            fmt_intensity(e.intensity_permille),
            escape(&e.replay)
        );
    }
    out.push_str("</table>\n");
    let _ = st;
}

/// Labels of the rows that are failures when not zero.
const BAD_ROWS: [&str; 12] = [
    "answers contradicted",
    "lost sales",
    "NeedsOperator",
    "unanswered",
    "double charge",
    "overcharge",
    "stale",
    "orphaned",
    "not attributable",
    "invariant violations",
    "runs flagged",
    "by ",
];

fn heavy_table(out: &mut String, st: &Study) {
    let heavy = st.heaviest();
    let c = Comparison {
        scenario: st.scenario.clone(),
        start: st.start,
        seeds: st.seeds,
        coordinators: heavy.coordinators.clone(),
        elapsed_s: 0.0,
    };
    let _ = write!(
        out,
        "<h2>Every metric at {} of the swarm</h2>\n<table>\n<tr><th>metric</th>",
        fmt_intensity(heavy.intensity_permille)
    );
    for a in &c.coordinators {
        let _ = write!(out, "<th>{}</th>", escape(&a.coordinator));
    }
    out.push_str("</tr>\n");
    for (label, values) in c.rows() {
        let sub = label.starts_with("  ");
        let bad_row = BAD_ROWS.iter().any(|b| label.trim().contains(b));
        let _ = write!(
            out,
            "<tr{}><td>{}</td>",
            if sub { " class=\"sub\"" } else { "" },
            escape(label.trim())
        );
        for v in values {
            let nonzero = v.chars().any(|ch| ('1'..='9').contains(&ch));
            let _ = write!(
                out,
                "<td class=\"n{}\">{}</td>",
                if bad_row && nonzero { " bad" } else { "" },
                escape(&v)
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

/// Write the page to `dir/compare-<scenario>-<start>-<seeds>.html`.
pub fn write(
    st: &Study,
    examples: &[Example],
    command: &str,
    dir: &Path,
) -> Result<PathBuf, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let stem = file_stem(&format!("compare-{}-{}", st.scenario, st.start), st.seeds);
    let path = dir.join(format!("{stem}.html"));
    write_atomic(&path, &html(st, examples, command))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice_ceiling(4.0), 4.0);
        assert_eq!(nice_ceiling(6.4), 10.0);
        assert_eq!(nice_ceiling(13.0), 20.0);
        assert_eq!(nice_ceiling(42.0), 50.0);
        assert_eq!(nice_ceiling(0.5), 1.0);
        assert_eq!(trim_float(12.0), "12");
        assert_eq!(trim_float(12.34), "12.3");
    }
}
