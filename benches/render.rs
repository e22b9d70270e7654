//! Console rendering cost: frame time of the Queue view holding 100,000
//! rows against a 100-row baseline (a full screen) in the same process (only visible rows
//! are built), resident memory of that state, and the median time from a
//! key press to the next frame. Prints figures and ratios; no timing asserts.

mod support;
use support::median;

#[path = "../tests/console_support/mod.rs"]
mod console_support;

use console_support::*;
use cyrdeck::console::app::{Action, App};
use cyrdeck::console::theme::Theme;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::time::Instant;

const FRAMES: usize = 300;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn app_with(rows: usize) -> App {
    let mut a = app(false);
    a.update(Action::Report {
        generation: 1,
        report: report(true, rows),
    });
    a.update(Action::Resize { rows: 42 });
    press(&mut a, "2");
    assert!(
        a.rows.queue.len() + 2 >= rows,
        "{} rows",
        a.rows.queue.len()
    );
    a
}

/// Median ms to draw one frame, moving the selection each frame so the
/// window changes (the worst case of a scroll).
fn frame_ms(a: &mut App, t: &mut Terminal<TestBackend>) -> f64 {
    let theme = Theme { color: true };
    let mut v = Vec::with_capacity(FRAMES);
    for i in 0..FRAMES {
        press(
            a,
            if i % 50 < 25 {
                "<PageDown>"
            } else {
                "<PageUp>"
            },
        );
        let s = Instant::now();
        t.draw(|f| cyrdeck::views::render(a, &theme, f)).unwrap();
        v.push(s.elapsed().as_secs_f64() * 1e3);
    }
    median(v)
}

/// Median ms from a key event entering update() to the frame drawn.
fn key_to_frame_ms(a: &mut App, t: &mut Terminal<TestBackend>, keys: &[&str]) -> f64 {
    let theme = Theme { color: true };
    let mut v = Vec::new();
    for i in 0..FRAMES {
        let k = keys[i % keys.len()];
        let s = Instant::now();
        press(a, k);
        t.draw(|f| cyrdeck::views::render(a, &theme, f)).unwrap();
        v.push(s.elapsed().as_secs_f64() * 1e3);
    }
    median(v)
}

fn main() {
    let mut t = Terminal::new(TestBackend::new(160, 48)).unwrap();
    let rss0 = rss_kib();
    let mut small = app_with(100);
    let f_small = frame_ms(&mut small, &mut t);
    let k_small = key_to_frame_ms(&mut small, &mut t, &["j", "k"]);
    let rss1 = rss_kib();
    let mut big = app_with(100_000);
    let rss2 = rss_kib();
    let f_big = frame_ms(&mut big, &mut t);
    let k_big = key_to_frame_ms(&mut big, &mut t, &["j", "k"]);
    // the expensive key: a filter keystroke refilters every row
    press(&mut big, "/");
    let k_filter = key_to_frame_ms(&mut big, &mut t, &["u", "<Backspace>"]);
    press(&mut big, "<Esc>");
    println!("console render, Queue view at 160x48, {FRAMES} frames each (median):");
    println!("| rows | frame | key->frame (j/k) | RSS of state |");
    println!("|---|---|---|---|");
    println!(
        "| 100 | {f_small:.3} ms | {k_small:.3} ms | {} KiB |",
        rss1.saturating_sub(rss0)
    );
    println!(
        "| 100,000 | {f_big:.3} ms | {k_big:.3} ms | {} KiB |",
        rss2.saturating_sub(rss1)
    );
    println!(
        "ratio 100k/100: frame x{:.2}, key->frame x{:.2}",
        f_big / f_small,
        k_big / k_small
    );
    println!(
        "filter keystroke over 100,000 rows (regex on every row, then a frame): {k_filter:.1} ms"
    );
    println!("total RSS now: {} KiB", rss_kib());
}
