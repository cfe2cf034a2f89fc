//! The bulk path of the HTTP client: single-range `GET`s over plain
//! `http://` on our own [`TcpStream`], with a small, strict, bounded
//! HTTP/1.1 response-head parser, and bodies read straight into the
//! caller's buffer (one copy, kernel to caller; no intermediate buffer).
//!
//! [`HttpSource`](super::HttpSource) uses it for every
//! single-range request to an `http://` URL, and the fetch layer reads
//! whole packages through it; `https://`, multi-range requests, and any
//! response this path does not take (a redirect, a chunked or
//! length-less body, a `200` from a server that ignores `Range`) go
//! through `ureq` as before. What it checks is in
//! [`HttpSource`](super::HttpSource)'s `raw_*` methods; this
//! module only moves bytes and splits the head into fields.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The longest response head accepted (status line and headers).
pub(crate) const MAX_HEAD: usize = 32 * 1024;
/// The most header fields accepted in a head.
const MAX_FIELDS: usize = 128;

/// Where and how to connect, and the fixed part of each request.
#[derive(Clone)]
pub(crate) struct Target {
    /// `host[:port]` as it appears in the URL (the `Host` header).
    host: String,
    /// What to connect to (`host:port`).
    connect: String,
    /// The request target: path and query, byte for byte.
    path: String,
    /// Fixed header lines (`Name: value\r\n` each): user agent,
    /// credentials.
    fixed: String,
    connect_timeout: Duration,
    read_timeout: Duration,
}

impl Target {
    /// The target of `url` (an `http://host[:port]/path?query` URL as
    /// the client sends it: no user information, no fragment); `None`
    /// for anything else (such as `https://`) or a URL with bytes a
    /// request line cannot carry.
    pub(crate) fn new(
        url: &str,
        fixed: String,
        connect_timeout: Duration,
        read_timeout: Duration,
    ) -> Option<Target> {
        let rest = url
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("http://"))
            .map(|_| &url[7..])?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let clean = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'@' || b == b'/' || b == b'?')
        };
        if !clean(host) || !clean(path) || host.contains('/') {
            return None;
        }
        // A port after the host (after the `]` of an IPv6 literal).
        let after = host.rfind(']').map_or(host, |i| &host[i..]);
        let connect = if after.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:80")
        };
        Some(Target {
            host: host.to_owned(),
            connect,
            path: path.to_owned(),
            fixed,
            connect_timeout,
            read_timeout,
        })
    }

    /// A `GET` of `bytes=first-last` (`last` inclusive), with `If-Range`
    /// if given.
    pub(crate) fn request(&self, first: u64, last: u64, if_range: Option<&str>) -> Vec<u8> {
        let mut r = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nAccept-Encoding: identity\r\nRange: bytes={first}-{last}\r\n",
            self.path, self.host
        );
        if let Some(v) = if_range {
            r.push_str("If-Range: ");
            r.push_str(v);
            r.push_str("\r\n");
        }
        r.push_str(&self.fixed);
        r.push_str("\r\n");
        r.into_bytes()
    }

    /// A `HEAD` of the target.
    pub(crate) fn head_request(&self) -> Vec<u8> {
        format!(
            "HEAD {} HTTP/1.1\r\nHost: {}\r\nAccept-Encoding: identity\r\n{}\r\n",
            self.path, self.host, self.fixed
        )
        .into_bytes()
    }

    /// A new connection, with the timeouts set.
    pub(crate) fn connect(&self) -> io::Result<Conn> {
        let addrs: Vec<SocketAddr> = self.connect.to_socket_addrs()?.collect();
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.connect_timeout) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(self.read_timeout))?;
                    stream.set_write_timeout(Some(self.read_timeout))?;
                    stream.set_nodelay(true)?;
                    return Ok(Conn {
                        stream,
                        buf: Vec::new(),
                        start: 0,
                        reused: false,
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// One connection: the socket and the bytes read past the last head.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: TcpStream,
    /// Bytes read from the socket not yet consumed: `buf[start..]`.
    buf: Vec<u8>,
    start: usize,
    /// True once a response was read completely on this connection (it
    /// may have been closed by the server while idle).
    pub(crate) reused: bool,
}

/// A response head, split into the fields the client looks at. Field
/// names are matched case-insensitively; a field that may appear once
/// and appears twice with different values is an error.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) status: u16,
    pub(crate) content_length: Option<u64>,
    pub(crate) content_range: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) etag: Option<String>,
    pub(crate) last_modified: Option<String>,
    /// Any `Transfer-Encoding` at all.
    pub(crate) transfer_encoding: bool,
    /// `Connection: close`, or HTTP/1.0 without keep-alive.
    pub(crate) close: bool,
}

/// Why a head was refused.
#[derive(Debug)]
pub(crate) enum HeadError {
    Io(io::Error),
    /// The connection closed before any byte of the head (a kept-alive
    /// connection the server had closed).
    Closed,
    Bad(String),
}

impl Conn {
    /// Send `request` and read the response head.
    pub(crate) fn exchange(&mut self, request: &[u8]) -> Result<Head, HeadError> {
        self.buf.drain(..self.start);
        self.start = 0;
        if !self.buf.is_empty() {
            // Bytes after the last response: not a server to trust.
            return Err(HeadError::Bad(String::from(
                "bytes after the end of the previous response",
            )));
        }
        self.stream.write_all(request).map_err(HeadError::Io)?;
        let mut scanned = 0usize;
        loop {
            if let Some(end) = find_end(&self.buf, scanned) {
                let head = parse_head(&self.buf[..end]).map_err(HeadError::Bad)?;
                self.start = end;
                return Ok(head);
            }
            scanned = self.buf.len().saturating_sub(3);
            if self.buf.len() >= MAX_HEAD {
                return Err(HeadError::Bad(format!(
                    "response head longer than {MAX_HEAD} bytes"
                )));
            }
            let old = self.buf.len();
            self.buf.resize(MAX_HEAD.min(old + 4096), 0);
            let n = loop {
                match self.stream.read(&mut self.buf[old..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.buf.truncate(old);
                        return Err(if old == 0 && self.reused && is_reset(&e) {
                            HeadError::Closed
                        } else {
                            HeadError::Io(e)
                        });
                    }
                }
            };
            self.buf.truncate(old + n);
            if n == 0 {
                return Err(if old == 0 {
                    HeadError::Closed
                } else {
                    HeadError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the connection closed inside the response head",
                    ))
                });
            }
        }
    }

    /// Read body bytes into `buf` (what followed the head first, then
    /// straight from the socket); 0 at the end of the connection. The
    /// caller bounds `buf` by what the body has left.
    pub(crate) fn read_body(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.start < self.buf.len() {
            let n = (self.buf.len() - self.start).min(buf.len());
            buf[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
            self.start += n;
            return Ok(n);
        }
        loop {
            match self.stream.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// The end of the head (just past `\r\n\r\n`) if `buf` holds it,
/// looking from `from` on.
fn find_end(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| from + i + 4)
}

/// Parse a response head (ending in `\r\n\r\n`), strictly: an
/// `HTTP/1.x` status line with a three-digit code, header lines of a
/// token, a colon and a value of visible ASCII, spaces and tabs (no
/// line folding, no bare CR or LF), at most [`MAX_FIELDS`] of them.
pub(crate) fn parse_head(head: &[u8]) -> Result<Head, String> {
    if !head.ends_with(b"\r\n\r\n") {
        return Err(String::from("response head without its end"));
    }
    // Every line, the status line included, ends in CRLF.
    let text = &head[..head.len() - 2];
    let mut lines = text[..text.len() - 1].split(|&b| b == b'\n');
    let status_line = lines.next().unwrap_or_default();
    let status_line = status_line
        .strip_suffix(b"\r")
        .ok_or_else(|| String::from("the status line ends in a bare LF"))?;
    let (version, code) = match status_line {
        [
            b'H',
            b'T',
            b'T',
            b'P',
            b'/',
            b'1',
            b'.',
            minor @ (b'0' | b'1'),
            b' ',
            a,
            b,
            c,
            rest @ ..,
        ] if [a, b, c].iter().all(|d| d.is_ascii_digit())
            && (rest.is_empty() || rest[0] == b' ') =>
        {
            (
                *minor,
                u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'),
            )
        }
        _ => {
            return Err(format!(
                "malformed status line `{}`",
                String::from_utf8_lossy(&status_line[..status_line.len().min(80)])
            ));
        }
    };
    // RFC 9110 §15: every valid status code is within 100..=599.
    if !(100..=599).contains(&code) {
        return Err(format!("invalid status code {code:03}"));
    }
    let mut h = Head {
        status: code,
        close: version == b'0',
        ..Head::default()
    };
    let mut fields = 0usize;
    for line in lines {
        let line = line
            .strip_suffix(b"\r")
            .ok_or_else(|| String::from("a header line ends in a bare LF"))?;
        fields += 1;
        if fields > MAX_FIELDS {
            return Err(format!("more than {MAX_FIELDS} header fields"));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| String::from("a header line without a colon"))?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(String::from("a malformed header name"));
        }
        if !value
            .iter()
            .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80)
        {
            return Err(String::from("a header value with control bytes"));
        }
        let value = String::from_utf8_lossy(value.trim_ascii()).into_owned();
        let once = |slot: &mut Option<String>, what: &str| {
            match slot {
                Some(old) if *old != value => {
                    return Err(format!("two different {what} fields"));
                }
                _ => *slot = Some(value.clone()),
            }
            Ok(())
        };
        match name.to_ascii_lowercase().as_slice() {
            b"content-length" => {
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("malformed Content-Length `{value}`"));
                }
                let n: u64 = value
                    .parse()
                    .map_err(|_| format!("Content-Length `{value}` too large"))?;
                if h.content_length.is_some_and(|old| old != n) {
                    return Err(String::from("two different Content-Length fields"));
                }
                h.content_length = Some(n);
            }
            b"content-range" => once(&mut h.content_range, "Content-Range")?,
            b"content-type" => once(&mut h.content_type, "Content-Type")?,
            b"etag" => once(&mut h.etag, "ETag")?,
            b"last-modified" => once(&mut h.last_modified, "Last-Modified")?,
            b"transfer-encoding" => h.transfer_encoding = true,
            b"connection" => {
                for token in value.split(',').map(str::trim) {
                    if token.eq_ignore_ascii_case("close") {
                        h.close = true;
                    } else if token.eq_ignore_ascii_case("keep-alive") && version == b'0' {
                        h.close = false;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(h)
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        let h = parse_head(
            b"HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\ncontent-range: bytes 0-9/100\r\nETag: \"x\"\r\n\r\n",
        )
        .unwrap();
        assert_eq!(h.status, 206);
        assert_eq!(h.content_length, Some(10));
        assert_eq!(h.content_range.as_deref(), Some("bytes 0-9/100"));
        assert_eq!(h.etag.as_deref(), Some("\"x\""));
        assert!(!h.close);
        assert!(parse_head(b"HTTP/1.0 200\r\n\r\n").unwrap().close);
        for bad in [
            &b"HTTP/2 200 OK\r\n\r\n"[..],
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 026 Partial Content\r\n\r\n",
            b"HTTP/1.1 600 Nope\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n folded\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\x01b\r\n\r\n",
            b"HTTP/1.1 200 OK\nX: a\r\n\r\n",
            b"HTTP/1.1 206 OK\r\nETag: \"a\"\r\nETag: \"b\"\r\n\r\n",
        ] {
            assert!(parse_head(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .unwrap()
                .transfer_encoding
        );
    }

    #[test]
    fn targets() {
        let d = Duration::from_secs(1);
        let t = Target::new("http://h:81/a/b?x=1", String::new(), d, d).unwrap();
        assert_eq!((t.host.as_str(), t.connect.as_str()), ("h:81", "h:81"));
        assert_eq!(t.path, "/a/b?x=1");
        let t = Target::new("http://[::1]/p", String::new(), d, d).unwrap();
        assert_eq!(t.connect, "[::1]:80");
        assert!(Target::new("https://h/p", String::new(), d, d).is_none());
        assert!(Target::new("http://h/a b", String::new(), d, d).is_none());
        let r = Target::new("http://h/p", String::from("X: y\r\n"), d, d)
            .unwrap()
            .request(5, 9, Some("\"e\""));
        assert_eq!(
            r,
            b"GET /p HTTP/1.1\r\nHost: h\r\nAccept-Encoding: identity\r\nRange: bytes=5-9\r\nIf-Range: \"e\"\r\nX: y\r\n\r\n"
        );
    }
}
