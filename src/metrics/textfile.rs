//! The exposition written for node-exporter's textfile collector: a
//! temporary file in the same directory (a name the collector skips: it
//! reads only `*.prom`), written, synced, made world-readable, renamed over
//! PATH, then the directory synced. A scrape sees the old file or the new
//! one, never half of one.

use std::path::Path;

pub fn write(path: &Path, body: &str) -> std::io::Result<()> {
    // node-exporter usually runs as another user; the umask may be 077
    crate::state::write_atomic(path, body.as_bytes(), Some(0o644))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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
