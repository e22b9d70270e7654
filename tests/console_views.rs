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

/// Issue 17's states at the sizes it names.
const ISSUE_SIZES: [(u16, u16); 2] = [(80, 24), (200, 50)];

fn snap17(name: &str, app: &cyrdeck::console::app::App) {
    for (w, h) in ISSUE_SIZES {
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), screen(app, w, h));
    }
}

fn with(report: cyrdeck::model::snapshot::StatusReport) -> cyrdeck::console::app::App {
    let mut a = app(true);
    a.update(Action::Report {
        generation: 1,
        report,
    });
    a
}

#[test]
fn a_filter_matching_nothing_in_a_capped_queue_says_0_of_n_and_the_window() {
    let mut a = with(capped_queue(2345));
    press(&mut a, ":");
    type_text(&mut a, "user bu0690");
    press(&mut a, "<Enter>");
    let s = screen(&a, 80, 24);
    assert!(!s.contains("Queue empty"), "{s}");
    assert!(s.contains("0 of 500 match"), "{s}");
    assert!(s.contains("oldest 500 of 2345"), "{s}");
    // the probe's per-user counts reach beyond the window
    assert!(
        squeeze(&s).contains("6 entries pending for the matching user in the whole queue"),
        "{s}"
    );
    snap17("queue_filter_beyond_window", &a);
    // a user who is in the window AND beyond it: the rows, and the total
    let mut a = with(capped_queue(2345));
    press(&mut a, ":");
    type_text(&mut a, "user bob");
    press(&mut a, "<Enter>");
    let s = screen(&a, 80, 24);
    assert!(s.contains("2 of 500 rows match"), "{s}");
    assert!(
        s.contains("4 entries pending for the matching user in the whole queue"),
        "{s}"
    );
    // no user by that name anywhere
    let mut a = with(capped_queue(2345));
    press(&mut a, ":");
    type_text(&mut a, "user nobody");
    press(&mut a, "<Enter>");
    let s = squeeze(&screen(&a, 80, 24));
    assert!(
        s.contains("no user with entries pending matches it either"),
        "{s}"
    );
}

#[test]
fn the_log_opened_from_a_queue_row_with_no_lines_says_0_of_n() {
    let mut a = loaded_app(false);
    // dave's row: no classified line names him
    press(&mut a, "2 j j j j <Enter>");
    let s = screen(&a, 80, 24);
    assert!(!s.contains("No classified Cyrus lines yet"), "{s}");
    assert!(s.contains("Log: 0 of 4 lines"), "{s}");
    assert!(s.contains("0 of 4 match /dave/"), "{s}");
    snap17("log_from_queue_row_no_lines", &a);
}

#[test]
fn the_headline_follows_current_evidence_after_bail_outs() {
    let a = with(recovered());
    let s = screen(&a, 80, 24);
    assert!(!s.contains("NOT FLOWING"), "{s}");
    assert!(s.contains("recovered; bailed out until 22:29:40"), "{s}");
    snap17("overview_recovered", &a);
}

#[test]
fn a_stopped_client_is_why_nothing_drains_and_a_stale_beat_proves_nothing() {
    let mut a = with(stopped_client());
    a.update(Action::Check(clean_check()));
    let s = screen(&a, 80, 24);
    assert!(s.contains("STOPPED"), "{s}");
    assert!(s.contains("no progress for 3m"), "{s}");
    assert!(!s.contains("lag 0s"), "{s}");
    assert!(s.contains("lag 3m (oldest entry; beat 25m old)"), "{s}");
    assert!(s.contains("failover now: NOT SAFE"), "{s}");
    assert!(!s.contains("identical: yes"), "{s}");
    assert!(
        s.contains("identical: no longer known: 1809 entries pending"),
        "{s}"
    );
    snap17("overview_stopped_client", &a);
}

#[test]
fn a_healed_user_does_not_block_and_the_check_age_shows() {
    let mut a = with(healed_user());
    a.update(Action::Check(clean_check()));
    let s = screen(&a, 80, 24);
    assert!(
        s.contains("failover now: SAFE to replica (check 2m old)"),
        "{s}"
    );
    assert!(
        s.contains("identical: yes, 5000 mailboxes at 22:28:00 (2m ago)"),
        "{s}"
    );
    snap17("overview_healed_user", &a);
}

#[test]
fn a_drain_in_progress_shows_a_steady_rate_and_a_scaled_sparkline() {
    let mut a = app(true);
    for (i, pending) in [1809u64, 1809, 1700, 1400, 1100, 800].iter().enumerate() {
        let mut r = draining(*pending);
        r.generated_at = NOW - 50 + 10 * i as i64;
        a.update(Action::Report {
            generation: i as u64 + 1,
            report: r,
        });
    }
    let s = screen(&a, 80, 24);
    assert!(s.contains("drain 60/s ttd 13s (last 60s)"), "{s}");
    assert!(s.contains("max 1809, last 50s"), "{s}");
    snap17("overview_draining", &a);
}

#[test]
fn a_refused_runbook_says_stopped_not_finished() {
    let mut a = loaded_app(true);
    let mut run = runbook_run();
    run.steps[1] = cyrdeck::ops::runbook::StepState::Refused(
        "refused: sync_client changes state and master is in observe mode".into(),
    );
    a.update(Action::Runbook(Box::new(run)));
    press(&mut a, "6");
    let s = screen(&a, 80, 24);
    assert!(s.contains("stopped: refused in observe mode"), "{s}");
    assert!(!s.contains(" finished "), "{s}");
    snap17("runbook_refused_ro", &a);
}

#[test]
fn help_lists_the_command_line_with_arguments() {
    let mut a = loaded_app(false);
    press(&mut a, "?");
    let s = screen(&a, 200, 50);
    for c in [":user NAME", ":check [USER|MAILBOX]", ":resync MAILBOX"] {
        assert!(s.contains(c), "{c}:\n{s}");
    }
    snap17("help_overview", &a);
}

/// Issue 12: the newest reintegrate report's GUID conflicts (one renumbered
/// on both sides, one whose seen UID was kept, one not copied back yet)
/// and the check's, in one panel under the check's table.
#[test]
fn conflicts_with_a_reintegrate_report() {
    use cyrdeck::check::guid_conflicts::{from_report, GuidConflict};
    use cyrdeck::ops::hard_failover::divergence::{Clash, Divergence};
    let clash = |uid, o: char, n: char, now| Clash {
        mailbox: "user/alice".into(),
        uid,
        old_guid: o.to_string().repeat(40),
        new_guid: n.to_string().repeat(40),
        uids_now: now,
        seen_on_old: false,
        seen_on_new: uid == 42,
    };
    let d = Divergence {
        clashes: vec![
            clash(41, '1', '2', Some((45, 46))),
            clash(42, '3', '4', Some((42, 47))),
            clash(43, '5', '6', None),
        ],
        ..Default::default()
    };
    let saved: Vec<GuidConflict> = from_report("lab", "20261202T140000-4242", &d);
    let mut a = loaded_app(false);
    a.update(Action::GuidConflicts(saved));
    press(&mut a, "4");
    for (w, h) in [(80, 24), (200, 50)] {
        insta::assert_snapshot!(format!("conflicts_reintegrate_{w}x{h}"), screen(&a, w, h));
    }
    assert_eq!(a.guid_conflicts().len(), 4);
}

/// A screen's rows joined with the borders taken out, so a sentence the
/// panel wrapped reads whole.
fn squeeze(s: &str) -> String {
    s.lines()
        .map(|l| l.trim_matches(|c| c == '│' || c == ' '))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_queue_shows_each_rows_age_explains_its_columns_and_does_not_cut_kinds() {
    let mut a = with(busy_queue());
    press(&mut a, "2");
    let s = screen(&a, 80, 24);
    let row = |s: &str| {
        s.lines()
            .find(|l| l.contains("~3m"))
            .unwrap_or("")
            .to_string()
    };
    // at 80 columns kinds take up to a third of the row; the rest is in
    // the selected row's panel
    assert!(row(&s).contains("APPEND,MAILBOX,SEEN,ANN…"), "{s}");
    assert!(
        s.contains("kinds APPEND,MAILBOX,SEEN,ANNOTATION,QUOTA"),
        "{s}"
    );
    let wide = screen(&a, 200, 50);
    assert!(
        row(&wide).contains("APPEND,MAILBOX,SEEN,ANNOTATION,QUOTA 54"),
        "{wide}"
    );
    assert!(s.contains("#: place in the queue, 1 syncs next"), "{s}");
    assert!(s.contains("age: estimated from its file"), "{s}");
    // bob's first entry: line 1 of log-run, born 3m4s before the report
    assert!(s.contains("~3m"), "{s}");
    // the selected row says where its age comes from
    assert!(
        squeeze(&s).contains("line 1 of 13 in log-run, written between 22:26:56 and 22:27:10"),
        "{s}"
    );
    snap17("queue_ages", &a);
    // the mailbox column takes what the terminal gives
    assert!(
        wide.contains("user/alice/Archive/2025/Projects/Quarterly-Reports"),
        "{wide}"
    );
}

#[test]
fn the_log_groups_identical_lines_and_shows_the_newest_time() {
    let mut a = with(hot_loop());
    press(&mut a, "5");
    let s = screen(&a, 80, 24);
    assert!(s.contains("×894"), "{s}");
    assert!(s.contains("newest 22:29:59"), "{s}");
    assert!(s.contains("898 lines, 3 rows"), "{s}");
    assert!(s.contains("×N: N identical lines, the newest shown"), "{s}");
    assert!(
        squeeze(&s).contains("894 identical lines, 22:29:00 to 22:29:59"),
        "{s}"
    );
    snap17("log_grouped", &a);
}

#[test]
fn the_help_scrolls_at_80x24() {
    let mut a = loaded_app(false);
    press(&mut a, "?");
    snap17("help_scroll_top", &a);
    press(&mut a, "G");
    let s = screen(&a, 80, 24);
    assert!(s.contains(":q  :quit"), "{s}");
    snap17("help_scroll_end", &a);
}

#[test]
fn the_consoles_check_counts_down_its_wait_and_says_esc_cancels() {
    let mut a = loaded_app(false);
    press(&mut a, "c");
    a.update(Action::CheckProgress(
        "waiting for the queue to drain (12 distinct entries pending) before re-checking 3 mailbox(es): 44s left of 60s".into(),
    ));
    let s = screen(&a, 80, 24);
    assert!(s.contains("Esc cancels"), "{s}");
    snap17("check_waiting", &a);
}

#[test]
fn tab_candidates_show_the_one_on_the_line() {
    let mut a = loaded_app(false);
    a.update(Action::Check(check()));
    press(&mut a, "1 :");
    type_text(&mut a, "resync user/al");
    press(&mut a, "<Tab> <Tab> <Tab>");
    let s = screen(&a, 80, 24);
    assert!(s.contains("Tab 2/4: user/albert  [user/alice]"), "{s}");
    snap17("command_line_cycling", &a);
}

/// The check `cyrdeck check` recorded, as the console reads it at start.
fn saved(c: &cyrdeck::model::conflicts::CheckResult) -> Action {
    Action::SavedChecks(vec![cyrdeck::check::last::LastCheck::of(c)])
}

/// Issue 30 (4): "identical: NO (4 Conflicts)" from a saved check led to a
/// Conflicts view that said no check had run: it shows the saved counts.
#[test]
fn the_conflicts_view_shows_a_saved_checks_counts() {
    let mut a = with(healed_user());
    a.update(saved(&check()));
    let s = screen(&a, 120, 30);
    assert!(s.contains("identical: NO"), "{s}");
    press(&mut a, "4");
    let s = screen(&a, 120, 30);
    assert!(!s.contains("No integrity check has run"), "{s}");
    assert!(s.contains("last whole-pair check saved at"), "{s}");
    assert!(
        s.contains("by kind:") && s.contains("guid_conflict 1"),
        "{s}"
    );
}

/// Issue 30 (4): entries held by a quarantine have not reached the replica:
/// a clean check before them proves nothing now ("identical: yes (saved)"
/// was shown beside held files).
#[test]
fn held_entries_void_a_clean_check() {
    let mut r = healed_user();
    r.pairs[0].channels[0]
        .queue
        .held
        .push(cyrdeck::model::snapshot::FileStatus {
            name: "held-carol".into(),
            lines: 4,
            bytes: 120,
            mtime: 0,
        });
    let mut a = with(r);
    a.update(saved(&clean_check()));
    let s = screen(&a, 200, 50);
    assert!(
        s.contains(
            "identical: no longer known: entries held by a quarantine (1 held file(s) for replica)"
        ),
        "{s}"
    );
    assert!(!s.contains("identical: yes"), "{s}");
    assert!(!s.contains("failover now: SAFE"), "{s}");
}

#[test]
fn a_recorded_check_answers_failover_with_no_key_and_says_its_age() {
    let mut a = with(healed_user());
    a.update(saved(&clean_check()));
    let s = screen(&a, 80, 24);
    assert!(
        s.contains("failover now: SAFE to replica (saved check 2m old)"),
        "{s}"
    );
    assert!(
        s.contains("identical: yes, 5000 mailboxes at 22:28:00 (2m ago, saved)"),
        "{s}"
    );
    snap17("overview_saved_check", &a);
    // a check run in this console since is the newer one: it is shown
    let mut own = clean_check();
    own.finished_at += 60;
    a.update(Action::Check(own));
    let s = screen(&a, 80, 24);
    assert!(s.contains("failover now: SAFE to replica (check "), "{s}");
    assert!(s.contains("at 22:29:00"), "{s}");
    assert!(!s.contains("saved"), "{s}");
    // a recorded check with differences: NOT SAFE, and how many
    let mut a = with(healed_user());
    a.update(saved(&check()));
    let s = screen(&a, 80, 24);
    assert!(s.contains("failover now: NOT SAFE last check found"), "{s}");
    assert!(s.contains("identical: NO: "), "{s}");
}

#[test]
fn a_recorded_check_is_voided_by_a_backlog_like_the_consoles_own() {
    let mut a = with(stopped_client());
    a.update(saved(&clean_check()));
    let s = screen(&a, 80, 24);
    assert!(s.contains("failover now: NOT SAFE"), "{s}");
    assert!(!s.contains("identical: yes"), "{s}");
    assert!(
        s.contains("identical: no longer known: 1809 entries pending"),
        "{s}"
    );
    // the client running again but the backlog stalled: UNPROVEN, not SAFE
    let mut r = stopped_client();
    for c in &mut r.pairs[0].channels {
        c.client.state = None;
    }
    let mut a = with(r);
    a.update(saved(&clean_check()));
    let s = screen(&a, 80, 24);
    assert!(!s.contains("failover now: SAFE"), "{s}");
    assert!(!s.contains("identical: yes"), "{s}");
}

/// A fleet: the pair in trouble first, whatever its name, and the count
/// per health above the pairs (those below the screen's edge included).
#[test]
fn a_fleet_overview_puts_the_worst_pair_first_and_counts_them_all() {
    let ok = healed_user().pairs[0].clone();
    let bad = stopped_client().pairs[0].clone();
    let mut r = healed_user();
    r.pairs = (0..20)
        .map(|i| {
            let mut p = if i == 13 { bad.clone() } else { ok.clone() };
            p.name = format!("p{i:02}");
            p.health = if i == 13 {
                cyrdeck::model::snapshot::Health::Critical
            } else {
                cyrdeck::model::snapshot::Health::Ok
            };
            p
        })
        .collect();
    let a = with(r);
    let s = screen(&a, 80, 24);
    assert!(s.contains("fleet: 20 pairs  1 CRITICAL (p13) 19 OK"), "{s}");
    let first = s.lines().find(|l| l.contains("pair p")).unwrap_or("");
    assert!(first.contains("pair p13 CRITICAL"), "{s}");
    assert!(s.find("pair p13").unwrap() < s.find("pair p00").unwrap_or(usize::MAX));
    snap17("overview_fleet", &a);
}

#[test]
fn a_pair_with_two_replicas_shows_each_channel_with_its_own_client_and_queue() {
    let mut r = healed_user();
    let p = &mut r.pairs[0];
    let mut h = p
        .hosts
        .iter()
        .find(|h| h.role == "replica")
        .expect("a replica host")
        .clone();
    h.name = "replica2".into();
    p.hosts.push(h);
    let mut c = p.channels[0].clone();
    c.replica = "replica2".into();
    c.channel = "replica2".into();
    c.queue.pending = 240;
    c.client.pid = Some(17102);
    p.channels.push(c);
    let a = with(r);
    let s = screen(&a, 80, 24);
    // each channel on its own lines, with its own client and queue
    assert!(
        s.contains("channel default → replica: flowing  client 17101"),
        "{s}"
    );
    assert!(
        s.contains("channel replica2 → replica2: flowing  client 17102"),
        "{s}"
    );
    assert!(s.contains("pending 240"), "{s}");
    snap17("overview_two_replicas", &a);
}

/// Issue 30 (item 8): at 80x24 the Overview showed 1 of 8 problems with no
/// marker. Lines that do not fit are counted, and j scrolls to them.
#[test]
fn an_overview_that_does_not_fit_says_how_much_is_below_and_scrolls() {
    use cyrdeck::model::snapshot::{Health, Problem};
    let mut r = report(true, 6);
    for i in 0..8 {
        r.pairs[0].problems.push(Problem {
            severity: Health::Warning,
            host: Some("master".into()),
            channel: None,
            message: format!("planted problem number {i}"),
        });
    }
    r.pairs[0].notes.push(
        "master (replica) refuses writes: fenced by cyrdeck run x (normal for an ex-master)".into(),
    );
    let mut a = with(r);
    let s = screen(&a, 80, 24);
    assert!(s.contains("more line(s) below (j / PgDn)"), "{s}");
    assert!(!s.contains("planted problem number 7"), "{s}");
    for _ in 0..30 {
        press(&mut a, "j");
    }
    let s = screen(&a, 80, 24);
    assert!(s.contains("more line(s) above (k / PgUp)"), "{s}");
    assert!(s.contains("planted problem number 7"), "{s}");
    assert!(
        s.contains("note     master (replica) refuses writes"),
        "{s}"
    );
    assert!(!s.contains("more line(s) below"), "{s}");
    // a screen that fits everything has no marker
    let s = screen(&a, 160, 60);
    assert!(!s.contains("more line(s)"), "{s}");
}

/// Issue 30 (item 8): the run panel showed steps 1-5 of 9 at 80x24 and no
/// key scrolled it: it follows the step the run is at, and says what is
/// above.
#[test]
fn the_run_panel_keeps_the_current_step_in_view_at_80x24() {
    use cyrdeck::ops::runbook::{RunbookRun, StepState};
    let mut a = loaded_app(false);
    let mut run = RunbookRun::new(cyrdeck::ops::failover::SPEC, "lab", "lab");
    for i in 0..7 {
        run.steps[i] = StepState::Done(format!("step {} said its piece", i + 1));
    }
    run.output = (0..20).map(|i| format!("output line {i}")).collect();
    a.update(Action::Runbook(Box::new(run)));
    press(&mut a, "6");
    let s = screen(&a, 80, 24);
    assert!(s.contains("7. done"), "{s}");
    assert!(s.contains("8. pending"), "{s}");
    assert!(s.contains("line(s) above"), "{s}");
    assert!(s.contains("Enter: run step 8"), "{s}");
    // the list of runbooks says it holds more than it shows
    assert!(s.contains("Runbooks 1/"), "{s}");
}

/// Issue 30 (item 8): with two replicas, a difference with replica2 was
/// shown under `master | replica`. The mailbox table names the replica the
/// check compared.
#[test]
fn the_mailbox_table_names_the_replica_a_difference_is_with() {
    let mut a = app(false);
    a.update(Action::Report {
        generation: 1,
        report: report(true, 6),
    });
    let mut c = check();
    for d in c.differences.iter_mut() {
        d.tag_replica("replica2");
    }
    a.update(Action::Check(c));
    press(&mut a, "4 <Enter>");
    let s = screen(&a, 120, 30);
    assert!(s.contains(": master | replica2 (Esc back)"), "{s}");
    assert!(s.contains("replica2 guid"), "{s}");
    assert!(s.contains("replica2: UID"), "{s}");
}
