//! The markdown summary of one run: scenario, seed, verdict, violations,
//! agent outcomes, counts of each fault kind seen in the trace, trace hash,
//! and the replay command — the part of the HTML page that fits in a pull
//! request comment or a CI log.
//!
//! Text from files and the trace is made inert for markdown renderers that
//! pass HTML through: `&`, `<`, `>` become entities, `|` is escaped inside
//! tables, and newlines become spaces.
//!
//! Not here: the timeline (HTML only).

use std::fmt::Write as _;

use super::timeline::{Group, Timeline};
use super::{fmt_ms, Report};

/// Inert markdown text (`cell`: also safe inside a table cell).
fn md(text: &str, cell: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' if cell => out.push_str("\\|"),
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

pub fn render(r: &Report<'_>) -> String {
    let out = r.outcome;
    let t = Timeline::build(
        &r.lanes(),
        r.trace,
        &out.plan,
        r.verdict,
        out.phases.safety_end_ms,
        out.phases.end_ms,
    );
    let mut m = String::new();
    let _ = writeln!(
        m,
        "# sagasim report: {}, seed {}\n",
        md(&r.scenario.name, false),
        r.seed()
    );
    if !r.scenario.description.is_empty() {
        let _ = writeln!(m, "{}\n", md(&r.scenario.description, false));
    }
    let n = r.verdict.all().count();
    if n == 0 {
        let _ = writeln!(m, "**Verdict: every invariant held.**\n");
    } else {
        let _ = writeln!(
            m,
            "**Verdict: {n} invariant violation{}.**\n",
            if n == 1 { "" } else { "s" }
        );
    }
    let _ = writeln!(
        m,
        "- trace: {} events, hash `{:016x}`",
        r.trace.len, r.trace.hash
    );
    let _ = writeln!(m, "- fault plan: {} fault(s)", out.plan.len());
    let _ = writeln!(
        m,
        "- phases: faults off at {}, run ended at {}, {}",
        fmt_ms(out.phases.safety_end_ms),
        fmt_ms(out.phases.end_ms),
        if out.phases.converged {
            "converged"
        } else {
            "did not converge"
        }
    );
    let _ = writeln!(m, "- replay: `{}`", md(&r.replay_command(), false));
    if let Some(handle) = r.handle_json() {
        let _ = writeln!(m, "- handle: `{}`", md(&handle, false));
    }
    m.push('\n');

    if n > 0 {
        m.push_str("## Violations\n\n| # | invariant | kind | business key | at ms | facts |\n|---|---|---|---|---:|---|\n");
        let all = r
            .verdict
            .safety
            .iter()
            .map(|v| ("safety", v))
            .chain(r.verdict.liveness.iter().map(|v| ("eventual", v)));
        for (i, (kind, v)) in all.enumerate() {
            let _ = writeln!(
                m,
                "| V{} | {} | {kind} | {} | {} | {} |",
                i + 1,
                md(&v.invariant, true),
                if v.business_key.is_empty() {
                    "–".to_string()
                } else {
                    md(&v.business_key, true)
                },
                v.at_ms,
                md(&v.facts, true)
            );
        }
        m.push('\n');
    }

    m.push_str("## Agents\n\n| agent | business key | answer | tool calls | timeouts | gave up |\n|---|---|---|---:|---:|---|\n");
    for a in &out.agents {
        let _ = writeln!(
            m,
            "| agent-{} | {} | {} | {} | {} | {} |",
            a.agent,
            md(&a.business_key, true),
            a.answer.as_ref().map_or("no answer".to_string(), |s| md(
                &super::sagas::status_words(s),
                true
            )),
            a.calls,
            a.timeouts,
            if a.gave_up { "yes" } else { "no" }
        );
    }
    m.push('\n');

    m.push_str("## Faults seen in the trace\n\n| fault | count |\n|---|---:|\n");
    for (kind, count) in t.counts() {
        if kind.group() == Group::Fault {
            let _ = writeln!(m, "| {} | {count} |", kind.class());
        }
    }
    let (total, rows) = r.coverage();
    let _ = writeln!(
        m,
        "\n## Coverage\n\n{} of the catalogue's {total} entries reached (calls for a response \
         entry).\n\n| entry | count |\n|---|---:|",
        rows.len()
    );
    for (entry, n) in &rows {
        let _ = writeln!(m, "| {} | {n} |", md(entry, true));
    }
    m.push_str("\nThe timeline is in the HTML report next to this file.\n");
    m
}

#[cfg(test)]
mod tests {
    use super::md;

    #[test]
    fn markdown_text_is_inert() {
        assert_eq!(
            md("<b>a|b</b>\nc & d", true),
            "&lt;b&gt;a\\|b&lt;/b&gt; c &amp; d"
        );
        assert_eq!(md("a|b", false), "a|b");
    }
}
