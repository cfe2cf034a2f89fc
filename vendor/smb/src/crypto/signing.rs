use smb_msg::*;

use super::CryptoError;

type SigningKey = [u8; 16];

pub fn make_signing_algo(
    signing_algorithm: SigningAlgorithmId,
    signing_key: &SigningKey,
) -> Result<Box<dyn SigningAlgo>, CryptoError> {
    if !SIGNING_ALGOS.contains(&signing_algorithm) {
        return Err(CryptoError::UnsupportedSigningAlgorithm(signing_algorithm));
    }
    if cfg!(feature = "__debug-dump-keys") {
        log::debug!(
            "Using signing algorithm {:?} with key {:02x?}",
            signing_algorithm,
            signing_key
        );
    }
    match signing_algorithm {
        #[cfg(feature = "sign_hmac")]
        SigningAlgorithmId::HmacSha256 => Ok(hmac_signer::HmacSha256Signer::build(signing_key)),
        #[cfg(feature = "sign_cmac")]
        SigningAlgorithmId::AesCmac => Ok(cmac_signer::Cmac128Signer::build(signing_key)?),
        #[cfg(feature = "sign_gmac")]
        SigningAlgorithmId::AesGmac => Ok(gmac_signer::Gmac128Signer::build(signing_key)),
        #[cfg(not(all(feature = "sign_cmac", feature = "sign_gmac", feature = "sign_hmac")))]
        _ => Err(CryptoError::UnsupportedSigningAlgorithm(signing_algorithm)),
    }
}

pub const SIGNING_ALGOS: &[SigningAlgorithmId] = &[
    #[cfg(feature = "sign_hmac")]
    SigningAlgorithmId::HmacSha256,
    #[cfg(feature = "sign_cmac")]
    SigningAlgorithmId::AesCmac,
    #[cfg(feature = "sign_gmac")]
    SigningAlgorithmId::AesGmac,
];

/// A trait for SMB signing algorithms.
pub trait SigningAlgo: std::fmt::Debug + Send + Sync {
    /// Start a new signing session. This is called before any data is passed to the signer,
    /// and [SigningAlgo::update] must feed the header data to the signer, in addition to this call.
    ///
    /// An algorithm may implement this function to perform any necessary initialization,
    /// that requires the header data.
    /// This function must be called once per signing session.
    fn start(&mut self, _header: &Header) {
        // Default implementation does nothing.
    }

    /// Update the signing session with new data.
    fn update(&mut self, data: &[u8]);

    /// Finalize the signing session and return the signature.
    ///
    /// This function must be called once per signing session.
    fn finalize(&mut self) -> u128;

    /// Clone the algo into a boxed trait object.
    /// See [EncryptionAlgo::clone_box](super::encryption::EncryptingAlgo::clone_box) for more information.
    fn clone_box(&self) -> Box<dyn SigningAlgo>;
}

#[cfg(feature = "sign_hmac")]
mod hmac_signer {
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::Sha256;

    use super::*;

    type HmacSha256 = Hmac<Sha256>;

    #[derive(Debug, Clone)]
    pub struct HmacSha256Signer {
        hmac: Option<HmacSha256>,
    }

    impl HmacSha256Signer {
        pub fn build(signing_key: &SigningKey) -> Box<dyn SigningAlgo> {
            Box::new(HmacSha256Signer {
                hmac: Some(HmacSha256::new_from_slice(signing_key).unwrap()),
            })
        }
    }

    impl SigningAlgo for HmacSha256Signer {
        fn update(&mut self, data: &[u8]) {
            self.hmac.as_mut().unwrap().update(data);
        }

        fn finalize(&mut self) -> u128 {
            let result = self.hmac.take().unwrap().finalize().into_bytes();
            u128::from_le_bytes(result[0..16].try_into().unwrap())
        }

        fn clone_box(&self) -> Box<dyn SigningAlgo> {
            Box::new(self.clone())
        }
    }
}

#[cfg(feature = "sign_cmac")]
mod cmac_signer {
    use super::*;
    use aes::Aes128;
    use cmac::{Cmac, KeyInit};
    use hmac::Mac;

    #[derive(Debug, Clone)]
    pub struct Cmac128Signer {
        cmac: Option<Cmac<Aes128>>,
    }

    impl Cmac128Signer {
        pub fn build(signing_key: &SigningKey) -> Result<Box<dyn SigningAlgo>, CryptoError> {
            Ok(Box::new(Cmac128Signer {
                cmac: Some(Cmac::new_from_slice(signing_key)?),
            }))
        }
    }

    impl SigningAlgo for Cmac128Signer {
        fn update(&mut self, data: &[u8]) {
            self.cmac.as_mut().unwrap().update(data);
        }

        fn finalize(&mut self) -> u128 {
            u128::from_le_bytes(self.cmac.take().unwrap().finalize().into_bytes().into())
        }

        fn clone_box(&self) -> Box<dyn SigningAlgo> {
            Box::new(self.clone())
        }
    }
}

#[cfg(feature = "sign_gmac")]
mod gmac_signer {
    use crate::sync_helpers::OnceCell;

    // sft patch: GMAC computed as the message streams in (GHASH over each
    // update, then the length block and the encrypted J0), instead of
    // copying the whole message into a buffer for `Aes128Gcm` to hash at
    // the end: that copy was 1 MiB per 1 MiB read. Same tag, checked
    // against `Aes128Gcm` in the tests below.
    use aes::Aes128;
    use aes_gcm::{
        Key,
        aead::{KeyInit, array::Array},
        aes::cipher::BlockCipherEncrypt,
    };
    use binrw::prelude::*;
    use ghash::{GHash, universal_hash::UniversalHash};
    use modular_bitfield::prelude::*;

    use super::*;

    type Gmac128Nonce = [u8; 12];

    #[derive(Clone)]
    pub struct Gmac128Signer {
        cipher: Aes128,
        /// GHASH keyed with H = AES_K(0^128), before any data.
        ghash_init: GHash,
        ghash: GHash,
        nonce: OnceCell<Gmac128Nonce>,
        /// Bytes of an incomplete 16-byte block carried between updates.
        partial: [u8; 16],
        partial_len: usize,
        /// Bytes hashed so far (the AAD length of GMAC).
        total: u64,
    }
    #[allow(dead_code)]
    mod gmac_nonce {
        use super::*;
        #[bitfield]
        pub struct NonceSuffixFlags {
            #[skip(getters)]
            pub msg_id: B64,
            #[skip(getters)]
            pub is_server: bool,
            #[skip(getters)]
            pub is_cancel: bool,
            #[skip]
            __: B30,
        }
    }

    impl Gmac128Signer {
        pub fn build(key: &SigningKey) -> Box<dyn SigningAlgo> {
            let key = Key::<Aes128>::from(*key);
            let cipher = Aes128::new(&key);
            let mut h = ghash::Key::default();
            cipher.encrypt_block(&mut h);
            let ghash = GHash::new(&h);
            Box::new(Gmac128Signer {
                cipher,
                ghash_init: ghash.clone(),
                ghash,
                nonce: OnceCell::new(),
                partial: [0; 16],
                partial_len: 0,
                total: 0,
            })
        }

        fn make_nonce(header: &Header) -> Gmac128Nonce {
            debug_assert!(header.message_id > 0 && header.message_id != u64::MAX);

            gmac_nonce::NonceSuffixFlags::new()
                .with_msg_id(header.message_id)
                .with_is_cancel(header.command == Command::Cancel)
                .with_is_server(header.flags.server_to_redir())
                .into_bytes()
        }
    }

    impl super::SigningAlgo for Gmac128Signer {
        fn start(&mut self, header: &Header) {
            // The nonce is derived from the message ID.
            self.nonce.set(Self::make_nonce(header)).unwrap();
        }

        fn update(&mut self, mut data: &[u8]) {
            debug_assert!(self.nonce.get().is_some());
            self.total += data.len() as u64;
            if self.partial_len > 0 {
                let take = (16 - self.partial_len).min(data.len());
                self.partial[self.partial_len..self.partial_len + take]
                    .copy_from_slice(&data[..take]);
                self.partial_len += take;
                data = &data[take..];
                if self.partial_len < 16 {
                    return;
                }
                self.ghash.update(&[Array::from(self.partial)]);
                self.partial_len = 0;
            }
            let (blocks, rest) = Array::slice_as_chunks(data);
            self.ghash.update(blocks);
            self.partial[..rest.len()].copy_from_slice(rest);
            self.partial_len = rest.len();
        }

        fn finalize(&mut self) -> u128 {
            debug_assert!(self.nonce.get().is_some());
            let mut ghash = std::mem::replace(&mut self.ghash, self.ghash_init.clone());
            if self.partial_len > 0 {
                ghash.update_padded(&self.partial[..self.partial_len]);
            }
            // Lengths in bits: the message as AAD, no ciphertext.
            let mut lengths = ghash::Block::default();
            lengths[..8].copy_from_slice(&(self.total * 8).to_be_bytes());
            ghash.update(&[lengths]);
            let mut tag = ghash.finalize();
            // J0 = nonce || 0^31 || 1 for a 96-bit nonce; tag ^= AES_K(J0).
            let mut j0 = ghash::Block::default();
            j0[..12].copy_from_slice(self.nonce.get().unwrap());
            j0[15] = 1;
            self.cipher.encrypt_block(&mut j0);
            for (t, m) in tag.iter_mut().zip(j0.iter()) {
                *t ^= *m;
            }
            self.partial_len = 0;
            self.total = 0;
            u128::from_le_bytes(tag.into())
        }

        fn clone_box(&self) -> Box<dyn SigningAlgo> {
            Box::new(self.clone())
        }
    }

    /// sft patch: the streaming GMAC gives `Aes128Gcm`'s tag (the whole
    /// message as associated data, no plaintext) for any way of cutting
    /// the message into updates, empty and odd-sized pieces included.
    #[cfg(test)]
    mod streaming_tests {
        use super::*;
        use aes_gcm::{Aes128Gcm, aead::AeadInOut};

        fn reference(key: &[u8; 16], nonce: &Gmac128Nonce, msg: &[u8]) -> u128 {
            let gcm = Aes128Gcm::new(&Key::<Aes128>::from(*key));
            let tag = gcm
                .encrypt_inout_detached(nonce.into(), msg, (&mut [][..]).into())
                .unwrap();
            u128::from_le_bytes(tag.into())
        }

        #[test]
        fn matches_aes_gcm_for_every_split() {
            let key = [0x5a; 16];
            let mut x = 0x2545_f491_4f6c_dd1du64;
            let mut next = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 64, 100, 4096, 70_001] {
                let msg: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                for round in 0..6 {
                    // A session logoff request's header (as in the
                    // signer's test), with its own message ID.
                    let mut bytes = [0u8; 64];
                    bytes[..6].copy_from_slice(&[0xfe, 0x53, 0x4d, 0x42, 0x40, 0x00]);
                    bytes[12] = 0x02;
                    bytes[14] = 0x01;
                    bytes[24..32].copy_from_slice(&(1 + round as u64).to_le_bytes());
                    let header = Header::read_le(&mut std::io::Cursor::new(&bytes[..])).unwrap();
                    let mut signer = Gmac128Signer::build(&key);
                    signer.start(&header);
                    let nonce = Gmac128Signer::make_nonce(&header);
                    let mut at = 0;
                    while at < len {
                        let step = match round {
                            0 => len,
                            1 => 1,
                            _ => 1 + (next() as usize) % 40,
                        };
                        let end = (at + step).min(len);
                        signer.update(&msg[at..end]);
                        signer.update(&[]);
                        at = end;
                    }
                    assert_eq!(
                        signer.finalize(),
                        reference(&key, &nonce, &msg),
                        "len {len} round {round}"
                    );
                }
            }
        }
    }

    impl std::fmt::Debug for Gmac128Signer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Gmac128Signer").finish()
        }
    }
}
