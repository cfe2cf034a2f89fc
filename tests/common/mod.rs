//! Shared helpers: fixture paths, fixture recipes, a whole-package reader
//! that snapshots everything, and a patcher that edits package bytes and
//! recomputes the CRCs that cover them.
#![allow(dead_code)]

use std::path::PathBuf;

use sft::{Error, Package};

pub mod alloc;
#[cfg(feature = "cli")]
pub mod cli;
pub mod patch;
pub mod recipes;
#[cfg(feature = "write")]
pub mod served;

/// `fixtures/` of this crate.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The crate root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// True when `SFT_BLESS=1`: generators rewrite the files they check.
pub fn bless() -> bool {
    std::env::var("SFT_BLESS").is_ok_and(|v| v == "1")
}

/// Read a fixture file, with a message naming it.
pub fn read_fixture(rel: &str) -> Vec<u8> {
    let p = fixtures().join(rel);
    std::fs::read(&p)
        .unwrap_or_else(|e| panic!("reading {}: {e} (regenerate with SFT_BLESS=1)", p.display()))
}

/// One entry as seen by a reader: (path, is_dir, size, mtime, attribute
/// bits, short name, contents).
pub type EntrySnap = (String, bool, u64, (i64, u32), u8, Option<String>, Vec<u8>);

/// Everything observable in a package, for comparing two packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub name: String,
    pub root: String,
    pub comment: String,
    pub version: u32,
    pub guids: ([u8; 16], [u8; 16]),
    pub created: (i64, u32),
    pub launch_size: u64,
    pub package_size: u64,
    pub entries: Vec<EntrySnap>,
}

/// Read everything: metadata, every entry, every file (by `read_file`, and
/// by chunks, which must agree). Any error is returned.
pub fn snapshot(pkg: &Package<'_>) -> Result<Snapshot, Error> {
    let m = pkg.metadata();
    let mut entries = Vec::new();
    for e in pkg.entries() {
        let e = e?;
        let data = if e.is_file() {
            let whole = pkg.read_file(&e)?;
            let mut joined = Vec::new();
            for c in pkg.chunks(&e) {
                joined.extend_from_slice(&c?);
            }
            assert_eq!(
                whole,
                joined,
                "read_file and chunks disagree on {}",
                e.path()
            );
            whole
        } else {
            Vec::new()
        };
        entries.push((
            e.path().to_owned(),
            e.is_dir(),
            e.size(),
            e.modified(),
            e.attributes().bits(),
            e.short_name().map(str::to_owned),
            data,
        ));
    }
    Ok(Snapshot {
        name: m.name().to_owned(),
        root: m.root().to_owned(),
        comment: m.comment().to_owned(),
        version: m.version(),
        guids: (*m.package_guid().as_bytes(), *m.version_guid().as_bytes()),
        created: m.created(),
        launch_size: m.launch_size(),
        package_size: m.package_size(),
        entries,
    })
}

/// The first error a careful reader meets: parse, then verify, then read
/// everything. `Ok` if there is none.
pub fn first_error(bytes: &[u8]) -> Result<Snapshot, Error> {
    let pkg = Package::parse(bytes)?;
    pkg.verify()?;
    snapshot(&pkg)
}

/// A stable, specific description of an error: kind, region and problem
/// variant (with the field it names), used by the expectation tables.
pub fn describe(e: &Error) -> String {
    use sft::error::FormatProblem as F;
    match e {
        Error::Format(f) => {
            let p = match f.problem {
                F::Truncated { .. } => "Truncated".to_owned(),
                F::BadValue { field, .. } => format!("BadValue({field})"),
                F::OutOfBounds { field, .. } => format!("OutOfBounds({field})"),
                F::Inconsistent { field, .. } => format!("Inconsistent({field})"),
                F::MissingSection { kind } => format!("MissingSection({kind})"),
                F::DuplicateSection { kind } => format!("DuplicateSection({kind})"),
                other => format!("{other:?}"),
            };
            format!("Format {:?} {p}", f.region)
        }
        Error::Integrity(i) => {
            // The variant's name (CrcMismatch, SizeMismatch, Inflate, …).
            let p = format!("{:?}", i.problem);
            let name = p
                .split([' ', '{', '('])
                .next()
                .unwrap_or_default()
                .to_owned();
            format!("Integrity {:?} {name}", i.region)
        }
        Error::Unsupported(u) => format!("Unsupported {u:?}"),
        other => format!("{:?}", other.kind()),
    }
}

/// Deterministic pseudo-random bytes (xorshift), for incompressible data.
pub fn noise(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// Deterministic incompressible bytes (xorshift64*), 8 at a time: unlike
/// [`noise`], a prefix of a longer run with the same seed.
pub fn noise64(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Deterministic incompressible bytes (xorshift64), one per step: the
/// generator of the streaming, HTTP and SMB tests.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// True if `tool arg` runs and succeeds; else "SKIPPED" on stderr, or a
/// panic when `SFT_REQUIRE_SERVERS=1` says the tool must be there.
pub fn have(tool: &str, arg: &str) -> bool {
    let ok = std::process::Command::new(tool)
        .arg(arg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("SFT_REQUIRE_SERVERS").as_deref() != Ok("1"),
            "{tool} is required (SFT_REQUIRE_SERVERS=1) but not installed"
        );
        eprintln!("SKIPPED: {tool} not installed");
    }
    ok
}

/// Compressible text of `len` bytes.
pub fn text(len: usize) -> Vec<u8> {
    let words = [
        "alpha ", "beta ", "gamma\n", "delta ", "epsilon ", "zeta\t", "eta ",
    ];
    let mut out = Vec::with_capacity(len + 8);
    let mut i = 0usize;
    while out.len() < len {
        out.extend_from_slice(words[(i * 7 + i / 3) % words.len()].as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}
