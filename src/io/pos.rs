//! Positional reads and writes on a [`File`]: at an offset, leaving the
//! file's cursor alone, so one handle serves many threads. One
//! implementation per platform (`pread`/`pwrite` on Unix, `seek_read`/
//! `seek_write` on Windows, seek-then-read elsewhere), retried on
//! `Interrupted`, for every module that needs one.

use std::fs::File;
use std::io;

/// Read into `buf` from `offset`; returns how many bytes were read (0 at
/// or past the end of the file).
///
/// # Errors
/// As the operating system reports it (never `Interrupted`).
pub fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        match read_at_once(file, buf, offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

/// Fill all of `buf` from `offset`.
///
/// # Errors
/// `UnexpectedEof` if the file ends first; otherwise as the operating
/// system reports it.
pub fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match read_at(file, buf, offset)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// Write all of `buf` at `offset`.
///
/// # Errors
/// `WriteZero` if the file takes nothing; otherwise as the operating
/// system reports it (a full disk, say: some of `buf` may be written).
pub fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match write_at_once(file, buf, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = &buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(unix)]
fn read_at_once(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(unix)]
fn write_at_once(file: &File, buf: &[u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::write_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at_once(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

#[cfg(windows)]
fn write_at_once(file: &File, buf: &[u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_write(file, buf, offset)
}

#[cfg(not(any(unix, windows)))]
fn read_at_once(mut file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.read(buf)
}

#[cfg(not(any(unix, windows)))]
fn write_at_once(mut file: &File, buf: &[u8], offset: u64) -> io::Result<usize> {
    use std::io::{Seek, SeekFrom, Write};
    file.seek(SeekFrom::Start(offset))?;
    file.write(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_at_offsets_without_moving_the_cursor() {
        let f = tempfile::tempfile().unwrap();
        write_all_at(&f, b"world", 6).unwrap();
        write_all_at(&f, b"hello ", 0).unwrap();
        let mut buf = [0u8; 11];
        read_exact_at(&f, &mut buf, 0).unwrap();
        assert_eq!(&buf, b"hello world");
        let mut two = [0u8; 2];
        assert_eq!(read_at(&f, &mut two, 10).unwrap(), 1);
        assert_eq!(read_at(&f, &mut two, 11).unwrap(), 0);
        let e = read_exact_at(&f, &mut two, 10).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        use std::io::Seek;
        assert_eq!((&f).stream_position().unwrap(), 0);
    }
}
