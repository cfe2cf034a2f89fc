//! Replays every committed fuzz corpus file (`fuzz/corpus/<target>/*`)
//! through the same `sft::fuzzing` entry points the fuzz targets call, on
//! stable and without cargo-fuzz. Also writes the seed corpora when the
//! fixtures are blessed.

use std::path::Path;

use crate::common::root;

/// Run the entry point of fuzz target `target` on `data`; `false` if this
/// build lacks the feature the target needs.
pub fn run_target(target: &str, data: &[u8]) -> bool {
    match target {
        "parse" => sft::fuzzing::parse_and_walk(data),
        "prologue" => sft::fuzzing::prologue(data),
        "block" => sft::fuzzing::block(data),
        #[cfg(feature = "write")]
        "launch_list" => sft::fuzzing::launch_list(data),
        #[cfg(feature = "write")]
        "round_trip" => sft::fuzzing::round_trip(data),
        #[cfg(not(feature = "write"))]
        "launch_list" | "round_trip" => return false,
        other => panic!("unknown fuzz target `{other}`"),
    }
    true
}

pub const TARGETS: [&str; 5] = ["parse", "prologue", "block", "launch_list", "round_trip"];

/// Files in `dir`, sorted, or none if it does not exist.
pub fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => vec![],
    };
    v.sort();
    v
}

#[test]
fn corpora_replay_cleanly() {
    let mut n = 0;
    for t in TARGETS {
        let dir = root().join("fuzz/corpus").join(t);
        let seeds = files(&dir);
        assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
        for f in seeds {
            let data = std::fs::read(&f).unwrap();
            let r = std::panic::catch_unwind(|| run_target(t, &data));
            assert!(r.is_ok(), "{} panicked", f.display());
            n += 1;
        }
    }
    assert!(n >= 15);
}

/// Seeds from the valid fixtures (the `fixture` generator calls this).
#[cfg(feature = "write")]
pub fn write_seeds(valid: &std::collections::BTreeMap<&str, Vec<u8>>) {
    use std::fs;
    let dir = root().join("fuzz/corpus");
    let put = |t: &str, name: &str, data: &[u8]| {
        fs::create_dir_all(dir.join(t)).unwrap();
        fs::write(dir.join(t).join(name), data).unwrap();
    };
    for (file, bytes) in valid {
        let stem = file.trim_end_matches(".sft");
        put("parse", &format!("valid-{stem}"), bytes);
        let pkg = sft::Package::parse(bytes).unwrap();
        let pro = pkg.header().prologue_len as usize;
        put("prologue", &format!("valid-{stem}"), &bytes[..pro]);
        // Block seeds: codec, raw_len, crc mode 0 (computed), crc, stored.
        for id in pkg.index().ids().take(3) {
            let b = pkg.block(id).unwrap();
            let mut seed = vec![b.info().codec.id()];
            seed.extend_from_slice(&b.info().raw_len.to_le_bytes());
            seed.extend_from_slice(&[0, 0, 0, 0, 0]);
            seed.extend_from_slice(b.stored());
            put("block", &format!("{stem}-block{}", id.0), &seed);
        }
    }
    let mut bomb = vec![1];
    bomb.extend_from_slice(&4096u32.to_le_bytes());
    bomb.extend_from_slice(&[0; 5]);
    bomb.extend_from_slice(&crate::common::recipes::bomb());
    put("block", "bomb", &bomb);
    for (i, t) in [
        "bin/app.exe\nlib/x.dll:0:65536\n",
        "# comment\n\n  dir\\file.txt : 5 : 10 \n",
        "a:1:2:3\n../x\n",
        "/#odd/ name/:0:0\n",
    ]
    .iter()
    .enumerate()
    {
        put("launch_list", &format!("seed{i}"), t.as_bytes());
    }
    for (i, s) in [
        &b""[..],
        &[0x00, 3, 0, 1, 2, 0, 0, 4, 1, 1, 0, 1, 2][..],
        &[
            0x41, 5, 1, 3, 2, 3, 0xff, 0xff, 2, 9, 1, 4, 2, 5, 6, 7, 3, 0, 1, 1, 0, 9, 0,
        ][..],
        &[
            0x2a, 8, 0, 1, 3, 0x10, 0x40, 3, 1, 2, 2, 5, 3, 0x20, 2, 0, 7, 1, 1, 4, 1, 0,
        ][..],
    ]
    .iter()
    .enumerate()
    {
        put("round_trip", &format!("seed{i}"), s);
    }
}
