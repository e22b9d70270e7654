//! Small text formatting shared by the text and console views.

pub use crate::model::human::{clock, secs};

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

/// Word-wrap `s` into lines of at most `width` characters (a word longer
/// than a line is cut), so the text that matters is never cut at 80 columns.
pub fn wrap(s: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in s.split(' ') {
        let (lw, ww) = (line.chars().count(), word.chars().count());
        if lw > 0 && lw + 1 + ww > width {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
        while line.chars().count() > width {
            let head: String = line.chars().take(width).collect();
            line = line.chars().skip(width).collect();
            out.push(head);
        }
    }
    if !line.is_empty() || out.is_empty() {
        out.push(line);
    }
    out
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
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
        assert_eq!(wrap("abcdefg", 3), vec!["abc", "def", "g"]);
        assert_eq!(wrap("", 3), vec![""]);
    }
}
