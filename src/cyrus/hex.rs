//! Hex as the remote scripts print bytes (names, index files): strict,
//! two digits a byte, nothing else.

/// Strict hex: byte pairs of `0-9a-fA-F` only. Works on bytes, never on
/// string positions (remote output may hold any UTF-8: slicing `&s[i..i+2]`
/// panicked inside a multi-byte character), and refuses what
/// `from_str_radix` would let through (`+f`).
pub fn unhex(s: &str) -> Result<Vec<u8>, String> {
    fn nibble(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return Err("odd hex length".into());
    }
    b.chunks_exact(2)
        .map(|p| match (nibble(p[0]), nibble(p[1])) {
            (Some(h), Some(l)) => Ok(h << 4 | l),
            _ => Err("bad hex".to_string()),
        })
        .collect()
}
