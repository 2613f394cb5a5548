//! JSON Web Keys (RFC 7517, RFC 7518 §6, RFC 8037) and JWK Sets, RFC 7638
//! thumbprints, generation, and PEM/DER import and export.
//!
//! A [`Jwk`] is validated when it is parsed: sizes, curve points, private/public
//! consistency, RSA of at least 2048 bits with an exponent of at least 65537
//! and no ROCA fingerprint, Ed25519 and X25519 public keys canonically
//! encoded and of large order. Private material is zeroized on drop and never shown by `Debug`.
//!
//! ```
//! use tessera_jose::jwk::Jwk;
//! use tessera_jose::jwa::JwsAlgorithm;
//!
//! let key = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
//! let public = key.to_public().unwrap();
//! assert!(!public.is_private());
//! assert!(!format!("{key:?}").contains("\"d\""));
//! let json = public.to_json();
//! assert_eq!(Jwk::from_json(json.as_bytes()).unwrap().thumbprint(), key.thumbprint());
//! ```

pub mod pem;
mod roca;

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::b64;
use crate::crypto::{self, RsaCrt};
use crate::error::{Error, KeyError};
use crate::json::{self, Limits};
use crate::jwa::{
    EcCurve, Hash, JweAlgorithm, JweEncryption, JwsAlgorithm, KeyFamily, KeyManagement, OkpCurve,
};

pub use pem::KeyFormat;

/// Secret bytes: zeroized on drop, redacted in `Debug`.
pub(crate) type Secret = Zeroizing<Vec<u8>>;

/// The intended use of a key (`use`, RFC 7517 §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyUse {
    /// `sig`: signatures and MACs only.
    Signature,
    /// `enc`: encryption only.
    Encryption,
    /// Any other value; such a key is refused for both.
    Other(String),
}

impl KeyUse {
    fn as_str(&self) -> &str {
        match self {
            KeyUse::Signature => "sig",
            KeyUse::Encryption => "enc",
            KeyUse::Other(s) => s,
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "sig" => KeyUse::Signature,
            "enc" => KeyUse::Encryption,
            o => KeyUse::Other(o.to_owned()),
        }
    }
}

/// A permitted operation (`key_ops`, RFC 7517 §4.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyOp {
    /// `sign`
    Sign,
    /// `verify`
    Verify,
    /// `encrypt`
    Encrypt,
    /// `decrypt`
    Decrypt,
    /// `wrapKey`
    WrapKey,
    /// `unwrapKey`
    UnwrapKey,
    /// `deriveKey`
    DeriveKey,
    /// `deriveBits`
    DeriveBits,
    /// Any other value.
    Other(String),
}

impl KeyOp {
    /// The registered name.
    pub fn as_str(&self) -> &str {
        match self {
            KeyOp::Sign => "sign",
            KeyOp::Verify => "verify",
            KeyOp::Encrypt => "encrypt",
            KeyOp::Decrypt => "decrypt",
            KeyOp::WrapKey => "wrapKey",
            KeyOp::UnwrapKey => "unwrapKey",
            KeyOp::DeriveKey => "deriveKey",
            KeyOp::DeriveBits => "deriveBits",
            KeyOp::Other(s) => s,
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "sign" => KeyOp::Sign,
            "verify" => KeyOp::Verify,
            "encrypt" => KeyOp::Encrypt,
            "decrypt" => KeyOp::Decrypt,
            "wrapKey" => KeyOp::WrapKey,
            "unwrapKey" => KeyOp::UnwrapKey,
            "deriveKey" => KeyOp::DeriveKey,
            "deriveBits" => KeyOp::DeriveBits,
            o => KeyOp::Other(o.to_owned()),
        }
    }
    fn is_signature_op(&self) -> bool {
        matches!(self, KeyOp::Sign | KeyOp::Verify)
    }
    fn public_counterpart(&self) -> Option<KeyOp> {
        match self {
            KeyOp::Sign | KeyOp::Verify => Some(KeyOp::Verify),
            KeyOp::Decrypt | KeyOp::Encrypt => Some(KeyOp::Encrypt),
            KeyOp::UnwrapKey | KeyOp::WrapKey => Some(KeyOp::WrapKey),
            _ => None,
        }
    }
}

/// `alg` values a key may carry: RFC 7518's JWS, JWE key-management and
/// content-encryption names, and EdDSA / ES256K. Anything else marks the key
/// as invalid (Wycheproof JWK tc19/tc20: `ES521`, `ES224`).
const KNOWN_KEY_ALGS: &[&str] = &[
    "HS256",
    "HS384",
    "HS512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "ES256K",
    "EdDSA",
    "RSA1_5",
    "RSA-OAEP",
    "RSA-OAEP-256",
    "RSA-OAEP-384",
    "RSA-OAEP-512",
    "A128KW",
    "A192KW",
    "A256KW",
    "dir",
    "ECDH-ES",
    "ECDH-ES+A128KW",
    "ECDH-ES+A192KW",
    "ECDH-ES+A256KW",
    "A128GCMKW",
    "A192GCMKW",
    "A256GCMKW",
    "PBES2-HS256+A128KW",
    "PBES2-HS384+A192KW",
    "PBES2-HS512+A256KW",
    "A128CBC-HS256",
    "A192CBC-HS384",
    "A256CBC-HS512",
    "A128GCM",
    "A192GCM",
    "A256GCM",
];

/// The key material, by `kty`.
#[derive(Clone)]
pub(crate) enum Material {
    Oct {
        k: Secret,
    },
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        private: Option<RsaCrt>,
    },
    Ec {
        curve: EcCurve,
        x: Vec<u8>,
        y: Vec<u8>,
        d: Option<Secret>,
    },
    Okp {
        curve: OkpCurve,
        x: Vec<u8>,
        d: Option<Secret>,
    },
}

/// A validated JSON Web Key.
#[derive(Clone)]
pub struct Jwk {
    pub(crate) material: Material,
    kid: Option<String>,
    key_use: Option<KeyUse>,
    key_ops: Option<Vec<KeyOp>>,
    alg: Option<String>,
    x5c: Option<Vec<String>>,
    x5t: Option<String>,
    x5t_s256: Option<String>,
}

impl fmt::Debug for Jwk {
    /// Shows the key's type and public attributes; never private material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk")
            .field("kty", &self.kty())
            .field("crv", &self.curve_name())
            .field("kid", &self.kid)
            .field("use", &self.key_use)
            .field("alg", &self.alg)
            .field("private", &self.is_private())
            // A symmetric key's thumbprint is an unsalted SHA-256 of the
            // secret (RFC 7638 §7): from a log, a password-derived PBES2
            // key could be guessed offline. Public keys only.
            .field(
                "thumbprint",
                &(!self.is_symmetric()).then(|| self.thumbprint()),
            )
            .finish_non_exhaustive()
    }
}

/// Members that carry private or secret material (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037).
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "k", "r", "t"];

/// A JSON object that may hold private members: their text is wiped when
/// it is dropped, so secrets parsed from or written to JSON do not linger.
pub(crate) struct ScrubOnDrop(pub(crate) Map<String, Value>);

impl Drop for ScrubOnDrop {
    fn drop(&mut self) {
        scrub_map(&mut self.0);
    }
}

fn scrub_map(m: &mut Map<String, Value>) {
    use zeroize::Zeroize;
    for (name, v) in m.iter_mut() {
        match v {
            Value::String(text) if PRIVATE_MEMBERS.contains(&name.as_str()) => text.zeroize(),
            Value::Object(inner) => scrub_map(inner),
            Value::Array(items) => items.iter_mut().for_each(|item| {
                if let Value::Object(inner) = item {
                    scrub_map(inner);
                }
            }),
            _ => {}
        }
    }
}

fn invalid(what: &'static str) -> Error {
    Error::Key(KeyError::InvalidJwk(what))
}

fn get_str<'a>(m: &'a Map<String, Value>, name: &'static str) -> Result<Option<&'a str>, Error> {
    match m.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(name)),
    }
}

fn req_str<'a>(m: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, Error> {
    get_str(m, name)?.ok_or(invalid(name))
}

fn req_b64(m: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, Error> {
    b64::decode(req_str(m, name)?, name)
}

fn opt_secret(m: &Map<String, Value>, name: &'static str) -> Result<Option<Secret>, Error> {
    Ok(match get_str(m, name)? {
        None => None,
        Some(s) => Some(Zeroizing::new(b64::decode(s, name)?)),
    })
}

fn req_secret(m: &Map<String, Value>, name: &'static str) -> Result<Secret, Error> {
    opt_secret(m, name)?.ok_or(invalid(name))
}

/// RFC 7518 §6.3.1: `n` and `e` use the minimum number of octets.
fn req_uint(m: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, Error> {
    let v = req_b64(m, name)?;
    match v.first() {
        None | Some(0) => Err(invalid(name)),
        Some(_) => Ok(v),
    }
}

fn fixed(v: Vec<u8>, len: usize, name: &'static str) -> Result<Vec<u8>, Error> {
    if v.len() == len {
        Ok(v)
    } else {
        Err(invalid(name))
    }
}

pub(crate) fn uncompressed_point(x: &[u8], y: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(1 + x.len() + y.len());
    p.push(4);
    p.extend_from_slice(x);
    p.extend_from_slice(y);
    p
}

pub(crate) fn split_point(curve: EcCurve, point: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let n = curve.coordinate_len();
    match point.split_first() {
        Some((4, xy)) if xy.len() == 2 * n => {
            let (x, y) = xy.split_at(n);
            Ok((x.to_vec(), y.to_vec()))
        }
        _ => Err(KeyError::Rejected.into()),
    }
}

impl Material {
    /// Validates the material and returns it unchanged.
    fn validated(self) -> Result<Self, Error> {
        match &self {
            Material::Oct { k } => {
                if k.is_empty() {
                    return Err(KeyError::TooWeak("empty symmetric key").into());
                }
            }
            Material::Rsa { n, e, private } => {
                // Public exponent must be odd and > 1 (Wycheproof JWK tc9: e = 1).
                let e_odd = e.last().is_some_and(|b| b & 1 == 1);
                if !e_odd || e.as_slice() == [1] || e.len() > 4 {
                    return Err(KeyError::Rejected.into());
                }
                // A sane exponent: 65537 or more (e = 3 invites the
                // low-exponent attacks on any padding slip; no key
                // generator of this century makes one).
                let e_value = e.iter().fold(0u64, |v, b| v << 8 | u64::from(*b));
                if e_value < 65_537 {
                    return Err(KeyError::TooWeak("RSA public exponent below 65537").into());
                }
                if n.len() * 8 < 2048 || rsa_bits(n) < 2048 {
                    return Err(KeyError::TooWeak("RSA modulus under 2048 bits").into());
                }
                if roca::is_vulnerable(n) {
                    return Err(KeyError::TooWeak("RSA modulus has the ROCA fingerprint").into());
                }
                match private {
                    Some(crt) => crypto::rsa_check_private(n, e, crt)?,
                    None => crypto::rsa_check_public(n, e)?,
                }
            }
            Material::Ec { curve, x, y, d } => {
                let point = uncompressed_point(x, y);
                crypto::ec_check_public(*curve, &point)?;
                if let Some(d) = d {
                    if crypto::ec_public_from_private(*curve, d)? != point {
                        return Err(KeyError::Rejected.into());
                    }
                }
            }
            Material::Okp { curve, x, d } => {
                if let Some(d) = d {
                    let derived = match curve {
                        OkpCurve::Ed25519 => crypto::ed25519_public_from_seed(d)?,
                        OkpCurve::X25519 => crypto::x25519_public_from_private(d)?,
                    };
                    if !crypto::constant_time_eq(&derived, x) {
                        return Err(KeyError::Rejected.into());
                    }
                } else {
                    // Small-order and non-canonical public keys: under a
                    // small-order Ed25519 key one signature verifies for
                    // any message; an X25519 one makes a known secret.
                    let ok = match curve {
                        OkpCurve::Ed25519 => crypto::ed25519_public_ok(x),
                        OkpCurve::X25519 => crypto::x25519_public_ok(x),
                    };
                    if !ok {
                        return Err(KeyError::TooWeak(
                            "a small-order or non-canonical Curve25519 public key",
                        )
                        .into());
                    }
                    if *curve == OkpCurve::Ed25519 {
                        crypto::PreparedVerifier::ed25519(x)?;
                    }
                }
            }
        }
        Ok(self)
    }
}

/// Refuses two keys of one type under one `kid`: which key a token means
/// would be ambiguous (RFC 7517 §4.5 allows a shared `kid` only across key
/// types). Verifiers and decrypters check their keys with this.
pub(crate) fn ensure_unique_kids<'a>(
    keys: impl Iterator<Item = (Option<&'a str>, &'static str)>,
) -> Result<(), Error> {
    let mut seen = HashSet::new();
    for (kid, kty) in keys {
        if kid.is_some() && !seen.insert((kid, kty)) {
            return Err(KeyError::InvalidJwk("two keys share a kid").into());
        }
    }
    Ok(())
}

fn rsa_bits(n: &[u8]) -> usize {
    match n.first() {
        None => 0,
        Some(b) => n.len() * 8 - b.leading_zeros() as usize,
    }
}

impl Jwk {
    fn from_material(material: Material) -> Self {
        Jwk {
            material,
            kid: None,
            key_use: None,
            key_ops: None,
            alg: None,
            x5c: None,
            x5t: None,
            x5t_s256: None,
        }
    }

    pub(crate) fn new_validated(material: Material) -> Result<Self, Error> {
        Ok(Jwk::from_material(material.validated()?))
    }

    /// Parses and validates one JWK from JSON, with default [`Limits`].
    pub fn from_json(input: &[u8]) -> Result<Self, Error> {
        Self::from_json_with_limits(input, &Limits::default())
    }

    /// Parses and validates one JWK from JSON.
    pub fn from_json_with_limits(input: &[u8], limits: &Limits) -> Result<Self, Error> {
        let map = ScrubOnDrop(json::parse_object(input, limits, "JWK")?);
        Self::from_map(&map.0)
    }

    /// Builds a JWK from an already-parsed JSON object.
    pub fn from_map(m: &Map<String, Value>) -> Result<Self, Error> {
        let kty = req_str(m, "kty")?;
        let material = match kty {
            "oct" => Material::Oct {
                k: req_secret(m, "k")?,
            },
            "RSA" => {
                if m.contains_key("oth") {
                    return Err(KeyError::Unsupported("multi-prime RSA (oth)".into()).into());
                }
                let n = req_uint(m, "n")?;
                let e = req_uint(m, "e")?;
                let private = match get_str(m, "d")? {
                    None => {
                        if ["p", "q", "dp", "dq", "qi"]
                            .iter()
                            .any(|k| m.contains_key(*k))
                        {
                            return Err(invalid("d"));
                        }
                        None
                    }
                    Some(_) => {
                        if ["p", "q", "dp", "dq", "qi"]
                            .iter()
                            .any(|k| !m.contains_key(*k))
                        {
                            return Err(KeyError::Unsupported(
                                "RSA private key without CRT parameters".into(),
                            )
                            .into());
                        }
                        Some(RsaCrt {
                            d: req_secret(m, "d")?,
                            p: req_secret(m, "p")?,
                            q: req_secret(m, "q")?,
                            dp: req_secret(m, "dp")?,
                            dq: req_secret(m, "dq")?,
                            qi: req_secret(m, "qi")?,
                        })
                    }
                };
                Material::Rsa { n, e, private }
            }
            "EC" => {
                let crv = req_str(m, "crv")?;
                let curve = EcCurve::from_name(crv)
                    .ok_or_else(|| KeyError::Unsupported(format!("EC curve {crv:?}")))?;
                let len = curve.coordinate_len();
                let d = opt_secret(m, "d")?;
                if d.as_ref().is_some_and(|d| d.len() != len) {
                    return Err(invalid("d"));
                }
                Material::Ec {
                    curve,
                    x: fixed(req_b64(m, "x")?, len, "x")?,
                    y: fixed(req_b64(m, "y")?, len, "y")?,
                    d,
                }
            }
            "OKP" => {
                let crv = req_str(m, "crv")?;
                let curve = match crv {
                    "Ed25519" => OkpCurve::Ed25519,
                    "X25519" => OkpCurve::X25519,
                    other => {
                        return Err(KeyError::Unsupported(format!("OKP curve {other:?}")).into())
                    }
                };
                let d = opt_secret(m, "d")?;
                if d.as_ref().is_some_and(|d| d.len() != 32) {
                    return Err(invalid("d"));
                }
                Material::Okp {
                    curve,
                    x: fixed(req_b64(m, "x")?, 32, "x")?,
                    d,
                }
            }
            other => return Err(KeyError::Unsupported(format!("kty {other:?}")).into()),
        };
        let mut jwk = Jwk::new_validated(material)?;
        jwk.kid = get_str(m, "kid")?.map(str::to_owned);
        jwk.key_use = get_str(m, "use")?.map(KeyUse::parse);
        jwk.alg = match get_str(m, "alg")? {
            Some(a) if !KNOWN_KEY_ALGS.contains(&a) => {
                return Err(KeyError::Unsupported(format!("key alg {a:?}")).into())
            }
            a => a.map(str::to_owned),
        };
        if let Some(ops) = m.get("key_ops") {
            let arr = ops.as_array().ok_or(invalid("key_ops"))?;
            let mut seen = HashSet::new();
            let mut parsed = Vec::with_capacity(arr.len());
            for op in arr {
                let s = op.as_str().ok_or(invalid("key_ops"))?;
                if !seen.insert(s) {
                    return Err(invalid("key_ops")); // RFC 7517 §4.3: no duplicates
                }
                parsed.push(KeyOp::parse(s));
            }
            jwk.key_ops = Some(parsed);
        }
        jwk.check_use_consistent()?;
        if let Some(x5c) = m.get("x5c") {
            let arr = x5c.as_array().ok_or(invalid("x5c"))?;
            let certs = arr
                .iter()
                .map(|c| c.as_str().map(str::to_owned).ok_or(invalid("x5c")))
                .collect::<Result<Vec<_>, _>>()?;
            jwk.x5c = Some(certs);
        }
        jwk.x5t = get_str(m, "x5t")?.map(str::to_owned);
        jwk.x5t_s256 = get_str(m, "x5t#S256")?.map(str::to_owned);
        if let Some(alg) = jwk.alg.clone() {
            jwk.check_alg_fits_key(&alg)?;
        }
        Ok(jwk)
    }

    /// RFC 7517 §4.3: `use` and `key_ops` must not contradict each other.
    fn check_use_consistent(&self) -> Result<(), Error> {
        if let (Some(u), Some(ops)) = (&self.key_use, &self.key_ops) {
            let ok = match u {
                KeyUse::Signature => ops.iter().all(KeyOp::is_signature_op),
                KeyUse::Encryption => ops.iter().all(|o| !o.is_signature_op()),
                KeyUse::Other(_) => true,
            };
            if !ok {
                return Err(invalid("use and key_ops disagree"));
            }
        }
        Ok(())
    }

    /// An `alg` on the key must suit its type (an RSA key marked `ES256` or
    /// `A128KW` is refused; a content algorithm marks a `dir` secret).
    fn check_alg_fits_key(&self, alg: &str) -> Result<(), Error> {
        if let Ok(jws_alg) = alg.parse::<JwsAlgorithm>() {
            return self.check_family(jws_alg);
        }
        let fits = match (alg.parse::<JweAlgorithm>(), alg.parse::<JweEncryption>()) {
            (Ok(jwe_alg), _) => self.jwe_type_fits(jwe_alg.key_management()),
            (_, Ok(_)) => self.is_symmetric(),
            _ => true,
        };
        if fits {
            Ok(())
        } else {
            Err(KeyError::WrongKeyType {
                kty: self.type_label(),
                alg: "the key's own alg",
            }
            .into())
        }
    }

    /// Whether the key's type and curve suit a JWE key-management algorithm.
    fn jwe_type_fits(&self, km: KeyManagement) -> bool {
        match km {
            KeyManagement::RsaPkcs1 | KeyManagement::RsaOaep(_) => {
                matches!(self.material, Material::Rsa { .. })
            }
            KeyManagement::AesKw(_)
            | KeyManagement::AesGcmKw(_)
            | KeyManagement::Direct
            | KeyManagement::Pbes2(..) => self.is_symmetric(),
            KeyManagement::EcdhEs(_) => matches!(
                self.material,
                Material::Ec {
                    curve: EcCurve::P256 | EcCurve::P384 | EcCurve::P521,
                    ..
                } | Material::Okp {
                    curve: OkpCurve::X25519,
                    ..
                }
            ),
        }
    }

    /// The key's type (and curve) must be the one `alg` needs.
    fn check_family(&self, alg: JwsAlgorithm) -> Result<(), Error> {
        if self.family_fits(alg.info().family) {
            Ok(())
        } else {
            Err(KeyError::WrongKeyType {
                kty: self.type_label(),
                alg: alg.name(),
            }
            .into())
        }
    }

    fn family_fits(&self, family: KeyFamily) -> bool {
        match (&self.material, family) {
            (Material::Oct { .. }, KeyFamily::Oct { .. })
            | (Material::Rsa { .. }, KeyFamily::Rsa) => true,
            (Material::Ec { curve, .. }, KeyFamily::Ec(c)) => *curve == c,
            (Material::Okp { curve, .. }, KeyFamily::Okp(c)) => *curve == c,
            _ => false,
        }
    }

    fn type_label(&self) -> String {
        match self.curve_name() {
            Some(c) => format!("{} {c}", self.kty()),
            None => self.kty().to_owned(),
        }
    }

    /// Checks that this key may perform `op` with `alg`: its type and size,
    /// its own `alg`, `use` and `key_ops`, and that it is private when signing.
    pub fn check_permits(&self, op: KeyOp, alg: JwsAlgorithm) -> Result<(), Error> {
        let info = alg.info();
        self.check_family(alg)?;
        if let Some(key_alg) = &self.alg {
            if key_alg != alg.name() {
                return Err(KeyError::AlgorithmMismatch {
                    key_alg: key_alg.clone(),
                    alg: alg.name(),
                }
                .into());
            }
        }
        if let Some(u) = &self.key_use {
            if *u != KeyUse::Signature {
                return Err(KeyError::OperationNotPermitted("signatures (use is not sig)").into());
            }
        }
        if let Some(ops) = &self.key_ops {
            if !ops.contains(&op) {
                return Err(KeyError::OperationNotPermitted("this operation (key_ops)").into());
            }
        }
        if let (Material::Oct { k }, KeyFamily::Oct { min_len }) = (&self.material, info.family) {
            if k.len() < min_len {
                return Err(KeyError::TooWeak("HMAC key shorter than the hash output").into());
            }
        }
        if op == KeyOp::Sign && !self.is_private() {
            return Err(KeyError::NotPrivate.into());
        }
        Ok(())
    }

    /// Checks that this key may serve JWE `alg` with content encryption `enc`,
    /// for decrypting (`true`: the recipient's side) or encrypting: its type,
    /// curve and length, its own `alg`, `use` and `key_ops`, and that it is
    /// private when decrypting with an asymmetric algorithm.
    ///
    /// A key's own `alg` must be the key-management algorithm, except that a
    /// `dir` key may name the content algorithm instead (RFC 7520 §5.6 does;
    /// Wycheproof erratum WP-6).
    ///
    /// ```
    /// use tessera_jose::jwa::{JweAlgorithm, JweEncryption};
    /// use tessera_jose::jwk::Jwk;
    /// let kek = Jwk::generate_oct(16).unwrap();
    /// assert!(kek.check_permits_jwe(true, JweAlgorithm::A128KW, JweEncryption::A128GCM).is_ok());
    /// let err = kek.check_permits_jwe(true, JweAlgorithm::A256KW, JweEncryption::A128GCM);
    /// assert_eq!(err.unwrap_err().code(), "ERR_KEY_WRONG_SIZE");
    /// ```
    pub fn check_permits_jwe(
        &self,
        decrypting: bool,
        alg: JweAlgorithm,
        enc: JweEncryption,
    ) -> Result<(), Error> {
        let wrong_type = || {
            Error::from(KeyError::WrongKeyType {
                kty: self.type_label(),
                alg: alg.name(),
            })
        };
        let oct_len = |len: usize, name: &'static str| match &self.material {
            Material::Oct { k } if k.len() != len => Err(Error::from(KeyError::WrongSize(name))),
            _ => Ok(()),
        };
        if !self.jwe_type_fits(alg.key_management()) {
            return Err(wrong_type());
        }
        match alg.key_management() {
            KeyManagement::AesKw(len) | KeyManagement::AesGcmKw(len) => oct_len(len, alg.name())?,
            KeyManagement::Direct => oct_len(enc.key_len(), enc.name())?,
            _ => {}
        }
        if let Some(u) = &self.key_use {
            if *u != KeyUse::Encryption {
                return Err(KeyError::OperationNotPermitted("encryption (use is not enc)").into());
            }
        }
        if let Some(key_alg) = &self.alg {
            let direct_names_enc = alg == JweAlgorithm::Dir && key_alg == enc.name();
            if key_alg != alg.name() && !direct_names_enc {
                return Err(KeyError::AlgorithmMismatch {
                    key_alg: key_alg.clone(),
                    alg: alg.name(),
                }
                .into());
            }
        }
        if let Some(ops) = &self.key_ops {
            let wanted: &[KeyOp] = if decrypting {
                &[
                    KeyOp::Decrypt,
                    KeyOp::UnwrapKey,
                    KeyOp::DeriveKey,
                    KeyOp::DeriveBits,
                ]
            } else {
                &[
                    KeyOp::Encrypt,
                    KeyOp::WrapKey,
                    KeyOp::DeriveKey,
                    KeyOp::DeriveBits,
                ]
            };
            if !ops.iter().any(|o| wanted.contains(o)) {
                return Err(KeyError::OperationNotPermitted("this operation (key_ops)").into());
            }
        }
        if decrypting && !self.is_symmetric() && !self.is_private() {
            return Err(KeyError::NotPrivate.into());
        }
        Ok(())
    }

    /// Prepares this key for signing with `alg`, after [`Jwk::check_permits`].
    pub(crate) fn prepare_signer(
        &self,
        alg: JwsAlgorithm,
    ) -> Result<crypto::PreparedSigner, Error> {
        self.check_permits(KeyOp::Sign, alg)?;
        match &self.material {
            Material::Oct { k } => Ok(crypto::PreparedSigner::hmac(alg, k)),
            Material::Rsa {
                n,
                e,
                private: Some(crt),
            } => crypto::PreparedSigner::rsa(alg, n, e, crt),
            Material::Ec {
                curve,
                x,
                y,
                d: Some(d),
            } => crypto::PreparedSigner::ecdsa(*curve, d, &uncompressed_point(x, y)),
            Material::Okp {
                curve: OkpCurve::Ed25519,
                x,
                d: Some(d),
            } => crypto::PreparedSigner::ed25519(d, x),
            _ => Err(KeyError::NotPrivate.into()),
        }
    }

    /// Prepares this key for verifying `alg`, after [`Jwk::check_permits`].
    pub(crate) fn prepare_verifier(
        &self,
        alg: JwsAlgorithm,
    ) -> Result<crypto::PreparedVerifier, Error> {
        self.check_permits(KeyOp::Verify, alg)?;
        match &self.material {
            Material::Oct { k } => Ok(crypto::PreparedVerifier::hmac(alg, k)),
            Material::Rsa { n, e, .. } => crypto::PreparedVerifier::rsa(alg, n, e),
            Material::Ec { curve, x, y, .. } => {
                crypto::PreparedVerifier::ecdsa(*curve, &uncompressed_point(x, y))
            }
            Material::Okp { x, .. } => crypto::PreparedVerifier::ed25519(x),
        }
    }

    /// The `kty`: `oct`, `RSA`, `EC` or `OKP`.
    pub fn kty(&self) -> &'static str {
        match self.material {
            Material::Oct { .. } => "oct",
            Material::Rsa { .. } => "RSA",
            Material::Ec { .. } => "EC",
            Material::Okp { .. } => "OKP",
        }
    }

    /// The `crv` for EC and OKP keys.
    pub fn curve_name(&self) -> Option<&'static str> {
        match &self.material {
            Material::Ec { curve, .. } => Some(curve.name()),
            Material::Okp { curve, .. } => Some(curve.name()),
            _ => None,
        }
    }

    /// Whether the key holds private (or secret) material.
    pub fn is_private(&self) -> bool {
        match &self.material {
            Material::Oct { .. } => true,
            Material::Rsa { private, .. } => private.is_some(),
            Material::Ec { d, .. } | Material::Okp { d, .. } => d.is_some(),
        }
    }

    /// Whether this is a symmetric (`oct`) key.
    pub fn is_symmetric(&self) -> bool {
        matches!(self.material, Material::Oct { .. })
    }

    /// RSA modulus size in bits, for RSA keys.
    pub fn rsa_bits(&self) -> Option<usize> {
        match &self.material {
            Material::Rsa { n, .. } => Some(rsa_bits(n)),
            _ => None,
        }
    }

    /// The `kid`.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
    /// The `alg` the key is bound to, if any.
    pub fn alg(&self) -> Option<&str> {
        self.alg.as_deref()
    }
    /// The `use`.
    pub fn key_use(&self) -> Option<&KeyUse> {
        self.key_use.as_ref()
    }
    /// The `key_ops`.
    pub fn key_ops(&self) -> Option<&[KeyOp]> {
        self.key_ops.as_deref()
    }
    /// The `x5c` certificate chain, as given (never used to find a key).
    pub fn x5c(&self) -> Option<&[String]> {
        self.x5c.as_deref()
    }

    /// Sets `kid`.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }
    /// Sets `kid` to the RFC 7638 SHA-256 thumbprint.
    ///
    /// For public-key pairs. A symmetric key's thumbprint is an unsalted
    /// hash of the secret, and a `kid` travels in every token header: use
    /// [`Jwk::with_default_kid`], which gives secrets a random `kid`.
    pub fn with_thumbprint_kid(self) -> Self {
        let t = self.thumbprint();
        self.with_kid(t)
    }
    /// Sets the `kid` tessera gives keys by default: the RFC 7638 SHA-256
    /// thumbprint for public-key pairs (anyone holding the public key can
    /// recompute it), and 128 random bits, base64url, for symmetric keys
    /// (whose thumbprint would be a hash of the secret, RFC 7638 §7).
    pub fn with_default_kid(self) -> Result<Self, Error> {
        if self.is_symmetric() {
            let id = crypto::random_bytes(16)?;
            Ok(self.with_kid(b64::encode(id.as_slice())))
        } else {
            Ok(self.with_thumbprint_kid())
        }
    }
    /// Sets `use`; refused if it contradicts `key_ops`.
    pub fn with_use(mut self, key_use: KeyUse) -> Result<Self, Error> {
        self.key_use = Some(key_use);
        self.check_use_consistent()?;
        Ok(self)
    }
    /// Sets `key_ops`; refused if duplicated or contradicting `use`.
    pub fn with_key_ops(mut self, ops: Vec<KeyOp>) -> Result<Self, Error> {
        let distinct: HashSet<&KeyOp> = ops.iter().collect();
        if distinct.len() != ops.len() {
            return Err(invalid("key_ops"));
        }
        self.key_ops = Some(ops);
        self.check_use_consistent()?;
        Ok(self)
    }
    /// Binds the key to one algorithm (`alg`); refused if the key type cannot serve it.
    pub fn with_alg(mut self, alg: &str) -> Result<Self, Error> {
        if !KNOWN_KEY_ALGS.contains(&alg) {
            return Err(KeyError::Unsupported(format!("key alg {alg:?}")).into());
        }
        self.check_alg_fits_key(alg)?;
        self.alg = Some(alg.to_owned());
        Ok(self)
    }

    /// The public key, with private members removed and `key_ops` mapped to
    /// their public counterparts. Symmetric keys have no public form.
    pub fn to_public(&self) -> Result<Jwk, Error> {
        let material = match &self.material {
            Material::Oct { .. } => {
                return Err(KeyError::WrongKeyType {
                    kty: "oct".into(),
                    alg: "a public key",
                }
                .into())
            }
            Material::Rsa { n, e, .. } => Material::Rsa {
                n: n.clone(),
                e: e.clone(),
                private: None,
            },
            Material::Ec { curve, x, y, .. } => Material::Ec {
                curve: *curve,
                x: x.clone(),
                y: y.clone(),
                d: None,
            },
            Material::Okp { curve, x, .. } => Material::Okp {
                curve: *curve,
                x: x.clone(),
                d: None,
            },
        };
        let key_ops = self.key_ops.as_ref().map(|ops| {
            let mut out: Vec<KeyOp> = Vec::new();
            for op in ops.iter().filter_map(KeyOp::public_counterpart) {
                if !out.contains(&op) {
                    out.push(op);
                }
            }
            out
        });
        Ok(Jwk {
            material,
            key_ops,
            ..self.clone()
        })
    }

    fn members(&self, include_private: bool) -> ScrubOnDrop {
        let mut m = Map::new();
        let b = |v: &[u8]| Value::String(b64::encode(v));
        m.insert("kty".into(), Value::String(self.kty().into()));
        match &self.material {
            Material::Oct { k } => {
                if include_private {
                    m.insert("k".into(), b(k));
                }
            }
            Material::Rsa { n, e, private } => {
                m.insert("n".into(), b(n));
                m.insert("e".into(), b(e));
                if let (true, Some(c)) = (include_private, private) {
                    for (name, v) in [
                        ("d", &c.d),
                        ("p", &c.p),
                        ("q", &c.q),
                        ("dp", &c.dp),
                        ("dq", &c.dq),
                        ("qi", &c.qi),
                    ] {
                        m.insert(name.into(), b(v));
                    }
                }
            }
            Material::Ec { curve, x, y, d } => {
                m.insert("crv".into(), Value::String(curve.name().into()));
                m.insert("x".into(), b(x));
                m.insert("y".into(), b(y));
                if let (true, Some(d)) = (include_private, d) {
                    m.insert("d".into(), b(d));
                }
            }
            Material::Okp { curve, x, d } => {
                m.insert("crv".into(), Value::String(curve.name().into()));
                m.insert("x".into(), b(x));
                if let (true, Some(d)) = (include_private, d) {
                    m.insert("d".into(), b(d));
                }
            }
        }
        if let Some(k) = &self.kid {
            m.insert("kid".into(), Value::String(k.clone()));
        }
        if let Some(u) = &self.key_use {
            m.insert("use".into(), Value::String(u.as_str().into()));
        }
        if let Some(ops) = &self.key_ops {
            m.insert(
                "key_ops".into(),
                Value::Array(
                    ops.iter()
                        .map(|o| Value::String(o.as_str().into()))
                        .collect(),
                ),
            );
        }
        if let Some(a) = &self.alg {
            m.insert("alg".into(), Value::String(a.clone()));
        }
        if let Some(c) = &self.x5c {
            m.insert(
                "x5c".into(),
                Value::Array(c.iter().cloned().map(Value::String).collect()),
            );
        }
        if let Some(t) = &self.x5t {
            m.insert("x5t".into(), Value::String(t.clone()));
        }
        if let Some(t) = &self.x5t_s256 {
            m.insert("x5t#S256".into(), Value::String(t.clone()));
        }
        ScrubOnDrop(m)
    }

    /// The JWK as JSON, public members only (for a symmetric key: no `k`).
    /// Use [`Jwk::to_private_json`] to export secrets, deliberately.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.members(false).0).unwrap_or_default()
    }

    /// The JWK as JSON including private members. Handle the result as a secret.
    pub fn to_private_json(&self) -> Zeroizing<String> {
        Zeroizing::new(serde_json::to_string(&self.members(true).0).unwrap_or_default())
    }

    /// The RFC 7638 thumbprint with SHA-256, base64url-encoded.
    pub fn thumbprint(&self) -> String {
        b64::encode(self.thumbprint_with(Hash::Sha256))
    }

    /// The RFC 7638 thumbprint with the given hash, raw bytes.
    pub fn thumbprint_with(&self, hash: Hash) -> Vec<u8> {
        // RFC 7638 §3.2: only the required members, lexicographic order, no
        // whitespace. BTreeMap gives the order; the values are plain strings.
        let required: &[&str] = match self.material {
            Material::Oct { .. } => &["k", "kty"],
            Material::Rsa { .. } => &["e", "kty", "n"],
            Material::Ec { .. } => &["crv", "kty", "x", "y"],
            Material::Okp { .. } => &["crv", "kty", "x"],
        };
        let all = self.members(true);
        let subset: BTreeMap<&str, &Value> = required
            .iter()
            .filter_map(|k| all.0.get(*k).map(|v| (*k, v)))
            .collect();
        let canonical = Zeroizing::new(serde_json::to_string(&subset).unwrap_or_default());
        crypto::digest(hash, canonical.as_bytes())
    }

    /// Generates a symmetric key of `len` bytes.
    pub fn generate_oct(len: usize) -> Result<Jwk, Error> {
        if len < 16 {
            return Err(KeyError::TooWeak("symmetric keys are at least 16 bytes").into());
        }
        Ok(Jwk::from_material(Material::Oct {
            k: crypto::random_bytes(len)?,
        }))
    }

    /// Generates an RSA key of 2048, 3072, 4096 or 8192 bits.
    pub fn generate_rsa(bits: usize) -> Result<Jwk, Error> {
        let (n, e, crt) = crypto::rsa_generate(bits)?;
        Ok(Jwk::from_material(Material::Rsa {
            n,
            e,
            private: Some(crt),
        }))
    }

    /// Generates an EC key on `curve`.
    pub fn generate_ec(curve: EcCurve) -> Result<Jwk, Error> {
        let (d, point) = crypto::ec_generate(curve)?;
        let (x, y) = split_point(curve, &point)?;
        Ok(Jwk::from_material(Material::Ec {
            curve,
            x,
            y,
            d: Some(d),
        }))
    }

    /// Generates an OKP key (Ed25519 or X25519).
    pub fn generate_okp(curve: OkpCurve) -> Result<Jwk, Error> {
        let (d, x) = match curve {
            OkpCurve::Ed25519 => crypto::ed25519_generate()?,
            OkpCurve::X25519 => crypto::x25519_generate()?,
        };
        Ok(Jwk::from_material(Material::Okp {
            curve,
            x,
            d: Some(d),
        }))
    }

    /// Generates a signing key for `alg`, bound to it (`alg`, `use: sig`) with
    /// the [default `kid`](Jwk::with_default_kid) (the thumbprint; random for
    /// HMAC secrets). RSA keys are 2048 bits; HMAC secrets are as
    /// long as the hash output.
    pub fn generate_for(alg: JwsAlgorithm) -> Result<Jwk, Error> {
        let key = match alg.info().family {
            KeyFamily::Oct { min_len } => Jwk::generate_oct(min_len)?,
            KeyFamily::Rsa => Jwk::generate_rsa(2048)?,
            KeyFamily::Ec(c) => Jwk::generate_ec(c)?,
            KeyFamily::Okp(c) => Jwk::generate_okp(c)?,
        };
        key.with_alg(alg.name())?
            .with_use(KeyUse::Signature)?
            .with_default_kid()
    }

    /// Generates a key for JWE `alg` with `enc`, bound to `alg` with
    /// `use: enc` and the [default `kid`](Jwk::with_default_kid): RSA 2048 for RSA-OAEP, P-256
    /// for ECDH-ES, an AES key of the exact length for key wrapping and `dir`,
    /// 32 random bytes for PBES2. `RSA1_5` is refused: tessera neither
    /// encrypts nor decrypts with it.
    pub fn generate_for_encryption(alg: JweAlgorithm, enc: JweEncryption) -> Result<Jwk, Error> {
        let key = match alg.key_management() {
            KeyManagement::RsaPkcs1 => {
                return Err(crate::error::JweError::AlgorithmNotAllowed(alg.name()).into())
            }
            KeyManagement::RsaOaep(_) => Jwk::generate_rsa(2048)?,
            KeyManagement::EcdhEs(_) => Jwk::generate_ec(EcCurve::P256)?,
            KeyManagement::AesKw(len) | KeyManagement::AesGcmKw(len) => Jwk::generate_oct(len)?,
            KeyManagement::Direct => Jwk::generate_oct(enc.key_len())?,
            KeyManagement::Pbes2(..) => Jwk::generate_oct(32)?,
        };
        key.with_alg(alg.name())?
            .with_use(KeyUse::Encryption)?
            .with_default_kid()
    }

    /// Builds a symmetric key from raw bytes.
    pub fn from_secret(secret: &[u8]) -> Result<Jwk, Error> {
        Jwk::new_validated(Material::Oct {
            k: Zeroizing::new(secret.to_vec()),
        })
    }
}

/// A JWK Set (RFC 7517 §5).
#[derive(Debug, Clone, Default)]
pub struct JwkSet {
    keys: Vec<Jwk>,
    /// Keys left out when parsing: their position in `keys` and why.
    rejected: Vec<(usize, Error)>,
}

impl JwkSet {
    /// A set of the given keys.
    pub fn new(keys: Vec<Jwk>) -> Self {
        JwkSet {
            keys,
            rejected: Vec::new(),
        }
    }

    /// Parses a JWK Set with default [`Limits`].
    pub fn from_json(input: &[u8]) -> Result<Self, Error> {
        Self::from_json_with_limits(input, &Limits::default())
    }

    /// Parses a JWK Set. A key that cannot be used (a `kty`, curve or `alg`
    /// tessera does not support, a missing member, a value out of range, a
    /// weak or inconsistent key) is left out, as RFC 7517 §5 asks, and
    /// reported by [`JwkSet::rejected`]: one odd key must not take every
    /// other key of an issuer down with it. A document that is not a JWK Set,
    /// is over the limits, or gives two keys of one type the same `kid`
    /// (Wycheproof JWK tc4) is an error.
    pub fn from_json_with_limits(input: &[u8], limits: &Limits) -> Result<Self, Error> {
        let map = ScrubOnDrop(json::parse_object(input, limits, "JWK Set")?);
        let arr = map
            .0
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(invalid("keys"))?;
        if arr.len() > limits.max_keys {
            return Err(crate::error::DecodeError::TooLarge {
                what: "JWK Set",
                actual: arr.len(),
                limit: limits.max_keys,
            }
            .into());
        }
        // Two keys of one type under one kid make the whole set ambiguous
        // (which one does a token mean?), even if one of them is unusable.
        let mut kids = HashSet::new();
        for k in arr {
            let kid = k.get("kid").and_then(Value::as_str);
            let kty = k.get("kty").and_then(Value::as_str);
            if kid.is_some() && !kids.insert((kid, kty)) {
                return Err(invalid("two keys of one type share a kid"));
            }
        }
        let mut set = JwkSet::default();
        for (index, k) in arr.iter().enumerate() {
            let parsed = k.as_object().ok_or(invalid("keys")).and_then(Jwk::from_map);
            match parsed {
                Ok(jwk) => set.keys.push(jwk),
                Err(e) => set.rejected.push((index, e)),
            }
        }
        Ok(set)
    }

    /// The keys.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// How many keys were left out when parsing.
    pub fn skipped(&self) -> usize {
        self.rejected.len()
    }

    /// The keys left out when parsing: each one's index in the document's
    /// `keys` array, and why.
    pub fn rejected(&self) -> &[(usize, Error)] {
        &self.rejected
    }

    /// Keys with this `kid`.
    pub fn find<'a>(&'a self, kid: &'a str) -> impl Iterator<Item = &'a Jwk> + 'a {
        self.keys.iter().filter(move |k| k.kid() == Some(kid))
    }

    /// The public JWK Set as JSON (symmetric keys are left out).
    pub fn to_public_json(&self) -> String {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .filter_map(|k| k.to_public().ok())
            .filter_map(|k| serde_json::from_str(&k.to_json()).ok())
            .collect();
        serde_json::json!({ "keys": keys }).to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let k = Jwk::from_secret(&[0x41; 32]).unwrap();
        let dbg = format!("{k:?}");
        assert!(!dbg.contains("QUFB"), "{dbg}");
        assert!(!k.to_json().contains("QUFB"));
        assert!(k.to_private_json().contains("QUFB"));
        let ec = Jwk::generate_ec(EcCurve::P256).unwrap();
        let d = match &ec.material {
            Material::Ec { d: Some(d), .. } => b64::encode(d),
            _ => unreachable!(),
        };
        assert!(!format!("{ec:?}").contains(&d));
        assert!(!ec.to_json().contains(&d));
    }

    #[test]
    fn generated_keys_round_trip() {
        for alg in JwsAlgorithm::all() {
            let k = Jwk::generate_for(alg).unwrap();
            let back = Jwk::from_json(k.to_private_json().as_bytes()).unwrap();
            assert_eq!(back.thumbprint(), k.thumbprint());
            assert_eq!(back.kid(), k.kid());
            if k.is_symmetric() {
                // RFC 7638 §7: a secret's thumbprint hashes the secret; the
                // kid is random instead, and Debug leaves it out.
                assert_ne!(k.kid(), Some(k.thumbprint().as_str()));
                assert!(!format!("{k:?}").contains(&k.thumbprint()));
                assert!(format!("{k:?}").contains("thumbprint: None"));
            } else {
                assert_eq!(back.kid(), Some(k.thumbprint().as_str()));
                assert!(format!("{k:?}").contains(&k.thumbprint()));
            }
            back.check_permits(KeyOp::Sign, alg).unwrap();
        }
        let x = Jwk::generate_okp(OkpCurve::X25519).unwrap();
        let back = Jwk::from_json(x.to_private_json().as_bytes()).unwrap();
        assert_eq!(back.thumbprint(), x.thumbprint());
    }

    #[test]
    fn use_and_key_ops_must_agree() {
        let j = br#"{"kty":"oct","k":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8","use":"sig","key_ops":["encrypt"]}"#;
        assert_eq!(Jwk::from_json(j).unwrap_err().code(), "ERR_JWK_INVALID");
        let j = br#"{"kty":"oct","k":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8","key_ops":["sign","sign"]}"#;
        assert_eq!(Jwk::from_json(j).unwrap_err().code(), "ERR_JWK_INVALID");
    }

    #[test]
    fn mismatched_private_part_is_rejected() {
        let a = Jwk::generate_ec(EcCurve::P256).unwrap();
        let b = Jwk::generate_ec(EcCurve::P256).unwrap();
        let mut m: Map<String, Value> = serde_json::from_str(&a.to_private_json()).unwrap();
        let bm: Map<String, Value> = serde_json::from_str(&b.to_private_json()).unwrap();
        m.insert("d".into(), bm["d"].clone());
        assert_eq!(Jwk::from_map(&m).unwrap_err().code(), "ERR_KEY_REJECTED");
    }

    #[test]
    fn jwk_set_leaves_out_unusable_keys_and_says_why() {
        let good = Jwk::generate_for(JwsAlgorithm::ES256)
            .unwrap()
            .to_public()
            .unwrap();
        let doc = format!(
            r#"{{"keys":[{},{{"kty":"AKP","alg":"ML-DSA-44","pub":"AA"}},{{"kty":"oct","k":""}},
            {{"kty":"EC","crv":"P-256","alg":"ES521","x":"{x}","y":"{y}"}},5]}}"#,
            good.to_json(),
            x = serde_json::from_str::<Value>(&good.to_json()).unwrap()["x"]
                .as_str()
                .unwrap(),
            y = serde_json::from_str::<Value>(&good.to_json()).unwrap()["y"]
                .as_str()
                .unwrap(),
        );
        let set = JwkSet::from_json(doc.as_bytes()).unwrap();
        assert_eq!(set.keys().len(), 1);
        let why: Vec<(usize, &str)> = set.rejected().iter().map(|(i, e)| (*i, e.code())).collect();
        assert_eq!(
            why,
            [
                (1, "ERR_JWK_UNSUPPORTED"),
                (2, "ERR_KEY_TOO_WEAK"),
                (3, "ERR_JWK_UNSUPPORTED"),
                (4, "ERR_JWK_INVALID")
            ]
        );
        // Two keys of one type under one kid: ambiguous, refused even when
        // one of them is unusable (Wycheproof JWK tc4).
        let dup = br#"{"keys":[{"kty":"oct","kid":"a","k":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"},{"kty":"oct","kid":"a","k":"!"}]}"#;
        assert_eq!(
            JwkSet::from_json(dup).unwrap_err().code(),
            "ERR_JWK_INVALID"
        );
        // Not a JWK Set at all is still an error.
        assert!(JwkSet::from_json(br#"{"key":[]}"#).is_err());
        assert!(JwkSet::from_json(br#"[]"#).is_err());
    }
}
