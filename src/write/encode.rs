//! Block encoding on all cores and package emission.
//!
//! Workers take block numbers from a shared counter, gather the block's
//! bytes from its pieces, compress and checksum them; the calling thread
//! writes finished blocks in order. A window of `8 × threads` blocks bounds
//! memory however uneven the workers are. The prologue (whose size is known
//! before any block is encoded: every index record has a fixed size) is
//! written last, at offset 0.

use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Condvar, Mutex, mpsc};

use super::plan::Plan;
use super::{Compression, ProgressFn, Source, WriteOptions, WriteReport};
use crate::error::Error;
use crate::format::guid::Guid;
use crate::format::{
    BLOCK_RECORD_LEN, BlockRecord, Codec, ENTRY_RECORD_LEN, EXTENT_RECORD_LEN, EntryKind,
    EntryRecord, FeatureBlock, HASH_ALGORITHM_BLAKE3, HASH_LEN, HASH_RECORD_LEN, HEADER_LEN,
    HashSectionHeader, Header, MAX_METADATA_LEN, METADATA_FIXED_LEN, MetadataRecord,
    SECTION_ENTRY_LEN, SECTION_FLAG_REQUIRED, SectionEntry, SectionKind, VERSION_MAJOR,
    VERSION_MINOR, VERSION_MINOR_1_0, crc32_parts, is_valid_path,
};

/// Namespace for the default package GUID (UUIDv5 of the package name).
const GUID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_bytes([
    0x5f, 0x1e, 0x2a, 0x3c, 0x8d, 0x44, 0x4b, 0x0e, 0x9a, 0x61, 0x0c, 0x7d, 0x35, 0x92, 0xe4, 0x17,
]);

struct Encoded {
    raw_len: u32,
    stored: Vec<u8>,
    codec: Codec,
    crc: u32,
    /// BLAKE3 of `stored` (when the package gets a block hash section).
    hash: [u8; HASH_LEN],
    zero: bool,
}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::io(what, e)
}

/// Per-worker state: reused buffers, compressor and the last open file.
struct Worker<'p> {
    plan: &'p Plan<'p>,
    compression: Compression,
    hashes: bool,
    sparse: bool,
    z: Option<flate2::Compress>,
    #[cfg(feature = "zstd")]
    zs: Option<zstd::zstd_safe::CCtx<'static>>,
    open: Option<(usize, std::fs::File)>,
}

impl Worker<'_> {
    fn encode(&mut self, id: u32) -> Result<Encoded, Error> {
        let (start, end) = self.plan.block_range(id);
        let raw_len = (end - start) as usize;
        let mut buf = vec![0u8; raw_len];
        let mut pi = self.plan.piece_at(start);
        let mut at = start;
        while at < end {
            let p = self.plan.pieces[pi];
            let within = at - p.logical;
            let n = (p.len - within).min(end - at) as usize;
            let dst = &mut buf[(at - start) as usize..][..n];
            let (path, input) = self.plan.entries[p.entry];
            match &input.source {
                Some(Source::Bytes(b)) => {
                    let s = (p.file_offset + within) as usize;
                    dst.copy_from_slice(&b[s..s + n]);
                }
                Some(Source::Path(fs)) => {
                    if self.open.as_ref().is_none_or(|(i, _)| *i != p.entry) {
                        let f = std::fs::File::open(fs)
                            .map_err(io_err(format!("opening `{}`", fs.display())))?;
                        self.open = Some((p.entry, f));
                    }
                    if let Some((_, f)) = &self.open {
                        crate::io::pos::read_exact_at(f, dst, p.file_offset + within).map_err(
                            |e| {
                                let why = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                                    " (it shrank while being packed)"
                                } else {
                                    ""
                                };
                                Error::io(
                                    format!("reading `{}` for `{path}`{why}", fs.display()),
                                    e,
                                )
                            },
                        )?;
                    }
                }
                None => return Err(Error::invalid(format!("`{path}` has no data source"))),
            }
            at += n as u64;
            pi += 1;
        }

        let (stored, codec) = match self.compress(&buf)? {
            Some((out, codec)) => (out, codec),
            None => (buf, Codec::Stored),
        };
        let crc = crc32fast::hash(&stored);
        let hash = if self.hashes {
            *blake3::hash(&stored).as_bytes()
        } else {
            [0; HASH_LEN]
        };
        let zero = codec == Codec::Stored && self.sparse && stored.iter().all(|&b| b == 0);
        Ok(Encoded {
            raw_len: raw_len as u32,
            stored,
            codec,
            crc,
            hash,
            zero,
        })
    }

    /// `buf` compressed as the options say, if that makes it strictly
    /// shorter (the writer rule of `docs/FORMAT.md` §9); `None`: store it.
    fn compress(&mut self, buf: &[u8]) -> Result<Option<(Vec<u8>, Codec)>, Error> {
        let raw_len = buf.len();
        if raw_len <= 1 {
            return Ok(None);
        }
        match self.compression {
            Compression::Zlib(level) if level > 0 => {
                let z = self.z.get_or_insert_with(|| {
                    flate2::Compress::new(flate2::Compression::new(level.min(9)), true)
                });
                z.reset();
                // Compress into raw_len - 1 bytes at most: a stream that
                // does not fit does not shrink the block, which is stored.
                let mut out = vec![0u8; raw_len - 1];
                let status = z
                    .compress(buf, &mut out, flate2::FlushCompress::Finish)
                    .map_err(|e| Error::invalid(format!("zlib compression failed: {e}")))?;
                let produced = z.total_out() as usize;
                if status == flate2::Status::StreamEnd && produced < raw_len {
                    out.truncate(produced);
                    return Ok(Some((out, Codec::Zlib)));
                }
                Ok(None)
            }
            #[cfg(feature = "zstd")]
            Compression::Zstd(level) => {
                use zstd::zstd_safe::{CCtx, CParameter, ResetDirective};
                let zerr =
                    |c| Error::invalid(format!("zstd: {}", zstd::zstd_safe::get_error_name(c)));
                if self.zs.is_none() {
                    let mut z = CCtx::create();
                    let level = level.clamp(1, zstd::zstd_safe::max_c_level());
                    z.set_parameter(CParameter::CompressionLevel(level))
                        .and_then(|_| z.set_parameter(CParameter::ContentSizeFlag(true)))
                        .and_then(|_| z.set_parameter(CParameter::ChecksumFlag(false)))
                        .map_err(zerr)?;
                    self.zs = Some(z);
                }
                let Some(z) = self.zs.as_mut() else {
                    return Ok(None);
                };
                // A frame that did not fit last time leaves the context
                // mid-stream: start a new frame, keeping the parameters.
                z.reset(ResetDirective::SessionOnly).map_err(zerr)?;
                let mut out = Vec::with_capacity(raw_len - 1);
                // An error here is "destination too small": no gain, stored.
                match z.compress2(&mut out, buf) {
                    Ok(n) if n < raw_len => Ok(Some((out, Codec::Zstd))),
                    _ => Ok(None),
                }
            }
            #[cfg(not(feature = "zstd"))]
            Compression::Zstd(_) => Err(Error::invalid(
                "zstd compression needs this crate's `zstd` feature",
            )),
            _ => Ok(None),
        }
    }
}

/// Encode all blocks on `threads` workers, handing each finished block to
/// `sink` in block order.
fn encode_blocks(
    plan: &Plan<'_>,
    options: &WriteOptions,
    sparse: bool,
    progress: Option<&ProgressFn>,
    mut sink: impl FnMut(u32, Encoded) -> Result<(), Error>,
) -> Result<(), Error> {
    let blocks = plan.blocks;
    if blocks == 0 {
        return Ok(());
    }
    let threads = options
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, blocks as usize);
    let window = (threads * 8) as u32;
    let next = AtomicU32::new(0);
    let abort = AtomicBool::new(false);
    let written = Mutex::new(0u32);
    let moved = Condvar::new();
    let (tx, rx) = mpsc::channel::<(u32, Result<Encoded, Error>)>();

    std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, abort, written, moved) = (&next, &abort, &written, &moved);
            s.spawn(move || {
                let mut w = Worker {
                    plan,
                    compression: options.compression,
                    hashes: options.has_block_hashes(),
                    sparse,
                    z: None,
                    #[cfg(feature = "zstd")]
                    zs: None,
                    open: None,
                };
                loop {
                    let id = next.fetch_add(1, Ordering::Relaxed);
                    if id >= blocks || abort.load(Ordering::Relaxed) {
                        return;
                    }
                    {
                        let mut done = written.lock().unwrap_or_else(|p| p.into_inner());
                        while id >= *done + window && !abort.load(Ordering::Relaxed) {
                            done = moved.wait(done).unwrap_or_else(|p| p.into_inner());
                        }
                    }
                    if abort.load(Ordering::Relaxed) {
                        return;
                    }
                    let r = w.encode(id);
                    if let (Ok(e), Some(p)) = (&r, progress) {
                        p(u64::from(e.raw_len));
                    }
                    let failed = r.is_err();
                    if tx.send((id, r)).is_err() || failed {
                        return;
                    }
                }
            });
        }
        drop(tx);

        let result = (|| {
            let mut pending: BTreeMap<u32, Encoded> = BTreeMap::new();
            let mut want = 0u32;
            while want < blocks {
                let Ok((id, r)) = rx.recv() else {
                    return Err(Error::invalid("block encoder stopped early"));
                };
                pending.insert(id, r?);
                while let Some(e) = pending.remove(&want) {
                    sink(want, e)?;
                    want += 1;
                    *written.lock().unwrap_or_else(|p| p.into_inner()) = want;
                    moved.notify_all();
                }
            }
            Ok(())
        })();
        if result.is_err() {
            abort.store(true, Ordering::Relaxed);
            let _guard = written.lock().unwrap_or_else(|p| p.into_inner());
            moved.notify_all();
        }
        // Drain so no worker blocks on a full channel (it is unbounded, but
        // keep the receiver alive until the scope joins them).
        let _ = &rx;
        result
    })
}

fn check_meta_string(what: &str, s: &str) -> Result<(), Error> {
    if s.len() as u64 > MAX_METADATA_LEN / 4 {
        return Err(Error::invalid(format!(
            "{what} is longer than {} bytes",
            MAX_METADATA_LEN / 4
        )));
    }
    Ok(())
}

pub(crate) fn write<W: Write + Seek>(
    plan: &Plan<'_>,
    options: &WriteOptions,
    out: &mut W,
    sparse: bool,
    progress: Option<&ProgressFn>,
) -> Result<WriteReport, Error> {
    let name = options.name.clone().unwrap_or_else(|| "package".to_owned());
    let root = options.root.clone().unwrap_or_else(|| name.clone());
    if !is_valid_path(&root) || root.contains('/') {
        return Err(Error::invalid(format!(
            "root directory `{root}` must be one valid path component"
        )));
    }
    check_meta_string("name", &name)?;
    if name.bytes().any(crate::format::is_control_byte) {
        return Err(Error::invalid(
            "the package name must not contain control characters (docs/FORMAT.md §5.2)",
        ));
    }
    check_meta_string("comment", &options.comment)?;

    // Directory: names pool, entry records and extents, all known now.
    let mut names = Vec::new();
    let mut entry_bytes = Vec::with_capacity(plan.entries.len() * ENTRY_RECORD_LEN);
    let mut extent_bytes = Vec::new();
    let mut extent_count = 0u64;
    for (i, (path, e)) in plan.entries.iter().enumerate() {
        let short = e.short_name.as_deref().unwrap_or("");
        let ext = &plan.extents[i];
        let mtime = if e.implicit { plan.created } else { e.mtime };
        let mut rec = EntryRecord {
            name_off: names.len() as u64,
            name_len: path.len() as u32,
            short_len: short.len() as u16,
            kind: if e.dir {
                EntryKind::Directory
            } else {
                EntryKind::File
            }
            .id(),
            attributes: e.attrs.bits(),
            size: e.size,
            mtime_secs: mtime.0,
            mtime_nanos: mtime.1,
            extent_count: u32::try_from(ext.len())
                .map_err(|_| Error::invalid(format!("`{path}` has too many extents")))?,
            extent_first: extent_count,
            crc: 0,
        };
        names.extend_from_slice(path.as_bytes());
        names.extend_from_slice(short.as_bytes());
        let ext_start = extent_bytes.len();
        for x in ext {
            extent_bytes.extend_from_slice(&x.encode());
        }
        extent_count += ext.len() as u64;
        let enc = rec.encode();
        rec.crc = crc32_parts(&[
            &enc[..ENTRY_RECORD_LEN - 4],
            path.as_bytes(),
            short.as_bytes(),
            &extent_bytes[ext_start..],
        ]);
        entry_bytes.extend_from_slice(&rec.encode());
    }

    let meta_len = METADATA_FIXED_LEN + name.len() + root.len() + options.comment.len();
    let index_len = plan.blocks as usize * BLOCK_RECORD_LEN;
    let with_hashes = options.has_block_hashes();
    let hashes_len = if with_hashes {
        (plan.blocks as usize + 1) * HASH_RECORD_LEN
    } else {
        0
    };
    let section_count = SectionKind::ALL.len() + usize::from(with_hashes);
    let section_lens = [
        meta_len as u64,
        entry_bytes.len() as u64,
        extent_bytes.len() as u64,
        names.len() as u64,
        index_len as u64,
        hashes_len as u64,
    ];
    let table_off = HEADER_LEN as u64;
    let sections_start = table_off + (section_count * SECTION_ENTRY_LEN) as u64;
    let prologue_len = sections_start + section_lens.iter().sum::<u64>();

    // Data region.
    let io = |what: &'static str| move |e| Error::io(format!("writing package {what}"), e);
    out.seek(SeekFrom::Start(prologue_len))
        .map_err(io("data"))?;
    let mut records: Vec<BlockRecord> = Vec::with_capacity(plan.blocks as usize);
    let mut pos = prologue_len;
    let mut written_to = prologue_len; // end of the last bytes actually written
    let mut fb1_stored = 0u64;
    let mut hashes = Vec::with_capacity(hashes_len);
    if with_hashes {
        hashes.extend_from_slice(
            &HashSectionHeader {
                algorithm: HASH_ALGORITHM_BLAKE3,
                hash_len: HASH_LEN as u32,
                block_count: plan.blocks,
            }
            .encode(),
        );
    }
    encode_blocks(plan, options, sparse, progress, |id, e| {
        let fb = if id < plan.fb1_blocks {
            FeatureBlock::Fb1
        } else {
            FeatureBlock::Fb2
        };
        if e.zero {
            out.seek(SeekFrom::Current(e.stored.len() as i64))
                .map_err(io("data"))?;
        } else {
            out.write_all(&e.stored).map_err(io("data"))?;
            written_to = pos + e.stored.len() as u64;
        }
        if with_hashes {
            hashes.extend_from_slice(&e.hash);
        }
        records.push(BlockRecord {
            stored_offset: pos,
            stored_len: e.stored.len() as u32,
            raw_len: e.raw_len,
            crc: e.crc,
            codec: e.codec.id(),
            feature_block: fb as u8,
        });
        pos += e.stored.len() as u64;
        if fb == FeatureBlock::Fb1 {
            fb1_stored += e.stored.len() as u64;
        }
        Ok(())
    })?;
    let data_len = pos - prologue_len;
    if written_to < pos {
        // Trailing hole: write the last byte so the file has its full length.
        out.seek(SeekFrom::Start(pos - 1)).map_err(io("data"))?;
        out.write_all(&[0]).map_err(io("data"))?;
    }

    let mut index_bytes = Vec::with_capacity(index_len);
    for r in &records {
        index_bytes.extend_from_slice(&r.encode());
    }

    let version = options.version.unwrap_or(1);
    let package_guid = options.package_guid.unwrap_or_else(|| {
        Guid(uuid::Uuid::new_v5(&GUID_NAMESPACE, format!("package:{name}").as_bytes()).into_bytes())
    });
    let version_guid = options.version_guid.unwrap_or_else(|| {
        let mut seed = Vec::with_capacity(4 + index_bytes.len() + entry_bytes.len());
        seed.extend_from_slice(&version.to_le_bytes());
        seed.extend_from_slice(&entry_bytes);
        seed.extend_from_slice(&index_bytes);
        let ns = uuid::Uuid::from_bytes(package_guid.0);
        Guid(uuid::Uuid::new_v5(&ns, &seed).into_bytes())
    });
    let mut meta = Vec::with_capacity(meta_len);
    let strings_at = METADATA_FIXED_LEN as u32;
    let n_len = name.len() as u32;
    let r_len = root.len() as u32;
    let c_len = options.comment.len() as u32;
    let rec = MetadataRecord {
        fixed_len: METADATA_FIXED_LEN as u32,
        version,
        package_guid: package_guid.0,
        version_guid: version_guid.0,
        created_secs: plan.created.0,
        created_nanos: plan.created.1,
        launch_size: plan.launch_size,
        package_size: plan.package_size,
        name: (strings_at, n_len),
        root: (strings_at + n_len, r_len),
        comment: (strings_at + n_len + r_len, c_len),
    };
    meta.extend_from_slice(&rec.encode());
    meta.extend_from_slice(name.as_bytes());
    meta.extend_from_slice(root.as_bytes());
    meta.extend_from_slice(options.comment.as_bytes());

    debug_assert_eq!(hashes.len(), hashes_len);
    let bodies: [&[u8]; 6] = [
        &meta,
        &entry_bytes,
        &extent_bytes,
        &names,
        &index_bytes,
        &hashes,
    ];
    let kinds = SectionKind::ALL
        .iter()
        .copied()
        .chain(with_hashes.then_some(SectionKind::BlockHashes));
    let mut table = Vec::with_capacity(section_count * SECTION_ENTRY_LEN);
    let mut off = sections_start;
    for (kind, body) in kinds.zip(bodies) {
        table.extend_from_slice(
            &SectionEntry {
                kind: kind as u32,
                // v1.0 readers skip the optional hash section (§2.4).
                flags: if kind == SectionKind::BlockHashes {
                    0
                } else {
                    SECTION_FLAG_REQUIRED
                },
                offset: off,
                length: body.len() as u64,
                record_size: kind.record_len(),
                crc: crc32_parts(&[body]),
            }
            .encode(),
        );
        off += body.len() as u64;
    }
    debug_assert_eq!(off, prologue_len);
    let header = Header {
        major: VERSION_MAJOR,
        minor: if with_hashes {
            VERSION_MINOR
        } else {
            VERSION_MINOR_1_0
        },
        header_len: HEADER_LEN as u32,
        prologue_len,
        data_len,
        block_size: plan.block_size,
        block_count: plan.blocks,
        fb1_block_count: plan.fb1_blocks,
        section_count: section_count as u32,
        section_table_offset: table_off,
        fb1_stored_len: fb1_stored,
        section_table_crc: crc32_parts(&[&table]),
        flags: 0,
    };
    out.seek(SeekFrom::Start(0)).map_err(io("prologue"))?;
    out.write_all(&header.encode()).map_err(io("prologue"))?;
    out.write_all(&table).map_err(io("prologue"))?;
    for body in bodies {
        out.write_all(body).map_err(io("prologue"))?;
    }
    out.flush().map_err(io("prologue"))?;
    let _ = EXTENT_RECORD_LEN;
    Ok(WriteReport {
        entries: plan.entries.len() as u64,
        blocks: plan.blocks,
        fb1_blocks: plan.fb1_blocks,
        package_size: plan.package_size,
        launch_size: plan.launch_size,
        stored_size: prologue_len + data_len,
    })
}
