//! The JWE primitives, on aws-lc-rs: RSA-OAEP, AES Key Wrap, AES-GCM, AES-CBC
//! with HMAC-SHA-2 (RFC 7518 §5.2), ECDH on the NIST curves and X25519,
//! PBKDF2.
//!
//! Every function here works on raw bytes; JOSE structure (headers, base64url,
//! which key serves which algorithm) lives in `crate::jwe`. Failures that
//! depend on secret data (a wrong tag, a bad unwrap, bad padding) all map to
//! [`Failed`], which the caller turns into one uninformative error.

use std::num::NonZeroU32;

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::agreement::{self, UnparsedPublicKey};
use aws_lc_rs::cipher::{
    self, DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext,
    PaddedBlockDecryptingKey, PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::key_wrap::{self, AesKek, KeyWrap as _};
use aws_lc_rs::{hmac, pbkdf2, rsa};
use zeroize::{Zeroize, Zeroizing};

use super::{constant_time_eq, hmac_alg, rejected};
use crate::error::Error;
use crate::jwa::{Hash, JweEncryption};

/// A decryption or unwrap failed. Carries nothing, on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failed;

type Secret = Zeroizing<Vec<u8>>;

fn aes_cipher(key_len: usize) -> Result<&'static cipher::Algorithm, Error> {
    match key_len {
        16 => Ok(&cipher::AES_128),
        24 => Ok(&cipher::AES_192),
        32 => Ok(&cipher::AES_256),
        _ => Err(Error::Crypto),
    }
}

// ---------------------------------------------------------------- AES Key Wrap

/// The RFC 3394 §2.2.3.1 default initial value.
const KW_IV: [u8; 8] = [0xA6; 8];

/// AES Key Wrap (RFC 3394) of `data` (a multiple of 8 bytes, at least 16)
/// under `kek` (16, 24 or 32 bytes).
pub(crate) fn aes_kw_wrap(kek: &[u8], data: &[u8]) -> Result<Vec<u8>, Error> {
    if data.len() < 16 || data.len() % 8 != 0 {
        return Err(Error::Crypto);
    }
    let Some(kek) = aws_lc_kek(kek).map_err(|_| Error::Crypto)? else {
        // aws-lc-rs's key_wrap module has no AES-192: RFC 3394 over AES-192 ECB.
        return rfc3394_wrap(kek, data);
    };
    let mut out = vec![0u8; data.len() + 8];
    let n = kek.wrap(data, &mut out).map_err(|_| Error::Crypto)?.len();
    out.truncate(n);
    Ok(out)
}

/// aws-lc's key-encryption key for 16- and 32-byte keys; `None` for 24
/// bytes (our own RFC 3394 code serves AES-192); an error otherwise.
fn aws_lc_kek(kek: &[u8]) -> Result<Option<AesKek>, Failed> {
    let cipher = match kek.len() {
        16 => &key_wrap::AES_128,
        32 => &key_wrap::AES_256,
        24 => return Ok(None),
        _ => return Err(Failed),
    };
    AesKek::new(cipher, kek).map(Some).map_err(|_| Failed)
}

/// Unwraps `wrapped` under `kek`; fails on any integrity-check mismatch.
pub(crate) fn aes_kw_unwrap(kek: &[u8], wrapped: &[u8]) -> Result<Secret, Failed> {
    if wrapped.len() < 24 || wrapped.len() % 8 != 0 {
        return Err(Failed);
    }
    let Some(kek) = aws_lc_kek(kek)? else {
        return rfc3394_unwrap(kek, wrapped);
    };
    let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
    let n = kek.unwrap(wrapped, &mut out).map_err(|_| Failed)?.len();
    out.truncate(n);
    Ok(out)
}

/// RFC 3394's 64-bit registers R[1..n], from exact 8-byte chunks.
fn semiblocks(chunks: std::slice::ChunksExact<'_, u8>) -> Vec<[u8; 8]> {
    chunks
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            b
        })
        .collect()
}

fn xor_counter(a: &mut [u8; 8], t: u64) {
    for (x, y) in a.iter_mut().zip(t.to_be_bytes()) {
        *x ^= y;
    }
}

/// RFC 3394 §2.2.1, index-based form, one AES block operation per step.
fn rfc3394_wrap(kek: &[u8], data: &[u8]) -> Result<Vec<u8>, Error> {
    let key = EncryptingKey::ecb(
        UnboundCipherKey::new(aes_cipher(kek.len())?, kek).map_err(|_| Error::Crypto)?,
    )
    .map_err(|_| Error::Crypto)?;
    let mut a = KW_IV;
    let mut r = semiblocks(data.chunks_exact(8));
    let n = r.len() as u64;
    let mut block = Zeroizing::new([0u8; 16]);
    for j in 0..6u64 {
        for (i, ri) in r.iter_mut().enumerate() {
            let (hi, lo) = block.split_at_mut(8);
            hi.copy_from_slice(&a);
            lo.copy_from_slice(ri);
            key.encrypt(block.as_mut_slice())
                .map_err(|_| Error::Crypto)?;
            let (hi, lo) = block.split_at(8);
            a.copy_from_slice(hi);
            xor_counter(&mut a, n * j + i as u64 + 1);
            ri.copy_from_slice(lo);
        }
    }
    let mut out = Vec::with_capacity(data.len() + 8);
    out.extend_from_slice(&a);
    for ri in &r {
        out.extend_from_slice(ri);
    }
    r.iter_mut().for_each(|b| b.zeroize());
    Ok(out)
}

/// RFC 3394 §2.2.2, with the integrity check of §2.2.3 in constant time.
fn rfc3394_unwrap(kek: &[u8], wrapped: &[u8]) -> Result<Secret, Failed> {
    let key = DecryptingKey::ecb(
        UnboundCipherKey::new(aes_cipher(kek.len()).map_err(|_| Failed)?, kek)
            .map_err(|_| Failed)?,
    )
    .map_err(|_| Failed)?;
    let mut chunks = wrapped.chunks_exact(8);
    let mut a = [0u8; 8];
    a.copy_from_slice(chunks.next().ok_or(Failed)?);
    let mut r = semiblocks(chunks);
    let n = r.len() as u64;
    let mut block = Zeroizing::new([0u8; 16]);
    for j in (0..6u64).rev() {
        for (i, ri) in r.iter_mut().enumerate().rev() {
            xor_counter(&mut a, n * j + i as u64 + 1);
            let (hi, lo) = block.split_at_mut(8);
            hi.copy_from_slice(&a);
            lo.copy_from_slice(ri);
            key.decrypt(block.as_mut_slice(), DecryptionContext::None)
                .map_err(|_| Failed)?;
            let (hi, lo) = block.split_at(8);
            a.copy_from_slice(hi);
            ri.copy_from_slice(lo);
        }
    }
    let mut out = Zeroizing::new(Vec::with_capacity(wrapped.len() - 8));
    for ri in &r {
        out.extend_from_slice(ri);
    }
    r.iter_mut().for_each(|b| b.zeroize());
    if constant_time_eq(&a, &KW_IV) {
        Ok(out)
    } else {
        Err(Failed)
    }
}

// ------------------------------------------------------------------- AES-GCM

fn gcm_key(key: &[u8]) -> Result<LessSafeKey, Failed> {
    let alg = match key.len() {
        16 => &aead::AES_128_GCM,
        24 => &aead::AES_192_GCM,
        32 => &aead::AES_256_GCM,
        _ => return Err(Failed),
    };
    Ok(LessSafeKey::new(
        UnboundKey::new(alg, key).map_err(|_| Failed)?,
    ))
}

/// AES-GCM encryption with a 96-bit IV: (ciphertext, 128-bit tag).
pub(crate) fn aes_gcm_seal(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let key = gcm_key(key).map_err(|_| Error::Crypto)?;
    let nonce = Nonce::try_assume_unique_for_key(iv).map_err(|_| Error::Crypto)?;
    let mut buf = plaintext.to_vec();
    let tag = key
        .seal_in_place_separate_tag(nonce, Aad::from(aad), &mut buf)
        .map_err(|_| Error::Crypto)?;
    Ok((buf, tag.as_ref().to_vec()))
}

/// AES-GCM decryption; the tag must be the full 16 bytes.
pub(crate) fn aes_gcm_open(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<Secret, Failed> {
    if tag.len() != 16 || iv.len() != 12 {
        return Err(Failed);
    }
    let key = gcm_key(key)?;
    let nonce = Nonce::try_assume_unique_for_key(iv).map_err(|_| Failed)?;
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let n = key
        .open_in_place_separate_tag(nonce, Aad::from(aad), tag, &mut buf)
        .map_err(|_| Failed)?
        .len();
    buf.truncate(n);
    Ok(buf)
}

// ------------------------------------------------------- content encryption

/// RFC 7518 §5.2.2.1 step 5: the MAC over AAD || IV || ciphertext || AL.
fn cbc_hmac_tag(enc: JweEncryption, mac_key: &[u8], aad: &[u8], iv: &[u8], ct: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac_alg(enc.mac_hash()), mac_key);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(aad);
    ctx.update(iv);
    ctx.update(ct);
    let al = (aad.len() as u64).wrapping_mul(8);
    ctx.update(&al.to_be_bytes());
    let mut tag = ctx.sign().as_ref().to_vec();
    tag.truncate(enc.tag_len());
    tag
}

/// Encrypts content with `enc`: (ciphertext, tag). `iv` is `enc.iv_len()` bytes.
pub(crate) fn content_encrypt(
    enc: JweEncryption,
    cek: &[u8],
    iv: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), Error> {
    if cek.len() != enc.key_len() || iv.len() != enc.iv_len() {
        return Err(Error::Crypto);
    }
    if enc.is_gcm() {
        return aes_gcm_seal(cek, iv, aad, plaintext);
    }
    let (mac_key, enc_key) = cek.split_at(cek.len() / 2);
    let key = PaddedBlockEncryptingKey::cbc_pkcs7(
        UnboundCipherKey::new(aes_cipher(enc_key.len())?, enc_key).map_err(|_| Error::Crypto)?,
    )
    .map_err(|_| Error::Crypto)?;
    let mut iv16 = [0u8; 16];
    iv16.copy_from_slice(iv);
    let mut ct = plaintext.to_vec();
    key.less_safe_encrypt(&mut ct, EncryptionContext::Iv128(iv16.into()))
        .map_err(|_| Error::Crypto)?;
    let tag = cbc_hmac_tag(enc, mac_key, aad, iv, &ct);
    Ok((ct, tag))
}

/// Decrypts content with `enc`. The tag must be full length; for CBC-HMAC it
/// is checked in constant time before anything is decrypted.
pub(crate) fn content_decrypt(
    enc: JweEncryption,
    cek: &[u8],
    iv: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<Secret, Failed> {
    if cek.len() != enc.key_len() || iv.len() != enc.iv_len() || tag.len() != enc.tag_len() {
        return Err(Failed);
    }
    if enc.is_gcm() {
        return aes_gcm_open(cek, iv, aad, ciphertext, tag);
    }
    let (mac_key, enc_key) = cek.split_at(cek.len() / 2);
    let expected = cbc_hmac_tag(enc, mac_key, aad, iv, ciphertext);
    if !constant_time_eq(&expected, tag) {
        return Err(Failed);
    }
    let key = PaddedBlockDecryptingKey::cbc_pkcs7(
        UnboundCipherKey::new(aes_cipher(enc_key.len()).map_err(|_| Failed)?, enc_key)
            .map_err(|_| Failed)?,
    )
    .map_err(|_| Failed)?;
    let mut iv16 = [0u8; 16];
    iv16.copy_from_slice(iv);
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let n = key
        .decrypt(&mut buf, DecryptionContext::Iv128(iv16.into()))
        .map_err(|_| Failed)?
        .len();
    buf.truncate(n);
    Ok(buf)
}

// ----------------------------------------------------------------------- RSA

fn oaep(hash: Option<Hash>) -> &'static rsa::OaepAlgorithm {
    match hash {
        None => &rsa::OAEP_SHA1_MGF1SHA1,
        Some(Hash::Sha256) => &rsa::OAEP_SHA256_MGF1SHA256,
        Some(Hash::Sha384) => &rsa::OAEP_SHA384_MGF1SHA384,
        Some(Hash::Sha512) => &rsa::OAEP_SHA512_MGF1SHA512,
    }
}

/// An RSA public key prepared for RSAES-OAEP.
pub(crate) struct RsaEncryptingKey(rsa::OaepPublicEncryptingKey);

impl RsaEncryptingKey {
    /// From a DER SubjectPublicKeyInfo.
    pub(crate) fn from_spki(der: &[u8]) -> Result<Self, Error> {
        let key = rsa::PublicEncryptingKey::from_der(der).map_err(rejected)?;
        rsa::OaepPublicEncryptingKey::new(key)
            .map(RsaEncryptingKey)
            .map_err(rejected)
    }

    /// RSAES-OAEP with `hash` (`None`: SHA-1) for OAEP and MGF1, no label.
    pub(crate) fn encrypt(&self, hash: Option<Hash>, data: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = vec![0u8; self.0.ciphertext_size()];
        let n = self
            .0
            .encrypt(oaep(hash), data, &mut out, None)
            .map_err(|_| Error::Crypto)?
            .len();
        out.truncate(n);
        Ok(out)
    }
}

/// An RSA private key prepared for RSAES-OAEP, the one RSA decryption
/// scheme tessera has. RSAES-PKCS1-v1_5 (`RSA1_5`) is gone: aws-lc-rs's
/// PKCS#1 v1.5 decryption takes an error path on bad padding, a timing
/// signal (the Marvin attack), and offers no raw RSA operation on which
/// constant-time implicit rejection could be built.
pub(crate) struct RsaDecryptingKey(rsa::OaepPrivateDecryptingKey);

impl RsaDecryptingKey {
    /// From a DER PKCS#8 private key.
    pub(crate) fn from_pkcs8(der: &[u8]) -> Result<Self, Error> {
        let key = rsa::PrivateDecryptingKey::from_pkcs8(der).map_err(rejected)?;
        rsa::OaepPrivateDecryptingKey::new(key)
            .map(RsaDecryptingKey)
            .map_err(rejected)
    }

    /// RSAES-OAEP decryption.
    pub(crate) fn decrypt_oaep(&self, hash: Option<Hash>, ct: &[u8]) -> Result<Secret, Failed> {
        let key = &self.0;
        let mut out = Zeroizing::new(vec![0u8; key.min_output_size()]);
        let n = key
            .decrypt(oaep(hash), ct, &mut out, None)
            .map_err(|_| Failed)?
            .len();
        out.truncate(n);
        Ok(out)
    }
}

// ---------------------------------------------------------------------- ECDH

/// A key-agreement curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AgreementCurve {
    P256,
    P384,
    P521,
    X25519,
}

impl AgreementCurve {
    fn algorithm(self) -> &'static agreement::Algorithm {
        match self {
            AgreementCurve::P256 => &agreement::ECDH_P256,
            AgreementCurve::P384 => &agreement::ECDH_P384,
            AgreementCurve::P521 => &agreement::ECDH_P521,
            AgreementCurve::X25519 => &agreement::X25519,
        }
    }
}

fn agree(
    private: &agreement::PrivateKey,
    curve: AgreementCurve,
    peer: &[u8],
) -> Result<Secret, Failed> {
    // aws-lc parses the peer's point (uncompressed SEC1, or 32 raw bytes for
    // X25519) and refuses points off the curve; X25519 outputs of all zeros
    // (small-order points) are refused by aws-lc and again here.
    let z = agreement::agree(
        private,
        UnparsedPublicKey::new(curve.algorithm(), peer),
        Failed,
        |z| Ok(Zeroizing::new(z.to_vec())),
    )?;
    if z.iter().all(|b| *b == 0) {
        return Err(Failed);
    }
    Ok(z)
}

/// A static private key for ECDH (the JWE recipient's).
pub(crate) struct AgreementKey {
    key: agreement::PrivateKey,
    curve: AgreementCurve,
}

impl AgreementKey {
    /// From the private scalar (EC: big-endian, coordinate length; X25519: 32 bytes).
    pub(crate) fn from_private(curve: AgreementCurve, d: &[u8]) -> Result<Self, Error> {
        let key =
            agreement::PrivateKey::from_private_key(curve.algorithm(), d).map_err(rejected)?;
        Ok(AgreementKey { key, curve })
    }

    /// The shared secret Z with the peer's public key (uncompressed point or X25519 bytes).
    pub(crate) fn agree(&self, peer: &[u8]) -> Result<Secret, Failed> {
        agree(&self.key, self.curve, peer)
    }
}

/// A fresh ephemeral key agreed with `peer`: (ephemeral public key, Z).
pub(crate) fn agree_ephemeral(
    curve: AgreementCurve,
    peer: &[u8],
) -> Result<(Vec<u8>, Secret), Error> {
    let eph = agreement::PrivateKey::generate(curve.algorithm()).map_err(|_| Error::Crypto)?;
    let public = eph.compute_public_key().map_err(|_| Error::Crypto)?;
    let z = agree(&eph, curve, peer).map_err(|_| Error::Crypto)?;
    Ok((public.as_ref().to_vec(), z))
}

/// Whether `point` is a valid public key on `curve` (used for `epk` checks).
pub(crate) fn agreement_public_ok(curve: AgreementCurve, point: &[u8]) -> bool {
    use std::convert::TryFrom;
    agreement::ParsedPublicKey::try_from(UnparsedPublicKey::new(curve.algorithm(), point)).is_ok()
}

/// The Concat KDF of NIST SP 800-56A §5.8.1 with SHA-256, as RFC 7518
/// §4.6.2 uses it: `out_len` bytes from Z and the already-encoded OtherInfo.
pub(crate) fn concat_kdf(z: &[u8], other_info: &[u8], out_len: usize) -> Secret {
    let mut out = Zeroizing::new(Vec::with_capacity(out_len + 32));
    let mut counter: u32 = 1;
    while out.len() < out_len {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        ctx.update(&counter.to_be_bytes());
        ctx.update(z);
        ctx.update(other_info);
        out.extend_from_slice(ctx.finish().as_ref());
        counter = counter.wrapping_add(1);
    }
    out.truncate(out_len);
    out
}

// -------------------------------------------------------------------- PBKDF2

/// PBKDF2 with HMAC-`hash` (RFC 8018 §5.2).
pub(crate) fn pbkdf2(
    hash: Hash,
    iterations: NonZeroU32,
    salt: &[u8],
    password: &[u8],
    out_len: usize,
) -> Secret {
    let alg = match hash {
        Hash::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
        Hash::Sha384 => pbkdf2::PBKDF2_HMAC_SHA384,
        Hash::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
    };
    let mut out = Zeroizing::new(vec![0u8; out_len]);
    pbkdf2::derive(alg, iterations, salt, password, &mut out);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 3394 §4.1–§4.6: every KEK size, every key-data size.
    #[test]
    fn rfc3394_vectors() {
        let kek = hex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
        let data = hex("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F");
        let cases: &[(usize, usize, &str)] = &[
            (16, 16, "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"),
            (24, 16, "96778B25AE6CA435F92B5B97C050AED2468AB8A17AD84E5D"),
            (32, 16, "64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7"),
            (
                24,
                24,
                "031D33264E15D33268F24EC260743EDCE1C6C7DDEE725A936BA814915C6762D2",
            ),
            (
                32,
                24,
                "A8F9BC1612C68B3FF6E6F4FBE30E71E4769C8B80A32CB8958CD5D17D6B254DA1",
            ),
            (
                32,
                32,
                "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21",
            ),
        ];
        for (kek_len, data_len, expected) in cases {
            let kek = &kek[..*kek_len];
            let data = &data[..*data_len];
            let wrapped = aes_kw_wrap(kek, data).unwrap();
            assert_eq!(wrapped, hex(expected), "KEK {kek_len} data {data_len}");
            assert_eq!(aes_kw_unwrap(kek, &wrapped).unwrap().as_slice(), data);
            // Our RFC 3394 code agrees with aws-lc's on every size.
            assert_eq!(rfc3394_wrap(kek, data).unwrap(), wrapped);
            assert_eq!(rfc3394_unwrap(kek, &wrapped).unwrap().as_slice(), data);
            let mut bad = wrapped.clone();
            bad[5] ^= 1;
            assert_eq!(aes_kw_unwrap(kek, &bad), Err(Failed));
            assert_eq!(rfc3394_unwrap(kek, &bad), Err(Failed));
        }
    }

    /// Every content algorithm round-trips; a changed tag, IV, AAD or
    /// ciphertext, or a truncated tag, fails (RFC 7516 A.1–A.3 and the
    /// cookbook check the exact bytes in tests/all).
    #[test]
    fn content_round_trip_and_tamper() {
        let p = b"Live long and prosper.".to_vec();
        let aad = b"eyJhbGciOiJkaXIifQ".to_vec();
        for enc in JweEncryption::ALL.iter().copied() {
            let k: Vec<u8> = (0..enc.key_len() as u8).collect();
            let iv: Vec<u8> = (100..100 + enc.iv_len() as u8).collect();
            let (ct, t) = content_encrypt(enc, &k, &iv, &aad, &p).unwrap();
            assert_eq!(t.len(), enc.tag_len());
            let open = |k: &[u8], iv: &[u8], aad: &[u8], ct: &[u8], t: &[u8]| {
                content_decrypt(enc, k, iv, aad, ct, t)
            };
            assert_eq!(open(&k, &iv, &aad, &ct, &t).unwrap().as_slice(), &p[..]);
            let flip = |v: &[u8]| {
                let mut v = v.to_vec();
                v[0] ^= 1;
                v
            };
            assert!(open(&k, &iv, &aad, &ct, &flip(&t)).is_err(), "{enc} tag");
            assert!(open(&k, &flip(&iv), &aad, &ct, &t).is_err(), "{enc} iv");
            assert!(open(&k, &iv, &flip(&aad), &ct, &t).is_err(), "{enc} aad");
            assert!(open(&k, &iv, &aad, &flip(&ct), &t).is_err(), "{enc} ct");
            assert!(open(&flip(&k), &iv, &aad, &ct, &t).is_err(), "{enc} key");
            assert!(
                open(&k, &iv, &aad, &ct, &t[..t.len() - 1]).is_err(),
                "{enc} short tag"
            );
            let mut long = t.clone();
            long.push(0);
            assert!(open(&k, &iv, &aad, &ct, &long).is_err(), "{enc} long tag");
        }
    }

    /// RFC 8037 Appendix A.6 (the RFC 7748 §6.1 keys): Bob's static key and
    /// the ephemeral public key agree on Z = 4a5d9d5b…161742, both ways.
    #[test]
    fn rfc8037_a6_x25519_agreement() {
        let bob_d = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
        let bob_x = hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        let eph_d = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let eph_x = hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        let z = hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        let bob = AgreementKey::from_private(AgreementCurve::X25519, &bob_d).unwrap();
        assert_eq!(bob.agree(&eph_x).unwrap().as_slice(), &z[..]);
        let eph = AgreementKey::from_private(AgreementCurve::X25519, &eph_d).unwrap();
        assert_eq!(eph.agree(&bob_x).unwrap().as_slice(), &z[..]);
        assert_eq!(
            crate::b64::encode(&bob_x),
            "3p7bfXt9wbTTW2HC7OQ1Nz-DQ8hbeGdNrfx-FG-IK08"
        );
        assert_eq!(
            crate::b64::encode(&eph_x),
            "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"
        );
        // A small-order point yields an all-zero secret: refused.
        assert_eq!(bob.agree(&[0u8; 32]), Err(Failed));
    }
}
