//! The state directory, `$XDG_STATE_HOME/cyrdeck` (~/.local/state/cyrdeck):
//! every file cyrdeck keeps between runs lives under it, named here: the
//! runbook journals (`journal/`), the audit log, the last whole-pair check
//! of each pair and the reintegrate reports. Each is written whole with
//! [`write_atomic`], so a crash leaves the old file or the new, never half.

use std::io::Write;
use std::path::{Path, PathBuf};

/// `$XDG_STATE_HOME/cyrdeck`, else the local data dir, else the temp dir.
pub fn dir() -> PathBuf {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .unwrap_or_else(std::env::temp_dir)
        .join("cyrdeck")
}

/// Where the runbook journals live (`done/` below it: finished runs).
pub fn journal_dir() -> PathBuf {
    dir().join("journal")
}

/// The audit log when the config names none.
pub fn audit_log() -> PathBuf {
    dir().join("audit.log")
}

/// `DIR/reintegrate-PAIR-RUNID.json`: a reintegrate run's divergence report.
pub fn reintegrate_report(dir: &Path, pair: &str, run_id: &str) -> PathBuf {
    dir.join(format!("reintegrate-{pair}-{run_id}.json"))
}

/// The newest (last written) reintegrate report of `pair` in `dir`, with
/// its run id.
pub fn newest_reintegrate_report(dir: &Path, pair: &str) -> Option<(String, PathBuf)> {
    let prefix = format!("reintegrate-{pair}-");
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let run = name
                .strip_prefix(&prefix)?
                .strip_suffix(".json")?
                .to_string();
            Some((run, e.path()))
        })
        .collect();
    v.sort_by_key(|(_, p)| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    v.pop()
}

/// Replace `path` whole: write a temporary file beside it (same directory,
/// so the rename is atomic), set `mode` when given, fsync, rename over
/// `path`, fsync the directory. The directory must exist (a missing one is
/// an error: the caller says whether to create it); on an error the
/// temporary file is removed and `path` is as it was.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let parent = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let tmp = parent.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        if let Some(m) = mode {
            f.set_permissions(std::fs::Permissions::from_mode(m))?;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    // the rename itself is durable only once the directory is synced; a
    // directory that cannot be opened (unusual) leaves that to the kernel
    if let Ok(d) = std::fs::File::open(parent) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_replaces_the_file_whole_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("cyrdeck-state-{}", std::process::id()));
        let path = dir.join("sub/file.json");
        assert!(write_atomic(&path, b"one", None).is_err());
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        write_atomic(&path, b"one", None).unwrap();
        write_atomic(&path, b"two", Some(0o644)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("file.json")]);
        // a directory where the file should be: an error, nothing left over
        std::fs::create_dir_all(dir.join("sub/blocked")).unwrap();
        assert!(write_atomic(&dir.join("sub/blocked"), b"x", None).is_err());
        assert_eq!(std::fs::read_dir(dir.join("sub")).unwrap().count(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
