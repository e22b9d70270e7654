//! `cyrdeck audit`: the audit log read back (intent and result of every change).

use super::common::print_all;
use color_eyre::eyre::{bail, Result};

pub fn run(path: &std::path::Path, since: Option<&str>, json: bool, all: bool) -> Result<i32> {
    use cyrdeck::ops::audit;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let since = since
        .map(|s| audit::parse_since(s, now))
        .transpose()
        .map_err(|e| color_eyre::eyre::eyre!(e))?;
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "no audit log at {} (nothing was changed yet)",
                path.display()
            );
            return Ok(0);
        }
        Err(e) => bail!("reading the audit log {}: {e}", path.display()),
    };
    let trail = audit::read(&text, since);
    let mut out = String::new();
    let beats = trail
        .entries
        .iter()
        .filter(|e| !all && audit::is_heartbeat(e))
        .count();
    for e in trail
        .entries
        .iter()
        .filter(|e| all || !audit::is_heartbeat(e))
    {
        if json {
            out.push_str(&serde_json::to_string(e)?);
        } else {
            out.push_str(&audit::describe(e));
        }
        out.push('\n');
    }
    print_all(out.as_bytes())?;
    if beats > 0 {
        eprintln!("({beats} heartbeat write(s) not shown: --all shows them)");
    }
    if !trail.unreadable.is_empty() {
        eprintln!(
            "{}: unreadable lines {:?}",
            path.display(),
            trail.unreadable
        );
        return Ok(1);
    }
    Ok(0)
}
