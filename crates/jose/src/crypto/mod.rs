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

/// HMAC (RFC 2104) of `data` under `key`.
pub(crate) fn mac(hash: Hash, key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac_alg(hash), key);
    hmac::sign(&key, data).as_ref().to_vec()
}

/// Whether `tag` is the HMAC of `data` under `key`, in constant time.
pub(crate) fn verify_mac(hash: Hash, key: &[u8], data: &[u8], tag: &[u8]) -> bool {
    let key = hmac::Key::new(hmac_alg(hash), key);
    hmac::verify(&key, data, tag).is_ok()
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

/// p = 2^255 − 19, little-endian: the field of Curve25519 and edwards25519.
const P25519_LE: [u8; 32] = {
    let mut p = [0xff; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    p
};

/// Whether the 255-bit little-endian number in `bytes` (bit 255 ignored) is
/// below p, i.e. a canonical field element.
fn below_p25519(bytes: &[u8; 32]) -> bool {
    let mut masked = *bytes;
    if let Some(top) = masked.last_mut() {
        *top &= 0x7f;
    }
    for (b, p) in masked.iter().rev().zip(P25519_LE.iter().rev()) {
        if b != p {
            return b < p;
        }
    }
    false
}

/// The `y` of the eight small-order points of edwards25519 (the 8-torsion:
/// order 1 at y = 1, order 2 at y = −1, order 4 at y = 0, order 8 at
/// y = ±y8 with y8² = (−1 + √(1 + d)) / d, worked out from RFC 8032 §5.1's
/// curve equation and checked by the unit test below), little-endian.
const ED25519_SMALL_ORDER_Y: [[u8; 32]; 5] = {
    let mut one = [0u8; 32];
    one[0] = 1;
    let mut minus_one = P25519_LE;
    minus_one[0] = 0xec;
    [
        [0u8; 32],
        one,
        minus_one,
        [
            0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef,
            0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88,
            0x6d, 0x53, 0xfc, 0x05,
        ],
        [
            0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10,
            0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77,
            0x92, 0xac, 0x03, 0x7a,
        ],
    ]
};

/// Whether `public` is an Ed25519 public key others may register: 32 bytes,
/// a canonical encoding (`y` below p), and not one of the eight
/// small-order points. Under a small-order key, the signature (R = the
/// identity, S = 0) verifies for every message: whoever registers such a
/// key can forge anything (a `private_key_jwt` client, a partner's JWKS).
pub(crate) fn ed25519_public_ok(public: &[u8]) -> bool {
    let Ok(bytes) = <&[u8; 32]>::try_from(public) else {
        return false;
    };
    let mut y = *bytes;
    if let Some(top) = y.last_mut() {
        *top &= 0x7f;
    }
    below_p25519(&y) && !ED25519_SMALL_ORDER_Y.contains(&y)
}

/// Whether `public` is an X25519 public key others may register: 32 bytes,
/// canonical (below p, bit 255 clear: RFC 7748 §5 masks it, so a set bit is
/// a second spelling of another key), and of large order. The order is
/// asked of aws-lc itself: an agreement with a fresh key refuses (all-zero
/// output) exactly the small-order points of the curve and its twist.
pub(crate) fn x25519_public_ok(public: &[u8]) -> bool {
    let Ok(bytes) = <&[u8; 32]>::try_from(public) else {
        return false;
    };
    if bytes.last().is_some_and(|top| top & 0x80 != 0) || !below_p25519(bytes) {
        return false;
    }
    enc::agree_ephemeral(enc::AgreementCurve::X25519, public).is_ok()
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

    /// Each listed `y` really is a small-order point: under such a key A,
    /// the signature (R = identity, S = 0) verifies whenever [k]A is the
    /// identity, k = SHA-512(R ‖ A ‖ M) — one message in at most 8. Under a
    /// key of large order it would never verify. Both signs of x, so the
    /// eight points; and the list is refused at import.
    #[test]
    fn ed25519_small_order_points_forge_and_are_refused() {
        let mut identity_and_zero = [0u8; 64];
        identity_and_zero[0] = 1;
        for y in ED25519_SMALL_ORDER_Y {
            for sign in [0u8, 0x80] {
                let mut a = y;
                a[31] |= sign;
                let x_is_zero =
                    y[1..] == [0u8; 31][..] && y[0] == 1 || y == ED25519_SMALL_ORDER_Y[2];
                if x_is_zero && sign != 0 {
                    continue; // "-0": not a point encoding at all
                }
                let key = signature::UnparsedPublicKey::new(&signature::ED25519, a);
                let forged = (0u32..200)
                    .filter(|i| key.verify(&i.to_be_bytes(), &identity_and_zero).is_ok())
                    .count();
                assert!(forged > 0, "y {y:02x?} sign {sign}: not small order?");
                assert!(!ed25519_public_ok(&a), "{a:02x?}");
            }
        }
        // Non-canonical: y = p, p + 1 (the identity spelled again), 2^255 - 1.
        let mut p_plus_one = P25519_LE;
        p_plus_one[0] = 0xee;
        for a in [P25519_LE, p_plus_one, [0xff; 32]] {
            assert!(!ed25519_public_ok(&a));
        }
        let (_, good) = ed25519_generate().unwrap();
        assert!(ed25519_public_ok(&good));
        assert!(!ed25519_public_ok(&good[..31]));
        // p - y8 is the other order-8 y: the two constants add up to p.
        let (mut carry, mut sum) = (0u16, [0u8; 32]);
        for ((s, a), b) in sum
            .iter_mut()
            .zip(ED25519_SMALL_ORDER_Y[3])
            .zip(ED25519_SMALL_ORDER_Y[4])
        {
            let t = u16::from(a) + u16::from(b) + carry;
            *s = t as u8;
            carry = t >> 8;
        }
        assert_eq!(sum, P25519_LE);
    }

    #[test]
    fn x25519_small_order_and_non_canonical_keys_are_refused() {
        let (_, good) = x25519_generate().unwrap();
        assert!(x25519_public_ok(&good));
        let mut one = [0u8; 32];
        one[0] = 1;
        let mut minus_one = P25519_LE;
        minus_one[0] = 0xec;
        let mut top_bit = <[u8; 32]>::try_from(good.as_slice()).unwrap();
        top_bit[31] |= 0x80;
        // u = 0, 1, p - 1 (small order); p, p + 1 (non-canonical); a good
        // key with bit 255 set (a second spelling of it).
        let mut p_plus_one = P25519_LE;
        p_plus_one[0] = 0xee;
        for u in [[0u8; 32], one, minus_one, P25519_LE, p_plus_one, top_bit] {
            assert!(!x25519_public_ok(&u), "{u:02x?}");
        }
    }

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
