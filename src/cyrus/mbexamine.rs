//! Reading `mbexamine MAILBOX` output (Cyrus 3.6): per message a line
//! `000001> UID:00000001   INT_DATE:... ` followed by continuation lines,
//! one carrying `GUID:<40 hex> MODSEQ:n`. A missing mailbox prints no
//! "Mailbox Header Info".

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Examined {
    pub uidvalidity: Option<u64>,
    pub last_uid: Option<u64>,
    /// (uid, guid) in index order.
    pub messages: Vec<(u32, String)>,
}

pub fn parse(text: &str) -> Result<Examined, String> {
    if !text.contains("Mailbox Header Info") {
        let first = text
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("(no output)");
        return Err(format!(
            "not a mailbox examination: {}",
            first.chars().take(160).collect::<String>()
        ));
    }
    let mut ex = Examined {
        uidvalidity: None,
        last_uid: None,
        messages: Vec::new(),
    };
    let mut uid: Option<u32> = None;
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("UIDValidity:") {
            let mut it = rest.split_whitespace();
            ex.uidvalidity = it.next().and_then(|v| v.parse().ok());
            if it.next() == Some("Last") && it.next() == Some("UID:") {
                ex.last_uid = it.next().and_then(|v| v.parse().ok());
            }
        }
        if let Some(i) = line.find("> UID:") {
            let v = line[i + 6..].split_whitespace().next().unwrap_or("");
            uid = Some(v.parse().map_err(|_| format!("bad UID in {line:?}"))?);
        }
        if let Some(i) = line.find("GUID:") {
            let guid = line[i + 5..].split_whitespace().next().unwrap_or("");
            let u = uid
                .take()
                .ok_or_else(|| format!("GUID before any UID: {line:?}"))?;
            if guid.len() != 40 || !guid.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("bad GUID {guid:?} for UID {u}"));
            }
            ex.messages.push((u, guid.to_string()));
        }
    }
    Ok(ex)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Examining user/alice... Mailbox Header Info:\n  UIDValidity: 1795907197  Last UID: 2\n\n Message Info:\n000001> UID:00000001   INT_DATE:1795907199 SIZE:480\n      > HDRSIZE:460    LASTUPD :1795907199 SYSFLAGS:00000000      > CACHEVER:11 GUID:5718f1ac7f2689e93e6aa7c9095c4722ae3ee42f MODSEQ:2  THRID: 0\n000002> UID:00000002   INT_DATE:1\n      > CACHEVER:11 GUID:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa MODSEQ:3\n";

    #[test]
    fn reads_uids_and_guids() {
        let e = parse(SAMPLE).unwrap();
        assert_eq!(e.uidvalidity, Some(1795907197));
        assert_eq!(e.last_uid, Some(2));
        assert_eq!(e.messages.len(), 2);
        assert_eq!(e.messages[1], (2, "a".repeat(40)));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse("").is_err());
        assert!(parse("Mailbox Header Info\n GUID:abc").is_err());
        assert!(parse("Mailbox Header Info\n000001> UID:zz").is_err());
        for cut in 0..SAMPLE.len() {
            let _ = parse(&SAMPLE[..cut]);
        }
    }
}
