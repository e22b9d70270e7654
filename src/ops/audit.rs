//! The append-only audit log: JSON lines, two per mutating remote command.
//! The INTENT (who, when, host, runbook, run, argv) is written and fsynced
//! BEFORE the command is sent — a crash mid-command still leaves its trace,
//! and a log that cannot be written stops the write (StepContext::write
//! refuses). The RESULT (exit, signal, error, duration) follows under the
//! same id. Secrets that could appear in an argv (`sync_password: x`,
//! `password=x`) are redacted before anything is written.
//! `cyrdeck audit` reads it back (see `read`).

use crate::remote::{ExecOutput, RemoteError};
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Intent,
    #[default]
    Result,
    /// Something a runbook found that the operator must be told of even
    /// though nothing was written (a GUID conflict): stands alone.
    Finding,
}

/// One line of the log. Lines written before intents existed have no
/// `phase`/`id`: they read as results.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Record {
    #[serde(default)]
    pub phase: Phase,
    /// Pairs an intent with its result.
    #[serde(default)]
    pub id: String,
    pub time: i64,
    #[serde(default)]
    pub operator: String,
    #[serde(default)]
    pub host: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub argv: Vec<String>,
    #[serde(default)]
    pub runbook: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u128>,
}

/// Who runs this cyrdeck ($USER, else the uid).
pub fn operator() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        // SAFETY: getuid cannot fail
        .unwrap_or_else(|_| format!("uid {}", unsafe { libc::getuid() }))
}

/// This machine's name (the pair lock names it).
pub fn machine() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer outlives the call and its length is passed
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if rc == 0 && end > 0 {
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "unknown-machine".into()
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `KEY: value` / `KEY=value` where KEY names a secret (imapd.conf's
/// `sync_password`, `*_password`, `*secret*`, `*token*`): value redacted.
pub fn redact(arg: &str) -> String {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r"(?i)([A-Za-z0-9_.-]*(?:password|passwd|secret|token)[A-Za-z0-9_.-]*)(\s*[:=]\s*)([^\s'\x22]+)")
            .expect("valid regex")
    });
    re.replace_all(arg, "$1$2[redacted]").into_owned()
}

fn append(path: &Path, rec: &Record) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut line = serde_json::to_string(rec).map_err(std::io::Error::other)?;
    line.push('\n');
    // one write(2) of a whole line on an O_APPEND file: concurrent cyrdecks
    // never interleave inside a record
    f.write_all(line.as_bytes())?;
    f.sync_data()
}

/// Write (and fsync) the intent; its id pairs the result with it. An
/// error means the command must not be sent.
pub fn intent(
    path: &Path,
    host: &str,
    argv: &[String],
    runbook: &str,
    run_id: &str,
) -> std::io::Result<String> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let id = format!("{}-{}-{seq}-{nanos:x}", machine(), std::process::id());
    append(
        path,
        &Record {
            phase: Phase::Intent,
            id: id.clone(),
            time: now(),
            operator: operator(),
            host: host.to_string(),
            argv: argv.iter().map(|a| redact(a)).collect(),
            runbook: runbook.to_string(),
            run_id: run_id.to_string(),
            ..Record::default()
        },
    )?;
    Ok(id)
}

/// Write (and fsync) a finding on `host`: `what` (e.g. `guid-conflict`,
/// mailbox, UID, both GUIDs) in the argv field, `detail` in the error field.
pub fn finding(
    path: &Path,
    host: &str,
    what: &[String],
    detail: &str,
    runbook: &str,
    run_id: &str,
) -> std::io::Result<()> {
    append(
        path,
        &Record {
            phase: Phase::Finding,
            time: now(),
            operator: operator(),
            host: host.to_string(),
            argv: what.to_vec(),
            runbook: runbook.to_string(),
            run_id: run_id.to_string(),
            error: Some(detail.to_string()),
            ..Record::default()
        },
    )
}

/// Write (and fsync) the result of the command announced as `id`.
pub fn result(
    path: &Path,
    id: &str,
    host: &str,
    runbook: &str,
    res: &Result<ExecOutput, RemoteError>,
) -> std::io::Result<()> {
    let (exit_status, exit_signal, error, elapsed) = match res {
        Ok(o) => (o.exit_status, o.exit_signal.clone(), None, o.elapsed),
        Err(e) => (None, None, Some(redact(&e.to_string())), Default::default()),
    };
    append(
        path,
        &Record {
            phase: Phase::Result,
            id: id.to_string(),
            time: now(),
            operator: operator(),
            host: host.to_string(),
            runbook: runbook.to_string(),
            exit_status,
            exit_signal,
            error,
            duration_ms: Some(elapsed.as_millis()),
            ..Record::default()
        },
    )
}

/// A command as the log tells it: its intent, and its result if one was
/// written (none: cyrdeck died or lost the log while it ran).
#[derive(Serialize, Debug, Clone)]
pub struct Entry {
    pub intent: Record,
    pub result: Option<Record>,
}

/// The log read back: entries in intent order (a legacy record with no
/// intent stands alone as its own intent), and lines that are not records.
#[derive(Debug, Default)]
pub struct Trail {
    pub entries: Vec<Entry>,
    pub unreadable: Vec<usize>,
}

/// Read the log; only entries whose intent is at or after `since` (epoch).
pub fn read(text: &str, since: Option<i64>) -> Trail {
    let mut trail = Trail::default();
    let mut open: std::collections::HashMap<String, usize> = Default::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Ok(rec) = serde_json::from_str::<Record>(line) else {
            trail.unreadable.push(i + 1);
            continue;
        };
        match rec.phase {
            Phase::Intent => {
                open.insert(rec.id.clone(), trail.entries.len());
                trail.entries.push(Entry {
                    intent: rec,
                    result: None,
                });
            }
            Phase::Finding => trail.entries.push(Entry {
                intent: rec.clone(),
                result: Some(rec),
            }),
            Phase::Result => match open.remove(&rec.id).filter(|_| !rec.id.is_empty()) {
                Some(k) => trail.entries[k].result = Some(rec),
                // a legacy line (result only, argv inside)
                None => trail.entries.push(Entry {
                    intent: rec.clone(),
                    result: Some(rec),
                }),
            },
        }
    }
    if let Some(t) = since {
        trail.entries.retain(|e| e.intent.time >= t);
    }
    trail
}

/// `--since`: `30m`, `2h`, `7d`, `90s`, or an RFC 3339 time -> epoch.
pub fn parse_since(s: &str, now: i64) -> Result<i64, String> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t.as_second());
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("--since {s:?}: a duration like 30m, 2h, 7d or an RFC 3339 time"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("--since {s:?}: unit s, m, h or d")),
    };
    n.checked_mul(secs)
        .and_then(|d| now.checked_sub(d))
        .ok_or_else(|| format!("--since {s:?}: too far back"))
}

/// A routine heartbeat write (the only writes not started by an operator's
/// runbook): `cyrdeck audit` counts them instead of listing them.
pub fn is_heartbeat(e: &Entry) -> bool {
    e.intent.runbook == "heartbeat"
}

/// One line per command for the terminal.
pub fn describe(e: &Entry) -> String {
    let i = &e.intent;
    let at = jiff::Timestamp::from_second(i.time)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| i.time.to_string());
    let outcome = match &e.result {
        Some(r) if r.phase == Phase::Finding => {
            format!("FOUND: {}", r.error.as_deref().unwrap_or(""))
        }
        None => "NO RESULT (interrupted: check the host)".to_string(),
        Some(r) => match (&r.error, r.exit_status, &r.exit_signal) {
            (Some(err), _, _) => format!("error: {err}"),
            (None, _, Some(sig)) => format!("killed by {sig}"),
            (None, Some(code), None) => format!("exit {code}"),
            (None, None, None) => "no exit status".into(),
        },
    };
    let run = if i.run_id.is_empty() {
        String::new()
    } else {
        format!(" run {}", i.run_id)
    };
    format!(
        "{at}Z {} on {} [{}{run}] {}  -> {outcome}",
        i.operator,
        i.host,
        i.runbook,
        i.argv.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(redact("sync_password: s3cret"), "sync_password: [redacted]");
        assert_eq!(
            redact("s/^sync_password=.*/x/"),
            "s/^sync_password=[redacted]"
        );
        assert_eq!(
            redact("--password=hunter2 -u bob"),
            "--password=[redacted] -u bob"
        );
        assert_eq!(redact("LDAP_SECRET=abc def"), "LDAP_SECRET=[redacted] def");
        assert_eq!(redact("sync_authname: repl"), "sync_authname: repl");
        assert_eq!(redact("user/bob"), "user/bob");
    }

    #[test]
    fn intents_pair_with_results_and_interrupted_ones_show() {
        let dir = std::env::temp_dir().join(format!("cyrdeck-audit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("audit.log");
        let argv = vec!["sync_client".to_string(), "-u".into(), "bob".into()];
        let a = intent(&path, "m1", &argv, "repair", "run-1").unwrap();
        let b = intent(
            &path,
            "m1",
            &["echo".to_string(), "sync_password: x".into()],
            "repair",
            "run-1",
        )
        .unwrap();
        assert_ne!(a, b);
        let ok = Ok(ExecOutput {
            exit_status: Some(0),
            ..ExecOutput::default()
        });
        result(&path, &a, "m1", "repair", &ok).unwrap();
        // a legacy record and garbage
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        writeln!(
            f,
            "{{\"time\":5,\"host\":\"m2\",\"argv\":[\"old\"],\"runbook\":\"x\",\"exit_status\":1}}"
        )
        .unwrap();
        writeln!(f, "not json").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("sync_password: x"));
        let t = read(&text, None);
        assert_eq!(t.entries.len(), 3);
        assert_eq!(t.unreadable, vec![5]);
        assert_eq!(t.entries[0].result.as_ref().unwrap().exit_status, Some(0));
        assert!(t.entries[1].result.is_none());
        assert!(describe(&t.entries[1]).contains("NO RESULT"));
        assert_eq!(t.entries[2].intent.argv, vec!["old"]);
        assert_eq!(read(&text, Some(10)).entries.len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn since_forms() {
        assert_eq!(parse_since("30m", 10_000), Ok(8_200));
        assert_eq!(parse_since("2h", 10_000), Ok(2_800));
        assert_eq!(parse_since("1970-01-01T01:00:00Z", 0), Ok(3600));
        assert!(parse_since("3w", 0).is_err());
        assert!(parse_since("", 0).is_err());
        assert!(parse_since("99999999999999999d", 0).is_err());
    }
}
