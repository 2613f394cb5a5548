//! Decrypting. The decrypter owns its keys and, for each key, the
//! `alg`/`enc` pairs it may serve; a JWE's header can only *match* those.

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::keys::{RecipientKey, RecipientRules};
use super::{build_header, inflate, Header, DEFAULT_MAX_DECOMPRESSED, DEFAULT_MAX_PBES2_COUNT};
use crate::b64;
use crate::crypto::enc::content_decrypt;
use crate::error::{Error, JweError, KeyError};
use crate::json::{self, Limits};
use crate::jwa::{JweAlgorithm, JweEncryption, KeyManagement};
use crate::jwk::{ensure_unique_kids, Jwk, JwkSet, KeyUse};
use crate::jws::{decode_protected, typ_matches};
use crate::recent::Recent;

struct DecrypterKey {
    kid: Option<String>,
    kty: &'static str,
    pairs: Vec<(JweAlgorithm, JweEncryption)>,
    /// One prepared key per distinct `alg` of `pairs`.
    by_alg: Vec<(JweAlgorithm, RecipientKey)>,
}

/// Keys plus the `alg`/`enc` pairs each may serve, `crit` extensions
/// understood, an optional expected `typ`, compression and PBES2 policy, and
/// input limits. Build one with [`Decrypter::builder`].
pub struct Decrypter {
    keys: Vec<DecrypterKey>,
    understood_crit: Vec<String>,
    tolerate_unprotected_typing: bool,
    typ: Option<String>,
    limits: Limits,
    max_decompressed: Option<usize>,
    rules: RecipientRules,
    /// Joint headers of recently *decrypted* compact JWEs, by their encoded
    /// protected header: a sender uses the same header bytes again and again
    /// (`dir`, AES key wrap, RSA), so they are decoded and checked once. Only
    /// headers that decrypted get in, so an attacker cannot fill it.
    recent_headers: Recent<Box<str>, Header>,
}

/// How many decrypted protected headers a decrypter remembers.
const RECENT_HEADERS: usize = 8;

impl std::fmt::Debug for Decrypter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<_> = self.keys.iter().map(|k| (&k.kid, &k.pairs)).collect();
        f.debug_struct("Decrypter")
            .field("keys", &keys)
            .field("understood_crit", &self.understood_crit)
            .field("typ", &self.typ)
            .field("max_decompressed", &self.max_decompressed)
            .field("max_pbes2_count", &self.rules.max_pbes2_count)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Decrypter`]; every key is checked against its pairs here, not
/// when a JWE arrives.
pub struct DecrypterBuilder {
    keys: Vec<DecrypterKey>,
    understood_crit: Vec<String>,
    tolerate_unprotected_typing: bool,
    typ: Option<String>,
    limits: Limits,
    max_decompressed: Option<usize>,
    max_pbes2_count: u32,
}

impl Default for DecrypterBuilder {
    fn default() -> Self {
        DecrypterBuilder {
            keys: Vec::new(),
            understood_crit: Vec::new(),
            tolerate_unprotected_typing: false,
            typ: None,
            limits: Limits::default(),
            max_decompressed: None,
            max_pbes2_count: DEFAULT_MAX_PBES2_COUNT,
        }
    }
}

impl std::fmt::Debug for DecrypterBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecrypterBuilder").finish_non_exhaustive()
    }
}

impl DecrypterBuilder {
    /// Adds `key` (a private key, or a shared secret) for the `alg`/`enc`
    /// pairs `pairs`. Each must suit the key's type, size, `alg`, `use` and
    /// `key_ops` ([`Jwk::check_permits_jwe`]), or this fails. A pair with
    /// `RSA1_5` always fails (`ERR_JWE_ALG_NOT_ALLOWED`): tessera does not
    /// decrypt RSAES-PKCS1-v1_5 at all (see [the manual](crate::manual)).
    pub fn key(
        mut self,
        key: &Jwk,
        pairs: &[(JweAlgorithm, JweEncryption)],
    ) -> Result<Self, Error> {
        if pairs.is_empty() {
            return Err(KeyError::Empty.into());
        }
        // RSA1_5 decryption was removed: aws-lc-rs's PKCS#1 v1.5 decryption
        // is not constant time on bad padding (the Marvin attack) and it has
        // no raw RSA operation to build implicit rejection on. Refused here,
        // when the decrypter is built, whatever else the caller asks for.
        if let Some(&(alg, _)) = pairs.iter().find(|(a, _)| *a == JweAlgorithm::RSA1_5) {
            return Err(JweError::AlgorithmNotAllowed(alg.name()).into());
        }
        let mut by_alg: Vec<(JweAlgorithm, RecipientKey)> = Vec::new();
        for &(alg, enc) in pairs {
            key.check_permits_jwe(true, alg, enc)?;
            if !by_alg.iter().any(|(a, _)| *a == alg) {
                by_alg.push((alg, RecipientKey::prepare(key, alg, enc)?));
            }
        }
        self.keys.push(DecrypterKey {
            kid: key.kid().map(str::to_owned),
            kty: key.kty(),
            pairs: pairs.to_vec(),
            by_alg,
        });
        Ok(self)
    }

    /// Adds every key of `set` for the pairs of `allowed` it can serve. Keys
    /// marked `use: sig`, public keys, and keys bound to a non-JWE `alg` are
    /// left out; so are pairs a key cannot serve.
    pub fn jwk_set(
        mut self,
        set: &JwkSet,
        allowed: &[(JweAlgorithm, JweEncryption)],
    ) -> Result<Self, Error> {
        for key in set.keys() {
            if key.key_use() == Some(&KeyUse::Signature) {
                continue;
            }
            let pairs: Vec<_> = allowed
                .iter()
                .copied()
                .filter(|&(a, e)| key.check_permits_jwe(true, a, e).is_ok())
                .collect();
            if !pairs.is_empty() {
                self = self.key(key, &pairs)?;
            }
        }
        Ok(self)
    }

    /// Accepts compressed (`zip: DEF`) JWEs, inflating at most
    /// [`DEFAULT_MAX_DECOMPRESSED`] bytes (250 KB).
    pub fn allow_compression(self) -> Self {
        self.max_decompressed(DEFAULT_MAX_DECOMPRESSED)
    }

    /// Accepts compressed JWEs, inflating at most `limit` bytes; more is an
    /// error, and the inflater stops at the limit.
    pub fn max_decompressed(mut self, limit: usize) -> Self {
        self.max_decompressed = Some(limit);
        self
    }

    /// The highest PBES2 `p2c` accepted (default 100,000,
    /// [`DEFAULT_MAX_PBES2_COUNT`](crate::jwe::DEFAULT_MAX_PBES2_COUNT)):
    /// each iteration is work an attacker can make you do.
    pub fn max_pbes2_count(mut self, count: u32) -> Self {
        self.max_pbes2_count = count;
        self
    }

    /// Declares a `crit` extension understood; anything else critical is refused.
    pub fn understand_crit(mut self, name: &str) -> Self {
        self.understood_crit.push(name.to_owned());
        self
    }

    /// Reads JWEs that carry `typ` or `cty` in an unprotected header (the
    /// shared `unprotected` or a recipient's `header`; RFC 7520 §5.13 puts
    /// `cty` there) instead of refusing them with `ERR_JWE_INVALID_HEADER`.
    ///
    /// They still never count: anyone holding the JWE can add or change
    /// them, so [`Header::typ`] and [`Header::cty`] read the protected header
    /// only, and neither [`DecrypterBuilder::expect_typ`] nor the nested-JWT
    /// gate of [`jwt::decrypt_and_verify`](crate::jwt::decrypt_and_verify)
    /// can be met by them. They stay visible through [`Header::get`].
    pub fn tolerate_unprotected_typing(mut self) -> Self {
        self.tolerate_unprotected_typing = true;
        self
    }

    /// Requires the protected `typ` to equal `typ` (compared as for JWS).
    pub fn expect_typ(mut self, typ: &str) -> Self {
        self.typ = Some(typ.to_owned());
        self
    }

    /// Replaces the default input limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The decrypter. Refused when empty or when two keys of one type share
    /// a `kid`.
    pub fn build(self) -> Result<Decrypter, Error> {
        if self.keys.is_empty() {
            return Err(KeyError::Empty.into());
        }
        ensure_unique_kids(self.keys.iter().map(|k| (k.kid.as_deref(), k.kty)))?;
        Ok(Decrypter {
            keys: self.keys,
            understood_crit: self.understood_crit,
            tolerate_unprotected_typing: self.tolerate_unprotected_typing,
            typ: self.typ,
            limits: self.limits,
            max_decompressed: self.max_decompressed,
            rules: RecipientRules {
                max_pbes2_count: self.max_pbes2_count,
            },
            recent_headers: Recent::new(RECENT_HEADERS),
        })
    }
}

/// A decrypted JWE: only this type hands out a plaintext. The plaintext is
/// zeroized on drop and never shown by `Debug`.
#[derive(Clone)]
pub struct Decrypted {
    plaintext: Zeroizing<Vec<u8>>,
    header: Header,
    recipient: usize,
    aad: Option<Vec<u8>>,
}

impl std::fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decrypted")
            .field("header", &self.header)
            .field("recipient", &self.recipient)
            .field("plaintext_len", &self.plaintext.len())
            .finish_non_exhaustive()
    }
}

impl Decrypted {
    /// The plaintext.
    pub fn plaintext(&self) -> &[u8] {
        &self.plaintext
    }
    /// The plaintext, owned (still zeroized on drop).
    pub fn into_plaintext(self) -> Zeroizing<Vec<u8>> {
        self.plaintext
    }
    /// The joint header of the recipient that decrypted.
    pub fn header(&self) -> &Header {
        &self.header
    }
    /// Which recipient decrypted (0 for compact and flattened).
    pub fn recipient_index(&self) -> usize {
        self.recipient
    }
    /// The JSON serialization's `aad`, decoded (authenticated, not encrypted).
    pub fn aad(&self) -> Option<&[u8]> {
        self.aad.as_deref()
    }
}

struct RawRecipient {
    header: Option<Map<String, Value>>,
    encrypted_key: Vec<u8>,
}

/// A parsed JWE, not yet decrypted.
struct RawJwe {
    protected_b64: String,
    protected: Map<String, Value>,
    /// The joint header, when a compact JWE's protected header decrypted before.
    known: Option<Header>,
    shared: Option<Map<String, Value>>,
    recipients: Vec<RawRecipient>,
    aad_b64: Option<String>,
    /// `aad` decoded (checked at parse time, handed out on success).
    aad: Option<Vec<u8>>,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: Vec<u8>,
}

fn malformed(what: &'static str) -> Error {
    JweError::Malformed(what).into()
}

impl RawJwe {
    /// RFC 7516 §7.1: five segments, a non-empty protected header. `recent`
    /// may already know the protected header (then it is not decoded again).
    fn parse_compact(
        token: &str,
        limits: &Limits,
        recent: &Recent<Box<str>, Header>,
    ) -> Result<Self, Error> {
        json::check_size("token", token.len(), limits.max_token_bytes)?;
        let mut parts = token.split('.');
        let (Some(p), Some(ek), Some(iv), Some(ct), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(malformed("expected five parts"));
        };
        if p.is_empty() {
            return Err(malformed("empty protected header"));
        }
        let known = recent.find(|encoded| &**encoded == p);
        Ok(RawJwe {
            protected: match known {
                Some(_) => Map::new(),
                None => decode_protected(p, limits)?,
            },
            known,
            protected_b64: p.to_owned(),
            shared: None,
            recipients: vec![RawRecipient {
                header: None,
                encrypted_key: b64::decode(ek, "encrypted key")?,
            }],
            aad_b64: None,
            aad: None,
            iv: b64::decode(iv, "iv")?,
            ciphertext: b64::decode(ct, "ciphertext")?,
            tag: b64::decode(tag, "tag")?,
        })
    }

    /// RFC 7516 §7.2: general (`recipients`) or flattened.
    fn parse_json(input: &str, limits: &Limits) -> Result<Self, Error> {
        json::check_size("token", input.len(), limits.max_token_bytes)?;
        let doc_limits = Limits {
            max_json_bytes: limits.max_token_bytes,
            ..*limits
        };
        let doc = json::parse_object(input.as_bytes(), &doc_limits, "JWE JSON")?;
        let string = |m: &Map<String, Value>, name: &'static str| match m.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(malformed(name)),
        };
        let object = |m: &Map<String, Value>, name: &'static str| match m.get(name) {
            None => Ok(None),
            Some(Value::Object(o)) => {
                json::check_unprotected_header(o, limits)?;
                Ok(Some(o.clone()))
            }
            Some(_) => Err(malformed(name)),
        };
        let recipient = |m: &Map<String, Value>| -> Result<RawRecipient, Error> {
            Ok(RawRecipient {
                header: object(m, "header")?,
                encrypted_key: match string(m, "encrypted_key")? {
                    Some(ek) => b64::decode(&ek, "encrypted key")?,
                    None => Vec::new(),
                },
            })
        };
        let recipients = match doc.get("recipients") {
            Some(Value::Array(list)) => {
                if doc.contains_key("header") || doc.contains_key("encrypted_key") {
                    return Err(malformed("both general and flattened members"));
                }
                if list.is_empty() {
                    return Err(malformed("no recipients"));
                }
                if list.len() > limits.max_recipients {
                    return Err(JweError::TooManyRecipients.into());
                }
                list.iter()
                    .map(|r| {
                        r.as_object()
                            .ok_or(malformed("recipients"))
                            .and_then(recipient)
                    })
                    .collect::<Result<Vec<_>, Error>>()?
            }
            Some(_) => return Err(malformed("recipients")),
            None => vec![recipient(&doc)?],
        };
        let protected_b64 = string(&doc, "protected")?.unwrap_or_default();
        let required = |name: &'static str| string(&doc, name)?.ok_or(malformed(name));
        let aad_b64 = string(&doc, "aad")?;
        let aad = match &aad_b64 {
            Some(a) => Some(b64::decode(a, "aad")?),
            None => None,
        };
        Ok(RawJwe {
            protected: decode_protected(&protected_b64, limits)?,
            known: None,
            protected_b64,
            shared: object(&doc, "unprotected")?,
            recipients,
            aad_b64,
            aad,
            iv: b64::decode(&required("iv")?, "iv")?,
            ciphertext: b64::decode(&required("ciphertext")?, "ciphertext")?,
            tag: b64::decode(&required("tag")?, "tag")?,
        })
    }
}

/// The headers of a JWE in either serialization, read without decrypting
/// anything: (protected, shared unprotected, one per-recipient header each).
pub(crate) type UnopenedHeaders = (
    Map<String, Value>,
    Option<Map<String, Value>>,
    Vec<Option<Map<String, Value>>>,
);

/// Parses `input` (compact or JSON) only as far as its headers.
pub(crate) fn unopened_headers(input: &str, limits: &Limits) -> Result<UnopenedHeaders, Error> {
    let jwe = if input.trim_start().starts_with('{') {
        RawJwe::parse_json(input, limits)?
    } else {
        RawJwe::parse_compact(input, limits, &Recent::new(1))?
    };
    Ok((
        jwe.protected,
        jwe.shared,
        jwe.recipients.into_iter().map(|r| r.header).collect(),
    ))
}

/// Keeps the most telling error across recipients and keys: a decryption
/// failure (we had a key and it did not open) outranks "not for us".
fn keep(best: &mut Option<Error>, new: Error) {
    let failed = Error::Jwe(JweError::DecryptionFailed);
    match best {
        Some(b) if *b == failed => {}
        Some(_) if new != failed => {}
        _ => *best = Some(new),
    }
}

impl Decrypter {
    /// Starts a builder.
    pub fn builder() -> DecrypterBuilder {
        DecrypterBuilder::default()
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Decrypts a compact JWE (RFC 7516 §7.1).
    pub fn decrypt_compact(&self, token: &str) -> Result<Decrypted, Error> {
        let jwe = RawJwe::parse_compact(token, &self.limits, &self.recent_headers)?;
        let opened = self.open(&jwe)?;
        if jwe.known.is_none() {
            self.recent_headers
                .insert(jwe.protected_b64.into(), opened.header.clone());
        }
        Ok(opened)
    }

    /// Decrypts a flattened or general JSON JWE (RFC 7516 §7.2), with the
    /// first recipient one of our keys can open.
    pub fn decrypt_json(&self, input: &str) -> Result<Decrypted, Error> {
        self.open(&RawJwe::parse_json(input, &self.limits)?)
    }

    /// Decrypts either serialization: JSON if `input` starts with `{`.
    pub fn decrypt(&self, input: &str) -> Result<Decrypted, Error> {
        if input.trim_start().starts_with('{') {
            self.decrypt_json(input)
        } else {
            self.decrypt_compact(input)
        }
    }

    /// RFC 7516 §5.2, for each recipient in turn.
    fn open(&self, jwe: &RawJwe) -> Result<Decrypted, Error> {
        let mut aad = jwe.protected_b64.clone().into_bytes();
        if let Some(a) = &jwe.aad_b64 {
            aad.push(b'.');
            aad.extend_from_slice(a.as_bytes());
        }
        let mut best = None;
        // One PBES2 derivation per JWE at most: each costs up to p2c HMACs.
        let mut pbes2_tried = false;
        for (index, r) in jwe.recipients.iter().enumerate() {
            let built = match &jwe.known {
                Some(h) => Ok(h.clone()),
                None => build_header(
                    &jwe.protected,
                    jwe.shared.as_ref(),
                    r.header.as_ref(),
                    &self.understood_crit,
                    self.tolerate_unprotected_typing,
                ),
            };
            let header = match built {
                Ok(h) => h,
                Err(e) => {
                    keep(&mut best, e);
                    continue;
                }
            };
            match self.open_recipient(jwe, &aad, r, &header, &mut pbes2_tried) {
                Ok(plaintext) => {
                    return Ok(Decrypted {
                        plaintext,
                        header,
                        recipient: index,
                        aad: jwe.aad.clone(),
                    })
                }
                Err(e) => keep(&mut best, e),
            }
        }
        Err(best.unwrap_or(JweError::DecryptionFailed.into()))
    }

    fn open_recipient(
        &self,
        jwe: &RawJwe,
        aad: &[u8],
        r: &RawRecipient,
        header: &Header,
        pbes2_tried: &mut bool,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let (alg, enc) = (header.alg(), header.enc());
        let serves = |k: &DecrypterKey| k.pairs.contains(&(alg, enc));
        if !self.keys.iter().any(serves) {
            return Err(JweError::AlgorithmNotAllowed(alg.name()).into());
        }
        if let Some(expected) = &self.typ {
            if !header.typ().is_some_and(|t| typ_matches(t, expected)) {
                return Err(JweError::UnexpectedType.into());
            }
        }
        if header.zip() && self.max_decompressed.is_none() {
            return Err(JweError::CompressionNotAllowed.into());
        }
        // `kid` picks among our keys only; `jwk`, `jku`, `x5u`, `x5c` are never read.
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(k)) => Some(k.as_str()),
            Some(_) => return Err(JweError::InvalidHeader("kid is not a string").into()),
        };
        if let Some(kid) = kid {
            if !self.keys.iter().any(|k| k.kid.as_deref() == Some(kid)) {
                return Err(JweError::UnknownKid.into());
            }
        }
        let is_pbes2 = matches!(alg.key_management(), KeyManagement::Pbes2(..));
        let mut best = None;
        let candidates = self
            .keys
            .iter()
            .filter(|k| serves(k) && (kid.is_none() || k.kid.as_deref() == kid))
            .flat_map(|k| k.by_alg.iter().filter(|(a, _)| *a == alg).map(|(_, p)| p));
        for key in candidates {
            if is_pbes2 {
                if *pbes2_tried {
                    break;
                }
                *pbes2_tried = true;
            }
            let outcome = key
                .unwrap(alg, enc, header.members(), &r.encrypted_key, &self.rules)
                .and_then(|cek| {
                    content_decrypt(enc, &cek, &jwe.iv, aad, &jwe.ciphertext, &jwe.tag)
                        .map_err(|_| Error::from(JweError::DecryptionFailed))
                });
            match outcome {
                Ok(content) => {
                    return match self.max_decompressed {
                        Some(limit) if header.zip() => inflate(&content, limit),
                        _ => Ok(content),
                    }
                }
                Err(e) => keep(&mut best, e),
            }
        }
        Err(best.unwrap_or(JweError::NoSuitableKey.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwe::{Encrypter, JweHeader};

    #[test]
    fn only_decrypted_headers_are_remembered() {
        let (alg, enc) = (JweAlgorithm::Dir, JweEncryption::A128GCM);
        let key = Jwk::generate_for_encryption(alg, enc).unwrap();
        let e = Encrypter::new(&key, alg, enc).unwrap();
        let d = Decrypter::builder()
            .key(&key, &[(alg, enc)])
            .unwrap()
            .build()
            .unwrap();
        let token = e.encrypt_compact(&JweHeader::new(), b"x").unwrap();
        let forged = format!("{}AAAA", &token[..token.len() - 4]);
        assert!(d.decrypt_compact(&forged).is_err());
        assert_eq!(d.recent_headers.len(), 0);
        assert!(d.decrypt_compact(&token).is_ok());
        assert_eq!(d.recent_headers.len(), 1);
        // The remembered header changes nothing: a bad tag still fails, a
        // good token still opens, and its header is the same.
        assert_eq!(
            d.decrypt_compact(&forged).unwrap_err().code(),
            "ERR_JWE_DECRYPTION_FAILED"
        );
        let again = d.decrypt_compact(&token).unwrap();
        assert_eq!(again.plaintext(), b"x");
        assert_eq!(again.header().kid(), key.kid());
        for i in 0..20 {
            let t = e
                .encrypt_compact(&JweHeader::new().param("n", i.into()).unwrap(), b"x")
                .unwrap();
            assert!(d.decrypt_compact(&t).is_ok());
        }
        assert_eq!(d.recent_headers.len(), RECENT_HEADERS);
    }
}
