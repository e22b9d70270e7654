//! What sudo on a lab host allowed or refused (its `logfile`, one entry per
//! line: `DATE : ACCOUNT : [REASON ; ]PWD=... ; USER=RUNAS ; COMMAND=...`):
//! the server's own record that a command went through the sudo rules.

use super::lab;
use cyrdeck::lab::layout::Role;

#[derive(Debug, Clone)]
pub struct SudoEntry {
    pub account: String,
    /// None: allowed; Some(reason): refused ("command not allowed", ...).
    pub refused: Option<String>,
    pub run_as: String,
    pub command: String,
}

/// Sizes of both hosts' sudo logs now (read from there on).
pub fn offsets() -> Vec<(Role, u64)> {
    Role::ALL
        .iter()
        .map(|&r| {
            let n = std::fs::metadata(lab().layout.sudo_log(r))
                .map(|m| m.len())
                .unwrap_or(0);
            (r, n)
        })
        .collect()
}

/// Entries logged since `offsets` on both hosts.
pub fn since(offsets: &[(Role, u64)]) -> Vec<SudoEntry> {
    let mut out = Vec::new();
    for &(role, offset) in offsets {
        let data = std::fs::read(lab().layout.sudo_log(role)).unwrap_or_default();
        let data = &data[(offset as usize).min(data.len())..];
        for line in String::from_utf8_lossy(data).lines() {
            out.push(parse(line).unwrap_or_else(|| panic!("unparsed sudo log line {line:?}")));
        }
    }
    out
}

fn parse(line: &str) -> Option<SudoEntry> {
    // the date holds " : " nowhere; the first two separators frame the account
    let mut parts = line.splitn(3, " : ");
    let (_date, account, rest) = (parts.next()?, parts.next()?, parts.next()?);
    let fields: Vec<&str> = rest.split(" ; ").collect();
    let refused = (!fields.first()?.starts_with("PWD=")).then(|| fields[0].to_string());
    let value = |k: &str| {
        fields
            .iter()
            .find_map(|f| f.strip_prefix(k))
            .map(str::to_string)
    };
    Some(SudoEntry {
        account: account.trim().to_string(),
        refused,
        run_as: value("USER=")?,
        // the last field: arguments may hold " ; " themselves
        command: rest.split_once("COMMAND=")?.1.to_string(),
    })
}
