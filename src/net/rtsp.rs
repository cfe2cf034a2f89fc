//! [`RtspSource`]: a [`RangeSource`] over one RTSP or RTSPS session
//! (`docs/RTSP.md`).
//!
//! - One connection per package: DESCRIBE, SETUP pinned to the package
//!   version the server described (`…/version=<GUID>`), PLAY with
//!   `x-Sft-Range: none` (no background stream), then every range the
//!   streaming session asks for becomes an out-of-sequence fetch
//!   (`SET_PARAMETER` with `x-Sft-Fetch`), several pipelined at once.
//! - A dropped connection is re-established (bounded attempts with
//!   back-off) with a SETUP of the same version GUID, and only the bytes not
//!   yet delivered are fetched again: each byte reaches the sink at most
//!   once. If that version is gone from the server, the error is
//!   [`TransportErrorKind::Changed`].
//!   A protocol error on the connection (a corrupted byte in the framing,
//!   an answer that makes no sense) is handled the same way, within the
//!   same attempt budget: the connection is no longer in a known state, a
//!   new one may be clean.
//! - RTSPS through rustls with the system roots, or only the certificates
//!   of a PEM CA file ([`RtspOptions::ca_file`]); a server certificate
//!   given exactly in the CA file is accepted even when it is a CA
//!   certificate (pinning, as for HTTPS). A refused certificate is not
//!   retried, and its error says what is wrong and how to make one that
//!   works.
//!
//! ```no_run
//! use sft::stream::{SessionConfig, StreamSession};
//! use sft::io::drive;
//! use sft::net::rtsp::{RtspOptions, RtspSource};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let source = RtspSource::open("rtsp://streaming.example/apps/app.sft", &RtspOptions::default())?;
//! let mut session = StreamSession::new(SessionConfig::default());
//! let mut copy = Vec::new();
//! drive::drive(&mut session, &source, &mut copy)?;
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::ops::{ControlFlow, Range};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rtsp_types::headers::{self, HeaderName};
use rtsp_types::{Method, Request, Response, Url, Version};

use crate::format::guid::Guid;
use crate::io::{ChunkSink, RangeSource};
use crate::net::tls;
use crate::proto::rtsp::{
    self as proto, FLAG_END, Frame, Limits, PACKET_PREFIX_LEN, PacketHeader, RTP_HEADER_LEN,
    SFT_HEADER_LEN,
};
use crate::stream::{TransportError, TransportErrorKind};

/// True for `rtsp://` and `rtsps://` URLs (any case).
///
/// ```
/// use sft::net::rtsp::is_rtsp_url;
///
/// assert!(is_rtsp_url("rtsp://h/app.sft"));
/// assert!(is_rtsp_url("RTSPS://h:322/app.sft"));
/// assert!(!is_rtsp_url("https://h/app.sft"));
/// ```
pub fn is_rtsp_url(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("rtsp://") || lower.starts_with("rtsps://")
}

/// Options of [`RtspSource::open`]. By-value setters.
///
/// ```
/// use sft::net::rtsp::RtspOptions;
/// use std::time::Duration;
///
/// let o = RtspOptions::default().timeout(Duration::from_secs(5)).pipeline_depth(8);
/// assert_eq!(o.get_pipeline_depth(), 8);
/// ```
#[derive(Clone)]
pub struct RtspOptions {
    /// The `Authorization` header value sent with every request.
    authorization: Option<String>,
    ca_file: Option<PathBuf>,
    timeout: Duration,
    max_attempts: u32,
    pipeline_depth: usize,
    ranges_per_request: usize,
}

impl fmt::Debug for RtspOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RtspOptions")
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .field("ca_file", &self.ca_file)
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .field("pipeline_depth", &self.pipeline_depth)
            .field("ranges_per_request", &self.ranges_per_request)
            .finish()
    }
}

impl Default for RtspOptions {
    fn default() -> Self {
        RtspOptions {
            authorization: None,
            ca_file: None,
            timeout: Duration::from_secs(30),
            max_attempts: 1,
            pipeline_depth: 4,
            ranges_per_request: 64,
        }
    }
}

impl RtspOptions {
    /// Send `Authorization: Bearer TOKEN` with every request (a
    /// Management Server's token: `sft manage serve --rtsp`). Use it over
    /// RTSPS: over plain RTSP the token crosses the network in the clear.
    /// It is never shown.
    pub fn bearer_token(mut self, token: impl AsRef<str>) -> Self {
        self.authorization = Some(format!("Bearer {}", token.as_ref()));
        self
    }

    /// Trust only the certificates in this PEM file for RTSPS (instead of
    /// the system roots). A self-signed server certificate given here
    /// exactly is accepted even when it is marked as a CA (pinning,
    /// `docs/HTTP.md` "Client TLS").
    ///
    /// ```
    /// # use sft::net::rtsp::RtspOptions;
    /// let o = RtspOptions::default().ca_file("ca.pem");
    /// ```
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Connect and I/O timeout (a stalled server).
    ///
    /// ```
    /// # use sft::net::rtsp::RtspOptions;
    /// let o = RtspOptions::default().timeout(std::time::Duration::from_secs(3));
    /// ```
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t.max(Duration::from_millis(10));
        self
    }

    /// Connections tried per call before a retryable error is returned
    /// (default and at least 1: a stream session retries the source within
    /// its window, [`SessionConfig::retry`](crate::stream::SessionConfig::retry),
    /// so retries here would multiply with its).
    ///
    /// ```
    /// # use sft::net::rtsp::RtspOptions;
    /// let o = RtspOptions::default().max_attempts(2);
    /// ```
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Fetch requests in flight at once (at least 1).
    ///
    /// ```
    /// # use sft::net::rtsp::RtspOptions;
    /// assert_eq!(RtspOptions::default().pipeline_depth(0).get_pipeline_depth(), 1);
    /// ```
    pub fn pipeline_depth(mut self, n: usize) -> Self {
        self.pipeline_depth = n.max(1);
        self
    }

    /// The pipeline depth.
    ///
    /// ```
    /// # use sft::net::rtsp::RtspOptions;
    /// assert_eq!(RtspOptions::default().get_pipeline_depth(), 4);
    /// ```
    pub fn get_pipeline_depth(&self) -> usize {
        self.pipeline_depth
    }
}

/// A connection, plain or TLS.
type Conn = crate::io::conn::Conn<rustls::ClientConnection>;

/// An established, playing session.
struct Live {
    conn: Conn,
    /// Bytes received; `buf[start..end]` is not decoded yet. Its length is
    /// its capacity (zeroed once): reads go straight into `buf[end..]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    cseq: u32,
    session: String,
    /// The `Authorization` value sent with every request.
    authorization: Option<String>,
    /// The payload length of the packets streamed so far (the largest
    /// seen): what [`Live::packets_into`] expects the next ones to carry.
    hint: usize,
}

/// Bytes asked of the socket at a time (and the receive buffer's size,
/// unless one frame needs more).
const RECV_BUF: usize = 256 * 1024;

/// Packets a `readv` asks for beyond the one being read, when streaming
/// into a destination ([`Live::packets_into`]).
const SPECULATE: usize = 8;

/// A piece of a [`Live::receive_packets`] `readv`: a payload's place in
/// the destination, or a head's slot in the buffer.
#[derive(Clone)]
enum Seg {
    Payload(Range<usize>),
    Head(usize),
}

/// If `head` is a data packet's head (the interleaved prefix, RTP and sft
/// headers) that `accept` takes at `at`, its payload length.
fn data_packet(
    head: &[u8],
    accept: &impl Fn(&PacketHeader, usize, usize) -> bool,
    at: usize,
) -> Option<usize> {
    let (prefix, rest) = head.split_first_chunk::<4>()?;
    let [dollar, channel, hi, lo] = *prefix;
    if dollar != b'$' || channel % 2 != 0 {
        return None;
    }
    let n =
        usize::from(u16::from_be_bytes([hi, lo])).checked_sub(RTP_HEADER_LEN + SFT_HEADER_LEN)?;
    let (h, _) = PacketHeader::parse(rest)?;
    accept(&h, n, at).then_some(n)
}

/// What a connection delivered.
enum Item {
    Reply(Response<Vec<u8>>),
    /// A data packet: its header and where its payload lies in
    /// [`Live::buf`] (valid until the next [`Live::next_item`]).
    Packet(PacketHeader, Range<usize>),
}

fn terr(kind: TransportErrorKind, msg: impl Into<String>) -> TransportError {
    TransportError::new(kind, msg)
}

fn io_err(endpoint: &str, what: &str, e: &io::Error) -> TransportError {
    if tls::is_tls_error(e) {
        // A refused certificate or a failed handshake: a retry meets the
        // same certificate.
        let hint = tls::io_hint(e)
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        return terr(
            TransportErrorKind::Other,
            format!("{endpoint}: {what}: {e}{hint}"),
        );
    }
    let kind = match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => TransportErrorKind::Timeout,
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionRefused => TransportErrorKind::ConnectionLost,
        io::ErrorKind::InvalidData => TransportErrorKind::Protocol,
        _ => TransportErrorKind::Io,
    };
    terr(kind, format!("{endpoint}: {what}: {e}"))
}

fn status_kind(status: u16) -> TransportErrorKind {
    match status {
        404 => TransportErrorKind::NotFound,
        401 | 407 => TransportErrorKind::Authentication,
        403 => TransportErrorKind::PermissionDenied,
        457 => TransportErrorKind::RangeNotSatisfiable,
        // The session vanished (server restart, timeout) or the server is
        // busy: a new connection may succeed.
        454 | 455 | 503 => TransportErrorKind::ConnectionLost,
        _ => TransportErrorKind::Protocol,
    }
}

impl Live {
    fn new(conn: Conn) -> Live {
        Live {
            conn,
            buf: vec![0; RECV_BUF],
            start: 0,
            end: 0,
            cseq: 0,
            session: String::new(),
            authorization: None,
            hint: 0,
        }
    }

    /// Receive packets of a streaming fetch straight into `dst`, several
    /// per `readv`; the bytes of `dst` filled (0: the cursor is at
    /// something else, a reply, a packet not `accept`ed or one already
    /// whole in the buffer, and the caller decodes as usual).
    ///
    /// `accept(header, payload_len, at)` says whether a packet belongs in
    /// `dst` at `at`. `open` carries, between calls, the payload bytes of
    /// an accepted packet still on the socket (a packet that runs past the
    /// end of one `dst` continues into the next): while it is not 0, the
    /// buffer is empty and the socket's next bytes are that payload.
    ///
    /// Once the packet size is known ([`Live::hint`]), a `readv` also asks
    /// for the heads and payloads of the packets after the one being read,
    /// payloads straight into their places in `dst` and heads into the
    /// buffer; each head is checked when it arrives, and what follows a
    /// head that does not match is given back to the buffer to be decoded
    /// as usual. Bytes past the filled length of `dst` may be overwritten.
    fn packets_into(
        &mut self,
        endpoint: &str,
        dst: &mut [u8],
        open: &mut usize,
        accept: impl Fn(&PacketHeader, usize, usize) -> bool,
    ) -> Result<usize, TransportError> {
        let mut done = 0usize;
        loop {
            if done == dst.len() {
                return Ok(done);
            }
            if *open == 0 {
                // At a frame boundary: a head must be buffered whole, and
                // its packet only partly (a whole one is decoded as usual).
                let avail = self.end - self.start;
                if avail < PACKET_PREFIX_LEN {
                    if avail == 0 && self.hint > 0 {
                        // The next head is still on its way: read it (and
                        // what follows) with the packets after it.
                        self.start = 0;
                        self.end = 0;
                    } else {
                        return Ok(done);
                    }
                } else {
                    let head = self.buf.get(self.start..self.start + PACKET_PREFIX_LEN);
                    let Some(n) = head.and_then(|h| data_packet(h, &accept, done)) else {
                        return Ok(done);
                    };
                    let buffered = avail - PACKET_PREFIX_LEN;
                    if buffered >= n || buffered > dst.len() - done {
                        return Ok(done);
                    }
                    let from = self.start + PACKET_PREFIX_LEN;
                    dst[done..done + buffered].copy_from_slice(&self.buf[from..from + buffered]);
                    done += buffered;
                    *open = n - buffered;
                    self.hint = self.hint.max(n);
                    self.start = 0;
                    self.end = 0;
                    continue;
                }
            }
            done = self.receive_packets(endpoint, dst, done, open, &accept)?;
        }
    }

    /// One `readv` for [`Live::packets_into`], from `done` (with `open`
    /// payload bytes of the current packet to come, or at a frame
    /// boundary with an empty buffer); the new `done`.
    fn receive_packets(
        &mut self,
        endpoint: &str,
        dst: &mut [u8],
        mut done: usize,
        open: &mut usize,
        accept: &impl Fn(&PacketHeader, usize, usize) -> bool,
    ) -> Result<usize, TransportError> {
        // The plan: the current payload (what fits in `dst`), then heads
        // (buffer slots) and predicted payloads, ending with a head slot
        // unless a payload runs to the end of `dst` mid-packet.
        if done >= dst.len() {
            return Ok(done);
        }
        let mut plan: Vec<Seg> = Vec::with_capacity(2 * SPECULATE + 2);
        let mut at = done;
        let mut mid_packet = false;
        if *open > 0 {
            let n = (*open).min(dst.len() - at);
            plan.push(Seg::Payload(at..at + n));
            at += n;
            mid_packet = n < *open;
        }
        let mut slots = 0;
        while !mid_packet {
            plan.push(Seg::Head(slots));
            slots += 1;
            if self.hint == 0 || at == dst.len() || slots > SPECULATE {
                break;
            }
            let n = self.hint.min(dst.len() - at);
            plan.push(Seg::Payload(at..at + n));
            at += n;
            mid_packet = n < self.hint;
        }
        if self.buf.len() < slots * PACKET_PREFIX_LEN {
            self.buf.resize(RECV_BUF.max(slots * PACKET_PREFIX_LEN), 0);
        }
        let got = {
            let mut bufs: Vec<io::IoSliceMut<'_>> = Vec::with_capacity(plan.len());
            let (mut rest_dst, mut rest_buf) = (&mut dst[done..], &mut self.buf[..]);
            for seg in &plan {
                match seg {
                    Seg::Payload(r) => {
                        // The payloads follow each other from `done`.
                        let (this, tail) = rest_dst.split_at_mut(r.len());
                        bufs.push(io::IoSliceMut::new(this));
                        rest_dst = tail;
                    }
                    Seg::Head(_) => {
                        let (this, tail) = rest_buf.split_at_mut(PACKET_PREFIX_LEN);
                        bufs.push(io::IoSliceMut::new(this));
                        rest_buf = tail;
                    }
                }
            }
            loop {
                match self.conn.read_vectored(&mut bufs) {
                    Ok(0) => {
                        return Err(terr(
                            TransportErrorKind::ConnectionLost,
                            format!("{endpoint}: the server closed the connection"),
                        ));
                    }
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(io_err(endpoint, "reading", &e)),
                }
            }
        };
        // Walk the plan over the `got` bytes received.
        let mut left = got;
        let mut i = 0;
        while left > 0 {
            match plan.get(i).cloned() {
                Some(Seg::Payload(r)) => {
                    // The payload of an accepted packet (the current one,
                    // or one whose head was checked just before).
                    let n = left.min(r.len());
                    done += n;
                    *open -= n;
                    left -= n;
                }
                Some(Seg::Head(k)) => {
                    let slot = k * PACKET_PREFIX_LEN;
                    if left < PACKET_PREFIX_LEN {
                        // Part of a head: the buffer holds it.
                        self.buf.copy_within(slot..slot + left, 0);
                        (self.start, self.end) = (0, left);
                        return Ok(done);
                    }
                    left -= PACKET_PREFIX_LEN;
                    let head = &self.buf[slot..slot + PACKET_PREFIX_LEN];
                    let n = data_packet(head, accept, done);
                    let next = plan.get(i + 1);
                    let fits = match (n, next) {
                        // Its payload lands where it was predicted.
                        (Some(n), Some(Seg::Payload(r))) => {
                            r.start == done && r.len() == n.min(dst.len() - done)
                        }
                        // The last thing asked for: its payload comes next.
                        (Some(_), None) => left == 0 && done < dst.len(),
                        _ => false,
                    };
                    if !fits {
                        // Give back the head and all that came after it.
                        let mut back = Vec::with_capacity(PACKET_PREFIX_LEN + left);
                        back.extend_from_slice(head);
                        let mut more = left;
                        for seg in plan.get(i + 1..).unwrap_or_default() {
                            if more == 0 {
                                break;
                            }
                            let from = match seg {
                                Seg::Payload(r) => dst.get(r.clone()),
                                Seg::Head(k) => {
                                    let s = k * PACKET_PREFIX_LEN;
                                    self.buf.get(s..s + PACKET_PREFIX_LEN)
                                }
                            }
                            .unwrap_or_default();
                            let n = more.min(from.len());
                            back.extend_from_slice(&from[..n]);
                            more -= n;
                        }
                        if self.buf.len() < back.len() {
                            self.buf.resize(back.len(), 0);
                        }
                        self.buf[..back.len()].copy_from_slice(&back);
                        (self.start, self.end) = (0, back.len());
                        return Ok(done);
                    }
                    if let Some(n) = n {
                        *open = n;
                        self.hint = self.hint.max(n);
                    }
                }
                None => break,
            }
            i += 1;
        }
        if *open == 0 {
            (self.start, self.end) = (0, 0);
        }
        Ok(done)
    }

    /// Receive and drop `n` bytes (the buffer is empty: the rest of a
    /// packet [`Live::packets_into`] left open).
    fn skip(&mut self, mut n: usize) -> io::Result<()> {
        while n > 0 {
            let want = n.min(self.buf.len());
            match self.conn.read(&mut self.buf[..want]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(got) => n -= got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        (self.start, self.end) = (0, 0);
        Ok(())
    }

    /// The bytes of a packet payload from [`Item::Packet`].
    fn payload(&self, at: &Range<usize>) -> &[u8] {
        self.buf.get(at.clone()).unwrap_or_default()
    }

    /// Read until one item arrives. Each received byte is copied once, from
    /// the socket into `buf`; frames are decoded in place.
    fn next_item(&mut self, endpoint: &str) -> Result<Item, TransportError> {
        let limits = Limits {
            max_head: 64 * 1024,
            max_body: 1024 * 1024,
        };
        loop {
            let pending = self.buf.get(self.start..self.end).unwrap_or_default();
            let decoded = proto::decode(pending, &limits)
                .map_err(|e| terr(TransportErrorKind::Protocol, format!("{endpoint}: {e}")))?;
            if let Some((frame, used)) = decoded {
                // The frame ends at `start + used`; a packet's payload is
                // the frame's tail.
                let frame_end = self.start + used;
                let item = match frame {
                    Frame::Response(r) => Some(Item::Reply(r)),
                    Frame::Data { channel, payload } if channel % 2 == 0 => {
                        let (h, d) = PacketHeader::parse(payload).ok_or_else(|| {
                            terr(
                                TransportErrorKind::Protocol,
                                format!("{endpoint}: not an sft RTP packet"),
                            )
                        })?;
                        Some(Item::Packet(h, frame_end - d.len()..frame_end))
                    }
                    // RTCP from the server (its BYE): nothing to do.
                    Frame::Data { .. } => None,
                    Frame::Request(_) => {
                        return Err(terr(
                            TransportErrorKind::Protocol,
                            format!("{endpoint}: the server sent a request"),
                        ));
                    }
                };
                self.start = frame_end;
                if let Some(item) = item {
                    return Ok(item);
                }
                continue;
            }
            self.make_room(limits.max_head + limits.max_body);
            let spare = self.buf.get_mut(self.end..).unwrap_or_default();
            if spare.is_empty() {
                return Err(terr(
                    TransportErrorKind::Protocol,
                    format!(
                        "{endpoint}: no complete frame in {} bytes from the server",
                        self.end - self.start
                    ),
                ));
            }
            match self.conn.read(spare) {
                Ok(0) => {
                    return Err(terr(
                        TransportErrorKind::ConnectionLost,
                        format!("{endpoint}: the server closed the connection"),
                    ));
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err(endpoint, "reading", &e)),
            }
        }
    }

    /// Free space after `end` for the next read: move the undecoded bytes
    /// to the front when they are few (or the buffer is full), and grow the
    /// buffer only while one frame needs more than it holds (a response
    /// with a body, up to `max_frame`; decode's limits refuse larger).
    fn make_room(&mut self, max_frame: usize) {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.buf.len() || self.end - self.start <= self.start {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        if self.end == self.buf.len() && self.buf.len() < max_frame + RECV_BUF {
            self.buf.resize(self.buf.len() * 2, 0);
        }
    }

    /// Send a request; its CSeq.
    fn send(
        &mut self,
        endpoint: &str,
        method: Method,
        url: &Url,
        extra: &[(HeaderName, String)],
        body: &[u8],
    ) -> Result<u32, TransportError> {
        self.cseq += 1;
        let mut b = Request::builder(method, Version::V1_0)
            .request_uri(url.clone())
            .header(headers::CSEQ, self.cseq.to_string())
            .header(headers::USER_AGENT, "sft");
        if !self.session.is_empty() {
            b = b.header(headers::SESSION, self.session.clone());
        }
        if let Some(a) = &self.authorization {
            b = b.header(headers::AUTHORIZATION, a.clone());
        }
        for (n, v) in extra {
            b = b.header(n.clone(), v.clone());
        }
        let mut out = Vec::new();
        b.build(body.to_vec())
            .write(&mut out)
            .map_err(|e| terr(TransportErrorKind::Other, format!("{endpoint}: {e}")))?;
        self.conn
            .write_all(&out)
            .and_then(|()| self.conn.flush())
            .map_err(|e| io_err(endpoint, "sending a request", &e))?;
        Ok(self.cseq)
    }

    /// Send a request and wait for its response (packets in between are
    /// dropped: none are expected outside fetches).
    fn call(
        &mut self,
        endpoint: &str,
        method: Method,
        url: &Url,
        extra: &[(HeaderName, String)],
    ) -> Result<Response<Vec<u8>>, TransportError> {
        let name: &str = (&method).into();
        let name = name.to_owned();
        let cseq = self.send(endpoint, method, url, extra, b"")?;
        for _ in 0..100_000 {
            if let Item::Reply(r) = self.next_item(endpoint)? {
                if cseq_of(&r) != Some(cseq) {
                    continue;
                }
                let status = u16::from(r.status());
                if status != 200 {
                    return Err(terr(
                        status_kind(status),
                        format!("{endpoint}: {name} answered {status} {}", r.reason_phrase()),
                    ));
                }
                return Ok(r);
            }
        }
        Err(terr(
            TransportErrorKind::Protocol,
            format!("{endpoint}: no answer to {name}"),
        ))
    }
}

fn cseq_of(r: &Response<Vec<u8>>) -> Option<u32> {
    r.header(&headers::CSEQ)
        .and_then(|v| v.as_str().trim().parse().ok())
}

fn header<'r>(r: &'r Response<Vec<u8>>, name: &'static str) -> Option<&'r str> {
    let n = HeaderName::from_static_str(name).ok()?;
    r.header(&n).map(|v| v.as_str())
}

fn x_header(name: &'static str) -> HeaderName {
    HeaderName::from_static_str(name).unwrap_or(headers::USER_AGENT)
}

/// The parts of an `rtsp(s)://` URL.
#[derive(Debug, Clone)]
struct Target {
    url: Url,
    host: String,
    port: u16,
    tls: bool,
}

fn parse_target(s: &str) -> Result<Target, TransportError> {
    let bad = |why: &str| {
        terr(
            TransportErrorKind::Other,
            format!("`{}`: {why}", crate::redact_url(s)),
        )
    };
    if !is_rtsp_url(s) {
        return Err(bad("not an rtsp:// or rtsps:// URL"));
    }
    let mut url = Url::parse(s).map_err(|e| bad(&e.to_string()))?;
    // Credentials in the URL would only travel in every request line
    // (and into the server's logs), so they are dropped here, before
    // anything is sent; a token goes in a header
    // ([`RtspOptions::bearer_token`]).
    let _ = url.set_password(None);
    let _ = url.set_username("");
    let tls = url.scheme().eq_ignore_ascii_case("rtsps");
    let host = url
        .host_str()
        .ok_or_else(|| bad("no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url.port().unwrap_or(if tls { 322 } else { 554 });
    Ok(Target {
        url,
        host,
        port,
        tls,
    })
}

fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TransportError> {
    let bad = |d: String| terr(TransportErrorKind::Other, d);
    let certs = ca_file.map(tls::ca_file_certs).transpose().map_err(bad)?;
    tls::client_config(certs.as_deref()).map_err(bad)
}

/// Whether an error on a connection is worth a new connection: the
/// transient kinds and protocol errors (a corrupted byte in the framing
/// leaves the connection in an unknown state; a new one may be clean),
/// within the same attempt budget.
fn reconnect_helps(e: &TransportError) -> bool {
    e.is_retryable() || e.kind() == TransportErrorKind::Protocol
}

/// `e`, met on a connection that is now dropped, as the caller should see
/// it: a protocol error there (a corrupted byte in the framing) is a lost
/// connection, which the stream session retries on a new one.
fn dropped(e: TransportError) -> TransportError {
    if e.kind() != TransportErrorKind::Protocol {
        return e;
    }
    let mut lost = TransportError::new(
        TransportErrorKind::ConnectionLost,
        format!("{e} (the connection was dropped)"),
    );
    if let Some(r) = e.range() {
        lost = lost.with_range(r);
    }
    lost
}

/// What the server said about the package at the first connection.
#[derive(Debug, Clone, Copy)]
struct Pinned {
    len: u64,
    version_guid: Guid,
    version: u32,
}

struct State {
    live: Option<Live>,
    reconnects: u64,
    /// The range a driver said it will read in order
    /// ([`RangeSource::will_read`]), not asked for yet.
    planned: Option<Range<u64>>,
    /// The fetch of a planned range, being read piece by piece.
    stream: Option<Stream>,
}

/// One fetch streaming into [`RangeSource::read_exact_at`] calls.
struct Stream {
    tag: u32,
    /// The next byte a read gets (`pending` holds it when not empty).
    next: u64,
    end: u64,
    /// Payload bytes received and not yet read, in [`Live::buf`].
    pending: Range<usize>,
    /// Payload bytes of a packet of this fetch still on the socket (see
    /// [`Live::packets_into`]).
    open: usize,
}

/// Past this many bytes left in an abandoned stream, a new connection is
/// cheaper than receiving them.
const DRAIN_MAX: u64 = 1 << 20;

/// A package streamed over RTSP or RTSPS: a [`RangeSource`] whose reads are
/// out-of-sequence fetches on one session (see the [module docs](self)).
///
/// ```no_run
/// use sft::io::RangeSource;
/// use sft::net::rtsp::{RtspOptions, RtspSource};
///
/// let src = RtspSource::open("rtsps://streaming.example:322/app.sft", &RtspOptions::default().ca_file("ca.pem"))?;
/// let mut head = [0u8; 128];
/// src.read_exact_at(0, &mut head)?;
/// println!("version {} ({}), {} bytes", src.package_version(), src.version_guid(), src.len()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RtspSource {
    target: Target,
    endpoint: String,
    options: RtspOptions,
    tls: Option<Arc<rustls::ClientConfig>>,
    pinned: Pinned,
    state: Mutex<State>,
}

impl fmt::Debug for RtspSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RtspSource")
            .field("endpoint", &self.endpoint)
            .field("len", &self.pinned.len)
            .field("version", &self.pinned.version)
            .finish()
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One fetch in flight: its ranges and how far each got.
struct InFlight {
    tag: u32,
    ranges: Vec<(Range<u64>, u64)>,
}

impl RtspSource {
    /// Connect, DESCRIBE, SETUP (pinning the version described), PLAY
    /// without a background stream.
    ///
    /// # Errors
    /// A bad URL or CA file; the server unreachable, refusing (404 →
    /// [`TransportErrorKind::NotFound`]) or speaking something else.
    ///
    /// ```
    /// use sft::net::rtsp::{RtspOptions, RtspSource};
    ///
    /// assert!(RtspSource::open("http://h/app.sft", &RtspOptions::default()).is_err());
    /// ```
    pub fn open(url: &str, options: &RtspOptions) -> Result<RtspSource, TransportError> {
        let target = parse_target(url)?;
        let endpoint = format!(
            "{}://{}:{}{}",
            target.url.scheme(),
            target.host,
            target.port,
            target.url.path()
        );
        let tls = if target.tls {
            Some(tls_config(options.ca_file.as_deref())?)
        } else {
            None
        };
        let mut src = RtspSource {
            target,
            endpoint,
            options: options.clone(),
            tls,
            pinned: Pinned {
                len: 0,
                version_guid: Guid::NIL,
                version: 0,
            },
            state: Mutex::new(State {
                live: None,
                reconnects: 0,
                planned: None,
                stream: None,
            }),
        };
        let mut attempt = 0u32;
        let (live, pinned) = loop {
            match src.establish(None) {
                Ok(ok) => break ok,
                Err(e) => {
                    attempt += 1;
                    if !reconnect_helps(&e) || attempt >= src.options.max_attempts {
                        return Err(e);
                    }
                    std::thread::sleep(Duration::from_millis(50 << attempt.min(5)));
                }
            }
        };
        src.pinned = pinned;
        lock(&src.state).live = Some(live);
        Ok(src)
    }

    /// The package version this source streams (pinned at open).
    ///
    /// ```no_run
    /// # use sft::net::rtsp::{RtspOptions, RtspSource};
    /// let src = RtspSource::open("rtsp://h/app.sft", &RtspOptions::default())?;
    /// println!("{}", src.package_version());
    /// # Ok::<(), sft::stream::TransportError>(())
    /// ```
    pub fn package_version(&self) -> u32 {
        self.pinned.version
    }

    /// The version GUID this source streams.
    ///
    /// ```no_run
    /// # use sft::net::rtsp::{RtspOptions, RtspSource};
    /// let src = RtspSource::open("rtsp://h/app.sft", &RtspOptions::default())?;
    /// println!("{}", src.version_guid());
    /// # Ok::<(), sft::stream::TransportError>(())
    /// ```
    pub fn version_guid(&self) -> Guid {
        self.pinned.version_guid
    }

    /// Connections re-established after a drop so far.
    ///
    /// ```no_run
    /// # use sft::net::rtsp::{RtspOptions, RtspSource};
    /// let src = RtspSource::open("rtsp://h/app.sft", &RtspOptions::default())?;
    /// assert_eq!(src.reconnects(), 0);
    /// # Ok::<(), sft::stream::TransportError>(())
    /// ```
    pub fn reconnects(&self) -> u64 {
        lock(&self.state).reconnects
    }

    /// Ask the server for the newest version of this package in its content
    /// root now (`GET_PARAMETER x-sft-latest-version`): an active upgrade is
    /// waiting when it is above [`RtspSource::package_version`].
    ///
    /// # Errors
    /// As a read.
    ///
    /// ```no_run
    /// # use sft::net::rtsp::{RtspOptions, RtspSource};
    /// let src = RtspSource::open("rtsp://h/app.sft", &RtspOptions::default())?;
    /// if src.latest_version()? > src.package_version() {
    ///     println!("an upgrade is available at the next launch");
    /// }
    /// # Ok::<(), sft::stream::TransportError>(())
    /// ```
    pub fn latest_version(&self) -> Result<u32, TransportError> {
        let mut state = lock(&self.state);
        if state.live.is_none() {
            state.live = Some(self.establish(Some(self.pinned.version_guid))?.0);
        }
        let Some(live) = state.live.as_mut() else {
            return Err(terr(TransportErrorKind::Other, "no connection"));
        };
        let ep = &self.endpoint;
        let cseq = live.send(
            ep,
            Method::GetParameter,
            &self.target.url,
            &[(headers::CONTENT_TYPE, "text/parameters".into())],
            b"x-sft-latest-version\r\n",
        );
        let result = cseq.and_then(|cseq| {
            loop {
                if let Item::Reply(r) = live.next_item(ep)?
                    && cseq_of(&r) == Some(cseq)
                {
                    break Ok(r);
                }
            }
        });
        let r = match result {
            Ok(r) => r,
            Err(e) => {
                state.live = None;
                return Err(e);
            }
        };
        String::from_utf8_lossy(r.body())
            .lines()
            .find_map(|l| l.strip_prefix("x-sft-latest-version:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| {
                terr(
                    TransportErrorKind::Protocol,
                    format!("{ep}: no latest version"),
                )
            })
    }

    fn connect(&self) -> Result<Conn, TransportError> {
        let ep = &self.endpoint;
        let addrs = (self.target.host.as_str(), self.target.port)
            .to_socket_addrs()
            .map_err(|e| io_err(ep, "resolving", &e))?;
        let mut last = None;
        for addr in addrs.take(8) {
            match TcpStream::connect_timeout(&addr, self.options.timeout) {
                Ok(tcp) => {
                    let _ = tcp.set_nodelay(true);
                    tcp.set_read_timeout(Some(self.options.timeout))
                        .and_then(|()| tcp.set_write_timeout(Some(self.options.timeout)))
                        .map_err(|e| io_err(ep, "configuring the socket", &e))?;
                    return match &self.tls {
                        None => Ok(Conn::Plain(tcp)),
                        Some(cfg) => {
                            let name =
                                rustls_pki_types::ServerName::try_from(self.target.host.clone())
                                    .map_err(|e| {
                                        terr(TransportErrorKind::Other, format!("{ep}: {e}"))
                                    })?;
                            let c = rustls::ClientConnection::new(Arc::clone(cfg), name).map_err(
                                |e| terr(TransportErrorKind::Other, format!("{ep}: {e}")),
                            )?;
                            Ok(Conn::Tls(Box::new(rustls::StreamOwned::new(c, tcp))))
                        }
                    };
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) => io_err(ep, "connecting", &e),
            None => terr(TransportErrorKind::NotFound, format!("{ep}: no address")),
        })
    }

    /// A playing session: DESCRIBE + SETUP of the described version, or
    /// SETUP of `version` directly.
    fn establish(&self, version: Option<Guid>) -> Result<(Live, Pinned), TransportError> {
        let ep = &self.endpoint;
        let mut live = Live::new(self.connect()?);
        live.authorization.clone_from(&self.options.authorization);
        let base = self.target.url.as_str().trim_end_matches('/').to_owned();
        let setup_url = match version {
            Some(v) => format!("{base}/version={}", v.to_hex()),
            None => {
                let d = live.call(
                    ep,
                    Method::Describe,
                    &self.target.url,
                    &[(headers::ACCEPT, "application/sdp".into())],
                )?;
                let sdp = sdp_types::Session::parse(d.body()).map_err(|e| {
                    terr(
                        TransportErrorKind::Protocol,
                        format!("{ep}: bad SDP: {e:?}"),
                    )
                })?;
                let control = sdp
                    .medias
                    .iter()
                    .flat_map(|m| m.attributes.iter())
                    .filter(|a| a.attribute == "control")
                    .find_map(|a| a.value.clone())
                    .unwrap_or_default();
                if control.contains("://") {
                    control
                } else {
                    format!("{base}/{control}")
                }
            }
        };
        let setup_url = Url::parse(&setup_url)
            .map_err(|e| terr(TransportErrorKind::Protocol, format!("{ep}: {e}")))?;
        let s = live
            .call(
                ep,
                Method::Setup,
                &setup_url,
                &[(
                    headers::TRANSPORT,
                    "RTP/AVP/TCP;unicast;interleaved=0-1".into(),
                )],
            )
            .map_err(|e| match (version, e.kind()) {
                // The version this stream started with is gone.
                (Some(_), TransportErrorKind::NotFound) => terr(
                    TransportErrorKind::Changed,
                    format!("{ep}: the package version being streamed is gone from the server"),
                ),
                _ => e,
            })?;
        live.session = header(&s, "Session")
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_owned())
            .unwrap_or_default();
        let proto_err = |what: &str| terr(TransportErrorKind::Protocol, format!("{ep}: {what}"));
        let len = header(&s, "x-Sft-Length")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| proto_err("SETUP without x-Sft-Length"))?;
        let version_guid = header(&s, "x-Sft-Version-Guid")
            .and_then(|v| v.parse::<Guid>().ok())
            .ok_or_else(|| proto_err("SETUP without x-Sft-Version-Guid"))?;
        let pkg_version = header(&s, "x-Sft-Package-Version")
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(0);
        if live.session.is_empty() {
            return Err(proto_err("SETUP without a session"));
        }
        if version.is_some_and(|v| v != version_guid) {
            return Err(terr(
                TransportErrorKind::Changed,
                format!("{ep}: the server offers another package version"),
            ));
        }
        live.call(
            ep,
            Method::Play,
            &self.target.url,
            &[(x_header("x-Sft-Range"), "none".into())],
        )?;
        Ok((
            live,
            Pinned {
                len,
                version_guid,
                version: pkg_version,
            },
        ))
    }

    /// Run fetches for `ranges` on `live` until all are delivered, or the
    /// sink stops (true), or an error.
    fn run_fetches(
        &self,
        live: &mut Live,
        todo: &mut VecDeque<Range<u64>>,
        sink: &mut ChunkSink<'_>,
    ) -> Result<bool, (TransportError, Vec<InFlight>)> {
        let ep = &self.endpoint;
        let mut in_flight: Vec<InFlight> = Vec::new();
        let fetch = x_header("x-Sft-Fetch");
        loop {
            while in_flight.len() < self.options.pipeline_depth && !todo.is_empty() {
                let n = todo.len().min(self.options.ranges_per_request);
                let group: Vec<Range<u64>> = todo.drain(..n).collect();
                let value = proto::format_ranges(&group);
                match live.send(
                    ep,
                    Method::SetParameter,
                    &self.target.url,
                    &[(fetch.clone(), value)],
                    b"",
                ) {
                    Ok(tag) => in_flight.push(InFlight {
                        tag,
                        ranges: group.into_iter().map(|r| (r.clone(), r.start)).collect(),
                    }),
                    Err(e) => {
                        in_flight.push(InFlight {
                            tag: 0,
                            ranges: group.into_iter().map(|r| (r.clone(), r.start)).collect(),
                        });
                        return Err((e, in_flight));
                    }
                }
            }
            if in_flight.is_empty() {
                return Ok(false);
            }
            let item = match live.next_item(ep) {
                Ok(i) => i,
                Err(e) => return Err((e, in_flight)),
            };
            match item {
                Item::Reply(r) => {
                    let status = u16::from(r.status());
                    if status != 200 {
                        let e = terr(
                            status_kind(status),
                            format!("{ep}: fetch answered {status} {}", r.reason_phrase()),
                        );
                        return Err((e, in_flight));
                    }
                }
                Item::Packet(h, data) => {
                    if h.tag == 0 {
                        continue; // background bytes: not asked for
                    }
                    let Some(fi) = in_flight.iter().position(|f| f.tag == h.tag) else {
                        let e = terr(
                            TransportErrorKind::Protocol,
                            format!("{ep}: data for unknown fetch {}", h.tag),
                        );
                        return Err((e, in_flight));
                    };
                    let f = in_flight
                        .get_mut(fi)
                        .ok_or_else(|| (terr(TransportErrorKind::Other, "fetch"), Vec::new()))?;
                    let data = live.payload(&data);
                    let end = h.offset + data.len() as u64;
                    let slot = f
                        .ranges
                        .iter_mut()
                        .find(|(r, next)| *next == h.offset && end <= r.end && *next < r.end);
                    let Some((_, next)) = slot else {
                        let e = terr(
                            TransportErrorKind::Protocol,
                            format!("{ep}: unexpected bytes at {} (fetch {})", h.offset, h.tag),
                        );
                        return Err((e, in_flight));
                    };
                    *next = end;
                    let done = f.ranges.iter().all(|(r, next)| *next >= r.end);
                    let ended_early = !done && h.flags & FLAG_END != 0;
                    if done {
                        in_flight.remove(fi);
                    }
                    // The bytes are counted as delivered above: deliver
                    // them before any error, so a resume asks for the rest
                    // only.
                    if sink(h.offset, data).is_break() {
                        // Bytes of other fetches may still be on the way:
                        // this connection is no longer in a known state.
                        return Ok(true);
                    }
                    if ended_early {
                        let e = terr(
                            TransportErrorKind::Protocol,
                            format!("{ep}: fetch {} ended early", h.tag),
                        );
                        return Err((e, in_flight));
                    }
                }
            }
        }
    }
}

impl RtspSource {
    /// Fill `dst` from the streaming fetch (whose next byte is where
    /// `dst` starts); the fetch ends when its last byte is read.
    fn stream_into(&self, state: &mut State, dst: &mut [u8]) -> Result<(), TransportError> {
        let State { live, stream, .. } = state;
        let (Some(live), Some(st)) = (live.as_mut(), stream.as_mut()) else {
            return Err(terr(TransportErrorKind::Other, "no stream"));
        };
        receive_stream(&self.endpoint, live, st, dst)?;
        if st.next == st.end {
            *stream = None;
        }
        Ok(())
    }

    /// Leave a streaming fetch that reads no longer follow: receive (and
    /// drop) what is left of it when that is little, else drop the
    /// connection (the next read makes a new one).
    fn end_stream(&self, state: &mut State) {
        let Some(st) = state.stream.take() else {
            return;
        };
        let left = st.end - st.next - st.pending.len() as u64;
        let drained = left <= DRAIN_MAX
            && state.live.as_mut().is_some_and(|live| {
                // The rest of a packet being received first.
                if live.skip(st.open).is_err() {
                    return false;
                }
                let mut got = st.open as u64;
                while got < left {
                    match live.next_item(&self.endpoint) {
                        Ok(Item::Packet(h, at)) if h.tag == st.tag => got += at.len() as u64,
                        Ok(Item::Packet(..)) => {}
                        Ok(Item::Reply(r)) if u16::from(r.status()) == 200 => {}
                        _ => return false,
                    }
                }
                true
            });
        if !drained {
            state.live = None;
        }
    }

    /// Ask for `range` as one fetch, to be read in order by
    /// [`RtspSource::stream_into`].
    fn start_stream(&self, state: &mut State, range: Range<u64>) -> Result<(), TransportError> {
        if state.live.is_none() {
            // The connection of the open was dropped since: a reconnect.
            state.live = Some(self.establish(Some(self.pinned.version_guid))?.0);
            state.reconnects += 1;
        }
        let Some(live) = state.live.as_mut() else {
            return Err(terr(TransportErrorKind::Other, "no connection"));
        };
        let value = proto::format_ranges(core::slice::from_ref(&range));
        let tag = live.send(
            &self.endpoint,
            Method::SetParameter,
            &self.target.url,
            &[(x_header("x-Sft-Fetch"), value)],
            b"",
        )?;
        state.stream = Some(Stream {
            tag,
            next: range.start,
            end: range.end,
            pending: 0..0,
            open: 0,
        });
        Ok(())
    }
}

impl RangeSource for RtspSource {
    /// Remember `range`: the first [`RangeSource::read_exact_at`] at its
    /// start asks for all of it in one fetch, and reads that follow it in
    /// order are served from that fetch's packets as they arrive (one
    /// request for the range, not one per read).
    fn will_read(&self, range: Range<u64>) {
        if range.start < range.end && range.end <= self.pinned.len {
            lock(&self.state).planned = Some(range);
        }
    }

    /// True: after [`RangeSource::will_read`], in-order reads are served
    /// from one streaming fetch, so drivers read pipelined.
    fn streaming_reads(&self) -> bool {
        true
    }

    /// Long requests: each is one fetch the server streams without a round
    /// trip per piece (as the HTTP source's 64 MiB GETs); FB1 still comes
    /// first, and demand reads are their own short fetches.
    fn preferred_limits(&self) -> Option<crate::stream::SchedulerLimits> {
        Some(crate::stream::SchedulerLimits {
            max_request_bytes: 64 << 20,
            fb1_request_bytes: 64 << 20,
            max_in_flight_requests: 4,
            max_in_flight_bytes: 256 << 20,
        })
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), TransportError> {
        if buf.is_empty() {
            return Ok(());
        }
        let end = offset.saturating_add(buf.len() as u64);
        {
            let mut state = lock(&self.state);
            let follows = |r: &Range<u64>, at: u64| at == offset && end <= r.end;
            if state
                .stream
                .as_ref()
                .is_none_or(|s| !follows(&(s.next..s.end), s.next))
            {
                self.end_stream(&mut state);
                if let Some(plan) = state.planned.take_if(|p| follows(p, p.start))
                    && let Err(e) = self.start_stream(&mut state, plan)
                {
                    state.live = None;
                    return Err(e);
                }
            }
            if state.stream.is_some() {
                return self.stream_into(&mut state, buf).map_err(|e| {
                    // The connection is in an unknown state.
                    state.stream = None;
                    state.live = None;
                    dropped(e)
                });
            }
        }
        if self.read_at(offset, buf)? < buf.len() {
            return Err(terr(
                TransportErrorKind::RangeNotSatisfiable,
                format!("{}: source ends before {end}", self.endpoint),
            )
            .with_range(offset..end));
        }
        Ok(())
    }

    fn len(&self) -> Result<u64, TransportError> {
        Ok(self.pinned.len)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, TransportError> {
        let end = offset.saturating_add(buf.len() as u64).min(self.pinned.len);
        if offset >= end {
            return Ok(0);
        }
        // One fetch of the range (outside any planned stream): its chunks
        // arrive in order, each byte once.
        let mut got = 0usize;
        let range = offset..end;
        self.read_ranges(core::slice::from_ref(&range), &mut |at, data| {
            let start = (at - offset) as usize;
            if let Some(dst) = buf.get_mut(start..start + data.len()) {
                dst.copy_from_slice(data);
                got = got.max(start + data.len());
            }
            ControlFlow::Continue(())
        })?;
        Ok(got)
    }

    fn read_ranges(
        &self,
        ranges: &[Range<u64>],
        sink: &mut ChunkSink<'_>,
    ) -> Result<(), TransportError> {
        let len = self.pinned.len;
        if let Some(r) = ranges.iter().find(|r| r.start > r.end || r.end > len) {
            return Err(terr(
                TransportErrorKind::RangeNotSatisfiable,
                format!("{}: package is {len} bytes", self.endpoint),
            )
            .with_range(r.clone()));
        }
        let mut todo: VecDeque<Range<u64>> =
            ranges.iter().filter(|r| r.end > r.start).cloned().collect();
        let mut state = lock(&self.state);
        state.planned = None;
        self.end_stream(&mut state);
        let mut attempt = 0u32;
        loop {
            let mut live = match state.live.take() {
                Some(l) => l,
                None => match self.establish(Some(self.pinned.version_guid)) {
                    Ok((l, _)) => l,
                    Err(e) => {
                        attempt += 1;
                        if !reconnect_helps(&e) || attempt >= self.options.max_attempts {
                            return Err(e);
                        }
                        std::thread::sleep(Duration::from_millis(50 << attempt.min(5)));
                        state.reconnects += 1;
                        continue;
                    }
                },
            };
            match self.run_fetches(&mut live, &mut todo, sink) {
                Ok(false) => {
                    state.live = Some(live);
                    return Ok(());
                }
                Ok(true) => return Ok(()), // sink stopped; connection dropped
                Err((e, in_flight)) => {
                    // Resume: what was asked but not delivered, first.
                    let mut rest: VecDeque<Range<u64>> = in_flight
                        .into_iter()
                        .flat_map(|f| f.ranges)
                        .filter(|(r, next)| *next < r.end)
                        .map(|(r, next)| next..r.end)
                        .collect();
                    rest.extend(todo.drain(..));
                    todo = rest;
                    attempt += 1;
                    if !reconnect_helps(&e) || attempt >= self.options.max_attempts {
                        return Err(dropped(e));
                    }
                    state.reconnects += 1;
                    std::thread::sleep(Duration::from_millis(50 << attempt.min(5)));
                }
            }
        }
    }

    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }
}

/// Fill `dst` from the streaming fetch `st` on `live` (the fetch's next
/// byte is where `dst` starts).
fn receive_stream(
    ep: &str,
    live: &mut Live,
    st: &mut Stream,
    dst: &mut [u8],
) -> Result<(), TransportError> {
    let mut filled = 0usize;
    while filled < dst.len() {
        if !st.pending.is_empty() {
            let n = st.pending.len().min(dst.len() - filled);
            let src = live.payload(&(st.pending.start..st.pending.start + n));
            dst.get_mut(filled..filled + n)
                .unwrap_or_default()
                .copy_from_slice(src);
            st.pending.start += n;
            st.next += n as u64;
            filled += n;
            continue;
        }
        // Packets of this fetch whose payloads are still on their way:
        // received straight into `dst`.
        let want = dst.get_mut(filled..).unwrap_or_default();
        let (tag, next, until) = (st.tag, st.next, st.end);
        let accept = |h: &PacketHeader, n: usize, at: usize| {
            let end = h.offset.saturating_add(n as u64);
            h.tag == tag
                && h.offset == next + at as u64
                && end <= until
                && (h.flags & FLAG_END == 0 || end == until)
        };
        let n = live.packets_into(ep, want, &mut st.open, accept)?;
        if n > 0 {
            st.next += n as u64;
            filled += n;
            continue;
        }
        match live.next_item(ep)? {
            Item::Reply(r) => {
                let status = u16::from(r.status());
                if status != 200 {
                    return Err(terr(
                        status_kind(status),
                        format!("{ep}: fetch answered {status} {}", r.reason_phrase()),
                    ));
                }
            }
            Item::Packet(h, _) if h.tag == 0 => {} // background: not asked for
            Item::Packet(h, at) => {
                let end = h.offset + at.len() as u64;
                if h.tag != st.tag || h.offset != st.next || end > st.end {
                    return Err(terr(
                        TransportErrorKind::Protocol,
                        format!("{ep}: unexpected bytes at {} (fetch {})", h.offset, h.tag),
                    ));
                }
                if h.flags & FLAG_END != 0 && end < st.end {
                    return Err(terr(
                        TransportErrorKind::Protocol,
                        format!("{ep}: fetch {} ended early", h.tag),
                    ));
                }
                st.pending = at;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{
        FLAG_END, Live, PACKET_PREFIX_LEN, PacketHeader, Stream, TransportErrorKind, parse_target,
        receive_stream,
    };
    use crate::proto::rtsp::SERVER_PACKET_DATA;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    /// xorshift64*: the tests' reproducible choices.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as usize % n.max(1)
        }
    }

    /// The package's byte at `at`.
    fn byte(at: u64) -> u8 {
        (at.wrapping_mul(31) ^ (at >> 9)) as u8
    }

    fn packet(out: &mut Vec<u8>, channel: u8, tag: u32, offset: u64, len: usize, flags: u8) {
        let h = PacketHeader {
            seq: 0,
            timestamp: 0,
            ssrc: 1,
            marker: false,
            offset,
            tag,
            flags,
        };
        out.extend_from_slice(&[b'$', channel]);
        out.extend_from_slice(&((PACKET_PREFIX_LEN - 4 + len) as u16).to_be_bytes());
        out.extend_from_slice(&h.encode());
        out.extend((offset..offset + len as u64).map(byte));
    }

    /// What a server sends for fetch 7 of `0..total`, with replies,
    /// background packets, RTCP and odd packet sizes mixed in; `bad`
    /// moves one packet's offset (a server gone wrong).
    fn wire(rng: &mut Rng, total: u64, bad: Option<u64>) -> (Vec<u8>, Vec<u64>) {
        let mut out = Vec::new();
        let mut starts = Vec::new();
        let size = [SERVER_PACKET_DATA, 60 * 1024, 1000 + rng.below(64_000)][rng.below(3)];
        let mut at = 0u64;
        while at < total {
            match rng.below(40) {
                0 => out.extend_from_slice(b"RTSP/1.0 200 OK\r\nCSeq: 7\r\nSession: s\r\n\r\n"),
                1 => packet(
                    &mut out,
                    0,
                    0,
                    rng.below(1 << 20) as u64,
                    rng.below(SERVER_PACKET_DATA),
                    0,
                ),
                2 => out.extend_from_slice(&[b'$', 1, 0, 8, 0x81, 203, 0, 1, 0, 0, 0, 1]),
                _ => {}
            }
            let len = if rng.below(20) == 0 {
                1 + rng.below(size)
            } else {
                size
            };
            let len = (len as u64).min(total - at);
            let end = at + len == total;
            starts.push(at);
            let offset = if bad == Some(at) { at + 1 } else { at };
            packet(
                &mut out,
                0,
                7,
                offset,
                len as usize,
                if end { FLAG_END } else { 0 },
            );
            at += len;
        }
        (out, starts)
    }

    /// Stream `wire` over loopback TCP, written in random pieces, and read
    /// it as fetch 7 of `0..total` in reads of random lengths: the bytes
    /// read, and the first error.
    fn receive(seed: u64, total: u64, bad: Option<u64>) -> (Vec<u8>, Option<TransportErrorKind>) {
        let mut rng = Rng(seed | 1);
        let (bytes, _) = wire(&mut rng, total, bad);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut wr = Rng(seed.rotate_left(17) | 1);
        let writer = std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            sock.set_nodelay(true).unwrap();
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                // Pieces from a few bytes (heads cut anywhere) to many packets.
                let most = [64, 4096, 200_000][wr.below(3)];
                let n = (1 + wr.below(most)).min(rest.len());
                if sock.write_all(&rest[..n]).is_err() {
                    return;
                }
                rest = &rest[n..];
            }
        });
        let sock = TcpStream::connect(addr).unwrap();
        let mut live = Live::new(super::Conn::Plain(sock));
        let mut st = Stream {
            tag: 7,
            next: 0,
            end: total,
            pending: 0..0,
            open: 0,
        };
        let mut got = Vec::new();
        let mut err = None;
        while st.next < total {
            let want = (1 + rng.below(700_000)).min((total - st.next) as usize);
            let mut dst = vec![0u8; want];
            match receive_stream("test", &mut live, &mut st, &mut dst) {
                Ok(()) => got.extend_from_slice(&dst),
                Err(e) => {
                    err = Some(e.kind());
                    break;
                }
            }
        }
        drop(live);
        writer.join().unwrap();
        (got, err)
    }

    #[test]
    fn streamed_packets_land_in_place_whatever_the_cuts() {
        for seed in 0..300u64 {
            let total = 1 + (seed * 7_919_993) % 3_000_000;
            let (got, err) = receive(seed, total, None);
            assert_eq!(err, None, "seed {seed}");
            assert_eq!(got.len() as u64, total, "seed {seed}");
            let wrong = (0..total).find(|&i| got[i as usize] != byte(i));
            assert_eq!(wrong, None, "seed {seed}: wrong byte");
        }
    }

    #[test]
    fn a_packet_out_of_place_is_an_error_never_data() {
        for seed in 0..100u64 {
            let total = 2_000_000;
            let (_, starts) = wire(&mut Rng(seed | 1), total, None);
            let bad = starts[starts.len() / 2];
            let (got, err) = receive(seed, total, Some(bad));
            assert_eq!(err, Some(TransportErrorKind::Protocol), "seed {seed}");
            assert!(
                got.len() as u64 <= bad,
                "seed {seed}: read past the bad packet"
            );
            let wrong = (0..got.len()).find(|&i| got[i] != byte(i as u64));
            assert_eq!(wrong, None, "seed {seed}: wrong byte");
        }
    }

    #[test]
    fn credentials_never_reach_the_request_line() {
        let t = parse_target("rtsp://alice:s3cret@127.0.0.1:8554/apps/a.sft").unwrap();
        assert_eq!(t.url.as_str(), "rtsp://127.0.0.1:8554/apps/a.sft");
        assert_eq!((t.host.as_str(), t.port, t.tls), ("127.0.0.1", 8554, false));
        let e = parse_target("rtsp://alice:s3cret@/x")
            .map(|_| ())
            .unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
}
