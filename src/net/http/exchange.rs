//! One small HTTP request and its whole answer, for control-plane
//! exchanges (a publishing refresh, a token, a usage report, a licence
//! lease) rather than package content: the same TLS roots, CA file,
//! credentials and timeouts as [`HttpSource`](super::HttpSource), a
//! bounded body, and errors that never show credentials or a query.

use std::io::Read;

use ::ureq::Agent;
use ::ureq::tls::{TlsConfig, TlsProvider};

use super::options::{new_agent, roots};
use super::{HttpOptions, authorization, parse_url};
use crate::error::Error;
use crate::stream::{TransportError, TransportErrorKind};

/// An answer from [`exchange`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchanged {
    /// The status code.
    pub status: u16,
    /// Its `ETag`, if any.
    pub etag: Option<String>,
    /// Its `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body (at most the `max_body` asked for).
    pub body: Vec<u8>,
}

/// Send `method` to `url` with `headers` and `body`, and read the answer
/// whole (any status; 3xx redirects are not followed). Credentials come
/// from `options` (or the URL's `user:password@`).
///
/// # Errors
/// [`Error::InvalidInput`] for a bad URL or header; [`Error::Transport`]
/// if the server cannot be reached, or its body is over `max_body`
/// bytes (then nothing of it is returned).
pub fn exchange(
    method: &str,
    url: &str,
    options: &HttpOptions,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    max_body: u64,
) -> Result<Exchanged, Error> {
    let parsed = parse_url(url)?;
    let auth = authorization(options, &parsed)?;
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(roots(options, parsed.https)?)
        .build();
    let config = Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(options.connect_timeout))
        .timeout_per_read(Some(options.read_timeout))
        .timeout_per_write(Some(options.read_timeout))
        .user_agent(options.user_agent.as_str())
        .tls_config(tls)
        .build();
    let agent = new_agent(config, options.ca_file.as_deref(), options.tls.clone())?;
    let fail = |kind: TransportErrorKind, what: String| {
        Error::Transport(TransportError::new(
            kind,
            format!("{what} {}", parsed.shown),
        ))
    };
    let mut req = ::ureq::http::Request::builder()
        .method(method)
        .uri(parsed.send.as_str());
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let req = req
        .body(body.map(<[u8]>::to_vec).unwrap_or_default())
        .map_err(|e| Error::invalid(format!("request to {}: {e}", parsed.shown)))?;
    let resp = agent.run(req).map_err(|e| {
        let kind = match &e {
            ::ureq::Error::Timeout(_) => TransportErrorKind::Timeout,
            ::ureq::Error::Io(_)
            | ::ureq::Error::HostNotFound
            | ::ureq::Error::ConnectionFailed => TransportErrorKind::ConnectionLost,
            _ => TransportErrorKind::Protocol,
        };
        fail(kind, format!("{method} {e}:"))
    })?;
    let status = resp.status().as_u16();
    let header = |n: &str| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let etag = header("etag");
    let content_type = header("content-type");
    let mut data = Vec::new();
    resp.into_body()
        .into_reader()
        .take(max_body.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| {
            fail(
                TransportErrorKind::ConnectionLost,
                format!("reading the answer ({e}) of"),
            )
        })?;
    if data.len() as u64 > max_body {
        return Err(fail(
            TransportErrorKind::Protocol,
            format!("an answer over {max_body} bytes from"),
        ));
    }
    Ok(Exchanged {
        status,
        etag,
        content_type,
        body: data,
    })
}
