//! Verifying JWS. The verifier owns its keys and, for each key, the
//! algorithms it may serve; a token's header can only *match* those.

use serde_json::{Map, Value};

use super::{build_header, decode_protected, Header, HeaderRules};
use crate::b64;
use crate::crypto::PreparedVerifier;
use crate::error::{Error, JwsError, KeyError};
use crate::json::{self, Limits};
use crate::jwa::JwsAlgorithm;
use crate::jwk::{ensure_unique_kids, Jwk, JwkSet, KeyUse};
use crate::recent::Recent;

struct VerifierKey {
    kid: Option<String>,
    kty: &'static str,
    /// One prepared key per allowed algorithm.
    by_alg: Vec<(JwsAlgorithm, PreparedVerifier)>,
}

/// Keys plus allowed algorithms, `crit` extensions understood, an optional
/// expected `typ`, and input limits. Build one with [`Verifier::builder`].
pub struct Verifier {
    keys: Vec<VerifierKey>,
    understood_crit: Vec<String>,
    typ: Option<String>,
    limits: Limits,
    /// Protected headers of recently *verified* compact tokens, parsed. An
    /// issuer sends the same header bytes on every token, so this spares
    /// decoding and parsing them again; only authentic headers get in, so an
    /// attacker cannot fill it.
    recent_headers: Recent<Box<str>, Header>,
}

/// How many verified protected headers a verifier remembers.
const RECENT_HEADERS: usize = 8;

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<_> = self
            .keys
            .iter()
            .map(|k| {
                (
                    k.kid.clone(),
                    k.by_alg.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
                )
            })
            .collect();
        f.debug_struct("Verifier")
            .field("keys", &keys)
            .field("understood_crit", &self.understood_crit)
            .field("typ", &self.typ)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Verifier`]; every key is checked against its algorithms here,
/// not when a token arrives.
#[derive(Default)]
pub struct VerifierBuilder {
    keys: Vec<VerifierKey>,
    understood_crit: Vec<String>,
    typ: Option<String>,
    limits: Limits,
}

impl std::fmt::Debug for VerifierBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifierBuilder").finish_non_exhaustive()
    }
}

impl VerifierBuilder {
    /// Adds `key` for the algorithms `algs`. Each must suit the key's type,
    /// size, `alg`, `use` and `key_ops`, or this fails. A private asymmetric
    /// key contributes only its public part.
    pub fn key(mut self, key: &Jwk, algs: &[JwsAlgorithm]) -> Result<Self, Error> {
        if algs.is_empty() {
            return Err(KeyError::Empty.into());
        }
        let key = if key.is_private() && !key.is_symmetric() {
            key.to_public()?
        } else {
            key.clone()
        };
        let mut by_alg = Vec::with_capacity(algs.len());
        for &alg in algs {
            by_alg.push((alg, key.prepare_verifier(alg)?));
        }
        self.keys.push(VerifierKey {
            kid: key.kid().map(str::to_owned),
            kty: key.kty(),
            by_alg,
        });
        Ok(self)
    }

    /// Adds every key of `set` for the algorithms of `allowed` it can serve.
    /// Keys marked `use: enc` or bound to a non-JWS `alg` are left out; so
    /// are algorithms a key cannot serve (type, size, its own `alg`).
    ///
    /// A set that mixes symmetric secrets with asymmetric keys is refused: a
    /// JWK Set is usually published, and a secret in it is a leak waiting to
    /// happen (Wycheproof JWK tc1).
    pub fn jwk_set(mut self, set: &JwkSet, allowed: &[JwsAlgorithm]) -> Result<Self, Error> {
        let symmetric = set.keys().iter().filter(|k| k.is_symmetric()).count();
        if symmetric != 0 && symmetric != set.keys().len() {
            return Err(KeyError::InvalidJwk("JWK Set mixes symmetric and asymmetric keys").into());
        }
        for key in set.keys() {
            if key.key_use() == Some(&KeyUse::Encryption) {
                continue;
            }
            if key
                .alg()
                .is_some_and(|a| a.parse::<JwsAlgorithm>().is_err())
            {
                continue;
            }
            let algs: Vec<JwsAlgorithm> = allowed
                .iter()
                .copied()
                .filter(|&a| key.check_permits(crate::jwk::KeyOp::Verify, a).is_ok())
                .collect();
            if !algs.is_empty() {
                self = self.key(key, &algs)?;
            }
        }
        Ok(self)
    }

    /// Declares a `crit` extension understood (RFC 7515 §4.1.11). `b64` is
    /// always understood; anything else critical is refused.
    pub fn understand_crit(mut self, name: &str) -> Self {
        self.understood_crit.push(name.to_owned());
        self
    }

    /// Requires `typ` to equal `typ` (RFC 8725 §3.11), compared without case
    /// and with an optional `application/` prefix (RFC 7515 §4.1.9).
    pub fn expect_typ(mut self, typ: &str) -> Self {
        self.typ = Some(typ.to_owned());
        self
    }

    /// Replaces the default input limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The verifier. Refused when empty, or when two keys of the same type
    /// share a `kid` (which key a token means would then be ambiguous;
    /// RFC 7517 §4.5 allows a shared `kid` only across key types).
    pub fn build(self) -> Result<Verifier, Error> {
        if self.keys.is_empty() {
            return Err(KeyError::Empty.into());
        }
        ensure_unique_kids(self.keys.iter().map(|k| (k.kid.as_deref(), k.kty)))?;
        Ok(Verifier {
            keys: self.keys,
            understood_crit: self.understood_crit,
            typ: self.typ,
            limits: self.limits,
            recent_headers: Recent::new(RECENT_HEADERS),
        })
    }
}

/// RFC 7515 §4.1.9: `typ` is compared without case, and `application/`
/// may be omitted (on either side) when the rest has no other `/`.
pub(crate) fn typ_matches(actual: &str, expected: &str) -> bool {
    fn short(t: &str) -> &str {
        match t.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => {
                let rest = t.get(12..).unwrap_or_default();
                if rest.contains('/') {
                    t
                } else {
                    rest
                }
            }
            _ => t,
        }
    }
    short(actual).eq_ignore_ascii_case(short(expected))
}

/// Splits a compact JWS into its three segments, after the size check.
/// RFC 7515 §7.1 and RFC 7797 §5.2: exactly three parts, encoded or not,
/// and a non-empty protected header.
pub(crate) fn split_compact<'a>(
    token: &'a str,
    limits: &Limits,
) -> Result<(&'a str, &'a str, &'a str), Error> {
    json::check_size("token", token.len(), limits.max_token_bytes)?;
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(""), Some(_), Some(_), None) => {
            Err(JwsError::Malformed("empty protected header").into())
        }
        (Some(header), Some(payload), Some(signature), None) => Ok((header, payload, signature)),
        _ => Err(JwsError::Malformed("expected three parts").into()),
    }
}

/// How many signatures of a general JSON JWS must verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignaturePolicy {
    /// At least one.
    Any,
    /// Every one.
    All,
}

/// A signature that verified.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedSignature {
    /// Its position in the serialization (0 for compact and flattened).
    pub index: usize,
    /// Its joint header.
    pub header: Header,
}

/// A verified JWS: only this type hands out a payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    payload: Vec<u8>,
    pub(crate) signatures: Vec<VerifiedSignature>,
}

impl Verified {
    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
    /// The payload, owned.
    pub fn into_payload(self) -> Vec<u8> {
        self.payload
    }
    /// The header of the first verified signature.
    pub fn header(&self) -> &Header {
        // `Verified` is only built with at least one signature.
        #[allow(clippy::indexing_slicing)]
        &self.signatures[0].header
    }
    /// Every signature that verified.
    pub fn signatures(&self) -> &[VerifiedSignature] {
        &self.signatures
    }
}

/// See [`UnverifiedJws::into_unverified`].
pub(crate) type UnverifiedJsonParts = (
    Option<String>,
    Vec<(Map<String, Value>, Option<Map<String, Value>>)>,
);

/// One signature, parsed but not verified.
#[derive(Debug, Clone)]
struct RawSignature {
    protected_b64: String,
    protected: Map<String, Value>,
    unprotected: Option<Map<String, Value>>,
    signature: String,
}

/// Where the payload is.
#[derive(Debug, Clone)]
enum RawPayload {
    /// The payload segment as transmitted (base64url, or raw for `b64: false`).
    Attached(String),
    /// Detached (RFC 7515 Appendix F).
    Detached,
}

/// A parsed JWS whose signatures have not been checked. It exposes headers
/// (to pick a verifier) but never the payload.
#[derive(Debug, Clone)]
pub struct UnverifiedJws {
    payload: RawPayload,
    signatures: Vec<RawSignature>,
}

impl UnverifiedJws {
    /// Parses a compact JWS (RFC 7515 §7.1). An empty payload segment is
    /// treated as detached only by the `*_detached` verify functions.
    pub fn parse_compact(token: &str, limits: &Limits) -> Result<Self, Error> {
        let (protected_b64, payload, signature) = split_compact(token, limits)?;
        let protected = decode_protected(protected_b64, limits)?;
        Ok(UnverifiedJws {
            payload: RawPayload::Attached(payload.to_owned()),
            signatures: vec![RawSignature {
                protected_b64: protected_b64.to_owned(),
                protected,
                unprotected: None,
                signature: signature.to_owned(),
            }],
        })
    }

    /// Parses a flattened or general JSON JWS (RFC 7515 §7.2).
    pub fn parse_json(input: &str, limits: &Limits) -> Result<Self, Error> {
        json::check_size("token", input.len(), limits.max_token_bytes)?;
        let doc_limits = Limits {
            max_json_bytes: limits.max_token_bytes,
            ..*limits
        };
        let doc = json::parse_object(input.as_bytes(), &doc_limits, "JWS JSON")?;
        let payload = match doc.get("payload") {
            Some(Value::String(p)) => RawPayload::Attached(p.clone()),
            None => RawPayload::Detached,
            Some(_) => return Err(JwsError::Malformed("payload is not a string").into()),
        };
        let parse_one = |obj: &Map<String, Value>| -> Result<RawSignature, Error> {
            let protected_b64 = match obj.get("protected") {
                Some(Value::String(p)) if !p.is_empty() => p.clone(),
                None => String::new(),
                Some(_) => return Err(JwsError::Malformed("protected").into()),
            };
            let unprotected = match obj.get("header") {
                Some(Value::Object(h)) => {
                    json::check_unprotected_header(h, limits)?;
                    Some(h.clone())
                }
                None => None,
                Some(_) => return Err(JwsError::Malformed("header").into()),
            };
            if protected_b64.is_empty() && unprotected.is_none() {
                return Err(JwsError::Malformed("a signature has no header").into());
            }
            let signature = match obj.get("signature") {
                Some(Value::String(s)) => s.clone(),
                _ => return Err(JwsError::Malformed("signature").into()),
            };
            Ok(RawSignature {
                protected: decode_protected(&protected_b64, limits)?,
                protected_b64,
                unprotected,
                signature,
            })
        };
        let signatures = match doc.get("signatures") {
            Some(Value::Array(list)) => {
                if ["protected", "header", "signature"]
                    .iter()
                    .any(|k| doc.contains_key(*k))
                {
                    return Err(JwsError::Malformed("both general and flattened members").into());
                }
                if list.is_empty() {
                    return Err(JwsError::Malformed("no signatures").into());
                }
                if list.len() > limits.max_signatures {
                    return Err(JwsError::TooManySignatures.into());
                }
                list.iter()
                    .map(|s| {
                        s.as_object()
                            .ok_or(JwsError::Malformed("signatures").into())
                            .and_then(parse_one)
                    })
                    .collect::<Result<Vec<_>, Error>>()?
            }
            Some(_) => return Err(JwsError::Malformed("signatures").into()),
            None => vec![parse_one(&doc)?],
        };
        Ok(UnverifiedJws {
            payload,
            signatures,
        })
    }

    /// The payload as transmitted (`None` when detached) and each signature's
    /// (protected, unprotected) headers, for [`crate::danger`] only.
    pub(crate) fn into_unverified(self) -> UnverifiedJsonParts {
        let payload = match self.payload {
            RawPayload::Attached(p) => Some(p),
            RawPayload::Detached => None,
        };
        let headers = self
            .signatures
            .into_iter()
            .map(|s| (s.protected, s.unprotected))
            .collect();
        (payload, headers)
    }

    /// The protected header of the first signature (e.g. a DPoP proof's
    /// `jwk`, RFC 9449, from which the proof's verifier is built): not
    /// authenticated until [`UnverifiedJws::verify`] succeeds.
    pub fn protected_header(&self) -> Option<&Map<String, Value>> {
        self.signatures.first().map(|s| &s.protected)
    }

    /// The `kid` of the first signature, if any (e.g. to choose a verifier).
    pub fn kid(&self) -> Option<&str> {
        let s = self.signatures.first()?;
        s.protected
            .get("kid")
            .or_else(|| s.unprotected.as_ref()?.get("kid"))
            .and_then(Value::as_str)
    }

    /// Verifies with `verifier`; for several signatures, per `policy`. An
    /// empty compact payload segment is an empty payload; a JSON JWS without
    /// `payload` needs [`UnverifiedJws::verify_detached`].
    pub fn verify(&self, verifier: &Verifier, policy: SignaturePolicy) -> Result<Verified, Error> {
        self.verify_inner(verifier, policy, None)
    }

    /// Verifies with a detached `payload` (RFC 7515 Appendix F).
    pub fn verify_detached(
        &self,
        verifier: &Verifier,
        policy: SignaturePolicy,
        payload: &[u8],
    ) -> Result<Verified, Error> {
        match &self.payload {
            RawPayload::Attached(p) if !p.is_empty() => {
                Err(JwsError::Malformed("payload is attached, not detached").into())
            }
            _ => self.verify_inner(verifier, policy, Some(payload)),
        }
    }

    fn verify_inner(
        &self,
        verifier: &Verifier,
        policy: SignaturePolicy,
        detached: Option<&[u8]>,
    ) -> Result<Verified, Error> {
        let rules = HeaderRules {
            understood_crit: &verifier.understood_crit,
        };
        let headers = self
            .signatures
            .iter()
            .map(|s| build_header(s.protected.clone(), s.unprotected.as_ref(), &rules))
            .collect::<Vec<_>>();
        // RFC 7797 §3: every signature must agree on b64.
        let mut b64_values = headers.iter().flatten().map(Header::b64);
        let encoded = b64_values.next().unwrap_or(true);
        if b64_values.any(|b| b != encoded) {
            return Err(JwsError::InvalidHeader("signatures disagree on b64").into());
        }
        // The payload, and the bytes that were signed after the '.'.
        let (payload, segment): (Vec<u8>, Vec<u8>) = match (&self.payload, detached) {
            (_, Some(p)) if encoded => (p.to_vec(), b64::encode(p).into_bytes()),
            (_, Some(p)) => (p.to_vec(), p.to_vec()),
            (RawPayload::Attached(s), None) if encoded => {
                if s.contains('.') {
                    return Err(JwsError::Malformed("expected three parts").into());
                }
                (b64::decode(s, "payload")?, s.as_bytes().to_vec())
            }
            (RawPayload::Attached(s), None) => (s.as_bytes().to_vec(), s.as_bytes().to_vec()),
            (RawPayload::Detached, None) => {
                return Err(
                    JwsError::Malformed("detached payload: use a *_detached function").into(),
                )
            }
        };
        let mut verified = Vec::new();
        let mut first_error = None;
        for (index, (raw, header)) in self.signatures.iter().zip(headers).enumerate() {
            let outcome = header.and_then(|h| {
                let mut input = Vec::with_capacity(raw.protected_b64.len() + 1 + segment.len());
                input.extend_from_slice(raw.protected_b64.as_bytes());
                input.push(b'.');
                input.extend_from_slice(&segment);
                verifier.check_one(&h, &input, &raw.signature)?;
                Ok(h)
            });
            match outcome {
                Ok(header) => verified.push(VerifiedSignature { index, header }),
                Err(e) if policy == SignaturePolicy::All => return Err(e),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if verified.is_empty() {
            return Err(first_error.unwrap_or(JwsError::SignatureInvalid.into()));
        }
        Ok(Verified {
            payload,
            signatures: verified,
        })
    }
}

impl Verifier {
    /// Starts a builder.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Verifies a compact JWS.
    pub fn verify_compact(&self, token: &str) -> Result<Verified, Error> {
        // The hot path: the signing input is a prefix of the token itself, so
        // nothing is copied, and the payload is decoded only once it verified.
        let (protected_b64, payload, signature) = split_compact(token, &self.limits)?;
        let cached = self
            .recent_headers
            .find(|encoded| &**encoded == protected_b64);
        let header = match &cached {
            Some(h) => h.clone(),
            None => {
                let rules = HeaderRules {
                    understood_crit: &self.understood_crit,
                };
                build_header(decode_protected(protected_b64, &self.limits)?, None, &rules)?
            }
        };
        let signing_input = token
            .as_bytes()
            .get(..protected_b64.len() + 1 + payload.len())
            .ok_or(JwsError::Malformed("expected three parts"))?;
        self.check_one(&header, signing_input, signature)?;
        if cached.is_none() {
            self.recent_headers
                .insert(protected_b64.into(), header.clone());
        }
        let payload = if header.b64() {
            b64::decode(payload, "payload")?
        } else {
            payload.as_bytes().to_vec()
        };
        Ok(Verified {
            payload,
            signatures: vec![VerifiedSignature { index: 0, header }],
        })
    }

    /// Verifies a compact JWS whose payload is detached.
    pub fn verify_compact_detached(&self, token: &str, payload: &[u8]) -> Result<Verified, Error> {
        UnverifiedJws::parse_compact(token, &self.limits)?.verify_detached(
            self,
            SignaturePolicy::All,
            payload,
        )
    }

    /// Verifies a flattened or general JSON JWS.
    pub fn verify_json(&self, input: &str, policy: SignaturePolicy) -> Result<Verified, Error> {
        UnverifiedJws::parse_json(input, &self.limits)?.verify(self, policy)
    }

    /// Verifies a JSON JWS whose payload is detached.
    pub fn verify_json_detached(
        &self,
        input: &str,
        policy: SignaturePolicy,
        payload: &[u8],
    ) -> Result<Verified, Error> {
        UnverifiedJws::parse_json(input, &self.limits)?.verify_detached(self, policy, payload)
    }

    /// Checks one signature over `signing_input` (the exact bytes signed).
    fn check_one(
        &self,
        header: &Header,
        signing_input: &[u8],
        signature: &str,
    ) -> Result<(), Error> {
        let alg = header.alg();
        if !self
            .keys
            .iter()
            .any(|k| k.by_alg.iter().any(|(a, _)| *a == alg))
        {
            return Err(JwsError::AlgorithmNotAllowed(alg.name()).into());
        }
        if let Some(expected) = &self.typ {
            if !header.typ().is_some_and(|t| typ_matches(t, expected)) {
                return Err(JwsError::UnexpectedType.into());
            }
        }
        // `kid` picks among our keys only; `jwk`, `jku`, `x5u`, `x5c` are never read.
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(k)) => Some(k.as_str()),
            Some(_) => return Err(JwsError::InvalidHeader("kid is not a string").into()),
        };
        if let Some(kid) = kid {
            if !self.keys.iter().any(|k| k.kid.as_deref() == Some(kid)) {
                return Err(JwsError::UnknownKid.into());
            }
        }
        let sig = b64::decode(signature, "signature")?;
        let mut candidates = self
            .keys
            .iter()
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .flat_map(|k| k.by_alg.iter().filter(|(a, _)| *a == alg).map(|(_, p)| p))
            .peekable();
        if candidates.peek().is_none() {
            return Err(JwsError::NoSuitableKey.into());
        }
        if candidates.any(|p| p.verify(signing_input, &sig)) {
            Ok(())
        } else {
            Err(JwsError::SignatureInvalid.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jws::{JwsHeader, Signer};

    #[test]
    fn only_verified_headers_are_remembered() {
        let key = Jwk::generate_for(JwsAlgorithm::HS256).unwrap();
        let signer = Signer::new(&key, JwsAlgorithm::HS256).unwrap();
        let v = Verifier::builder()
            .key(&key, &[JwsAlgorithm::HS256])
            .unwrap()
            .build()
            .unwrap();
        let token = signer.sign_compact(&JwsHeader::new(), b"x").unwrap();
        let forged = format!("{}AAAA", &token[..token.len() - 4]);
        assert!(v.verify_compact(&forged).is_err());
        assert_eq!(v.recent_headers.len(), 0);
        assert!(v.verify_compact(&token).is_ok());
        assert_eq!(v.recent_headers.len(), 1);
        // The cached header changes nothing: a bad signature still fails.
        assert_eq!(
            v.verify_compact(&forged).unwrap_err().code(),
            "ERR_JWS_SIGNATURE_INVALID"
        );
        assert!(v.verify_compact(&token).is_ok());
        // Bounded: many distinct authentic headers keep at most RECENT_HEADERS.
        for i in 0..20 {
            let t = signer
                .sign_compact(&JwsHeader::new().param("n", i.into()).unwrap(), b"x")
                .unwrap();
            assert!(v.verify_compact(&t).is_ok());
        }
        assert_eq!(v.recent_headers.len(), RECENT_HEADERS);
    }
}
