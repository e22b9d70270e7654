//! Minimal blocking IMAP and LMTP clients for seeding the lab and for tests.
//! Lab-only: plaintext on loopback, any password (`sasl_pwcheck_method: alwaystrue`).

use crate::cyrus::names::to_mutf7;
use color_eyre::eyre::{bail, eyre, Result};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

fn connect(addr: &str, port: u16) -> Result<(BufReader<TcpStream>, TcpStream)> {
    let s = TcpStream::connect((addr, port)).map_err(|e| eyre!("connect {addr}:{port}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    // commands go out in several writes: without this, Nagle + delayed ACK
    // cost ~40 ms per command (seeding ran at 13 messages/s)
    s.set_nodelay(true)?;
    Ok((BufReader::new(s.try_clone()?), s))
}

fn read_line(r: &mut BufReader<TcpStream>) -> Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        bail!("connection closed");
    }
    Ok(line)
}

pub struct Imap {
    r: BufReader<TcpStream>,
    w: TcpStream,
    tag: u32,
}

/// An IMAP astring for a mailbox name: always a LITERAL+ so quotes,
/// backslashes and newlines need no escaping.
fn literal(name: &str) -> String {
    let enc = to_mutf7(name);
    format!("{{{}+}}\r\n{}", enc.len(), enc)
}

impl Imap {
    pub fn login(addr: &str, port: u16, user: &str) -> Result<Imap> {
        let (mut r, w) = connect(addr, port)?;
        read_line(&mut r)?;
        let mut imap = Imap { r, w, tag: 0 };
        imap.command(&format!("LOGIN {} secret", literal(user)))?;
        Ok(imap)
    }

    /// Run a command; Ok(untagged lines) on OK, Err with the server's text otherwise.
    pub fn command(&mut self, cmd: &str) -> Result<Vec<String>> {
        self.tag += 1;
        let tag = format!("c{}", self.tag);
        write!(self.w, "{tag} {cmd}\r\n")?;
        let mut untagged = Vec::new();
        loop {
            let line = read_line(&mut self.r)?;
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                if rest.starts_with("OK") {
                    return Ok(untagged);
                }
                bail!("{}", rest.trim_end());
            }
            untagged.push(line);
        }
    }

    /// CREATE; an existing mailbox is fine (idempotent seeding).
    pub fn create(&mut self, name: &str) -> Result<()> {
        match self.command(&format!("CREATE {}", literal(name))) {
            Ok(_) => Ok(()),
            Err(e)
                if e.to_string()
                    .to_ascii_lowercase()
                    .contains("already exists") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// CREATE on a named partition (an admin's choice); existing is fine.
    /// Cyrus reads the partition as an atom (a literal there is "Unknown/
    /// invalid partition", 3.6): only plain names are sent.
    pub fn create_on(&mut self, name: &str, partition: &str) -> Result<()> {
        if partition.is_empty()
            || !partition
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            bail!("partition {partition:?}: not a plain name");
        }
        match self.command(&format!("CREATE {} {partition}", literal(name))) {
            Ok(_) => Ok(()),
            Err(e)
                if e.to_string()
                    .to_ascii_lowercase()
                    .contains("already exists") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// SETACL MAILBOX IDENTIFIER RIGHTS.
    pub fn set_acl(&mut self, mailbox: &str, who: &str, rights: &str) -> Result<()> {
        self.command(&format!(
            "SETACL {} {} {}",
            literal(mailbox),
            literal(who),
            literal(rights)
        ))
        .map(|_| ())
    }

    /// CREATE of every name, pipelined: all commands sent, then every
    /// answer read. An existing mailbox is fine; any other refusal is an
    /// error naming the mailbox (after all answers were read).
    pub fn create_many(&mut self, names: &[String]) -> Result<()> {
        let first = self.tag + 1;
        let mut batch = String::new();
        for n in names {
            self.tag += 1;
            batch.push_str(&format!("c{} CREATE {}\r\n", self.tag, literal(n)));
        }
        self.w.write_all(batch.as_bytes())?;
        let mut refused = None;
        let mut answered = 0;
        while answered < names.len() {
            let line = read_line(&mut self.r)?;
            let Some((tag, rest)) = line.split_once(' ') else {
                continue;
            };
            let Some(n) = tag.strip_prefix('c').and_then(|t| t.parse::<u32>().ok()) else {
                continue;
            };
            if n < first || n > self.tag {
                continue;
            }
            answered += 1;
            let ok = rest.starts_with("OK") || rest.to_ascii_lowercase().contains("already exists");
            if !ok && refused.is_none() {
                refused = Some(format!(
                    "CREATE {}: {}",
                    names[(n - first) as usize],
                    rest.trim_end()
                ));
            }
        }
        match refused {
            Some(e) => bail!("{e}"),
            None => Ok(()),
        }
    }

    /// Number of messages in `mailbox` (IMAP STATUS).
    pub fn message_count(&mut self, mailbox: &str) -> Result<Option<u64>> {
        let lines = self.command(&format!("STATUS {} (MESSAGES)", literal(mailbox)))?;
        Ok(lines.iter().find_map(|l| {
            let rest = &l[l.find("(MESSAGES ")? + 10..];
            rest[..rest.find(')')?].trim().parse().ok()
        }))
    }

    pub fn append(&mut self, mailbox: &str, message: &str) -> Result<()> {
        self.command(&format!(
            "APPEND {} {{{}+}}\r\n{}",
            literal(mailbox),
            message.len(),
            message
        ))
        .map(|_| ())
    }

    pub fn logout(mut self) {
        let _ = self.command("LOGOUT");
    }
}

/// Deliver one message over LMTP to each recipient; Err names the first refusal.
pub fn lmtp_deliver(addr: &str, port: u16, rcpts: &[&str], message: &str) -> Result<()> {
    let (mut r, mut w) = connect(addr, port)?;
    let expect = |r: &mut BufReader<TcpStream>, what: &str| -> Result<()> {
        loop {
            let line = read_line(r)?;
            if line.len() >= 4 && &line[3..4] == "-" {
                continue;
            }
            if !line.starts_with('2') && !line.starts_with('3') {
                bail!("LMTP {what}: {}", line.trim_end());
            }
            return Ok(());
        }
    };
    expect(&mut r, "greeting")?;
    write!(w, "LHLO cyrdeck-lab\r\n")?;
    expect(&mut r, "LHLO")?;
    write!(w, "MAIL FROM:<lab@cyrdeck.invalid>\r\n")?;
    expect(&mut r, "MAIL")?;
    for rc in rcpts {
        write!(w, "RCPT TO:<{rc}>\r\n")?;
        expect(&mut r, "RCPT")?;
    }
    write!(w, "DATA\r\n")?;
    expect(&mut r, "DATA")?;
    for line in message.lines() {
        let l = if line.starts_with('.') {
            format!(".{line}")
        } else {
            line.to_string()
        };
        write!(w, "{l}\r\n")?;
    }
    write!(w, ".\r\n")?;
    for rc in rcpts {
        expect(&mut r, &format!("delivery to {rc}"))?;
    }
    let _ = write!(w, "QUIT\r\n");
    Ok(())
}

/// A small RFC 5322 message with a given Message-ID.
pub fn message(msgid: &str, subject: &str, body: &str) -> String {
    format!(
        "From: lab <lab@cyrdeck.invalid>\r\nTo: lab@cyrdeck.invalid\r\nSubject: {subject}\r\n\
         Message-ID: <{msgid}>\r\nDate: Sat, 28 Nov 2026 00:00:00 +0000\r\n\r\n{body}\r\n"
    )
}

/// ManageSieve (RFC 5804) as a user: put a script and make it the active
/// one, as a mail client's filter settings do (timsieved stores it in the
/// user's #sieve mailbox and compiles it into the sieve directory).
pub fn sieve_put_active(addr: &str, port: u16, user: &str, name: &str, script: &str) -> Result<()> {
    use base64::Engine;
    let (mut r, mut w) = connect(addr, port)?;
    let answer = |r: &mut BufReader<TcpStream>, what: &str| -> Result<()> {
        loop {
            let line = read_line(r)?;
            if line.starts_with("OK") {
                return Ok(());
            }
            if line.starts_with("NO") || line.starts_with("BYE") {
                bail!("{what}: {}", line.trim_end());
            }
        }
    };
    answer(&mut r, "greeting")?;
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0secret"));
    w.write_all(format!("AUTHENTICATE \"PLAIN\" \"{plain}\"\r\n").as_bytes())?;
    answer(&mut r, "AUTHENTICATE")?;
    let quoted = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    w.write_all(
        format!(
            "PUTSCRIPT {} {{{}+}}\r\n{script}\r\n",
            quoted(name),
            script.len()
        )
        .as_bytes(),
    )?;
    answer(&mut r, "PUTSCRIPT")?;
    w.write_all(format!("SETACTIVE {}\r\n", quoted(name)).as_bytes())?;
    answer(&mut r, "SETACTIVE")?;
    w.write_all(b"LOGOUT\r\n")?;
    Ok(())
}
