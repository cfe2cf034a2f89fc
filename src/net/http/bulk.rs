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

pub(crate) use crate::proto::http_head::{Head, find_end, parse_head};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The longest response head accepted (status line and headers).
pub(crate) const MAX_HEAD: usize = 32 * 1024;

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

// ---------------------------------------------------------------------
// The bulk path of [`HttpSource`](super::HttpSource): opening, reading
// and finishing responses on our own connections.

use super::*;

/// What [`HttpSource::raw_open`] got.
pub(super) enum RawOpen {
    /// A `206` for exactly the bytes asked for; the body follows.
    Body(RawBody),
    /// Not for the bulk path (it is off from now on): ask through `ureq`.
    Fallback,
}

/// A `200` body on the bulk path, read by the spool: `left` bytes (or to
/// the end of the connection).
pub(super) struct RawSpool {
    pub(super) conn: raw::Conn,
    pub(super) left: Option<u64>,
}

impl Read for RawSpool {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = match self.left {
            Some(0) => return Ok(0),
            Some(n) => n.min(buf.len() as u64) as usize,
            None => buf.len(),
        };
        let n = self.conn.read_body(&mut buf[..want])?;
        if let Some(left) = &mut self.left {
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the connection closed inside the body",
                ));
            }
            *left -= n as u64;
        }
        Ok(n)
    }
}

/// A response body being read on the bulk path: bytes `at..end` are
/// still to come.
pub(super) struct RawBody {
    pub(super) conn: raw::Conn,
    pub(super) close: bool,
    pub(super) at: u64,
    pub(super) end: u64,
}

impl HttpSource {
    /// True while single-range requests take the bulk path.
    pub(super) fn raw_enabled(&self) -> bool {
        self.raw.is_some()
            && self.raw_on.load(Ordering::Relaxed)
            && !self.spooling.load(Ordering::Relaxed)
    }

    /// Stop using the bulk path (the server needs what `ureq` does).
    pub(super) fn raw_off(&self) {
        self.raw_on.store(false, Ordering::Relaxed);
        lock(&self.raw_idle).clear();
    }

    pub(super) fn io_error(&self, e: io::Error, what: &str) -> TransportError {
        TransportError::new(io_kind(&e), self.context(what)).with_source(e)
    }

    /// The `HEAD` of [`Self::probe`] on the bulk path (so its connection
    /// is the one the first `GET` reuses): true if it answered `200` with
    /// a length; false (and the bulk path off) for anything else, which
    /// `ureq` then asks again.
    pub(super) fn raw_probe(&mut self) -> Result<bool, TransportError> {
        let Some(target) = &self.raw else {
            return Ok(false);
        };
        let mut conn = target.connect().map_err(|e| self.io_error(e, "HEAD"))?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let head = match conn.exchange(&target.head_request()) {
            Ok(h) => h,
            Err(HeadError::Io(e)) => return Err(self.io_error(e, "HEAD")),
            Err(HeadError::Closed | HeadError::Bad(_)) => {
                self.raw_off();
                return Ok(false);
            }
        };
        match (head.status, head.content_length) {
            (200, Some(len)) => {
                self.learn_fields(head.etag.as_deref(), head.last_modified.as_deref());
                self.len = len;
                if !head.close {
                    // A HEAD response has no body.
                    conn.reused = true;
                    lock(&self.raw_idle).push(conn);
                }
                Ok(true)
            }
            (404 | 410 | 401 | 407, _) => Err(self.status_error(head.status, "HEAD")),
            (c, _) if c == 408 || c == 429 || c >= 500 && c != 501 => {
                Err(self.status_error(c, "HEAD"))
            }
            _ => {
                self.raw_off();
                Ok(false)
            }
        }
    }

    /// Ask for bytes `first..end` (not empty) on the bulk path and check
    /// the response head as strictly as [`Self::fetch_group`] does: a
    /// `206` with the validators of the first response, a
    /// `Content-Range` of exactly the range asked for and the known
    /// length, and a `Content-Length` to match. A different version is
    /// [`TransportErrorKind::Changed`]; statuses map as everywhere; a
    /// redirect, a `200` of the same version (a server ignoring `Range`),
    /// a chunked, multipart or length-less `206` turn the bulk path off
    /// and are asked again through `ureq`.
    pub(super) fn raw_open(
        &self,
        first: u64,
        end: u64,
        what: &str,
    ) -> Result<RawOpen, TransportError> {
        let Some(target) = &self.raw else {
            return Ok(RawOpen::Fallback);
        };
        let request = target.request(first, end - 1, self.if_range.as_deref());
        let bad = |detail: String| {
            self.error(TransportErrorKind::Protocol, &format!("{what}: {detail}"))
                .with_range(first..end)
        };
        let (mut conn, head) = loop {
            let pooled = lock(&self.raw_idle).pop();
            let fresh = pooled.is_none();
            let mut conn = match pooled {
                Some(c) => c,
                None => target.connect().map_err(|e| self.io_error(e, what))?,
            };
            self.requests.fetch_add(1, Ordering::Relaxed);
            match conn.exchange(&request) {
                Ok(head) => break (conn, head),
                // A kept-alive connection the server closed while idle.
                Err(HeadError::Closed | HeadError::Io(_)) if !fresh => continue,
                Err(HeadError::Closed) => {
                    return Err(self
                        .error(
                            TransportErrorKind::ConnectionLost,
                            &format!("{what}: the connection closed before a response"),
                        )
                        .with_range(first..end));
                }
                Err(HeadError::Io(e)) => return Err(self.io_error(e, what).with_range(first..end)),
                Err(HeadError::Bad(detail)) => return Err(bad(detail)),
            }
        };
        let (etag, lm) = (head.etag.as_deref(), head.last_modified.as_deref());
        match head.status {
            206 => self.check_validators(etag, lm, None, false, what)?,
            200 => {
                self.check_validators(etag, lm, head.content_length, true, what)?;
                self.raw_off();
                if head.transfer_encoding {
                    return Ok(RawOpen::Fallback);
                }
                // The server ignores `Range`: this body is the package;
                // spool it rather than ask again.
                let body = RawSpool {
                    conn,
                    left: head.content_length,
                };
                self.start_spool(Box::new(body))?;
                return Ok(RawOpen::Fallback);
            }
            416 => {
                return Err(self
                    .unsatisfied_error(head.content_range.as_deref(), what)
                    .with_range(first..end));
            }
            300..=399 => {
                self.raw_off();
                return Ok(RawOpen::Fallback);
            }
            code => return Err(self.status_error(code, what).with_range(first..end)),
        }
        let multipart = head.content_type.as_deref().is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/")
        });
        if head.transfer_encoding || multipart || head.content_length.is_none() {
            self.raw_off();
            return Ok(RawOpen::Fallback);
        }
        let Some(cr) = head.content_range.as_deref() else {
            return Err(bad(String::from("206 without Content-Range")));
        };
        match parse_content_range(cr.as_bytes()) {
            Ok(ContentRange::Satisfied {
                first: f,
                last,
                complete,
            }) => {
                self.check_complete(complete, what, cr, &bad)?;
                if f != first || last.checked_add(1) != Some(end) {
                    return Err(bad(format!(
                        "Content-Range `{cr}` is not the range asked for"
                    )));
                }
            }
            _ => return Err(bad(format!("malformed Content-Range `{cr}`"))),
        }
        if head.content_length != Some(end - first) {
            return Err(bad(format!(
                "Content-Length {:?} disagrees with Content-Range `{cr}`",
                head.content_length
            )));
        }
        conn.reused = false;
        Ok(RawOpen::Body(RawBody {
            conn,
            close: head.close,
            at: first,
            end,
        }))
    }

    /// Read the next bytes of `body` into `buf` (at most what is left):
    /// the count, never 0.
    pub(super) fn raw_next(
        &self,
        body: &mut RawBody,
        buf: &mut [u8],
        what: &str,
    ) -> Result<usize, TransportError> {
        let want = (body.end - body.at).min(buf.len() as u64) as usize;
        match body.conn.read_body(&mut buf[..want]) {
            Ok(0) => Err(self
                .error(
                    TransportErrorKind::ConnectionLost,
                    &format!("{what}: body ended at {}", body.at),
                )
                .with_range(body.at..body.end)),
            Ok(n) => {
                self.body_bytes.fetch_add(n as u64, Ordering::Relaxed);
                body.at += n as u64;
                Ok(n)
            }
            Err(e) => Err(self.io_error(e, what).with_range(body.at..body.end)),
        }
    }

    /// A body read to its end: keep its connection for the next request.
    pub(super) fn raw_done(&self, body: RawBody) {
        if body.at == body.end && !body.close {
            let mut conn = body.conn;
            conn.reused = true;
            let mut idle = lock(&self.raw_idle);
            if idle.len() < 4 {
                idle.push(conn);
            }
        }
    }

    /// [`Self::read_single`] on the bulk path.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn raw_read(
        &self,
        mut body: RawBody,
        first: u64,
        end: u64,
        group: &mut [Want],
        buf: &mut [u8],
        sink: &mut ChunkSink<'_>,
        what: &str,
    ) -> Result<Outcome, TransportError> {
        debug_assert_eq!((body.at, body.end), (first, end));
        while body.at < body.end {
            if group.iter().all(Want::done) {
                return Ok(Outcome::Done);
            }
            let at = body.at;
            let n = self.raw_next(&mut body, buf, what)?;
            if deliver(group, at, &buf[..n], sink).is_break() {
                return Ok(Outcome::Break);
            }
        }
        self.raw_done(body);
        if !group.iter().all(Want::done) {
            return Err(self.error(
                TransportErrorKind::Protocol,
                &format!("{what}: bytes missing from the response"),
            ));
        }
        Ok(Outcome::Done)
    }

    /// Fill `buf` with the package's bytes at `at` on the bulk path,
    /// continuing the response in `stream` when it is at `at`; a new `GET`
    /// asks for `at..until` (`until` at least the end of `buf`: the end of
    /// the range a driver announced). Each `GET` carries `If-Range`, so a
    /// package replaced between two requests is noticed. Retryable
    /// failures are retried as [`HttpSource`] retries (backoff, at most
    /// [`HttpOptions::max_attempts`] without progress), asking only for
    /// what has not arrived. When the server turns out to need `ureq` (see
    /// [`HttpSource::raw_open`]), the rest is read through `ureq`.
    ///
    /// # Errors
    /// As [`RangeSource::read_ranges`]: a retryable error only after the
    /// attempts ran out; [`TransportErrorKind::Changed`] at once.
    pub(super) fn bulk_read_exact_at(
        &self,
        stream: &mut BulkStream,
        at: u64,
        buf: &mut [u8],
        until: u64,
    ) -> Result<(), TransportError> {
        let end = at.saturating_add(buf.len() as u64);
        let until = until.clamp(end, self.len.max(end));
        if end > self.len {
            return Err(self
                .error(
                    TransportErrorKind::RangeNotSatisfiable,
                    &format!("the package is {} bytes", self.len),
                )
                .with_range(at..end));
        }
        let mut got = 0usize;
        let mut failures = 0u32;
        while got < buf.len() {
            let pos = at + got as u64;
            if stream.body.as_ref().is_none_or(|b| b.at != pos) {
                stream.body = None;
                if !self.raw_enabled() {
                    return self.plain_read_exact_at(pos, &mut buf[got..]);
                }
                let what = format!("GET bytes {pos}..{until}");
                match self.raw_open(pos, until, &what) {
                    Ok(RawOpen::Body(b)) => stream.body = Some(b),
                    Ok(RawOpen::Fallback) => continue,
                    Err(e) if self.retry_after(&mut failures, false, &e) => continue,
                    Err(e) => return Err(e),
                }
            }
            let Some(body) = stream.body.as_mut() else {
                continue;
            };
            let what = format!("GET bytes {pos}..{}", body.end);
            match self.raw_next(body, &mut buf[got..], &what) {
                Ok(n) => {
                    got += n;
                    failures = 0;
                    if body.at == body.end
                        && let Some(b) = stream.body.take()
                    {
                        self.raw_done(b);
                    }
                }
                Err(e) => {
                    stream.body = None;
                    if self.retry_after(&mut failures, false, &e) {
                        continue;
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// [`RangeSource::read_exact_at`] through `read_ranges` (`ureq`, or
    /// one bulk `GET` per call).
    pub(super) fn plain_read_exact_at(
        &self,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), TransportError> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let n = self.read_at(at, &mut buf[done..])?;
            if n == 0 {
                return Err(self
                    .error(
                        TransportErrorKind::RangeNotSatisfiable,
                        &format!("the package ends at {at}"),
                    )
                    .with_range(offset..offset + buf.len() as u64));
            }
            done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
