//! The one module that calls aws-lc-rs.
//!
//! Signatures live here; the JWE primitives (RSA encryption, AES key wrap,
//! AES-GCM, AES-CBC with HMAC, ECDH, PBKDF2) in [`enc`].
//!
//! Everything else in the crate speaks in JOSE terms (algorithms, JWK
//! components); this module turns those into prepared aws-lc-rs keys once, so
//! the hot path (sign, verify) is a single call into the primitive.

use aws_lc_rs::encoding::{AsBigEndian, Curve25519SeedBin, EcPrivateKeyBin};
use aws_lc_rs::rand::SecureRandom;
use aws_lc_rs::signature::{self, KeyPair as _};
use aws_lc_rs::{agreement, digest, hmac, rand, rsa};
use zeroize::Zeroizing;

use crate::error::{Error, KeyError};
use crate::jwa::{EcCurve, Hash, JwsAlgorithm};

pub(crate) mod enc;

fn rejected<E>(_: E) -> Error {
    Error::Key(KeyError::Rejected)
}

/// Fills a fresh buffer with `len` random bytes.
pub(crate) fn random_bytes(len: usize) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut buf = Zeroizing::new(vec![0u8; len]);
    rand::SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| Error::Crypto)?;
    Ok(buf)
}

/// A message digest.
pub(crate) fn digest(hash: Hash, data: &[u8]) -> Vec<u8> {
    let alg = match hash {
        Hash::Sha256 => &digest::SHA256,
        Hash::Sha384 => &digest::SHA384,
        Hash::Sha512 => &digest::SHA512,
    };
    digest::digest(alg, data).as_ref().to_vec()
}

/// Constant-time equality for secrets of public length.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    #[allow(deprecated)] // the replacement is not in every aws-lc-rs 1.x
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

pub(crate) fn hmac_alg(hash: Hash) -> hmac::Algorithm {
    match hash {
        Hash::Sha256 => hmac::HMAC_SHA256,
        Hash::Sha384 => hmac::HMAC_SHA384,
        Hash::Sha512 => hmac::HMAC_SHA512,
    }
}

fn rsa_params(alg: JwsAlgorithm) -> Option<&'static signature::RsaParameters> {
    Some(match alg {
        JwsAlgorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        JwsAlgorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        JwsAlgorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        JwsAlgorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        JwsAlgorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        JwsAlgorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

fn rsa_encoding(alg: JwsAlgorithm) -> Option<&'static signature::RsaSignatureEncoding> {
    Some(match alg {
        JwsAlgorithm::RS256 => &signature::RSA_PKCS1_SHA256,
        JwsAlgorithm::RS384 => &signature::RSA_PKCS1_SHA384,
        JwsAlgorithm::RS512 => &signature::RSA_PKCS1_SHA512,
        JwsAlgorithm::PS256 => &signature::RSA_PSS_SHA256,
        JwsAlgorithm::PS384 => &signature::RSA_PSS_SHA384,
        JwsAlgorithm::PS512 => &signature::RSA_PSS_SHA512,
        _ => return None,
    })
}

fn ecdsa_signing(curve: EcCurve) -> &'static signature::EcdsaSigningAlgorithm {
    match curve {
        EcCurve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        EcCurve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        EcCurve::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
        EcCurve::Secp256k1 => &signature::ECDSA_P256K1_SHA256_FIXED_SIGNING,
    }
}

fn ecdsa_verification(curve: EcCurve) -> &'static signature::EcdsaVerificationAlgorithm {
    match curve {
        EcCurve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
        EcCurve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
        EcCurve::P521 => &signature::ECDSA_P521_SHA512_FIXED,
        EcCurve::Secp256k1 => &signature::ECDSA_P256K1_SHA256_FIXED,
    }
}

/// RSA private components (two primes, with CRT values), big-endian.
/// Zeroized on drop.
#[derive(Clone)]
pub(crate) struct RsaCrt {
    pub d: Zeroizing<Vec<u8>>,
    pub p: Zeroizing<Vec<u8>>,
    pub q: Zeroizing<Vec<u8>>,
    pub dp: Zeroizing<Vec<u8>>,
    pub dq: Zeroizing<Vec<u8>>,
    pub qi: Zeroizing<Vec<u8>>,
}

/// A key prepared for signing with one algorithm.
// Prepared once and held for the key's life; size does not matter, and
// boxing would put an indirection on the hot path.
#[allow(clippy::large_enum_variant)]
pub(crate) enum PreparedSigner {
    Hmac(hmac::Key),
    Rsa(rsa::KeyPair, &'static signature::RsaSignatureEncoding),
    Ecdsa(signature::EcdsaKeyPair),
    Ed25519(signature::Ed25519KeyPair),
}

impl PreparedSigner {
    pub(crate) fn hmac(alg: JwsAlgorithm, secret: &[u8]) -> Self {
        PreparedSigner::Hmac(hmac::Key::new(hmac_alg(alg.info().hash), secret))
    }

    pub(crate) fn rsa(alg: JwsAlgorithm, n: &[u8], e: &[u8], k: &RsaCrt) -> Result<Self, Error> {
        let enc = rsa_encoding(alg).ok_or(Error::Crypto)?;
        let components = rsa::KeyPairComponents {
            public_key: rsa::PublicKeyComponents { n, e },
            d: k.d.as_slice(),
            p: k.p.as_slice(),
            q: k.q.as_slice(),
            dP: k.dp.as_slice(),
            dQ: k.dq.as_slice(),
            qInv: k.qi.as_slice(),
        };
        let kp = rsa::KeyPair::from_components(&components).map_err(rejected)?;
        Ok(PreparedSigner::Rsa(kp, enc))
    }

    pub(crate) fn ecdsa(curve: EcCurve, d: &[u8], point: &[u8]) -> Result<Self, Error> {
        signature::EcdsaKeyPair::from_private_key_and_public_key(ecdsa_signing(curve), d, point)
            .map(PreparedSigner::Ecdsa)
            .map_err(rejected)
    }

    pub(crate) fn ed25519(seed: &[u8], public: &[u8]) -> Result<Self, Error> {
        signature::Ed25519KeyPair::from_seed_and_public_key(seed, public)
            .map(PreparedSigner::Ed25519)
            .map_err(rejected)
    }

    pub(crate) fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        match self {
            PreparedSigner::Hmac(k) => Ok(hmac::sign(k, msg).as_ref().to_vec()),
            PreparedSigner::Rsa(kp, enc) => {
                let mut sig = vec![0u8; kp.public_modulus_len()];
                kp.sign(*enc, &rand::SystemRandom::new(), msg, &mut sig)
                    .map_err(|_| Error::Crypto)?;
                Ok(sig)
            }
            PreparedSigner::Ecdsa(kp) => kp
                .sign(&rand::SystemRandom::new(), msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| Error::Crypto),
            PreparedSigner::Ed25519(kp) => kp
                .try_sign(msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| Error::Crypto),
        }
    }
}

/// A key prepared for verifying one algorithm.
#[allow(clippy::large_enum_variant)] // as for PreparedSigner
pub(crate) enum PreparedVerifier {
    Hmac(hmac::Key),
    Public(signature::ParsedPublicKey),
}

impl PreparedVerifier {
    pub(crate) fn hmac(alg: JwsAlgorithm, secret: &[u8]) -> Self {
        PreparedVerifier::Hmac(hmac::Key::new(hmac_alg(alg.info().hash), secret))
    }

    pub(crate) fn rsa(alg: JwsAlgorithm, n: &[u8], e: &[u8]) -> Result<Self, Error> {
        let params = rsa_params(alg).ok_or(Error::Crypto)?;
        rsa::PublicKeyComponents { n, e }
            .to_parsed_public_key(params)
            .map(PreparedVerifier::Public)
            .map_err(rejected)
    }

    pub(crate) fn ecdsa(curve: EcCurve, point: &[u8]) -> Result<Self, Error> {
        signature::ParsedPublicKey::new(ecdsa_verification(curve), point)
            .map(PreparedVerifier::Public)
            .map_err(rejected)
    }

    pub(crate) fn ed25519(public: &[u8]) -> Result<Self, Error> {
        signature::ParsedPublicKey::new(&signature::ED25519, public)
            .map(PreparedVerifier::Public)
            .map_err(rejected)
    }

    /// True only if `sig` is valid. HMAC tags are compared in constant time.
    pub(crate) fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match self {
            PreparedVerifier::Hmac(k) => hmac::verify(k, msg, sig).is_ok(),
            PreparedVerifier::Public(k) => k.verify_sig(msg, sig).is_ok(),
        }
    }
}

/// Generates an RSA key of `bits` (2048, 3072, 4096 or 8192): (n, e, private).
pub(crate) fn rsa_generate(bits: usize) -> Result<(Vec<u8>, Vec<u8>, RsaCrt), Error> {
    let size = match bits {
        2048 => rsa::KeySize::Rsa2048,
        3072 => rsa::KeySize::Rsa3072,
        4096 => rsa::KeySize::Rsa4096,
        8192 => rsa::KeySize::Rsa8192,
        _ if bits < 2048 => return Err(KeyError::TooWeak("RSA keys are at least 2048 bits").into()),
        _ => {
            return Err(KeyError::Unsupported(format!(
                "RSA key size {bits} (generated sizes: 2048, 3072, 4096, 8192)"
            ))
            .into())
        }
    };
    let kp = rsa::KeyPair::generate(size).map_err(|_| Error::Crypto)?;
    let der = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&kp)
        .map_err(|_| Error::Crypto)?;
    crate::jwk::pem::rsa_parts_from_pkcs8(der.as_ref())
}

/// Generates an EC key: (d, uncompressed point).
pub(crate) fn ec_generate(curve: EcCurve) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), Error> {
    let kp = signature::EcdsaKeyPair::generate(ecdsa_signing(curve)).map_err(|_| Error::Crypto)?;
    ec_parts(&kp)
}

fn ec_parts(kp: &signature::EcdsaKeyPair) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), Error> {
    let d: EcPrivateKeyBin = kp.private_key().as_be_bytes().map_err(|_| Error::Crypto)?;
    Ok((
        Zeroizing::new(d.as_ref().to_vec()),
        kp.public_key().as_ref().to_vec(),
    ))
}

/// The uncompressed public point of EC private key `d`, validating `d`.
pub(crate) fn ec_public_from_private(curve: EcCurve, d: &[u8]) -> Result<Vec<u8>, Error> {
    // aws-lc-rs derives the point when it parses an RFC 5915 ECPrivateKey.
    let der = crate::jwk::pem::sec1_private_der(curve, d, None);
    let kp = signature::EcdsaKeyPair::from_private_key_der(ecdsa_signing(curve), &der)
        .map_err(rejected)?;
    Ok(ec_parts(&kp)?.1)
}

/// Checks that `point` is a valid uncompressed point on `curve`.
pub(crate) fn ec_check_public(curve: EcCurve, point: &[u8]) -> Result<(), Error> {
    signature::ParsedPublicKey::new(ecdsa_verification(curve), point)
        .map(|_| ())
        .map_err(rejected)
}

/// Checks that `n`, `e` form an acceptable RSA public key (2048–8192 bits).
pub(crate) fn rsa_check_public(n: &[u8], e: &[u8]) -> Result<(), Error> {
    PreparedVerifier::rsa(JwsAlgorithm::RS256, n, e).map(|_| ())
}

/// Checks RSA private components for consistency.
pub(crate) fn rsa_check_private(n: &[u8], e: &[u8], k: &RsaCrt) -> Result<(), Error> {
    PreparedSigner::rsa(JwsAlgorithm::RS256, n, e, k).map(|_| ())
}

/// Generates an Ed25519 key: (seed, public).
pub(crate) fn ed25519_generate() -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), Error> {
    let kp = signature::Ed25519KeyPair::generate().map_err(|_| Error::Crypto)?;
    let seed: Curve25519SeedBin = kp
        .seed()
        .map_err(|_| Error::Crypto)?
        .as_be_bytes()
        .map_err(|_| Error::Crypto)?;
    Ok((
        Zeroizing::new(seed.as_ref().to_vec()),
        kp.public_key().as_ref().to_vec(),
    ))
}

/// The Ed25519 public key of `seed`.
pub(crate) fn ed25519_public_from_seed(seed: &[u8]) -> Result<Vec<u8>, Error> {
    let kp = signature::Ed25519KeyPair::from_seed_unchecked(seed).map_err(rejected)?;
    Ok(kp.public_key().as_ref().to_vec())
}

/// Generates an X25519 key: (private, public).
pub(crate) fn x25519_generate() -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), Error> {
    let k = agreement::PrivateKey::generate(&agreement::X25519).map_err(|_| Error::Crypto)?;
    let private: Curve25519SeedBin = k.as_be_bytes().map_err(|_| Error::Crypto)?;
    let public = k.compute_public_key().map_err(|_| Error::Crypto)?;
    Ok((
        Zeroizing::new(private.as_ref().to_vec()),
        public.as_ref().to_vec(),
    ))
}

/// The X25519 public key of `private`.
pub(crate) fn x25519_public_from_private(private: &[u8]) -> Result<Vec<u8>, Error> {
    let k =
        agreement::PrivateKey::from_private_key(&agreement::X25519, private).map_err(rejected)?;
    let public = k.compute_public_key().map_err(|_| Error::Crypto)?;
    Ok(public.as_ref().to_vec())
}

/// Whether aws-lc-rs itself parses `der` as a PKCS#8 private key (tests only).
#[cfg(test)]
pub(crate) fn pkcs8_accepted(der: &[u8]) -> bool {
    rsa::KeyPair::from_pkcs8(der).is_ok()
        || signature::EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .is_ok()
        || signature::Ed25519KeyPair::from_pkcs8(der).is_ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_zero_signature_is_rejected() {
        // CVE-2022-21449 ("psychic signatures"): r = s = 0 must never verify.
        for curve in [
            EcCurve::P256,
            EcCurve::P384,
            EcCurve::P521,
            EcCurve::Secp256k1,
        ] {
            let (_, point) = ec_generate(curve).unwrap();
            let v = PreparedVerifier::ecdsa(curve, &point).unwrap();
            let zeros = vec![0u8; 2 * curve.coordinate_len()];
            assert!(!v.verify(b"anything", &zeros));
        }
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    /// Our DER reader against aws-lc-rs's own encoder: every signing key type
    /// it writes (PKCS#8 v1 and v2, SEC 1, SPKI) imports to the same key.
    #[test]
    fn keys_encoded_by_aws_lc_import() {
        use crate::jwk::{Jwk, KeyFormat};
        use aws_lc_rs::encoding::{
            AsDer, EcPrivateKeyRfc5915Der, Pkcs8V1Der, Pkcs8V2Der, PublicKeyX509Der,
        };
        let rng = rand::SystemRandom::new();
        let public_jwk = |der: &[u8]| Jwk::from_der(der, KeyFormat::Spki).unwrap();

        for curve in [
            EcCurve::P256,
            EcCurve::P384,
            EcCurve::P521,
            EcCurve::Secp256k1,
        ] {
            let doc = signature::EcdsaKeyPair::generate_pkcs8(ecdsa_signing(curve), &rng).unwrap();
            let kp =
                signature::EcdsaKeyPair::from_pkcs8(ecdsa_signing(curve), doc.as_ref()).unwrap();
            let ours = Jwk::from_der(doc.as_ref(), KeyFormat::Pkcs8).unwrap();
            let sec1: EcPrivateKeyRfc5915Der = kp.private_key().as_der().unwrap();
            let from_sec1 = Jwk::from_der(sec1.as_ref(), KeyFormat::Sec1).unwrap();
            assert_eq!(ours.thumbprint(), from_sec1.thumbprint());
            let spki: PublicKeyX509Der = kp.public_key().as_der().unwrap();
            assert_eq!(public_jwk(spki.as_ref()).thumbprint(), ours.thumbprint());
        }

        let kp = signature::Ed25519KeyPair::generate().unwrap();
        let v1: Pkcs8V1Der = kp.as_der().unwrap();
        let v2: Pkcs8V2Der = kp.as_der().unwrap();
        let a = Jwk::from_der(v1.as_ref(), KeyFormat::Pkcs8).unwrap();
        let b = Jwk::from_der(v2.as_ref(), KeyFormat::Pkcs8).unwrap();
        assert_eq!(a.thumbprint(), b.thumbprint());
        let spki: PublicKeyX509Der = kp.public_key().as_der().unwrap();
        assert_eq!(public_jwk(spki.as_ref()).thumbprint(), a.thumbprint());

        let kp = rsa::KeyPair::generate(rsa::KeySize::Rsa2048).unwrap();
        let pkcs8: Pkcs8V1Der = kp.as_der().unwrap();
        let ours = Jwk::from_der(pkcs8.as_ref(), KeyFormat::Pkcs8).unwrap();
        let spki: PublicKeyX509Der = kp.public_key().as_der().unwrap();
        assert_eq!(public_jwk(spki.as_ref()).thumbprint(), ours.thumbprint());

        // (aws-lc-rs does not write X25519 private keys as PKCS#8; our own
        // X25519 encoding round-trips in jwk::pem's tests.)
    }
}
