//! JSON Web Signature (RFC 7515), with RFC 7797 unencoded payloads.
//!
//! Signing: build a [`Signer`] from a [`Jwk`](crate::jwk::Jwk) and the one
//! algorithm it will use, then `sign_compact`, `sign_flattened` or
//! [`sign_general`]. Verifying: build a [`Verifier`] from keys and, for each
//! key, the algorithms it may serve; then `verify_compact` or `verify_json`.
//! Only a successful verification hands out the payload.
//!
//! ```
//! use tessera_jose::jwa::JwsAlgorithm;
//! use tessera_jose::jwk::Jwk;
//! use tessera_jose::jws::{JwsHeader, Signer, Verifier};
//!
//! let key = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
//! let token = Signer::new(&key, JwsAlgorithm::ES256)
//!     .unwrap()
//!     .sign_compact(&JwsHeader::new().typ("JWT"), b"hello")
//!     .unwrap();
//!
//! let verifier = Verifier::builder()
//!     .key(&key.to_public().unwrap(), &[JwsAlgorithm::ES256])
//!     .unwrap()
//!     .build()
//!     .unwrap();
//! let verified = verifier.verify_compact(&token).unwrap();
//! assert_eq!(verified.payload(), b"hello");
//! assert_eq!(verified.header().typ(), Some("JWT"));
//! ```

mod sign;
mod verify;

pub use sign::{sign_general, GeneralSignature, Signer};
pub(crate) use verify::{split_compact, typ_matches};
pub use verify::{
    SignaturePolicy, UnverifiedJws, Verified, VerifiedSignature, Verifier, VerifierBuilder,
};

use serde_json::{Map, Value};

use crate::b64;
use crate::error::{Error, JwsError};
use crate::json::{self, Limits};
use crate::jwa::JwsAlgorithm;

/// Header names registered by RFC 7515 and RFC 7516: they may never be listed
/// in `crit` (RFC 7515 §4.1.11).
pub(crate) const REGISTERED: &[&str] = &[
    "alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit", "enc",
    "zip", "epk", "apu", "apv", "iv", "tag", "p2s", "p2c",
];

/// Header names that say what a token is: honoured only when integrity
/// protected, refused in an unprotected header (JWS and JWE alike).
const MUST_BE_PROTECTED: &[&str] = &["typ", "cty"];

/// Whether an unprotected header holds a member that must be protected
/// ([`MUST_BE_PROTECTED`]): the one test behind every such refusal, JWS and
/// JWE, reading and writing.
pub(crate) fn types_unprotected(unprotected: &Map<String, Value>) -> bool {
    MUST_BE_PROTECTED
        .iter()
        .any(|n| unprotected.contains_key(*n))
}

/// A JOSE header after parsing: the union of the protected and unprotected
/// members, with `alg`, `b64` and `crit` already checked. Immutable and
/// cheap to clone.
#[derive(Debug, Clone, PartialEq)]
pub struct Header(std::sync::Arc<HeaderFields>);

#[derive(Debug, PartialEq)]
struct HeaderFields {
    alg: JwsAlgorithm,
    b64: bool,
    crit: Vec<String>,
    joint: Map<String, Value>,
}

impl Header {
    /// The algorithm (always one the verifier allowed, once verified).
    pub fn alg(&self) -> JwsAlgorithm {
        self.0.alg
    }
    /// The `kid`, if it is a string.
    pub fn kid(&self) -> Option<&str> {
        self.0.joint.get("kid").and_then(Value::as_str)
    }
    /// The `typ`, if it is a string.
    pub fn typ(&self) -> Option<&str> {
        self.0.joint.get("typ").and_then(Value::as_str)
    }
    /// The `cty`, if it is a string.
    pub fn cty(&self) -> Option<&str> {
        self.0.joint.get("cty").and_then(Value::as_str)
    }
    /// Whether the payload is base64url-encoded (RFC 7797 `b64`; default true).
    pub fn b64(&self) -> bool {
        self.0.b64
    }
    /// The `crit` list.
    pub fn crit(&self) -> &[String] {
        &self.0.crit
    }
    /// Any header member.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.joint.get(name)
    }
    /// All members.
    pub fn members(&self) -> &Map<String, Value> {
        &self.0.joint
    }
}

/// What the caller has declared understood.
pub(crate) struct HeaderRules<'a> {
    pub understood_crit: &'a [String],
}

/// Decodes a protected header segment (may be empty only in JSON serializations).
pub(crate) fn decode_protected(
    segment: &str,
    limits: &Limits,
) -> Result<Map<String, Value>, Error> {
    if segment.is_empty() {
        return Ok(Map::new());
    }
    // Checked before decoding, so an oversize header costs nothing.
    json::check_size(
        "protected header",
        segment.len() / 4 * 3,
        limits.max_header_bytes,
    )?;
    let bytes = b64::decode(segment, "protected header")?;
    let limits = Limits {
        max_json_bytes: limits.max_header_bytes,
        ..*limits
    };
    json::parse_object(&bytes, &limits, "protected header")
}

/// RFC 7515 §4.1.11 / RFC 7516 §4.1.13: the protected `crit` list, if it is
/// well-formed and every name in it is understood (declared by the caller or
/// in `always`); `None` otherwise. Names must be non-empty, unregistered,
/// unique, and present in the protected header.
pub(crate) fn parse_crit(
    protected: &Map<String, Value>,
    understood: &[String],
    always: &[&str],
) -> Option<Vec<String>> {
    match protected.get("crit") {
        None => Some(Vec::new()),
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut names: Vec<String> = Vec::with_capacity(items.len());
            for item in items {
                let name = item.as_str()?;
                let ok = !name.is_empty()
                    && !REGISTERED.contains(&name)
                    && !names.iter().any(|n| n == name)
                    && protected.contains_key(name)
                    && (always.contains(&name) || understood.iter().any(|u| u == name));
                if !ok {
                    return None;
                }
                names.push(name.to_owned());
            }
            Some(names)
        }
        Some(_) => None,
    }
}

/// RFC 7515 §5.2 steps 4–5 and §4.1.11, RFC 7797 §3 and §6.
pub(crate) fn build_header(
    protected: Map<String, Value>,
    unprotected: Option<&Map<String, Value>>,
    rules: &HeaderRules<'_>,
) -> Result<Header, Error> {
    // `crit` and `b64` are only meaningful in the protected header, so they
    // are checked before the unprotected members are merged in.
    if unprotected.is_some_and(|u| u.contains_key("crit")) {
        return Err(JwsError::Crit.into());
    }
    // `typ` and `cty` decide what a token is (RFC 8725 §3.11 explicit
    // typing; a nested token's `cty`): anyone can add an unprotected member
    // to an authentic JWS, so they count only when signed.
    if unprotected.is_some_and(types_unprotected) {
        return Err(JwsError::InvalidHeader("typ and cty must be integrity protected").into());
    }
    let crit = parse_crit(&protected, rules.understood_crit, &["b64"]).ok_or(JwsError::Crit)?;
    let b64 = match protected.get("b64") {
        None if unprotected.is_some_and(|u| u.contains_key("b64")) => {
            return Err(JwsError::InvalidHeader("b64 must be protected and critical").into())
        }
        None => true,
        // RFC 7797 §3 and §6: protected, and listed in crit (erratum CB-1).
        Some(Value::Bool(b)) if crit.iter().any(|c| c == "b64") => *b,
        Some(_) => {
            return Err(JwsError::InvalidHeader("b64 must be protected and critical").into())
        }
    };
    let mut joint = protected;
    if let Some(u) = unprotected {
        for (k, v) in u {
            if joint.insert(k.clone(), v.clone()).is_some() {
                return Err(JwsError::InvalidHeader("a member is in both headers").into());
            }
        }
    }
    let alg = match joint.get("alg") {
        Some(Value::String(s)) => s.parse::<JwsAlgorithm>()?,
        Some(_) => return Err(JwsError::Malformed("alg is not a string").into()),
        None => return Err(JwsError::UnsupportedAlgorithm.into()),
    };
    Ok(Header(std::sync::Arc::new(HeaderFields {
        alg,
        b64,
        crit,
        joint,
    })))
}

/// Header parameters for signing. `alg` comes from the [`Signer`]; `kid` from
/// the key unless set here.
///
/// ```
/// use tessera_jose::jws::JwsHeader;
/// let h = JwsHeader::new().typ("at+jwt").kid("k1");
/// assert!(h.clone().param("alg", "none".into()).is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JwsHeader {
    params: Map<String, Value>,
    crit: Vec<String>,
    unencoded: bool,
}

impl JwsHeader {
    /// An empty header.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `typ` (RFC 8725 §3.11: explicit typing).
    pub fn typ(mut self, typ: &str) -> Self {
        self.params.insert("typ".into(), typ.into());
        self
    }
    /// Sets `cty`.
    pub fn cty(mut self, cty: &str) -> Self {
        self.params.insert("cty".into(), cty.into());
        self
    }
    /// Sets `kid`.
    pub fn kid(mut self, kid: &str) -> Self {
        self.params.insert("kid".into(), kid.into());
        self
    }
    /// Sets any other parameter. `alg`, `crit` and `b64` are refused: the
    /// signer sets `alg`; use [`JwsHeader::critical`] and
    /// [`JwsHeader::unencoded_payload`] for the others.
    pub fn param(mut self, name: &str, value: Value) -> Result<Self, Error> {
        if matches!(name, "alg" | "crit" | "b64") {
            return Err(JwsError::InvalidHeader("alg, crit and b64 have their own setters").into());
        }
        self.params.insert(name.into(), value);
        Ok(self)
    }
    /// Sets an extension parameter and lists it in `crit`.
    pub fn critical(mut self, name: &str, value: Value) -> Result<Self, Error> {
        if REGISTERED.contains(&name) || matches!(name, "b64") {
            return Err(JwsError::Crit.into());
        }
        self.params.insert(name.into(), value);
        if !self.crit.iter().any(|c| c == name) {
            self.crit.push(name.into());
        }
        Ok(self)
    }
    /// RFC 7797: sign the payload as-is (`"b64": false`, listed in `crit`).
    /// Never for JWTs (RFC 7797 §7): `jwt::sign` refuses such a header.
    pub fn unencoded_payload(mut self) -> Self {
        self.unencoded = true;
        self
    }

    pub(crate) fn is_unencoded(&self) -> bool {
        self.unencoded
    }

    /// The protected header for `alg`, adding `kid` and `typ` when the
    /// header has none of its own.
    pub(crate) fn protect(
        &self,
        alg: JwsAlgorithm,
        kid: Option<&str>,
        default_typ: Option<&str>,
    ) -> ProtectedHeader {
        let mut map = self.params.clone();
        map.insert("alg".into(), alg.name().into());
        if let (false, Some(kid)) = (map.contains_key("kid"), kid) {
            map.insert("kid".into(), kid.into());
        }
        if let (false, Some(typ)) = (map.contains_key("typ"), default_typ) {
            map.insert("typ".into(), typ.into());
        }
        if self.unencoded || !self.crit.is_empty() {
            let mut crit = Vec::new();
            if self.unencoded {
                map.insert("b64".into(), false.into());
                crit.push(Value::from("b64"));
            }
            crit.extend(self.crit.iter().map(|c| Value::from(c.as_str())));
            map.insert("crit".into(), Value::Array(crit));
        }
        // `alg` first, then the rest in name order: readable, and stable.
        let mut json = Vec::with_capacity(96);
        json.extend_from_slice(b"{\"alg\":\"");
        json.extend_from_slice(alg.name().as_bytes());
        json.push(b'"');
        for (k, v) in map.iter().filter(|(k, _)| *k != "alg") {
            json.push(b',');
            // Writing a string key or a Value into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut json, k);
            json.push(b':');
            let _ = serde_json::to_writer(&mut json, v);
        }
        json.push(b'}');
        ProtectedHeader(std::sync::Arc::new(ProtectedFields {
            encoded: b64::encode(&json),
            map,
        }))
    }
}

/// A protected header with its exact bytes, as it will be signed.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtectedHeader(std::sync::Arc<ProtectedFields>);

#[derive(Debug, PartialEq)]
struct ProtectedFields {
    encoded: String,
    map: Map<String, Value>,
}

impl ProtectedHeader {
    /// Uses these exact header bytes (parsed strictly). For reproducing
    /// published examples byte for byte; [`JwsHeader`] is the usual way.
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        let map = json::parse_object(bytes, &Limits::default(), "protected header")?;
        Ok(ProtectedHeader(std::sync::Arc::new(ProtectedFields {
            encoded: b64::encode(bytes),
            map,
        })))
    }
    /// The base64url encoding that is signed.
    pub fn encoded(&self) -> &str {
        &self.0.encoded
    }
    /// The parsed members.
    pub fn members(&self) -> &Map<String, Value> {
        &self.0.map
    }
}
