//! The file transport end to end.

use sft::io::RangeSource;
use sft::io::drive;
use sft::io::file::FileSource;
use sft::stream::TransportErrorKind;
#[cfg(feature = "write")]
use sft::stream::{SessionConfig, StreamSession};

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let e = FileSource::open("/nonexistent/x.sft").unwrap_err();
    assert!(e.to_string().contains("/nonexistent/x.sft"), "{e}");
}

#[test]
fn reads_past_the_end_are_not_satisfiable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, b"0123456789").unwrap();
    let src = FileSource::open(&path).unwrap();
    assert_eq!(src.len().unwrap(), 10);
    let mut buf = [0u8; 4];
    src.read_exact_at(6, &mut buf).unwrap();
    assert_eq!(&buf, b"6789");
    let e = src.read_exact_at(8, &mut buf).unwrap_err();
    assert_eq!(e.kind(), TransportErrorKind::RangeNotSatisfiable);
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
}

#[cfg(feature = "write")]
#[test]
fn file_and_mmap_sources_stream_a_byte_identical_package() {
    let pkg = super::common::package();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.sft");
    std::fs::write(&path, &pkg).unwrap();
    let src = FileSource::open(&path).unwrap();
    let mut s = StreamSession::new(SessionConfig::default().max_request_bytes(16 * 1024));
    let mut copy = Vec::new();
    let r = drive::drive(&mut s, &src, &mut copy).unwrap();
    assert!(r.complete && r.launch_ready);
    assert_eq!(copy, pkg);
    // Each byte once, but for the partial block at the end of the first
    // (64 KiB) read, which is fetched again whole.
    assert!(r.bytes >= pkg.len() as u64 && r.bytes < pkg.len() as u64 + 4096);

    #[cfg(feature = "mmap")]
    {
        // SAFETY: the file is a private temporary nobody modifies.
        let mapped = unsafe { sft::MappedPackage::open(&path) }.unwrap();
        let src = sft::io::file::MappedSource::new(mapped, path.display().to_string());
        assert!(src.as_bytes().is_some());
        let mut s = StreamSession::new(SessionConfig::default());
        let mut copy = Vec::new();
        drive::drive(&mut s, &src, &mut copy).unwrap();
        assert_eq!(copy, pkg);
    }
}

#[cfg(feature = "write")]
#[test]
fn a_truncated_file_fails_with_a_format_error() {
    let pkg = super::common::package();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sft");
    std::fs::write(&path, &pkg[..pkg.len() - 100]).unwrap();
    let src = FileSource::open(&path).unwrap();
    let mut s = StreamSession::new(SessionConfig::default());
    let e = drive::drive(&mut s, &src, &mut sft::stream::NullSink).unwrap_err();
    assert_eq!(e.kind(), sft::ErrorKind::Format, "{e}");
    assert!(s.is_failed());
}
