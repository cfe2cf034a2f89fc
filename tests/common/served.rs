//! Content for the server tests: a small two-file package and a temporary
//! content root holding it.

use std::path::PathBuf;

use sft::write::{PackageBuilder, parse_launch_list};
use sft::{Guid, WriteOptions};

use super::noise64;

/// Package `name`, version `version` of `guid`, with `len` data bytes:
/// `bin/app.exe` (a quarter, the launch list) and `rest` (the remainder),
/// filled by [`noise64`] with `seeds` plus the version.
pub fn package(
    name: &str,
    guid: Guid,
    version: u32,
    rest: &str,
    seeds: (u64, u64),
    len: usize,
) -> Vec<u8> {
    let mut b = PackageBuilder::new(
        WriteOptions::default()
            .name(name)
            .version(version)
            .package_guid(guid),
    );
    b.add_bytes(
        "bin/app.exe",
        noise64(len / 4, seeds.0 + u64::from(version)),
    )
    .unwrap();
    b.add_bytes(rest, noise64(len - len / 4, seeds.1 + u64::from(version)))
        .unwrap();
    b.launch_list(parse_launch_list("bin/app.exe\n").unwrap());
    b.write_to_vec().unwrap()
}

/// A temporary content root (`DIR/content`) with a package in it.
pub struct Fixture {
    /// Removed on drop.
    pub dir: tempfile::TempDir,
    /// The content root.
    pub root: PathBuf,
    /// The package's bytes.
    pub pkg: Vec<u8>,
}

/// `pkg` stored as `rel` under a new content root.
pub fn fixture(pkg: Vec<u8>, rel: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("content");
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &pkg).unwrap();
    Fixture { dir, root, pkg }
}
