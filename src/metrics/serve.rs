//! The `/metrics` listener: a minimal HTTP/1.x responder on tokio, no web
//! framework. It reads one request head (at most MAX_REQUEST bytes), answers
//! from the exposition the supervise loop last rendered (a scrape never
//! runs SSH) and closes the connection. Garbage gets 400, other paths 404,
//! other methods 405; every connection has a deadline and at most
//! MAX_CONNECTIONS are served at once (more are closed unanswered).

use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// The latest exposition; None until the first refresh (503).
pub type Latest = watch::Receiver<Option<Arc<str>>>;

pub const MAX_REQUEST: usize = 8192;
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);
pub const MAX_CONNECTIONS: usize = 32;

/// Serve `listener` until the task is dropped.
pub fn spawn(listener: TcpListener, latest: Latest) -> tokio::task::JoinHandle<()> {
    tokio::spawn(serve(listener, latest))
}

pub async fn serve(listener: TcpListener, latest: Latest) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(_) => {
                // out of file descriptors and the like: do not spin
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue; // dropped: closed unanswered
        };
        let body = latest.borrow().clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CONNECTION_DEADLINE, answer(stream, body)).await;
            drop(slot);
        });
    }
}

fn head_complete(buf: &[u8]) -> bool {
    buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n")
}

async fn answer(mut s: TcpStream, body: Option<Arc<str>>) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let complete = loop {
        if head_complete(&buf) {
            break true;
        }
        let room = MAX_REQUEST.saturating_sub(buf.len()).min(chunk.len());
        if room == 0 {
            break false;
        }
        let n = s.read(&mut chunk[..room]).await?;
        if n == 0 {
            if buf.is_empty() {
                return Ok(()); // connected and left
            }
            break false;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let resp = if complete {
        respond(&buf, body.as_deref())
    } else {
        bad_request()
    };
    s.write_all(&resp).await?;
    s.shutdown().await?;
    // read (and drop) what the client still sends, a bounded amount, so
    // closing with unread input does not reset the answer away
    let mut left = 64 * 1024usize;
    while left > 0 {
        match tokio::time::timeout(Duration::from_secs(1), s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => break,
        }
    }
    Ok(())
}

fn bad_request() -> Vec<u8> {
    response(
        400,
        "Bad Request",
        "text/plain",
        "bad request\n",
        false,
        &[],
    )
}

/// The answer to a complete request head (pure).
pub fn respond(head: &[u8], body: Option<&str>) -> Vec<u8> {
    let bad = bad_request;
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Ok(line) = std::str::from_utf8(line) else {
        return bad();
    };
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return bad();
    };
    if method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
        || !target.starts_with('/')
        || !matches!(version, "HTTP/1.0" | "HTTP/1.1")
    {
        return bad();
    }
    let path = target.split('?').next().unwrap_or_default();
    if path != "/metrics" {
        let text = "not found: the metrics are at /metrics\n";
        return response(404, "Not Found", "text/plain", text, false, &[]);
    }
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        let allow = [("Allow", "GET, HEAD")];
        return response(
            405,
            "Method Not Allowed",
            "text/plain",
            "GET or HEAD\n",
            false,
            &allow,
        );
    }
    match body {
        Some(b) => response(
            200,
            "OK",
            super::exposition::CONTENT_TYPE,
            b,
            head_only,
            &[],
        ),
        None => {
            let text = "no status yet: the first refresh has not finished\n";
            response(
                503,
                "Service Unavailable",
                "text/plain",
                text,
                head_only,
                &[],
            )
        }
    }
}

fn response(
    code: u16,
    reason: &str,
    content_type: &str,
    body: &str,
    head_only: bool,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(body);
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(resp: &[u8]) -> String {
        let s = String::from_utf8_lossy(resp);
        s.lines().next().unwrap_or_default().to_string()
    }

    #[test]
    fn routes() {
        let b = Some("a 1\n");
        let ok = respond(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", b);
        assert_eq!(status(&ok), "HTTP/1.1 200 OK");
        assert!(String::from_utf8_lossy(&ok).ends_with("\r\n\r\na 1\n"));
        let q = respond(b"GET /metrics?x=1 HTTP/1.0\n\n", b);
        assert_eq!(status(&q), "HTTP/1.1 200 OK");
        let head = respond(b"HEAD /metrics HTTP/1.1\r\n\r\n", b);
        assert!(String::from_utf8_lossy(&head)
            .ends_with("Content-Length: 4\r\nConnection: close\r\n\r\n"));
        assert_eq!(
            status(&respond(b"GET / HTTP/1.1\r\n\r\n", b)),
            "HTTP/1.1 404 Not Found"
        );
        assert_eq!(
            status(&respond(b"POST /metrics HTTP/1.1\r\n\r\n", b)),
            "HTTP/1.1 405 Method Not Allowed"
        );
        assert_eq!(
            status(&respond(b"GET /metrics HTTP/1.1\r\n\r\n", None)),
            "HTTP/1.1 503 Service Unavailable"
        );
        for bad in [
            &b"\x00\x01\xff\r\n\r\n"[..],
            b"GET /metrics\r\n\r\n",
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"get /metrics HTTP/1.1\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/2.0\r\n\r\n",
            b"\r\n\r\n",
        ] {
            assert_eq!(
                status(&respond(bad, b)),
                "HTTP/1.1 400 Bad Request",
                "{bad:?}"
            );
        }
    }
}
