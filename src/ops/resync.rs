//! Runbook "resync": compare one mailbox on master and replica(s), push it
//! again with `sync_client -m`, compare again. Compare and verify are
//! read-only (mbexamine); only the push changes a host.

use super::runbook::{runbook_steps, LockOn, RunbookKind, RunbookSpec, StepState};
use super::step::{NoMemo, Runbook};
use super::StepContext;
use crate::config::HostConfig;
use crate::cyrus::mbexamine::{self, Examined};
use crate::cyrus::names::mailbox_arg;
use crate::ops::error::StepError;
use crate::remote::RemoteCommand;
use std::collections::BTreeSet;
use std::time::Duration;

runbook_steps! {
    /// The resync runbook's steps, in the run's order.
    pub enum Step {
        Compare = read "Compare: mbexamine the mailbox on master and replica",
        Push = write "Push: protect replica-only expunges (as repair), then sync_client -m MAILBOX",
        Verify = read "Verify: every master GUID is on the replica, same UIDs",
    }
}

pub const SPEC: RunbookSpec = RunbookSpec {
    kind: RunbookKind::Resync,
    title: "Resync one mailbox",
    summary: "compare a mailbox on both sides, push it again with sync_client -m, verify",
    target: "mailbox",
    point_of_no_return: None,
    lock_on: LockOn::Master,
    steps: Step::SPECS,
};

const PUSH_TIMEOUT: Duration = Duration::from_secs(120);

/// The resync runbook, for the engine's dispatch.
pub struct Resync;

impl Runbook for Resync {
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
    match step {
        Step::Compare => compare(cx, out, false).await,
        Step::Push => push(cx, out).await,
        Step::Verify => compare(cx, out, true).await,
    }
}

/// `mbexamine -C CONF MAILBOX` (the name checked: never an option).
pub fn examine_argv(h: &HostConfig, mailbox: &str) -> Result<Vec<String>, StepError> {
    Ok(vec![
        format!("{}/mbexamine", h.bin_dir.display()),
        "-C".into(),
        h.imapd_conf.display().to_string(),
        mailbox_arg(mailbox)?,
    ])
}

async fn examine(cx: &StepContext<'_>, host: &str) -> Result<Examined, StepError> {
    let conn = cx.connection(host)?;
    let cmd = RemoteCommand::read(examine_argv(conn.config(), cx.target)?);
    let o = conn.exec(&cmd).await.map_err(|e| format!("{host}: {e}"))?;
    // mbexamine of a name the host does not have prints nothing (3.6) or
    // only "No matching mailboxes found" on stderr (3.12, lab)
    let said = String::from_utf8_lossy(&o.stderr);
    if o.stdout.iter().all(u8::is_ascii_whitespace)
        && (said.trim().is_empty() || said.contains("No matching mailboxes"))
    {
        return Err(format!(
            "{host}: no mailbox {} there (mbexamine found none, exit {:?})",
            cx.target, o.exit_status
        )
        .into());
    }
    mbexamine::parse(&String::from_utf8_lossy(&o.stdout))
        .map_err(|e| format!("{host}: {e} {}", String::from_utf8_lossy(&o.stderr).trim()).into())
}

async fn compare(cx: &StepContext<'_>, out: &mut Vec<String>, strict: bool) -> StepState {
    let master = match examine(cx, &cx.pair.master).await {
        Ok(m) => m,
        Err(e) => return crate::ops::state_of(Err(e)),
    };
    out.push(format!(
        "{}: {} messages, last UID {}",
        cx.pair.master,
        master.messages.len(),
        master.last_uid.unwrap_or(0)
    ));
    let mguids: BTreeSet<&str> = master.messages.iter().map(|(_, g)| g.as_str()).collect();
    let mut summary = Vec::new();
    let mut clean = true;
    for r in &cx.pair.replicas {
        let rep = match examine(cx, &r.host).await {
            Ok(x) => x,
            Err(e) if !strict => {
                out.push(format!("{}: {e}", r.host));
                summary.push(format!("{}: not examinable", r.host));
                clean = false;
                continue;
            }
            Err(e) => return crate::ops::state_of(Err(e)),
        };
        let rguids: BTreeSet<&str> = rep.messages.iter().map(|(_, g)| g.as_str()).collect();
        let missing = mguids.difference(&rguids).count();
        let extra = rguids.difference(&mguids).count();
        let same_uids = master.messages == rep.messages && master.uidvalidity == rep.uidvalidity;
        clean &= missing == 0 && extra == 0 && same_uids;
        let line = format!(
            "{}: {} messages, last UID {}; {missing} missing, {extra} only there{}",
            r.host,
            rep.messages.len(),
            rep.last_uid.unwrap_or(0),
            if same_uids {
                ""
            } else {
                "; UIDs/UIDVALIDITY differ"
            }
        );
        out.push(line.clone());
        summary.push(line);
    }
    let text = summary.join("; ");
    if clean {
        StepState::Done(format!("identical: {text}"))
    } else if strict {
        StepState::Failed(format!("still differs: {text}"))
    } else {
        StepState::Done(format!("differs: {text}"))
    }
}

async fn push(cx: &StepContext<'_>, out: &mut Vec<String>) -> StepState {
    // protect exactly as repair does: a deletion made only on the replica
    // must not win and spread to the master
    match super::repair::protect_target(cx, out).await {
        Ok(said) => out.push(format!("  protect: {said}")),
        Err(e) if e.is_refusal() => return super::state_of(Err(e)),
        Err(e) => return StepState::Failed(format!("protect: {e}; nothing pushed")),
    }
    let mut failures = Vec::new();
    for r in &cx.pair.replicas {
        let argv = match (cx.sync_client_argv(&r.channel), mailbox_arg(cx.target)) {
            (Ok(a), Ok(m)) => a.into_iter().chain(["-m".into(), m]).collect::<Vec<_>>(),
            (Err(e), _) => return super::state_of(Err(e)),
            (_, Err(e)) => return StepState::Failed(e),
        };
        let res = cx
            .write(&cx.pair.master, argv, None, PUSH_TIMEOUT, out)
            .await;
        if let Err(e) = &res {
            if e.is_refusal() {
                return super::state_of(Err(e.clone()));
            }
        }
        match res {
            Ok(o) => {
                for l in String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .chain(String::from_utf8_lossy(&o.stdout).lines())
                {
                    out.push(format!("  {l}"));
                }
                if !o.success() {
                    failures.push(format!(
                        "to {}: exit {:?}{}",
                        r.host,
                        o.exit_status,
                        o.exit_signal
                            .map(|s| format!(" signal {s}"))
                            .unwrap_or_default()
                    ));
                }
            }
            Err(e) => failures.push(format!("to {}: {e}", r.host)),
        }
    }
    if failures.is_empty() {
        StepState::Done("sync_client -m finished".into())
    } else {
        StepState::Failed(failures.join("; "))
    }
}
