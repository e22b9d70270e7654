//! Runbooks for a user whose broken mailbox on the replica blocks ALL
//! replication (Cyrus 3.6 has no skip list; the rolling client bails out on
//! it and reprocesses log-run in a hot loop):
//! - "quarantine USER": show the evidence; move USER's queue entries into
//!   `held-USER` in the channel's sync directory ON THE MASTER (every
//!   console sees it; the Stuck view lists it) and requeue the rest; verify
//!   the queue drains for everyone else.
//! - "release USER": show the replica-side errors and the safe repairs;
//!   replay the held file with `sync_client -r -f` (exit 50 while still
//!   broken); check the user; remove the held file only after a clean check.
//!
//! New mail for a quarantined user queues normally and blocks again while
//! the replica is still broken: run quarantine again (it appends to the
//! same held file).

use super::runbook::{runbook_steps, LockOn, RunbookKind, RunbookSpec, StepState};
use super::step::{NoMemo, Runbook};
use super::StepContext;
use crate::check;
use crate::config::HostConfig;
use crate::cyrus::names::{check_name, NameKind};
use crate::ops::error::StepError;
use crate::remote::RemoteCommand;
use std::time::{Duration, Instant};

runbook_steps! {
    /// The quarantine runbook's steps, in the run's order.
    pub enum QuarantineStep {
        Evidence = read "Evidence: the user's recent errors and pending entries",
        Quarantine = write "Quarantine: move the user's entries to held-USER, requeue the rest",
        Unstick = write "Unstick, only if the queue does not drain: kill replica sync_servers spinning on it",
        Verify = read "Verify: the queue drains for everyone else",
    }
}

pub const QUARANTINE: RunbookSpec = RunbookSpec {
    kind: RunbookKind::Quarantine,
    title: "Quarantine a blocking user",
    summary: "hold a user's queue entries on the master so everyone else replicates again",
    target: "user",
    point_of_no_return: None,
    lock_on: LockOn::Master,
    steps: QuarantineStep::SPECS,
};

runbook_steps! {
    /// The release runbook's steps, in the run's order.
    pub enum ReleaseStep {
        Diagnose = read "Diagnose: replica-side errors for the user and the safe repairs",
        Replay = write "Replay: held-USER taken aside as releasing-USER, sync_client -r -f it (timeout 60 s)",
        CheckUser = read "Check the user (levels 1+2)",
        RemoveHeld = write "Remove releasing-USER, the replayed snapshot (only after the clean check)",
    }
}

pub const RELEASE: RunbookSpec = RunbookSpec {
    kind: RunbookKind::Release,
    title: "Release a quarantined user",
    summary: "after fixing the replica: replay held-USER with sync_client -r -f, check, remove it",
    target: "user",
    point_of_no_return: None,
    lock_on: LockOn::Master,
    steps: ReleaseStep::SPECS,
};

pub(crate) const SCRIPT: &str = include_str!("quarantine.sh");
pub(crate) const READERS: &str = include_str!("stuck_read.sh");
pub(crate) const RELEASE_SCRIPT: &str = include_str!("release.sh");

fn release_argv(action: &str, dir: &str, user: &str) -> Result<Vec<String>, StepError> {
    valid_user(user)?;
    Ok(vec![
        "sh".into(),
        "-c".into(),
        RELEASE_SCRIPT.into(),
        "cyrdeck-release".into(),
        action.into(),
        dir.into(),
        user.into(),
    ])
}

/// quarantine.sh on the master for one sync directory (the user checked).
fn quarantine_argv(h: &HostConfig, dir: &str, user: &str) -> Result<Vec<String>, StepError> {
    valid_user(user)?;
    Ok(vec![
        "sh".to_string(),
        "-c".into(),
        SCRIPT.into(),
        "cyrdeck-quarantine".into(),
        h.imapd_conf.display().to_string(),
        h.bin_dir.display().to_string(),
        dir.into(),
        user.into(),
    ])
}
const TIMEOUT: Duration = Duration::from_secs(300);
/// A replay of a few held entries that takes longer is hanging on a replica
/// that is still broken.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(60);

/// A Cyrus userid: never an option to the tools and greps it reaches
/// (names::check_name), no path tricks in the scripts' file names.
fn valid_user(u: &str) -> Result<(), StepError> {
    check_name(NameKind::User, u)?;
    if u.len() > 200 || u.contains('/') || u.starts_with('.') {
        return Err(format!("{u:?} is not a user name").into());
    }
    Ok(())
}

/// The sync directory of every replica channel of the pair, on the master.
fn sync_dirs(cx: &StepContext<'_>, configdirectory: &str) -> Vec<(String, String)> {
    cx.pair
        .replicas
        .iter()
        .map(|r| {
            let d = if r.channel.is_empty() {
                format!("{configdirectory}/sync")
            } else {
                format!("{configdirectory}/sync/{}", r.channel)
            };
            (r.channel.clone(), d)
        })
        .collect()
}

/// A read-only stuck_read.sh action on `host`.
async fn read(
    cx: &StepContext<'_>,
    host: &str,
    action: &str,
    args: &[String],
) -> Result<String, StepError> {
    let conn = cx.connection(host)?;
    let mut argv = vec![
        "sh".to_string(),
        "-c".into(),
        READERS.into(),
        "cyrdeck-read".into(),
        action.into(),
    ];
    argv.extend(args.iter().cloned());
    let o = conn
        .exec(&RemoteCommand::read(argv))
        .await
        .map_err(|e| format!("{host}: {e}"))?;
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

async fn configdirectory(cx: &StepContext<'_>) -> Result<String, StepError> {
    let conf = cx
        .connection(&cx.pair.master)?
        .config()
        .imapd_conf
        .display()
        .to_string();
    let out = read(cx, &cx.pair.master, "configdir", &[conf]).await?;
    let d = out.trim().to_string();
    if d.is_empty() {
        return Err("the master's imapd.conf has no configdirectory".into());
    }
    Ok(d)
}

/// Lines of a host's syslog (last 20,000) naming the user.
async fn errors_for(
    cx: &StepContext<'_>,
    host: &str,
    user: &str,
) -> Result<Vec<String>, StepError> {
    let cfg = cx.connection(host)?.config().clone();
    let (verb, source) = match (cfg.log_source, &cfg.syslog_file) {
        (crate::config::LogSource::Journal, _) => ("errors-journal", cfg.log_prefix().to_string()),
        (_, Some(log)) => ("errors", log.display().to_string()),
        (_, None) => return Ok(vec![format!("on {host}: no syslog file configured")]),
    };
    let text = read(cx, host, verb, &[source, user.to_string()]).await?;
    // the host once, then each line as time, service and message: at 80
    // columns the date and host name took most of the width (issue 30,
    // item 8)
    let lines: Vec<String> = text
        .lines()
        .map(|l| format!("  {}", crate::cyrus::loglines::compact(l)))
        .collect();
    if lines.is_empty() {
        return Ok(lines);
    }
    Ok(std::iter::once(format!("on {host}:"))
        .chain(lines)
        .collect())
}

/// The quarantine runbook, for the engine's dispatch.
pub struct Quarantine;

impl Runbook for Quarantine {
    type Step = QuarantineStep;
    type Memo = NoMemo;
    const SPEC: RunbookSpec = QUARANTINE;
    async fn execute(
        step: QuarantineStep,
        cx: &StepContext<'_>,
        out: &mut Vec<String>,
        _memo: &mut NoMemo,
    ) -> StepState {
        let user = cx.target;
        if let Err(e) = valid_user(user) {
            return crate::ops::state_of(Err(e));
        }
        super::state_of(match step {
            QuarantineStep::Evidence => evidence(cx, user, out).await,
            QuarantineStep::Quarantine => quarantine(cx, user, out).await,
            QuarantineStep::Unstick => unstick(cx, out).await,
            QuarantineStep::Verify => drains(cx, out).await,
        })
    }
}

/// The release runbook, for the engine's dispatch.
pub struct Release;

impl Runbook for Release {
    type Step = ReleaseStep;
    type Memo = NoMemo;
    const SPEC: RunbookSpec = RELEASE;
    async fn execute(
        step: ReleaseStep,
        cx: &StepContext<'_>,
        out: &mut Vec<String>,
        _memo: &mut NoMemo,
    ) -> StepState {
        let user = cx.target;
        if let Err(e) = valid_user(user) {
            return crate::ops::state_of(Err(e));
        }
        super::state_of(match step {
            ReleaseStep::Diagnose => diagnose(cx, user, out).await,
            ReleaseStep::Replay => replay(cx, user, out).await,
            ReleaseStep::CheckUser => check_user(cx, user, out).await,
            ReleaseStep::RemoveHeld => remove_held(cx, user, out).await,
        })
    }
}

async fn evidence(
    cx: &StepContext<'_>,
    user: &str,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    let cfgdir = configdirectory(cx).await?;
    let pending = sum_over_sync_dirs(cx, &cfgdir, "user-pending", &[user.to_string()]).await?;
    let mut lines = errors_for(cx, &cx.pair.master, user).await?;
    for r in &cx.pair.replicas {
        lines.extend(errors_for(cx, &r.host, user).await?);
    }
    let shown = lines.iter().filter(|l| l.starts_with("  ")).count();
    out.extend(lines.iter().map(|l| format!("  {l}")));
    Ok(format!(
        "{pending} pending entries name {user}; {shown} recent error line(s) shown"
    ))
}

async fn quarantine(
    cx: &StepContext<'_>,
    user: &str,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    let cfgdir = configdirectory(cx).await?;
    // nothing to hold: refused before anything is set aside (an empty
    // held file would make `release` refuse and keep the pair WARNING).
    // Entries already held (this step run again after a kill) are no
    // refusal: the step is idempotent
    let who = [user.to_string()];
    let pending = sum_over_sync_dirs(cx, &cfgdir, "user-pending", &who).await?;
    if pending == 0 && sum_over_sync_dirs(cx, &cfgdir, "held-count", &who).await? == 0 {
        return Err(StepError::Refused(
            crate::ops::error::Refusal::Precondition(format!(
                "no pending entry names {user}: nothing to quarantine (nothing was set aside)"
            )),
        ));
    }
    let h = cx.connection(&cx.pair.master)?.config();
    let mut done = Vec::new();
    for (_, dir) in sync_dirs(cx, &cfgdir) {
        let argv = quarantine_argv(h, &dir, user)?;
        // the script's text is long: output and audit log name it by its role
        let shown = vec![
            "cyrdeck-quarantine".to_string(),
            dir.clone(),
            user.to_string(),
        ];
        let o = cx
            .write(&cx.pair.master, argv, Some(shown), TIMEOUT, out)
            .await?;
        let text = String::from_utf8_lossy(&o.stdout).trim().to_string();
        if !o.success() {
            return Err(format!(
                "quarantine failed (exit {:?}): {} — taken-aside files, if any, are still in {dir}",
                o.exit_status,
                String::from_utf8_lossy(&o.stderr).trim()
            )
            .into());
        }
        out.push(format!("  {text}"));
        done.push(text);
    }
    Ok(done.join("; "))
}

/// Sum over the channels' sync directories of a number a read script
/// prints (`$1` the directory, then `args`).
async fn sum_over_sync_dirs(
    cx: &StepContext<'_>,
    cfgdir: &str,
    action: &str,
    args: &[String],
) -> Result<u64, StepError> {
    let mut n = 0;
    for (_, dir) in sync_dirs(cx, cfgdir) {
        let mut a = vec![dir];
        a.extend(args.iter().cloned());
        let t = read(cx, &cx.pair.master, action, &a).await?;
        n += t.trim().parse::<u64>().unwrap_or(0);
    }
    Ok(n)
}

async fn queue_len(cx: &StepContext<'_>, cfgdir: &str) -> Result<u64, StepError> {
    sum_over_sync_dirs(cx, cfgdir, "queue-count", &[]).await
}

async fn drains(cx: &StepContext<'_>, out: &mut Vec<String>) -> Result<String, StepError> {
    let cfgdir = configdirectory(cx).await?;
    let started = Instant::now();
    loop {
        let n = queue_len(cx, &cfgdir).await?;
        if n == 0 {
            return Ok(format!(
                "queue empty after {:.0?}: everyone else replicates",
                started.elapsed()
            ));
        }
        if started.elapsed() > Duration::from_secs(90) {
            return Err(format!(
                "{n} entries still queued after 90 s: something else blocks (see Stuck and Log)"
            )
            .into());
        }
        out.push(format!("  {n} entries queued"));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// sync_server processes (of this replica's config) that have burnt this
/// many CPU seconds are spinning, not working: a corrupt index makes 3.6's
/// sync_server loop on "refreshing index failed" forever while the client
/// waits for its answer (seen in the lab; SIGTERM is ignored).
const SPIN_CPU_SECS: u64 = 20;

async fn unstick(cx: &StepContext<'_>, out: &mut Vec<String>) -> Result<String, StepError> {
    let cfgdir = configdirectory(cx).await?;
    let first = queue_len(cx, &cfgdir).await?;
    let mut n = first;
    for _ in 0..10 {
        if n == 0 {
            return Ok("the queue drains: nothing to unstick".into());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = queue_len(cx, &cfgdir).await?;
        if now < n {
            return Ok(format!(
                "the queue drains ({n} -> {now}): nothing to unstick"
            ));
        }
        n = now;
    }
    out.push(format!("  {n} entries queued and not draining for 20 s"));
    let killed = kill_spinners(cx, out).await?;
    if killed.is_empty() {
        return Err(format!(
            "{n} entries not draining and no spinning sync_server found: see the Log and Stuck views"
        ).into());
    }
    Ok(format!(
        "killed spinning sync_server(s) {}: the client reconnects without the held entries",
        killed.join(", ")
    ))
}

/// SIGKILL the replicas' sync_server processes that have spun for
/// SPIN_CPU_SECS of CPU; returns "host:pid" of each.
async fn kill_spinners(
    cx: &StepContext<'_>,
    out: &mut Vec<String>,
) -> Result<Vec<String>, StepError> {
    let mut killed = Vec::new();
    for r in &cx.pair.replicas {
        let conn = cx.connection(&r.host)?;
        let conf = conn.config().imapd_conf.display().to_string();
        let ps = read(cx, &r.host, "sync-servers", &[conf]).await?;
        let spinning: Vec<String> = ps
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let [pid, time, _stat] = f[..] else {
                    return None;
                };
                (cpu_secs(time)? >= SPIN_CPU_SECS).then(|| pid.to_string())
            })
            .collect();
        if spinning.is_empty() {
            continue;
        }
        let mut argv = vec!["kill".to_string(), "-KILL".into()];
        argv.extend(spinning.iter().cloned());
        cx.write(&r.host, argv, None, TIMEOUT, out).await?;
        killed.extend(spinning.into_iter().map(|p| format!("{}:{p}", r.host)));
    }
    Ok(killed)
}

/// `ps` TIME: [[dd-]hh:]mm:ss -> seconds.
fn cpu_secs(t: &str) -> Option<u64> {
    let (days, rest) = match t.split_once('-') {
        Some((d, r)) => (d.parse::<u64>().ok()?, r),
        None => (0, t),
    };
    let mut secs = 0;
    for part in rest.split(':') {
        secs = secs * 60 + part.parse::<u64>().ok()?;
    }
    Some(days * 86400 + secs)
}

async fn diagnose(
    cx: &StepContext<'_>,
    user: &str,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    let cfgdir = configdirectory(cx).await?;
    let held = sum_over_sync_dirs(cx, &cfgdir, "held-count", &[user.to_string()]).await?;
    let mut lines = Vec::new();
    for r in &cx.pair.replicas {
        lines.extend(errors_for(cx, &r.host, user).await?);
    }
    out.extend(lines.iter().map(|l| format!("  {l}")));
    out.push("  safe repairs on the replica: fix ownership/permissions of the mailbox directory (cyrus:mail);".into());
    out.push(format!(
        "  `reconstruct -M user/{user}` (never plain reconstruct: it mints a new UIDVALIDITY);"
    ));
    out.push("  re-create a missing folder; then run the next step.".into());
    if held == 0 {
        return Err(format!("no held entries for {user}: nothing to release").into());
    }
    Ok(format!("{held} held entries for {user}"))
}

async fn replay(
    cx: &StepContext<'_>,
    user: &str,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    let cfgdir = configdirectory(cx).await?;
    let mut total = 0u64;
    for (channel, dir) in sync_dirs(cx, &cfgdir) {
        // held-USER taken aside as releasing-USER: the replay and the
        // removal act on that snapshot only (release.sh)
        let argv = release_argv("snapshot", &dir, user)?;
        let shown = vec![
            "cyrdeck-release snapshot".into(),
            format!("{dir}/held-{user}"),
        ];
        let o = cx
            .write(
                &cx.pair.master,
                argv,
                Some(shown),
                Duration::from_secs(30),
                out,
            )
            .await?;
        let n: u64 = String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        if !o.success() {
            return Err(
                format!("taking held-{user} aside failed (exit {:?})", o.exit_status).into(),
            );
        }
        if n == 0 {
            continue;
        }
        total += n;
        let mut argv = cx.sync_client_argv(&channel)?;
        argv.extend(["-r".into(), "-f".into(), format!("{dir}/releasing-{user}")]);
        let res = cx
            .write(&cx.pair.master, argv, None, REPLAY_TIMEOUT, out)
            .await;
        let o = match res {
            Ok(o) => o,
            Err(e) if e.is_refusal() => return Err(e),
            Err(e) => {
                // a replica sync_server spinning on a corrupt index never answers
                let killed = kill_spinners(cx, out).await.unwrap_or_default();
                let note = if killed.is_empty() {
                    String::new()
                } else {
                    format!(" (killed spinning sync_server {})", killed.join(", "))
                };
                return Err(format!(
                    "{e}: the replica is still broken for {user}{note}; fix it and run this step again"
                ).into());
            }
        };
        for l in String::from_utf8_lossy(&o.stderr).lines().take(20) {
            out.push(format!("  {l}"));
        }
        if !o.success() {
            return Err(format!(
                "sync_client exited {:?}: the replica is still broken for {user}; fix it and run this step again",
                o.exit_status
            ).into());
        }
    }
    Ok(format!(
        "{total} held entries replayed (from releasing-{user})"
    ))
}

async fn check_user(
    cx: &StepContext<'_>,
    user: &str,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    let scope = check::Scope {
        user: Some(user.to_string()),
        mailbox: None,
    };
    let r = cx.scoped_check(&scope, Duration::from_secs(30)).await?;
    for d in &r.differences {
        out.push(format!("  {} {} {}", d.kind.label(), d.mailbox, d.detail));
    }
    if r.in_sync() {
        Ok(format!(
            "{user} in sync ({} mailboxes)",
            r.mailboxes_checked
        ))
    } else {
        Err(format!(
            "{user} still differs ({} differences): the held file is kept; try repair {user}",
            r.divergent().count()
        )
        .into())
    }
}

async fn remove_held(
    cx: &StepContext<'_>,
    user: &str,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    let cfgdir = configdirectory(cx).await?;
    let mut newer = Vec::new();
    for (_, dir) in sync_dirs(cx, &cfgdir) {
        // only the snapshot that was replayed; say whether more was held since
        let argv = release_argv("remove-snapshot", &dir, user)?;
        let shown = vec!["rm".into(), "-f".into(), format!("{dir}/releasing-{user}")];
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
            return Err(format!("rm exited {:?}", o.exit_status).into());
        }
        let n = String::from_utf8_lossy(&o.stdout).trim().to_string();
        if !n.is_empty() {
            newer.push(format!("{dir}/held-{user} ({n} entries)"));
        }
    }
    if newer.is_empty() {
        Ok(format!("releasing-{user} removed (the replayed snapshot)"))
    } else {
        Ok(format!(
            "releasing-{user} removed; entries held since the replay began are kept: {} (release again)",
            newer.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_cpu_times() {
        assert_eq!(cpu_secs("00:00:21"), Some(21));
        assert_eq!(cpu_secs("01:02:03"), Some(3723));
        assert_eq!(cpu_secs("2-00:00:01"), Some(172_801));
        assert_eq!(cpu_secs("x"), None);
    }

    #[test]
    fn user_names_cannot_escape_the_sync_directory() {
        assert!(valid_user("alice").is_ok());
        assert!(valid_user("a.b").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "a\nb"] {
            assert!(valid_user(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn user_names_that_could_be_options_build_no_command() {
        let text = "[hosts.m]\nssh = \"root@127.0.0.1:1\"\n[hosts.r]\nssh = \"root@127.0.0.2:1\"\n\
                    [pairs.p]\nmaster = \"m\"\nreplicas = [ { host = \"r\" } ]\n";
        let cfg = crate::config::Config::parse(
            std::path::Path::new("t.toml"),
            text,
            std::path::Path::new("/nonexistent"),
        )
        .unwrap();
        let h = cfg.host("m").clone();
        for bad in ["-x", "--help", "-C/etc/passwd"] {
            let e = valid_user(bad).unwrap_err().to_string();
            assert!(
                e.contains(&format!("{bad:?}")) && e.contains("option"),
                "{e}"
            );
            let said = |r: Result<Vec<String>, StepError>| r.map_err(|e| e.to_string());
            assert_eq!(said(release_argv("snapshot", "/d", bad)), Err(e.clone()));
            assert_eq!(said(quarantine_argv(&h, "/d", bad)), Err(e));
        }
        assert_eq!(release_argv("snapshot", "/d", "bob").unwrap()[6], "bob");
        assert_eq!(quarantine_argv(&h, "/d", "bob").unwrap()[7], "bob");
    }
}
