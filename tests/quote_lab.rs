//! The remote command builder through the lab's REAL sshd: arbitrary
//! arguments (quotes, `$()`, backticks, `;`, newlines, NUL, leading `-`,
//! non-ASCII, 255+ bytes) sent with `HostConnection::exec` arrive at a
//! helper on the host as exactly the argv that was meant — through sshd, the
//! lab's ForceCommand recorder and the login shell — or the exec is refused
//! with a clear error before anything is sent (NUL). No payload ever runs.
//! Cases: CYRDECK_QUOTE_LAB_CASES (default 128: one SSH exec each).

mod common;
mod hostile_args;

use common::*;
use cyrdeck::remote::{HostConnection, RemoteCommand};
use hostile_args::{argument, judge, marker, printing_argv, received};
use proptest::prelude::*;
use std::sync::{Arc, OnceLock};

fn cases() -> u32 {
    std::env::var("CYRDECK_QUOTE_LAB_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128)
}

struct Remote {
    rt: tokio::runtime::Runtime,
    conn: Arc<HostConnection>,
}

fn remote() -> &'static Remote {
    static R: OnceLock<Remote> = OnceLock::new();
    R.get_or_init(|| {
        let cfg = Arc::new(config());
        let conns = cyrdeck::poll::Poller::new(cfg, true).connections();
        Remote {
            rt: rt(),
            conn: conns["replica"].clone(),
        }
    })
}

/// What the host received as argv, or the transport's refusal.
fn arrives(args: &[String]) -> Result<Vec<Vec<u8>>, String> {
    let r = remote();
    let out =
        r.rt.block_on(r.conn.exec(&RemoteCommand::read(printing_argv(args))))
            .map_err(|e| e.to_string())?;
    assert_eq!(out.exit_status, Some(0), "{out:?}");
    Ok(received(&out.stdout, args.len()))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_argument_arrives_over_ssh_exactly_or_is_refused(
        args in prop::collection::vec(argument(), 0..5)
    ) {
        judge(&args, arrives(&args))?;
    }
}

#[test]
fn a_long_hostile_argument_arrives_over_ssh() {
    let long = "é'$(x)`;\n-".repeat(1500);
    assert_eq!(
        arrives(std::slice::from_ref(&long)).unwrap(),
        vec![long.into_bytes()]
    );
    assert!(!marker().exists());
}
