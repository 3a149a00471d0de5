//! Drawing a [`Timeline`] as inline SVG: a narrow lane-label column and
//! the (horizontally scrollable) timeline itself, plus the legend glyphs.
//!
//! Limits, so that a run of a few thousand events stays usable: at most
//! [`MAX_ARROWS`] arrows (every faulty one first, then every k-th normal
//! one), [`MAX_FAULT_MARKS`] fault marks, [`MAX_STATE_MARKS`] saga-state
//! marks, [`MAX_PLAIN_MARKS`] bookkeeping marks (evenly thinned beyond),
//! [`MAX_LABELS`] status labels, and hover titles cut to
//! [`MAX_TITLE_CHARS`]. What was left out is reported in [`Drawn::notes`].
//!
//! Elements are grouped by kind (`<g class="marks k-timeout">` …) so that
//! the structure reads well and colours live in CSS, not in each element.
//!
//! Not here: the page around it (`html.rs`), reading the trace
//! (`timeline.rs`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::escape;
use super::timeline::{Arrow, Dir, Group, MarkKind, Scale, Shape, Style, Timeline};

pub const MAX_ARROWS: usize = 2_000;
pub const MAX_FAULT_MARKS: usize = 4_000;
pub const MAX_STATE_MARKS: usize = 3_000;
pub const MAX_PLAIN_MARKS: usize = 1_000;
pub const MAX_LABELS: usize = 300;
pub const MAX_RULES: usize = 100;
pub const MAX_TITLE_CHARS: usize = 600;

const LANE_H: f64 = 44.0;
const AXIS_H: f64 = 52.0;
const PAD_L: f64 = 16.0;
const PAD_R: f64 = 96.0;
const LABEL_W: f64 = 118.0;
/// Horizontal run of a stub that has no later event to end at.
const STUB_DX: f64 = 10.0;
const R: f64 = 4.5;
/// Width of one status-label character (10 px sans-serif), for overlap.
const LABEL_CHAR_PX: f64 = 5.6;

/// The drawn timeline and what was left out.
pub(crate) struct Drawn {
    /// The fixed column of lane names.
    pub labels_svg: String,
    /// The timeline itself (scrolls sideways).
    pub timeline_svg: String,
    /// What was left out or how to read it.
    pub notes: Vec<String>,
    /// Width of the timeline SVG plus the labels, in px.
    pub width_px: f64,
}

fn title(text: &str) -> String {
    format!(
        "<title>{}</title>",
        escape(&super::clip(&super::sagas::plain(text), MAX_TITLE_CHARS))
    )
}

/// Path data of a glyph centred on (x, y).
pub fn glyph(shape: Shape, x: f64, y: f64, r: f64) -> String {
    let d = 2.0 * r;
    match shape {
        Shape::Cross => format!(
            "M{:.1} {:.1}l{d:.1} {d:.1}m0 -{d:.1}l-{d:.1} {d:.1}",
            x - r,
            y - r
        ),
        Shape::Ring | Shape::Dot => format!(
            "M{:.1} {y:.1}a{r:.1} {r:.1} 0 1 0 {d:.1} 0a{r:.1} {r:.1} 0 1 0 -{d:.1} 0Z",
            x - r
        ),
        Shape::Square => format!("M{:.1} {:.1}h{d:.1}v{d:.1}h-{d:.1}Z", x - r, y - r),
        Shape::Diamond => format!(
            "M{x:.1} {:.1}L{:.1} {y:.1}L{x:.1} {:.1}L{:.1} {y:.1}Z",
            y - r,
            x + r,
            y + r,
            x - r
        ),
        Shape::TriUp => format!(
            "M{x:.1} {:.1}L{:.1} {:.1}L{:.1} {:.1}Z",
            y - r,
            x + r,
            y + r,
            x - r,
            y + r
        ),
        Shape::TriDown => format!(
            "M{x:.1} {:.1}L{:.1} {:.1}L{:.1} {:.1}Z",
            y + r,
            x + r,
            y - r,
            x - r,
            y - r
        ),
        Shape::TriRight => format!(
            "M{:.1} {:.1}L{:.1} {y:.1}L{:.1} {:.1}Z",
            x - r,
            y - r,
            x + r,
            x - r,
            y + r
        ),
        Shape::Bars => format!(
            "M{:.1} {:.1}v{d:.1}M{:.1} {:.1}v{d:.1}",
            x - r / 2.0,
            y - r,
            x + r / 2.0,
            y - r
        ),
        Shape::Tick => format!("M{x:.1} {:.1}v{:.1}", y - r, d),
    }
}

/// Which of `n` items to draw when at most `cap` may be: all (k = 1),
/// every k-th (k = ceil(n / cap)), or none (k = 0, when `cap` is 0).
fn thin(n: usize, cap: usize) -> (usize, impl Fn(usize) -> bool) {
    let k = if n <= cap {
        1
    } else if cap == 0 {
        0
    } else {
        n.div_ceil(cap)
    };
    (k, move |i: usize| k != 0 && i % k == 0)
}

fn lane_y(lane: usize) -> f64 {
    AXIS_H + LANE_H * (lane as f64 + 0.5)
}

/// Where a stub from `y0` towards `ty` ends: halfway to the next lane in
/// that direction, so its ✕ never sits on a third lane.
fn stub_y(y0: f64, ty: f64) -> f64 {
    let d = ty - y0;
    y0 + d.signum() * (d.abs() * 0.5).min(LANE_H * 0.5)
}

/// Draw `t` for lanes labelled `t.lanes`.
pub(crate) fn draw(t: &Timeline) -> Drawn {
    let scale = Scale::new(&t.instants());
    let height = AXIS_H + LANE_H * t.lanes.len() as f64 + 12.0;
    let width = PAD_L + scale.width + PAD_R;
    let x = |t_us: u64| PAD_L + scale.x(t_us);
    let mut notes = Vec::new();

    // The lane labels: a fixed column beside the scrolling timeline.
    let mut labels = String::new();
    let _ = write!(
        labels,
        "<svg class=\"lane-labels\" width=\"{LABEL_W:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {LABEL_W:.0} {height:.0}\">"
    );
    labels.push_str("<text class=\"axis-caption\" x=\"8\" y=\"20\">sim time →</text>");
    for (i, name) in t.lanes.iter().enumerate() {
        let _ = write!(
            labels,
            "<text class=\"lane-label\" x=\"{:.0}\" y=\"{:.1}\">{}</text>",
            LABEL_W - 8.0,
            lane_y(i) + 4.0,
            escape(name)
        );
    }
    labels.push_str("</svg>");

    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"timeline\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\">"
    );
    s.push_str(concat!(
        "<defs>",
        "<marker id=\"ah-request\" viewBox=\"0 0 8 8\" refX=\"8\" refY=\"4\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0 0L8 4L0 8Z\"/></marker>",
        "<marker id=\"ah-reply\" viewBox=\"0 0 8 8\" refX=\"8\" refY=\"4\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0 0L8 4L0 8Z\"/></marker>",
        "<marker id=\"ah-fault\" viewBox=\"0 0 8 8\" refX=\"8\" refY=\"4\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0 0L8 4L0 8Z\"/></marker>",
        "<pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><path d=\"M0 0v6\"/></pattern>",
        "</defs>"
    ));

    // Lanes.
    s.push_str("<g class=\"lanes\">");
    for (i, name) in t.lanes.iter().enumerate() {
        let y = lane_y(i);
        let _ = write!(
            s,
            "<line class=\"lane\" x1=\"{PAD_L:.0}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\">{}</line>",
            PAD_L + scale.width,
            title(name)
        );
    }
    s.push_str("</g>");

    // Liveness phase shading (faults off).
    if t.safety_end_us < t.end_us {
        let x0 = x(t.safety_end_us);
        let _ = write!(
            s,
            "<rect class=\"phase liveness\" x=\"{x0:.1}\" y=\"{:.0}\" width=\"{:.1}\" height=\"{:.0}\">{}</rect>",
            AXIS_H - 6.0,
            (PAD_L + scale.width - x0).max(0.0),
            height - AXIS_H + 6.0,
            title("liveness phase: faults off, the system must converge")
        );
    }

    // Axis: ticks, then compressed gaps.
    s.push_str("<g class=\"axis\">");
    let _ = write!(
        s,
        "<line class=\"axis-line\" x1=\"{PAD_L:.0}\" y1=\"{:.0}\" x2=\"{:.1}\" y2=\"{:.0}\"/>",
        AXIS_H - 8.0,
        PAD_L + scale.width,
        AXIS_H - 8.0
    );
    for (ms, tx) in scale.ticks(t.end_us) {
        let tx = PAD_L + tx;
        let _ = write!(
            s,
            "<g class=\"tick\"><line x1=\"{tx:.1}\" y1=\"{:.0}\" x2=\"{tx:.1}\" y2=\"{:.0}\"/><text x=\"{tx:.1}\" y=\"{:.0}\">{}</text></g>",
            AXIS_H - 14.0,
            height,
            AXIS_H - 18.0,
            if ms == 0 { "0".to_string() } else { super::fmt_ms(ms) }
        );
    }
    s.push_str("</g>");
    s.push_str("<g class=\"gaps\">");
    for g in &scale.gaps {
        let (x0, x1) = (PAD_L + g.x0, PAD_L + g.x1);
        let idle_ms = (g.t1_us - g.t0_us) / 1000;
        let _ = write!(
            s,
            "<g class=\"gap\"><rect class=\"gap-band\" x=\"{:.1}\" y=\"{:.0}\" width=\"{:.1}\" height=\"{:.0}\"/><text class=\"gap-label\" x=\"{:.1}\" y=\"{:.0}\">+{}</text>{}</g>",
            x0 + 4.0,
            AXIS_H - 12.0,
            (x1 - x0 - 8.0).max(1.0),
            height - AXIS_H + 12.0,
            (x0 + x1) / 2.0,
            AXIS_H - 30.0,
            super::fmt_ms(idle_ms),
            title(&format!(
                "{} of idle time compressed (nothing happened from {} to {})",
                super::fmt_ms(idle_ms),
                super::fmt_us(g.t0_us),
                super::fmt_us(g.t1_us)
            ))
        );
    }
    s.push_str("</g>");

    // Bands, grouped by kind.
    let mut bands: Vec<&super::timeline::Band> = t.bands.iter().collect();
    bands.sort_by_key(|b| (b.kind, b.lane, b.t0_us));
    let mut open: Option<&'static str> = None;
    for b in bands {
        let class = b.kind.class();
        if open != Some(class) {
            if open.is_some() {
                s.push_str("</g>");
            }
            let _ = write!(s, "<g class=\"bands b-{class}\">");
            open = Some(class);
        }
        let (x0, x1) = (x(b.t0_us), x(b.t1_us));
        let _ = write!(
            s,
            "<rect class=\"band {class}\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\">{}</rect>",
            lane_y(b.lane) - LANE_H * 0.36,
            (x1 - x0).max(2.0),
            LANE_H * 0.72,
            title(&b.title)
        );
    }
    if open.is_some() {
        s.push_str("</g>");
    }

    // Arrows: the faulty ones always, normal ones thinned.
    let total = t.arrows.len();
    let (faulty, normal): (Vec<&Arrow>, Vec<&Arrow>) =
        t.arrows.iter().partition(|a| a.style != Style::Normal);
    let faulty_kept = faulty.len().min(MAX_ARROWS);
    let (k, keep) = thin(normal.len(), MAX_ARROWS - faulty_kept);
    let normal_kept: Vec<&Arrow> = normal
        .iter()
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(_, a)| *a)
        .collect();
    let drawn = faulty_kept + normal_kept.len();
    if drawn < total {
        notes.push(format!(
            "Showing {drawn} of {total} message arrows: every faulty one{}, and {}.",
            if faulty_kept < faulty.len() {
                format!(" (the first {faulty_kept} of {})", faulty.len())
            } else {
                String::new()
            },
            if k == 0 {
                "no normal one".to_string()
            } else {
                format!("every {k}{} normal one", ordinal_suffix(k))
            }
        ));
    }
    let mut arrows: Vec<&Arrow> = normal_kept;
    arrows.extend(faulty.iter().take(faulty_kept));
    arrows.sort_by_key(|a| (a.dir, a.style, a.t0_us, a.from_lane, a.to_lane));
    let mut open: Option<(Dir, Style)> = None;
    for a in arrows {
        let dir = match a.dir {
            Dir::Request => "request",
            Dir::Reply => "reply",
        };
        if open != Some((a.dir, a.style)) {
            if open.is_some() {
                s.push_str("</g>");
            }
            let _ = write!(s, "<g class=\"arrows {dir} {}\">", a.style.class());
            open = Some((a.dir, a.style));
        }
        let (x0, y0) = (x(a.t0_us), lane_y(a.from_lane));
        let ty = lane_y(a.to_lane);
        let (x1, y1, head) = if a.is_stub() {
            (x(a.t1_us) + STUB_DX, stub_y(y0, ty), "")
        } else {
            // Stop at the lane line, leaving room for the head.
            let dy = if ty > y0 { -2.0 } else { 2.0 };
            let head = if a.style == Style::Normal {
                if a.dir == Dir::Request {
                    " marker-end=\"url(#ah-request)\""
                } else {
                    " marker-end=\"url(#ah-reply)\""
                }
            } else {
                " marker-end=\"url(#ah-fault)\""
            };
            (x(a.t1_us), ty + dy, head)
        };
        let _ = write!(
            s,
            "<line class=\"msg\" x1=\"{x0:.1}\" y1=\"{y0:.1}\" x2=\"{x1:.1}\" y2=\"{y1:.1}\"{head}>{}</line>",
            title(&a.title)
        );
    }
    if open.is_some() {
        s.push_str("</g>");
    }

    // Marks, grouped by kind: plain first (underneath), faults last (on top).
    let mut order: Vec<MarkKind> = MarkKind::ALL.to_vec();
    order.sort_by_key(|k| {
        (
            match k.group() {
                Group::Plain => 0,
                Group::State => 1,
                Group::Fault => 2,
            },
            *k,
        )
    });
    let mut labels_drawn = 0usize;
    for (group, cap) in [
        (Group::Plain, MAX_PLAIN_MARKS),
        (Group::State, MAX_STATE_MARKS),
        (Group::Fault, MAX_FAULT_MARKS),
    ] {
        let all: Vec<&super::timeline::Mark> =
            t.marks.iter().filter(|m| m.kind.group() == group).collect();
        let (k, keep) = thin(all.len(), cap);
        if k != 1 {
            notes.push(format!(
                "{} marks thinned: every {k}{} of {} drawn.",
                match group {
                    Group::Plain => "Bookkeeping (fsync, other)",
                    Group::State => "Saga state",
                    Group::Fault => "Fault",
                },
                ordinal_suffix(k),
                all.len()
            ));
        }
        let kept: Vec<&super::timeline::Mark> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| keep(*i))
            .map(|(_, m)| *m)
            .collect();
        for kind in order.iter().filter(|k| k.group() == group) {
            let of_kind: Vec<_> = kept.iter().filter(|m| m.kind == *kind).collect();
            if of_kind.is_empty() {
                continue;
            }
            let class = kind.class();
            let _ = write!(s, "<g class=\"marks k-{class}\">");
            for m in of_kind {
                let (mut mx, mut my) = (x(m.t_us), lane_y(m.lane));
                if let Some(to) = m.toward {
                    // At the end of its stub.
                    mx += STUB_DX;
                    my = stub_y(my, lane_y(to));
                }
                let _ = write!(
                    s,
                    "<path class=\"mark {class}\" d=\"{}\">{}</path>",
                    glyph(kind.shape(), mx, my, R),
                    title(&m.title)
                );
            }
            s.push_str("</g>");
        }
        // Status labels above the saga-state marks, in two rows per lane;
        // a label that would overlap both rows is left to its hover title.
        if group == Group::State {
            let with_label: Vec<_> = kept.iter().filter(|m| m.label.is_some()).collect();
            if !with_label.is_empty() {
                s.push_str("<g class=\"status-labels\">");
                let mut row_end: BTreeMap<(usize, u8), f64> = BTreeMap::new();
                let mut hidden = 0usize;
                for m in &with_label {
                    let text = m.label.as_deref().unwrap_or("");
                    let lx = x(m.t_us) + 3.0;
                    let w = text.chars().count() as f64 * LABEL_CHAR_PX + 8.0;
                    let row =
                        (0u8..2).find(|r| row_end.get(&(m.lane, *r)).is_none_or(|e| *e <= lx));
                    let Some(row) = row.filter(|_| labels_drawn < MAX_LABELS) else {
                        hidden += 1;
                        continue;
                    };
                    row_end.insert((m.lane, row), lx + w);
                    labels_drawn += 1;
                    let _ = write!(
                        s,
                        "<text class=\"status-label\" x=\"{lx:.1}\" y=\"{:.1}\">{}</text>",
                        lane_y(m.lane) - 8.0 - 10.0 * f64::from(row),
                        escape(&super::sagas::plain(text))
                    );
                }
                s.push_str("</g>");
                if hidden > 0 {
                    notes.push(format!(
                        "{hidden} of {} status labels are not drawn where they would overlap (at most {MAX_LABELS}); hover the ◆ marks.",
                        with_label.len()
                    ));
                }
            }
        }
    }
    debug_assert!(labels_drawn <= MAX_LABELS);

    // Vertical rules: faults-off, violations.
    let rules: Vec<_> = t.rules.iter().take(MAX_RULES).collect();
    if t.rules.len() > MAX_RULES {
        notes.push(format!(
            "Vertical lines: the first {MAX_RULES} of {} drawn.",
            t.rules.len()
        ));
    }
    if !rules.is_empty() {
        s.push_str("<g class=\"rules\">");
        for r in rules {
            let rx = x(r.t_us.min(t.end_us));
            let _ = write!(
                s,
                "<g class=\"rule {}\"><line x1=\"{rx:.1}\" y1=\"{:.0}\" x2=\"{rx:.1}\" y2=\"{height:.0}\"/><text x=\"{:.1}\" y=\"{:.0}\">{}</text>{}</g>",
                r.class,
                AXIS_H - 8.0,
                rx + 3.0,
                AXIS_H - 1.0,
                escape(&r.label),
                title(&r.title)
            );
        }
        s.push_str("</g>");
    }
    s.push_str("</svg>");

    debug_assert!(drawn <= MAX_ARROWS);
    Drawn {
        labels_svg: labels,
        timeline_svg: s,
        notes,
        width_px: width + LABEL_W,
    }
    .with_scale_note(&scale)
}

impl Drawn {
    fn with_scale_note(mut self, scale: &Scale) -> Self {
        let mut n = format!(
            "Time runs left to right in simulated ms, about {:.3} px per ms outside the breaks",
            scale.density()
        );
        if !scale.gaps.is_empty() {
            let _ = write!(
                n,
                "; {} idle stretch{} longer than {} {} compressed to a grey break labelled with the idle time",
                scale.gaps.len(),
                if scale.gaps.len() == 1 { "" } else { "es" },
                super::fmt_ms(super::timeline::GAP_US / 1000),
                if scale.gaps.len() == 1 { "is" } else { "are" }
            );
        }
        let _ = write!(
            n,
            "; instants at least 1 ms apart are kept {:.1} px apart. So the axis is not linear: read times from the ticks and the hover titles.",
            scale.min_step_px
        );
        self.notes.insert(0, n);
        self
    }
}

fn ordinal_suffix(k: usize) -> &'static str {
    match (k % 10, k % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_everything_under_the_cap_and_every_kth_over_it() {
        let (k, keep) = thin(10, 20);
        assert_eq!(k, 1);
        assert_eq!((0..10).filter(|i| keep(*i)).count(), 10);
        let (k, keep) = thin(5_000, 2_000);
        assert_eq!(k, 3);
        let kept = (0..5_000).filter(|i| keep(*i)).count();
        assert!(kept <= 2_000 && kept > 1_500, "{kept}");
        let (k, keep) = thin(7, 0);
        assert_eq!(k, 0);
        assert_eq!((0..7).filter(|i| keep(*i)).count(), 0, "nothing at cap 0");
    }

    #[test]
    fn ordinals() {
        assert_eq!(
            [1, 2, 3, 4, 11, 12, 13, 21, 22, 111]
                .map(|k| format!("{k}{}", ordinal_suffix(k)))
                .join(" "),
            "1st 2nd 3rd 4th 11th 12th 13th 21st 22nd 111th"
        );
    }
}
