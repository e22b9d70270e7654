//! The registry of every command cyrdeck sends to a host, by name: the
//! inline scripts (cyrus/ and ops/ own their bodies) and the Cyrus tools,
//! each with the argument shapes it is sent with. Least privilege rests on
//! it (remote/helpers.rs: sudo mode's helpers, `cyrdeck sudoers`); the
//! connections are given it (remote/host.rs).

use crate::remote::helpers::{read, write, Body, Helper, Interp, Pattern, Pin::*, RunAs};

use crate::cyrus::{doctor, inventory, probe};
use crate::ops::{failover, heartbeat, pair_lock, restart, stuck};

/// Every command cyrdeck sends, and the argument shapes it sends them with.
pub fn all() -> &'static [Helper] {
    static ALL: std::sync::OnceLock<Vec<Helper>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        let mut v = scripts_as_cyrus();
        v.extend(scripts_changing_roles());
        v.extend(tools());
        v
    })
}

fn script(
    name: &'static str,
    interp: Interp,
    body: &'static str,
    run_as: RunAs,
    patterns: Vec<Pattern>,
) -> Helper {
    Helper {
        name,
        body: Body::Script(interp, body),
        run_as,
        patterns,
    }
}

fn tool(name: &'static str, patterns: Vec<Pattern>) -> Helper {
    Helper {
        name,
        body: Body::Tool,
        run_as: RunAs::Cyrus,
        patterns,
    }
}

/// The scripts that read Cyrus's state, and the queue and lock writers
/// (run as cyrus).
fn scripts_as_cyrus() -> Vec<Helper> {
    vec![
        script(
            "probe",
            Interp::Sh,
            probe::SCRIPT,
            RunAs::Cyrus,
            vec![read(&[Lit("cyrdeck-probe"), Conf, CyrusConf, BinDir])],
        ),
        // doctor.sh takes BINDIR as its $0
        script(
            "doctor",
            Interp::Sh,
            doctor::SCRIPT,
            RunAs::Cyrus,
            vec![read(&[BinDir, Conf, CyrusConf])],
        ),
        script(
            "inventory",
            Interp::Perl,
            inventory::SCRIPT,
            RunAs::Cyrus,
            vec![read(&[Conf, BinDir])],
        ),
        script(
            "stuck-read",
            Interp::Sh,
            stuck::READERS,
            RunAs::Cyrus,
            vec![read(&[Lit("cyrdeck-read")])],
        ),
        // reach.bash takes the host it dials as $0
        script(
            "reach",
            Interp::Bash,
            failover::precheck::REACH,
            RunAs::Cyrus,
            vec![read(&[])],
        ),
        script(
            "pair-lock",
            Interp::Sh,
            pair_lock::SCRIPT,
            RunAs::Cyrus,
            vec![
                read(&[Lit("cyrdeck-lock"), Lit("read"), Conf]),
                write(&[Lit("cyrdeck-lock"), Lit("acquire"), Conf]),
                write(&[Lit("cyrdeck-lock"), Lit("release"), Conf]),
                write(&[Lit("cyrdeck-lock"), Lit("break"), Conf]),
            ],
        ),
        script(
            "quarantine",
            Interp::Sh,
            stuck::SCRIPT,
            RunAs::Cyrus,
            vec![write(&[Lit("cyrdeck-quarantine"), Conf, BinDir])],
        ),
        script(
            "release",
            Interp::Sh,
            stuck::RELEASE_SCRIPT,
            RunAs::Cyrus,
            vec![write(&[Lit("cyrdeck-release")])],
        ),
        script(
            "heartbeat",
            Interp::Sh,
            heartbeat::SCRIPT,
            RunAs::Cyrus,
            vec![write(&[Lit("cyrdeck-heartbeat"), Conf, BinDir])],
        ),
        script(
            "start-client",
            Interp::Sh,
            restart::START_DETACHED,
            RunAs::Cyrus,
            vec![write(&[
                Lit("cyrdeck-start"),
                Tool("sync_client"),
                Lit("-C"),
                Conf,
            ])],
        ),
    ]
}

/// The script that moves the master role (root: it edits imapd.conf and
/// cyrus.conf and signals Cyrus master) and the soft UID policy's.
fn scripts_changing_roles() -> Vec<Helper> {
    vec![
        // edits imapd.conf/cyrus.conf (root's files on a Debian host)
        // and signals Cyrus master: the one helper run as root, and
        // only for the host's own config files
        script(
            "failover",
            Interp::Sh,
            failover::SCRIPT,
            RunAs::Root,
            vec![
                write(&[Lit("cyrdeck-failover"), Lit("stop-writes"), Conf, CyrusConf]),
                write(&[
                    Lit("cyrdeck-failover"),
                    Lit("start-writes"),
                    Conf,
                    CyrusConf,
                ]),
                write(&[
                    Lit("cyrdeck-failover"),
                    Lit("replay-leftovers"),
                    Conf,
                    CyrusConf,
                ]),
                write(&[Lit("cyrdeck-failover"), Lit("stop-client"), Conf, CyrusConf]),
                write(&[Lit("cyrdeck-failover"), Lit("end-client"), Conf, CyrusConf]),
                write(&[
                    Lit("cyrdeck-failover"),
                    Lit("become-master"),
                    Conf,
                    CyrusConf,
                ]),
                write(&[
                    Lit("cyrdeck-failover"),
                    Lit("archive-queue"),
                    Conf,
                    CyrusConf,
                ]),
                // replace-replica: a channel added / retired
                write(&[Lit("cyrdeck-failover"), Lit("add-channel"), Conf, CyrusConf]),
                write(&[
                    Lit("cyrdeck-failover"),
                    Lit("retire-channel"),
                    Conf,
                    CyrusConf,
                ]),
            ],
        ),
        // reintegrate's soft UID policy: message files read on the old
        // master, added to the new one (and `reconstruct` run) there
        script(
            "spool",
            Interp::Perl,
            crate::ops::hard_failover::soft_uid::SCRIPT,
            RunAs::Cyrus,
            vec![
                read(&[Lit("fetch"), Conf, BinDir]),
                write(&[Lit("inject"), Conf, BinDir]),
            ],
        ),
    ]
}

/// The Cyrus tools and system commands sent as they are.
fn tools() -> Vec<Helper> {
    vec![
        tool("sync_reset", vec![write(&[Lit("-C"), Conf])]),
        tool("mbexamine", vec![read(&[Lit("-C"), Conf])]),
        tool("sync_client", vec![write(&[Lit("-C"), Conf])]),
        tool("unexpunge", vec![write(&[Lit("-C"), Conf])]),
        // a spinning sync_server (a cyrus process) ended by the release
        Helper {
            name: "kill",
            body: Body::System("/usr/bin/kill"),
            run_as: RunAs::Cyrus,
            patterns: vec![write(&[Lit("-KILL")])],
        },
    ]
}
