//! Signatures over a package's prologue, in minisign's format, and the
//! trust policy that checks them (feature `sign`; `docs/SIGNING.md`).
//!
//! A v1.1 package's prologue holds the BLAKE3 hash of every block
//! (`docs/FORMAT.md` §8a), so one signature over the prologue covers every
//! byte of the package: a reader checks the signature once, before it uses
//! any block, and every block afterwards against its signed hash (which
//! [`Block::verify`](crate::read::Block::verify) does whenever a package
//! has hashes). The signature is minisign's (Ed25519 over the BLAKE2b-512
//! of the prologue, with a signed trusted comment that names the package's
//! content identity), so `minisign -V -p KEY.pub -x PKG.sft.minisig -m
//! PROLOGUE` verifies it too, with `PROLOGUE` the package's first
//! `prologue_len` bytes.
//!
//! ```
//! # fn main() -> sft::Result<()> {
//! use sft::sign::{SigningKey, TrustPolicy};
//! let bytes = sft::write::PackageBuilder::new(sft::WriteOptions::default())
//!     .add_bytes("app.exe", vec![7u8; 100_000])?
//!     .write_to_vec()?;
//! let pkg = sft::Package::parse(&bytes)?;
//! let (key, public) = SigningKey::generate()?;
//! let sig = key.sign(&pkg.prologue())?;
//! let policy = TrustPolicy::require(vec![public]);
//! policy.check(&pkg.prologue(), Some(&sig))?;
//! assert!(policy.check(&pkg.prologue(), None).is_err()); // unsigned: refused
//! # Ok(()) }
//! ```

use std::io::Cursor;
use std::path::Path;

use crate::error::{Error, TrustProblem};
use crate::format::ContentId;
use crate::read::Prologue;

/// The most bytes read from a key or signature file: minisign's are a few
/// hundred; anything longer is not one.
pub const MAX_KEY_FILE_LEN: u64 = 4096;

fn malformed(what: impl core::fmt::Display) -> Error {
    Error::trust(TrustProblem::Malformed, what.to_string())
}

/// Read a small text file (key or signature), refusing one over
/// [`MAX_KEY_FILE_LEN`] bytes before reading it.
fn read_small(path: &Path, what: &str) -> Result<String, Error> {
    use std::io::Read;
    let f = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("opening {what} `{}`", path.display()), e))?;
    let mut s = String::new();
    f.take(MAX_KEY_FILE_LEN + 1)
        .read_to_string(&mut s)
        .map_err(|e| Error::io(format!("reading {what} `{}`", path.display()), e))?;
    if s.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(malformed(format!(
            "{what} `{}` is longer than {MAX_KEY_FILE_LEN} bytes",
            path.display()
        )));
    }
    Ok(s)
}

/// A trust error about the contents of file `path`, with the path named.
fn naming(path: &Path) -> impl FnOnce(Error) -> Error + '_ {
    move |e| match e {
        Error::Trust { problem, message } => Error::Trust {
            problem,
            message: format!("`{}`: {message}", path.display()),
        },
        other => other,
    }
}

/// A secret key that signs packages (a minisign secret key).
#[derive(Clone)]
pub struct SigningKey {
    sk: minisign::SecretKey,
    pk: minisign::PublicKey,
}

impl core::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never the secret.
        write!(f, "SigningKey({})", key_id(self.pk.keynum()))
    }
}

fn key_id(keynum: &[u8]) -> String {
    // minisign prints the 8-byte key number as a little-endian u64.
    let mut n = [0u8; 8];
    let len = keynum.len().min(8);
    n[..len].copy_from_slice(&keynum[..len]);
    format!("{:016X}", u64::from_le_bytes(n))
}

impl SigningKey {
    /// A new key pair: the secret key and its public key.
    ///
    /// # Errors
    /// If the system's random number generator fails.
    pub fn generate() -> Result<(SigningKey, TrustedKey), Error> {
        let kp = minisign::KeyPair::generate_unencrypted_keypair()
            .map_err(|e| Error::invalid(format!("generating a key: {e}")))?;
        Ok((
            SigningKey {
                sk: kp.sk,
                pk: kp.pk.clone(),
            },
            TrustedKey { pk: kp.pk },
        ))
    }

    /// Parse a minisign secret key file's text; `password` decrypts an
    /// encrypted one.
    ///
    /// # Errors
    /// [`Error::Trust`] ([`TrustProblem::Malformed`]) if it is not a
    /// minisign secret key, or the password is missing or wrong.
    pub fn from_text(text: &str, password: Option<String>) -> Result<Self, Error> {
        let sbox = minisign::SecretKeyBox::from_string(text)
            .map_err(|e| malformed(format!("not a minisign secret key: {e}")))?;
        let sk = match password {
            Some(p) => sbox.into_secret_key(Some(p)),
            None => sbox.into_unencrypted_secret_key(),
        }
        .map_err(|e| {
            malformed(format!(
                "secret key: {e} (an encrypted key needs its password in $SFT_KEY_PASSWORD)"
            ))
        })?;
        let pk = minisign::PublicKey::from_secret_key(&sk)
            .map_err(|e| malformed(format!("secret key: {e}")))?;
        Ok(SigningKey { sk, pk })
    }

    /// Read a minisign secret key file (see [`SigningKey::from_text`]).
    ///
    /// # Errors
    /// As [`SigningKey::from_text`], or [`Error::Io`] naming the file.
    pub fn from_file(path: impl AsRef<Path>, password: Option<String>) -> Result<Self, Error> {
        let path = path.as_ref();
        Self::from_text(&read_small(path, "secret key")?, password).map_err(naming(path))
    }

    /// The key in minisign's secret key file format (unencrypted).
    ///
    /// # Errors
    /// If the key cannot be encoded.
    pub fn to_text(&self) -> Result<String, Error> {
        let b = self
            .sk
            .to_box(Some("sft secret key"))
            .map_err(|e| Error::invalid(format!("encoding the secret key: {e}")))?;
        Ok(b.into_string())
    }

    /// The matching public key.
    pub fn public(&self) -> TrustedKey {
        TrustedKey {
            pk: self.pk.clone(),
        }
    }

    /// Sign a prologue: a minisign signature over its bytes, whose trusted
    /// comment names the content identity, package name and version.
    ///
    /// # Errors
    /// [`Error::Trust`] ([`TrustProblem::NoHashes`]) for a v1.0 package:
    /// without block hashes the signature would not bind the blocks.
    pub fn sign(&self, prologue: &Prologue<'_>) -> Result<Signature, Error> {
        if !prologue.has_block_hashes() {
            return Err(Error::trust(
                TrustProblem::NoHashes,
                "the package has no block hash section (a v1.0 package): pack it again \
                 without --no-hashes to sign it",
            ));
        }
        let bytes = &prologue.as_bytes()[..prologue.header().prologue_len as usize];
        let meta = prologue.metadata();
        let comment = format!(
            "sft {} name={} version={}",
            prologue.content_id(),
            sanitize(meta.name()),
            meta.version()
        );
        let sbox = minisign::sign(
            Some(&self.pk),
            &self.sk,
            Cursor::new(bytes),
            Some(&comment),
            Some("signature from sft: the package's prologue"),
        )
        .map_err(|e| Error::invalid(format!("signing: {e}")))?;
        Ok(Signature {
            text: sbox.to_string(),
            sbox,
        })
    }
}

/// A trusted comment is one line: keep printable ASCII and spaces.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect()
}

/// A public key a trust policy accepts signatures from (a minisign public
/// key).
#[derive(Clone)]
pub struct TrustedKey {
    pk: minisign::PublicKey,
}

impl core::fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "TrustedKey({})", self.id())
    }
}

impl TrustedKey {
    /// Parse a public key: minisign's two-line file, or its base64 line
    /// alone (as `minisign -P` takes it).
    ///
    /// # Errors
    /// [`Error::Trust`] ([`TrustProblem::Malformed`]).
    pub fn from_text(text: &str) -> Result<Self, Error> {
        let t = text.trim();
        let pk = if t.lines().count() >= 2 {
            minisign::PublicKeyBox::from_string(t).and_then(|b| b.into_public_key())
        } else {
            minisign::PublicKey::from_base64(t)
        }
        .map_err(|e| malformed(format!("not a minisign public key: {e}")))?;
        Ok(TrustedKey { pk })
    }

    /// Read a public key file (see [`TrustedKey::from_text`]).
    ///
    /// # Errors
    /// As [`TrustedKey::from_text`], or [`Error::Io`] naming the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        Self::from_text(&read_small(path, "public key")?).map_err(naming(path))
    }

    /// The key in minisign's public key file format.
    ///
    /// # Errors
    /// If the key cannot be encoded.
    pub fn to_text(&self) -> Result<String, Error> {
        let b = self
            .pk
            .to_box()
            .map_err(|e| Error::invalid(format!("encoding the public key: {e}")))?;
        Ok(b.into_string())
    }

    /// The key id as minisign prints it (16 hex digits).
    pub fn id(&self) -> String {
        key_id(self.pk.keynum())
    }
}

/// A detached signature (a minisign `.minisig` file), kept as its text.
#[derive(Clone)]
pub struct Signature {
    sbox: minisign::SignatureBox,
    text: String,
}

impl core::fmt::Debug for Signature {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Signature(key {})", self.key_id())
    }
}

impl Signature {
    /// Parse a signature file's text.
    ///
    /// # Errors
    /// [`Error::Trust`] ([`TrustProblem::Malformed`]) if it is longer than
    /// [`MAX_KEY_FILE_LEN`] or not a minisign signature.
    pub fn from_text(text: &str) -> Result<Self, Error> {
        if text.len() as u64 > MAX_KEY_FILE_LEN {
            return Err(malformed(format!(
                "a signature is at most {MAX_KEY_FILE_LEN} bytes; this one has {}",
                text.len()
            )));
        }
        let sbox = minisign::SignatureBox::from_string(text)
            .map_err(|e| malformed(format!("not a minisign signature: {e}")))?;
        Ok(Signature {
            sbox,
            text: text.to_owned(),
        })
    }

    /// Read a signature file (see [`Signature::from_text`]).
    ///
    /// # Errors
    /// As [`Signature::from_text`], or [`Error::Io`] naming the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        Self::from_text(&read_small(path, "signature")?).map_err(naming(path))
    }

    /// The signature file's text.
    pub fn as_text(&self) -> &str {
        &self.text
    }

    /// The id of the key that made it.
    pub fn key_id(&self) -> String {
        key_id(self.sbox.keynum())
    }

    /// The signed trusted comment (names the content identity).
    pub fn trusted_comment(&self) -> String {
        self.sbox.trusted_comment().unwrap_or_default()
    }
}

/// What a trust policy accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trust {
    /// The policy has no keys and does not require signatures: nothing was
    /// checked beyond the package's own hashes.
    Unchecked,
    /// Signed by the trusted key with this id.
    Signed {
        /// The key id (16 hex digits).
        key_id: String,
        /// The content identity the signature covers.
        content_id: ContentId,
    },
}

/// Which packages a reader accepts: signed by one of these keys (and,
/// with `require`, nothing unsigned), and optionally one exact content
/// identity (the one publishing named).
#[derive(Debug, Clone, Default)]
pub struct TrustPolicy {
    keys: Vec<TrustedKey>,
    require: bool,
    content_id: Option<ContentId>,
}

impl TrustPolicy {
    /// Accept anything (the default); signatures, if given, are still
    /// checked against `keys` if any.
    pub fn permissive() -> Self {
        TrustPolicy::default()
    }

    /// Accept only packages signed by one of `keys`.
    pub fn require(keys: Vec<TrustedKey>) -> Self {
        TrustPolicy {
            keys,
            require: true,
            content_id: None,
        }
    }

    /// Also require this exact content identity (a swapped package with
    /// a valid signature of another version is refused).
    pub fn expect_content(mut self, id: Option<ContentId>) -> Self {
        self.content_id = id;
        self
    }

    /// Whether a signature is required.
    pub fn requires_signature(&self) -> bool {
        self.require
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[TrustedKey] {
        &self.keys
    }

    /// Check a prologue (and the signature found for it, if any) before any
    /// of its blocks is used. A package that passes has every block bound
    /// to its signed hash from then on.
    ///
    /// # Errors
    /// [`Error::Trust`]: [`TrustProblem::WrongContent`] if a content
    /// identity is expected and differs; [`TrustProblem::Unsigned`] if a
    /// signature is required and `signature` is `None`;
    /// [`TrustProblem::NoHashes`] for a signed v1.0 package;
    /// [`TrustProblem::BadSignature`] if no trusted key verifies it.
    pub fn check(
        &self,
        prologue: &Prologue<'_>,
        signature: Option<&Signature>,
    ) -> Result<Trust, Error> {
        let content_id = prologue.content_id();
        if let Some(want) = self.content_id
            && want != content_id
        {
            return Err(Error::trust(
                TrustProblem::WrongContent,
                format!("the package is {content_id}, publishing named {want}"),
            ));
        }
        let Some(sig) = signature else {
            if self.require {
                return Err(Error::trust(
                    TrustProblem::Unsigned,
                    format!("{content_id} has no signature and the trust policy requires one"),
                ));
            }
            return Ok(Trust::Unchecked);
        };
        if self.keys.is_empty() && !self.require {
            return Ok(Trust::Unchecked);
        }
        if !prologue.has_block_hashes() {
            return Err(Error::trust(
                TrustProblem::NoHashes,
                "a signed package must have block hashes (v1.1): its signature would not bind its blocks",
            ));
        }
        let bytes = &prologue.as_bytes()[..prologue.header().prologue_len as usize];
        for key in &self.keys {
            if key.pk.keynum() != sig.sbox.keynum() {
                continue;
            }
            return match minisign::verify(
                &key.pk,
                &sig.sbox,
                Cursor::new(bytes),
                true,
                false,
                false,
            ) {
                Ok(()) => Ok(Trust::Signed {
                    key_id: key.id(),
                    content_id,
                }),
                Err(e) => Err(Error::trust(
                    TrustProblem::BadSignature,
                    format!(
                        "the signature by key {} does not verify over {content_id}: {e}",
                        key.id()
                    ),
                )),
            };
        }
        Err(Error::trust(
            TrustProblem::BadSignature,
            format!(
                "signed by key {}, which is not among the {} trusted key(s)",
                sig.key_id(),
                self.keys.len()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(hashes: bool) -> Vec<u8> {
        crate::write::PackageBuilder::new(crate::WriteOptions::default().block_hashes(hashes))
            .add_bytes("a.bin", vec![5u8; 200_000])
            .unwrap()
            .write_to_vec()
            .unwrap()
    }

    #[test]
    fn keys_round_trip_through_their_text() {
        let (k, p) = SigningKey::generate().unwrap();
        let k2 = SigningKey::from_text(&k.to_text().unwrap(), None).unwrap();
        let p2 = TrustedKey::from_text(&p.to_text().unwrap()).unwrap();
        assert_eq!(k2.public().id(), p.id());
        assert_eq!(p2.id(), p.id());
        assert!(!format!("{k:?}").contains(&k.to_text().unwrap()[40..60]));
    }

    #[test]
    fn wrong_key_unsigned_and_v1_0_are_refused() {
        let bytes = pkg(true);
        let p = crate::Package::parse(&bytes).unwrap();
        let (k, _) = SigningKey::generate().unwrap();
        let (_, other) = SigningKey::generate().unwrap();
        let sig = k.sign(&p.prologue()).unwrap();
        let e = TrustPolicy::require(vec![other])
            .check(&p.prologue(), Some(&sig))
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Trust {
                    problem: TrustProblem::BadSignature,
                    ..
                }
            ),
            "{e}"
        );
        let e = TrustPolicy::require(vec![k.public()])
            .check(&p.prologue(), None)
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Trust {
                    problem: TrustProblem::Unsigned,
                    ..
                }
            ),
            "{e}"
        );
        let old = pkg(false);
        let p0 = crate::Package::parse(&old).unwrap();
        assert!(matches!(
            k.sign(&p0.prologue()),
            Err(Error::Trust {
                problem: TrustProblem::NoHashes,
                ..
            })
        ));
        assert!(sig.trusted_comment().contains(&p.content_id().to_string()));
    }
}
