//! Key handling with constructed events: the pure update function.

mod console_support;

use console_support::*;
use cyrdeck::console::app::{Action, Effect, Mode, ViewId};

#[test]
fn tab_number_keys_and_esc_move_between_views() {
    let mut a = loaded_app(false);
    assert_eq!(a.view, ViewId::Overview);
    press(&mut a, "<Tab>");
    assert_eq!(a.view, ViewId::Queue);
    press(&mut a, "<S-Tab> <S-Tab>");
    assert_eq!(a.view, ViewId::Runbooks);
    press(&mut a, "3");
    assert_eq!(a.view, ViewId::Stuck);
    press(&mut a, "<Esc>");
    assert_eq!(a.view, ViewId::Overview);
}

#[test]
fn vim_keys_arrows_chords_and_paging() {
    let mut a = app(false);
    a.update(Action::Report {
        generation: 1,
        report: report(true, 300),
    });
    a.update(Action::Resize { rows: 20 });
    press(&mut a, "2 j j <Down>");
    assert_eq!(a.list(ViewId::Queue).selected, 3);
    press(&mut a, "k <Up>");
    assert_eq!(a.list(ViewId::Queue).selected, 1);
    press(&mut a, "G");
    assert_eq!(a.list(ViewId::Queue).selected, a.rows.queue.len() - 1);
    press(&mut a, "g g");
    assert_eq!(a.list(ViewId::Queue).selected, 0);
    press(&mut a, "<PageDown> <C-d>");
    assert_eq!(a.list(ViewId::Queue).selected, 40);
    press(&mut a, "<PageUp>");
    assert_eq!(a.list(ViewId::Queue).selected, 20);
    // a broken chord: g then j still moves down
    press(&mut a, "g j");
    assert_eq!(a.list(ViewId::Queue).selected, 21);
    press(&mut a, "k k k k k k k k k k k k k k k k k k k k k k k k k");
    assert_eq!(a.list(ViewId::Queue).selected, 0, "clamped at the top");
}

#[test]
fn filter_is_live_regex_inverts_with_bang_and_esc_restores() {
    let mut a = loaded_app(false);
    press(&mut a, "2 /");
    assert!(matches!(a.mode, Mode::Filter { .. }));
    type_text(&mut a, "bob");
    assert_eq!(a.list(ViewId::Queue).matched.len(), 2);
    press(&mut a, "<Enter>");
    assert!(matches!(a.mode, Mode::Normal));
    assert_eq!(a.list(ViewId::Queue).matched.len(), 2);
    // edit: invert
    press(&mut a, "/ <Home>");
    type_text(&mut a, "!");
    assert_eq!(a.list(ViewId::Queue).matched.len(), 4);
    // Esc while editing restores the filter from before the edit
    press(&mut a, "<Esc>");
    assert_eq!(a.list(ViewId::Queue).filter.as_ref().unwrap().text, "bob");
    // a bad regex keeps the last good filter and says why
    press(&mut a, "/");
    type_text(&mut a, "(");
    assert!(
        a.message.as_deref().unwrap_or("").contains("filter"),
        "{:?}",
        a.message
    );
    assert_eq!(a.list(ViewId::Queue).matched.len(), 2);
    press(&mut a, "<Enter> <Esc>");
    assert!(
        a.list(ViewId::Queue).filter.is_none(),
        "Esc clears the filter"
    );
    assert_eq!(a.list(ViewId::Queue).matched.len(), 6);
}

#[test]
fn command_line_switches_views_filters_and_starts_runbooks() {
    let mut a = loaded_app(false);
    press(&mut a, ":");
    type_text(&mut a, "user dave");
    press(&mut a, "<Enter>");
    assert_eq!(a.view, ViewId::Queue);
    assert_eq!(a.list(ViewId::Queue).matched.len(), 1);
    press(&mut a, ":");
    type_text(&mut a, "frobnicate");
    press(&mut a, "<Enter>");
    assert!(a.message.as_deref().unwrap().contains("unknown command"));
    // completion of a mailbox name, then a runbook start
    a.update(Action::Runbook(Box::new({
        let mut r = runbook_run();
        for s in r.steps.iter_mut() {
            *s = cyrdeck::ops::runbook::StepState::Done(String::new());
        }
        r
    })));
    press(&mut a, ":");
    type_text(&mut a, "resync user/alice/E");
    press(&mut a, "<Tab>");
    let eff = press(&mut a, "<Enter>");
    assert_eq!(
        eff,
        vec![Effect::StartRunbook {
            id: "resync".into(),
            pair: "lab".into(),
            target: "user/alice/Entwürfe".into(),
            options: vec![]
        }]
    );
    assert_eq!(a.view, ViewId::Runbooks);
}

#[test]
fn runbook_keys_emit_effects() {
    let mut a = loaded_app(false);
    press(&mut a, "6");
    // step 2 is running: Enter does not start another
    assert!(press(&mut a, "<Enter>").is_empty());
    let mut run = runbook_run();
    run.steps[1] = cyrdeck::ops::runbook::StepState::Done("ok".into());
    a.update(Action::Runbook(Box::new(run)));
    assert_eq!(press(&mut a, "<Enter>"), vec![Effect::RunStep]);
    assert_eq!(press(&mut a, "x"), vec![Effect::AbortRunbook]);
}

#[test]
fn help_opens_and_any_key_closes() {
    let mut a = loaded_app(false);
    press(&mut a, "?");
    assert!(a.help);
    press(&mut a, "?");
    assert!(!a.help);
    press(&mut a, "? 2");
    assert!(!a.help);
    assert_eq!(a.view, ViewId::Queue, "the closing key still acts");
}

#[test]
fn quit_refresh_and_stale_reports() {
    let mut a = loaded_app(false);
    assert_eq!(press(&mut a, "<C-r>"), vec![Effect::Refresh]);
    // an older generation arriving late is dropped
    a.update(Action::Report {
        generation: 0,
        report: report(false, 6),
    });
    assert!(a.data.report.as_ref().unwrap().pairs[0].hosts[1].reachable);
    a.update(Action::Report {
        generation: 2,
        report: report(false, 6),
    });
    assert!(!a.data.report.as_ref().unwrap().pairs[0].hosts[1].reachable);
    assert_eq!(press(&mut a, "q"), vec![Effect::Quit]);
    assert!(a.quit);
}

#[test]
fn log_severity_and_host_filters() {
    let mut a = loaded_app(false);
    press(&mut a, "5");
    assert_eq!(a.list(ViewId::Log).matched.len(), 4);
    press(&mut a, "s");
    assert_eq!(a.list(ViewId::Log).matched.len(), 3, "the notice is hidden");
    press(&mut a, "h");
    assert_eq!(a.log_filter.host.as_deref(), Some("master"));
    assert_eq!(a.list(ViewId::Log).matched.len(), 2);
    press(&mut a, "h");
    assert_eq!(a.log_filter.host.as_deref(), Some("replica"));
    assert_eq!(a.list(ViewId::Log).matched.len(), 1);
    press(&mut a, "h");
    assert_eq!(a.log_filter.host, None);
}

#[test]
fn enter_on_a_stuck_user_shows_its_log_lines() {
    let mut a = loaded_app(false);
    press(&mut a, "3 <Enter>");
    assert_eq!(a.view, ViewId::Log);
    assert_eq!(a.list(ViewId::Log).matched.len(), 3, "bob's lines only");
}

#[test]
fn sparkline_samples_are_kept_per_channel_and_capped() {
    let mut a = app(false);
    for g in 1..=100 {
        a.update(Action::Report {
            generation: g,
            report: report(true, 6),
        });
    }
    let s = &a.data.spark["lab/"];
    assert_eq!(s.len(), cyrdeck::console::app::SPARK_SAMPLES);
}

#[test]
fn check_starts_from_the_conflicts_key_and_the_command_line() {
    let mut a = loaded_app(false);
    press(&mut a, "4");
    let eff = press(&mut a, "c");
    assert_eq!(
        eff,
        vec![Effect::Check {
            pair: "lab".into(),
            scope: Default::default()
        }]
    );
    // one at a time
    assert!(press(&mut a, "c").is_empty());
    assert!(a.message.as_deref().unwrap().contains("already running"));
    a.update(Action::CheckProgress("level 1: listing mailboxes".into()));
    let s = screen(&a, 80, 24);
    assert!(s.contains("Checking… level 1"), "{s}");
    a.update(Action::CheckFailed("replica: connection refused".into()));
    assert!(a.message.as_deref().unwrap().contains("connection refused"));
    press(&mut a, ":");
    type_text(&mut a, "check user/alice/Sent");
    let eff = press(&mut a, "<Enter>");
    assert_eq!(
        eff,
        vec![Effect::Check {
            pair: "lab".into(),
            scope: cyrdeck::check::Scope {
                mailbox: Some("user/alice/Sent".into()),
                user: None
            }
        }]
    );
    a.update(Action::Check(check()));
    assert!(a.data.check_progress.is_none());
    assert_eq!(a.view, ViewId::Conflicts);
}

#[test]
fn the_last_runbook_scrolls_into_view_at_80x24() {
    let mut a = loaded_app(false);
    press(&mut a, "6 G");
    let s = screen(&a, 80, 24);
    let all = cyrdeck::ops::registry::available();
    let last = all.last().unwrap();
    assert!(
        s.contains(&format!("{} <{}>", last.id(), last.target)),
        "{s}"
    );
}

/// Defect 11: console runbooks acted on the first pair whatever pair the
/// operator named.
#[test]
fn runbooks_act_on_the_pair_the_operator_names() {
    let mut a = app(false);
    let mut two = report(true, 2);
    let mut east = two.pairs[0].clone();
    east.name = "east".into();
    two.pairs.push(east);
    a.update(Action::Report {
        generation: 1,
        report: two,
    });
    let start = |a: &mut cyrdeck::console::app::App, line: &str| {
        press(a, ":");
        type_text(a, line);
        press(a, "<Enter>")
    };
    // the failover's target is the pair itself
    assert_eq!(
        start(&mut a, "failover east"),
        vec![Effect::StartRunbook {
            id: "failover".into(),
            pair: "east".into(),
            target: "east".into(),
            options: vec![]
        }]
    );
    a.update(Action::Runbook(Box::new({
        let mut r = runbook_run();
        for s in r.steps.iter_mut() {
            *s = cyrdeck::ops::runbook::StepState::Done(String::new());
        }
        r
    })));
    // a user runbook with two pairs must be told which
    assert!(start(&mut a, "quarantine alice").is_empty());
    assert!(
        a.message.as_deref().unwrap().contains("--pair"),
        "{:?}",
        a.message
    );
    assert_eq!(
        start(&mut a, "quarantine alice --pair east"),
        vec![Effect::StartRunbook {
            id: "quarantine".into(),
            pair: "east".into(),
            target: "alice".into(),
            options: vec![]
        }]
    );
    a.update(Action::Runbook(Box::new({
        let mut r = runbook_run();
        for s in r.steps.iter_mut() {
            *s = cyrdeck::ops::runbook::StepState::Done(String::new());
        }
        r
    })));
    assert!(start(&mut a, "failover west").is_empty());
    assert!(a.message.as_deref().unwrap().contains("no pair \"west\""));
}

#[test]
fn esc_goes_back_the_way_the_operator_came() {
    let mut a = loaded_app(false);
    // Overview -> Enter -> Queue -> (bob's row) Enter -> Log
    press(&mut a, "<Enter>");
    assert_eq!(a.view, ViewId::Queue);
    press(&mut a, "<Enter>");
    assert_eq!(a.view, ViewId::Log);
    assert_eq!(a.list(ViewId::Log).filter.as_ref().unwrap().text, "bob");
    press(&mut a, "<Esc>");
    assert_eq!(a.view, ViewId::Queue, "back to the Queue, not the Overview");
    assert!(
        a.list(ViewId::Log).filter.is_none(),
        "the Enter's filter went"
    );
    press(&mut a, "<Esc>");
    assert_eq!(a.view, ViewId::Overview);
    // a view chosen by number starts no trail: Esc clears, then leaves
    press(&mut a, "3 <Enter>");
    assert_eq!(a.view, ViewId::Log);
    press(&mut a, "<Esc>");
    assert_eq!(a.view, ViewId::Stuck);
    press(&mut a, "5 /");
    type_text(&mut a, "carol");
    press(&mut a, "<Enter> <Esc>");
    assert_eq!(a.view, ViewId::Log);
    assert!(a.list(ViewId::Log).filter.is_none());
    press(&mut a, "<Esc>");
    assert_eq!(a.view, ViewId::Overview);
}

/// The command line's text as the app holds it.
fn command_text(a: &cyrdeck::console::app::App) -> String {
    match &a.mode {
        cyrdeck::console::app::Mode::Command(i) => i.value().to_string(),
        _ => panic!("not on the command line"),
    }
}

#[test]
fn tab_cycles_through_candidates_from_the_checks_inventory_and_esc_clears_them() {
    let mut a = loaded_app(false);
    a.update(Action::Check(check()));
    press(&mut a, ":");
    // `user/al`: alice's INBOX and folders (from the check) and albert
    type_text(&mut a, "resync user/al");
    press(&mut a, "<Tab>");
    assert_eq!(command_text(&a), "resync user/al");
    let cands = a.message.clone().unwrap();
    assert!(
        cands.contains("user/albert") && cands.contains("user/alice/Sent Items"),
        "{cands}"
    );
    press(&mut a, "<Tab>");
    assert_eq!(command_text(&a), "resync user/albert");
    assert!(a.message.as_deref().unwrap().contains("[user/albert]"));
    press(&mut a, "<Tab>");
    assert_eq!(command_text(&a), "resync user/alice");
    press(&mut a, "<Tab>");
    // external form, one separator, names with spaces whole
    assert_eq!(command_text(&a), "resync user/alice/Entwürfe");
    press(&mut a, "<Tab>");
    assert_eq!(command_text(&a), "resync user/alice/Sent Items");
    // typing ends the cycle: Tab completes the new word
    type_text(&mut a, "x");
    press(&mut a, "<Tab>");
    assert_eq!(command_text(&a), "resync user/alice/Sent Itemsx");
    assert_eq!(a.message, None);
    press(&mut a, "<Esc>");
    press(&mut a, ":");
    type_text(&mut a, "check user/b");
    press(&mut a, "<Tab>");
    assert_eq!(command_text(&a), "check user/bob");
    assert!(a.message.is_some(), "user/bob and user/bob/Sent");
    press(&mut a, "<Esc>");
    assert!(matches!(a.mode, cyrdeck::console::app::Mode::Normal));
    assert_eq!(a.message, None, "the candidate line goes with Esc");
    let s = screen(&a, 80, 24);
    assert!(!s.contains("user/bob/Sent"), "{s}");
}

#[test]
fn help_scrolls_with_the_movement_keys_and_other_keys_close_it() {
    let mut a = loaded_app(false);
    a.update(Action::Resize { rows: 18 });
    press(&mut a, "?");
    let s = screen(&a, 80, 24);
    assert!(s.contains("j k scroll · <PgDn> <PgUp> page"), "{s}");
    assert!(s.contains(" 1-19/4"), "{s}");
    assert!(!s.contains(":quit"), "the end is below: {s}");
    press(&mut a, "G");
    assert!(a.help);
    let s = screen(&a, 80, 24);
    assert!(s.contains(":q  :quit"), "{s}");
    press(&mut a, "k");
    assert!(a.help);
    let before = a.help_scroll;
    press(&mut a, "j j j j");
    assert_eq!(a.help_scroll, before + 1, "bounded at the last line");
    press(&mut a, "g g");
    assert_eq!(a.help_scroll, 0);
    press(&mut a, "2");
    assert!(!a.help);
    assert_eq!(a.view, ViewId::Queue);
}

#[test]
fn esc_cancels_a_running_check_and_its_late_reports_are_ignored() {
    let mut a = loaded_app(false);
    press(&mut a, "4 c");
    a.update(Action::CheckProgress(
        "waiting for the queue to drain (3 distinct entries pending) before re-checking 2 mailbox(es): 44s left of 60s".into(),
    ));
    let s = screen(&a, 80, 24);
    assert!(
        s.contains("44s left of 60s") && s.contains("Esc cancels"),
        "{s}"
    );
    assert_eq!(press(&mut a, "<Esc>"), vec![Effect::CancelCheck]);
    assert!(a.data.check_progress.is_none());
    assert_eq!(a.message.as_deref(), Some("check cancelled"));
    assert_eq!(a.view, ViewId::Conflicts);
    a.update(Action::CheckProgress("re-checking 2 mailbox(es)".into()));
    a.update(Action::CheckFailed("aborted".into()));
    assert!(a.data.check_progress.is_none());
    assert_eq!(a.message.as_deref(), Some("check cancelled"));
    // with no check running Esc goes back as before
    assert!(press(&mut a, "<Esc>").is_empty());
    assert_eq!(a.view, ViewId::Overview);
}
