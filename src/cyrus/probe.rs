//! The per-host probe: the remote command (one exec per refresh) and the
//! parser of its output. The parser never panics: garbage or truncated
//! output is an error naming what was wrong.

use crate::config::{HostConfig, LogSource};
use crate::cyrus::logtime::HostZone;
use crate::remote::RemoteCommand;
use serde::Serialize;
use std::collections::BTreeMap;

pub const SCRIPT: &str = include_str!("probe_script.sh");

/// Largest syslog chunk fetched per refresh (a hot loop writes MBs a second).
pub const MAX_LOG_BYTES: u64 = 256 * 1024;

/// Where the previous refresh stopped reading the log: the syslog file's
/// inode and offset, or the journal's cursor of the last entry read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogCursor {
    pub inode: u64,
    pub offset: u64,
    pub journal: Option<String>,
}

/// `heartbeat_user`: read that user's INBOX append time too.
pub fn command(h: &HostConfig, cursor: &LogCursor, heartbeat_user: Option<&str>) -> RemoteCommand {
    let (kind, where_) = match (h.log_source, &h.syslog_file) {
        (LogSource::Journal, _) => ("journal", h.log_prefix().to_string()),
        (LogSource::File, Some(p)) => ("file", p.display().to_string()),
        (LogSource::File, None) => ("", String::new()),
    };
    RemoteCommand::read([
        "sh".to_string(),
        "-c".to_string(),
        SCRIPT.to_string(),
        "cyrdeck-probe".to_string(),
        h.imapd_conf.display().to_string(),
        h.cyrus_conf.display().to_string(),
        h.bin_dir.display().to_string(),
        kind.to_string(),
        where_,
        cursor.offset.to_string(),
        cursor.inode.to_string(),
        MAX_LOG_BYTES.to_string(),
        heartbeat_user.unwrap_or_default().to_string(),
        cursor.journal.clone().unwrap_or_default(),
    ])
}

/// The heartbeat mailbox as this host has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeartbeatRead {
    /// Its last append (epoch seconds) and last UID.
    Seen { appended_at: u64, last_uid: u32 },
    /// No such mailbox (or its index cannot be read).
    Missing,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    pub age_secs: u64,
    /// `ps` STAT: R running, S sleeping, D in I/O, T stopped (SIGSTOP), Z…
    pub state: String,
    pub args: String,
}

impl Proc {
    /// Stopped by a signal (SIGSTOP, SIGTSTP) or a debugger: it does nothing
    /// until continued.
    pub fn stopped(&self) -> bool {
        self.state.starts_with(['T', 't'])
    }
}

/// A `name cmd="..." listen="..."` line of cyrus.conf.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceEntry {
    pub section: String,
    pub name: String,
    pub cmd: String,
    pub listen: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SyncFile {
    /// "" for the default channel.
    pub channel: String,
    /// File name inside the channel directory: log, log-run, held-*, ...
    pub name: String,
    pub size: u64,
    pub mtime: u64,
    /// Birth time when the filesystem records it.
    pub btime: Option<u64>,
    pub inode: u64,
    pub lines: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SyncServerCheck {
    pub endpoint: Option<String>,
    pub answered: bool,
    pub banner: Option<String>,
}

/// The log lines read by one probe, in canonical syslog-file form
/// (`TIME HOST TAG[PID]: MESSAGE`; journal entries are rendered so).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogChunk {
    /// Where the next read starts. For the journal `journal` is None when
    /// no entry came (keep the previous cursor).
    pub cursor: LogCursor,
    /// Whole lines only: a chunk that started mid-line (the first read, or
    /// cut to the size limit) has lost its first, partial line.
    pub text: String,
}

#[derive(Clone, Debug, Default)]
pub struct ProbeReport {
    pub now: u64,
    pub version: Option<String>,
    pub conf: BTreeMap<String, String>,
    pub processes: Vec<Proc>,
    pub listening: Vec<String>,
    pub services: Vec<ServiceEntry>,
    pub sync_dir: Option<String>,
    pub sync_files: Vec<SyncFile>,
    /// Per channel: the oldest pending entry.
    pub oldest_entry: BTreeMap<String, String>,
    /// Per channel: the most frequent pending entries with their counts.
    pub pending_top: BTreeMap<String, Vec<(u64, String)>>,
    /// Per channel: distinct pending entries in queue order (oldest first,
    /// capped remotely at 500): count, line of the first occurrence in
    /// `log-run` + `log` (1-based), entry.
    pub pending_groups: BTreeMap<String, Vec<(u64, u64, String)>>,
    /// Per channel: how many distinct entries are pending (uncapped).
    pub pending_distinct: BTreeMap<String, u64>,
    /// Per channel: entries pending per user over the whole queue (the
    /// busiest 5000 users), and how many users have any.
    pub pending_users: BTreeMap<String, Vec<(u64, String)>>,
    pub pending_users_total: BTreeMap<String, u64>,
    pub sync_server: Option<SyncServerCheck>,
    pub log: Option<LogChunk>,
    pub log_error: Option<String>,
    /// The host's time zone (traditional syslog lines carry none).
    pub zone: Option<HostZone>,
    /// Asked for only when the pair has a heartbeat.
    pub heartbeat: Option<HeartbeatRead>,
    /// First line of `{configdirectory}/msg/shutdown`: Cyrus refuses
    /// non-admin writes while it exists (cyrdeck's failover fence).
    pub shutdown: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProbeParseError {
    #[error("probe output does not start with its header (got {0:?})")]
    NoHeader(String),
    #[error("probe output is truncated: {0}")]
    Truncated(&'static str),
    #[error("probe output line {line}: {what}: {text:?}")]
    BadLine {
        line: usize,
        what: &'static str,
        text: String,
    },
}

fn bad(line: usize, what: &'static str, text: &str) -> ProbeParseError {
    ProbeParseError::BadLine {
        line,
        what,
        text: text.chars().take(120).collect(),
    }
}

fn parse_proc(l: &str) -> Option<Proc> {
    let mut it = l.split_whitespace();
    let pid = it.next()?.parse().ok()?;
    let ppid = it.next()?.parse().ok()?;
    let age_secs = it.next()?.parse().ok()?;
    let mut args: Vec<&str> = it.collect();
    // STAT letters (ps(1) "PROCESS STATE CODES"); older probes had none
    let is_state = |w: &str| w.chars().all(|c| "DIKLNPRSTWXZlst<+".contains(c));
    let state = match args.as_slice() {
        [s, _, ..] if is_state(s) => args.remove(0).to_string(),
        _ => String::new(),
    };
    (!args.is_empty()).then(|| Proc {
        pid,
        ppid,
        age_secs,
        state,
        args: args.join(" "),
    })
}

fn attr(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!("{key}="))? + key.len() + 1;
    let rest = &line[start..];
    if let Some(q) = rest.strip_prefix('"') {
        Some(q[..q.find('"')?].to_string())
    } else {
        Some(rest.split_whitespace().next()?.to_string())
    }
}

/// Every entry of a cyrus.conf text, with the section it sits in.
pub fn parse_cyrus_conf(text: &str) -> Vec<ServiceEntry> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || t.is_empty() {
            continue;
        }
        if let Some(s) = t.strip_suffix('{') {
            section = s.trim().to_string();
        } else if t == "}" {
            section.clear();
        } else if !section.is_empty() {
            out.extend(parse_service(&section, t));
        }
    }
    out
}

fn parse_service(section: &str, l: &str) -> Option<ServiceEntry> {
    let name = l.split_whitespace().next()?;
    Some(ServiceEntry {
        section: section.to_string(),
        name: name.to_string(),
        cmd: attr(l, "cmd")?,
        listen: attr(l, "listen"),
    })
}

/// One `F` line; `None` for a file that vanished between the probe's stat
/// and its line count (an older probe prints an empty count then: the
/// rolling client unlinks `log-run` whenever it finishes one).
fn parse_sync_file(n: usize, l: &str) -> Result<Option<SyncFile>, ProbeParseError> {
    let f: Vec<&str> = l.split('\t').collect();
    let [_, rel, stat, lines] = f[..] else {
        return Err(bad(n, "sync file", l));
    };
    if lines.trim().is_empty() {
        return Ok(None);
    }
    let st: Vec<&str> = stat.split_whitespace().collect();
    let [size, mtime, btime, inode] = st[..] else {
        return Err(bad(n, "sync file stat", l));
    };
    let num = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| bad(n, "sync file number", l))
    };
    let (channel, name) = match rel.rsplit_once('/') {
        Some((c, f)) => (c.to_string(), f.to_string()),
        None => (String::new(), rel.to_string()),
    };
    let btime = num(btime)?;
    Ok(Some(SyncFile {
        channel,
        name,
        size: num(size)?,
        mtime: num(mtime)?,
        btime: (btime > 0).then_some(btime),
        inode: num(inode)?,
        lines: num(lines)?,
    }))
}

/// Parse the probe's output.
fn parse_heartbeat(arg: &str) -> Option<HeartbeatRead> {
    if arg.trim() == "none" {
        return Some(HeartbeatRead::Missing);
    }
    let mut w = arg.split_whitespace();
    let appended_at = w.next()?.parse().ok()?;
    let last_uid = w.next()?.parse().ok()?;
    w.next().is_none().then_some(HeartbeatRead::Seen {
        appended_at,
        last_uid,
    })
}

/// A section announced as `@@NAME N1 .. Nk` followed by exactly a byte
/// count of content: the header's k numbers (the count is the 4th for a
/// file chunk, the 1st for the journal) and those bytes.
fn take_chunk<'a>(
    out: &'a [u8],
    pos: &mut usize,
    n: usize,
    line: &str,
    arg: &str,
    k: usize,
) -> Result<(Vec<u64>, &'a [u8]), ProbeParseError> {
    let v: Vec<u64> = arg
        .split_whitespace()
        .map(|x| x.parse().map_err(|_| bad(n, "log header", line)))
        .collect::<Result<_, _>>()?;
    if v.len() != k {
        return Err(bad(n, "log header", line));
    }
    let count = if k == 5 { v[3] } else { v[0] };
    let end = usize::try_from(count)
        .ok()
        .and_then(|c| pos.checked_add(c))
        .filter(|&e| e <= out.len())
        .ok_or(ProbeParseError::Truncated(
            "log chunk shorter than announced",
        ))?;
    let bytes = &out[*pos..end];
    *pos = end;
    Ok((v, bytes))
}

/// The chunk's whole lines and how many of its bytes they span: a partial
/// first line (the read was cut) is dropped; an unfinished last line (being
/// written) is left for the next read, which starts where it starts.
fn whole_lines(bytes: &[u8], partial_first: bool) -> (String, usize) {
    let from = if partial_first {
        match bytes.iter().position(|&b| b == b'\n') {
            Some(i) => i + 1,
            None => return (String::new(), bytes.len()),
        }
    } else {
        0
    };
    let upto = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map(|i| i + 1)
        .filter(|&e| e >= from)
        .unwrap_or(from);
    (
        String::from_utf8_lossy(&bytes[from..upto]).into_owned(),
        upto,
    )
}

pub fn parse(out: &[u8]) -> Result<ProbeReport, ProbeParseError> {
    let mut r = ProbeReport::default();
    let mut pos = 0usize;
    let mut lineno = 0usize;
    let mut section = String::new();
    let mut svc_section = String::new();
    let mut saw_end = false;
    match next_line(out, &mut pos) {
        Some(h) if h == "@@probe 1" => {}
        other => return Err(ProbeParseError::NoHeader(other.unwrap_or_default())),
    }
    while let Some(line) = next_line(out, &mut pos) {
        lineno += 1;
        let n = lineno + 1;
        if let Some(head) = line.strip_prefix("@@") {
            let mut w = head.splitn(2, ' ');
            let name = w.next().unwrap_or("");
            let arg = w.next().unwrap_or("");
            if name == "end" {
                saw_end = true;
                break;
            }
            section_header(&mut r, out, &mut pos, n, &line, name, arg)?;
            section = name.to_string();
            continue;
        }
        section_line(&mut r, &section, &mut svc_section, n, &line)?;
    }
    if !saw_end {
        return Err(ProbeParseError::Truncated("no @@end marker"));
    }
    if r.now == 0 {
        return Err(ProbeParseError::Truncated("no clock line"));
    }
    Ok(r)
}

/// The next line of `out` from `pos` (lossy UTF-8), `pos` moved past it.
fn next_line(out: &[u8], pos: &mut usize) -> Option<String> {
    if *pos >= out.len() {
        return None;
    }
    let end = out[*pos..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| *pos + i)
        .unwrap_or(out.len());
    let line = String::from_utf8_lossy(&out[*pos..end]).into_owned();
    *pos = end + 1;
    Some(line)
}

/// An `@@NAME ARG` line: a one-line fact, or the header of a byte chunk
/// (the log, the journal) read from `out` at `pos`.
fn section_header(
    r: &mut ProbeReport,
    out: &[u8],
    pos: &mut usize,
    n: usize,
    line: &str,
    name: &str,
    arg: &str,
) -> Result<(), ProbeParseError> {
    match name {
        "now" => r.now = arg.trim().parse().map_err(|_| bad(n, "clock", line))?,
        "syncdir" => r.sync_dir = Some(arg.to_string()),
        "syncserver" => r.sync_server = Some(SyncServerCheck::default()),
        "nolog" => r.log_error = Some(arg.to_string()),
        "shutdown" => r.shutdown = Some(arg.to_string()),
        "heartbeat" => {
            r.heartbeat = Some(parse_heartbeat(arg).ok_or_else(|| bad(n, "heartbeat", line))?)
        }
        "tz" => r.zone = HostZone::parse(arg),
        "log" | "logrotated" => {
            let (header, bytes) = take_chunk(out, pos, n, line, arg, 5)?;
            let [inode, size, start, count, partial] = header[..] else {
                return Err(bad(n, "log header", line));
            };
            if size < start || count > size - start || partial > 1 {
                return Err(bad(n, "log header", line));
            }
            let (text, used) = whole_lines(bytes, partial == 1);
            let chunk = r.log.get_or_insert_with(LogChunk::default);
            chunk.text.push_str(&text);
            if name == "log" {
                chunk.cursor = LogCursor {
                    inode,
                    offset: start + used as u64,
                    journal: None,
                };
            }
        }
        "journal" => {
            let (header, bytes) = take_chunk(out, pos, n, line, arg, 2)?;
            if header[1] > 1 {
                return Err(bad(n, "journal header", line));
            }
            let (lines, _) = whole_lines(bytes, header[1] == 1);
            let (text, cursor) = super::journald::render(&lines);
            r.log = Some(LogChunk {
                cursor: LogCursor {
                    journal: cursor,
                    ..LogCursor::default()
                },
                text,
            });
        }
        _ => {}
    }
    Ok(())
}

/// A line of section `section`.
fn section_line(
    r: &mut ProbeReport,
    section: &str,
    svc_section: &mut String,
    n: usize,
    line: &str,
) -> Result<(), ProbeParseError> {
    match section {
        "version" if r.version.is_none() && line.starts_with("cyrus-imapd") => {
            r.version = Some(line.trim().to_string());
        }
        "conf" => {
            if let Some((k, v)) = line.split_once(':') {
                r.conf.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
        "procs" if !line.trim().is_empty() => {
            r.processes
                .push(parse_proc(line).ok_or_else(|| bad(n, "process", line))?);
        }
        "listen" if !line.trim().is_empty() => r.listening.push(line.trim().to_string()),
        "services" => {
            let t = line.trim();
            if let Some(s) = t.strip_suffix('{') {
                *svc_section = s.trim().to_string();
            } else if t != "}" && !t.is_empty() {
                if let Some(s) = parse_service(svc_section, t) {
                    r.services.push(s);
                }
            }
        }
        "syncdir" => sync_dir_line(r, n, line)?,
        "syncserver" => {
            let c = r.sync_server.get_or_insert_with(Default::default);
            if let Some(e) = line.strip_prefix("endpoint ") {
                c.endpoint = Some(e.to_string());
            } else if let Some(b) = line.strip_prefix("banner ") {
                if b.starts_with("* OK") {
                    c.answered = true;
                    c.banner = Some(b.trim().to_string());
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// A line of the sync directory's section: a queue file (`F`), a channel's
/// oldest entry (`H`), its top entries (`T`), groups (`G`), users (`U`),
/// distinct entries (`D`) and users in all (`V`).
fn sync_dir_line(r: &mut ProbeReport, n: usize, line: &str) -> Result<(), ProbeParseError> {
    if line.starts_with("F\t") {
        r.sync_files.extend(parse_sync_file(n, line)?);
    } else if let Some(rest) = line.strip_prefix("H\t") {
        let (ch, first) = rest.split_once('\t').ok_or_else(|| bad(n, "head", line))?;
        r.oldest_entry.insert(ch.to_string(), first.to_string());
    } else if let Some(rest) = line.strip_prefix("T\t") {
        let f: Vec<&str> = rest.splitn(3, '\t').collect();
        let [ch, count, entry] = f[..] else {
            return Err(bad(n, "pending entry", line));
        };
        let count = count.parse().map_err(|_| bad(n, "pending count", line))?;
        r.pending_top
            .entry(ch.to_string())
            .or_default()
            .push((count, entry.to_string()));
    } else if let Some(rest) = line.strip_prefix("G\t") {
        let f: Vec<&str> = rest.splitn(4, '\t').collect();
        let [ch, count, first, entry] = f[..] else {
            return Err(bad(n, "pending group", line));
        };
        let count = count.parse().map_err(|_| bad(n, "group count", line))?;
        let first = first.parse().map_err(|_| bad(n, "group line", line))?;
        r.pending_groups
            .entry(ch.to_string())
            .or_default()
            .push((count, first, entry.to_string()));
    } else if let Some(rest) = line.strip_prefix("U\t") {
        let f: Vec<&str> = rest.splitn(3, '\t').collect();
        let [ch, count, user] = f[..] else {
            return Err(bad(n, "pending user", line));
        };
        let count = count.parse().map_err(|_| bad(n, "user count", line))?;
        r.pending_users
            .entry(ch.to_string())
            .or_default()
            .push((count, user.to_string()));
    } else if let Some(rest) = line.strip_prefix("D\t") {
        let (ch, count) = rest
            .split_once('\t')
            .ok_or_else(|| bad(n, "distinct", line))?;
        let count = count.parse().map_err(|_| bad(n, "distinct count", line))?;
        r.pending_distinct.insert(ch.to_string(), count);
    } else if let Some(rest) = line.strip_prefix("V\t") {
        let (ch, count) = rest.split_once('\t').ok_or_else(|| bad(n, "users", line))?;
        let count = count.parse().map_err(|_| bad(n, "users count", line))?;
        r.pending_users_total.insert(ch.to_string(), count);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &[u8] = include_bytes!("../../tests/fixtures/probe_master.txt");

    #[test]
    fn process_state_is_read_and_a_stopped_client_is_told() {
        let p = parse_proc("17101  8845  27 T /usr/lib/cyrus/bin/sync_client -r").unwrap();
        assert_eq!((p.pid, p.state.as_str()), (17101, "T"));
        assert_eq!(p.args, "/usr/lib/cyrus/bin/sync_client -r");
        assert!(p.stopped());
        let p = parse_proc("11 1 5 Ss sync_server -C /x").unwrap();
        assert!(!p.stopped() && p.args == "sync_server -C /x");
        // an older probe without STAT: the command is not taken for a state
        let p = parse_proc("11 1 5 master -d").unwrap();
        assert_eq!((p.state.as_str(), p.args.as_str()), ("", "master -d"));
    }

    #[test]
    fn parses_real_master_output() {
        let r = parse(MASTER).unwrap();
        assert!(r
            .version
            .as_deref()
            .unwrap()
            .starts_with("cyrus-imapd 3.6.1"));
        assert_eq!(r.conf["sync_log"], "1");
        assert!(r
            .processes
            .iter()
            .any(|p| p.args.starts_with("sync_client")));
        assert!(r
            .services
            .iter()
            .any(|s| s.section == "DAEMON" && s.name == "syncclient"));
        let sc = r.sync_server.as_ref().unwrap();
        assert!(sc.answered);
        assert!(r.log.as_ref().unwrap().text.contains("sync_client"));
        let log = r.sync_files.iter().find(|f| f.name == "log-run").unwrap();
        assert_eq!(log.channel, "");
        assert_eq!(log.lines, 12);
        assert!(!r.pending_top[""].is_empty());
    }

    #[test]
    fn a_sync_file_gone_between_stat_and_count_is_skipped_not_an_error() {
        // seen on CI: the rolling client unlinked log-run mid-probe
        let text = "@@probe 1\n@@now 5\n@@syncdir /s\n\
                    F\tlog-run\t702 1796266943 1796266942 3631821\t\n\
                    F\tlog\t10 1796266943 0 3631822\t1\n@@end\n";
        let r = parse(text.as_bytes()).unwrap();
        let names: Vec<&str> = r.sync_files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["log"]);
        // a count that is there but not a number is still an error
        let text = text.replace("\t1\n", "\tx\n");
        assert!(matches!(
            parse(text.as_bytes()),
            Err(ProbeParseError::BadLine { .. })
        ));
    }

    #[test]
    fn heartbeat_line_parses_or_is_a_clear_error() {
        let with = |hb: &str| {
            let text = format!("@@probe 1\n@@now 5\n@@heartbeat {hb}\n@@end\n");
            parse(text.as_bytes())
        };
        assert_eq!(
            with("1795915962 4").unwrap().heartbeat,
            Some(HeartbeatRead::Seen {
                appended_at: 1795915962,
                last_uid: 4
            })
        );
        assert_eq!(
            with("none").unwrap().heartbeat,
            Some(HeartbeatRead::Missing)
        );
        for bad in ["", "12", "x y", "1 2 3", "-1 2"] {
            assert!(
                matches!(with(bad), Err(ProbeParseError::BadLine { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(parse(MASTER).unwrap().heartbeat, None);
    }

    #[test]
    fn every_truncation_is_an_error_or_consistent_never_a_panic() {
        for cut in 0..MASTER.len() {
            let _ = parse(&MASTER[..cut]);
        }
        assert!(matches!(
            parse(&MASTER[..MASTER.len() / 2]),
            Err(ProbeParseError::Truncated(_))
        ));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(matches!(parse(b""), Err(ProbeParseError::NoHeader(_))));
        assert!(matches!(
            parse(b"\xff\xfe garbage"),
            Err(ProbeParseError::NoHeader(_))
        ));
        let bad_log = b"@@probe 1\n@@now 5\n@@log 1 10 0 999\nabc\n@@end\n";
        assert!(parse(bad_log).is_err());
        let bad_proc = b"@@probe 1\n@@now 5\n@@procs\nnot a process\n@@end\n";
        assert!(matches!(
            parse(bad_proc),
            Err(ProbeParseError::BadLine { .. })
        ));
        let bad_file = b"@@probe 1\n@@now 5\n@@syncdir /x\nF\tlog\t1 2 3\t3\n@@end\n";
        assert!(parse(bad_file).is_err());
    }

    /// Issue 15: position + announced count must not overflow (a huge count
    /// panicked on the slice before take_chunk used checked_add).
    #[test]
    fn a_huge_announced_count_is_a_clean_error() {
        let max = u64::MAX;
        let near = usize::MAX as u64 - 3;
        for header in [
            format!("@@log 1 {max} 0 {max} 0"),
            format!("@@log 1 {max} 1 {near} 0"),
            format!("@@logrotated 1 {max} 0 {max} 1"),
            format!("@@journal {max} 0"),
            format!("@@journal {near} 1"),
            // over u64: not a number at all
            "@@journal 99999999999999999999999 0".to_string(),
        ] {
            let text = format!("@@probe 1\n@@now 5\n{header}\nabc\n@@end\n");
            match parse(text.as_bytes()) {
                Err(ProbeParseError::Truncated(_)) | Err(ProbeParseError::BadLine { .. }) => {}
                other => panic!("{header}: {other:?}"),
            }
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x9e3779b97f4a7c15u64;
        for _ in 0..2000 {
            let len = (seed % 300) as usize;
            let mut v = b"@@probe 1\n".to_vec();
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                v.push(b"@\n\t 0123456789logendF:H T"[(seed % 24) as usize]);
            }
            let _ = parse(&v);
        }
    }
}
