//! The spool of a server that ignores `Range`: its `200` body (the whole
//! package) is written once to an anonymous temporary file and ranges are
//! served from there.

use super::*;

/// The body of a `200` being spooled: from `ureq`, or from the bulk path.
pub(super) type SpoolBody = Box<dyn Read + Send>;

/// The spool of a server that ignores `Range`.
pub(super) struct Spool {
    pub(super) file: File,
    /// Bytes `0..written` are in the file.
    pub(super) written: u64,
    /// The response being read, and how many of its leading bytes are
    /// already in the file (a re-sent `200` body starts at 0).
    pub(super) body: Option<(SpoolBody, u64)>,
}

/// The anonymous spool file: created exclusively in the temp dir and
/// unlinked at once (on Unix the open file lives on without a name).
pub(super) fn spool_file() -> io::Result<File> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir();
    let mut last = io::Error::other("no spool file name available");
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = dir.join(format!(
            ".sft-http-spool-{}-{n}-{nanos:08x}",
            std::process::id()
        ));
        let mut o = std::fs::OpenOptions::new();
        o.read(true).write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        match o.open(&path) {
            Ok(f) => {
                // Where unlinking an open file fails (Windows), the file
                // stays until the temp dir is cleaned.
                let _ = std::fs::remove_file(&path);
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

impl HttpSource {
    /// Serve `wants` in spool mode.
    pub(super) fn serve_spool(
        &self,
        wants: &mut [Want],
        sink: &mut ChunkSink<'_>,
    ) -> Result<(), TransportError> {
        let mut guard = lock(&self.spool);
        let Some(s) = guard.as_mut() else {
            return Err(self.error(TransportErrorKind::Other, "spool missing"));
        };
        let mut buf = self.take_buffer();
        let result = self.serve_spool_locked(s, wants, &mut buf, sink);
        self.put_buffer(buf);
        result
    }

    pub(super) fn serve_spool_locked(
        &self,
        s: &mut Spool,
        wants: &mut [Want],
        buf: &mut [u8],
        sink: &mut ChunkSink<'_>,
    ) -> Result<(), TransportError> {
        for w in wants.iter_mut() {
            // From the file.
            while !w.done() && w.next < s.written {
                let n = (w.end.min(s.written) - w.next).min(buf.len() as u64) as usize;
                let io_err = |e: io::Error| {
                    self.error(TransportErrorKind::Io, "reading the spool file")
                        .with_source(e)
                };
                s.file.seek(SeekFrom::Start(w.next)).map_err(io_err)?;
                s.file.read_exact(&mut buf[..n]).map_err(io_err)?;
                let at = w.next;
                w.next += n as u64;
                if sink(at, &buf[..n]).is_break() {
                    return Ok(());
                }
            }
            // From the network, through the file.
            let mut failures = 0u32;
            while !w.done() {
                let before = s.written;
                let one = core::slice::from_mut(&mut *w);
                let mut on_bytes = |at: u64, data: &[u8]| deliver(one, at, data, sink);
                match self.advance(s, buf, &mut on_bytes) {
                    Ok(ControlFlow::Break(())) => return Ok(()),
                    Ok(ControlFlow::Continue(())) => {}
                    Err(e) => {
                        if !self.retry_after(&mut failures, s.written > before, &e) {
                            return Err(e);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    pub(super) fn start_spool(&self, body: SpoolBody) -> Result<(), TransportError> {
        let mut guard = lock(&self.spool);
        if guard.is_none() {
            let file = spool_file().map_err(|e| {
                self.error(TransportErrorKind::Io, "creating the spool file")
                    .with_source(e)
            })?;
            *guard = Some(Spool {
                file,
                written: 0,
                body: Some((body, 0)),
            });
        }
        self.spooling.store(true, Ordering::Relaxed);
        Ok(())
    }
}
