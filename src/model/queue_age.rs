//! When a pending sync-log entry was written. The sync log stamps no time,
//! so the bounds come from its queue file: written after the file was
//! created (birth time, else when cyrdeck first saw it) and before its
//! last write (mtime). Appends are in time order, so the line's position
//! in the file places it between the two (an estimate, said as one).

/// A queue file (`log-run`, then `log`) as the probe saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueFile {
    pub name: String,
    pub lines: u64,
    pub born: Option<u64>,
    pub mtime: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub file: String,
    /// 1-based line in `file`, of `lines`.
    pub line: u64,
    pub lines: u64,
    /// Epoch seconds: not before (the file's birth), not after (its mtime).
    pub after: u64,
    pub before: u64,
}

impl Written {
    /// The time by the line's position between the bounds.
    pub fn estimate(&self) -> u64 {
        let span = self.before - self.after;
        let steps = self.lines.saturating_sub(1).max(1);
        self.after + span * (self.line - 1).min(steps) / steps
    }
}

/// `first_line` counts through `files` in queue order (`log-run` then
/// `log`, as the probe reads them); 0 is unknown.
pub fn written(first_line: u64, files: &[QueueFile]) -> Option<Written> {
    let mut line = first_line;
    if line == 0 {
        return None;
    }
    for f in files {
        if line <= f.lines {
            let before = f.mtime;
            return Some(Written {
                file: f.name.clone(),
                line,
                lines: f.lines,
                // a first-seen later than the last write is our lateness
                after: f.born.unwrap_or(before).min(before),
                before,
            });
        }
        line -= f.lines;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Vec<QueueFile> {
        vec![
            QueueFile {
                name: "log-run".into(),
                lines: 3,
                born: Some(1000),
                mtime: 1100,
            },
            QueueFile {
                name: "log".into(),
                lines: 11,
                born: None,
                mtime: 2000,
            },
        ]
    }

    #[test]
    fn lines_land_in_their_file_and_between_its_times() {
        let w = written(2, &files()).unwrap();
        assert_eq!(
            (w.file.as_str(), w.line, w.after, w.before),
            ("log-run", 2, 1000, 1100)
        );
        assert_eq!(w.estimate(), 1050);
        let w = written(3, &files()).unwrap();
        assert_eq!(w.estimate(), 1100);
        // log: no birth time known, so nothing earlier than its mtime is claimed
        let w = written(4, &files()).unwrap();
        assert_eq!((w.file.as_str(), w.line, w.after), ("log", 1, 2000));
        assert_eq!(written(15, &files()), None);
        assert_eq!(written(0, &files()), None);
    }

    #[test]
    fn a_one_line_file_is_its_birth() {
        let f = [QueueFile {
            name: "log".into(),
            lines: 1,
            born: Some(5),
            mtime: 9,
        }];
        assert_eq!(written(1, &f).unwrap().estimate(), 5);
    }
}
