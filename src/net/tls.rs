//! TLS for the HTTPS and RTSPS clients: the roots (a CA file or the system
//! store), **pinning** of a server certificate given exactly in the CA
//! file, and a hint that says what is wrong when a certificate is refused.
//!
//! Pinning: the common self-signed certificate of `openssl req -x509` has
//! `basicConstraints=CA:TRUE`, which webpki refuses as a server certificate
//! (`CaUsedAsEndEntity`) even when it is in the CA file, where
//! `curl --cacert` accepts it. Here the web-PKI verification runs first;
//! only when it fails with that error, and the certificate the server
//! presents is byte for byte one of the CA file's certificates, is it
//! accepted, and then only if its `subjectAltName` (when it has one) names
//! the host. Its validity dates were already checked (webpki checks them
//! before the CA flag), and the handshake signature is verified with the
//! certificate's key as always.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// The certificates of a PEM CA file (at least one).
///
/// # Errors
/// The file cannot be read, holds a bad PEM section or no certificate; the
/// message names the file.
pub(crate) fn ca_file_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bad = |d: String| format!("CA file {}: {d}", path.display());
    let mut certs = Vec::new();
    for c in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
        certs.push(c.map_err(|e| bad(e.to_string()))?);
    }
    if certs.is_empty() {
        return Err(bad("no certificates".into()));
    }
    Ok(certs)
}

/// A rustls client configuration (ring, TLS 1.2 and 1.3) that trusts the
/// certificates of a CA file, pinning an exact server certificate among
/// them (module docs), or the system roots when `ca` is `None`.
///
/// # Errors
/// A CA certificate rustls cannot use as a root, or no usable root at all.
pub(crate) fn client_config(
    ca: Option<&[CertificateDer<'static>]>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(certs) => {
            for c in certs {
                roots.add(c.clone()).map_err(|e| format!("CA file: {e}"))?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let config = match ca {
        Some(certs) => {
            let inner =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                    .build()
                    .map_err(|e| format!("CA file: {e}"))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinningVerifier {
                    inner,
                    pinned: certs.to_vec(),
                }))
                .with_no_client_auth()
        }
        None => builder.with_root_certificates(roots).with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Web-PKI verification, then exact-certificate pinning for a certificate
/// refused only as a CA used as an end entity (module docs).
struct PinningVerifier {
    inner: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl fmt::Debug for PinningVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinningVerifier")
            .field("pinned", &self.pinned.len())
            .finish()
    }
}

/// Whether rustls refused a certificate because it is a CA certificate
/// used as a server certificate (webpki's `CaUsedAsEndEntity`, which
/// rustls passes on as an opaque `CertificateError::Other`).
fn is_ca_used_as_end_entity(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(CertificateError::Other(o))
            if format!("{o:?}").contains("CaUsedAsEndEntity")
    )
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let err = match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let pinned = self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref());
        if !pinned || !is_ca_used_as_end_entity(&err) {
            return Err(err);
        }
        let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
        match rustls::client::verify_server_name(&parsed, server_name) {
            Ok(()) => Ok(ServerCertVerified::assertion()),
            // No subjectAltName at all: nothing to check the host against;
            // the exact certificate is the identity.
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                presented,
                ..
            })) if presented.is_empty() => Ok(ServerCertVerified::assertion()),
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// How to make a server certificate that every client accepts.
const MAKE_CERT: &str = "make a server certificate with `openssl req -x509 -newkey rsa:2048 \
     -nodes -keyout key.pem -out cert.pem -days 365 -subj /CN=HOST \
     -addext basicConstraints=critical,CA:FALSE -addext subjectAltName=DNS:HOST,IP:ADDR` \
     and pass cert.pem with --ca-file";

/// What is wrong with a refused server certificate and how to fix it, for
/// the certificate errors a user can act on; `None` for other errors.
pub(crate) fn hint(e: &rustls::Error) -> Option<String> {
    let rustls::Error::InvalidCertificate(ce) = e else {
        return None;
    };
    let text = match ce {
        _ if is_ca_used_as_end_entity(e) => format!(
            "the server's certificate is a CA certificate (basicConstraints CA:TRUE, as \
             `openssl req -x509` makes by default); give exactly that certificate with \
             --ca-file to pin it, or {MAKE_CERT}"
        ),
        CertificateError::UnknownIssuer => format!(
            "the server's certificate is not signed by a trusted CA: pass its CA (for a \
             self-signed certificate, the certificate itself) with --ca-file, or {MAKE_CERT}"
        ),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!(
                "the server's certificate does not name the host in the URL (only \
                 subjectAltName counts, not the CN): connect by a name it has, or {MAKE_CERT}"
            )
        }
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => String::from(
            "the server's certificate is outside its validity period: check its dates and \
             this machine's clock",
        ),
        _ => return None,
    };
    Some(text)
}

/// [`hint`] for an I/O error that carries a rustls error.
pub(crate) fn io_hint(e: &io::Error) -> Option<String> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .and_then(hint)
}

/// Whether an I/O error is a TLS failure (a refused certificate, a bad
/// handshake): not transient, a retry meets the same certificate.
#[cfg(feature = "rtsp")]
pub(crate) fn is_tls_error(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>())
}

#[cfg(feature = "http")]
pub(crate) use ureq_pinned::{PinnedTlsConnector, ureq_hint};

/// A ureq connector that does TLS with our own rustls configuration (for
/// pinning: ureq's own TLS takes roots only).
#[cfg(feature = "http")]
mod ureq_pinned {
    use std::fmt;
    use std::io::{Read, Write};
    use std::sync::Arc;

    use rustls::{ClientConnection, StreamOwned};
    use rustls_pki_types::ServerName;
    use ureq::unversioned::transport::{
        Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport,
        TransportAdapter,
    };

    /// TLS over the chained transport with the given configuration, for
    /// `https://` connections that are not TLS yet.
    pub(crate) struct PinnedTlsConnector {
        pub(crate) config: Arc<rustls::ClientConfig>,
    }

    impl fmt::Debug for PinnedTlsConnector {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("PinnedTlsConnector")
        }
    }

    impl<In: Transport> Connector<In> for PinnedTlsConnector {
        type Out = Either<In, PinnedTlsTransport>;

        fn connect(
            &self,
            details: &ConnectionDetails<'_>,
            chained: Option<In>,
        ) -> Result<Option<Self::Out>, ureq::Error> {
            let Some(transport) = chained else {
                return Ok(None);
            };
            if !details.needs_tls() || transport.is_tls() {
                return Ok(Some(Either::A(transport)));
            }
            let host = details
                .uri
                .authority()
                .map(|a| a.host().trim_start_matches('[').trim_end_matches(']'))
                .ok_or(ureq::Error::Tls(
                    "no host to verify the certificate against",
                ))?;
            let name = ServerName::try_from(host)
                .map_err(|_| ureq::Error::Tls("the host is not a valid TLS server name"))?
                .to_owned();
            let mut conn = ClientConnection::new(Arc::clone(&self.config), name)?;
            let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
            sock.set_timeout(details.timeout);
            conn.complete_io(&mut sock)?;
            let buffers = LazyBuffers::new(
                details.config.input_buffer_size(),
                details.config.output_buffer_size(),
            );
            Ok(Some(Either::B(PinnedTlsTransport {
                buffers,
                stream: StreamOwned { conn, sock },
            })))
        }
    }

    /// A TLS connection made by [`PinnedTlsConnector`].
    pub(crate) struct PinnedTlsTransport {
        buffers: LazyBuffers,
        stream: StreamOwned<ClientConnection, TransportAdapter>,
    }

    impl fmt::Debug for PinnedTlsTransport {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("PinnedTlsTransport")
        }
    }

    impl Transport for PinnedTlsTransport {
        fn buffers(&mut self) -> &mut dyn Buffers {
            &mut self.buffers
        }

        fn transmit_output(
            &mut self,
            amount: usize,
            timeout: NextTimeout,
        ) -> Result<(), ureq::Error> {
            self.stream.get_mut().set_timeout(timeout);
            let output = self
                .buffers
                .output()
                .get(..amount)
                .ok_or(ureq::Error::Tls("output larger than the buffer"))?;
            self.stream.write_all(output)?;
            Ok(())
        }

        fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
            self.stream.get_mut().set_timeout(timeout);
            let input = self.buffers.input_append_buf();
            let amount = self.stream.read(input)?;
            self.buffers.input_appended(amount);
            Ok(amount > 0)
        }

        fn is_open(&mut self) -> bool {
            self.stream.get_mut().get_mut().is_open()
        }

        fn is_tls(&self) -> bool {
            true
        }
    }

    /// [`super::hint`] for a ureq error that carries a rustls error.
    pub(crate) fn ureq_hint(e: &ureq::Error) -> Option<String> {
        match e {
            ureq::Error::Rustls(r) => super::hint(r),
            ureq::Error::Io(io) => super::io_hint(io),
            _ => None,
        }
    }
}
