//! Strict JSON for headers, claims and keys.
//!
//! RFC 7515 §5.2 and RFC 7519 §4 let a parser reject duplicate member names;
//! tessera always does, since two parsers keeping different duplicates is
//! how a token can mean one thing to the verifier and another to the app.
//! Nesting depth and total size are bounded by [`Limits`].
//!
//! ```
//! use tessera_jose::json::{parse_object, Limits};
//! let limits = Limits::default();
//! assert!(parse_object(br#"{"a":1}"#, &limits, "example").is_ok());
//! assert!(parse_object(br#"{"a":1,"a":2}"#, &limits, "example").is_err());
//! ```

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::{DecodeError, Error};

/// Size and shape limits applied to every untrusted input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest compact or JSON-serialized token accepted, in bytes.
    pub max_token_bytes: usize,
    /// Largest decoded JOSE header, in bytes.
    pub max_header_bytes: usize,
    /// Largest JSON document other than a header (claims, JWK, JWKS), in bytes.
    pub max_json_bytes: usize,
    /// Deepest nesting of JSON arrays and objects.
    pub max_json_depth: usize,
    /// Most signatures in a general JSON JWS.
    pub max_signatures: usize,
    /// Most keys in a JWK Set.
    pub max_keys: usize,
    /// Most recipients in a general JSON JWE.
    pub max_recipients: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_token_bytes: 256 * 1024,
            max_header_bytes: 8 * 1024,
            max_json_bytes: 256 * 1024,
            max_json_depth: 16,
            max_signatures: 16,
            max_keys: 100,
            max_recipients: 16,
        }
    }
}

/// Checks `len` against `limit`.
pub(crate) fn check_size(what: &'static str, actual: usize, limit: usize) -> Result<(), Error> {
    if actual > limit {
        Err(DecodeError::TooLarge {
            what,
            actual,
            limit,
        }
        .into())
    } else {
        Ok(())
    }
}

/// Checks an already-parsed unprotected header (JWS `header`, JWE
/// `unprotected` / `header`) against the header size limit, as serialized.
pub(crate) fn check_unprotected_header(
    header: &Map<String, Value>,
    limits: &Limits,
) -> Result<(), Error> {
    let size = serde_json::to_string(header).map_or(usize::MAX, |t| t.len());
    check_size("unprotected header", size, limits.max_header_bytes)
}

/// Parses `input` as a JSON object, rejecting duplicate member names and
/// nesting deeper than `limits.max_json_depth`. `what` names the input in errors.
pub fn parse_object(
    input: &[u8],
    limits: &Limits,
    what: &'static str,
) -> Result<Map<String, Value>, Error> {
    match parse_value(input, limits, what)? {
        Value::Object(map) => Ok(map),
        _ => Err(DecodeError::Json {
            what,
            reason: "expected a JSON object".into(),
        }
        .into()),
    }
}

/// Parses any JSON value with the same rules as [`parse_object`].
pub fn parse_value(input: &[u8], limits: &Limits, what: &'static str) -> Result<Value, Error> {
    check_size(what, input.len(), limits.max_json_bytes)?;
    let mut de = serde_json::Deserializer::from_slice(input);
    let failure = std::cell::Cell::new(None);
    let seed = StrictValue {
        depth_left: limits.max_json_depth,
        failure: &failure,
    };
    let result = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    match result {
        Ok(v) => Ok(v),
        Err(e) => Err(match failure.take() {
            Some(Failure::Duplicate(member)) => DecodeError::DuplicateMember { what, member },
            Some(Failure::TooDeep) => DecodeError::TooDeep(what),
            None => DecodeError::Json {
                what,
                reason: e.to_string(),
            },
        }
        .into()),
    }
}

enum Failure {
    Duplicate(String),
    TooDeep,
}

#[derive(Clone, Copy)]
struct StrictValue<'a> {
    depth_left: usize,
    failure: &'a std::cell::Cell<Option<Failure>>,
}

impl StrictValue<'_> {
    fn nested<E: de::Error>(self) -> Result<Self, E> {
        if self.depth_left == 0 {
            self.failure.set(Some(Failure::TooDeep));
            return Err(E::custom("nesting too deep"));
        }
        Ok(StrictValue {
            depth_left: self.depth_left - 1,
            failure: self.failure,
        })
    }
}

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(inner)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match out.entry(key) {
                serde_json::map::Entry::Occupied(taken) => {
                    self.failure
                        .set(Some(Failure::Duplicate(taken.key().clone())));
                    return Err(de::Error::custom("duplicate member"));
                }
                serde_json::map::Entry::Vacant(slot) => {
                    slot.insert(map.next_value_seed(inner)?);
                }
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rejects_duplicates_at_any_depth() {
        let l = Limits::default();
        let e = parse_object(br#"{"a":{"b":1,"b":2}}"#, &l, "t").unwrap_err();
        assert_eq!(e.code(), "ERR_JSON_DUPLICATE_MEMBER");
        // Escaped spelling of the same name is still a duplicate.
        let e = parse_object(br#"{"alg":"HS256","\u0061lg":"none"}"#, &l, "t").unwrap_err();
        assert_eq!(e.code(), "ERR_JSON_DUPLICATE_MEMBER");
    }

    #[test]
    fn bounds_depth_and_size() {
        let l = Limits {
            max_json_depth: 3,
            max_json_bytes: 64,
            ..Limits::default()
        };
        assert!(parse_object(br#"{"a":{"b":[1]}}"#, &l, "t").is_ok());
        let e = parse_object(br#"{"a":{"b":[[1]]}}"#, &l, "t").unwrap_err();
        assert_eq!(e.code(), "ERR_JSON_TOO_DEEP");
        let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(100));
        assert_eq!(
            parse_object(big.as_bytes(), &l, "t").unwrap_err().code(),
            "ERR_TOO_LARGE"
        );
        // Deep input far beyond serde_json's own recursion guard fails cleanly.
        let deep = "[".repeat(100_000);
        let l = Limits {
            max_json_bytes: 1 << 20,
            ..Limits::default()
        };
        assert!(parse_value(deep.as_bytes(), &l, "t").is_err());
    }

    #[test]
    fn rejects_trailing_data_and_non_objects() {
        let l = Limits::default();
        assert!(parse_object(br#"{"a":1} x"#, &l, "t").is_err());
        assert!(parse_object(br#"[1]"#, &l, "t").is_err());
        assert!(parse_object(b"{\"a\":1,}", &l, "t").is_err());
    }
}
