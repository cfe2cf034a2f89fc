//! Driving the sans-IO [`StreamSession`] from async code: several HTTP
//! range requests in flight at once on a tokio runtime, each one's bytes
//! handed to the session as they arrive, a failure in the middle of a
//! response reported after the bytes before it.
//!
//! ```text
//! cargo run --example stream_tokio --features write,http-server
//! ```
//!
//! Why tokio here, and only here: the library is runtime-agnostic. The
//! session never reads, sleeps or spawns; it says which byte range it
//! wants ([`StreamSession::poll_fetch`]), takes what arrives
//! ([`StreamSession::on_data`], [`StreamSession::on_failure`]) and says
//! what happened ([`StreamSession::poll_event`]), so any executor drives
//! it with its own sockets. tokio is a dev-dependency (for this example
//! and nothing else), with the few features it needs: `rt`, `net`,
//! `io-util`, `sync` and `time`.
//!
//! The server is the crate's own HTTP server ([`sft::serve::http`]), run
//! in-process on a thread over a temporary directory; the client is a
//! small HTTP/1.1 client on `tokio::net::TcpStream`, one connection per
//! request. The first FB2 response is cut after half its body, as a
//! dropped connection would cut it: the session keeps the blocks that
//! arrived whole and asks again for the rest.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use sft::serve::http::{Server, ServerConfig};
use sft::stream::{
    Event, FetchRequest, Priority, RequestId, SessionConfig, StreamSession, TransportError,
    TransportErrorKind,
};
use sft::write::{BlockSize, PackageBuilder, parse_launch_list};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// What a request task tells the session loop.
enum Msg {
    /// Bytes of request `id` at absolute `offset`.
    Data(RequestId, u64, Vec<u8>),
    /// Request `id` failed after the bytes it sent before.
    Failed(RequestId, TransportError),
}

/// Every wait on the network is bounded: a broken server fails the
/// example instead of hanging it.
const TIMEOUT: Duration = Duration::from_secs(20);

fn transport(kind: TransportErrorKind, what: impl Into<String>) -> TransportError {
    TransportError::new(kind, what.into())
}

/// Send a request, read the response head; returns the status, the
/// `Content-Length` and the body bytes read with the head.
async fn exchange(
    stream: &mut TcpStream,
    request: String,
) -> Result<(u16, u64, Vec<u8>), TransportError> {
    let io = |e: std::io::Error| transport(TransportErrorKind::ConnectionLost, e.to_string());
    stream.write_all(request.as_bytes()).await.map_err(io)?;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > 16 << 10 {
            return Err(transport(
                TransportErrorKind::Protocol,
                "response head over 16 KiB",
            ));
        }
        let n = stream.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            return Err(transport(
                TransportErrorKind::ConnectionLost,
                "closed before the head",
            ));
        }
        head.extend_from_slice(&buf[..n]);
    };
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| transport(TransportErrorKind::Protocol, "no status line"))?;
    let length = text
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .ok_or_else(|| transport(TransportErrorKind::Protocol, "no Content-Length"))?;
    Ok((status, length, head[end..].to_vec()))
}

/// The package's length, from a `HEAD`.
async fn head(addr: SocketAddr, path: &str) -> Result<u64, TransportError> {
    let mut s = TcpStream::connect(addr)
        .await
        .map_err(|e| transport(TransportErrorKind::ConnectionLost, e.to_string()))?;
    let request = format!("HEAD {path} HTTP/1.1\r\nHost: example\r\nConnection: close\r\n\r\n");
    match exchange(&mut s, request).await? {
        (200, len, _) => Ok(len),
        (status, ..) => Err(transport(
            TransportErrorKind::Protocol,
            format!("HEAD: {status}"),
        )),
    }
}

/// Fetch `req.range` and send its bytes to the loop as they arrive (in
/// pieces of whatever size the socket gives); after `cut_after` bytes,
/// stop as if the connection had dropped.
async fn fetch(
    addr: SocketAddr,
    path: &str,
    req: FetchRequest,
    cut_after: Option<u64>,
    tx: mpsc::UnboundedSender<Msg>,
) {
    let id = req.id;
    let result = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| transport(TransportErrorKind::ConnectionLost, e.to_string()))?;
        let (start, end) = (req.range.start, req.range.end);
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: example\r\nRange: bytes={start}-{}\r\nConnection: close\r\n\r\n",
            end - 1
        );
        let (status, length, mut body) = exchange(&mut s, request).await?;
        if status != 206 || length != end - start {
            return Err(transport(
                TransportErrorKind::Protocol,
                format!("{start}-{end}: status {status}, {length} bytes"),
            ));
        }
        let mut at = start;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            if !body.is_empty() {
                let mut piece = std::mem::take(&mut body);
                piece.truncate((end - at) as usize);
                if let Some(cut) = cut_after {
                    let left = (start + cut).saturating_sub(at) as usize;
                    if piece.len() >= left {
                        piece.truncate(left);
                        let n = piece.len() as u64;
                        if n > 0 {
                            let _ = tx.send(Msg::Data(id, at, piece));
                        }
                        return Err(transport(
                            TransportErrorKind::ConnectionLost,
                            format!("connection dropped at {}", at + n),
                        ));
                    }
                }
                at += piece.len() as u64;
                let _ = tx.send(Msg::Data(id, at - piece.len() as u64, piece));
            }
            if at == end {
                return Ok(());
            }
            let n = s
                .read(&mut buf)
                .await
                .map_err(|e| transport(TransportErrorKind::ConnectionLost, e.to_string()))?;
            if n == 0 {
                return Err(transport(
                    TransportErrorKind::ConnectionLost,
                    format!("body ends at {at} of {start}-{end}"),
                ));
            }
            body.extend_from_slice(&buf[..n]);
        }
    }
    .await;
    if let Err(e) = result {
        let _ = tx.send(Msg::Failed(id, e.with_range(req.range)));
    }
}

/// What the session loop saw.
#[derive(Debug, Default)]
struct Seen {
    /// The most requests in flight at once: issued, and neither wholly
    /// delivered nor failed.
    most_in_flight: usize,
    requests: usize,
    failures: usize,
    launch_ready: bool,
}

/// Stream `path` from `addr` into `copy`, with up to four requests in
/// flight, all on the current thread's runtime.
async fn stream(addr: SocketAddr, path: &'static str, copy: &mut Vec<u8>) -> Result<Seen, String> {
    let config = SessionConfig::default()
        .max_request_bytes(32 << 10)
        .max_in_flight_requests(4);
    let mut session = StreamSession::new(config);
    session.set_endpoint(format!("http://{addr}{path}"));
    // The length first: the session then never asks past the end.
    let len = tokio::time::timeout(TIMEOUT, head(addr, path))
        .await
        .map_err(|_| "HEAD timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    session.on_source_len(len);

    let (tx, mut rx) = mpsc::unbounded_channel();
    // Bytes still due, by request.
    let mut in_flight = HashMap::new();
    let mut seen = Seen::default();
    let mut cut_one = true;
    loop {
        // Start every request the session wants now, each in its own task.
        while let Some(req) = session.poll_fetch() {
            let cut = (cut_one && req.priority == Priority::Fb2).then(|| {
                cut_one = false;
                (req.range.end - req.range.start) / 2
            });
            in_flight.insert(req.id, req.range.end - req.range.start);
            seen.requests += 1;
            tokio::spawn(fetch(addr, path, req, cut, tx.clone()));
        }
        seen.most_in_flight = seen.most_in_flight.max(in_flight.len());
        while let Some(event) = session.poll_event() {
            match event {
                Event::LaunchReady => seen.launch_ready = true,
                Event::Complete => return Ok(seen),
                Event::Failed(e) => return Err(e.to_string()),
                _ => {}
            }
        }
        // Then wait for whichever request has something to say.
        let msg = tokio::time::timeout(TIMEOUT, rx.recv())
            .await
            .map_err(|_| "no data for 20 s".to_owned())?
            .ok_or("every request task is gone")?;
        match msg {
            Msg::Data(id, offset, bytes) => {
                session
                    .on_data(id, offset, &bytes, copy)
                    .map_err(|e| e.to_string())?;
                if let Some(due) = in_flight.get_mut(&id) {
                    *due -= bytes.len() as u64;
                    if *due == 0 {
                        in_flight.remove(&id);
                    }
                }
            }
            Msg::Failed(id, e) => {
                in_flight.remove(&id);
                seen.failures += 1;
                session.on_failure(id, &e);
            }
        }
    }
}

/// Bytes that do not compress (xorshift).
fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 56) as u8
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A package: app.exe in FB1, two data files in FB2 (one that does not
    // compress, so there are many blocks to fetch).
    let text: Vec<u8> = (0..60_000u32)
        .flat_map(|i| format!("line {i} of the data file\n").into_bytes())
        .collect();
    let mut builder = PackageBuilder::new(
        sft::WriteOptions::default()
            .name("Async")
            .block_size(BlockSize::K16),
    );
    builder
        .add_bytes("app.exe", vec![0x90; 100_000])?
        .add_bytes("data/lines.txt", text)?
        .add_bytes("data/noise.bin", noise(400_000))?;
    builder.launch_list(parse_launch_list("app.exe\n")?);
    let package = builder.write_to_vec()?;

    // The crate's HTTP server, in-process, over a temporary directory.
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("app.sft"), &package)?;
    let server = Server::bind("127.0.0.1:0", ServerConfig::new(dir.path()))?.spawn()?;
    let addr = server.local_addr();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let mut copy = Vec::new();
    let seen = runtime.block_on(stream(addr, "/app.sft", &mut copy))?;
    server.shutdown()?;

    assert!(copy == package, "the copy is byte-identical");
    assert!(seen.launch_ready, "FB1 arrived before the rest");
    assert_eq!(seen.failures, 1, "one response was cut");
    assert!(
        (2..=4).contains(&seen.most_in_flight),
        "several requests in flight at once, at most the four allowed ({seen:?})"
    );
    println!(
        "streamed {} bytes in {} range requests, up to {} in flight, one cut and retried",
        copy.len(),
        seen.requests,
        seen.most_in_flight
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs() {
        super::main().expect("the example runs");
    }
}
