//! Write → read equality: proptest over random trees, every block size
//! and codec, launch lists and full load. The checks themselves live in
//! `sft::fuzzing::check_model` (shared with the `round_trip` fuzz target):
//! contents through read_file, chunks, read_at and a seeking reader, the
//! tree, metadata, launch_size and the FB1 mapping of the launch ranges,
//! determinism, and `verify`.
//!
//! `PROPTEST_CASES` sets the number of cases (default 24 per property).

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use sft::fuzzing::{Model, check_model};
use sft::write::{BlockSize, Compression, LaunchItem, PackageBuilder};
use sft::{Package, WriteOptions};

fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/round_trip.txt",
        ))),
        ..ProptestConfig::with_cases(n)
    }
}

const COMPONENTS: [&str; 12] = [
    "a",
    "b",
    "bin",
    "ü",
    "ñame.txt",
    "日本語",
    "x.dll",
    "sp ace",
    "Z",
    "ab",
    "é.ini",
    "🦀",
];

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(&COMPONENTS[..]), 1..4).prop_map(|c| c.join("/"))
}

fn contents() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => Just(vec![]),
        4 => prop::collection::vec(any::<u8>(), 1..300),
        // Many blocks at 4 KiB: compressible, incompressible, zeros.
        3 => (1usize..70_000, any::<u8>(), 0u8..3).prop_map(|(n, s, k)| match k {
            0 => crate::common::text(n),
            1 => crate::common::noise(u32::from(s) + 1, n),
            _ => vec![0; n],
        }),
        1 => (100_000usize..260_000, any::<u8>()).prop_map(|(n, s)| {
            let mut v = crate::common::text(n);
            v[n / 2] = s;
            v
        }),
    ]
}

fn block_size() -> impl Strategy<Value = BlockSize> {
    prop::sample::select(vec![
        BlockSize::K4,
        BlockSize::K16,
        BlockSize::K32,
        BlockSize::K64,
    ])
}

fn compression() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::None),
        (0u32..=9).prop_map(Compression::Zlib)
    ]
}

/// A model with a launch list drawn over its files: whole files and
/// partial ranges, overlapping and repeated.
fn model() -> impl Strategy<Value = Model> {
    (
        prop::collection::vec((path(), contents()), 0..8),
        prop::collection::vec(path(), 0..3),
        block_size(),
        compression(),
        prop::bool::weighted(0.15),
        prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                any::<u64>(),
                any::<u64>(),
                0u8..3,
            ),
            0..7,
        ),
        any::<u32>(),
    )
        .prop_map(
            |(files, dirs, block_size, compression, full_load, picks, version)| {
                let mut launch = Vec::new();
                if !files.is_empty() {
                    for (ix, a, b, kind) in picks {
                        let (p, c) = &files[ix.index(files.len())];
                        let size = c.len() as u64;
                        let range = match kind {
                            0 => None,
                            _ => {
                                let off = a % (size + 1);
                                Some((off, b % (size - off + 1)))
                            }
                        };
                        launch.push(LaunchItem {
                            path: p.clone(),
                            range,
                        });
                    }
                }
                Model {
                    files,
                    dirs,
                    block_size,
                    compression,
                    full_load,
                    launch,
                    name: "prop ünïcode".into(),
                    version,
                }
            },
        )
}

proptest! {
    #![proptest_config(cases(24))]

    #[test]
    fn random_packages_round_trip(m in model(), seed in any::<u64>()) {
        check_model(&m, seed);
    }

    #[test]
    fn fuzz_model_bytes_round_trip(data in prop::collection::vec(any::<u8>(), 0..64)) {
        sft::fuzzing::round_trip(&data);
    }

    #[test]
    fn metadata_round_trips(
        name in "[a-zA-Z0-9 ü日_.-]{1,40}",
        root in "[A-Z0-9_][A-Z0-9_.]{0,15}",
        comment in "\\PC{0,60}",
        version in any::<u32>(),
        secs in -4_000_000_000i64..4_000_000_000,
        nanos in 0u32..1_000_000_000,
        guid in any::<[u8; 16]>(),
    ) {
        // A root ending in `.` or naming a device (`CON`, `COM1`) breaks
        // the path rules (docs/FORMAT.md §6.2) and is refused.
        prop_assume!(sft::format::is_valid_path(&root));
        let opts = WriteOptions::default()
            .name(name.clone())
            .root(root.clone())
            .comment(comment.clone())
            .version(version)
            .created(secs, nanos)
            .package_guid(sft::Guid(guid));
        let mut b = PackageBuilder::new(opts);
        b.add_bytes("f", vec![1, 2, 3]).unwrap();
        let bytes = b.write_to_vec().unwrap();
        let pkg = Package::parse(&bytes).unwrap();
        let m = pkg.metadata();
        prop_assert_eq!(m.name(), name);
        prop_assert_eq!(m.root(), root);
        prop_assert_eq!(m.comment(), comment);
        prop_assert_eq!(m.version(), version);
        prop_assert_eq!(m.created(), (secs, nanos));
        prop_assert_eq!(m.package_guid().0, guid);
        pkg.verify().unwrap();
    }
}

/// Every block size with every codec setting, on one fixed tree with a
/// launch list of whole files, partial, overlapping and repeated ranges.
#[test]
fn every_block_size_and_codec() {
    let files = vec![
        ("big/one.bin".to_owned(), crate::common::text(150_000)),
        ("big/two.bin".to_owned(), crate::common::noise(5, 70_000)),
        ("empty".to_owned(), vec![]),
        ("日本/ü.txt".to_owned(), b"unicode".to_vec()),
        ("zeros".to_owned(), vec![0; 65_537]),
    ];
    let item = |p: &str, r| LaunchItem {
        path: p.into(),
        range: r,
    };
    let launch = vec![
        item("big/two.bin", Some((1000, 20_000))),
        item("zeros", None),
        item("big/two.bin", Some((10_000, 30_000))), // overlaps
        item("big/two.bin", Some((1000, 20_000))),   // repeated
        item("big/one.bin", Some((149_999, 1))),
        item("日本/ü.txt", None),
        item("empty", None),
    ];
    let mut n = 0;
    for bs in [
        BlockSize::K4,
        BlockSize::K16,
        BlockSize::K32,
        BlockSize::K64,
    ] {
        for c in [
            Compression::None,
            Compression::Zlib(0),
            Compression::Zlib(1),
            Compression::Zlib(6),
            Compression::Zlib(9),
        ] {
            for full_load in [false, true] {
                let m = Model {
                    files: files.clone(),
                    dirs: vec!["empty dir/nested".into()],
                    block_size: bs,
                    compression: c,
                    full_load,
                    launch: launch.clone(),
                    name: "matrix".into(),
                    version: 2,
                };
                check_model(&m, n);
                n += 1;
            }
        }
    }
}

/// The launch list decides FB1 exactly: launch_size is the union of the
/// listed ranges (hand-computed here), whatever their order.
#[test]
fn launch_size_is_the_union_of_listed_ranges() {
    let mut b = PackageBuilder::new(WriteOptions::default().block_size(BlockSize::K4));
    b.add_bytes("a", vec![1; 10_000]).unwrap();
    b.add_bytes("b", vec![2; 10_000]).unwrap();
    b.launch_list(
        sft::write::parse_launch_list("b:5000:100\na:0:10\nb:5050:100\na\nb:0:1\n").unwrap(),
    );
    let bytes = b.write_to_vec().unwrap();
    let pkg = Package::parse(&bytes).unwrap();
    // b [5000,5150) = 150, a whole = 10,000, b [0,1) = 1.
    assert_eq!(pkg.metadata().launch_size(), 10_151);
    assert_eq!(pkg.index().fb1_len(), 3);
    // Launch order: b's first range comes first in the logical stream.
    let e = pkg.entry("b").unwrap();
    let first = e.extents().find(|x| x.file_offset == 5000).unwrap();
    assert_eq!(first.logical_offset, 0);
    pkg.verify().unwrap();
}

#[test]
fn bad_launch_lists_are_refused() {
    let mut b = PackageBuilder::new(WriteOptions::default());
    b.add_bytes("d/a", vec![1; 100]).unwrap();
    for list in [
        "nope\n",
        "d\n",
        "d/a:50:51\n",
        "d/a:18446744073709551615:2\n",
    ] {
        b.launch_list(sft::write::parse_launch_list(list).unwrap());
        let err = b.write_to_vec().unwrap_err();
        assert_eq!(err.kind(), sft::ErrorKind::InvalidInput, "{list}");
    }
}
