//! `sagasim run [SCENARIO] --seed N [--quiet]`: one seed, its verdict, its
//! trace hash and (unless `--quiet`) its full trace.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

use super::args::{load, replay_cmd, verdict_exit, BadInput, CoordinatorArg, ScenarioArg};
use crate::scenario::Scenario;
use crate::sim::FaultPlan;
use crate::trace::TraceMode;
use crate::world::CoordinatorImpl;
use std::sync::Arc;

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    scenario: ScenarioArg,
    #[command(flatten)]
    coordinator: CoordinatorArg,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print only the verdict.
    #[arg(long)]
    quiet: bool,
}

pub fn exec(a: RunArgs) -> Result<ExitCode, BadInput> {
    let s = load(&a.scenario)?;
    let imp = a.coordinator.resolve()?;
    let plan = super::registry::get().plan(&s, a.seed);
    Ok(verdict_exit(show_run(
        &s,
        imp,
        a.seed,
        &plan,
        !a.quiet,
        &replay_cmd(&a.scenario, &a.coordinator, a.seed),
    )))
}

/// Run one seed, print the trace (if asked) and the verdict. Returns ok.
pub fn show_run(
    s: &Scenario,
    imp: Arc<dyn CoordinatorImpl>,
    seed: u64,
    plan: &FaultPlan,
    trace: bool,
    replay: &str,
) -> bool {
    let coordinator = imp.name();
    let c = super::registry::get().run(s, seed, plan, TraceMode::Full, imp);
    let mut out = std::io::stdout().lock();
    if trace {
        let _ = write!(out, "{}", c.trace.render());
    }
    let _ = writeln!(
        out,
        "scenario {} seed {seed} (coordinator {coordinator}): {} events, trace hash {:016x}, {} faults in plan",
        s.name,
        c.trace.len,
        c.trace.hash,
        plan.len()
    );
    for a in &c.outcome.agents {
        let _ = writeln!(
            out,
            "  {} {}: {}",
            a.business_key,
            a.answer
                .as_ref()
                .map_or("no answer".to_string(), crate::report::status_words),
            format_args!("{} call(s), {} timeout(s)", a.calls, a.timeouts)
        );
    }
    if c.verdict.ok() {
        let _ = writeln!(out, "verdict: every invariant held");
        true
    } else {
        for v in c.verdict.all() {
            let _ = writeln!(out, "violated: {v}");
        }
        let _ = writeln!(out, "replay: {replay}");
        false
    }
}
