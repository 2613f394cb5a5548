//! Reading a token without verifying it. **Anyone can read a JWS**: its
//! payload is only encoded, not encrypted. This module exists so tools can
//! show what a token says (`tessera jwt inspect`); nothing it returns is
//! authenticated, so never make a decision from it.
//!
//! ```
//! use tessera_jose::danger::decode_unverified;
//! let parts = decode_unverified("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln").unwrap();
//! assert_eq!(parts.header["alg"], "HS256");
//! assert_eq!(parts.payload, br#"{"sub":"x"}"#);
//! ```

use serde_json::{Map, Value};

use crate::b64;
use crate::error::Error;
use crate::json::Limits;

/// The decoded, **unverified** parts of a compact JWS.
#[derive(Debug, Clone, PartialEq)]
pub struct UnverifiedParts {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The payload bytes (for `b64: false`, as transmitted).
    pub payload: Vec<u8>,
    /// The signature bytes.
    pub signature: Vec<u8>,
}

/// Decodes a compact JWS **without checking its signature**.
pub fn decode_unverified(token: &str) -> Result<UnverifiedParts, Error> {
    let limits = Limits::default();
    let (h, p, s) = crate::jws::split_compact(token, &limits)?;
    let header = crate::jws::decode_protected(h, &limits)?;
    let payload = if header.get("b64") == Some(&Value::Bool(false)) {
        p.as_bytes().to_vec()
    } else {
        b64::decode(p, "payload")?
    };
    Ok(UnverifiedParts {
        header,
        payload,
        signature: b64::decode(s, "signature")?,
    })
}

/// One signature of a JSON JWS, **unverified**.
#[derive(Debug, Clone, PartialEq)]
pub struct UnverifiedSignatureHeaders {
    /// The protected header (empty when the signature has none).
    pub protected: Map<String, Value>,
    /// The unprotected `header` member, if any.
    pub unprotected: Option<Map<String, Value>>,
}

/// The decoded, **unverified** parts of a flattened or general JSON JWS.
#[derive(Debug, Clone, PartialEq)]
pub struct UnverifiedJson {
    /// The payload bytes (for `b64: false`, as transmitted); `None` when detached.
    pub payload: Option<Vec<u8>>,
    /// Each signature's headers, in order.
    pub signatures: Vec<UnverifiedSignatureHeaders>,
}

/// Decodes a flattened or general JSON JWS **without checking any signature**.
///
/// ```
/// use tessera_jose::danger::decode_unverified_json;
/// let jws = r#"{"payload":"eyJzdWIiOiJ4In0","protected":"eyJhbGciOiJFUzI1NiJ9","signature":"c2ln"}"#;
/// let parts = decode_unverified_json(jws).unwrap();
/// assert_eq!(parts.signatures[0].protected["alg"], "ES256");
/// assert_eq!(parts.payload.as_deref(), Some(&br#"{"sub":"x"}"#[..]));
/// ```
pub fn decode_unverified_json(input: &str) -> Result<UnverifiedJson, Error> {
    let limits = Limits::default();
    let (payload, headers) =
        crate::jws::UnverifiedJws::parse_json(input, &limits)?.into_unverified();
    // The payload is encoded unless every signature says `b64: false`
    // (RFC 7797 §3: all signatures of one JWS must agree).
    let unencoded = headers
        .first()
        .is_some_and(|(p, _)| p.get("b64") == Some(&Value::Bool(false)));
    let payload = match payload {
        Some(p) if unencoded => Some(p.into_bytes()),
        Some(p) => Some(b64::decode(&p, "payload")?),
        None => None,
    };
    Ok(UnverifiedJson {
        payload,
        signatures: headers
            .into_iter()
            .map(|(protected, unprotected)| UnverifiedSignatureHeaders {
                protected,
                unprotected,
            })
            .collect(),
    })
}

/// The headers of a JWE (compact or JSON), read **without decrypting**: the
/// plaintext stays sealed, and nothing here is authenticated.
#[derive(Debug, Clone, PartialEq)]
pub struct UnopenedJwe {
    /// The protected header.
    pub protected: Map<String, Value>,
    /// The shared unprotected header (`unprotected`, JSON only).
    pub shared: Option<Map<String, Value>>,
    /// Each recipient's own header (JSON only; `None` where absent).
    pub recipients: Vec<Option<Map<String, Value>>>,
}

/// Reads a JWE's headers without decrypting it.
///
/// ```
/// use tessera_jose::danger::decode_jwe_headers;
/// let jwe = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..aXY.Y3Q.dGFn";
/// let headers = decode_jwe_headers(jwe).unwrap();
/// assert_eq!(headers.protected["enc"], "A256GCM");
/// ```
pub fn decode_jwe_headers(input: &str) -> Result<UnopenedJwe, Error> {
    let (protected, shared, recipients) = crate::jwe::unopened_headers(input, &Limits::default())?;
    Ok(UnopenedJwe {
        protected,
        shared,
        recipients,
    })
}
