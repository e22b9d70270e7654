//! The autopilot's decisions on constructed reports (pure; the actions are
//! proven against the real pair in stuck_lab.rs).

mod console_support;
mod kit;
use kit::ConfigText;

use console_support::*;
use cyrdeck::config::Config;
use cyrdeck::model::snapshot::StuckEntry;
use cyrdeck::ops::autopilot::Autopilot;

fn config(auto: Option<u64>) -> Config {
    let extra = auto.map(|s| format!("auto_quarantine_secs = {s}"));
    ConfigText::new()
        .host("master", "root@127.0.0.1:1", &[])
        .host("replica", "root@127.0.0.2:1", &[])
        .pair(
            "lab",
            "master",
            &[("replica", "")],
            &extra.as_deref().into_iter().collect::<Vec<_>>(),
        )
        .parse()
}

/// The support report at `now`: bob fails with entries pending, carol is
/// held and quiet.
fn report_at(now: i64) -> cyrdeck::model::snapshot::StatusReport {
    let mut r = report(true, 10);
    let shift = now - r.generated_at;
    r.generated_at = now;
    for s in &mut r.pairs[0].stuck {
        s.last_seen = s.last_seen.map(|t| t + shift);
    }
    r
}

#[test]
fn off_by_default_a_failing_user_is_left_to_the_operator() {
    let mut ap = Autopilot::default();
    let cfg = config(None);
    for t in 0..10 {
        assert!(ap.decide(&cfg, &report_at(NOW + t * 30)).is_empty());
    }
}

#[test]
fn auto_quarantine_waits_n_seconds_of_failure_then_acts_once_per_cooldown() {
    let mut ap = Autopilot::default();
    let cfg = config(Some(60));
    assert!(ap.decide(&cfg, &report_at(NOW)).is_empty());
    assert!(ap.decide(&cfg, &report_at(NOW + 30)).is_empty());
    let d = ap.decide(&cfg, &report_at(NOW + 60));
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!((d[0].pair.as_str(), d[0].user.as_str()), ("lab", "bob"));
    assert!(d[0].why.contains("60s"), "{}", d[0].why);
    // its old error lines stay recent: no second action inside the cooldown
    assert!(ap.decide(&cfg, &report_at(NOW + 90)).is_empty());
    // carol is held but not failing: never touched
    assert!(d.iter().all(|d| d.user != "carol"));
}

#[test]
fn recovery_resets_the_clock() {
    let mut ap = Autopilot::default();
    let cfg = config(Some(60));
    assert!(ap.decide(&cfg, &report_at(NOW)).is_empty());
    // bob's errors are old (> 60 s) at NOW+200: not failing any more
    let mut quiet = report_at(NOW + 200);
    for s in &mut quiet.pairs[0].stuck {
        s.last_seen = Some(NOW - 100);
    }
    assert!(ap.decide(&cfg, &quiet).is_empty());
    // failing again: the N seconds start over
    assert!(ap.decide(&cfg, &report_at(NOW + 230)).is_empty());
    assert_eq!(ap.decide(&cfg, &report_at(NOW + 290)).len(), 1);
}

#[test]
fn a_held_user_failing_again_is_requarantined_at_once_even_when_auto_is_off() {
    let mut ap = Autopilot::default();
    let cfg = config(None);
    let mut r = report_at(NOW);
    // bob was quarantined earlier (held file) and his new mail fails again
    r.pairs[0].stuck.push(StuckEntry {
        host: "master".into(),
        channel: Some(String::new()),
        user: Some("bob".into()),
        mailbox: None,
        first_seen: None,
        last_seen: Some(NOW - 300),
        attempts: 0,
        last_error: String::new(),
        held_file: Some("held-bob".into()),
        held_entries: 3,
    });
    let d = ap.decide(&cfg, &r);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].why.contains("held"), "{}", d[0].why);
    // without pending entries for him nothing is done
    let mut ap = Autopilot::default();
    for c in &mut r.pairs[0].channels {
        c.queue.groups.retain(|g| g.user.as_deref() != Some("bob"));
        c.queue.top.retain(|g| g.user.as_deref() != Some("bob"));
    }
    assert!(ap.decide(&cfg, &r).is_empty());
}
