//! Launch lists: which file ranges go into FB1, in launch order.

use crate::error::Error;

/// One launch-list item: a whole file, or `length` bytes at `offset`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LaunchItem {
    /// Path inside the package, `/`-separated.
    pub path: String,
    /// `(offset, length)` within the file; `None` for the whole file.
    pub range: Option<(u64, u64)>,
}

/// Parse a launch list: one item a line, `PATH` or `PATH:OFFSET:LENGTH`
/// (decimal), in launch order. Blank lines and lines starting with `#`
/// are skipped; `\` separators (lists recorded on Windows) become `/`.
///
/// ```
/// let items = sft::write::parse_launch_list("# recorded\nbin/app.exe\nlib/big.dll:0:65536\n")?;
/// assert_eq!(items.len(), 2);
/// assert_eq!(items[1].range, Some((0, 65536)));
/// # Ok::<(), sft::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] naming the line for a malformed item.
pub fn parse_launch_list(text: &str) -> Result<Vec<LaunchItem>, Error> {
    let mut items = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad =
            |why: &str| Error::invalid(format!("launch list line {}: {why}: `{line}`", i + 1));
        let parts: Vec<&str> = line.split(':').collect();
        let (path, range) = match parts.as_slice() {
            [p] => (*p, None),
            [p, off, len] => {
                let off = off.trim().parse::<u64>().map_err(|_| bad("bad offset"))?;
                let len = len.trim().parse::<u64>().map_err(|_| bad("bad length"))?;
                (*p, Some((off, len)))
            }
            _ => return Err(bad("expected PATH or PATH:OFFSET:LENGTH")),
        };
        let path = path.trim().replace('\\', "/");
        let path = path.trim_matches('/').to_owned();
        if !crate::format::is_valid_path(&path) {
            return Err(bad("invalid path"));
        }
        items.push(LaunchItem { path, range });
    }
    Ok(items)
}

/// Merge several launch lists (several launch profiles of one package,
/// or the traces of several clients) into one FB1 order.
///
/// **The rule:** the lists take turns by bytes. At each step the next item
/// comes from the list that has contributed the fewest bytes so far (the
/// earlier list on a tie), less the bytes already listed; an item whose
/// bytes are all listed adds nothing. So every profile's launch data
/// arrives in its own order, and with `k` profiles each one's data is
/// resident after at most `k` times the bytes of its own list; bytes that
/// several profiles share come where the first of them needs them. One
/// list merges to itself, less repeats. `size` gives a file's size (a
/// whole-file item's bytes); items naming files it does not know are kept
/// as they are, for the builder to report.
///
/// ```
/// use sft::write::{merge_launch_lists, parse_launch_list};
/// let a = parse_launch_list("app.exe\nlib.dll:0:100\n")?;
/// let b = parse_launch_list("tool.exe\nlib.dll:0:200\n")?;
/// let size = |p: &str| Some(match p { "app.exe" => 300, "tool.exe" => 50, _ => 1000 });
/// let m = merge_launch_lists(&[a, b], size);
/// let lines: Vec<String> = m.iter().map(|i| format!("{}:{:?}", i.path, i.range)).collect();
/// // a leads (tie), then b twice (50 then 250 bytes < 300), then a's lib.dll
/// // range is already listed.
/// assert_eq!(lines, ["app.exe:Some((0, 300))", "tool.exe:Some((0, 50))", "lib.dll:Some((0, 200))"]);
/// # Ok::<(), sft::Error>(())
/// ```
pub fn merge_launch_lists(
    lists: &[Vec<LaunchItem>],
    size: impl Fn(&str) -> Option<u64>,
) -> Vec<LaunchItem> {
    let mut covered: std::collections::BTreeMap<&str, Vec<(u64, u64)>> = Default::default();
    let mut next = vec![0usize; lists.len()];
    let mut given = vec![0u64; lists.len()];
    let mut out = Vec::new();
    loop {
        // The list with the fewest bytes so far that has items left.
        let Some(k) = (0..lists.len())
            .filter(|&k| next[k] < lists[k].len())
            .min_by_key(|&k| (given[k], k))
        else {
            return out;
        };
        let item = &lists[k][next[k]];
        next[k] += 1;
        let Some(file) = size(&item.path) else {
            out.push(item.clone());
            continue;
        };
        let want = match item.range {
            None => (0, file),
            Some((off, len)) => (off, off.saturating_add(len)),
        };
        if want.0 >= want.1 {
            continue;
        }
        for (s, e) in take_uncovered(covered.entry(&item.path).or_default(), want) {
            given[k] += e - s;
            out.push(LaunchItem {
                path: item.path.clone(),
                range: Some((s, e - s)),
            });
        }
    }
}

/// Remove from `want` (a half-open range) the parts already in `have`
/// (sorted, disjoint), returning what is left in order, and add them to
/// `have`.
pub(crate) fn take_uncovered(have: &mut Vec<(u64, u64)>, want: (u64, u64)) -> Vec<(u64, u64)> {
    let (mut s, e) = want;
    let mut out = Vec::new();
    for &(hs, he) in have.iter() {
        if he <= s {
            continue;
        }
        if hs >= e {
            break;
        }
        if hs > s {
            out.push((s, hs));
        }
        s = s.max(he);
        if s >= e {
            break;
        }
    }
    if s < e {
        out.push((s, e));
    }
    have.extend_from_slice(&out);
    have.sort_unstable();
    // Merge touching ranges to keep `have` small.
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(have.len());
    for &(a, b) in have.iter() {
        match merged.last_mut() {
            Some(last) if last.1 >= a => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    *have = merged;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncovered_ranges() {
        let mut have = vec![];
        assert_eq!(take_uncovered(&mut have, (10, 20)), vec![(10, 20)]);
        assert_eq!(take_uncovered(&mut have, (0, 30)), vec![(0, 10), (20, 30)]);
        assert_eq!(have, vec![(0, 30)]);
        assert_eq!(take_uncovered(&mut have, (5, 25)), vec![]);
        assert_eq!(take_uncovered(&mut have, (40, 50)), vec![(40, 50)]);
        assert_eq!(take_uncovered(&mut have, (25, 45)), vec![(30, 40)]);
        assert_eq!(have, vec![(0, 50)]);
    }

    #[test]
    fn launch_list_errors_name_the_line() {
        let e = parse_launch_list("a\nb:1\n").unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        assert!(parse_launch_list("a:x:1").is_err());
        assert!(parse_launch_list("../etc/passwd").is_err());
        assert_eq!(
            parse_launch_list("dir\\f.dll:1:2").unwrap()[0].path,
            "dir/f.dll"
        );
    }

    /// Files a.., sizes 0..3000; items whole or ranges (some past the end,
    /// some empty).
    fn lists() -> impl proptest::strategy::Strategy<Value = Vec<Vec<LaunchItem>>> {
        use proptest::prelude::*;
        let item =
            (0u8..4, any::<bool>(), 0u64..3500, 0u64..1500).prop_map(|(f, whole, off, len)| {
                LaunchItem {
                    path: format!("f{f}"),
                    range: (!whole).then_some((off, len)),
                }
            });
        proptest::collection::vec(proptest::collection::vec(item, 0..8), 1..4)
    }

    fn size(p: &str) -> Option<u64> {
        // f3 is not in the package: kept as it is, for the builder to report.
        ["f0", "f1", "f2"]
            .iter()
            .position(|&f| f == p)
            .map(|i| [3000u64, 1, 0][i])
    }

    /// Bytes of `p` an item names, clipped to the file.
    fn bytes(i: &LaunchItem) -> Vec<u64> {
        let Some(n) = size(&i.path) else {
            return Vec::new();
        };
        let (s, e) = match i.range {
            None => (0, n),
            Some((o, l)) => (o, o + l),
        };
        (s..e.min(n)).collect()
    }

    proptest::proptest! {
        /// The merge names every byte of every list once (the union,
        /// nothing twice) and keeps unknown files' items; one list merges
        /// to itself, less repeats, in its order.
        #[test]
        fn merge_is_the_union_once_in_each_lists_order(lists in lists()) {
            let merged = merge_launch_lists(&lists, size);
            let mut seen = std::collections::BTreeSet::new();
            for i in &merged {
                if size(&i.path).is_none() {
                    continue;
                }
                for b in bytes(i) {
                    proptest::prop_assert!(seen.insert((i.path.clone(), b)), "byte twice: {i:?}");
                }
            }
            let mut want = std::collections::BTreeSet::new();
            for l in &lists {
                for i in l {
                    for b in bytes(i) {
                        want.insert((i.path.clone(), b));
                    }
                }
            }
            // Ranges past a file's end are kept (the builder reports them);
            // within the file, the union exactly.
            proptest::prop_assert_eq!(&seen, &want);
            let unknown = |l: &[LaunchItem]| l.iter().filter(|i| size(&i.path).is_none()).count();
            proptest::prop_assert_eq!(
                unknown(&merged),
                lists.iter().map(|l| unknown(l)).sum::<usize>()
            );
            // One list: itself, less repeats, in order.
            if lists.len() == 1 {
                let mut own = Vec::new();
                let mut have = std::collections::BTreeSet::new();
                for i in &lists[0] {
                    for b in bytes(i) {
                        if have.insert((i.path.clone(), b)) {
                            own.push((i.path.clone(), b));
                        }
                    }
                }
                let got: Vec<_> = merged
                    .iter()
                    .filter(|i| size(&i.path).is_some())
                    .flat_map(|i| bytes(i).into_iter().map(move |b| (i.path.clone(), b)))
                    .collect();
                proptest::prop_assert_eq!(got, own);
            }
        }
    }
}
