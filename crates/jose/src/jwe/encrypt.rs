//! Encrypting: an [`Encrypter`] per recipient key; compact, flattened and
//! general JSON serializations.

use std::num::NonZeroU32;

use serde_json::{Map, Value};

use super::keys::{system_rng, Purpose, Rng, SenderKey, SenderOptions, Wrapped};
use super::{deflate, encode_header, JweHeader, DEFAULT_PBES2_COUNT};
use crate::b64;
use crate::crypto::enc::content_encrypt;
use crate::error::{Error, JweError};
use crate::jwa::{JweAlgorithm, JweEncryption};
use crate::jwk::Jwk;

/// Encrypts to one recipient key with one `alg` and one `enc`, prepared once.
///
/// `RSA1_5` is refused here: tessera never produces it.
pub struct Encrypter {
    alg: JweAlgorithm,
    enc: JweEncryption,
    key: SenderKey,
    kid: Option<String>,
    zip: bool,
    pbes2_count: NonZeroU32,
    apu: Option<Vec<u8>>,
    apv: Option<Vec<u8>>,
}

impl std::fmt::Debug for Encrypter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encrypter")
            .field("alg", &self.alg)
            .field("enc", &self.enc)
            .field("kid", &self.kid)
            .field("zip", &self.zip)
            .finish_non_exhaustive()
    }
}

/// Where the algorithm's header parameters go.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// Compact and flattened: everything in the protected header.
    Protected,
    /// General JSON: `alg`, `kid` and key-management parameters per recipient.
    PerRecipient,
}

/// One recipient of [`encrypt_general`]: its encrypter, and members for its
/// own unprotected `header` (besides `alg`, `kid` and the key-management
/// parameters, which the encrypter adds).
#[derive(Debug)]
pub struct Recipient<'a> {
    /// How to reach this recipient.
    pub encrypter: &'a Encrypter,
    /// Extra per-recipient members.
    pub header: JweHeader,
}

impl Encrypter {
    /// Prepares `key` (the recipient's public key, or a shared secret) for
    /// `alg` and `enc`. The key's type, size, `alg`, `use` and `key_ops` must
    /// permit it ([`Jwk::check_permits_jwe`]). For PBES2 the key is an `oct`
    /// JWK holding the password ([`Jwk::from_secret`]).
    pub fn new(key: &Jwk, alg: JweAlgorithm, enc: JweEncryption) -> Result<Self, Error> {
        Ok(Encrypter {
            alg,
            enc,
            key: SenderKey::prepare(key, alg, enc)?,
            kid: key.kid().map(str::to_owned),
            zip: false,
            pbes2_count: NonZeroU32::new(DEFAULT_PBES2_COUNT).ok_or(Error::Crypto)?,
            apu: None,
            apv: None,
        })
    }

    /// Compresses the plaintext (`zip: DEF`) before encrypting. Off by
    /// default: compressing secrets next to attacker-chosen data leaks them
    /// through the length (CRIME/BREACH), so enable it only for content that
    /// has no such mix. The recipient must enable it too.
    pub fn compress(mut self) -> Self {
        self.zip = true;
        self
    }

    /// The PBES2 iteration count (default 100,000). At least 1,000 (RFC 7518
    /// §4.8.1.2); keep it within the recipient's bound.
    pub fn pbes2_count(mut self, count: u32) -> Result<Self, Error> {
        if count < 1000 {
            return Err(JweError::Pbes2Count {
                p2c: count.into(),
                limit: u32::MAX,
            }
            .into());
        }
        self.pbes2_count = NonZeroU32::new(count).ok_or(Error::Crypto)?;
        Ok(self)
    }

    /// ECDH-ES `apu` and `apv` (agreement PartyUInfo / PartyVInfo), mixed
    /// into the derived key and sent in the header.
    pub fn party_info(mut self, apu: &[u8], apv: &[u8]) -> Self {
        self.apu = Some(apu.to_vec());
        self.apv = Some(apv.to_vec());
        self
    }

    /// The key-management algorithm.
    pub fn alg(&self) -> JweAlgorithm {
        self.alg
    }

    /// The content-encryption algorithm.
    pub fn enc(&self) -> JweEncryption {
        self.enc
    }

    /// Encrypts `plaintext` as a compact JWE (RFC 7516 §7.1).
    pub fn encrypt_compact(&self, header: &JweHeader, plaintext: &[u8]) -> Result<String, Error> {
        self.compact_with(header, plaintext, &system_rng, None)
    }

    /// As `encrypt_compact`, with the random values from `rng` and, when
    /// `exact` is given, those exact protected-header bytes (which must hold
    /// what the algorithm adds): for reproducing published examples.
    pub(crate) fn compact_with(
        &self,
        header: &JweHeader,
        plaintext: &[u8],
        rng: Rng<'_>,
        exact: Option<&[u8]>,
    ) -> Result<String, Error> {
        let sealed = seal(
            &[(self, None)],
            header,
            None,
            None,
            plaintext,
            rng,
            Placement::Protected,
            exact,
        )?;
        let recipient = sealed.recipients.first().ok_or(Error::Crypto)?;
        Ok([
            sealed.protected.as_str(),
            &b64::encode(&recipient.encrypted_key),
            &b64::encode(&sealed.iv),
            &b64::encode(&sealed.ciphertext),
            &b64::encode(&sealed.tag),
        ]
        .join("."))
    }

    /// Encrypts `plaintext` as a flattened JSON JWE (RFC 7516 §7.2.2): the
    /// header in `protected`, `unprotected` members (if any) in the shared
    /// `unprotected`, and `aad` (if any) authenticated but not encrypted.
    pub fn encrypt_flattened(
        &self,
        header: &JweHeader,
        unprotected: &JweHeader,
        aad: Option<&[u8]>,
        plaintext: &[u8],
    ) -> Result<String, Error> {
        let sealed = seal(
            &[(self, None)],
            header,
            Some(unprotected),
            aad,
            plaintext,
            &system_rng,
            Placement::Protected,
            None,
        )?;
        let recipient = sealed.recipients.first().ok_or(Error::Crypto)?;
        let mut doc = sealed.shared_members(unprotected);
        if !recipient.encrypted_key.is_empty() {
            doc.insert(
                "encrypted_key".into(),
                b64::encode(&recipient.encrypted_key).into(),
            );
        }
        Ok(Value::Object(doc).to_string())
    }
}

/// Encrypts `plaintext` once for several recipients, as a general JSON JWE
/// (RFC 7516 §7.2.1). Every recipient must use the same `enc` and
/// compression; `dir` and `ECDH-ES` (which decide the CEK) only work alone.
/// `protected` carries `enc` (and `zip`) plus its own members; each
/// recipient's `alg`, `kid` and key-management parameters go in its own
/// unprotected header.
///
/// ```
/// use tessera_jose::jwa::{JweAlgorithm, JweEncryption};
/// use tessera_jose::jwe::{encrypt_general, Decrypter, Encrypter, JweHeader, Recipient};
/// use tessera_jose::jwk::Jwk;
///
/// let enc = JweEncryption::A128CBC_HS256;
/// let a = Jwk::generate_for_encryption(JweAlgorithm::A128KW, enc).unwrap();
/// let b = Jwk::generate_for_encryption(JweAlgorithm::ECDH_ES_A128KW, enc).unwrap();
/// let to_a = Encrypter::new(&a, JweAlgorithm::A128KW, enc).unwrap();
/// let to_b = Encrypter::new(&b.to_public().unwrap(), JweAlgorithm::ECDH_ES_A128KW, enc).unwrap();
/// let jwe = encrypt_general(
///     &JweHeader::new().cty("text/plain"), // typ and cty: protected only
///     &JweHeader::new(),
///     None,
///     &[Recipient { encrypter: &to_a, header: JweHeader::new() },
///       Recipient { encrypter: &to_b, header: JweHeader::new() }],
///     b"to both",
/// ).unwrap();
/// let for_b = Decrypter::builder()
///     .key(&b, &[(JweAlgorithm::ECDH_ES_A128KW, enc)]).unwrap().build().unwrap();
/// let opened = for_b.decrypt_json(&jwe).unwrap();
/// assert_eq!(opened.plaintext(), b"to both");
/// assert_eq!(opened.recipient_index(), 1);
/// ```
pub fn encrypt_general(
    protected: &JweHeader,
    unprotected: &JweHeader,
    aad: Option<&[u8]>,
    recipients: &[Recipient<'_>],
    plaintext: &[u8],
) -> Result<String, Error> {
    let list: Vec<(&Encrypter, Option<&JweHeader>)> = recipients
        .iter()
        .map(|r| (r.encrypter, Some(&r.header)))
        .collect();
    let sealed = seal(
        &list,
        protected,
        Some(unprotected),
        aad,
        plaintext,
        &system_rng,
        Placement::PerRecipient,
        None,
    )?;
    let mut doc = sealed.shared_members(unprotected);
    let recipients: Vec<Value> = sealed
        .recipients
        .iter()
        .map(|r| {
            let mut m = Map::new();
            m.insert("header".into(), Value::Object(r.header.clone()));
            if !r.encrypted_key.is_empty() {
                m.insert("encrypted_key".into(), b64::encode(&r.encrypted_key).into());
            }
            Value::Object(m)
        })
        .collect();
    doc.insert("recipients".into(), Value::Array(recipients));
    Ok(Value::Object(doc).to_string())
}

/// One recipient's share of a sealed JWE.
pub(crate) struct SealedRecipient {
    pub header: Map<String, Value>,
    pub encrypted_key: Vec<u8>,
}

/// Everything of a JWE but its serialization.
pub(crate) struct Sealed {
    /// The protected header, base64url-encoded.
    pub protected: String,
    pub recipients: Vec<SealedRecipient>,
    pub aad: Option<String>,
    pub iv: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub tag: Vec<u8>,
}

impl Sealed {
    /// The JSON members shared by flattened and general serializations.
    fn shared_members(&self, unprotected: &JweHeader) -> Map<String, Value> {
        let mut doc = Map::new();
        if !self.protected.is_empty() {
            doc.insert("protected".into(), self.protected.clone().into());
        }
        if !unprotected.is_empty() {
            doc.insert(
                "unprotected".into(),
                Value::Object(unprotected.members().clone()),
            );
        }
        if let Some(aad) = &self.aad {
            doc.insert("aad".into(), aad.clone().into());
        }
        doc.insert("iv".into(), b64::encode(&self.iv).into());
        doc.insert("ciphertext".into(), b64::encode(&self.ciphertext).into());
        doc.insert("tag".into(), b64::encode(&self.tag).into());
        doc
    }
}

/// RFC 7516 §5.1: key management for every recipient, then one content
/// encryption under the shared CEK.
#[allow(clippy::too_many_arguments)]
fn seal(
    recipients: &[(&Encrypter, Option<&JweHeader>)],
    protected: &JweHeader,
    unprotected: Option<&JweHeader>,
    aad: Option<&[u8]>,
    plaintext: &[u8],
    rng: Rng<'_>,
    placement: Placement,
    exact: Option<&[u8]>,
) -> Result<Sealed, Error> {
    let (first, _) = recipients
        .first()
        .ok_or(JweError::Malformed("no recipients"))?;
    let enc = first.enc;
    let zip = first.zip;
    if recipients.iter().any(|(e, _)| e.enc != enc || e.zip != zip) {
        return Err(JweError::InvalidHeader("recipients disagree on enc or zip").into());
    }
    if recipients.len() > 1 && recipients.iter().any(|(e, _)| e.alg.is_direct()) {
        return Err(JweError::InvalidHeader("dir and ECDH-ES allow one recipient only").into());
    }
    let mut cek = None;
    let mut wrapped: Vec<(Wrapped, &Encrypter, Option<&JweHeader>)> =
        Vec::with_capacity(recipients.len());
    for (encrypter, extra) in recipients {
        let options = SenderOptions {
            pbes2_count: encrypter.pbes2_count,
            apu: encrypter.apu.as_deref(),
            apv: encrypter.apv.as_deref(),
        };
        let w = encrypter
            .key
            .wrap(encrypter.alg, enc, cek.as_ref(), &options, rng)?;
        if cek.is_none() {
            cek = Some(w.cek.clone());
        }
        wrapped.push((w, encrypter, *extra));
    }
    let cek = cek.ok_or(Error::Crypto)?;

    // The protected header.
    let mut head: Map<String, Value> = protected.members().clone();
    head.insert("enc".into(), enc.name().into());
    if zip {
        head.insert("zip".into(), "DEF".into());
    }
    if !protected.crit().is_empty() {
        let crit = protected.crit().iter().map(|c| Value::from(c.as_str()));
        head.insert("crit".into(), Value::Array(crit.collect()));
    }
    let mut sealed_recipients = Vec::with_capacity(wrapped.len());
    for (w, encrypter, extra) in wrapped {
        let mut own = Map::new();
        own.insert("alg".into(), encrypter.alg.name().into());
        if let (Some(kid), false) = (&encrypter.kid, protected.members().contains_key("kid")) {
            own.insert("kid".into(), kid.as_str().into());
        }
        own.extend(w.params);
        if let Some(extra) = extra {
            if !extra.crit().is_empty() {
                return Err(JweError::Crit.into());
            }
            for (k, v) in extra.members() {
                if own.insert(k.clone(), v.clone()).is_some() {
                    return Err(JweError::InvalidHeader("a member is in two headers").into());
                }
            }
        }
        match placement {
            Placement::Protected => {
                head.extend(own);
                sealed_recipients.push(SealedRecipient {
                    header: Map::new(),
                    encrypted_key: w.encrypted_key,
                });
            }
            Placement::PerRecipient => sealed_recipients.push(SealedRecipient {
                header: own,
                encrypted_key: w.encrypted_key,
            }),
        }
    }
    // RFC 7516 §7.2.1: the protected, shared and per-recipient members are disjoint.
    let shared = unprotected.map(JweHeader::members);
    if unprotected.is_some_and(|u| !u.crit().is_empty()) {
        return Err(JweError::Crit.into());
    }
    // What a decrypter refuses is not written either.
    let typing = crate::jws::types_unprotected;
    if shared.is_some_and(typing) || sealed_recipients.iter().any(|r| typing(&r.header)) {
        return Err(JweError::InvalidHeader("typ and cty must be integrity protected").into());
    }
    let clash = shared.is_some_and(|u| u.keys().any(|k| head.contains_key(k)))
        || sealed_recipients.iter().any(|r| {
            r.header
                .keys()
                .any(|k| head.contains_key(k) || shared.is_some_and(|u| u.contains_key(k)))
        });
    if clash {
        return Err(JweError::InvalidHeader("a member is in two headers").into());
    }
    let protected_b64 = match exact {
        Some(bytes) => b64::encode(bytes),
        None => b64::encode(encode_header(&head)),
    };
    seal_content(
        protected_b64,
        sealed_recipients,
        enc,
        zip,
        &cek,
        aad,
        plaintext,
        rng,
    )
}

/// Content encryption (RFC 7516 §5.1 steps 11–16) under `cek`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn seal_content(
    protected_b64: String,
    recipients: Vec<SealedRecipient>,
    enc: JweEncryption,
    zip: bool,
    cek: &[u8],
    aad: Option<&[u8]>,
    plaintext: &[u8],
    rng: Rng<'_>,
) -> Result<Sealed, Error> {
    let aad_b64 = aad.map(b64::encode);
    let mut aad_input = protected_b64.clone().into_bytes();
    if let Some(a) = &aad_b64 {
        aad_input.push(b'.');
        aad_input.extend_from_slice(a.as_bytes());
    }
    let compressed;
    let content = if zip {
        compressed = zeroize::Zeroizing::new(deflate(plaintext));
        compressed.as_slice()
    } else {
        plaintext
    };
    let iv = rng(Purpose::ContentIv, enc.iv_len())?;
    let (ciphertext, tag) = content_encrypt(enc, cek, &iv, &aad_input, content)?;
    Ok(Sealed {
        protected: protected_b64,
        recipients,
        aad: aad_b64,
        iv: iv.to_vec(),
        ciphertext,
        tag,
    })
}
