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
