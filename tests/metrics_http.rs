//! The `/metrics` listener with a constructed report, scraped over a plain
//! TcpStream: 200 + a body in the exposition grammar, 404 elsewhere, 400 for
//! garbage (and it keeps serving), 503 before the first refresh, the latest
//! report after a new one; and `Exporter` end to end (listener + textfile +
//! the last check read from the state directory). No lab, no SSH.

mod console_support;

use cyrdeck::check::last::{self, LastCheck};
use cyrdeck::metrics::{exposition, parse, serve, Exporter};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

struct Answer {
    status: u16,
    head: String,
    body: String,
}

fn send(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(request).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    if !request.starts_with(b"HEAD ") {
        assert_eq!(length, body.len(), "Content-Length");
    }
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn get(addr: SocketAddr, path: &str) -> Answer {
    send(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
}

/// Every line a comment or `name{labels} value` (a grammar written here
/// independently of the library's reader).
fn assert_grammar(body: &str) {
    let label = r#"[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*""#;
    let sample = regex::Regex::new(&format!(
        r"^[a-zA-Z_:][a-zA-Z0-9_:]*(?:\{{{label}(?:,{label})*\}})? (?:[-+]?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|NaN|[+-]Inf)$"
    ))
    .unwrap();
    assert!(body.ends_with('\n'));
    for line in body.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        assert!(sample.is_match(line), "not in the grammar: {line:?}");
    }
    parse::parse(body).unwrap_or_else(|e| panic!("{e}"));
}

fn report() -> cyrdeck::model::snapshot::StatusReport {
    let mut r = console_support::report(false, 30);
    r.pairs[0].name = "lab \"east\"\\\n".into();
    r
}

#[test]
fn scrape_404_garbage_and_latest() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (tx, rx) = tokio::sync::watch::channel(None::<Arc<str>>);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let _server = rt.enter();
    serve::spawn(listener, rx);

    // before the first refresh
    assert_eq!(get(addr, "/metrics").status, 503);

    let r = report();
    tx.send_replace(Some(exposition::render(&r, &[]).into()));
    let a = get(addr, "/metrics");
    assert_eq!(a.status, 200);
    assert!(a
        .head
        .contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"));
    assert_grammar(&a.body);
    for (name, _, _) in exposition::FAMILIES
        .iter()
        .filter(|(n, _, _)| !n.starts_with("cyrdeck_check_"))
    {
        assert!(a.body.contains(&format!("# TYPE {name} ")), "{name}");
    }
    assert!(a
        .body
        .contains(r#"cyrdeck_pair_health{pair="lab \"east\"\\\n"} 2"#));

    assert_eq!(get(addr, "/").status, 404);
    assert_eq!(get(addr, "/metricsx").status, 404);
    assert_eq!(send(addr, b"POST /metrics HTTP/1.1\r\n\r\n").status, 405);
    let head = send(addr, b"HEAD /metrics HTTP/1.0\r\n\r\n");
    assert_eq!((head.status, head.body.as_str()), (200, ""));

    // garbage, then a normal scrape still works
    for garbage in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"[..], // TLS-ish
        b"hello\n\n",
        b"GET /metrics HTTP/1.1 extra\r\n\r\n",
        &[b'A'; 20_000][..], // longer than any request head it accepts
    ] {
        assert_eq!(send(addr, garbage).status, 400, "{garbage:?}");
        assert_eq!(get(addr, "/metrics").status, 200);
    }
    // a client that connects and says nothing does not block others
    let idle = TcpStream::connect(addr).unwrap();
    let half = {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /metr").unwrap();
        s
    };
    assert_eq!(get(addr, "/metrics").status, 200);
    drop((idle, half));
    // connect and leave at once
    drop(TcpStream::connect(addr).unwrap());

    // a new report: the next scrape shows it
    let mut r2 = report();
    r2.generated_at += 60;
    tx.send_replace(Some(exposition::render(&r2, &[]).into()));
    let a = get(addr, "/metrics");
    let stamp = format!(
        "cyrdeck_last_refresh_timestamp_seconds {}\n",
        r2.generated_at
    );
    assert!(a.body.contains(&stamp), "{}", a.body);
}

#[test]
fn exporter_serves_and_writes_the_textfile_with_the_last_check() {
    let dir = std::env::temp_dir().join(format!("cyrdeck-metrics-http-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // the only test here that reads the state directory
    std::env::set_var("XDG_STATE_HOME", dir.join("state"));
    let check = cyrdeck::model::conflicts::CheckResult {
        pair: "lab".into(),
        finished_at: console_support::NOW - 3600,
        mailboxes_checked: 10,
        differences: vec![],
        errors: vec![],
        mailboxes: vec![],
    };
    // keyed as the exporter asks for it; another config's "lab" is not it
    let lab = last::PairRef {
        name: "lab".into(),
        key: "/etc/cyrdeck.toml lab: root@m:22 root@r:22".into(),
    };
    let mut rec = LastCheck::of(&check);
    rec.key = lab.key.clone();
    let saved = last::save(&cyrdeck::state::dir(), &rec).unwrap();
    let mut other = LastCheck::of(&check);
    other.key = "/var/tmp/other/cyrdeck.toml lab: root@127.0.0.1:24320".into();
    other.finished_at -= 999;
    last::save(&cyrdeck::state::dir(), &other).unwrap();
    assert!(saved.starts_with(dir.join("state/cyrdeck")));

    let rt = tokio::runtime::Runtime::new().unwrap();
    let textfile = dir.join("cyrdeck.prom");
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let exporter = rt
        .block_on(Exporter::start(
            Some(listen),
            Some(textfile.clone()),
            vec![lab],
        ))
        .unwrap();
    let addr = exporter.local_addr().unwrap();
    exporter.publish(&console_support::report(true, 5)).unwrap();
    let a = get(addr, "/metrics");
    assert_eq!(a.status, 200);
    assert_grammar(&a.body);
    assert_eq!(std::fs::read_to_string(&textfile).unwrap(), a.body);
    let t = format!(
        "cyrdeck_check_last_run_timestamp_seconds{{pair=\"lab\"}} {}\n",
        console_support::NOW - 3600
    );
    assert!(a.body.contains(&t), "{}", a.body);
    assert!(a
        .body
        .contains("cyrdeck_check_differences{pair=\"lab\",kind=\"guid_conflict\"} 0\n"));
    // every family has samples now
    for (name, kind, _) in exposition::FAMILIES {
        assert!(
            a.body.contains(&format!("# TYPE {name} {kind}\n")),
            "{name}"
        );
    }
    // only the .prom file in the textfile's directory (besides state/)
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    // a port in use: start fails, naming the option
    let taken = rt
        .block_on(Exporter::start(Some(addr), None, vec![]))
        .err()
        .expect("address in use");
    assert!(taken.to_string().contains("--metrics-listen"), "{taken}");
    let _ = std::fs::remove_dir_all(&dir);
}
