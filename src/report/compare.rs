//! The comparison table (`sagasim compare --html DIR`) as a self-contained
//! HTML page: the same rows as the terminal table, escaped, inline CSS, no
//! scripts, nothing loaded. Deterministic: no wall time on the page.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{escape, file_stem, write_atomic, ReportError};
use crate::metrics::Comparison;

/// The page for a comparison; `command` is the command that produced it.
pub fn html(c: &Comparison, command: &str) -> String {
    let rows = c.rows();
    let mut out = String::new();
    let title = format!("{}: seeds {}..{}", c.scenario, c.start, c.start + c.seeds);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <title>compare {}</title><style>\
         body{{font-family:system-ui,sans-serif;margin:24px;color:#1b1f24}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #d0d7de;padding:4px 10px}}\
         td.n{{text-align:right;font-variant-numeric:tabular-nums}}tr.sub td:first-child{{padding-left:28px;color:#57606a}}\
         th{{background:#f6f8fa}}code{{background:#f6f8fa;padding:2px 4px}}\
         </style></head><body>\n<h1>What the architecture buys</h1>\n<p>{}: the same fault plan per seed for every coordinator.</p>\n<table>\n<tr><th>metric</th>",
        escape(&c.scenario),
        escape(&title)
    );
    for a in &c.coordinators {
        let _ = write!(out, "<th>{}</th>", escape(&a.coordinator));
    }
    out.push_str("</tr>\n");
    for (label, values) in &rows {
        let sub = label.starts_with("  ");
        let _ = write!(
            out,
            "<tr{}><td>{}</td>",
            if sub { " class=\"sub\"" } else { "" },
            escape(label.trim())
        );
        for v in values {
            let _ = write!(out, "<td class=\"n\">{}</td>", escape(v));
        }
        out.push_str("</tr>\n");
    }
    let _ = write!(
        out,
        "</table>\n<p>Reproduce: <code>{}</code></p>\n</body></html>\n",
        escape(command)
    );
    out
}

/// Write the page to `dir/compare-<scenario>-<start>-<seeds>.html`.
pub fn write(c: &Comparison, command: &str, dir: &Path) -> Result<PathBuf, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let stem = file_stem(&format!("compare-{}-{}", c.scenario, c.start), c.seeds);
    let path = dir.join(format!("{stem}.html"));
    write_atomic(&path, &html(c, command))?;
    Ok(path)
}
