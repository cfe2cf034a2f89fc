//! CODEBASE resolution: from an OSD's `HREF` and the client's source
//! settings to a source string [`crate::fetch::fetch_spec`] accepts.
//!
//! Pure functions: the only outside input is the environment, through a
//! lookup the caller passes in (`|name| std::env::var(name).ok()` in
//! production, a map in tests).
//!
//! Precedence, as App-V's `SFTMIME LOAD PACKAGE` documents it: `SFTPATH`
//! first; then `OverrideURL` (taken here to beat ApplicationSourceRoot — the
//! exact order of those two is not documented); then the `HREF`, rewritten
//! by ApplicationSourceRoot if one is set.

use crate::error::Error;

/// The client's source settings (App-V: `SFTMIME LOAD PACKAGE /SFTPATH`,
/// the package's OverrideURL, and the `ApplicationSourceRoot` registry
/// value). Empty strings count as unset.
///
/// ```
/// let roots = sft::publish::SourceRoots {
///     application_source_root: Some("rtsps://mainserver:322/prodapps".into()),
///     ..Default::default()
/// };
/// assert!(roots.override_url.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceRoots {
    /// ApplicationSourceRoot: replaces the protocol, server and port (or
    /// the UNC `\\computer\share`, or the drive) of the `HREF`.
    pub application_source_root: Option<String>,
    /// OverrideURL: the package's location, instead of the `HREF`.
    pub override_url: Option<String>,
    /// SFTPATH: an explicit package file, overriding everything.
    pub sftpath: Option<String>,
}

/// Resolve a `CODEBASE HREF` to a source for [`crate::fetch::fetch_spec`]:
/// apply [`SourceRoots`] (see the module docs for the precedence), expand
/// `%VAR%` through `env`, then map the location with [`to_source`].
///
/// ```
/// use sft::publish::{SourceRoots, resolve_codebase};
/// let env = |name: &str| (name == "SFT_SOFTGRIDSERVER").then(|| "apps.example.com".to_owned());
/// let href = "RTSP://%SFT_SOFTGRIDSERVER%:554/Editor/editor.sft";
/// assert_eq!(resolve_codebase(href, &SourceRoots::default(), env)?,
///            "rtsp://apps.example.com:554/Editor/editor.sft");
///
/// let roots = SourceRoots { application_source_root: Some("https://cdn.example.com/apps".into()), ..Default::default() };
/// assert_eq!(resolve_codebase(href, &roots, env)?, "https://cdn.example.com/apps/Editor/editor.sft");
///
/// let e = resolve_codebase(href, &SourceRoots::default(), |_| None).unwrap_err();
/// assert!(e.to_string().contains("%SFT_SOFTGRIDSERVER%, which is not set"), "{e}");
/// # Ok::<(), sft::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] for a variable `env` does not know, a malformed
/// ApplicationSourceRoot, or an `HREF` in a form no transport can serve.
pub fn resolve_codebase(
    href: &str,
    roots: &SourceRoots,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, Error> {
    fn set(o: &Option<String>) -> Option<&str> {
        o.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }
    if let Some(p) = set(&roots.sftpath) {
        return to_source(&expand_vars(p, &env)?);
    }
    if let Some(u) = set(&roots.override_url) {
        return to_source(&expand_vars(u, &env)?);
    }
    let href = href.trim();
    if href.is_empty() {
        return Err(Error::invalid("the CODEBASE has no HREF"));
    }
    let location = match set(&roots.application_source_root) {
        Some(asr) => apply_source_root(href, asr)?,
        None => href.to_owned(),
    };
    to_source(&expand_vars(&location, &env)?)
}

/// Expand every `%NAME%` (NAME: a letter or `_`, then letters, digits or
/// `_`) through `env`. Other `%` signs (`%20`) are left alone.
///
/// ```
/// use sft::publish::expand_vars;
/// let env = |n: &str| (n == "SFT_MIME_SOURCE").then(|| "/srv/publish".to_owned());
/// assert_eq!(expand_vars("%SFT_MIME_SOURCE%/My%20App.osd", env)?, "/srv/publish/My%20App.osd");
/// assert!(expand_vars("%MISSING%", env).is_err());
/// # Ok::<(), sft::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] naming the first variable `env` does not know.
pub fn expand_vars(s: &str, env: impl Fn(&str) -> Option<String>) -> Result<String, Error> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let name_len = after
            .char_indices()
            .take_while(|&(j, c)| {
                c == '_' || c.is_ascii_alphabetic() || (j > 0 && c.is_ascii_digit())
            })
            .count();
        if name_len > 0 && after[name_len..].starts_with('%') {
            let name = &after[..name_len];
            let value = env(name).ok_or_else(|| {
                Error::invalid(format!(
                    "`{}` uses %{name}%, which is not set (define the environment variable)",
                    crate::redact_url(s)
                ))
            })?;
            out.push_str(&value);
            rest = &after[name_len + 1..];
        } else {
            out.push('%');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A location as App-V writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Loc<'a> {
    /// `scheme://authority/path?query` (`file` only for local file URLs).
    Url {
        scheme: &'a str,
        authority: &'a str,
        path: &'a str,
        query: &'a str,
    },
    /// `\\server\share\rest` (also `file://\\server\share\rest`).
    Unc {
        server: &'a str,
        share: &'a str,
        rest: &'a str,
    },
    /// `M:\rest`.
    Drive { letter: char, rest: &'a str },
    /// Any other path.
    Path(&'a str),
}

fn is_sep(c: char) -> bool {
    c == '/' || c == '\\'
}

fn drive(s: &str) -> Option<Loc<'_>> {
    let mut it = s.chars();
    let letter = it.next().filter(char::is_ascii_alphabetic)?;
    if it.next() != Some(':') {
        return None;
    }
    let rest = &s[2..];
    if !(rest.is_empty() || rest.starts_with(is_sep)) {
        return None;
    }
    Some(Loc::Drive {
        letter: letter.to_ascii_uppercase(),
        rest: rest.trim_start_matches(is_sep),
    })
}

fn unc(s: &str) -> Option<Loc<'_>> {
    let body = s.trim_start_matches(is_sep);
    let (server, after) = body.split_once(is_sep)?;
    let (share, rest) = after.split_once(is_sep).unwrap_or((after, ""));
    if server.is_empty() || share.is_empty() {
        return None;
    }
    Some(Loc::Unc {
        server,
        share,
        rest: rest.trim_start_matches(is_sep),
    })
}

fn scheme_of(s: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = s.split_once("://")?;
    let ok = !scheme.is_empty()
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    ok.then_some((scheme, rest))
}

fn parse_loc(s: &str) -> Result<Loc<'_>, Error> {
    if s.starts_with("\\\\") || (s.starts_with("//") && !s.starts_with("///")) {
        return unc(s).ok_or_else(|| {
            Error::invalid(format!(
                "`{}`: a UNC path needs \\\\computer\\share",
                crate::redact_url(s)
            ))
        });
    }
    if let Some((scheme, rest)) = scheme_of(s) {
        if scheme.eq_ignore_ascii_case("file") {
            if rest.starts_with("\\\\") || rest.starts_with("//") {
                return parse_loc(rest);
            }
            if let Some(d) = drive(rest).or_else(|| rest.strip_prefix('/').and_then(drive)) {
                return Ok(d);
            }
            let local = rest
                .strip_prefix("localhost")
                .filter(|r| r.starts_with('/'))
                .unwrap_or(rest);
            if local.starts_with('/') {
                return Ok(Loc::Url {
                    scheme,
                    authority: "",
                    path: local,
                    query: "",
                });
            }
            // file://server/share/path: a remote file, as a UNC path.
            return unc(rest).ok_or_else(|| {
                Error::invalid(format!(
                    "`{}`: a file:// URL needs a path or \\\\server\\share",
                    crate::redact_url(s)
                ))
            });
        }
        let end = rest
            .find(|c: char| is_sep(c) || c == '?' || c == '#')
            .unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.is_empty() {
            return Err(Error::invalid(format!(
                "`{}` names no server",
                crate::redact_url(s)
            )));
        }
        let q = tail.find(['?', '#']).unwrap_or(tail.len());
        let (path, query) = tail.split_at(q);
        return Ok(Loc::Url {
            scheme,
            authority,
            path: path.trim_start_matches(is_sep),
            query,
        });
    }
    if let Some(d) = drive(s) {
        return Ok(d);
    }
    Ok(Loc::Path(s))
}

/// Rewrite `href` with an ApplicationSourceRoot exactly as App-V
/// documents it (`../shared/reference/appv4.md` §5.1):
///
/// - a URL root `protocol://server[:port][/path]` replaces the HREF's
///   protocol, server and port (variables there included) and its path is
///   put before the HREF's path; `\` in the HREF becomes `/`; the query is
///   kept;
/// - a UNC root `\\computer\share[\folder]` or a drive root `M:[\folder]`
///   replaces the HREF's protocol and server (or `\\computer\share`, or
///   drive); `/` becomes `\` and the query is dropped.
///
/// The root itself is trimmed, gets a trailing separator if it lacks one,
/// and may not hold variables, credentials, a query or a fragment.
///
/// ```
/// use sft::publish::apply_source_root;
/// assert_eq!(
///     apply_source_root("rtsp://appserver/productivity/office2k3.sft?customer=seq", "rtsps://mainserver:322/prodapps")?,
///     "rtsps://mainserver:322/prodapps/productivity/office2k3.sft?customer=seq");
/// assert_eq!(
///     apply_source_root("\\\\uncserver\\share\\productivity\\office2k3.sft", "M:")?,
///     "M:\\productivity\\office2k3.sft");
/// # Ok::<(), sft::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] for a malformed root or HREF.
pub fn apply_source_root(href: &str, root: &str) -> Result<String, Error> {
    let root = root.trim();
    let bad = |why: &str| {
        Error::invalid(format!(
            "ApplicationSourceRoot `{}`: {why} (expected protocol://server[:port][/path], \\\\computer\\share[\\folder] or a drive like M:)",
            crate::redact_url(root)
        ))
    };
    if root.contains('%') {
        return Err(bad("environment variables are not allowed"));
    }
    let rel_of = |href: &str| -> Result<(String, String), Error> {
        Ok(match parse_loc(href.trim())? {
            Loc::Url { path, query, .. } => {
                (path.trim_start_matches(is_sep).to_owned(), query.to_owned())
            }
            Loc::Unc { rest, .. } | Loc::Drive { rest, .. } => (rest.to_owned(), String::new()),
            Loc::Path(p) => (p.trim_start_matches(is_sep).to_owned(), String::new()),
        })
    };
    let (rel, query) = rel_of(href)?;
    match parse_loc(root).map_err(|_| bad("not a valid root"))? {
        Loc::Url {
            scheme,
            authority,
            path,
            query: root_query,
        } => {
            if scheme.eq_ignore_ascii_case("file") {
                return Err(bad(
                    "a file:// root must name \\\\computer\\share or a drive",
                ));
            }
            if !root_query.is_empty() {
                return Err(bad("a query or fragment is not allowed"));
            }
            if authority.contains('@') {
                return Err(bad("user:password is not allowed"));
            }
            let mut out = format!("{scheme}://{authority}/");
            let folder = path.trim_matches(is_sep).replace('\\', "/");
            if !folder.is_empty() {
                out.push_str(&folder);
                out.push('/');
            }
            out.push_str(&rel.replace('\\', "/"));
            out.push_str(&query);
            Ok(out)
        }
        Loc::Unc {
            server,
            share,
            rest,
        } => {
            let mut out = format!("\\\\{server}\\{share}\\");
            push_folder(&mut out, rest);
            out.push_str(&rel.replace('/', "\\"));
            Ok(out)
        }
        Loc::Drive { letter, rest } => {
            let mut out = format!("{letter}:\\");
            push_folder(&mut out, rest);
            out.push_str(&rel.replace('/', "\\"));
            Ok(out)
        }
        Loc::Path(_) => Err(bad("protocol and server are required")),
    }
}

fn push_folder(out: &mut String, folder: &str) {
    let folder = folder.trim_matches(is_sep).replace('/', "\\");
    if !folder.is_empty() {
        out.push_str(&folder);
        out.push('\\');
    }
}

/// Percent-encode what may not appear raw in a URL path (spaces, quotes,
/// angle brackets, backslashes…); existing `%XX` escapes stay.
fn encode_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for c in p.chars() {
        match c {
            ' ' | '"' | '<' | '>' | '^' | '`' | '{' | '|' | '}' => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Map an App-V location (no variables left) to a source string
/// [`crate::fetch::fetch_spec`] accepts: `rtsp(s)://` and `http(s)://`
/// URLs with a lower-case scheme, `/` separators and an encoded path (the
/// query kept byte for byte); UNC paths and `file://\\server\share` as
/// `smb://server/share/…` (no SMB transport yet: fetching it fails
/// clearly); local `file://` URLs and paths as they are; drive-letter
/// paths as Windows paths.
///
/// ```
/// use sft::publish::to_source;
/// assert_eq!(to_source("file://\\\\srv\\content\\My App\\app.sft")?, "smb://srv/content/My%20App/app.sft");
/// assert_eq!(to_source("HTTP://web/content\\app.sft?sig=a%2Fb")?, "http://web/content/app.sft?sig=a%2Fb");
/// assert_eq!(to_source("/srv/content/app.sft")?, "/srv/content/app.sft");
/// assert!(to_source("gopher://x/app.sft").is_err());
/// # Ok::<(), sft::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] for a scheme no transport knows or a
/// malformed location.
pub fn to_source(location: &str) -> Result<String, Error> {
    let location = location.trim();
    Ok(match parse_loc(location)? {
        Loc::Url {
            scheme,
            authority,
            path,
            query,
        } => {
            let scheme = scheme.to_ascii_lowercase();
            match scheme.as_str() {
                "file" => format!("file://{path}"),
                "rtsp" | "rtsps" | "http" | "https" => format!(
                    "{scheme}://{authority}/{}{query}",
                    encode_path(&path.replace('\\', "/"))
                ),
                other => {
                    return Err(Error::invalid(format!(
                        "`{}`: unsupported protocol `{other}` (expected rtsp, rtsps, http, https or file)",
                        crate::redact_url(location)
                    )));
                }
            }
        }
        Loc::Unc {
            server,
            share,
            rest,
        } => {
            let mut s = format!("smb://{server}/{share}");
            if !rest.is_empty() {
                s.push('/');
                s.push_str(&encode_path(&rest.replace('\\', "/")));
            }
            s
        }
        Loc::Drive { letter, rest } => format!("{letter}:\\{}", rest.replace('/', "\\")),
        Loc::Path(p) => p.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(
            parse_loc("file://\\\\s\\sh\\a\\b.sft").unwrap(),
            Loc::Unc {
                server: "s",
                share: "sh",
                rest: "a\\b.sft"
            }
        );
        assert!(matches!(
            parse_loc("file:///C:/x.sft").unwrap(),
            Loc::Drive { letter: 'C', .. }
        ));
        assert!(matches!(parse_loc("rel/app.sft").unwrap(), Loc::Path(_)));
        assert!(parse_loc("\\\\only").is_err());
        assert_eq!(to_source("file:///C:/d/x.sft").unwrap(), "C:\\d\\x.sft");
        assert_eq!(
            to_source("file://localhost/srv/a.sft").unwrap(),
            "file:///srv/a.sft"
        );
        assert_eq!(
            to_source("file://server/share/a.sft").unwrap(),
            "smb://server/share/a.sft"
        );
    }

    #[test]
    fn vars() {
        let env = |n: &str| (n == "A").then(|| "x".to_owned());
        assert_eq!(expand_vars("%A%%A%", env).unwrap(), "xx");
        assert_eq!(expand_vars("100%", env).unwrap(), "100%");
        assert_eq!(expand_vars("%1A%", env).unwrap(), "%1A%");
        assert_eq!(expand_vars("%%A%", env).unwrap(), "%x");
    }
}
