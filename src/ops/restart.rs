//! Runbook "restart CHANNEL": bring back a rolling sync_client that died
//! and that nothing restarts (a client under cyrus.conf START, or started
//! by hand). Verified in the lab: a client started as
//! `setsid sync_client -C CONF -r </dev/null >/dev/null 2>&1 &` from an SSH
//! exec returns at once, survives the session and replicates. It runs
//! outside Cyrus master's supervision: the lasting fix is the DAEMON
//! section (doctor says so).

use super::host_probe::probe_host;
use super::runbook::{runbook_steps, LockOn, RunbookKind, RunbookSpec, StepState};
use super::step::{NoMemo, Runbook};
use super::StepContext;
use crate::cyrus::host_facts::channel_clients;
use crate::cyrus::host_facts::queue_lines;

use crate::ops::error::StepError;
use std::time::{Duration, Instant};

/// Runs its arguments (the rolling sync_client) detached from the SSH
/// session; a helper of its own so sudo rules can name it.
pub(crate) const START_DETACHED: &str = r#"setsid "$@" </dev/null >/dev/null 2>&1 &"#;

runbook_steps! {
    /// The restart runbook's steps, in the run's order.
    pub enum Step {
        Precheck = read "Precheck: is the channel's client running; does the replica's sync_server answer",
        Start = write "Start: setsid sync_client -r [-n CHANNEL] on the master, detached",
        Verify = read "Verify: the client keeps running and the queue drains",
    }
}

pub const SPEC: RunbookSpec = RunbookSpec {
    kind: RunbookKind::Restart,
    title: "Restart a dead rolling client",
    summary: "start sync_client -r again for a channel nobody restarts (START mode), then prove it drains",
    target: "channel (default)",
    point_of_no_return: None,
    lock_on: LockOn::Master,
    steps: Step::SPECS,
};

fn channel_of(target: &str) -> String {
    if target == "default" {
        String::new()
    } else {
        target.to_string()
    }
}

/// (client pids, pending entries) of the channel on the master.
async fn master_state(cx: &StepContext<'_>, channel: &str) -> Result<(Vec<u32>, u64), StepError> {
    let r = probe_host(cx, &cx.pair.master).await?;
    let conf = cx
        .connection(&cx.pair.master)?
        .config()
        .imapd_conf
        .display()
        .to_string();
    let pids = channel_clients(&r, &conf, channel).map(|p| p.pid).collect();
    Ok((pids, queue_lines(&r, channel)))
}

async fn replica_answers(cx: &StepContext<'_>, channel: &str) -> Result<bool, StepError> {
    let Some(r) = cx.pair.replicas.iter().find(|r| r.channel == channel) else {
        return Err(format!("no replica of pair {} on channel {channel:?}", cx.pair.name).into());
    };
    let rep = probe_host(cx, &r.host).await?;
    Ok(rep.sync_server.as_ref().is_some_and(|s| s.answered))
}

/// The restart runbook, for the engine's dispatch.
pub struct Restart;

impl Runbook for Restart {
    type Step = Step;
    type Memo = NoMemo;
    const SPEC: RunbookSpec = SPEC;
    async fn execute(
        step: Step,
        cx: &StepContext<'_>,
        out: &mut Vec<String>,
        _memo: &mut NoMemo,
    ) -> StepState {
        execute(step, cx, out).await
    }
}

pub async fn execute(step: Step, cx: &StepContext<'_>, out: &mut Vec<String>) -> StepState {
    if let Err(e) = SPEC.check_target(cx.target) {
        return StepState::Failed(e);
    }
    let channel = channel_of(cx.target);
    super::state_of(match step {
        Step::Precheck => precheck(cx, &channel, out).await,
        Step::Start => start(cx, &channel, out).await,
        Step::Verify => verify(cx, &channel, out).await,
    })
}

async fn precheck(
    cx: &StepContext<'_>,
    channel: &str,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    let (pids, pending) = master_state(cx, channel).await?;
    let answers = replica_answers(cx, channel).await?;
    out.push(format!(
        "  client pids {pids:?}; {pending} entries pending; replica sync_server {}",
        if answers {
            "answers"
        } else {
            "does NOT answer"
        }
    ));
    match (pids.is_empty(), answers) {
        (false, _) => Ok(format!("running (pid {}): nothing to restart", pids[0])),
        (true, true) => Ok(format!("no client and {pending} entries pending; the replica answers: start it")),
        (true, false) => Err("no client, but the replica's sync_server does not answer: a new client would only back off; bring the replica back first".into()),
    }
}

async fn start(
    cx: &StepContext<'_>,
    channel: &str,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    // checked again at the last moment: two rolling clients on one channel
    // would share log-run
    let (pids, _) = master_state(cx, channel).await?;
    if let Some(p) = pids.first() {
        return Ok(format!("already running (pid {p}): not started"));
    }
    if !replica_answers(cx, channel).await? {
        return Err("the replica's sync_server does not answer: not started".into());
    }
    let mut client = cx.sync_client_argv(channel)?;
    client.push("-r".into());
    let mut argv = vec![
        "sh".to_string(),
        "-c".into(),
        START_DETACHED.into(),
        "cyrdeck-start".into(),
    ];
    argv.extend(client.iter().cloned());
    let mut shown = vec!["setsid".to_string()];
    shown.extend(client);
    let o = cx
        .write(
            &cx.pair.master,
            argv,
            Some(shown),
            Duration::from_secs(30),
            out,
        )
        .await?;
    if !o.success() {
        return Err(format!("could not start it (exit {:?})", o.exit_status).into());
    }
    out.push(
        "  note: this client is not supervised by Cyrus master; move it to cyrus.conf DAEMON"
            .into(),
    );
    Ok("started".into())
}

async fn verify(
    cx: &StepContext<'_>,
    channel: &str,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    let started = Instant::now();
    let mut seen_running = 0;
    loop {
        let (pids, pending) = master_state(cx, channel).await?;
        if pids.is_empty() {
            return Err("no rolling client is running: it exited (see the Log view)".into());
        }
        seen_running += 1;
        if seen_running >= 2 && pending == 0 {
            return Ok(format!(
                "client {} running, queue empty after {:.0?}",
                pids[0],
                started.elapsed()
            ));
        }
        if started.elapsed() > Duration::from_secs(90) {
            return Err(format!(
                "the client runs but {pending} entries are still pending after 90 s"
            )
            .into());
        }
        out.push(format!("  client {:?}, {pending} pending", pids));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
