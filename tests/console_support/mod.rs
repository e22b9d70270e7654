//! Realistic console state built from constructed data (no lab): what the
//! snapshot and key tests render. Times are fixed so snapshots are stable.
#![allow(dead_code)]

use cyrdeck::console::app::{Action, App, Effect};
use cyrdeck::console::keymap::{Key, Keymap};
use cyrdeck::console::theme::Theme;
use cyrdeck::cyrus::loglines::{LineKind, LogEvent};
use cyrdeck::cyrus::probe::SyncServerCheck;
use cyrdeck::model::conflicts::{CheckResult, DiffKind, Difference, MessageSide};
use cyrdeck::model::snapshot::StuckEntry;
use cyrdeck::model::snapshot::*;
use cyrdeck::ops::runbook::{RunbookBoard, RunbookRun, StepState};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

/// 2026-11-28 22:30:00 UTC
pub const NOW: i64 = 1_795_905_000;

fn host(name: &str, role: &'static str, port: u16, reachable: bool) -> HostStatus {
    HostStatus {
        name: name.into(),
        role,
        ssh: format!("root@127.0.0.1:{port}"),
        reachable,
        error: (!reachable).then(|| {
            "cannot connect to 127.0.0.2:24321: Connection refused (os error 111)".to_string()
        }),
        data_age_secs: Some(if reachable { 0.4 } else { 95.0 }),
        cyrus_version: Some("cyrus-imapd 3.6.1-Debian-3.6.1-4+deb12u5".into()),
        master_running: true,
        master_pid: Some(17037),
        services: vec![],
        sync_server: Some(SyncServerCheck {
            endpoint: Some("127.0.0.2:24312".into()),
            answered: reachable,
            banner: Some("* OK replica Cyrus sync server 3.6.1".into()),
        }),
        log_error: None,
        log_quiet_secs: None,
        probe_ms: Some(180),
        probe_bytes: Some(6500),
        writes_refused: None,
    }
}

fn event(
    host: &str,
    t: i64,
    kind: LineKind,
    user: Option<&str>,
    mailbox: Option<&str>,
    text: &str,
) -> HostEvent {
    HostEvent {
        host: host.into(),
        event: LogEvent {
            time: Some(t),
            service: "sync_client".into(),
            pid: Some(17101),
            kind,
            user: user.map(Into::into),
            mailbox: mailbox.map(Into::into),
            text: text.into(),
        },
    }
}

/// Pending groups in queue order, hostile names included.
pub fn groups(n: usize) -> Vec<PendingEntry> {
    let fixed = [
        (3, "APPEND user.bob"),
        (1, "MAILBOX user.bob.Sent"),
        (2, "APPEND \"user.alice.Entw&APw-rfe\""),
        (1, "MAILBOX \"user.carol.$(touch .tmp.pwned)\""),
        (5, "SEEN dave user.dave"),
        (1, "QUOTA dave"),
    ];
    let mut v: Vec<PendingEntry> = fixed
        .iter()
        .map(|(c, l)| PendingEntry::from_line(*c, l))
        .collect();
    let mut i = 0;
    while v.len() < n {
        v.push(PendingEntry::from_line(
            1,
            &format!("APPEND user.u{i:06}.INBOX"),
        ));
        i += 1;
    }
    v.truncate(n);
    v
}

/// Give each group its queue file's bounds as the health evaluation does:
/// `log-run` (13 lines, written 22:26:56..22:27:10), then `log`.
pub fn date(groups: &mut [PendingEntry], pending: u64) {
    use cyrdeck::model::queue_age::{written, QueueFile};
    let files = [
        QueueFile {
            name: "log-run".into(),
            lines: 13,
            born: Some(NOW as u64 - 184),
            mtime: NOW as u64 - 170,
        },
        QueueFile {
            name: "log".into(),
            lines: pending - 13,
            born: Some(NOW as u64 - 170),
            mtime: NOW as u64 - 2,
        },
    ];
    let mut line = 1;
    for g in groups.iter_mut() {
        g.written = written(line, &files);
        line += g.count;
    }
}

/// Entries per user over the whole queue, busiest first (the probe's).
pub fn per_user(groups: &[PendingEntry]) -> Vec<(u64, String)> {
    let mut m: std::collections::BTreeMap<String, u64> = Default::default();
    for g in groups {
        if let Some(u) = &g.user {
            *m.entry(u.clone()).or_default() += g.count;
        }
    }
    let mut v: Vec<(u64, String)> = m.into_iter().map(|(u, n)| (n, u)).collect();
    v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    v
}

pub fn report(replica_reachable: bool, queue_groups: usize) -> StatusReport {
    let mut groups = groups(queue_groups);
    let pending: u64 = groups.iter().map(|g| g.count).sum::<u64>() + 1200;
    date(&mut groups, pending);
    let users = per_user(&groups);
    let channel = ChannelStatus {
        channel: String::new(),
        master: "master".into(),
        replica: "replica".into(),
        health: Health::Critical, // the hot loop below
        client: ClientStatus {
            running: true,
            pid: Some(17101),
            age_secs: Some(340),
            restarts_seen: 2,
            backoff_secs: Some(15),
            last_connect_failure: None,
            recent_bailouts: 0,
            last_bailout_at: None,
            state: Some("S".into()),
            secs_since_progress: None,
        },
        queue: QueueStatus {
            pending,
            log_lines: pending - 13,
            log_run_lines: 13,
            files: vec![],
            held: vec![FileStatus {
                name: "held-carol".into(),
                lines: 4,
                bytes: 120,
                mtime: (NOW - 600) as u64,
            }],
            oldest_entry: Some("APPEND user.bob".into()),
            oldest_pending_age_secs: Some(184),
            drain_rate_per_sec: Some(0.0),
            time_to_drain_secs: None,
            log_run_unchanged_secs: None,
            top: groups.iter().take(20).cloned().collect(),
            distinct_entries: groups.len() as u64,
            groups,
            users_total: users.len() as u64,
            users,
        },
        heartbeat: Some(cyrdeck::model::snapshot::HeartbeatStatus {
            user: "cyrdeck-heartbeat".into(),
            master_at: Some(NOW as u64 - 5),
            replica_at: Some(NOW as u64 - 190),
            lag_secs: Some(190),
            beat_age_secs: Some(5),
            stale: false,
        }),
    };
    // in the order stuck_entries() gives: still failing first, then held
    let stuck = vec![
        StuckEntry {
            host: "master".into(),
            channel: None,
            user: Some("bob".into()),
            mailbox: Some("user/bob".into()),
            first_seen: Some(NOW - 420),
            last_seen: Some(NOW - 3),
            attempts: 212,
            last_error: "SYNCERROR: mailbox user.bob: IOERROR opening index: Permission denied"
                .into(),
            held_file: None,
            held_entries: 0,
        },
        StuckEntry {
            host: "master".into(),
            channel: Some(String::new()),
            user: Some("carol".into()),
            mailbox: None,
            first_seen: None,
            last_seen: Some(NOW - 600),
            attempts: 0,
            last_error: String::new(),
            held_file: Some("held-carol".into()),
            held_entries: 4,
        },
    ];
    let events = vec![
        event(
            "replica",
            NOW - 30,
            LineKind::IoError,
            Some("bob"),
            Some("user/bob"),
            "IOERROR: opening /var/spool/cyrus/mail/b/user/bob/cyrus.index: Permission denied",
        ),
        event(
            "master",
            NOW - 20,
            LineKind::BailingOut,
            None,
            None,
            "Error in do_sync(): bailing out! Mailbox does not exist",
        ),
        event(
            "master",
            NOW - 10,
            LineKind::SyncNotice,
            Some("bob"),
            Some("user/bob"),
            "Promoting: MAILBOX user.bob -> USER bob",
        ),
        event(
            "master",
            NOW - 3,
            LineKind::SyncError,
            Some("bob"),
            Some("user/bob"),
            "SYNCERROR: mailbox user.bob: IOERROR opening index: Permission denied",
        ),
    ];
    let mut problems = vec![
        Problem {
            severity: Health::Critical,
            host: Some("master".into()),
            channel: Some(String::new()),
            message: "channel default: sync_client bailed out 212 times in 60s (hot loop: a mailbox may block replication)".into(),
        },
        Problem {
            severity: Health::Warning,
            host: Some("master".into()),
            channel: Some(String::new()),
            message: "channel default: oldest pending entry is 184s old".into(),
        },
    ];
    if !replica_reachable {
        problems.insert(
            0,
            Problem {
                severity: Health::Critical,
                host: Some("replica".into()),
                channel: None,
                message: "replica is unreachable: Connection refused".into(),
            },
        );
    }
    let pair = PairStatus {
        name: "lab".into(),
        health: Health::Critical,
        notes: vec![],
        hosts: vec![
            host("master", "master", 24320, true),
            host("replica", "replica", 24321, replica_reachable),
        ],
        channels: vec![channel],
        problems,
        events,
        stuck,
        failover_max_pending: 100_000,
    };
    StatusReport {
        generated_at: NOW - 1,
        health: Health::Critical,
        exit_code: 2,
        pairs: vec![pair],
        actions: vec![],
    }
}

fn msg(uid: u32, g: char, flags: &[&str]) -> MessageSide {
    MessageSide {
        uid,
        guid: g.to_string().repeat(40),
        flags: flags.iter().map(|s| s.to_string()).collect(),
        modseq: uid as u64 + 10,
    }
}

pub fn check() -> CheckResult {
    let d = |mailbox: &str, kind, uid, master, replica, detail: &str| Difference {
        mailbox: mailbox.into(),
        kind,
        uid,
        master,
        replica,
        detail: detail.into(),
    };
    CheckResult {
        pair: "lab".into(),
        finished_at: NOW - 120,
        mailboxes_checked: 5000,
        errors: vec![],
        // what the check listed on the master (Tab completes from it)
        mailboxes: [
            "user/albert",
            "user/alice",
            "user/alice/Entwürfe",
            "user/alice/Sent Items",
            "user/bob",
            "user/bob/Sent",
        ]
        .map(String::from)
        .to_vec(),
        differences: vec![
            d(
                "user/alice",
                DiffKind::GuidConflict,
                Some(7),
                Some(msg(7, 'a', &[])),
                Some(msg(7, 'b', &["\\Seen"])),
                "same UID, two GUIDs",
            ),
            d(
                "user/alice",
                DiffKind::MissingOnReplica,
                Some(8),
                Some(msg(8, 'c', &["\\Flagged"])),
                None,
                "",
            ),
            d(
                "user/alice",
                DiffKind::FlagsDiffer,
                Some(3),
                Some(msg(3, 'd', &[])),
                Some(msg(3, 'd', &["\\Seen"])),
                "\\Seen only on replica",
            ),
            d(
                "user/bob/Sent",
                DiffKind::MissingOnMaster,
                Some(12),
                None,
                Some(msg(12, 'e', &[])),
                "",
            ),
            d(
                "user/carol/Entwürfe",
                DiffKind::MailboxOnlyOnReplica,
                None,
                None,
                None,
                "created on the replica",
            ),
            d(
                "user/dave",
                DiffKind::UidvalidityDiffers,
                None,
                None,
                None,
                "1795900000 vs 1795907197",
            ),
            d(
                "user/dave/Trash",
                DiffKind::InFlight,
                None,
                None,
                None,
                "3 pending entries cover it",
            ),
        ],
    }
}

pub fn runbook_run() -> RunbookRun {
    let mut run = RunbookRun::new(cyrdeck::ops::resync::SPEC, "lab", "user/bob");
    run.steps[0] =
        StepState::Done("differs: replica: 3 messages, last UID 4; 1 missing, 0 only there".into());
    run.steps[1] = StepState::Running;
    run.output = vec![
        "-- step 1: Compare: mbexamine the mailbox on master and replica".into(),
        "master: 4 messages, last UID 4".into(),
        "replica: 3 messages, last UID 4; 1 missing, 0 only there".into(),
        "-- step 2: Push: sync_client -m MAILBOX on the master (timeout 120 s)".into(),
    ];
    run
}

pub fn app(observe: bool) -> App {
    let board = RunbookBoard {
        available: cyrdeck::ops::registry::available(),
        active: None,
    };
    let mut a = App::new(Keymap::defaults(), vec![], observe, board);
    a.update(Action::Tick(NOW));
    a
}

/// The full realistic state: report, check, a runbook in progress.
pub fn loaded_app(observe: bool) -> App {
    let mut a = app(observe);
    a.update(Action::Report {
        generation: 1,
        report: report(true, 6),
    });
    a.update(Action::Check(check()));
    a.update(Action::Runbook(Box::new(runbook_run())));
    a.update(Action::Doctor(cyrdeck::check::doctor::DoctorReport {
        pair: "lab".into(),
        findings: vec![cyrdeck::model::doctor::Finding {
            host: "master".into(),
            code: "client_in_start",
            problem: "the rolling sync_client runs from START: nobody restarts it when it dies"
                .into(),
            fix: "move it to DAEMON: syncclient cmd=\"sync_client -r\"".into(),
        }],
        errors: vec![],
    }));
    a
}

pub fn key(spec: &str) -> KeyEvent {
    let k = Key::parse(spec).unwrap_or_else(|e| panic!("{e}"));
    let mut mods = k.mods;
    if let KeyCode::Char(c) = k.code {
        if c.is_ascii_uppercase() {
            mods |= KeyModifiers::SHIFT;
        }
    }
    KeyEvent::new(k.code, mods)
}

/// Press keys given as keymap names separated by spaces ("g g", "<C-r>").
pub fn press(app: &mut App, keys: &str) -> Vec<Effect> {
    let mut effects = Vec::new();
    for k in keys.split(' ').filter(|s| !s.is_empty()) {
        effects.extend(app.update(Action::Key(key(k))));
    }
    effects
}

/// Type text literally (into the filter or command line).
pub fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        app.update(Action::Key(KeyEvent::new(
            KeyCode::Char(c),
            KeyModifiers::NONE,
        )));
    }
}

pub fn render(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    t.draw(|f| cyrdeck::views::render(app, &Theme { color: false }, f))
        .expect("draw");
    t
}

/// The screen as plain text lines.
pub fn screen(app: &App, w: u16, h: u16) -> String {
    let t = render(app, w, h);
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// The realistic report turned into a state of issue 17: one channel, its
/// queue and client edited by `f`, problems replaced.
pub fn state(f: impl FnOnce(&mut PairStatus)) -> StatusReport {
    let mut r = report(true, 6);
    f(&mut r.pairs[0]);
    let worst = r.pairs[0]
        .problems
        .iter()
        .fold(Health::Ok, |h, p| Health::worst(h, p.severity));
    r.pairs[0].health = worst;
    r.health = worst;
    r.exit_code = worst.exit_code();
    r
}

fn problem(severity: Health, message: &str) -> Problem {
    Problem {
        severity,
        host: Some("master".into()),
        channel: Some(String::new()),
        message: message.into(),
    }
}

fn empty_queue(p: &mut PairStatus) {
    let q = &mut p.channels[0].queue;
    q.pending = 0;
    q.log_lines = 0;
    q.log_run_lines = 0;
    q.held.clear();
    q.oldest_entry = None;
    q.oldest_pending_age_secs = None;
    q.time_to_drain_secs = None;
    q.top.clear();
    q.groups.clear();
    q.distinct_entries = 0;
    p.stuck.retain(|s| s.held_file.is_none());
}

/// Pending 0 and lag 0 a minute after a hot loop: bail-outs in the last
/// 60 s, the last at 22:29:40.
pub fn recovered() -> StatusReport {
    state(|p| {
        empty_queue(p);
        let c = &mut p.channels[0];
        c.health = Health::Warning;
        c.client.recent_bailouts = 212;
        c.client.last_bailout_at = Some(NOW - 20);
        c.queue.drain_rate_per_sec = Some(41.0);
        if let Some(hb) = &mut c.heartbeat {
            hb.lag_secs = Some(0);
            hb.replica_at = hb.master_at;
        }
        p.stuck.clear();
        p.problems = vec![problem(
            Health::Warning,
            "channel default: recovered (queue empty); sync_client bailed out 212 times in 60s, until 22:29:40",
        )];
    })
}

/// The rolling client SIGSTOPped 3 minutes ago in an observe-mode console
/// with no `supervise`: 1,809 entries pending, the newest beat 25 min old
/// and on the replica (hb lag 0).
pub fn stopped_client() -> StatusReport {
    state(|p| {
        let c = &mut p.channels[0];
        c.health = Health::Critical;
        c.client.state = Some("T".into());
        c.client.secs_since_progress = Some(185);
        c.client.recent_bailouts = 0;
        c.queue.pending = 1809;
        c.queue.log_lines = 1800;
        c.queue.log_run_lines = 9;
        c.queue.held.clear();
        c.queue.oldest_pending_age_secs = Some(185);
        c.queue.log_run_unchanged_secs = Some(185);
        c.queue.drain_rate_per_sec = Some(0.0);
        c.heartbeat = Some(cyrdeck::model::snapshot::HeartbeatStatus {
            user: "cyrdeck-heartbeat".into(),
            master_at: Some(NOW as u64 - 1500),
            replica_at: Some(NOW as u64 - 1500),
            lag_secs: Some(0),
            beat_age_secs: Some(1500),
            stale: true,
        });
        p.stuck.clear();
        p.problems = vec![
            problem(
                Health::Critical,
                "channel default: sync_client 17101 is stopped (process state T: SIGSTOP?), 1809 entries pending; no progress for 3m",
            ),
            problem(
                Health::Warning,
                "channel default: oldest pending entry is 185s old",
            ),
        ];
    })
}

/// bob failed 5 minutes ago and has replicated since; the queue holds the
/// normal trickle, all logged after the last check.
pub fn healed_user() -> StatusReport {
    state(|p| {
        let c = &mut p.channels[0];
        c.health = Health::Ok;
        c.client.recent_bailouts = 0;
        c.queue.pending = 3;
        c.queue.held.clear();
        c.queue.oldest_pending_age_secs = Some(1);
        c.queue.drain_rate_per_sec = Some(38.0);
        c.queue.time_to_drain_secs = Some(0.1);
        if let Some(hb) = &mut c.heartbeat {
            hb.lag_secs = Some(0);
            hb.replica_at = hb.master_at;
        }
        p.stuck.retain(|s| s.held_file.is_none());
        p.stuck[0].last_seen = Some(NOW - 300);
        p.problems.clear();
    })
}

/// A check that found the pair identical at 22:28:00 (2 min before NOW).
pub fn clean_check() -> CheckResult {
    let mut c = check();
    c.differences.retain(|d| d.kind == DiffKind::InFlight);
    c
}

/// A drain after the client was resumed: the queue shrinking over the
/// last samples, rate over the window.
pub fn draining(pending: u64) -> StatusReport {
    state(|p| {
        let c = &mut p.channels[0];
        c.health = Health::Warning;
        c.client.recent_bailouts = 0;
        c.client.secs_since_progress = Some(0);
        c.queue.pending = pending;
        c.queue.held.clear();
        c.queue.oldest_pending_age_secs = Some(200);
        c.queue.drain_rate_per_sec = Some(60.0);
        c.queue.time_to_drain_secs = Some(pending as f64 / 60.0);
        p.stuck.clear();
        p.problems = vec![problem(
            Health::Warning,
            "channel default: oldest pending entry is 200s old",
        )];
    })
}

/// A queue of `distinct` distinct entries of which the probe listed the
/// oldest 500 (the window).
pub fn capped_queue(distinct: u64) -> StatusReport {
    state(|p| {
        let q = &mut p.channels[0].queue;
        q.groups = groups(500);
        q.distinct_entries = distinct;
        q.pending = distinct + 1200;
        date(&mut q.groups, q.pending);
        // the probe counted over the whole queue: bu0690 has 6 entries,
        // all beyond the window
        q.users = per_user(&q.groups);
        q.users.insert(0, (6, "bu0690".into()));
        q.users_total = q.users.len() as u64 + 1845;
    })
}

/// One user busy with every kind of entry (a long kinds list), then
/// others, every entry dated from its queue file.
pub fn busy_queue() -> StatusReport {
    state(|p| {
        let q = &mut p.channels[0].queue;
        let mut g: Vec<PendingEntry> = [
            (40, "APPEND user.bob"),
            (3, "MAILBOX user.bob"),
            (9, "SEEN bob user.bob"),
            (1, "ANNOTATION user.bob"),
            (1, "QUOTA user.bob"),
            (2, "APPEND user.alice.Sent"),
            (
                1,
                "SUB alice user.alice.Archive.2025.Projects.Quarterly-Reports",
            ),
            (5, "APPEND user.dave"),
        ]
        .iter()
        .map(|(c, l)| PendingEntry::from_line(*c, l))
        .collect();
        q.pending = g.iter().map(|x| x.count).sum::<u64>() + 13;
        date(&mut g, q.pending);
        q.distinct_entries = g.len() as u64;
        q.users = per_user(&g);
        q.users_total = q.users.len() as u64;
        q.groups = g;
    })
}

/// A hot loop: 894 identical bail-outs in the last minute between the
/// other lines.
pub fn hot_loop() -> StatusReport {
    state(|p| {
        let mut ev = Vec::new();
        for i in 0..894 {
            ev.push(event(
                "master",
                NOW - 60 + (i * 59 / 893),
                LineKind::BailingOut,
                None,
                None,
                "Error in do_sync(): bailing out! Bad protocol",
            ));
            if i % 300 == 0 {
                ev.push(event(
                    "replica",
                    NOW - 60 + (i * 59 / 893),
                    LineKind::IoError,
                    Some("bob"),
                    Some("user/bob"),
                    "IOERROR: opening index failed: mailbox=<user.bob> Permission denied",
                ));
            }
        }
        ev.push(event(
            "master",
            NOW - 90,
            LineKind::ConnectFailure,
            None,
            None,
            "connect(127.0.0.2) failed: Connection refused",
        ));
        ev.sort_by_key(|e| e.event.time);
        p.events = ev;
    })
}
