//! Launch recording, the Sequencer's launch phase: the bytes a launch
//! reads through a mount, in order of first touch, as a launch list.
//!
//! A mount with a [`Trace`] records every read the kernel sends it. The
//! kernel keeps what it read in its page cache, so on a fresh mount each
//! page reaches the file system once: the order of the reads is the order
//! of first touch. It includes the kernel's readahead (the pages just
//! after a read, and around a page fault of a mapped library), which a
//! launch usually goes on to read anyway; the packer rounds every range
//! out to whole blocks in any case.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::write::{LaunchItem, take_uncovered};

/// The reads of a mount in order of first touch, shared between the file
/// system's threads ([`PackageFs::record`](super::PackageFs::record)).
///
/// The kernel keeps what it read in its page cache, so on a fresh mount
/// each page reaches the file system once: the order of the reads is the
/// order of first touch. It includes the kernel's readahead (the pages
/// just after a read, and around a page fault of a mapped library), which
/// a launch usually goes on to read anyway; the packer rounds every range
/// out to whole blocks in any case.
#[derive(Debug, Default)]
pub struct Trace {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// (path, start, end, file size), in order of first touch.
    items: Vec<(String, u64, u64, u64)>,
    /// Bytes of each path already listed (sorted, merged).
    covered: HashMap<String, Vec<(u64, u64)>>,
}

impl Trace {
    /// An empty trace.
    pub fn new() -> Self {
        Trace::default()
    }

    /// Record that `len` bytes at `offset` of `path` (a file of `size`
    /// bytes) were read. Bytes listed before are left out; a range that
    /// continues the last item grows it.
    pub fn record(&self, path: &str, size: u64, offset: u64, len: u64) {
        let end = offset.saturating_add(len).min(size);
        if offset >= end {
            return;
        }
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let State { items, covered } = &mut *st;
        let have = covered.entry(path.to_owned()).or_default();
        for (s, e) in take_uncovered(have, (offset, end)) {
            match items.last_mut() {
                Some(last) if last.0 == path && last.2 == s => last.2 = e,
                _ => items.push((path.to_owned(), s, e, size)),
            }
        }
    }

    /// The trace as launch-list items: a whole file as its path, a part of
    /// one as `(offset, length)`.
    pub fn items(&self) -> Vec<LaunchItem> {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.items
            .iter()
            .map(|(path, s, e, size)| LaunchItem {
                path: path.clone(),
                range: (*s != 0 || e != size).then_some((*s, e - s)),
            })
            .collect()
    }

    /// Bytes recorded (each byte once).
    pub fn bytes(&self) -> u64 {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.items.iter().map(|(_, s, e, _)| e - s).sum()
    }

    /// The trace in the launch-list grammar that `sft pack --launch-list`
    /// and [`crate::write::parse_launch_list`] read: one `PATH` or
    /// `PATH:OFFSET:LENGTH` a line, after a `#` comment line.
    pub fn to_launch_list(&self) -> String {
        let items = self.items();
        let mut out = format!(
            "# sft launch trace: {} items, {} bytes, in order of first touch\n",
            items.len(),
            self.bytes()
        );
        for i in &items {
            match i.range {
                None => out.push_str(&i.path),
                Some((off, len)) => out.push_str(&format!("{}:{off}:{len}", i.path)),
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_touch_order_merged_and_whole_files() {
        let t = Trace::new();
        t.record("b.dll", 10_000, 0, 4096);
        t.record("b.dll", 10_000, 4096, 8192); // continues, clipped at EOF
        t.record("a.exe", 300, 0, 4096); // whole file, clipped
        t.record("b.dll", 10_000, 0, 100); // read before: nothing new
        t.record("c.dat", 1 << 20, 65536, 4096);
        t.record("c.dat", 1 << 20, 0, 4096); // not adjacent to the last item
        t.record("c.dat", 1 << 20, 4096, 4096); // adjacent to the last item
        t.record("z", 5, 5, 10); // at EOF: nothing
        assert_eq!(
            t.to_launch_list().lines().skip(1).collect::<Vec<_>>(),
            ["b.dll", "a.exe", "c.dat:65536:4096", "c.dat:0:8192"]
        );
        assert_eq!(t.bytes(), 10_000 + 300 + 4096 + 8192);
        // What it writes, the launch-list parser reads back.
        let parsed = crate::write::parse_launch_list(&t.to_launch_list()).unwrap();
        assert_eq!(parsed, t.items());
    }
}
