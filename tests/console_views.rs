//! Snapshot tests of every console view at 80x24 and 160x48 with realistic
//! constructed state (insta; review changes with `cargo insta review` or
//! INSTA_UPDATE=always), and the five on-call questions within 3 keys.

mod console_support;

use console_support::*;
use cyrdeck::console::app::Action;

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

fn snap(name: &str, app: &cyrdeck::console::app::App) {
    for (w, h) in SIZES {
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), screen(app, w, h));
    }
}

#[test]
fn overview() {
    snap("overview", &loaded_app(false));
}

#[test]
fn overview_before_first_refresh() {
    snap("overview_waiting", &app(false));
}

#[test]
fn overview_replica_unreachable_in_observe_mode() {
    let mut a = app(true);
    a.update(Action::Report {
        generation: 1,
        report: report(false, 6),
    });
    snap("overview_unreachable_ro", &a);
}

#[test]
fn queue() {
    let mut a = loaded_app(false);
    press(&mut a, "2 j");
    snap("queue", &a);
}

#[test]
fn queue_filtered() {
    let mut a = loaded_app(false);
    press(&mut a, "2 /");
    type_text(&mut a, "!bob");
    snap("queue_filter_typing", &a);
    press(&mut a, "<Enter>");
    snap("queue_filtered", &a);
}

#[test]
fn stuck() {
    let mut a = loaded_app(false);
    press(&mut a, "3");
    snap("stuck", &a);
}

#[test]
fn conflicts_list_and_mailbox_detail() {
    let mut a = loaded_app(false);
    press(&mut a, "4");
    snap("conflicts", &a);
    press(&mut a, "<Enter>");
    snap("conflicts_detail", &a);
}

#[test]
fn conflicts_before_any_check() {
    let mut a = app(false);
    a.update(Action::Report {
        generation: 1,
        report: report(true, 6),
    });
    press(&mut a, "4");
    snap("conflicts_unchecked", &a);
}

#[test]
fn log() {
    let mut a = loaded_app(false);
    press(&mut a, "5");
    snap("log", &a);
    press(&mut a, "s");
    snap("log_errors_only", &a);
}

#[test]
fn runbooks() {
    let mut a = loaded_app(false);
    press(&mut a, "6");
    snap("runbooks", &a);
}

#[test]
fn runbooks_observe_mode() {
    let mut a = loaded_app(true);
    press(&mut a, "6");
    snap("runbooks_ro", &a);
}

#[test]
fn help_overlay() {
    let mut a = loaded_app(false);
    press(&mut a, "5 ?");
    snap("help_log", &a);
}

#[test]
fn command_line_completion() {
    let mut a = loaded_app(false);
    press(&mut a, ":");
    type_text(&mut a, "resync user/b");
    press(&mut a, "<Tab>");
    snap("command_line", &a);
}

/// The five on-call questions, each answered within 3 keystrokes of launch
/// on 80x24.
#[test]
fn five_questions_within_three_keys_at_80x24() {
    let launch = loaded_app(false);
    let s = screen(&launch, 80, 24);
    // 1. is replication flowing (0 keys)
    assert!(s.contains("channel default → replica: NOT FLOWING"), "{s}");
    // 2. how far behind (0 keys)
    assert!(s.contains("lag 3m"), "{s}");
    // 5. is it safe to fail over now (0 keys)
    assert!(s.contains("failover now: NOT SAFE"), "{s}");
    // 3. what is stuck and why (1 key)
    let mut a = loaded_app(false);
    press(&mut a, "3");
    let s = screen(&a, 80, 24);
    assert!(s.contains("bob") && s.contains("Permission"), "{s}");
    assert!(s.contains("carol") && s.contains("held-c"), "{s}");
    // 4. is the pair identical (1 key)
    let mut a = loaded_app(false);
    press(&mut a, "4");
    let s = screen(&a, 80, 24);
    assert!(s.contains("6 differences"), "{s}");
}
