//! Shrinking a failing fault plan to the few faults that matter.
//!
//! Greedy delta debugging on the plan's fault list: try the plan without
//! each fault (and then without halves, quarters… first, for speed); keep
//! every removal after which the run still fails the *same* invariant.
//! Repeats until no single fault can go. Every candidate is a full,
//! deterministic run, so the result replays exactly.
//!
//! Not here: proptest's own shrinking (used by the property tests on
//! generated plans); this one serves `sagasim shrink` and seed failures.

use crate::sim::FaultPlan;

/// Most candidate runs one shrink may make.
pub const MAX_SHRINK_RUNS: usize = 20_000;

/// Shrink `plan` while `still_fails(candidate)` holds. Returns the smallest
/// plan found and the number of runs made.
pub fn shrink(
    plan: &FaultPlan,
    mut still_fails: impl FnMut(&FaultPlan) -> bool,
) -> (FaultPlan, usize) {
    let mut best = plan.clone();
    let mut runs = 0usize;
    // Coarse passes: drop chunks of faults at once.
    let mut chunk = best.len() / 2;
    while chunk >= 1 && runs < MAX_SHRINK_RUNS {
        let mut start = 0;
        while start < best.len() && runs < MAX_SHRINK_RUNS {
            let mut candidate = best.clone();
            let end = (start + chunk).min(candidate.len());
            for i in (start..end).rev() {
                candidate = candidate.without(i);
            }
            runs += 1;
            if still_fails(&candidate) {
                best = candidate;
            } else {
                start += chunk;
            }
        }
        chunk /= 2;
    }
    // Fine pass until fixpoint.
    loop {
        let mut changed = false;
        let mut i = 0;
        while i < best.len() && runs < MAX_SHRINK_RUNS {
            let candidate = best.without(i);
            runs += 1;
            if still_fails(&candidate) {
                best = candidate;
                changed = true;
            } else {
                i += 1;
            }
        }
        if !changed || runs >= MAX_SHRINK_RUNS {
            break;
        }
    }
    (best, runs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::faults::{CallFault, CallFaultKind};

    fn plan(n: u32) -> FaultPlan {
        FaultPlan {
            calls: (0..n)
                .map(|index| CallFault {
                    from: "a".into(),
                    to: "b".into(),
                    index,
                    fault: CallFaultKind::DropRequest,
                })
                .collect(),
            ..FaultPlan::default()
        }
    }

    #[test]
    fn finds_the_two_faults_that_matter() {
        let p = plan(100);
        let needs = |c: &FaultPlan| {
            c.calls.iter().any(|f| f.index == 17) && c.calls.iter().any(|f| f.index == 63)
        };
        let (small, runs) = shrink(&p, needs);
        let idx: Vec<u32> = small.calls.iter().map(|c| c.index).collect();
        assert_eq!(idx, vec![17, 63]);
        assert!(runs < 400, "{runs} runs");
    }
}
