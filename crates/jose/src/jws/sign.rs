//! Producing JWS: compact, flattened JSON and general JSON.

use serde_json::{Map, Value};

use super::{JwsHeader, ProtectedHeader};
use crate::b64;
use crate::crypto::PreparedSigner;
use crate::error::{Error, JwsError};
use crate::jwa::JwsAlgorithm;
use crate::jwk::Jwk;
use crate::recent::Recent;

/// A private key prepared to sign with exactly one algorithm.
pub struct Signer {
    alg: JwsAlgorithm,
    kid: Option<String>,
    prepared: PreparedSigner,
    /// Recently built protected headers: a service signs every token with
    /// the same header, so its encoding is computed once.
    recent: Recent<(JwsHeader, Option<&'static str>), ProtectedHeader>,
}

/// How many distinct headers a signer remembers.
const RECENT_HEADERS: usize = 4;

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn payload_segment(payload: &[u8], encoded: bool) -> std::borrow::Cow<'_, [u8]> {
    if encoded {
        b64::encode(payload).into_bytes().into()
    } else {
        payload.into()
    }
}

fn is_unencoded(header: &ProtectedHeader) -> bool {
    header.members().get("b64") == Some(&Value::Bool(false))
}

impl Signer {
    /// Prepares `key` to sign with `alg`. Fails if the key's type, size,
    /// `alg`, `use` or `key_ops` do not allow it, or if it is public.
    pub fn new(key: &Jwk, alg: JwsAlgorithm) -> Result<Self, Error> {
        Ok(Signer {
            alg,
            kid: key.kid().map(str::to_owned),
            prepared: key.prepare_signer(alg)?,
            recent: Recent::new(RECENT_HEADERS),
        })
    }

    /// The algorithm this signer uses.
    pub fn alg(&self) -> JwsAlgorithm {
        self.alg
    }

    /// The protected header for `header`, with this signer's `alg` and `kid`.
    pub fn protect(&self, header: &JwsHeader) -> ProtectedHeader {
        self.protect_cached(header, None)
    }

    /// As [`Signer::protect`], with `typ` set to `default_typ` unless the header sets one.
    pub(crate) fn protect_typed(
        &self,
        header: &JwsHeader,
        default_typ: &'static str,
    ) -> ProtectedHeader {
        self.protect_cached(header, Some(default_typ))
    }

    fn protect_cached(&self, header: &JwsHeader, typ: Option<&'static str>) -> ProtectedHeader {
        if let Some(p) = self.recent.find(|(h, t)| h == header && *t == typ) {
            return p;
        }
        let protected = header.protect(self.alg, self.kid.as_deref(), typ);
        self.recent.insert((header.clone(), typ), protected.clone());
        protected
    }

    fn check_header(&self, header: &ProtectedHeader) -> Result<(), Error> {
        match header.members().get("alg") {
            Some(Value::String(a)) if a == self.alg.name() => Ok(()),
            _ => Err(JwsError::InvalidHeader("header alg differs from the signer's").into()),
        }
    }

    /// Signs `protected_b64 || '.' || payload_segment`.
    fn signature(&self, protected_b64: &str, segment: &[u8]) -> Result<String, Error> {
        let mut input = Vec::with_capacity(protected_b64.len() + 1 + segment.len());
        input.extend_from_slice(protected_b64.as_bytes());
        input.push(b'.');
        input.extend_from_slice(segment);
        Ok(b64::encode(self.prepared.sign(&input)?))
    }

    /// A compact JWS of `payload` (RFC 7515 §7.1).
    pub fn sign_compact(&self, header: &JwsHeader, payload: &[u8]) -> Result<String, Error> {
        self.sign_compact_with(&self.protect(header), payload)
    }

    /// A compact JWS with these exact protected-header bytes. Their `alg` must
    /// be this signer's.
    pub fn sign_compact_with(
        &self,
        header: &ProtectedHeader,
        payload: &[u8],
    ) -> Result<String, Error> {
        self.compact(header, payload, false)
    }

    /// A compact JWS with a detached payload (RFC 7515 Appendix F): the
    /// payload segment is left empty and must be supplied to the verifier.
    pub fn sign_compact_detached(
        &self,
        header: &JwsHeader,
        payload: &[u8],
    ) -> Result<String, Error> {
        self.compact(&self.protect(header), payload, true)
    }

    /// A detached compact JWS with these exact protected-header bytes.
    pub fn sign_compact_detached_with(
        &self,
        header: &ProtectedHeader,
        payload: &[u8],
    ) -> Result<String, Error> {
        self.compact(header, payload, true)
    }

    fn compact(
        &self,
        header: &ProtectedHeader,
        payload: &[u8],
        detached: bool,
    ) -> Result<String, Error> {
        self.check_header(header)?;
        let unencoded = is_unencoded(header);
        let encoded = header.encoded();
        // The token is built in place: the signing input is its prefix.
        let mut out = String::with_capacity(
            encoded.len() + b64::encoded_len(payload.len()) + 2 + b64::encoded_len(512),
        );
        out.push_str(encoded);
        out.push('.');
        if unencoded {
            let text = std::str::from_utf8(payload)
                .map_err(|_| JwsError::Malformed("unencoded payload is not UTF-8"))?;
            // RFC 7797 §5.2: a '.' cannot be carried in the compact form.
            if !detached && text.contains('.') {
                return Err(JwsError::Malformed("unencoded payload contains '.'").into());
            }
            out.push_str(text);
        } else {
            b64::encode_into(payload, &mut out);
        }
        let sig = self.prepared.sign(out.as_bytes())?;
        if detached {
            out.truncate(encoded.len() + 1);
        }
        out.push('.');
        b64::encode_into(&sig, &mut out);
        Ok(out)
    }

    /// A flattened JSON JWS (RFC 7515 §7.2.2), with an optional unprotected header.
    pub fn sign_flattened(
        &self,
        header: &JwsHeader,
        unprotected: Option<Map<String, Value>>,
        payload: &[u8],
    ) -> Result<String, Error> {
        sign_general_inner(
            payload,
            &[GeneralSignature {
                signer: self,
                protected: Some(self.protect(header)),
                unprotected,
            }],
            true,
        )
    }
}

/// One signature of a general JSON JWS.
#[derive(Debug)]
pub struct GeneralSignature<'a> {
    /// The signer.
    pub signer: &'a Signer,
    /// The protected header; `None` puts `alg` in the unprotected header if it
    /// is there, else in a protected header of its own.
    pub protected: Option<ProtectedHeader>,
    /// The unprotected header.
    pub unprotected: Option<Map<String, Value>>,
}

/// A general JSON JWS (RFC 7515 §7.2.1) with one signature per entry.
pub fn sign_general(payload: &[u8], signatures: &[GeneralSignature<'_>]) -> Result<String, Error> {
    sign_general_inner(payload, signatures, false)
}

fn sign_general_inner(
    payload: &[u8],
    signatures: &[GeneralSignature<'_>],
    flattened: bool,
) -> Result<String, Error> {
    let first = signatures
        .first()
        .ok_or(JwsError::Malformed("no signatures"))?;
    let unencoded = first.protected.as_ref().is_some_and(is_unencoded);
    let mut entries = Vec::with_capacity(signatures.len());
    for s in signatures {
        let alg_unprotected = s.unprotected.as_ref().and_then(|u| u.get("alg"));
        let protected = match (&s.protected, alg_unprotected) {
            (Some(p), None) => {
                s.signer.check_header(p)?;
                Some(p.clone())
            }
            (None, Some(Value::String(a))) if a == s.signer.alg.name() => None,
            (None, None) => Some(s.signer.protect(&JwsHeader::new())),
            _ => {
                return Err(
                    JwsError::InvalidHeader("alg must appear once and match the signer").into(),
                )
            }
        };
        if protected.as_ref().is_some_and(is_unencoded) != unencoded {
            // RFC 7797 §3: every signature must agree on b64.
            return Err(JwsError::InvalidHeader("signatures disagree on b64").into());
        }
        if s.unprotected.as_ref().is_some_and(super::types_unprotected) {
            // What a verifier refuses is not written either.
            return Err(JwsError::InvalidHeader("typ and cty must be integrity protected").into());
        }
        if let (Some(p), Some(u)) = (&protected, &s.unprotected) {
            if u.keys().any(|k| p.members().contains_key(k)) {
                return Err(JwsError::InvalidHeader("a member is in both headers").into());
            }
        }
        let encoded = protected
            .as_ref()
            .map(ProtectedHeader::encoded)
            .unwrap_or("");
        let segment = payload_segment(payload, !unencoded);
        let mut entry = Map::new();
        if let Some(p) = &protected {
            entry.insert("protected".into(), p.encoded().into());
        }
        if let Some(u) = &s.unprotected {
            entry.insert("header".into(), Value::Object(u.clone()));
        }
        entry.insert(
            "signature".into(),
            s.signer.signature(encoded, &segment)?.into(),
        );
        entries.push(entry);
    }
    let payload_value = if unencoded {
        std::str::from_utf8(payload)
            .map_err(|_| JwsError::Malformed("unencoded payload is not UTF-8"))?
            .to_owned()
    } else {
        b64::encode(payload)
    };
    let mut out = Map::new();
    out.insert("payload".into(), payload_value.into());
    match (flattened, entries.pop()) {
        (true, Some(entry)) if entries.is_empty() => out.extend(entry),
        (_, last) => {
            entries.extend(last);
            out.insert(
                "signatures".into(),
                Value::Array(entries.into_iter().map(Value::Object).collect()),
            );
        }
    }
    Ok(Value::Object(out).to_string())
}
