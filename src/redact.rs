//! Redaction of the sources that messages print: one function every tier
//! uses (it is pure string work, so it sits in the core, below `io`, which
//! names the files it opens).

#[allow(unused_imports)]
use crate::prelude::*;

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
/// use sft::redact_url;
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
fn redact_target(target: &str) -> alloc::borrow::Cow<'_, str> {
    match target.find('?') {
        Some(q) => format!("{}?…", &target[..q]).into(),
        None => target.into(),
    }
}
