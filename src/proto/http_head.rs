//! A small, strict, bounded HTTP/1.1 response-head parser: the status
//! line and the fields a range client looks at (`Content-Length`,
//! `Content-Range`, `Content-Type`, validators, `Transfer-Encoding`,
//! `Connection`). Used by the HTTP client's bulk path
//! (`sft::net::http`); no I/O.

#[allow(unused_imports)]
use crate::prelude::*;

/// The most header fields accepted in a head.
pub const MAX_FIELDS: usize = 128;

/// A response head, split into the fields the client looks at. Field
/// names are matched case-insensitively; a field that may appear once
/// and appears twice with different values is an error.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Head {
    /// The status code (100–599).
    pub status: u16,
    /// `Content-Length`.
    pub content_length: Option<u64>,
    /// `Content-Range`, as sent.
    pub content_range: Option<String>,
    /// `Content-Type`, as sent.
    pub content_type: Option<String>,
    /// `ETag`, as sent (with its quotes, and `W/` if weak).
    pub etag: Option<String>,
    /// `Last-Modified`, as sent.
    pub last_modified: Option<String>,
    /// Any `Transfer-Encoding` at all.
    pub transfer_encoding: bool,
    /// `Connection: close`, or HTTP/1.0 without keep-alive.
    pub close: bool,
}

/// The end of the head (just past `\r\n\r\n`) if `buf` holds it,
/// looking from `from` on.
pub fn find_end(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| from + i + 4)
}

/// Parse a response head (ending in `\r\n\r\n`), strictly: an
/// `HTTP/1.x` status line with a three-digit code, header lines of a
/// token, a colon and a value of visible ASCII, spaces and tabs (no
/// line folding, no bare CR or LF), at most [`MAX_FIELDS`] of them.
pub fn parse_head(head: &[u8]) -> Result<Head, String> {
    if !head.ends_with(b"\r\n\r\n") {
        return Err(String::from("response head without its end"));
    }
    // Every line, the status line included, ends in CRLF.
    let text = &head[..head.len() - 2];
    let mut lines = text[..text.len() - 1].split(|&b| b == b'\n');
    let status_line = lines.next().unwrap_or_default();
    let status_line = status_line
        .strip_suffix(b"\r")
        .ok_or_else(|| String::from("the status line ends in a bare LF"))?;
    let (version, code) = match status_line {
        [
            b'H',
            b'T',
            b'T',
            b'P',
            b'/',
            b'1',
            b'.',
            minor @ (b'0' | b'1'),
            b' ',
            a,
            b,
            c,
            rest @ ..,
        ] if [a, b, c].iter().all(|d| d.is_ascii_digit())
            && (rest.is_empty() || rest[0] == b' ') =>
        {
            (
                *minor,
                u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'),
            )
        }
        _ => {
            return Err(format!(
                "malformed status line `{}`",
                String::from_utf8_lossy(&status_line[..status_line.len().min(80)])
            ));
        }
    };
    // RFC 9110 §15: every valid status code is within 100..=599.
    if !(100..=599).contains(&code) {
        return Err(format!("invalid status code {code:03}"));
    }
    let mut h = Head {
        status: code,
        close: version == b'0',
        ..Head::default()
    };
    let mut fields = 0usize;
    for line in lines {
        let line = line
            .strip_suffix(b"\r")
            .ok_or_else(|| String::from("a header line ends in a bare LF"))?;
        fields += 1;
        if fields > MAX_FIELDS {
            return Err(format!("more than {MAX_FIELDS} header fields"));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| String::from("a header line without a colon"))?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(String::from("a malformed header name"));
        }
        if !value
            .iter()
            .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80)
        {
            return Err(String::from("a header value with control bytes"));
        }
        let value = String::from_utf8_lossy(value.trim_ascii()).into_owned();
        let once = |slot: &mut Option<String>, what: &str| {
            match slot {
                Some(old) if *old != value => {
                    return Err(format!("two different {what} fields"));
                }
                _ => *slot = Some(value.clone()),
            }
            Ok(())
        };
        match name.to_ascii_lowercase().as_slice() {
            b"content-length" => {
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("malformed Content-Length `{value}`"));
                }
                let n: u64 = value
                    .parse()
                    .map_err(|_| format!("Content-Length `{value}` too large"))?;
                if h.content_length.is_some_and(|old| old != n) {
                    return Err(String::from("two different Content-Length fields"));
                }
                h.content_length = Some(n);
            }
            b"content-range" => once(&mut h.content_range, "Content-Range")?,
            b"content-type" => once(&mut h.content_type, "Content-Type")?,
            b"etag" => once(&mut h.etag, "ETag")?,
            b"last-modified" => once(&mut h.last_modified, "Last-Modified")?,
            b"transfer-encoding" => h.transfer_encoding = true,
            b"connection" => {
                for token in value.split(',').map(str::trim) {
                    if token.eq_ignore_ascii_case("close") {
                        h.close = true;
                    } else if token.eq_ignore_ascii_case("keep-alive") && version == b'0' {
                        h.close = false;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(h)
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        let h = parse_head(
            b"HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\ncontent-range: bytes 0-9/100\r\nETag: \"x\"\r\n\r\n",
        )
        .unwrap();
        assert_eq!(h.status, 206);
        assert_eq!(h.content_length, Some(10));
        assert_eq!(h.content_range.as_deref(), Some("bytes 0-9/100"));
        assert_eq!(h.etag.as_deref(), Some("\"x\""));
        assert!(!h.close);
        assert!(parse_head(b"HTTP/1.0 200\r\n\r\n").unwrap().close);
        for bad in [
            &b"HTTP/2 200 OK\r\n\r\n"[..],
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 026 Partial Content\r\n\r\n",
            b"HTTP/1.1 600 Nope\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n folded\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\x01b\r\n\r\n",
            b"HTTP/1.1 200 OK\nX: a\r\n\r\n",
            b"HTTP/1.1 206 OK\r\nETag: \"a\"\r\nETag: \"b\"\r\n\r\n",
        ] {
            assert!(parse_head(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .unwrap()
                .transfer_encoding
        );
    }
}
