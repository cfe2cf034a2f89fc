//! I/O adapters: the only layer that touches files and the network.
//!
//! Each adapter is one file behind one cargo feature.

#[cfg(feature = "mmap")]
pub mod mmap;

#[cfg(feature = "file")]
pub mod file;

#[cfg(feature = "std")]
pub mod shaped;

#[cfg(feature = "std")]
pub mod pipelined;

#[cfg(feature = "http-parse")]
pub mod http;

#[cfg(any(feature = "rtsp", feature = "rtsp-server"))]
pub mod rtsp;

#[cfg(any(feature = "http-server", feature = "rtsp", feature = "rtsp-server"))]
pub(crate) mod net;

#[cfg(any(feature = "http", feature = "rtsp"))]
pub(crate) mod tls;

#[cfg(feature = "smb")]
pub mod smb;

/// `s` safe to print: a URL (`scheme://…`) loses its user information
/// (`smb://user:pw@host/…` → `smb://***@host/…`) and its query string
/// (`https://h/a.sft?X-Amz-Signature=…` → `https://h/a.sft?…`; a presigned
/// URL's whole query is a credential, whatever its parameters are called).
/// Anything else (a path, a UNC name) is returned as it is.
///
/// Every message, log line, progress line and `--json` output that shows a
/// source goes through this one function.
///
/// ```
/// use sft::transport::redact_url;
/// assert_eq!(redact_url("https://u:pw@h:8080/a.sft?sig=x#f"), "https://***@h:8080/a.sft?…");
/// assert_eq!(redact_url("smb://DOM;u:pw@fs/share/a.sft"), "smb://***@fs/share/a.sft");
/// assert_eq!(redact_url("http://h/pkgs/a@2.sft"), "http://h/pkgs/a@2.sft");
/// assert_eq!(redact_url("/srv/what?.sft"), "/srv/what?.sft");
/// // Malformed passwords with `#`, `?`, `/` or `@` in them are masked too.
/// assert_eq!(redact_url("https://u:pa#ss@h/a.sft"), "https://***@h/a.sft");
/// assert_eq!(redact_url("https://u:pa?ss@h/a.sft"), "https://***@h/a.sft");
/// assert_eq!(redact_url("https://u:pa/ss@h/a.sft"), "https://***@h/a.sft");
/// assert_eq!(redact_url("rtsp://u:p@ss@h/a.sft"), "rtsp://***@h/a.sft");
/// assert_eq!(redact_url("http://h:8080/pkgs/a@2.sft"), "http://h:8080/pkgs/a@2.sft");
/// assert_eq!(redact_url("http://[::1]:8080/a@2.sft"), "http://[::1]:8080/a@2.sft");
/// ```
pub fn redact_url(s: &str) -> String {
    let Some((scheme, rest)) = s.split_once("://") else {
        return s.to_owned();
    };
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return s.to_owned();
    }
    // User information ends at the last `@` before the first `/`. A
    // malformed password may hold `?`, `#` (so they do not end the
    // authority here) or even `/`: when the part before the first `/`
    // looks like `user:secret` (what follows its last `:` is no port
    // number), the user information runs to the next `@`. When unsure,
    // this masks more, never less.
    let slash = rest.find('/').unwrap_or(rest.len());
    let before_slash = &rest[..slash];
    let at = before_slash.rfind('@').or_else(|| {
        let (_, after_colon) = before_slash.rsplit_once(':')?;
        if after_colon.is_empty() || after_colon.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let first = slash + rest[slash..].find('@')?;
        let seg_end = rest[first..].find('/').map_or(rest.len(), |i| first + i);
        rest[..seg_end].rfind('@')
    });
    let (masked, rest) = match at {
        Some(at) => ("***@", &rest[at + 1..]),
        None => ("", rest),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (host, tail) = rest.split_at(end);
    format!("{scheme}://{masked}{host}{}", redact_target(tail))
}

/// A URL's path and query (`/a.sft?query`) with the query elided
/// (`/a.sft?…`).
fn redact_target(target: &str) -> std::borrow::Cow<'_, str> {
    match target.find('?') {
        Some(q) => format!("{}?…", &target[..q]).into(),
        None => target.into(),
    }
}

/// Open `path` for reading as a package file: it must be a regular file
/// (or a link to one). A directory, FIFO, socket or device is refused at
/// once with an error that says what it is (`` `x` is a directory ``),
/// instead of failing later with a confusing read or map error (a
/// directory reads as `EISDIR`, maps as "No such device") that a fetch
/// would retry.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let e = sft::transport::open_regular(dir.path()).unwrap_err();
/// assert!(e.to_string().ends_with("is a directory, not a package file"), "{e}");
/// ```
///
/// # Errors
/// [`Error::Io`](crate::Error::Io) naming the path when the open fails;
/// [`Error::InvalidInput`](crate::Error::InvalidInput) naming it when it
/// is not a regular file.
#[cfg(feature = "std")]
pub fn open_regular(path: &std::path::Path) -> Result<std::fs::File, crate::Error> {
    // A "path" may be a URL given where a file was expected.
    let shown = redact_url(&path.display().to_string());
    let file =
        std::fs::File::open(path).map_err(|e| crate::Error::io(format!("opening `{shown}`"), e))?;
    let meta = file
        .metadata()
        .map_err(|e| crate::Error::io(format!("reading `{shown}`"), e))?;
    if meta.is_file() {
        return Ok(file);
    }
    let what = if meta.is_dir() {
        "a directory"
    } else {
        special_kind(&meta)
    };
    Err(crate::Error::InvalidInput(format!(
        "`{shown}` is {what}, not a package file"
    )))
}

/// What a non-regular, non-directory file is, for [`open_regular`].
#[cfg(feature = "std")]
fn special_kind(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
    }
    let _ = meta;
    "not a regular file"
}
