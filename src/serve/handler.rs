//! An application in front of the HTTP content server
//! ([`ServerConfig::handler`](super::http::ServerConfig::handler)): it sees
//! every request first, with its body read (bounded), and answers it or
//! leaves it to the file server. The Management Server (`sft::manage`)
//! is one: publishing answers, reports and the admin API are its own, and
//! package content goes to the file server once the user is entitled.
//!
//! The server keeps all of its limits, TLS, keep-alive and the access
//! log; a handler only maps a [`Request`] to a [`Response`].
//!
//! ```
//! use sft::serve::handler::{Handler, Request, Response};
//!
//! struct Hello;
//! impl Handler for Hello {
//!     fn handle(&self, req: &Request<'_>) -> Option<Response> {
//!         (req.path() == "/hello").then(|| Response::text(200, "hello\n"))
//!     }
//! }
//! # let _ = Hello;
//! ```

use std::fmt;
use std::net::SocketAddr;

/// An application answering requests before the file server.
pub trait Handler: Send + Sync + 'static {
    /// Answer `req`, or `None` to let the file server answer it (`GET`
    /// and `HEAD` of files under the content root, `405` for other
    /// methods).
    fn handle(&self, req: &Request<'_>) -> Option<Response>;
}

/// One request, as a [`Handler`] sees it. Its body was read whole (up to
/// [`ServerConfig::max_body`](super::http::ServerConfig::max_body)).
pub struct Request<'a> {
    pub(crate) method: &'a str,
    pub(crate) target: &'a str,
    pub(crate) headers: &'a [httparse::Header<'a>],
    pub(crate) body: &'a [u8],
    pub(crate) peer: SocketAddr,
    pub(crate) tls: bool,
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the headers or the query: they may carry credentials.
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path())
            .field("body_len", &self.body.len())
            .field("peer", &self.peer)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl<'a> Request<'a> {
    /// The method (`GET`, `POST` …), as sent.
    pub fn method(&self) -> &'a str {
        self.method
    }

    /// The request target's path, without query or fragment, still
    /// percent-encoded.
    pub fn path(&self) -> &'a str {
        self.target.split(['?', '#']).next().unwrap_or_default()
    }

    /// The request target's query (after `?`, without `#…`), if any.
    pub fn query(&self) -> Option<&'a str> {
        let (_, q) = self.target.split_once('?')?;
        Some(q.split('#').next().unwrap_or_default())
    }

    /// The first value of query parameter `name`, percent- and
    /// `+`-decoded; `None` if absent or not UTF-8.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_param(self.query()?, name)
    }

    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// The value of header `name` as trimmed UTF-8, if present and valid.
    pub fn header_str(&self, name: &str) -> Option<&'a str> {
        std::str::from_utf8(self.header(name)?).ok().map(str::trim)
    }

    /// The request body (empty for none).
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Whether the request came over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }
}

/// The first value of `name` in an `application/x-www-form-urlencoded`
/// string (a query or a form body), decoded; `None` if absent or not
/// UTF-8.
///
/// ```
/// use sft::serve::handler::form_param;
/// assert_eq!(form_param("a=1&b=x+y%21", "b").as_deref(), Some("x y!"));
/// assert_eq!(form_param("a=1", "b"), None);
/// ```
pub fn form_param(form: &str, name: &str) -> Option<String> {
    form.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k)? == name).then(|| percent_decode(v))?
    })
}

/// Decode a URL path segment's `%XX` (a `+` stays a `+`); `None` for a
/// bad escape or bytes that are not UTF-8.
#[cfg_attr(not(feature = "manage"), allow(dead_code))]
pub(crate) fn percent_decode_path(s: &str) -> Option<String> {
    percent_decode_with(s, false)
}

/// Decode `%XX` and `+` (as a space); `None` for a bad escape or bytes
/// that are not UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    percent_decode_with(s, true)
}

fn percent_decode_with(s: &str, plus_is_space: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'%' => {
                let hi = hex(*b.get(i + 1)?)?;
                let lo = hex(*b.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A [`Handler`]'s answer. The server adds `Date`, `Server`,
/// `Content-Length` and `Connection`; a header whose name or value could
/// split the response (CR, LF, NUL, or a name that is not a token) is
/// dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Response {
    /// An empty answer with `status`.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `text/plain; charset=utf-8` answer.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response::new(status).body("text/plain; charset=utf-8", body.into().into_bytes())
    }

    /// Set the body and its `Content-Type`.
    #[must_use]
    pub fn body(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
        self.headers
            .push(("Content-Type".to_owned(), content_type.to_owned()));
        self.body = body;
        self
    }

    /// Add a header (dropped if it could split the response).
    #[must_use]
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        let value = value.into();
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        let value_ok = !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0);
        let reserved = [
            "content-length",
            "connection",
            "transfer-encoding",
            "date",
            "server",
        ]
        .iter()
        .any(|r| name.eq_ignore_ascii_case(r));
        if name_ok && value_ok && !reserved {
            self.headers.push((name.to_owned(), value));
        }
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The headers set so far.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body.
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_that_could_split_a_response_are_dropped() {
        let r = Response::new(200)
            .header("X-Ok", "fine")
            .header("X-Bad", "a\r\nSet-Cookie: x")
            .header("Bad Name", "x")
            .header("Content-Length", "5");
        assert_eq!(r.headers(), &[("X-Ok".to_owned(), "fine".to_owned())]);
    }

    #[test]
    fn form_params_decode() {
        assert_eq!(form_param("x=%zz", "x"), None);
        assert_eq!(form_param("a%20b=c", "a b").as_deref(), Some("c"));
        assert_eq!(form_param("flag&x=1", "flag").as_deref(), Some(""));
        assert_eq!(form_param("x=%ff", "x"), None);
        assert_eq!(percent_decode_path("a+b%20c").as_deref(), Some("a+b c"));
    }
}
