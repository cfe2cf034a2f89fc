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
        "scheduler_ops" => sft::fuzzing::scheduler_ops(data),
        "session_bytes" => sft::fuzzing::session_bytes(data),
        #[cfg(feature = "write")]
        "stream_chunks" => sft::fuzzing::stream_chunks(data),
        #[cfg(feature = "write")]
        "launch_list" => sft::fuzzing::launch_list(data),
        #[cfg(feature = "write")]
        "round_trip" => sft::fuzzing::round_trip(data),
        #[cfg(not(feature = "write"))]
        "launch_list" | "round_trip" | "stream_chunks" => return false,
        #[cfg(feature = "publish")]
        "osd" => sft::fuzzing::osd(data),
        #[cfg(feature = "publish")]
        "refresh" => sft::fuzzing::refresh(data),
        #[cfg(feature = "bundle")]
        "bundle" => sft::fuzzing::bundle(data),
        #[cfg(feature = "client")]
        "client_records" => sft::fuzzing::client_records(data),
        #[cfg(feature = "msi")]
        "msi" => sft::fuzzing::msi(data),
        #[cfg(not(feature = "msi"))]
        "msi" => return false,
        #[cfg(feature = "http")]
        "http_head" => sft::fuzzing::http_head(data),
        #[cfg(feature = "http-parse")]
        "http_range" => sft::fuzzing::http_range(data),
        #[cfg(feature = "http-parse")]
        "http_multipart" => sft::fuzzing::http_multipart(data),
        #[cfg(any(feature = "rtsp", feature = "rtsp-server"))]
        "rtsp_frame" => sft::fuzzing::rtsp_frame(data),
        #[cfg(not(feature = "http-parse"))]
        "http_range" | "http_multipart" => return false,
        #[cfg(not(any(feature = "rtsp", feature = "rtsp-server")))]
        "rtsp_frame" => return false,
        #[cfg(not(feature = "publish"))]
        "osd" | "refresh" => return false,
        #[cfg(not(feature = "bundle"))]
        "bundle" => return false,
        #[cfg(not(feature = "client"))]
        "client_records" => return false,
        #[cfg(not(feature = "http"))]
        "http_head" => return false,
        #[cfg(feature = "file")]
        "dsft" => sft::fuzzing::dsft(data),
        #[cfg(not(feature = "file"))]
        "dsft" => return false,
        #[cfg(feature = "sign")]
        "sign_text" => sft::fuzzing::sign_text(data),
        #[cfg(not(feature = "sign"))]
        "sign_text" => return false,
        other => panic!("unknown fuzz target `{other}`"),
    }
    true
}

pub const TARGETS: [&str; 19] = [
    "parse",
    "prologue",
    "block",
    "launch_list",
    "round_trip",
    "scheduler_ops",
    "stream_chunks",
    "session_bytes",
    "osd",
    "refresh",
    "bundle",
    "client_records",
    "http_head",
    "http_range",
    "http_multipart",
    "rtsp_frame",
    "dsft",
    "sign_text",
    "msi",
];

/// Every fuzz target (`fuzz/fuzz_targets/*.rs`) is in [`TARGETS`], has a
/// committed corpus, and is a one-line call of an `sft::fuzzing` function
/// (the one [`run_target`] calls for it), so its corpus replays here and its checks are the ones the
/// tests run: a new target cannot be forgotten.
#[test]
fn every_fuzz_target_is_replayed() {
    let dir = root().join("fuzz/fuzz_targets");
    let targets = files(&dir);
    assert!(targets.len() >= 15, "{} fuzz targets", targets.len());
    for f in targets {
        let name = f.file_stem().unwrap().to_str().unwrap();
        assert!(
            TARGETS.contains(&name),
            "fuzz target `{name}` is not replayed"
        );
        let text = std::fs::read_to_string(&f).unwrap();
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect();
        assert!(
            code.matches("sft::fuzzing::").count() == 1 && !code.contains("assert"),
            "fuzz target `{name}` keeps checks outside sft::fuzzing"
        );
        assert!(
            !files(&root().join("fuzz/corpus").join(name)).is_empty(),
            "fuzz target `{name}` has no corpus"
        );
    }
}

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

/// Reproducers of fuzz findings not fixed yet (`fixtures/regressions/open/`,
/// see its README): each must still panic. When one stops panicking its bug
/// is fixed: move the file up into `fixtures/regressions/`.
#[test]
fn open_bugs_still_reproduce() {
    use crate::common::fixtures;
    for f in files(&fixtures().join("regressions/open")) {
        let name = f.file_name().unwrap().to_str().unwrap();
        let rest = name.strip_prefix("crash-").unwrap();
        let t = TARGETS
            .iter()
            .find(|t| rest.starts_with(&format!("{t}-")))
            .unwrap_or_else(|| panic!("{name}: unknown target"));
        let data = std::fs::read(&f).unwrap();
        let r = std::panic::catch_unwind(|| run_target(t, &data));
        if r.as_ref().is_ok_and(|ran| !ran) {
            continue; // this build lacks the target's feature
        }
        assert!(
            r.is_err(),
            "{name} no longer panics: its bug is fixed; move it to fixtures/regressions/"
        );
    }
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
    // Hostile shapes with every CRC valid: aliased and overlapping block
    // records, shared extent records, one file's extents overlapping.
    for (name, bytes) in crate::corrupt::hostile::seeds() {
        put("parse", name, &bytes);
        let pro = sft::format::Header::parse(&bytes).unwrap().prologue_len as usize;
        put("prologue", name, &bytes[..pro]);
        put("session_bytes", name, &bytes);
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
    write_stream_seeds();
}

/// Seeds of the streaming targets, built in-process from fixed recipes
/// (no fixture needed): `scheduler_ops` op scripts, `stream_chunks`
/// package recipes plus delivery scripts, `session_bytes` small packages
/// whole and damaged.
#[cfg(feature = "write")]
pub fn stream_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    // scheduler_ops: n (u16), fb1 (u16), limit selectors, attempts, base
    // offset (u16), uniform size byte, then ops.
    let sched: [&[u8]; 4] = [
        // 8 uniform 1000-byte blocks, 3 in FB1; queue all, demand 6, poll,
        // finish, close.
        &[
            8, 0, 3, 0, 0, 0, 2, 3, 0, 3, 0, 0x07, 0, 1, 1, 6, 0, 2, 2, 2, 4, 0, 0, 0, 0, 7, 0, 0,
        ],
        // 40 blocks of mixed sizes, small limits, failures and cancels.
        &[
            40, 0, 10, 0, 3, 2, 2, 3, 2, 100, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
            0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
            13, 14, 15, 16, 17, 0, 1, 2, 2, 2, 5, 0, 0, 1, 8, 1, 2, 1, 5, 0, 2, 0, 4, 0, 1, 0, 2,
            9, 3, 0, 10, 7, 0, 11, 0, 0, 12, 1, 0, 9, 0, 13, 2, 0, 2, 2, 6, 1, 0, 0, 7, 0, 2,
        ],
        // 512 uniform 4 KiB blocks, all FB1, fb1 cap 64 KiB, one request.
        &[
            0, 2, 0, 2, 0, 5, 1, 4, 3, 0, 0, 0x09, 0, 0, 2, 3, 2, 2, 1, 0xff, 1, 2, 8, 1,
        ],
        // Zero-length blocks and a gap; begin, mark_present, requeue.
        &[
            6, 0, 2, 0, 1, 1, 3, 2, 1, 0, 1, 0, 7, 0x87, 7, 0x80, 1, 0, 10, 1, 0, 9, 2, 0, 13, 3,
            0, 11, 1, 0, 0, 1, 2, 2, 7, 0, 1,
        ],
    ];
    for (i, s) in sched.iter().enumerate() {
        out.push(("scheduler_ops", format!("seed{i}"), s.to_vec()));
    }
    // stream_chunks: package recipe (flags, files, launch list), then
    // config bytes (decode, launch_only, initial_read, max_request,
    // fb1_request, in-flight requests, in-flight bytes, attempts, len),
    // then chunk sizes and delivery ops.
    let chunks: [&[u8]; 5] = [
        // One 10 KiB text file, K4 blocks, zlib; defaults; in order.
        &[0x60, 0, 1, 0x10, 0x27, 3, 1, 0],
        // Two files, launch list on the second, stored; small requests,
        // 1-byte and 7-byte chunks delivered out of order.
        &[
            0x04, 1, 1, 0x00, 0x30, 2, 7, 2, 3, 1, 9, 1, 1, 1, 0x00, 0x10, 0x00, 0x08, 0, 0, 2, 2,
            2, 2, 3, 1, 6, 0, 1, 2, 3, 3, 1, 5, 2, 4, 1, 3, 7, 1, 2, 1, 5, 15, 0, 13, 2, 1, 0,
        ],
        // Three files, full load; a damaged chunk, a failure, a cancel.
        &[
            0x28, 2, 2, 3, 2, 5, 0, 9, 2, 4, 3, 2, 1, 0, 0, 0, 0, 3, 3, 0, 0, 0, 6, 0, 5, 4, 4, 9,
            1, 3, 0, 0x55, 11, 0, 1, 12, 2, 0, 0, 10, 1, 0, 3, 2,
        ],
        // Launch-only with demands by block and by range.
        &[
            0x01, 1, 1, 0x20, 0x4e, 2, 3, 1, 1, 0, 0, 0, 0x00, 0x10, 0, 1, 4, 2, 1, 2, 0, 3, 4, 13,
            0, 5, 0, 14, 0, 0x10, 0, 0, 0x20, 0, 0, 1, 0, 4,
        ],
        // Empty file only: no blocks.
        &[0x00, 0, 3, 0, 0, 1, 0],
    ];
    for (i, s) in chunks.iter().enumerate() {
        out.push(("stream_chunks", format!("seed{i}"), s.to_vec()));
    }
    // session_bytes: small real packages, whole, truncated and damaged.
    let pkg = |files: &[(&str, usize)], bs| {
        let mut b = sft::write::PackageBuilder::new(
            sft::WriteOptions::default()
                .name("seed")
                .block_size(bs)
                .created(1_600_000_000, 0)
                .threads(1),
        );
        for (p, n) in files {
            b.add_bytes(p, (0..*n).map(|i| (i % 251) as u8).collect::<Vec<u8>>())
                .unwrap();
        }
        b.write_to_vec().unwrap()
    };
    let small = pkg(&[("a.txt", 300)], sft::write::BlockSize::K4);
    let multi = pkg(
        &[("bin/app.exe", 9000), ("lib/x.dll", 100)],
        sft::write::BlockSize::K4,
    );
    let mut damaged = multi.clone();
    let at = damaged.len() - 50;
    damaged[at] ^= 0x40;
    out.push(("session_bytes", "small".into(), small.clone()));
    out.push(("session_bytes", "multi".into(), multi.clone()));
    out.push(("session_bytes", "damaged-block".into(), damaged));
    out.push((
        "session_bytes",
        "truncated".into(),
        multi[..multi.len() - 1].to_vec(),
    ));
    out.push(("session_bytes", "header-only".into(), small[..128].to_vec()));
    out
}

/// Write [`stream_seeds`] under `fuzz/corpus/`.
#[cfg(feature = "write")]
pub fn write_stream_seeds() {
    for (t, name, data) in stream_seeds() {
        let dir = root().join("fuzz/corpus").join(t);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    }
}

/// The streaming seeds are committed as generated (package seeds may lag
/// the writer); `SFT_BLESS=1` rewrites them (this test runs without the fixture generator).
#[test]
#[cfg(feature = "write")]
fn stream_seeds_are_committed() {
    if crate::common::bless() {
        write_stream_seeds();
    }
    for (t, name, data) in stream_seeds() {
        let path = root().join("fuzz/corpus").join(t).join(&name);
        let got = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (regenerate with SFT_BLESS=1)", path.display()));
        // Package seeds follow the writer; the scripts must stay as written.
        if t != "session_bytes" {
            assert!(
                got == data,
                "{} is stale (regenerate with SFT_BLESS=1)",
                path.display()
            );
        }
    }
}
