//! Key management (RFC 7518 §4): how each `alg` produces, wraps and recovers
//! the content encryption key (CEK), for keys prepared once.

use std::num::NonZeroU32;

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::b64;
use crate::crypto::enc::{
    self as prim, AgreementCurve, AgreementKey, RsaDecryptingKey, RsaEncryptingKey,
};
use crate::crypto::random_bytes;
use crate::error::{Error, JweError, KeyError};
use crate::jwa::{EcCurve, Hash, JweAlgorithm, JweEncryption, KeyManagement, OkpCurve};
use crate::jwk::{split_point, uncompressed_point, Jwk, KeyFormat, Material};

pub(crate) type Secret = Zeroizing<Vec<u8>>;

/// What a random value is for (tests replay published examples by purpose).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Cek,
    ContentIv,
    KeyWrapIv,
    Pbes2Salt,
}

/// The source of random values.
pub(crate) type Rng<'a> = &'a dyn Fn(Purpose, usize) -> Result<Secret, Error>;

pub(crate) fn system_rng(_: Purpose, len: usize) -> Result<Secret, Error> {
    random_bytes(len)
}

fn failed() -> Error {
    JweError::DecryptionFailed.into()
}

/// The curve of an ECDH key, with its JWK names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EcdhCurve {
    Ec(EcCurve),
    X25519,
}

impl EcdhCurve {
    fn agreement(self) -> Result<AgreementCurve, Error> {
        Ok(match self {
            EcdhCurve::Ec(EcCurve::P256) => AgreementCurve::P256,
            EcdhCurve::Ec(EcCurve::P384) => AgreementCurve::P384,
            EcdhCurve::Ec(EcCurve::P521) => AgreementCurve::P521,
            EcdhCurve::X25519 => AgreementCurve::X25519,
            EcdhCurve::Ec(EcCurve::Secp256k1) => {
                return Err(KeyError::Unsupported("ECDH-ES on secp256k1".into()).into())
            }
        })
    }

    /// The `epk` JWK for a public key (uncompressed point, or X25519 bytes).
    fn epk(self, public: &[u8]) -> Result<Value, Error> {
        let mut m = Map::new();
        match self {
            EcdhCurve::Ec(curve) => {
                let (x, y) = split_point(curve, public)?;
                m.insert("kty".into(), "EC".into());
                m.insert("crv".into(), curve.name().into());
                m.insert("x".into(), b64::encode(&x).into());
                m.insert("y".into(), b64::encode(&y).into());
            }
            EcdhCurve::X25519 => {
                m.insert("kty".into(), "OKP".into());
                m.insert("crv".into(), OkpCurve::X25519.name().into());
                m.insert("x".into(), b64::encode(public).into());
            }
        }
        Ok(Value::Object(m))
    }

    /// Reads an `epk`: it must be a public key of exactly this curve, and on
    /// it (the invalid-curve attack sends a point of another curve, or off
    /// the curve, to learn the recipient's private key).
    fn parse_epk(self, epk: Option<&Value>) -> Result<Vec<u8>, Error> {
        let rejected = || Error::from(JweError::EphemeralKeyRejected);
        let m = epk.and_then(Value::as_object).ok_or_else(rejected)?;
        let text = |name: &str| m.get(name).and_then(Value::as_str).ok_or_else(rejected);
        if m.contains_key("d") {
            return Err(rejected());
        }
        let point = match self {
            EcdhCurve::Ec(curve) => {
                if text("kty")? != "EC" || text("crv")? != curve.name() {
                    return Err(rejected());
                }
                let x = b64::decode(text("x")?, "epk").map_err(|_| rejected())?;
                let y = b64::decode(text("y")?, "epk").map_err(|_| rejected())?;
                let n = curve.coordinate_len();
                if x.len() != n || y.len() != n {
                    return Err(rejected());
                }
                uncompressed_point(&x, &y)
            }
            EcdhCurve::X25519 => {
                if text("kty")? != "OKP" || text("crv")? != OkpCurve::X25519.name() {
                    return Err(rejected());
                }
                let x = b64::decode(text("x")?, "epk").map_err(|_| rejected())?;
                if x.len() != 32 {
                    return Err(rejected());
                }
                x
            }
        };
        if !prim::agreement_public_ok(self.agreement()?, &point) {
            return Err(rejected());
        }
        Ok(point)
    }
}

/// RFC 7518 §4.6.2: the KDF input after Z. `AlgorithmID` is `enc` for
/// direct agreement and `alg` with key wrapping.
fn ecdh_kdf(
    z: &[u8],
    alg: JweAlgorithm,
    enc: JweEncryption,
    apu: &[u8],
    apv: &[u8],
) -> Result<Secret, Error> {
    let (algorithm_id, len) = match alg.key_management() {
        KeyManagement::EcdhEs(Some(kek_len)) => (alg.name(), kek_len),
        _ => (enc.name(), enc.key_len()),
    };
    let mut info = Vec::with_capacity(16 + algorithm_id.len() + apu.len() + apv.len());
    for field in [algorithm_id.as_bytes(), apu, apv] {
        let n = u32::try_from(field.len()).map_err(|_| Error::Crypto)?;
        info.extend_from_slice(&n.to_be_bytes());
        info.extend_from_slice(field);
    }
    let bits = u32::try_from(len * 8).map_err(|_| Error::Crypto)?;
    info.extend_from_slice(&bits.to_be_bytes());
    Ok(prim::concat_kdf(z, &info, len))
}

/// RFC 7518 §4.8.1.1: the PBKDF2 salt is `alg` || 0x00 || `p2s`.
fn pbes2_kek(
    alg: JweAlgorithm,
    hash: Hash,
    kek_len: usize,
    count: NonZeroU32,
    p2s: &[u8],
    password: &[u8],
) -> Secret {
    let mut salt = Vec::with_capacity(alg.name().len() + 1 + p2s.len());
    salt.extend_from_slice(alg.name().as_bytes());
    salt.push(0);
    salt.extend_from_slice(p2s);
    prim::pbkdf2(hash, count, &salt, password, kek_len)
}

fn oct_secret(key: &Jwk) -> Result<Secret, Error> {
    match &key.material {
        Material::Oct { k } => Ok(k.clone()),
        _ => Err(Error::Crypto),
    }
}

fn ecdh_curve(key: &Jwk) -> Result<EcdhCurve, Error> {
    match &key.material {
        Material::Ec { curve, .. } => Ok(EcdhCurve::Ec(*curve)),
        Material::Okp {
            curve: OkpCurve::X25519,
            ..
        } => Ok(EcdhCurve::X25519),
        _ => Err(Error::Crypto),
    }
}

/// The recipient's key, prepared for encrypting to it with one `alg`.
pub(crate) enum SenderKey {
    Rsa(RsaEncryptingKey),
    Secret(Secret),
    Ecdh { curve: EcdhCurve, public: Vec<u8> },
}

/// The outcome of key management on the sending side.
pub(crate) struct Wrapped {
    pub cek: Secret,
    pub encrypted_key: Vec<u8>,
    /// Header parameters the algorithm adds (`epk`, `iv`, `tag`, `p2s`, `p2c`, `apu`, `apv`).
    pub params: Map<String, Value>,
}

/// Extra inputs of some algorithms.
pub(crate) struct SenderOptions<'a> {
    pub pbes2_count: NonZeroU32,
    pub apu: Option<&'a [u8]>,
    pub apv: Option<&'a [u8]>,
}

impl SenderKey {
    /// Prepares `key` (checked with [`Jwk::check_permits_jwe`]) for `alg`.
    pub(crate) fn prepare(key: &Jwk, alg: JweAlgorithm, enc: JweEncryption) -> Result<Self, Error> {
        if alg == JweAlgorithm::RSA1_5 {
            // RFC 8725 §3.2 and RFC 7516 §11.5: never produced.
            return Err(JweError::AlgorithmNotAllowed("RSA1_5").into());
        }
        key.check_permits_jwe(false, alg, enc)?;
        Ok(match alg.key_management() {
            KeyManagement::RsaPkcs1 | KeyManagement::RsaOaep(_) => {
                let spki = key.to_public()?.to_der(KeyFormat::Spki)?;
                SenderKey::Rsa(RsaEncryptingKey::from_spki(&spki)?)
            }
            KeyManagement::EcdhEs(_) => {
                let curve = ecdh_curve(key)?;
                curve.agreement()?;
                let public = match &key.material {
                    Material::Ec { x, y, .. } => uncompressed_point(x, y),
                    Material::Okp { x, .. } => x.clone(),
                    _ => return Err(Error::Crypto),
                };
                SenderKey::Ecdh { curve, public }
            }
            KeyManagement::AesKw(_)
            | KeyManagement::AesGcmKw(_)
            | KeyManagement::Direct
            | KeyManagement::Pbes2(..) => SenderKey::Secret(oct_secret(key)?),
        })
    }

    /// Key management for one recipient. `cek` is the CEK already chosen
    /// for other recipients (`None`: choose one); direct algorithms decide
    /// the CEK themselves and refuse a given one.
    pub(crate) fn wrap(
        &self,
        alg: JweAlgorithm,
        enc: JweEncryption,
        cek: Option<&Secret>,
        options: &SenderOptions<'_>,
        rng: Rng<'_>,
    ) -> Result<Wrapped, Error> {
        let mut params = Map::new();
        if alg.is_direct() && cek.is_some() {
            return Err(JweError::InvalidHeader("dir and ECDH-ES allow one recipient only").into());
        }
        let fresh_cek = || match cek {
            Some(c) => Ok(c.clone()),
            None => rng(Purpose::Cek, enc.key_len()),
        };
        let (cek, encrypted_key) = match (alg.key_management(), self) {
            (KeyManagement::RsaOaep(hash), SenderKey::Rsa(k)) => {
                let cek = fresh_cek()?;
                let ek = k.encrypt(hash, &cek)?;
                (cek, ek)
            }
            (KeyManagement::AesKw(_), SenderKey::Secret(kek)) => {
                let cek = fresh_cek()?;
                let ek = prim::aes_kw_wrap(kek, &cek)?;
                (cek, ek)
            }
            (KeyManagement::AesGcmKw(_), SenderKey::Secret(kek)) => {
                let cek = fresh_cek()?;
                let iv = rng(Purpose::KeyWrapIv, 12)?;
                let (ek, tag) = prim::aes_gcm_seal(kek, &iv, b"", &cek)?;
                params.insert("iv".into(), b64::encode(&iv).into());
                params.insert("tag".into(), b64::encode(&tag).into());
                (cek, ek)
            }
            (KeyManagement::Direct, SenderKey::Secret(k)) => (k.clone(), Vec::new()),
            (KeyManagement::Pbes2(hash, kek_len), SenderKey::Secret(password)) => {
                let cek = fresh_cek()?;
                let p2s = rng(Purpose::Pbes2Salt, 16)?;
                let kek = pbes2_kek(alg, hash, kek_len, options.pbes2_count, &p2s, password);
                params.insert("p2s".into(), b64::encode(&p2s).into());
                params.insert("p2c".into(), options.pbes2_count.get().into());
                (cek.clone(), prim::aes_kw_wrap(&kek, &cek)?)
            }
            (KeyManagement::EcdhEs(wrap), SenderKey::Ecdh { curve, public }) => {
                let (eph, z) = prim::agree_ephemeral(curve.agreement()?, public)?;
                params.insert("epk".into(), curve.epk(&eph)?);
                let apu = options.apu.unwrap_or_default();
                let apv = options.apv.unwrap_or_default();
                if let Some(apu) = options.apu {
                    params.insert("apu".into(), b64::encode(apu).into());
                }
                if let Some(apv) = options.apv {
                    params.insert("apv".into(), b64::encode(apv).into());
                }
                let derived = ecdh_kdf(&z, alg, enc, apu, apv)?;
                match wrap {
                    None => (derived, Vec::new()),
                    Some(_) => {
                        let cek = fresh_cek()?;
                        let ek = prim::aes_kw_wrap(&derived, &cek)?;
                        (cek, ek)
                    }
                }
            }
            _ => return Err(Error::Crypto),
        };
        Ok(Wrapped {
            cek,
            encrypted_key,
            params,
        })
    }
}

/// Our key, prepared for recovering CEKs with one `alg`.
pub(crate) enum RecipientKey {
    Rsa(RsaDecryptingKey),
    Secret(Secret),
    Ecdh { key: AgreementKey, curve: EcdhCurve },
}

/// Decrypter-wide rules some algorithms need.
pub(crate) struct RecipientRules {
    pub max_pbes2_count: u32,
}

impl RecipientKey {
    /// Prepares `key` (checked with [`Jwk::check_permits_jwe`]) for `alg`.
    pub(crate) fn prepare(key: &Jwk, alg: JweAlgorithm, enc: JweEncryption) -> Result<Self, Error> {
        key.check_permits_jwe(true, alg, enc)?;
        Ok(match alg.key_management() {
            // RSA1_5 decryption was removed (no constant-time PKCS#1 v1.5
            // decryption in aws-lc-rs: the Marvin attack); DecrypterBuilder
            // refuses it first, this is the backstop.
            KeyManagement::RsaPkcs1 => return Err(JweError::AlgorithmNotAllowed(alg.name()).into()),
            KeyManagement::RsaOaep(_) => {
                let pkcs8 = key.to_der(KeyFormat::Pkcs8)?;
                RecipientKey::Rsa(RsaDecryptingKey::from_pkcs8(&pkcs8)?)
            }
            KeyManagement::EcdhEs(_) => {
                let curve = ecdh_curve(key)?;
                let d = match &key.material {
                    Material::Ec { d: Some(d), .. } | Material::Okp { d: Some(d), .. } => d,
                    _ => return Err(KeyError::NotPrivate.into()),
                };
                RecipientKey::Ecdh {
                    key: AgreementKey::from_private(curve.agreement()?, d)?,
                    curve,
                }
            }
            KeyManagement::AesKw(_)
            | KeyManagement::AesGcmKw(_)
            | KeyManagement::Direct
            | KeyManagement::Pbes2(..) => RecipientKey::Secret(oct_secret(key)?),
        })
    }

    /// Recovers the CEK for `enc` from `encrypted_key` and the joint header.
    /// Any failure that depends on secret data is `DecryptionFailed`.
    pub(crate) fn unwrap(
        &self,
        alg: JweAlgorithm,
        enc: JweEncryption,
        header: &Map<String, Value>,
        encrypted_key: &[u8],
        rules: &RecipientRules,
    ) -> Result<Secret, Error> {
        let header_b64 = |name: &'static str| -> Result<Option<Vec<u8>>, Error> {
            match header.get(name) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(b64::decode(s, name)?)),
                Some(_) => Err(JweError::InvalidHeader(name).into()),
            }
        };
        let direct_needs_empty = |cek: Secret| {
            if encrypted_key.is_empty() {
                Ok(cek)
            } else {
                // RFC 7516 §5.2 step 10 / §4.5: the encrypted key must be empty.
                Err(Error::from(JweError::Malformed(
                    "encrypted key must be empty for dir and ECDH-ES",
                )))
            }
        };
        let cek = match (alg.key_management(), self) {
            (KeyManagement::RsaOaep(hash), RecipientKey::Rsa(k)) => {
                k.decrypt_oaep(hash, encrypted_key).map_err(|_| failed())?
            }
            (KeyManagement::AesKw(_), RecipientKey::Secret(kek)) => {
                prim::aes_kw_unwrap(kek, encrypted_key).map_err(|_| failed())?
            }
            (KeyManagement::AesGcmKw(_), RecipientKey::Secret(kek)) => {
                let iv = header_b64("iv")?.ok_or(JweError::InvalidHeader("iv missing"))?;
                let tag = header_b64("tag")?.ok_or(JweError::InvalidHeader("tag missing"))?;
                if iv.len() != 12 || tag.len() != 16 {
                    return Err(JweError::InvalidHeader("iv or tag of the wrong length").into());
                }
                prim::aes_gcm_open(kek, &iv, b"", encrypted_key, &tag).map_err(|_| failed())?
            }
            (KeyManagement::Direct, RecipientKey::Secret(k)) => direct_needs_empty(k.clone())?,
            (KeyManagement::Pbes2(hash, kek_len), RecipientKey::Secret(password)) => {
                let count = match header.get("p2c") {
                    Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
                    _ => 0,
                };
                let bounded = u32::try_from(count)
                    .ok()
                    .filter(|c| *c <= rules.max_pbes2_count)
                    .and_then(NonZeroU32::new)
                    .ok_or(JweError::Pbes2Count {
                        p2c: count,
                        limit: rules.max_pbes2_count,
                    })?;
                let p2s = header_b64("p2s")
                    .map_err(|_| JweError::Pbes2Salt)?
                    .filter(|s| s.len() >= 8)
                    .ok_or(JweError::Pbes2Salt)?;
                let kek = pbes2_kek(alg, hash, kek_len, bounded, &p2s, password);
                prim::aes_kw_unwrap(&kek, encrypted_key).map_err(|_| failed())?
            }
            (KeyManagement::EcdhEs(wrap), RecipientKey::Ecdh { key, curve }) => {
                let peer = curve.parse_epk(header.get("epk"))?;
                let apu = header_b64("apu")?.unwrap_or_default();
                let apv = header_b64("apv")?.unwrap_or_default();
                let z = key
                    .agree(&peer)
                    .map_err(|_| JweError::EphemeralKeyRejected)?;
                let derived = ecdh_kdf(&z, alg, enc, &apu, &apv)?;
                match wrap {
                    None => direct_needs_empty(derived)?,
                    Some(_) => {
                        prim::aes_kw_unwrap(&derived, encrypted_key).map_err(|_| failed())?
                    }
                }
            }
            _ => return Err(JweError::NoSuitableKey.into()),
        };
        if cek.len() != enc.key_len() {
            return Err(failed());
        }
        Ok(cek)
    }
}
