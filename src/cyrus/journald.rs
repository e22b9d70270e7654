//! Cyrus's lines from the systemd journal: the probe runs
//! `journalctl -o json --output-fields=SYSLOG_IDENTIFIER,SYSLOG_PID,_PID,MESSAGE,_HOSTNAME`
//! matching every `SYSLOG_IDENTIFIER` that starts with `PREFIX/` (Cyrus
//! logs as `syslog_prefix/service`), after the last cursor. Each entry is
//! rendered as a syslog-file line (`RFC3339 HOST IDENT[PID]: MESSAGE`), so
//! one classifier serves files and the journal; its time is the journal's
//! own `__REALTIME_TIMESTAMP` (UTC microseconds: no zone to guess).

use serde_json::Value;

/// JSON entries -> (canonical lines, cursor of the last entry read).
/// Lines that are not journal JSON are skipped (never a panic).
pub fn render(json_lines: &str) -> (String, Option<String>) {
    let mut out = String::new();
    let mut cursor = None;
    for line in json_lines.lines() {
        let Ok(Value::Object(e)) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if let Some(c) = e.get("__CURSOR").and_then(Value::as_str) {
            cursor = Some(c.to_string());
        }
        let Some(usec) = e
            .get("__REALTIME_TIMESTAMP")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<i64>().ok())
        else {
            continue;
        };
        let Ok(ts) = jiff::Timestamp::from_microsecond(usec) else {
            continue;
        };
        let field = |k: &str| e.get(k).map(text).unwrap_or_default();
        // host, identifier and pid are words of the line: no space, no
        // newline, no control character (a process picks its identifier:
        // a newline there forged a second line)
        let word = |k: &str| field(k).replace(|c: char| c.is_whitespace() || c.is_control(), "_");
        let pid = Some(word("SYSLOG_PID"))
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| word("_PID"));
        let host = Some(word("_HOSTNAME"))
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "-".into());
        // one entry, one line: a multi-line message keeps its first line's
        // meaning and loses nothing the classifier reads
        let msg = field("MESSAGE").replace(['\n', '\r'], " ");
        let ident = word("SYSLOG_IDENTIFIER");
        out.push_str(&format!(
            "{} {host} {ident}[{pid}]: {msg}\n",
            ts.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00"),
        ));
    }
    (out, cursor)
}

/// A journal field: a string, or bytes (non-UTF-8 messages are arrays of
/// numbers in journalctl's JSON), or anything else as JSON text.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let bytes: Vec<u8> = a
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_become_syslog_lines() {
        let json = concat!(
            r#"{"__CURSOR":"s=a;i=1","__REALTIME_TIMESTAMP":"1764659116123456","SYSLOG_IDENTIFIER":"cyrus/sync_client","SYSLOG_PID":"7366","_PID":"7366","_HOSTNAME":"vm","MESSAGE":"Error in do_sync(): bailing out! Bad protocol"}"#,
            "\n",
            "not json\n",
            r#"{"__CURSOR":"s=a;i=2","__REALTIME_TIMESTAMP":"1764659117000000","SYSLOG_IDENTIFIER":"cyrus/imap","_PID":"9","MESSAGE":[73,79,69,82,82,79,82,255,10,120]}"#,
            "\n",
        );
        let (text, cursor) = render(json);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "2025-12-02T07:05:16.123456+00:00 vm cyrus/sync_client[7366]: Error in do_sync(): bailing out! Bad protocol"
        );
        assert_eq!(
            lines[1],
            "2025-12-02T07:05:17.000000+00:00 - cyrus/imap[9]: IOERROR\u{fffd} x"
        );
        assert_eq!(cursor.as_deref(), Some("s=a;i=2"));
        let ev =
            crate::cyrus::loglines::classify(lines[0], Some("cyrus"), &Default::default()).unwrap();
        assert_eq!(ev.kind, crate::cyrus::loglines::LineKind::BailingOut);
        assert_eq!(ev.time, Some(1764659116));
    }

    /// Captured from the lab's journal host (journalctl with the probe's
    /// options) while a replica mailbox was unreadable.
    const REAL: &str = include_str!("../../tests/fixtures/journal_cyrus.json");

    #[test]
    fn real_journal_entries_classify_like_file_lines() {
        let (text, cursor) = render(REAL);
        assert_eq!(text.lines().count(), REAL.lines().count());
        let last: serde_json::Value = serde_json::from_str(REAL.lines().last().unwrap()).unwrap();
        assert_eq!(cursor.as_deref(), last["__CURSOR"].as_str());
        let ev = crate::cyrus::loglines::classify_chunk(
            &text,
            Some("cyrlab25300-master"),
            &Default::default(),
        );
        let bail = ev
            .iter()
            .find(|e| e.kind == crate::cyrus::loglines::LineKind::BailingOut)
            .expect("a bail-out");
        assert_eq!(bail.service, "sync_client");
        assert!(bail.time.is_some_and(|t| t > 1_700_000_000));
        assert!(ev.iter().all(|e| e.time.is_some()));
    }

    /// Found by tests/fuzz_parsers.rs: a newline in `_HOSTNAME`,
    /// `SYSLOG_IDENTIFIER` or `SYSLOG_PID` (any local process chooses its
    /// identifier) made one entry two lines — a forged log line for the
    /// classifier.
    #[test]
    fn one_entry_is_one_line_whatever_its_fields_hold() {
        let forged = "x\n2025-12-02T07:05:16+00:00 vm cyrus/sync_client[1]: Error in do_sync(): bailing out! USER victim";
        for field in ["_HOSTNAME", "SYSLOG_IDENTIFIER", "SYSLOG_PID"] {
            let mut e = serde_json::json!({
                "__REALTIME_TIMESTAMP": "1764659116123456",
                "SYSLOG_IDENTIFIER": "cyrus/imap",
                "SYSLOG_PID": "9",
                "_HOSTNAME": "vm",
                "MESSAGE": "hello",
            });
            e[field] = serde_json::Value::String(forged.into());
            let (text, _) = render(&e.to_string());
            assert_eq!(text.lines().count(), 1, "{field}: {text:?}");
            let ev = crate::cyrus::loglines::classify_chunk(&text, None, &Default::default());
            assert!(ev.is_empty(), "{field}: {ev:?}");
        }
    }

    #[test]
    fn garbage_is_skipped() {
        for g in [
            "",
            "{}",
            "[1,2]",
            r#"{"__REALTIME_TIMESTAMP":"99999999999999999999"}"#,
            "{\"a\":",
        ] {
            let (t, _) = render(g);
            assert!(t.is_empty(), "{g:?}");
        }
        // a cursor without a usable entry still moves the read on
        assert_eq!(render(r#"{"__CURSOR":"c"}"#).1.as_deref(), Some("c"));
    }
}
