//! The CLI's side of the runbook engine: asks before each writing step
//! (unless --yes), prints what the engine reports, maps the end of a run to
//! an exit code (0 done, 1 a step failed, 3 stopped or refused), and the
//! `runbook list|resume|discard|unlock` commands.

use color_eyre::eyre::{bail, eyre, Result};
use cyrdeck::config::Config;
use cyrdeck::ops::engine::{Engine, Event};
use cyrdeck::ops::runbook::{RunbookKind, RunbookRun, StepState, UndoState};
use cyrdeck::ops::{self, failover, journal, pair_lock};
use cyrdeck::poll::Poller;
use std::sync::Arc;

fn engine_for(
    cfg: &Config,
    observe: bool,
    id: &str,
    pair: &str,
    target: &str,
) -> Result<(Engine, RunbookRun)> {
    let Some(spec) = ops::registry::by_id(id) else {
        let ids: Vec<&str> = RunbookKind::ALL.iter().map(|k| k.id()).collect();
        bail!("no runbook {id:?} (runbooks: {})", ids.join(", "));
    };
    let cfg = Arc::new(cfg.clone());
    let conns = Poller::new(cfg.clone(), observe).connections();
    Engine::open(cfg, conns, spec, pair, target).map_err(|e| eyre!(e))
}

/// `cyrdeck run ID TARGET` and `cyrdeck repair`.
pub async fn run(
    cfg: Config,
    observe: bool,
    pair: String,
    id: &str,
    target: String,
    yes: bool,
    options: Vec<(String, String)>,
) -> Result<i32> {
    if RunbookKind::parse(id) == Some(RunbookKind::Failover) {
        // `PAIR:HOST`: the replica to promote of a pair with several
        let to = target.split_once(':').map(|(_, h)| h.to_string());
        return self::failover(cfg, observe, pair, to, false, yes, false).await;
    }
    let (engine, mut run) = engine_for(&cfg, observe, id, &pair, &target)?;
    if let Err(e) = run.set_options(&options) {
        eprintln!("{e}");
        return Ok(3);
    }
    for o in run.spec.options() {
        println!("--{} {} ({})", o.name, run.option(o.name), o.help);
    }
    if run.attempts.iter().any(|&a| a > 0) {
        println!(
            "going on with the unfinished {id} {target} on {pair} journalled in {}",
            engine
                .journal_path()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
    drive(&engine, &mut run, yes).await
}

/// Print the output lines the run gained since `seen`.
fn print_new(run: &RunbookRun, seen: &mut usize) {
    for l in run.output.iter().skip(*seen) {
        println!("{l}");
    }
    *seen = run.output.len();
}

/// Run what is left of `run`, asking before each mutating step unless
/// `yes`. Exit 0 done, 1 a step or the undo failed, 3 stopped or refused.
async fn drive(engine: &Engine, run: &mut RunbookRun, yes: bool) -> Result<i32> {
    let sink = |e: Event<'_>| {
        if let Event::Line(l) = e {
            println!("{l}");
        }
    };
    let mut seen = run.output.len();
    if run.finished() && !journal::retryable(run) {
        // only the pair lock was left to give back
        engine.finish(run, &sink).await;
        print_new(run, &mut seen);
        return Ok(end_code(engine, run));
    }
    if run.undo.pending() {
        println!("an undo was cut short: going on with it");
        engine.resume_undo(run, &sink).await;
        print_new(run, &mut seen);
        return Ok(end_code(engine, run));
    }
    while let Some(idx) = run.next_step() {
        let step = run.spec.steps[idx];
        if step.mutating && !yes {
            eprint!("step {}: {}\nrun it? [y/N] ", idx + 1, step.title);
            let mut answer = String::new();
            std::io::stdin().read_line(&mut answer)?;
            if !matches!(answer.trim(), "y" | "yes") {
                println!("stopped before step {}", idx + 1);
                engine.abort(run, &sink).await;
                print_new(run, &mut seen);
                end_code(engine, run);
                return Ok(3);
            }
        }
        engine.step(run, &sink).await;
        print_new(run, &mut seen);
        let state = &run.steps[idx];
        println!("step {} {}: {}", idx + 1, state.label(), state.detail());
        match state {
            StepState::Done(_) => {}
            StepState::Failed(_) => {
                end_code(engine, run);
                return Ok(1);
            }
            _ => {
                end_code(engine, run);
                return Ok(3);
            }
        }
    }
    Ok(end_code(engine, run))
}

/// Say where the run stands; its exit code when it ended here.
fn end_code(engine: &Engine, run: &RunbookRun) -> i32 {
    let where_ = engine
        .journal_path()
        .map(|p| format!(" ({})", p.display()))
        .unwrap_or_default();
    if let UndoState::Failed(e) = &run.undo {
        println!("the undo did not finish: {e}\nthe run stays open{where_}: fix the cause, then `cyrdeck runbook resume`");
        return 1;
    }
    if run.finished() && run.lock_host.is_some() {
        println!(
            "the pair lock on {} was not given back{where_}: `cyrdeck runbook resume` releases it",
            run.lock_host.as_deref().unwrap_or("?")
        );
        return 1;
    }
    if journal::retryable(run) {
        println!(
            "the run stays open{where_}: fix the cause, then `cyrdeck runbook resume --retry` runs the failed step again"
        );
        return 1;
    }
    if !run.finished() && engine.journal_path().is_some() {
        println!("resume with: cyrdeck runbook resume{where_}");
        return 3;
    }
    if run.steps.iter().any(|s| matches!(s, StepState::Failed(_))) {
        1
    } else if run
        .steps
        .iter()
        .any(|s| matches!(s, StepState::Refused(_) | StepState::Aborted(_)))
    {
        3
    } else {
        0
    }
}

/// `cyrdeck run ID TARGET --dry-run`: the read-only precheck, then the
/// steps that would run; nothing is journalled, locked or changed.
pub async fn dry_run(
    cfg: Config,
    observe: bool,
    pair: String,
    id: &str,
    target: String,
) -> Result<i32> {
    if RunbookKind::parse(id) == Some(RunbookKind::Failover) {
        let to = target.split_once(':').map(|(_, h)| h.to_string());
        return self::failover(cfg, observe, pair, to, true, false, false).await;
    }
    let Some(spec) = ops::registry::by_id(id) else {
        bail!("no runbook {id:?}");
    };
    let Some(p) = cfg.pairs.get(&pair) else {
        bail!("no pair {pair:?}");
    };
    println!("dry run: {id} {target} on pair {pair}; nothing is changed");
    let conns = Poller::new(Arc::new(cfg.clone()), observe).connections();
    let mut run = RunbookRun::new(spec, &pair, &target);
    let passed = if spec.steps[0].mutating {
        println!("(its first step writes: no precheck runs in a dry run)");
        true
    } else {
        ops::registry::run_step(&cfg, &conns, &mut run, 0).await;
        for l in &run.output {
            println!("{l}");
        }
        let state = &run.steps[0];
        println!("step 1 {}: {}", state.label(), state.detail());
        matches!(state, StepState::Done(_))
    };
    println!("the steps:");
    for (i, s) in spec.steps.iter().enumerate() {
        let w = if s.mutating { "writes" } else { "reads" };
        println!("  {}. [{w}] {}", i + 1, s.title);
    }
    if spec.kind == RunbookKind::ReplaceReplica {
        let cx = ops::StepContext::new(&cfg, p, &target, ops::Actor::Runbook(spec), &conns);
        for l in ops::replace_replica::plan(&cx) {
            println!("  {l}");
        }
    }
    Ok(if passed { 0 } else { 1 })
}

/// `cyrdeck failover`: prechecks and plan (--dry-run), or the whole
/// runbook through the engine.
pub async fn failover(
    cfg: Config,
    observe: bool,
    pair: String,
    to: Option<String>,
    dry_run: bool,
    yes: bool,
    allow_held: bool,
) -> Result<i32> {
    let Some(p) = cfg.pairs.get(&pair) else {
        bail!("no pair {pair:?}");
    };
    // the target: PAIR, or PAIR:HOST naming the replica to promote
    let target = match &to {
        Some(h) => format!("{pair}:{h}"),
        None => pair.clone(),
    };
    if let Err(e) = failover::SPEC.check_target(&target) {
        eprintln!("{e}");
        return Ok(3);
    }
    if dry_run {
        let conns = Poller::new(Arc::new(cfg.clone()), observe).connections();
        let mut run = RunbookRun::new(failover::SPEC, &pair, &target);
        run.memo = memo_allowing_held(allow_held);
        println!(
            "dry run: failover of pair {pair} ({} -> {}); nothing is changed",
            p.master,
            to.as_deref()
                .or(p.replicas.first().map(|r| r.host.as_str()))
                .unwrap_or("?")
        );
        let precheck = failover::Step::Precheck.index();
        ops::registry::run_step(&cfg, &conns, &mut run, precheck).await;
        for l in &run.output {
            println!("{l}");
        }
        let state = &run.steps[precheck];
        println!("precheck {}: {}", state.label(), state.detail());
        let passed = matches!(state, StepState::Done(_));
        if passed {
            println!("the steps that would run:");
            let cx = ops::StepContext::new(
                &cfg,
                p,
                &target,
                ops::Actor::Runbook(failover::SPEC),
                &conns,
            );
            for l in failover::plan(
                &cx,
                &serde_json::from_value(run.memo.clone()).unwrap_or_default(),
            ) {
                println!("  {l}");
            }
        }
        return Ok(if passed { 0 } else { 1 });
    }
    let (engine, mut run) = engine_for(&cfg, observe, RunbookKind::Failover.id(), &pair, &target)?;
    if run.attempts.iter().any(|&a| a > 0) {
        bail!(
            "an unfinished failover of pair {pair} is journalled in {}: `cyrdeck runbook resume` continues it, `cyrdeck runbook discard` drops it",
            engine
                .journal_path()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
    run.memo = memo_allowing_held(allow_held);
    drive(&engine, &mut run, yes).await
}

/// `cyrdeck runbook list|resume|discard`.
/// Runs are this config's (`config`: the one given) or another's: a run
/// of another config's pair of the same name is listed as such, and never
/// resumed or discarded from here (issue 30, item 4).
pub async fn journalled(
    observe: bool,
    config: &std::path::Path,
    action: super::args::RunbookAction,
) -> Result<i32> {
    use super::args::RunbookAction;
    let same = |p: &std::path::Path| {
        let c = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        c(p) == c(config)
    };
    let all = journal::unfinished();
    let of_config =
        |p: &std::path::PathBuf| journal::Journal::load(p).is_ok_and(|j| same(&j.config));
    let (pending, others): (Vec<_>, Vec<_>) = all.into_iter().partition(of_config);
    match action {
        RunbookAction::List => {
            if pending.is_empty() {
                println!("no unfinished runbook");
            }
            for p in &others {
                match journal::Journal::load(p) {
                    Ok(j) => println!(
                        "(another config, {}: {} {} on {}, run {}, {})",
                        j.config.display(),
                        j.runbook,
                        j.target,
                        j.pair,
                        j.run_id,
                        p.display()
                    ),
                    Err(e) => println!("(unreadable journal {}: {e})", p.display()),
                }
            }
            for p in &pending {
                let j = journal::Journal::load(p).map_err(|e| eyre!(e))?;
                let done = j.steps.iter().filter(|s| s.label() == "done").count();
                let undo = match &j.undo {
                    UndoState::Running(_) => "; an undo was cut short",
                    UndoState::Failed(_) => "; its undo FAILED",
                    _ => "",
                };
                println!(
                    "{} {} on {}: {done}/{} steps done{undo} (run {}, {})",
                    j.runbook,
                    j.target,
                    j.pair,
                    j.steps.len(),
                    j.run_id,
                    p.display()
                );
            }
            Ok(0)
        }
        RunbookAction::Discard => {
            let [p] = &pending[..] else {
                bail!("{} unfinished runbooks: nothing discarded", pending.len());
            };
            let j = journal::Journal::load(p).map_err(|e| eyre!(e))?;
            let to = journal::archive(p)?;
            println!(
                "discarded (kept as {}); the hosts were NOT changed back{}",
                to.display(),
                j.lock_host
                    .map(|h| format!(
                        "; the pair lock on {h} stays until `cyrdeck runbook unlock --pair {}`",
                        j.pair
                    ))
                    .unwrap_or_default()
            );
            Ok(0)
        }
        RunbookAction::Resume { yes, retry } => {
            let [p] = &pending[..] else {
                bail!(
                    "{} unfinished runbooks to resume (one expected)",
                    pending.len()
                );
            };
            let j = journal::Journal::load(p).map_err(|e| eyre!(e))?;
            let cfg = Arc::new(Config::load(&j.config)?);
            let conns = Poller::new(cfg.clone(), observe).connections();
            let (engine, mut run) =
                Engine::reopen(cfg, conns, p.clone(), retry).map_err(|e| eyre!(e))?;
            println!(
                "resuming {} {} on {} from {}",
                j.runbook,
                j.target,
                j.pair,
                p.display()
            );
            drive(&engine, &mut run, yes).await
        }
        RunbookAction::Unlock { .. } => unreachable!("handled by unlock()"),
    }
}

/// A pair lock on a replica is never obeyed (runbooks lock on the master,
/// promote on the survivor that becomes master): one there was left on a
/// host while it was master, e.g. by a run when it crashed (issue 24).
/// Said, never broken from here: reintegrate clears it when it takes the
/// host back.
async fn report_replica_locks(
    conns: &cyrdeck::check::Connections,
    p: &cyrdeck::config::PairConfig,
) {
    for r in &p.replicas {
        let Some(c) = conns.get(&r.host) else {
            continue;
        };
        match pair_lock::read(c).await {
            Ok(Some(text)) => {
                let who = pair_lock::Holder::parse(&text)
                    .map(|h| h.describe())
                    .unwrap_or_else(|| "a lock file that is not cyrdeck's".into());
                println!(
                    "stale pair lock on replica {}: {who}; not obeyed (left while {} was master): `cyrdeck run reintegrate {}` clears it when it takes that host back, or remove {{configdirectory}}/cyrdeck-runbook.lock there by hand",
                    r.host, r.host, p.name
                );
            }
            Ok(None) => {}
            Err(e) => println!("replica {}: its pair lock could not be read: {e}", r.host),
        }
    }
}

/// `cyrdeck runbook unlock --pair P`: show who holds the pair lock and
/// break it only when the operator says so.
pub async fn unlock(cfg: Config, observe: bool, pair: String, yes: bool) -> Result<i32> {
    let Some(p) = cfg.pairs.get(&pair).cloned() else {
        bail!("no pair {pair:?}");
    };
    let cfg = Arc::new(cfg);
    let conns = Poller::new(cfg.clone(), observe).connections();
    report_replica_locks(&conns, &p).await;
    let conn = conns
        .get(&p.master)
        .ok_or_else(|| eyre!("host {} is not configured", p.master))?;
    let Some(text) = pair_lock::read(conn)
        .await
        .map_err(|e| eyre!("{}: {e}", p.master))?
    else {
        println!("pair {pair} is not locked (on {})", p.master);
        return Ok(0);
    };
    let Some(holder) = pair_lock::Holder::parse(&text) else {
        bail!(
            "{}: the lock file is not cyrdeck's:\n{text}\nremove {{configdirectory}}/cyrdeck-runbook.lock by hand",
            p.master
        );
    };
    println!(
        "pair {pair} is locked on {}: {}",
        p.master,
        holder.describe()
    );
    let here: Vec<_> = journal::unfinished()
        .into_iter()
        .filter(|j| journal::Journal::load(j).is_ok_and(|j| j.run_id == holder.run_id))
        .collect();
    if let Some(j) = here.first() {
        println!(
            "that run is journalled here ({}): `cyrdeck runbook resume` goes on with it and releases the lock",
            j.display()
        );
    }
    if !yes {
        eprint!("break this lock? only if that run is gone for good [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "yes") {
            println!("lock kept");
            return Ok(3);
        }
    }
    let cx = ops::StepContext::new(&cfg, &p, &pair, ops::Actor::Unlock, &conns);
    let mut out = Vec::new();
    let res = pair_lock::break_lock(&cx, &p.master, &holder.run_id, &mut out).await;
    for l in &out {
        println!("{l}");
    }
    match res {
        Ok(()) => {
            println!("lock of run {} broken", holder.run_id);
            Ok(0)
        }
        Err(e) => {
            println!("not broken: {}", e.message(&p.master));
            Ok(1)
        }
    }
}

/// A failover's memo before its first step: the operator's `--allow-held`.
fn memo_allowing_held(allow_held: bool) -> serde_json::Value {
    let memo = failover::Memo {
        allow_held,
        ..Default::default()
    };
    serde_json::to_value(memo).unwrap_or_default()
}
