//! A package over 4 GiB: sparse input, stored blocks, sparse output,
//! memory-mapped reading. Exercises every 64-bit offset path.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::time::Instant;

use sft::write::{Compression, PackageBuilder};
use sft::{MappedPackage, WriteOptions};

const FOUR_GIB: u64 = 1 << 32;

#[test]
fn package_over_4_gib_round_trips() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("huge.bin");
    let size = FOUR_GIB + 3 * 65536 + 1234;
    let marks: [(u64, &[u8]); 5] = [
        (0, b"start of the file"),
        (70_000, b"second block"),
        (FOUR_GIB - 5, b"across 4 GiB"),
        (FOUR_GIB + 65536 * 2 + 7, b"past 4 GiB"),
        (size - 9, b"last byte"),
    ];
    {
        let mut f = File::create(&input).unwrap();
        f.set_len(size).unwrap();
        for (at, bytes) in marks {
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(bytes).unwrap();
        }
    }
    let out = dir.path().join("huge.sft");
    let mut b = PackageBuilder::new(WriteOptions::default().compression(Compression::None));
    b.add_bytes("small.txt", b"small".to_vec()).unwrap();
    b.add_file("dir/huge.bin", &input).unwrap();
    b.launch_list(sft::write::parse_launch_list("dir/huge.bin:4294967000:1000\n").unwrap());
    let report = b.write_to_path(&out).unwrap();
    let t_write = t0.elapsed();
    assert_eq!(report.package_size, size + 5);
    let on_disk = std::fs::metadata(&out).unwrap().len();
    assert!(on_disk > FOUR_GIB && on_disk == report.stored_size);
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let used = std::fs::metadata(&out).unwrap().blocks() * 512;
        assert!(
            used < 64 << 20,
            "output is not sparse: {used} bytes allocated"
        );
    }

    // SAFETY: the file is ours, in a private temporary directory, and
    // nothing modifies it while it is mapped.
    let mapped = unsafe { MappedPackage::open(&out) }.unwrap();
    let pkg = mapped.package();
    assert_eq!(pkg.as_bytes().len() as u64, on_disk);
    assert_eq!(pkg.metadata().package_size(), size + 5);
    assert_eq!(pkg.metadata().launch_size(), 1000);
    let e = pkg.entry("dir/huge.bin").unwrap();
    assert_eq!(e.size(), size);
    for (at, bytes) in marks {
        let mut buf = vec![0u8; bytes.len() + 2];
        let n = pkg.read_at(&e, at, &mut buf).unwrap();
        assert_eq!(n as u64, (size - at).min(buf.len() as u64));
        assert_eq!(&buf[..bytes.len()], bytes, "at {at}");
    }
    let mut zeros = [1u8; 16];
    pkg.read_at(&e, FOUR_GIB + 100_000, &mut zeros).unwrap();
    assert_eq!(zeros, [0; 16]);
    let small = pkg.entry("small.txt").unwrap();
    assert_eq!(pkg.read_file(&small).unwrap(), b"small");
    let t_read = t0.elapsed();
    mapped.advise_sequential();
    let v = pkg.verify().unwrap();
    assert_eq!(v.logical_bytes, size + 5);
    assert!(v.stored_bytes > FOUR_GIB);
    eprintln!(
        "4 GiB test: write {:?}, open+reads {:?}, verify {:?}",
        t_write,
        t_read - t_write,
        t0.elapsed() - t_read
    );
}
