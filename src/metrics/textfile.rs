//! The exposition written for node-exporter's textfile collector: a
//! temporary file in the same directory (a name the collector skips: it
//! reads only `*.prom`), written, synced, made world-readable, renamed over
//! PATH, then the directory synced. A scrape sees the old file or the new
//! one, never half of one.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn tmp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "metrics".into());
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

pub fn write(path: &Path, body: &str) -> std::io::Result<()> {
    let tmp = tmp_path(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(body.as_bytes())?;
        // node-exporter usually runs as another user; the umask may be 077
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // the rename itself durable (best effort: some filesystems refuse)
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_nothing_else() {
        let d = std::env::temp_dir().join(format!("cyrdeck-textfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("cyrdeck.prom");
        write(&p, "a 1\n").unwrap();
        write(&p, "a 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a 2\n");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
        // a directory that does not exist: an error, nothing written
        assert!(write(&d.join("nosuch/x.prom"), "a 1\n").is_err());
        let _ = std::fs::remove_dir_all(&d);
    }
}
