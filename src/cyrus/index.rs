//! Decoding `cyrus.index` (read-only, from bytes fetched in bulk) and the
//! user-flag names of `cyrus.header`. Layout from cyrus-imapd 3.6.1
//! `imap/mailbox.h`/`mailbox.c`; all integers big-endian:
//! - minor version 16/17 (3.2 - 3.8): header 160 bytes, record 112 bytes;
//! - minor version 19 (3.10, 3.12): same record, header fields rearranged
//!   after offset 56.
//!   Others are refused with a clear error rather than misread.
//!
//! Each header and record carries a CRC32 (zlib polynomial) over its bytes
//! before the CRC: a mismatch means a torn read (a writer was mid-update)
//! or damage, and is reported, never guessed around.

/// Record flags (system flags share one word with Cyrus's internal flags).
const FLAG_ANSWERED: u32 = 1;
const FLAG_FLAGGED: u32 = 1 << 1;
const FLAG_DELETED: u32 = 1 << 2;
const FLAG_DRAFT: u32 = 1 << 3;
const FLAG_SEEN: u32 = 1 << 4;
const FLAG_INTERNAL_EXPUNGED: u32 = 1 << 31;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexHeader {
    pub minor_version: u32,
    pub start_offset: u32,
    pub record_size: u32,
    pub num_records: u32,
    pub last_uid: u32,
    pub uidvalidity: u32,
    pub highestmodseq: u64,
    pub exists: u32,
    pub sync_crc_basic: u32,
    pub sync_crc_annot: u32,
    /// The last UID the mailbox's owner was told about (an owner's SELECT
    /// raises it; replicated by sync): at offset 104 in 3.6 to 3.12.
    pub recentuid: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexRecord {
    pub uid: u32,
    /// 40 lowercase hex characters.
    pub guid: String,
    pub modseq: u64,
    pub system_flags: u32,
    pub user_flags: [u32; 4],
}

fn be32(b: &[u8], off: usize) -> Result<u32, String> {
    b.get(off..off + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| format!("index truncated at byte {off}"))
}

fn be64(b: &[u8], off: usize) -> Result<u64, String> {
    Ok(((be32(b, off)? as u64) << 32) | be32(b, off + 4)? as u64)
}

/// CRC-32 (IEEE 802.3 / zlib), as Cyrus's lib/crc32.c computes it
/// (crc32fast: table/SIMD, run on every index record the check reads).
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

const HEADER_SIZE: usize = 160;
const RECORD_SIZE: usize = 112;

pub fn parse_header(b: &[u8]) -> Result<IndexHeader, String> {
    let minor = be32(b, 8)?;
    if b.len() < HEADER_SIZE {
        return Err(format!("index header truncated ({} bytes)", b.len()));
    }
    let stored = be32(b, HEADER_SIZE - 4)?;
    if stored != crc32(&b[..HEADER_SIZE - 4]) {
        return Err("index header CRC mismatch (torn read or damaged index)".into());
    }
    let common = |exists_at, modseq_at| -> Result<IndexHeader, String> {
        Ok(IndexHeader {
            minor_version: minor,
            start_offset: be32(b, 12)?,
            record_size: be32(b, 16)?,
            num_records: be32(b, 20)?,
            last_uid: be32(b, 28)?,
            uidvalidity: be32(b, 44)?,
            highestmodseq: be64(b, modseq_at)?,
            exists: be32(b, exists_at)?,
            sync_crc_basic: be32(b, 100)?,
            sync_crc_annot: be32(b, 120)?,
            recentuid: be32(b, 104)?,
        })
    };
    let h = match minor {
        16 | 17 => common(84, 68)?,
        19 => common(60, 72)?,
        v => {
            return Err(format!(
                "cyrus.index minor version {v} is not supported (16, 17, 19 are)"
            ))
        }
    };
    if h.record_size as usize != RECORD_SIZE || (h.start_offset as usize) < HEADER_SIZE {
        return Err(format!(
            "unexpected index geometry: start {} record size {}",
            h.start_offset, h.record_size
        ));
    }
    Ok(h)
}

/// A mailbox's records: the live ones, and the expunged ones still kept
/// (uid, guid) until a repack — what `unexpunge` can restore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Records {
    pub header: IndexHeader,
    pub live: Vec<IndexRecord>,
    pub expunged: Vec<(u32, String)>,
}

/// Every record (uid 0 skipped), the live count checked against the header.
pub fn parse_records(b: &[u8]) -> Result<Records, String> {
    let h = parse_header(b)?;
    // the header is CRC-valid but may still be wrong: reserve no more than
    // the bytes can hold, never what `exists` claims (u32::MAX aborted)
    let room = b.len().saturating_sub(h.start_offset as usize) / RECORD_SIZE;
    let mut out = Vec::with_capacity((h.exists as usize).min(room));
    let mut expunged = Vec::new();
    for n in 0..h.num_records as usize {
        let off = h.start_offset as usize + n * RECORD_SIZE;
        let r = b
            .get(off..off + RECORD_SIZE)
            .ok_or_else(|| format!("index truncated: record {} of {}", n + 1, h.num_records))?;
        if be32(r, 108)? != crc32(&r[..108]) {
            return Err(format!(
                "record {} CRC mismatch (torn read or damaged index)",
                n + 1
            ));
        }
        let uid = be32(r, 0)?;
        let flags = be32(r, 32)?;
        let guid: String = r[60..80].iter().map(|x| format!("{x:02x}")).collect();
        if uid == 0 {
            continue;
        }
        if flags & FLAG_INTERNAL_EXPUNGED != 0 {
            expunged.push((uid, guid));
            continue;
        }
        out.push(IndexRecord {
            uid,
            guid,
            modseq: be64(r, 80)?,
            system_flags: flags & 0xffff,
            user_flags: [be32(r, 36)?, be32(r, 40)?, be32(r, 44)?, be32(r, 48)?],
        });
    }
    if out.len() != h.exists as usize {
        return Err(format!(
            "index has {} live records but its header says {} (torn read?)",
            out.len(),
            h.exists
        ));
    }
    Ok(Records {
        header: h,
        live: out,
        expunged,
    })
}

impl IndexRecord {
    /// `\Seen` set (for the owner's own mailboxes Cyrus keeps the owner's
    /// seen state in the record).
    pub fn seen(&self) -> bool {
        self.system_flags & FLAG_SEEN != 0
    }

    /// System flags then user flags by name (`names[N]` is user flag N).
    pub fn flag_names(&self, names: &[String]) -> Vec<String> {
        let mut v: Vec<String> = [
            (FLAG_ANSWERED, "\\Answered"),
            (FLAG_FLAGGED, "\\Flagged"),
            (FLAG_DELETED, "\\Deleted"),
            (FLAG_DRAFT, "\\Draft"),
            (FLAG_SEEN, "\\Seen"),
        ]
        .iter()
        .filter(|(bit, _)| self.system_flags & bit != 0)
        .map(|(_, n)| n.to_string())
        .collect();
        for n in 0..128usize {
            if self.user_flags[n / 32] & (1 << (n % 32)) != 0 {
                v.push(
                    names
                        .get(n)
                        .filter(|s| s.as_str() != "NIL")
                        .cloned()
                        .unwrap_or_else(|| format!("$userflag{n}")),
                );
            }
        }
        v
    }
}

/// User flag names from a `cyrus.header` (3.6 writes a DLIST line with
/// `U (flag0 flag1 ...)`; the old format has them space-separated on the
/// second line).
pub fn user_flag_names(header_file: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(header_file);
    let mut lines = text.lines().skip(3); // magic spans three lines
    let Some(line) = lines.next() else {
        return vec![];
    };
    if let Some(dl) = line.strip_prefix("%(") {
        let Some(i) = dl.find(" U (") else {
            return vec![];
        };
        let rest = &dl[i + 4..];
        let end = rest.find(')').unwrap_or(rest.len());
        return super::synclog::split_words(&rest[..end]).unwrap_or_default();
    }
    lines
        .next()
        .map(|l| l.split(' ').map(str::to_string).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_zlib() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    fn header(minor: u32, records: &[[u8; 112]], exists: u32) -> Vec<u8> {
        let mut h = vec![0u8; 160];
        let put =
            |h: &mut Vec<u8>, off: usize, v: u32| h[off..off + 4].copy_from_slice(&v.to_be_bytes());
        put(&mut h, 8, minor);
        put(&mut h, 12, 160);
        put(&mut h, 16, 112);
        put(&mut h, 20, records.len() as u32);
        put(&mut h, 28, 9);
        put(&mut h, 44, 1_795_907_197);
        put(&mut h, 72, 42); // low half of highestmodseq at 68
        put(&mut h, 84, exists);
        put(&mut h, 100, 0xdead_beef);
        put(&mut h, 104, 7);
        let c = crc32(&h[..156]);
        put(&mut h, 156, c);
        for r in records {
            h.extend_from_slice(r);
        }
        h
    }

    fn record(uid: u32, flags: u32, user0: u32, guid_byte: u8) -> [u8; 112] {
        let mut r = [0u8; 112];
        r[0..4].copy_from_slice(&uid.to_be_bytes());
        r[32..36].copy_from_slice(&flags.to_be_bytes());
        r[36..40].copy_from_slice(&user0.to_be_bytes());
        r[60..80].copy_from_slice(&[guid_byte; 20]);
        r[80..88].copy_from_slice(&(uid as u64 + 100).to_be_bytes());
        let c = crc32(&r[..108]);
        r[108..112].copy_from_slice(&c.to_be_bytes());
        r
    }

    #[test]
    fn reads_header_and_live_records() {
        let recs = [
            record(1, FLAG_SEEN, 0b10, 0xab),
            record(2, FLAG_INTERNAL_EXPUNGED | FLAG_SEEN, 0, 0xcd),
            record(9, FLAG_FLAGGED | FLAG_ANSWERED, 0, 0xef),
        ];
        let b = header(17, &recs, 2);
        let h = parse_header(&b).unwrap();
        assert_eq!(
            (h.last_uid, h.uidvalidity, h.highestmodseq, h.exists),
            (9, 1_795_907_197, 42, 2)
        );
        assert_eq!((h.sync_crc_basic, h.recentuid), (0xdead_beef, 7));
        let all = parse_records(&b).unwrap();
        assert_eq!(all.expunged, vec![(2, "cd".repeat(20))]);
        let r = all.live;
        assert_eq!(r.iter().map(|r| r.uid).collect::<Vec<_>>(), vec![1, 9]);
        assert_eq!(r[0].guid, "ab".repeat(20));
        assert_eq!(r[0].modseq, 101);
        let names = vec!["$Junk".to_string(), "$Forwarded".to_string()];
        assert_eq!(r[0].flag_names(&names), vec!["\\Seen", "$Forwarded"]);
        assert!(r[0].seen() && !r[1].seen());
        assert_eq!(r[1].flag_names(&names), vec!["\\Answered", "\\Flagged"]);
    }

    #[test]
    fn torn_or_foreign_bytes_are_errors_not_guesses() {
        let recs = [record(1, 0, 0, 1)];
        let good = header(17, &recs, 1);
        let mut torn = good.clone();
        torn[30] ^= 1;
        assert!(parse_header(&torn).unwrap_err().contains("CRC"));
        let mut bad_rec = good.clone();
        bad_rec[160 + 70] ^= 1;
        assert!(parse_records(&bad_rec).unwrap_err().contains("CRC"));
        assert!(parse_records(&header(17, &recs, 3))
            .unwrap_err()
            .contains("header says 3"));
        assert!(parse_header(&header(20, &recs, 1))
            .unwrap_err()
            .contains("not supported"));
        for cut in 0..good.len() {
            let _ = parse_records(&good[..cut]);
        }
        assert!(parse_header(b"").is_err());
    }

    /// Issue 15: `Vec::with_capacity(exists)` trusted the header, so a corrupt
    /// but CRC-valid `exists` aborted the process (allocation failure).
    #[test]
    fn a_huge_exists_in_a_crc_valid_header_is_an_error_not_an_abort() {
        let recs = [record(1, 0, 0, 1)];
        for exists in [u32::MAX, u32::MAX / 2, 1 << 28] {
            let b = header(17, &recs, exists);
            let e = parse_records(&b).unwrap_err();
            assert!(e.contains(&format!("header says {exists}")), "{e}");
        }
    }

    #[test]
    fn user_flag_names_from_both_header_formats() {
        let magic = "\u{a1}\u{2}\u{8b}\rCyrus mailbox header\n\"The best thing about this system was that it had lots of goals.\"\n\t--Jim Morris on Andrew\n";
        let new = format!("{magic}%(T e N user.alice I abc U ($Junk NIL \"odd name\"))\n");
        assert_eq!(
            user_flag_names(new.as_bytes()),
            vec!["$Junk", "NIL", "odd name"]
        );
        let old = format!("{magic}user.alice\tabc\n$Junk $Forwarded\nalice\tlrs\t\n");
        assert_eq!(user_flag_names(old.as_bytes()), vec!["$Junk", "$Forwarded"]);
        assert!(user_flag_names(b"garbage").is_empty());
    }
}
