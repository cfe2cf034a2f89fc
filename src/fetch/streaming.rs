//! [`StreamingPackage`]: read a package while it streams.
//!
//! The same read API as a local [`Package`](crate::Package) — entries,
//! lookups, whole files, byte ranges, `Read + Seek` — over a source being
//! streamed in the background into a [`Cache`]. A background thread runs
//! the session loop ([`drive::drive_with_control`]); a read of a block
//! that is not cached yet sends it a demand, which pre-empts the
//! background prefetch (it is the very next request, at most one chunk
//! later), and waits on a condition variable until the block arrives, the
//! stream fails (the error is returned to every waiting reader), or the
//! [timeout](StreamingOptions::timeout) passes.
//!
//! # What is verified, and when
//!
//! Nothing is returned unverified, and nothing is checked twice without
//! need: blocks fetched in this run were checked by the session (CRC-32
//! and, by default, inflate) before they were written to the cache;
//! blocks found in an existing cache were re-verified by [`Cache::open`]
//! before they were reported present (eagerly: one sequential read of the
//! cache). A read therefore takes a present block's stored bytes from the
//! cache file and only decodes it (a zlib block's inflate is capped at,
//! and must produce exactly, its recorded size).
//!
//! ```
//! # #[cfg(feature = "write")]
//! # fn main() -> sft::Result<()> {
//! use std::io::{Read, Seek, SeekFrom};
//! use std::sync::Arc;
//! use sft::fetch::cache::CachePaths;
//! use sft::fetch::streaming::{StreamingOptions, StreamingPackage};
//!
//! let package = sft::write::PackageBuilder::new(sft::WriteOptions::default())
//!     .add_bytes("app.exe", vec![7u8; 200_000])?
//!     .add_bytes("readme.txt", b"hello".to_vec())?
//!     .write_to_vec()?;
//! let dir = tempfile::tempdir().map_err(|e| sft::Error::io("tempdir", e))?;
//! let paths = CachePaths::for_output(&dir.path().join("app.sft"), None);
//!
//! let pkg = StreamingPackage::open(Arc::new(package), paths, StreamingOptions::default())?;
//! let readme = pkg.entry("readme.txt")?;
//! assert_eq!(pkg.read_file(&readme)?, b"hello");
//! let mut r = pkg.reader(pkg.entry("app.exe")?)?;
//! r.seek(SeekFrom::Start(150_000))?;
//! let mut buf = [0u8; 3];
//! r.read_exact(&mut buf)?;
//! assert_eq!(buf, [7, 7, 7]);
//! pkg.wait_complete()?;
//! # Ok(()) }
//! # #[cfg(not(feature = "write"))]
//! # fn main() {}
//! ```

use core::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::fetch::cache::{Cache, CacheOptions, CachePaths};
use crate::format::BlockId;
use crate::index::BlockInfo;
use crate::io::RangeSource;
use crate::io::drive::{self, Control, DriveReport};
use crate::read::{BlockBuffer, Crc, Entries, Entry, Prologue};
use crate::stream::{
    BlockSink, Event, Progress, SessionConfig, StreamSession, TransportError, TransportErrorKind,
    VerifiedBlock,
};

/// Decoded blocks [`StreamingPackage::read_at`] keeps between calls.
const POOL: usize = 8;

/// Options of [`StreamingPackage::open`].
pub struct StreamingOptions {
    session: SessionConfig,
    cache: CacheOptions,
    timeout: Duration,
    on_event: Option<crate::fetch::EventCallback>,
}

impl Default for StreamingOptions {
    fn default() -> Self {
        StreamingOptions {
            session: SessionConfig::default(),
            cache: CacheOptions::default(),
            timeout: Duration::from_secs(60),
            on_event: None,
        }
    }
}

impl fmt::Debug for StreamingOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamingOptions")
            .field("session", &self.session)
            .field("cache", &self.cache)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl StreamingOptions {
    /// Session options (a launch-only session fetches FB2 on demand only).
    pub fn session(mut self, config: SessionConfig) -> Self {
        self.session = config;
        self
    }
    /// Cache options.
    pub fn cache(mut self, options: CacheOptions) -> Self {
        self.cache = options;
        self
    }
    /// How long a read (or [`StreamingPackage::open`], for the prologue)
    /// waits for data before failing with a timeout (default 60 s).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }
    /// Call `f` with every stream event, on the background thread.
    pub fn on_event(mut self, f: impl FnMut(&Event) + Send + 'static) -> Self {
        self.on_event = Some(Box::new(f));
        self
    }
}

#[derive(Debug, Default)]
struct State {
    prologue: Option<Vec<u8>>,
    present: Vec<bool>,
    progress: Option<Progress>,
    launch_ready: bool,
    complete: bool,
    /// The stream failed: kind and message (every reader gets a copy).
    failed: Option<(TransportErrorKind, String)>,
    /// The background loop has returned.
    finished: bool,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    cond: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.lock());
        self.cond.notify_all();
    }
}

/// A sink that writes to the cache, then tells waiting readers.
struct NotifySink<'a> {
    cache: &'a mut Cache,
    shared: &'a Shared,
}

impl BlockSink for NotifySink<'_> {
    fn prologue(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.cache.prologue(bytes)?;
        let n = self.cache.blocks().len();
        self.shared.update(|s| {
            s.prologue = Some(bytes.to_vec());
            s.present = vec![false; n];
        });
        Ok(())
    }
    fn block(&mut self, block: &VerifiedBlock<'_>) -> Result<(), Error> {
        self.cache.block(block)?;
        let i = block.info.id.0 as usize;
        self.shared.update(|s| {
            if let Some(p) = s.present.get_mut(i) {
                *p = true;
            }
        });
        Ok(())
    }
    fn needs_decoded(&self) -> bool {
        false
    }
}

/// A package read while it streams; see the [module docs](self).
pub struct StreamingPackage {
    shared: Arc<Shared>,
    control: Sender<Control>,
    thread: Option<JoinHandle<Result<DriveReport, Error>>>,
    prologue: Vec<u8>,
    /// The layout [`Prologue::parse`] validated at open: later views of
    /// the prologue repeat no check.
    layout: Option<crate::format::layout::Layout>,
    table: Vec<BlockInfo>,
    file: File,
    timeout: Duration,
    endpoint: String,
    /// Decoded blocks kept between reads ([`StreamingPackage::read_at`]).
    pool: Mutex<Vec<BlockBuffer>>,
}

impl fmt::Debug for StreamingPackage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamingPackage")
            .field("endpoint", &self.endpoint)
            .field("blocks", &self.table.len())
            .finish_non_exhaustive()
    }
}

fn timeout_error(what: &str, endpoint: &str, d: Duration) -> Error {
    Error::Transport(TransportError::new(
        TransportErrorKind::Timeout,
        format!("{endpoint}: {what}: no data after {:.1} s", d.as_secs_f64()),
    ))
}

impl StreamingPackage {
    /// Start streaming `source` into the cache at `paths` (resuming what
    /// it holds, if it holds this package) and return once the prologue
    /// is known: entries can be listed at once, file data arrives as it
    /// is read or prefetched.
    ///
    /// # Errors
    /// As [`Cache::open`]; the stream's failure or a timeout if the
    /// prologue does not arrive.
    pub fn open(
        source: Arc<dyn RangeSource>,
        paths: CachePaths,
        mut options: StreamingOptions,
    ) -> Result<Self, Error> {
        let mut cache = Cache::open(paths, options.cache)?;
        let endpoint = source.endpoint();
        let shared = Arc::new(Shared::default());
        let mut session = None;
        if let Some(prologue) = cache.resume_prologue() {
            let mut n = 0;
            if crate::fetch::same_package(&*source, prologue, &mut n)?
                && let Ok(mut s) = StreamSession::with_prologue(options.session, prologue.to_vec())
            {
                for id in cache.present_blocks() {
                    s.mark_present(id)?;
                }
                session = Some(s);
            }
            if session.is_none() {
                cache.discard()?;
            }
        }
        if let Some(s) = &session {
            let mut present = vec![false; cache.blocks().len()];
            for id in cache.present_blocks() {
                present[id.0 as usize] = true;
            }
            let p = cache.resume_prologue().map(<[u8]>::to_vec);
            let progress = s.progress();
            shared.update(|st| {
                st.prologue = p;
                st.present = present;
                st.progress = Some(progress);
            });
        }
        let file = cache
            .file()
            .try_clone()
            .map_err(|e| Error::io("cloning the cache file handle", e))?;
        let mut session = session.unwrap_or_else(|| StreamSession::new(options.session));
        let (tx, rx) = mpsc::channel();
        let bg = Arc::clone(&shared);
        let mut callback = options.on_event.take();
        let thread = std::thread::Builder::new()
            .name("sft-stream".into())
            .spawn(move || {
                let result = {
                    let mut sink = NotifySink {
                        cache: &mut cache,
                        shared: &bg,
                    };
                    drive::drive_with_control(
                        &mut session,
                        &*source,
                        &mut sink,
                        &mut |e| {
                            match e {
                                Event::Progress(p) => bg.update(|s| s.progress = Some(*p)),
                                Event::LaunchReady => bg.update(|s| s.launch_ready = true),
                                Event::Complete => bg.update(|s| s.complete = true),
                                _ => {}
                            }
                            if let Some(f) = callback.as_mut() {
                                f(e);
                            }
                        },
                        &rx,
                    )
                };
                let checkpoint = cache.checkpoint();
                bg.update(|s| {
                    s.finished = true;
                    if let Err(e) = &result {
                        let kind = match e {
                            Error::Transport(t) => t.kind(),
                            _ => TransportErrorKind::Other,
                        };
                        s.failed = Some((kind, e.to_string()));
                    }
                });
                let report = result?;
                checkpoint?;
                Ok(report)
            })
            .map_err(|e| Error::io("spawning the stream thread", e))?;
        let mut pkg = StreamingPackage {
            shared,
            control: tx,
            thread: Some(thread),
            prologue: Vec::new(),
            layout: None,
            table: Vec::new(),
            file,
            timeout: options.timeout,
            endpoint,
            pool: Mutex::new(Vec::new()),
        };
        let prologue = pkg.wait(|s| s.prologue.clone(), "waiting for the prologue")?;
        let (table, layout) = {
            let p = Prologue::parse(&prologue)?;
            let index = p.index();
            let table = index
                .ids()
                .map(|id| index.get(id))
                .collect::<Result<Vec<_>, _>>()?;
            (table, p.layout())
        };
        pkg.prologue = prologue;
        pkg.layout = Some(layout);
        pkg.table = table;
        Ok(pkg)
    }

    /// Wait until `ready` gives a value, the stream fails, or the timeout.
    fn wait<T>(&self, mut ready: impl FnMut(&State) -> Option<T>, what: &str) -> Result<T, Error> {
        let deadline = Instant::now() + self.timeout;
        let mut st = self.shared.lock();
        loop {
            if let Some(v) = ready(&st) {
                return Ok(v);
            }
            if let Some((kind, msg)) = &st.failed {
                return Err(Error::Transport(TransportError::new(
                    *kind,
                    format!("{what}: the stream failed: {msg}"),
                )));
            }
            if st.finished {
                return Err(Error::Transport(TransportError::new(
                    TransportErrorKind::Other,
                    format!("{}: {what}: the stream has stopped", self.endpoint),
                )));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(timeout_error(what, &self.endpoint, self.timeout));
            }
            st = self
                .shared
                .cond
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The validated prologue: metadata, entries, block index.
    ///
    /// # Errors
    /// None in practice (it was validated at open); as [`Prologue::parse`].
    pub fn prologue(&self) -> Result<Prologue<'_>, Error> {
        match self.layout {
            // Checked at open: the section CRCs are not run again on every
            // read (a mount reads through here).
            Some(layout) => Ok(Prologue::from_checked(&self.prologue, layout)),
            None => Prologue::parse(&self.prologue),
        }
    }

    /// All entries in path order.
    ///
    /// # Errors
    /// As [`StreamingPackage::prologue`].
    pub fn entries(&self) -> Result<Entries<'_>, Error> {
        Ok(self.prologue()?.entries())
    }

    /// Look up an entry by path.
    ///
    /// # Errors
    /// As [`crate::Package::find`].
    pub fn find(&self, path: &str) -> Result<Option<Entry<'_>>, Error> {
        self.prologue()?.find(path)
    }

    /// Look up an entry by path, failing if it does not exist.
    ///
    /// # Errors
    /// [`Error::NotFound`], or as [`StreamingPackage::find`].
    pub fn entry(&self, path: &str) -> Result<Entry<'_>, Error> {
        self.find(path)?
            .ok_or_else(|| Error::NotFound(format!("`{path}` is not in the package")))
    }

    /// Number of blocks.
    pub fn block_count(&self) -> u32 {
        self.table.len() as u32
    }

    /// True if block `id` is in the cache.
    pub fn is_present(&self, id: BlockId) -> bool {
        self.shared
            .lock()
            .present
            .get(id.0 as usize)
            .copied()
            .unwrap_or(false)
    }

    /// The latest progress counters.
    pub fn progress(&self) -> Option<Progress> {
        self.shared.lock().progress
    }

    /// Wait until block `id` is in the cache, demanding it first if it is
    /// not: the demand pre-empts the background prefetch.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an id out of range; the stream's
    /// failure; a [`TransportErrorKind::Timeout`] error.
    pub fn wait_block(&self, id: BlockId) -> Result<(), Error> {
        if id.0 as usize >= self.table.len() {
            return Err(Error::invalid(format!(
                "{id} out of range ({} blocks)",
                self.table.len()
            )));
        }
        let i = id.0 as usize;
        if self.shared.lock().present.get(i).copied().unwrap_or(false) {
            return Ok(());
        }
        // A send fails only once the loop has ended; `wait` reports why.
        let _ = self.control.send(Control::Block(id));
        self.wait(
            |s| s.present.get(i).copied().unwrap_or(false).then_some(()),
            &format!("waiting for {id}"),
        )
    }

    /// Wait until every FB1 block is cached.
    ///
    /// # Errors
    /// As [`StreamingPackage::wait_block`].
    pub fn wait_launch_ready(&self) -> Result<(), Error> {
        self.wait(|s| s.launch_ready.then_some(()), "waiting for launch-ready")
    }

    /// Wait until every block is cached (with a launch-only session this
    /// waits for demands to bring them all, so it times out).
    ///
    /// # Errors
    /// As [`StreamingPackage::wait_block`].
    pub fn wait_complete(&self) -> Result<(), Error> {
        self.wait(|s| s.complete.then_some(()), "waiting for the stream")
    }

    /// Read block `id` (waiting for it) from the cache into `buf`, which
    /// decodes it (its CRC was checked before the cache reported it).
    fn load_block<'b>(&self, id: BlockId, buf: &'b mut BlockBuffer) -> Result<&'b [u8], Error> {
        self.wait_block(id)?;
        let info = self.table[id.0 as usize];
        buf.load(&info, Crc::AlreadyChecked, |stored| {
            crate::fetch::cache::pread_exact(&self.file, info.stored_offset, stored)
                .map_err(|e| Error::io(format!("reading {id} from the cache"), e))
        })
    }

    /// Read and decode block `id`, waiting for it if needed.
    ///
    /// # Errors
    /// As [`StreamingPackage::wait_block`]; [`Error::Integrity`] if a zlib
    /// block does not decode to its size.
    pub fn read_block(&self, id: BlockId) -> Result<Vec<u8>, Error> {
        Ok(self.load_block(id, &mut BlockBuffer::default())?.to_vec())
    }

    /// Read a whole file, demanding its blocks in order as the read
    /// reaches them; the buffer grows as verified blocks arrive (at most
    /// 1 MiB ahead of them), so a size declared in the prologue is never
    /// allocated on trust.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a directory or a file too large for
    /// memory; as [`StreamingPackage::read_block`].
    pub fn read_file(&self, entry: &Entry<'_>) -> Result<Vec<u8>, Error> {
        let mut rc = BlockBuffer::default();
        crate::read::read_whole(entry, |at, out| self.read_at_with(entry, at, out, &mut rc))
    }

    /// Read up to `buf.len()` bytes of a file from `offset`; returns how
    /// many (0 at or past the end). Only the blocks the range touches are
    /// demanded.
    ///
    /// # Errors
    /// As [`StreamingPackage::read_file`].
    ///
    /// Decoded blocks are kept between calls (a few, shared by every
    /// thread): a read that starts in the block an earlier read ended in
    /// (a file read in pieces, as the kernel reads through a mount) does
    /// not read and decode it again.
    pub fn read_at(&self, entry: &Entry<'_>, offset: u64, buf: &mut [u8]) -> Result<usize, Error> {
        entry.require_file()?;
        let first = self.block_at(entry, offset);
        let mut rc = {
            let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
            match pool
                .iter()
                .position(|b| first.is_some() && b.holds() == first)
            {
                Some(i) => pool.swap_remove(i),
                None => pool.pop().unwrap_or_default(),
            }
        };
        let result = self.read_at_with(entry, offset, buf, &mut rc);
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < POOL {
            // Most recent first out when nothing matches: the pool keeps
            // the block the latest reads ended in.
            pool.insert(0, rc);
        }
        result
    }

    /// The block holding byte `offset` of `entry`, if the index has it.
    fn block_at(&self, entry: &Entry<'_>, offset: u64) -> Option<BlockId> {
        let (logical, _) = entry.logical_at(offset)?;
        let (id, _) = self.prologue().ok()?.index().locate(logical)?;
        Some(id)
    }

    fn read_at_with(
        &self,
        entry: &Entry<'_>,
        offset: u64,
        buf: &mut [u8],
        rc: &mut BlockBuffer,
    ) -> Result<usize, Error> {
        let prologue = self.prologue()?;
        crate::read::read_file_at(
            entry,
            offset,
            buf,
            &prologue.index(),
            prologue.entry_offset(entry.number()),
            &mut StreamingBlocks { pkg: self, rc },
        )
    }

    /// A `Read + Seek` reader over one file; reads wait for (and demand)
    /// the blocks they touch.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a directory.
    pub fn reader<'a>(&'a self, entry: Entry<'a>) -> Result<StreamingReader<'a>, Error> {
        entry.require_file()?;
        Ok(StreamingReader {
            pkg: self,
            entry,
            pos: 0,
            cache: BlockBuffer::default(),
        })
    }

    /// Stop the background stream and wait for it; returns what it did.
    ///
    /// # Errors
    /// The stream's failure, if it failed.
    pub fn close(mut self) -> Result<DriveReport, Error> {
        self.stop()
    }

    fn stop(&mut self) -> Result<DriveReport, Error> {
        let _ = self.control.send(Control::Stop);
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| Error::invalid("the stream thread panicked"))?,
            None => Ok(DriveReport::default()),
        }
    }
}

impl Drop for StreamingPackage {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Blocks of a streaming package for the shared read loop: waits for
/// (and demands) blocks not yet present.
struct StreamingBlocks<'p, 'c> {
    pkg: &'p StreamingPackage,
    rc: &'c mut BlockBuffer,
}

impl crate::read::BlockProvider for StreamingBlocks<'_, '_> {
    fn block(&mut self, id: BlockId) -> Result<&[u8], Error> {
        self.pkg.load_block(id, self.rc)
    }
}

/// `Read + Seek` over one file of a [`StreamingPackage`].
#[derive(Debug)]
pub struct StreamingReader<'a> {
    pkg: &'a StreamingPackage,
    entry: Entry<'a>,
    pos: u64,
    cache: BlockBuffer,
}

impl StreamingReader<'_> {
    /// The entry being read.
    pub fn entry(&self) -> &Entry<'_> {
        &self.entry
    }
}

impl Read for StreamingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self
            .pkg
            .read_at_with(&self.entry, self.pos, buf, &mut self.cache)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for StreamingReader<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.pos = crate::read::seek_position(self.pos, self.entry.size(), pos)?;
        Ok(self.pos)
    }
}
