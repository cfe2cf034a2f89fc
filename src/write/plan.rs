//! Layout planning: the order of file data in the logical stream (FB1
//! first, in launch order), the extents of each file, and block counts.

use std::collections::BTreeMap;

use super::launch::take_uncovered;
use super::{InputEntry, LaunchItem, WriteOptions};
use crate::error::Error;
use crate::format::{ExtentRecord, blocks_for};

/// A run of one file's bytes placed at `logical` in the logical stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Piece {
    pub(crate) entry: usize,
    pub(crate) file_offset: u64,
    pub(crate) len: u64,
    pub(crate) logical: u64,
}

#[derive(Debug)]
pub(crate) struct Plan<'a> {
    pub(crate) entries: Vec<(&'a str, &'a InputEntry)>,
    /// Pieces in logical order, tiling `0..package_size`.
    pub(crate) pieces: Vec<Piece>,
    /// Extents of each entry, in file order.
    pub(crate) extents: Vec<Vec<ExtentRecord>>,
    pub(crate) launch_size: u64,
    pub(crate) package_size: u64,
    pub(crate) block_size: u32,
    pub(crate) fb1_blocks: u32,
    pub(crate) blocks: u32,
    pub(crate) created: (i64, u32),
}

impl<'a> Plan<'a> {
    pub(crate) fn build(
        options: &WriteOptions,
        inputs: &'a BTreeMap<String, InputEntry>,
        launch: &[LaunchItem],
        like: Option<&super::like::LikeIndex>,
    ) -> Result<Plan<'a>, Error> {
        let entries: Vec<(&str, &InputEntry)> =
            inputs.iter().map(|(p, e)| (p.as_str(), e)).collect();
        let mut covered: Vec<Vec<(u64, u64)>> = vec![Vec::new(); entries.len()];
        let mut pieces = Vec::new();
        let mut logical = 0u64;
        let push = |pieces: &mut Vec<Piece>, logical: &mut u64, entry, (s, e): (u64, u64)| {
            pieces.push(Piece {
                entry,
                file_offset: s,
                len: e - s,
                logical: *logical,
            });
            *logical += e - s;
        };
        let files = || {
            entries
                .iter()
                .enumerate()
                .filter(|(_, (_, e))| !e.dir && e.size > 0)
        };
        if options.full_load {
            for (i, (_, e)) in files() {
                push(&mut pieces, &mut logical, i, (0, e.size));
                covered[i].push((0, e.size));
            }
        } else {
            for item in launch {
                let i = entries
                    .binary_search_by(|(p, _)| (*p).cmp(item.path.as_str()))
                    .map_err(|_| {
                        Error::invalid(format!(
                            "launch list names `{}`, which is not in the package",
                            item.path
                        ))
                    })?;
                let e = entries[i].1;
                if e.dir {
                    return Err(Error::invalid(format!(
                        "launch list names `{}`, which is a directory",
                        item.path
                    )));
                }
                let want = match item.range {
                    None => (0, e.size),
                    Some((off, len)) => {
                        let end = off.checked_add(len).filter(|&end| end <= e.size).ok_or_else(|| {
                            Error::invalid(format!(
                                "launch list range {off}+{len} is beyond the end of `{}` ({} bytes)",
                                item.path, e.size
                            ))
                        })?;
                        (off, end)
                    }
                };
                if want.0 < want.1 {
                    for r in take_uncovered(&mut covered[i], want) {
                        push(&mut pieces, &mut logical, i, r);
                    }
                }
            }
        }
        let launch_size = logical;
        for (i, (_, e)) in files() {
            for r in take_uncovered(&mut covered[i], (0, e.size)) {
                push(&mut pieces, &mut logical, i, r);
            }
        }
        let package_size = logical;
        if let Some(like) = like {
            if like.block_size != options.block_size.bytes() {
                return Err(Error::invalid(format!(
                    "packing like an old version needs its block size ({} bytes), not {}",
                    like.block_size,
                    options.block_size.bytes()
                )));
            }
            let split = pieces.partition_point(|p| p.logical < launch_size);
            let mut laid = super::like::relayout(like, &entries, &pieces[..split])?;
            laid.extend(super::like::relayout(like, &entries, &pieces[split..])?);
            let mut at = 0u64;
            for p in &mut laid {
                p.logical = at;
                at += p.len;
            }
            debug_assert_eq!(at, package_size);
            pieces = laid;
        }

        let mut extents: Vec<Vec<ExtentRecord>> = vec![Vec::new(); entries.len()];
        for p in &pieces {
            extents[p.entry].push(ExtentRecord {
                file_offset: p.file_offset,
                logical_offset: p.logical,
                length: p.len,
            });
        }
        for ext in &mut extents {
            ext.sort_unstable_by_key(|e| e.file_offset);
            // Merge runs contiguous in both file and logical order.
            let mut merged: Vec<ExtentRecord> = Vec::with_capacity(ext.len());
            for e in ext.drain(..) {
                match merged.last_mut() {
                    Some(m)
                        if m.file_offset + m.length == e.file_offset
                            && m.logical_offset + m.length == e.logical_offset =>
                    {
                        m.length += e.length;
                    }
                    _ => merged.push(e),
                }
            }
            *ext = merged;
        }

        let block_size = options.block_size.bytes();
        let fb1 = blocks_for(launch_size, block_size);
        let total = fb1 + blocks_for(package_size - launch_size, block_size);
        let too_big = || {
            Error::invalid(format!(
                "{package_size} bytes need more than 2^32 blocks of {block_size} bytes"
            ))
        };
        let blocks = u32::try_from(total).map_err(|_| too_big())?;
        let fb1_blocks = u32::try_from(fb1).map_err(|_| too_big())?;
        let created = options.created.unwrap_or_else(|| {
            entries
                .iter()
                .filter(|(_, e)| !e.implicit)
                .map(|(_, e)| e.mtime)
                .max()
                .unwrap_or((0, 0))
        });
        Ok(Plan {
            entries,
            pieces,
            extents,
            launch_size,
            package_size,
            block_size,
            fb1_blocks,
            blocks,
            created,
        })
    }

    /// Logical range of block `i` (same arithmetic as the reader's index).
    pub(crate) fn block_range(&self, i: u32) -> (u64, u64) {
        let bs = u64::from(self.block_size);
        let i = u64::from(i);
        let fb1 = u64::from(self.fb1_blocks);
        if i < fb1 {
            let s = i * bs;
            (s, (s + bs).min(self.launch_size))
        } else {
            let s = self.launch_size + (i - fb1) * bs;
            (s, (s + bs).min(self.package_size))
        }
    }

    /// Index of the first piece that ends after `logical`.
    pub(crate) fn piece_at(&self, logical: u64) -> usize {
        self.pieces
            .partition_point(|p| p.logical + p.len <= logical)
    }
}
