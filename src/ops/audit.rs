//! The append-only audit log: one JSON line per mutating remote command
//! (who, when, host, argv, exit, duration), written before the result is
//! shown so a crash cannot hide a mutation that ran.

use crate::remote::{ExecOutput, RemoteError};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Serialize)]
struct Record<'a> {
    time: i64,
    operator: String,
    host: &'a str,
    argv: &'a [String],
    runbook: &'a str,
    exit_status: Option<u32>,
    exit_signal: Option<&'a str>,
    error: Option<String>,
    duration_ms: u128,
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

pub fn default_path() -> PathBuf {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .unwrap_or_else(std::env::temp_dir)
        .join("cyrdeck/audit.log")
}

pub fn record(
    path: &Path,
    host: &str,
    argv: &[String],
    runbook: &str,
    result: &Result<ExecOutput, RemoteError>,
    elapsed: std::time::Duration,
) -> std::io::Result<()> {
    let (exit_status, exit_signal, error) = match result {
        Ok(o) => (o.exit_status, o.exit_signal.as_deref(), None),
        Err(e) => (None, None, Some(e.to_string())),
    };
    let rec = Record {
        time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
        operator: operator(),
        host,
        argv,
        runbook,
        exit_status,
        exit_signal,
        error,
        duration_ms: elapsed.as_millis(),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut line = serde_json::to_string(&rec).map_err(std::io::Error::other)?;
    line.push('\n');
    f.write_all(line.as_bytes())?;
    f.sync_data()
}
