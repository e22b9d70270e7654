//! Small text formatting shared by the text and console views.

/// A duration for humans: 42s, 7m, 1.5h.
pub fn secs(s: f64) -> String {
    if s < 90.0 {
        format!("{s:.0}s")
    } else if s < 5400.0 {
        format!("{:.0}m", s / 60.0)
    } else {
        format!("{:.1}h", s / 3600.0)
    }
}

/// Time of day (UTC) of an epoch second: 22:21:58.
pub fn clock(t: i64) -> String {
    let d = t.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", d / 3600, d % 3600 / 60, d % 60)
}

/// Cut to `width` characters, marking the cut with `…`.
pub fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else if width == 0 {
        String::new()
    } else {
        let mut t: String = s.chars().take(width - 1).collect();
        t.push('…');
        t
    }
}

/// The slice of rows a list of `height` rows shows with `selected` in view.
pub fn window(total: usize, selected: usize, height: usize) -> std::ops::Range<usize> {
    if height == 0 || total == 0 {
        return 0..0;
    }
    let start = if selected < height {
        0
    } else {
        selected + 1 - height
    };
    start..(start + height).min(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_clock() {
        assert_eq!(window(100_000, 0, 10), 0..10);
        assert_eq!(window(100_000, 99_999, 10), 99_990..100_000);
        assert_eq!(window(3, 2, 10), 0..3);
        assert_eq!(window(0, 0, 10), 0..0);
        assert_eq!(clock(1_764_368_518), "22:21:58");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(secs(30.0), "30s");
    }
}
