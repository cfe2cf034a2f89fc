//! The `ureq` back end of [`HttpSource`]: HTTPS, multi-range requests,
//! redirects, and every response the bulk path does not take (see the
//! [module docs](super)).

use super::*;

impl HttpSource {
    /// One request for the wants of `group` not yet done.
    pub(super) fn fetch_group(
        &self,
        group: &mut [Want],
        buf: &mut [u8],
        sink: &mut ChunkSink<'_>,
    ) -> Result<Outcome, TransportError> {
        let spec = range_header(group);
        let open: Vec<Want> = group.iter().copied().filter(|w| !w.done()).collect();
        let multi = open.len() > 1;
        let lo = open.iter().map(|w| w.next).min().unwrap_or(0);
        let hi = open.iter().map(|w| w.end).max().unwrap_or(0);
        let what = if multi {
            format!("GET {} ranges in {lo}..{hi}", open.len())
        } else {
            format!("GET bytes {lo}..{hi}")
        };
        if !multi && self.raw_enabled() {
            if let RawOpen::Body(conn) = self.raw_open(lo, hi, &what)? {
                return self.raw_read(conn, lo, hi, group, buf, sink, &what);
            }
            if self.spooling.load(Ordering::Relaxed) {
                // A `200`: now being spooled, served from there.
                return Ok(Outcome::Again);
            }
        }
        let resp = self.send(false, Some(&spec), true, &what)?;
        let code = resp.status().as_u16();
        let (parts, body) = resp.into_parts();
        let h = &parts.headers;
        match code {
            206 => {
                self.check_same(h, false, &what)?;
                let boundary = match header_str(h, header::CONTENT_TYPE) {
                    Some(ct) => byteranges_boundary(ct.as_bytes())
                        .map_err(|e| {
                            self.error(TransportErrorKind::Protocol, &format!("{what}: {e}"))
                        })?
                        .map(<[u8]>::to_vec),
                    None => None,
                };
                if let Some(boundary) = boundary {
                    return self.read_multipart(body, &boundary, group, buf, sink, &what);
                }
                let cr = header_str(h, header::CONTENT_RANGE).ok_or_else(|| {
                    self.error(
                        TransportErrorKind::Protocol,
                        &format!("{what}: 206 without Content-Range"),
                    )
                })?;
                let bad = |detail: String| {
                    self.error(TransportErrorKind::Protocol, &format!("{what}: {detail}"))
                };
                let (first, last, complete) = match parse_content_range(cr.as_bytes()) {
                    Ok(ContentRange::Satisfied {
                        first,
                        last,
                        complete,
                    }) => (first, last, complete),
                    _ => return Err(bad(format!("malformed Content-Range `{cr}`"))),
                };
                self.check_complete(complete, &what, cr, &bad)?;
                let end = last + 1;
                let exact = first == lo && end == hi;
                if !(exact || multi && first <= lo && end >= hi) {
                    return Err(bad(format!(
                        "Content-Range `{cr}` is not the range asked for"
                    )));
                }
                if let Some(n) = content_length(h)
                    && n != end - first
                {
                    return Err(bad(format!(
                        "Content-Length {n} disagrees with Content-Range `{cr}`"
                    )));
                }
                if multi {
                    let asked: u64 = open.iter().map(|w| w.end - w.next).sum();
                    if end - first > asked.saturating_mul(2) {
                        // Coalesced over wide gaps: cheaper one by one.
                        self.multi_range.store(false, Ordering::Relaxed);
                    }
                }
                self.read_single(body, first, end, group, buf, sink, &what)
            }
            200 => {
                self.check_same(h, true, &what)?;
                if multi {
                    // Same version, but no multi-range support (S3).
                    self.multi_range.store(false, Ordering::Relaxed);
                    return Ok(Outcome::Again);
                }
                Ok(Outcome::Spool(Box::new(body.into_reader())))
            }
            416 => Err(self
                .unsatisfied_error(header_str(h, header::CONTENT_RANGE), &what)
                .with_range(lo..hi)),
            _ => Err(self.status_error(code, &what).with_range(lo..hi)),
        }
    }

    /// A single-part 206 with bytes `first..end`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn read_single(
        &self,
        body: Body,
        first: u64,
        end: u64,
        group: &mut [Want],
        buf: &mut [u8],
        sink: &mut ChunkSink<'_>,
        what: &str,
    ) -> Result<Outcome, TransportError> {
        let mut reader = body.into_reader();
        let mut at = first;
        while at < end {
            if group.iter().all(Want::done) {
                // The rest was not asked for (a coalescing server).
                return Ok(Outcome::Done);
            }
            let want = (end - at).min(buf.len() as u64) as usize;
            let n = match reader.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(self
                        .error(
                            TransportErrorKind::ConnectionLost,
                            &format!("{what}: body ended at {at}"),
                        )
                        .with_range(at..end));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.body_error(e, what).with_range(at..end)),
            };
            self.body_bytes.fetch_add(n as u64, Ordering::Relaxed);
            if deliver(group, at, &buf[..n], sink).is_break() {
                return Ok(Outcome::Break);
            }
            at += n as u64;
        }
        // One more read sees the end, which returns the connection to the pool.
        match reader.read(&mut buf[..1]) {
            Ok(0) => {}
            Ok(_) => {
                return Err(self.error(
                    TransportErrorKind::Protocol,
                    &format!("{what}: body longer than its Content-Range"),
                ));
            }
            Err(_) => {} // Everything asked for arrived; the connection is just not reused.
        }
        if !group.iter().all(Want::done) {
            return Err(self.error(
                TransportErrorKind::Protocol,
                &format!("{what}: bytes missing from the response"),
            ));
        }
        Ok(Outcome::Done)
    }

    /// A `multipart/byteranges` 206.
    pub(super) fn read_multipart(
        &self,
        body: Body,
        boundary: &[u8],
        group: &mut [Want],
        buf: &mut [u8],
        sink: &mut ChunkSink<'_>,
        what: &str,
    ) -> Result<Outcome, TransportError> {
        let bad =
            |detail: String| self.error(TransportErrorKind::Protocol, &format!("{what}: {detail}"));
        let mut parser = ByteRangesParser::new(boundary).map_err(|e| bad(e.to_string()))?;
        let mut reader = body.into_reader();
        let (mut start, mut filled) = (0usize, 0usize);
        let mut at = 0u64;
        loop {
            let (used, step) = parser
                .feed(&buf[start..filled])
                .map_err(|e| bad(e.to_string()))?;
            match step {
                Step::Part(p) => {
                    start += used;
                    match p.complete {
                        Some(c) if c == self.len => {}
                        Some(c) => {
                            return Err(self.error(
                                TransportErrorKind::Changed,
                                &format!("{what}: the package is now {c} bytes, was {}", self.len),
                            ));
                        }
                        None => {
                            return Err(bad(String::from("a part's Content-Range has no length")));
                        }
                    }
                    let r = p.range();
                    if !group
                        .iter()
                        .any(|w| !w.done() && w.next < r.end && r.start < w.end)
                    {
                        return Err(bad(format!(
                            "part {}..{} was not asked for",
                            r.start, r.end
                        )));
                    }
                    at = r.start;
                }
                Step::Data(d) => {
                    start += used;
                    let off = at;
                    at += d.len() as u64;
                    if deliver(group, off, d, sink).is_break() {
                        return Ok(Outcome::Break);
                    }
                }
                Step::Done => break,
                Step::NeedMore => {
                    start += used;
                    buf.copy_within(start..filled, 0);
                    filled -= start;
                    start = 0;
                    let n = loop {
                        match reader.read(&mut buf[filled..]) {
                            Ok(n) => break n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(e) => return Err(self.body_error(e, what)),
                        }
                    };
                    if n == 0 {
                        return Err(self.error(
                            TransportErrorKind::ConnectionLost,
                            &format!("{what}: multipart body ended early"),
                        ));
                    }
                    self.body_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    filled += n;
                }
            }
        }
        // Drain a short epilogue so the connection can be reused.
        let mut drained = 0usize;
        while drained <= MAX_DRAIN {
            match reader.read(buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
        if let Some(w) = group.iter().find(|w| !w.done()) {
            return Err(bad(format!(
                "the server left out bytes {}..{}",
                w.next, w.end
            )));
        }
        Ok(Outcome::Done)
    }

    /// Read some more of the spooled response into the file, delivering
    /// what `want_end`-bounded wants need via `on_bytes`.
    pub(super) fn advance(
        &self,
        s: &mut Spool,
        buf: &mut [u8],
        on_bytes: &mut dyn FnMut(u64, &[u8]) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, TransportError> {
        let what = "spooling the whole body";
        if s.body.is_none() {
            // Continue where the file ends.
            let spec = format!("bytes={}-", s.written);
            let resp = self.send(false, Some(&spec), true, what)?;
            let code = resp.status().as_u16();
            let (parts, body) = resp.into_parts();
            let h = &parts.headers;
            match code {
                206 => {
                    self.check_same(h, false, what)?;
                    let ok = matches!(
                        header_str(h, header::CONTENT_RANGE).map(|v| parse_content_range(v.as_bytes())),
                        Some(Ok(ContentRange::Satisfied { first, last, complete: Some(c) }))
                            if first == s.written && last + 1 == self.len && c == self.len
                    );
                    if !ok {
                        return Err(self.error(
                            TransportErrorKind::Protocol,
                            &format!("{what}: unexpected Content-Range"),
                        ));
                    }
                    s.body = Some((Box::new(body.into_reader()), s.written));
                }
                200 => {
                    self.check_same(h, true, what)?;
                    s.body = Some((Box::new(body.into_reader()), 0));
                }
                _ => return Err(self.status_error(code, what)),
            }
        }
        let Some((reader, pos)) = s.body.as_mut() else {
            return Ok(ControlFlow::Continue(()));
        };
        let n = loop {
            match reader.read(buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    s.body = None;
                    return Err(self.body_error(e, what));
                }
            }
        };
        self.body_bytes.fetch_add(n as u64, Ordering::Relaxed);
        if n == 0 {
            s.body = None;
            if self.len != u64::MAX && s.written < self.len {
                return Err(self.error(
                    TransportErrorKind::ConnectionLost,
                    &format!("{what}: body ended at {}", s.written),
                ));
            }
            return Ok(ControlFlow::Continue(()));
        }
        let chunk_at = *pos;
        *pos += n as u64;
        // Skip bytes the file already holds (a re-sent 200 body).
        let skip = s.written.saturating_sub(chunk_at).min(n as u64) as usize;
        let fresh = &buf[skip..n];
        if fresh.is_empty() {
            return Ok(ControlFlow::Continue(()));
        }
        let fresh_at = chunk_at + skip as u64;
        if fresh_at + fresh.len() as u64 > self.len {
            s.body = None;
            return Err(self.error(
                TransportErrorKind::Changed,
                &format!("{what}: the body is longer than {} bytes", self.len),
            ));
        }
        let io_err = |e: io::Error| {
            self.error(TransportErrorKind::Io, "writing the spool file")
                .with_source(e)
        };
        s.file.seek(SeekFrom::Start(fresh_at)).map_err(io_err)?;
        s.file.write_all(fresh).map_err(io_err)?;
        s.written = fresh_at + fresh.len() as u64;
        if s.written == self.len {
            // Reach the end so the connection returns to the pool.
            if let Some((mut reader, _)) = s.body.take() {
                let _ = reader.read(&mut [0u8; 1]);
            }
        }
        Ok(on_bytes(fresh_at, fresh))
    }

    pub(super) fn fetch_all(
        &self,
        wants: &mut [Want],
        buf: &mut [u8],
        sink: &mut ChunkSink<'_>,
    ) -> Result<(), TransportError> {
        let mut first = 0usize;
        loop {
            while first < wants.len() && wants[first].done() {
                first += 1;
            }
            if first == wants.len() {
                return Ok(());
            }
            if self.spooling.load(Ordering::Relaxed) {
                return self.serve_spool(&mut wants[first..], sink);
            }
            let limit = if self.multi_range.load(Ordering::Relaxed) {
                self.max_ranges
            } else {
                1
            };
            let (mut end, mut count, mut header_len) = (first, 0usize, 6usize);
            while end < wants.len() && count < limit {
                if !wants[end].done() {
                    let l = spec_len(&wants[end]) + 1;
                    if count > 0 && header_len + l > MAX_RANGE_HEADER {
                        break;
                    }
                    header_len += l;
                    count += 1;
                }
                end += 1;
            }
            let group = &mut wants[first..end];
            let mut failures = 0u32;
            loop {
                let before: u64 = group.iter().map(|w| w.next).sum();
                match self.fetch_group(group, buf, sink) {
                    Ok(Outcome::Done) | Ok(Outcome::Again) => break,
                    Ok(Outcome::Break) => return Ok(()),
                    Ok(Outcome::Spool(body)) => {
                        self.start_spool(body)?;
                        break;
                    }
                    Err(e) => {
                        let after: u64 = group.iter().map(|w| w.next).sum();
                        if !self.retry_after(&mut failures, after > before, &e) {
                            return Err(e);
                        }
                    }
                }
            }
        }
    }
}
