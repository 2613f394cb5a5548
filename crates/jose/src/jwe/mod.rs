//! JSON Web Encryption (RFC 7516) with every key-management and content
//! algorithm of RFC 7518 and X25519 (RFC 8037).
//!
//! Encrypting: build an [`Encrypter`] from the recipient's key, the one
//! key-management algorithm (`alg`) and the content algorithm (`enc`), then
//! `encrypt_compact` or `encrypt_flattened`; [`encrypt_general`] seals one
//! plaintext to several recipients. Decrypting: build a [`Decrypter`] from
//! your keys and, for each, the `alg`/`enc` pairs it may serve — the header
//! only has to match them — then `decrypt_compact` or `decrypt_json`.
//!
//! ```
//! use tessera_jose::jwa::{JweAlgorithm, JweEncryption};
//! use tessera_jose::jwe::{Decrypter, Encrypter, JweHeader};
//! use tessera_jose::jwk::Jwk;
//!
//! let (alg, enc) = (JweAlgorithm::ECDH_ES_A256KW, JweEncryption::A256GCM);
//! let key = Jwk::generate_for_encryption(alg, enc).unwrap();
//! let token = Encrypter::new(&key.to_public().unwrap(), alg, enc)
//!     .unwrap()
//!     .encrypt_compact(&JweHeader::new(), b"for your eyes only")
//!     .unwrap();
//!
//! let decrypter = Decrypter::builder().key(&key, &[(alg, enc)]).unwrap().build().unwrap();
//! let opened = decrypter.decrypt_compact(&token).unwrap();
//! assert_eq!(opened.plaintext(), b"for your eyes only");
//! assert_eq!(opened.header().enc(), enc);
//! ```
//!
//! What is refused, whatever the header says: `RSA1_5`, for encryption and
//! decryption alike (no constant-time PKCS#1 v1.5 decryption is available:
//! the Marvin attack); `zip` unless enabled (then inflated under a cap); an
//! `epk` off the recipient key's curve; a PBES2 `p2c` above the bound or
//! `p2s` under 8 bytes; keys marked `use: sig`; an `alg`/`enc` pair the key
//! was not added for. Every decryption failure is the same
//! [`JweError::DecryptionFailed`].
//!
//! [`JweError::DecryptionFailed`]: crate::error::JweError::DecryptionFailed

mod decrypt;
mod encrypt;
mod keys;

pub(crate) use decrypt::unopened_headers;
pub use decrypt::{Decrypted, Decrypter, DecrypterBuilder};
pub use encrypt::{encrypt_general, Encrypter, Recipient};

use serde_json::{Map, Value};

use crate::error::{Error, JweError};
use crate::jwa::{JweAlgorithm, JweEncryption};
use crate::jws::{parse_crit, REGISTERED};

/// The default cap on a decompressed (`zip: DEF`) plaintext: 250 KB.
pub const DEFAULT_MAX_DECOMPRESSED: usize = 250_000;
/// The default bound on a PBES2 `p2c` a decrypter accepts: 100,000.
///
/// Every iteration is work anyone who can hand you a token makes you do,
/// before anything is authenticated: at 600,000 one forged token cost about
/// a quarter of a second of CPU, at 100,000 about 40 ms. 100,000 is the
/// highest bound that keeps that under a twentieth of a second while still
/// accepting the strength tessera itself writes ([`DEFAULT_PBES2_COUNT`]);
/// panva/jose (10,000) and jwcrypto (16,384) bound it lower. A decrypter
/// that expects stronger tokens from a known sender raises it with
/// [`DecrypterBuilder::max_pbes2_count`](crate::jwe::DecrypterBuilder::max_pbes2_count).
pub const DEFAULT_MAX_PBES2_COUNT: u32 = 100_000;
/// The PBES2 iteration count an [`Encrypter`] uses unless told otherwise:
/// 100,000, the most a default decrypter accepts (the password is what
/// makes PBES2 strong: use a long random one).
pub const DEFAULT_PBES2_COUNT: u32 = 100_000;

/// Header names the library sets itself; [`JweHeader::param`] refuses them.
const SET_BY_LIBRARY: &[&str] = &[
    "alg", "enc", "zip", "crit", "epk", "apu", "apv", "iv", "tag", "p2s", "p2c",
];

/// Header parameters for encrypting. `alg`, `enc`, `zip` and the key-management
/// parameters (`epk`, `iv`, `tag`, `p2s`, `p2c`, `apu`, `apv`) come from the
/// [`Encrypter`]; `kid` from the key unless set here.
///
/// ```
/// use tessera_jose::jwe::JweHeader;
/// let h = JweHeader::new().typ("secevent+jwe").cty("JWT");
/// assert!(h.clone().param("enc", "A128GCM".into()).is_err());
/// assert!(h.param("x-trace", "abc".into()).is_ok());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JweHeader {
    params: Map<String, Value>,
    crit: Vec<String>,
}

impl JweHeader {
    /// An empty header.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `typ`.
    pub fn typ(mut self, typ: &str) -> Self {
        self.params.insert("typ".into(), typ.into());
        self
    }
    /// Sets `cty` (`JWT` for a nested JWT; [`crate::jwt::sign_and_encrypt`] does it).
    pub fn cty(mut self, cty: &str) -> Self {
        self.params.insert("cty".into(), cty.into());
        self
    }
    /// Sets `kid`.
    pub fn kid(mut self, kid: &str) -> Self {
        self.params.insert("kid".into(), kid.into());
        self
    }
    /// Sets any other parameter. The names the library sets itself are refused.
    pub fn param(mut self, name: &str, value: Value) -> Result<Self, Error> {
        if SET_BY_LIBRARY.contains(&name) {
            return Err(JweError::InvalidHeader("this parameter is set by the encrypter").into());
        }
        self.params.insert(name.into(), value);
        Ok(self)
    }
    /// Sets an extension parameter and lists it in `crit` (protected headers only).
    pub fn critical(mut self, name: &str, value: Value) -> Result<Self, Error> {
        if REGISTERED.contains(&name) {
            return Err(JweError::Crit.into());
        }
        self.params.insert(name.into(), value);
        if !self.crit.iter().any(|c| c == name) {
            self.crit.push(name.into());
        }
        Ok(self)
    }
    pub(crate) fn members(&self) -> &Map<String, Value> {
        &self.params
    }
    pub(crate) fn crit(&self) -> &[String] {
        &self.crit
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.params.is_empty()
    }
}

/// A JWE header after parsing: the union of the protected, shared
/// unprotected and per-recipient members (RFC 7516 §7.2.1: they must be
/// disjoint), with `alg`, `enc`, `zip` and `crit` checked. Cheap to clone.
#[derive(Debug, Clone, PartialEq)]
pub struct Header(std::sync::Arc<HeaderFields>);

#[derive(Debug, PartialEq)]
struct HeaderFields {
    alg: JweAlgorithm,
    enc: JweEncryption,
    zip: bool,
    crit: Vec<String>,
    /// `typ` and `cty` of the protected header: the only ones that count.
    typ: Option<String>,
    cty: Option<String>,
    joint: Map<String, Value>,
}

impl Header {
    /// The key-management algorithm.
    pub fn alg(&self) -> JweAlgorithm {
        self.0.alg
    }
    /// The content-encryption algorithm.
    pub fn enc(&self) -> JweEncryption {
        self.0.enc
    }
    /// Whether the plaintext was compressed (`zip: DEF`).
    pub fn zip(&self) -> bool {
        self.0.zip
    }
    /// The `kid`, if it is a string.
    pub fn kid(&self) -> Option<&str> {
        self.0.joint.get("kid").and_then(Value::as_str)
    }
    /// The protected header's `typ`, if it is a string. An unprotected one
    /// never counts (anyone can add it); see
    /// [`DecrypterBuilder::tolerate_unprotected_typing`](crate::jwe::DecrypterBuilder::tolerate_unprotected_typing).
    pub fn typ(&self) -> Option<&str> {
        self.0.typ.as_deref()
    }
    /// The protected header's `cty`, if it is a string (`JWT` for a nested
    /// JWT). An unprotected one never counts.
    pub fn cty(&self) -> Option<&str> {
        self.0.cty.as_deref()
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

/// RFC 7516 §5.2 steps 2–5: joins the three headers and checks them.
pub(crate) fn build_header(
    protected: &Map<String, Value>,
    shared: Option<&Map<String, Value>>,
    per_recipient: Option<&Map<String, Value>>,
    understood_crit: &[String],
    tolerate_unprotected_typing: bool,
) -> Result<Header, Error> {
    let unprotected = [shared, per_recipient];
    let unprotected = unprotected.iter().flatten();
    for u in unprotected.clone() {
        if u.contains_key("crit") {
            return Err(JweError::Crit.into());
        }
        if u.contains_key("zip") {
            return Err(JweError::InvalidHeader("zip must be integrity protected").into());
        }
        // `cty: JWT` is the nested-token gate and `typ` explicit typing:
        // anyone can add an unprotected member, so they count only when
        // protected (the JWE's AAD covers the protected header), and are
        // refused elsewhere unless the caller tolerates them (they then
        // still do not count: `Header::typ`/`cty` read the protected ones).
        if !tolerate_unprotected_typing && crate::jws::types_unprotected(u) {
            return Err(JweError::InvalidHeader("typ and cty must be integrity protected").into());
        }
    }
    let crit = parse_crit(protected, understood_crit, &[]).ok_or(JweError::Crit)?;
    let zip = match protected.get("zip") {
        None => false,
        Some(Value::String(z)) if z == "DEF" => true,
        Some(_) => return Err(JweError::InvalidHeader("zip is not DEF").into()),
    };
    let mut joint = protected.clone();
    for u in unprotected {
        for (k, v) in u.iter() {
            if joint.insert(k.clone(), v.clone()).is_some() {
                return Err(JweError::InvalidHeader("a member is in two headers").into());
            }
        }
    }
    let name = |member: &str| match joint.get(member) {
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(_) => Err(Error::from(JweError::Malformed(
            "alg or enc is not a string",
        ))),
        None => Err(Error::from(JweError::UnsupportedAlgorithm)),
    };
    let alg = name("alg")?.parse::<JweAlgorithm>()?;
    let enc = name("enc")?.parse::<JweEncryption>()?;
    let protected_str = |member: &str| {
        protected
            .get(member)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Ok(Header(std::sync::Arc::new(HeaderFields {
        alg,
        enc,
        zip,
        crit,
        typ: protected_str("typ"),
        cty: protected_str("cty"),
        joint,
    })))
}

/// Writes a protected header: `alg` and `enc` first when present, then the
/// rest in the map's order.
pub(crate) fn encode_header(map: &Map<String, Value>) -> Vec<u8> {
    let mut json = Vec::with_capacity(128);
    json.push(b'{');
    let first = ["alg", "enc"];
    let ordered = first
        .iter()
        .filter_map(|k| map.get_key_value(*k))
        .chain(map.iter().filter(|(k, _)| !first.contains(&k.as_str())));
    for (i, (k, v)) in ordered.enumerate() {
        if i > 0 {
            json.push(b',');
        }
        // Writing a string key or a Value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut json, k);
        json.push(b':');
        let _ = serde_json::to_writer(&mut json, v);
    }
    json.push(b'}');
    json
}

/// `zip: DEF` (RFC 1951 raw DEFLATE).
pub(crate) fn deflate(data: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec(data, 6)
}

/// Inflates `data`, never producing more than `limit` bytes: the cap is
/// enforced by the decompressor as it writes, not checked afterwards.
pub(crate) fn inflate(data: &[u8], limit: usize) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
    use miniz_oxide::inflate::{decompress_to_vec_with_limit, TINFLStatus};
    use zeroize::Zeroize;
    match decompress_to_vec_with_limit(data, limit) {
        Ok(out) => Ok(zeroize::Zeroizing::new(out)),
        Err(mut e) => {
            // The partial output is plaintext: wipe it.
            e.output.zeroize();
            Err(match e.status {
                TINFLStatus::HasMoreOutput => JweError::DecompressedTooLarge { limit }.into(),
                _ => JweError::Malformed("invalid DEFLATE data").into(),
            })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::keys::{Purpose, RecipientKey, RecipientRules, Secret};
    use super::*;
    use crate::jwk::Jwk;

    fn cookbook(name: &str) -> Value {
        let path = format!(
            "{}/tests/vectors/cookbook/jwe/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn b64d(v: &Value) -> Vec<u8> {
        crate::b64::decode(v.as_str().unwrap(), "test").unwrap()
    }

    /// Replays published random values by purpose.
    fn replay(
        cek: Vec<u8>,
        iv: Vec<u8>,
        kw_iv: Option<Vec<u8>>,
        salt: Option<Vec<u8>>,
    ) -> impl Fn(Purpose, usize) -> Result<Secret, Error> {
        move |purpose, len| {
            let v = match purpose {
                Purpose::Cek => cek.clone(),
                Purpose::ContentIv => iv.clone(),
                Purpose::KeyWrapIv => kw_iv.clone().unwrap(),
                Purpose::Pbes2Salt => salt.clone().unwrap(),
            };
            assert_eq!(v.len(), len, "{purpose:?}");
            Ok(zeroize::Zeroizing::new(v))
        }
    }

    /// RFC 7516 Appendix A.3 (A128KW + A128CBC-HS256), byte for byte, from
    /// the CEK and IV of A.3.2 and A.3.4.
    #[test]
    fn rfc7516_a3_reproduced() {
        let key = Jwk::from_json(br#"{"kty":"oct","k":"GawgguFyGrWKav7AX4VKUg"}"#).unwrap();
        let cek = vec![
            4, 211, 31, 197, 84, 157, 252, 254, 11, 100, 157, 250, 63, 170, 106, 206, 107, 124,
            212, 45, 111, 107, 9, 219, 200, 177, 0, 240, 143, 156, 44, 207,
        ];
        let iv = crate::b64::decode("AxY8DCtDaGlsbGljb3RoZQ", "iv").unwrap();
        let e = Encrypter::new(&key, JweAlgorithm::A128KW, JweEncryption::A128CBC_HS256).unwrap();
        let out = e
            .compact_with(
                &JweHeader::new(),
                b"Live long and prosper.",
                &replay(cek, iv, None, None),
                Some(br#"{"alg":"A128KW","enc":"A128CBC-HS256"}"#),
            )
            .unwrap();
        assert_eq!(
            out,
            concat!(
                "eyJhbGciOiJBMTI4S1ciLCJlbmMiOiJBMTI4Q0JDLUhTMjU2In0.",
                "6KB707dM9YTIgHtLvtgWQ8mKwboJW3of9locizkDTHzBC2IlrT1oOQ.",
                "AxY8DCtDaGlsbGljb3RoZQ.",
                "KDlTtXchhZTGufMYmOYGS4HffxPSUrfmqCHXaI9wOGY.",
                "U0m_YmjN04DJvceFICbCVQ"
            )
        );
    }

    /// RFC 7520 §5.3, §5.6, §5.7, §5.8 (the deterministic compact examples),
    /// byte for byte, replaying each example's CEK, IVs and PBES2 salt.
    #[test]
    fn rfc7520_compact_examples_reproduced() {
        for name in [
            "5_3.key_wrap_using_pbes2-aes-keywrap_with-aes-cbc-hmac-sha2.json",
            "5_6.direct_encryption_using_aes-gcm.json",
            "5_7.key_wrap_using_aes-gcm_keywrap_with_aes-cbc-hmac-sha2.json",
            "5_8.key_wrap_using_aes-keywrap_with_aes-gcm.json",
        ] {
            let case = cookbook(name);
            let input = &case["input"];
            let alg: JweAlgorithm = input["alg"].as_str().unwrap().parse().unwrap();
            let enc: JweEncryption = input["enc"].as_str().unwrap().parse().unwrap();
            let key = match input.get("pwd") {
                Some(pwd) => Jwk::from_secret(pwd.as_str().unwrap().as_bytes()).unwrap(),
                None => Jwk::from_json(input["key"].to_string().as_bytes()).unwrap(),
            };
            let mut e = Encrypter::new(&key, alg, enc).unwrap();
            let ek = &case["encrypting_key"];
            if let Some(count) = ek.get("iteration_count") {
                e = e.pbes2_count(count.as_u64().unwrap() as u32).unwrap();
            }
            let generated = &case["generated"];
            let cek = if alg == JweAlgorithm::Dir {
                Vec::new() // dir uses the key itself; no CEK is drawn
            } else {
                b64d(&generated["cek"])
            };
            let rng = replay(
                cek,
                b64d(&generated["iv"]),
                ek.get("iv").map(b64d),
                ek.get("salt").map(b64d),
            );
            let protected = b64d(&case["encrypting_content"]["protected_b64u"]);
            let out = e
                .compact_with(
                    &JweHeader::new(),
                    input["plaintext"].as_str().unwrap().as_bytes(),
                    &rng,
                    Some(&protected),
                )
                .unwrap();
            assert_eq!(out, case["output"]["compact"].as_str().unwrap(), "{name}");
        }
    }

    /// RFC 7518 Appendix C: ECDH-ES between Alice's ephemeral key and Bob's
    /// P-256 key, with apu "Alice" and apv "Bob", derives the A128GCM key
    /// VqqN6vgjbSBcIijNcacQGg (Z and the key as listed in Appendix C).
    #[test]
    fn rfc7518_appendix_c() {
        let bob = Jwk::from_json(
            br#"{"kty":"EC","crv":"P-256",
                "x":"weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ",
                "y":"e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck",
                "d":"VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw"}"#,
        )
        .unwrap();
        // Alice's ephemeral key parses with its private part: the published
        // x, y and d agree.
        Jwk::from_json(
            br#"{"kty":"EC","crv":"P-256",
                "x":"gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0",
                "y":"SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps",
                "d":"0_NxaRPUMQoAJt50Gz8YiTr8gRTwyEaCumd-MToTmIo"}"#,
        )
        .unwrap();
        let header: Map<String, Value> = serde_json::from_str(
            r#"{"alg":"ECDH-ES","enc":"A128GCM","apu":"QWxpY2U","apv":"Qm9i",
                "epk":{"kty":"EC","crv":"P-256",
                       "x":"gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0",
                       "y":"SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps"}}"#,
        )
        .unwrap();
        let (alg, enc) = (JweAlgorithm::ECDH_ES, JweEncryption::A128GCM);
        let key = RecipientKey::prepare(&bob, alg, enc).unwrap();
        let rules = RecipientRules {
            max_pbes2_count: DEFAULT_MAX_PBES2_COUNT,
        };
        let derived = key.unwrap(alg, enc, &header, &[], &rules).unwrap();
        assert_eq!(
            derived.as_slice(),
            &[86, 170, 141, 234, 248, 35, 109, 32, 92, 34, 40, 205, 113, 167, 16, 26]
        );
        assert_eq!(
            crate::b64::encode(derived.as_slice()),
            "VqqN6vgjbSBcIijNcacQGg"
        );
    }

    #[test]
    fn inflate_cap_is_exact() {
        let data = vec![b'a'; 10_000];
        let packed = deflate(&data);
        assert!(packed.len() < 100);
        assert_eq!(inflate(&packed, 10_000).unwrap().as_slice(), &data[..]);
        assert_eq!(
            inflate(&packed, 9_999).unwrap_err().code(),
            "ERR_JWE_DECOMPRESSED_TOO_LARGE"
        );
        assert_eq!(
            inflate(b"\xff\xff", 100).unwrap_err().code(),
            "ERR_JWE_MALFORMED"
        );
    }

    #[test]
    fn headers_must_be_disjoint_and_zip_protected() {
        let p: Map<String, Value> =
            serde_json::from_str(r#"{"alg":"A128KW","enc":"A128GCM"}"#).unwrap();
        let u: Map<String, Value> = serde_json::from_str(r#"{"kid":"a"}"#).unwrap();
        let r: Map<String, Value> = serde_json::from_str(r#"{"kid":"b"}"#).unwrap();
        assert!(build_header(&p, Some(&u), None, &[], false).is_ok());
        assert_eq!(
            build_header(&p, Some(&u), Some(&r), &[], false)
                .unwrap_err()
                .code(),
            "ERR_JWE_INVALID_HEADER"
        );
        let z: Map<String, Value> = serde_json::from_str(r#"{"zip":"DEF"}"#).unwrap();
        assert!(build_header(&p, Some(&z), None, &[], false).is_err());
        let c: Map<String, Value> = serde_json::from_str(r#"{"crit":["x"],"x":1}"#).unwrap();
        assert_eq!(
            build_header(&p, None, Some(&c), &[], false)
                .unwrap_err()
                .code(),
            "ERR_JWE_CRIT"
        );
    }
}
