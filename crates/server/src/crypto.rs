//! The server's one aws-lc-rs caller: sealing private keys at rest with the
//! master key (AES-256-GCM, the key id bound as additional data),
//! deriving purpose-bound HMAC keys from it (HKDF-SHA256, for the audit
//! trail) and drawing random bytes. Token cryptography lives in tessera-jose.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// A sealing failure: wrong master key, or tampered data. Says nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("sealed data could not be opened (wrong master key, or tampered)")]
pub struct OpenFailed;

/// Fills a fresh buffer with `len` random bytes from the OS CSPRNG.
pub fn random_bytes(len: usize) -> Result<Zeroizing<Vec<u8>>, OpenFailed> {
    let mut buf = Zeroizing::new(vec![0u8; len]);
    SystemRandom::new().fill(&mut buf).map_err(|_| OpenFailed)?;
    Ok(buf)
}

/// SHA-256 (refresh tokens are stored only as this hash: they carry 256
/// random bits, so a fast hash is enough).
pub fn sha256(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

/// A key for [`Mac::tag`], drawn at random for the life of the process.
pub struct Mac(aws_lc_rs::hmac::Key);

impl std::fmt::Debug for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mac(..)")
    }
}

impl Mac {
    /// A fresh random HMAC-SHA256 key.
    pub fn random() -> Result<Self, OpenFailed> {
        let raw = random_bytes(32)?;
        Ok(Mac(aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            &raw,
        )))
    }

    /// Plain HMAC-SHA256 of `data` (one input, nothing prefixed): for
    /// values others may recompute from the specification alone.
    pub fn sign(&self, data: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(aws_lc_rs::hmac::sign(&self.0, data).as_ref());
        out
    }

    /// Whether `tag` is [`Mac::sign`] of `data` (compared in constant time).
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        aws_lc_rs::hmac::verify(&self.0, data, tag).is_ok()
    }

    /// Whether `tag` is [`Mac::tag`] of `parts` (compared in constant time).
    pub fn verify_tag(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(&self.tag(parts), tag).is_ok()
    }

    /// HMAC-SHA256 over `parts`, each length-prefixed so that no two
    /// different lists give the same input.
    pub fn tag(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.0);
        for part in parts {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }
}

/// A fresh random token: `bytes` random bytes, base64url.
pub fn random_token(bytes: usize) -> Result<Zeroizing<String>, OpenFailed> {
    let raw = random_bytes(bytes)?;
    Ok(Zeroizing::new(tessera_jose::b64::encode(raw.as_slice())))
}

/// The master key: 32 bytes, zeroized on drop, never printed.
pub struct MasterKey {
    key: LessSafeKey,
    /// HKDF-SHA256 pseudorandom key extracted from the same 32 bytes: the
    /// root of every key derived for one purpose ([`MasterKey::derive_mac`]),
    /// so that no derived key reveals the sealing key or another purpose's.
    prk: aws_lc_rs::hkdf::Prk,
}

/// The HKDF salt (RFC 5869 §3.1: a fixed, non-secret, application value).
const DERIVATION_SALT: &[u8] = b"tessera master key derivation v1";

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// From exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 32 {
            return None;
        }
        let key = UnboundKey::new(&aead::AES_256_GCM, bytes).ok()?;
        let prk = aws_lc_rs::hkdf::Salt::new(aws_lc_rs::hkdf::HKDF_SHA256, DERIVATION_SALT)
            .extract(bytes);
        Some(MasterKey {
            key: LessSafeKey::new(key),
            prk,
        })
    }

    /// An HMAC-SHA256 key for one purpose, named by `label` (the HKDF
    /// `info`): the same master key and label always give the same key,
    /// different labels unrelated keys.
    pub fn derive_mac(&self, label: &str) -> Result<Mac, OpenFailed> {
        let info = [label.as_bytes()];
        let okm = self
            .prk
            .expand(&info, aws_lc_rs::hmac::HMAC_SHA256)
            .map_err(|_| OpenFailed)?;
        Ok(Mac(aws_lc_rs::hmac::Key::from(okm)))
    }

    /// 32 secret bytes for one purpose, named by `label` (the HKDF
    /// `info`), for a library that takes its key as bytes: the same master
    /// key and label always give the same bytes.
    pub fn derive_secret(&self, label: &str) -> Result<Zeroizing<[u8; 32]>, OpenFailed> {
        let info = [label.as_bytes()];
        let okm = self
            .prk
            .expand(&info, aws_lc_rs::hkdf::HKDF_SHA256)
            .map_err(|_| OpenFailed)?;
        let mut out = Zeroizing::new([0u8; 32]);
        okm.fill(out.as_mut_slice()).map_err(|_| OpenFailed)?;
        Ok(out)
    }

    /// Seals `plaintext` for the record named `label` (a key id): a fresh
    /// 96-bit nonce, then ciphertext and tag.
    pub fn seal(&self, label: &str, plaintext: &[u8]) -> Result<Vec<u8>, OpenFailed> {
        let nonce_bytes = random_bytes(NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(&nonce_bytes).map_err(|_| OpenFailed)?;
        let mut out = nonce_bytes.to_vec();
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(nonce, Aad::from(label.as_bytes()), &mut body)
            .map_err(|_| OpenFailed)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens what [`MasterKey::seal`] sealed under the same `label`.
    pub fn open(&self, label: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenFailed> {
        if sealed.len() < NONCE_LEN {
            return Err(OpenFailed);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenFailed)?;
        let mut buf = Zeroizing::new(body.to_vec());
        let n = self
            .key
            .open_in_place(nonce, Aad::from(label.as_bytes()), &mut buf)
            .map_err(|_| OpenFailed)?
            .len();
        buf.truncate(n);
        Ok(buf)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sealed_records_are_bound_to_their_label_and_key() {
        let k = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        let sealed = k.seal("kid-1", b"private key").unwrap();
        assert_eq!(k.open("kid-1", &sealed).unwrap().as_slice(), b"private key");
        assert_eq!(k.open("kid-2", &sealed), Err(OpenFailed));
        let other = MasterKey::from_bytes(&[8u8; 32]).unwrap();
        assert_eq!(other.open("kid-1", &sealed), Err(OpenFailed));
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(k.open("kid-1", &tampered), Err(OpenFailed));
        assert_ne!(
            k.seal("kid-1", b"private key").unwrap(),
            sealed,
            "fresh nonce"
        );
        assert!(MasterKey::from_bytes(&[0u8; 31]).is_none());
        assert_eq!(format!("{k:?}"), "MasterKey(..)");
    }

    #[test]
    fn derived_macs_are_bound_to_their_label_and_master_key() {
        let k = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        let a = k.derive_mac("tessera audit chain v1").unwrap();
        let b = k.derive_mac("tessera audit secrets v1").unwrap();
        let a_again = MasterKey::from_bytes(&[7u8; 32])
            .unwrap()
            .derive_mac("tessera audit chain v1")
            .unwrap();
        let other = MasterKey::from_bytes(&[8u8; 32])
            .unwrap()
            .derive_mac("tessera audit chain v1")
            .unwrap();
        assert_eq!(a.sign(b"x"), a_again.sign(b"x"), "same label, same key");
        assert_ne!(a.sign(b"x"), b.sign(b"x"), "labels separate keys");
        assert_ne!(a.sign(b"x"), other.sign(b"x"), "another master key");
        assert_eq!(a.tag(&[b"x"]), a_again.tag(&[b"x"]));
        assert_ne!(a.sign(b"x"), a.tag(&[b"x"]), "tag length-prefixes");
        // Sealing is unchanged by the derivation.
        let sealed = k.seal("kid-1", b"data").unwrap();
        assert_eq!(k.open("kid-1", &sealed).unwrap().as_slice(), b"data");
    }
}
