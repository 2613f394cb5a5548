//! DPoP proofs (RFC 9449): the one checker the service (proofs at its token
//! endpoint) and resource servers (proofs sent with a DPoP-bound access
//! token) share. What differs between them is where a proof's `jti` is
//! remembered — the service's store, which every node sees, or bounded
//! memory in a resource server — behind [`ReplayCache`].
//!
//! A proof is checked in this order ([`check`]), each step with its own
//! error ([`DpopError`]): size; a compact JWS; `typ: dpop+jwt`; an `alg` of
//! the allowed list (never `none` nor a MAC); a `jwk` that is a public key
//! and suits that `alg`; the signature by that key; `jti`, `htm`, `htu` and
//! `iat` present and well-formed; `htm` the request's method; `htu` the
//! endpoint's URL as configured (never one built from `Host` or
//! `X-Forwarded-*`), compared without query and fragment, scheme and host
//! without case, default ports normalised; `iat` no older than the allowed
//! age and at most [`MAX_FUTURE`] seconds ahead; a server nonce when one is
//! required; `ath` the hash of the access token presented with it. Only
//! then may the caller check the key against a token's `cnf.jkt` and record
//! the `jti` ([`Proof::record`]): a proof that fails any check leaves no
//! trace, and one recorded is refused everywhere the cache reaches.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tessera_jose::json::{self, Limits};
use tessera_jose::jwa::{Hash, JwsAlgorithm};
use tessera_jose::jwk::Jwk;
use tessera_jose::jws::{JwsHeader, Signer, UnverifiedJws, Verifier};

/// The `typ` of a DPoP proof (RFC 9449 §4.2).
pub const TYP: &str = "dpop+jwt";
/// The largest `DPoP` header accepted, in bytes. A proof carries one public
/// key (an RSA-4096 `jwk` is under 1 KiB encoded) and a few claims.
pub const MAX_PROOF_BYTES: usize = 4096;
/// The longest `jti` accepted, in bytes (RFC 9449 asks for 96 random bits;
/// a UUID is 36 characters).
pub const MAX_JTI_BYTES: usize = 128;
/// The longest `nonce` accepted, in bytes.
pub const MAX_NONCE_BYTES: usize = 512;
/// How far ahead of this clock a proof's `iat` may be, in seconds (FAPI 2.0
/// asks servers to accept 10).
pub const MAX_FUTURE: i64 = 10;
/// How old a proof may be by default: 60 s.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60);
/// The algorithms accepted by default: asymmetric only.
pub const DEFAULT_ALGORITHMS: [JwsAlgorithm; 4] = [
    JwsAlgorithm::ES256,
    JwsAlgorithm::EdDSA,
    JwsAlgorithm::PS256,
    JwsAlgorithm::RS256,
];
/// Members that make a `jwk` private or secret: a proof carrying one is
/// refused whatever else it says.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a proof was refused. [`DpopError::code`] is the OAuth error code to
/// answer with; the message is safe to send back (it names what failed,
/// never a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    /// A proof is required and none was sent.
    #[error("a DPoP proof is required")]
    Missing,
    /// More than one `DPoP` header (or one holding several values).
    #[error("more than one DPoP header")]
    Multiple,
    /// Over [`MAX_PROOF_BYTES`].
    #[error("the DPoP proof is over {MAX_PROOF_BYTES} bytes")]
    TooLarge,
    /// Not a compact JWS, or its header or claims are not strict JSON.
    #[error("the DPoP proof is malformed: {0}")]
    Malformed(String),
    /// `typ` is not `dpop+jwt`.
    #[error("typ must be dpop+jwt")]
    Typ,
    /// `alg` is missing, `none`, a MAC, or not allowed here.
    #[error("alg {0} is not accepted for DPoP proofs")]
    Algorithm(String),
    /// `jwk` is missing or not an object.
    #[error("the DPoP proof has no jwk")]
    NoKey,
    /// `jwk` holds private or secret key material.
    #[error("jwk must be a public key")]
    PrivateKey,
    /// `jwk` is not a usable key for `alg` (e.g. RSA under 2048 bits).
    #[error("jwk: {0}")]
    Key(String),
    /// The signature does not verify with the proof's own `jwk`.
    #[error("the DPoP proof's signature does not verify with its jwk")]
    Signature,
    /// A required claim is missing or of the wrong type or size.
    #[error("the DPoP proof's {0} is missing or malformed")]
    Claim(&'static str),
    /// `htm` is not the request's method.
    #[error("htm does not match the request method")]
    Htm,
    /// `htu` is not this endpoint's URL.
    #[error("htu does not match this endpoint's URL")]
    Htu,
    /// `iat` is older than allowed.
    #[error("the DPoP proof is too old (iat)")]
    Stale,
    /// `iat` is too far ahead.
    #[error("the DPoP proof is issued in the future (iat)")]
    Future,
    /// `ath` is missing or is not the hash of the access token presented.
    #[error("ath does not match the access token")]
    Ath,
    /// A server nonce is required and the proof has none, an unknown one,
    /// or (with nonces on) an `iat` out of the window: answer
    /// `use_dpop_nonce` with a fresh `DPoP-Nonce`.
    #[error("a fresh DPoP nonce is required")]
    UseNonce,
    /// This proof (`jkt`, `jti`) was used before.
    #[error("the DPoP proof was already used")]
    Replayed,
    /// The proof's key is not the one the token (or session) is bound to.
    #[error("the DPoP proof's key is not the one the token is bound to")]
    KeyMismatch,
    /// The replay cache could not be written: the proof is refused (fail
    /// closed), and the caller should answer 503.
    #[error("DPoP proofs cannot be checked for replay right now")]
    ReplayUnavailable,
}

impl DpopError {
    /// The OAuth error code: `use_dpop_nonce`, `temporarily_unavailable`
    /// (the replay cache failed) or `invalid_dpop_proof`.
    pub fn code(&self) -> &'static str {
        match self {
            DpopError::UseNonce => "use_dpop_nonce",
            DpopError::ReplayUnavailable => "temporarily_unavailable",
            _ => "invalid_dpop_proof",
        }
    }
}

/// What a proof may be: its algorithms and its age.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofRules {
    algorithms: Vec<JwsAlgorithm>,
    max_age: Duration,
}

impl Default for ProofRules {
    fn default() -> Self {
        ProofRules {
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            max_age: DEFAULT_MAX_AGE,
        }
    }
}

impl ProofRules {
    /// Proofs signed with one of `algorithms` (asymmetric only: a MAC is
    /// refused here, as is an empty list) and at most `max_age` old (at
    /// least a second, at most an hour).
    pub fn new(algorithms: &[JwsAlgorithm], max_age: Duration) -> Result<Self, String> {
        if algorithms.is_empty() {
            return Err("at least one algorithm is needed".into());
        }
        if let Some(mac) = algorithms.iter().find(|a| a.is_symmetric()) {
            return Err(format!(
                "{} is a MAC: DPoP proofs are signed with a private key",
                mac.name()
            ));
        }
        if max_age < Duration::from_secs(1) || max_age > Duration::from_secs(3600) {
            return Err("max_age must be between 1 s and 1 h".into());
        }
        Ok(ProofRules {
            algorithms: algorithms.to_vec(),
            max_age,
        })
    }

    /// The algorithms accepted (for `dpop_signing_alg_values_supported`
    /// and `WWW-Authenticate: DPoP algs=…`).
    pub fn algorithms(&self) -> &[JwsAlgorithm] {
        &self.algorithms
    }

    /// How old a proof may be.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    fn max_age_seconds(&self) -> i64 {
        i64::try_from(self.max_age.as_secs()).unwrap_or(3600)
    }
}

/// Whether a server nonce is required, and which are good.
#[derive(Clone, Copy)]
pub enum Nonce<'a> {
    /// No nonce is required (one sent anyway is ignored).
    NotRequired,
    /// A nonce this function accepts is required.
    Required(&'a (dyn Fn(&str) -> bool + Sync)),
}

impl std::fmt::Debug for Nonce<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Nonce::NotRequired => f.write_str("NotRequired"),
            Nonce::Required(_) => f.write_str("Required"),
        }
    }
}

/// Stateless server nonces (RFC 9449 §8, §9): a nonce is a one-minute
/// time bucket and its HMAC-SHA-256 under a key, so any instance holding
/// the key accepts any instance's nonces, for two to three minutes (the
/// current bucket, the two before it, and one ahead for clocks that differ
/// a little), and nothing is stored. What `tessera serve` does with a key
/// derived from its master key; a resource server gives its own key
/// ([`crate::VerifierBuilder::dpop_nonce_key`]).
pub struct Nonces {
    key: zeroize::Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Nonces(..)")
    }
}

/// Seconds in one nonce bucket.
pub const NONCE_PERIOD: i64 = 60;
/// How many buckets before the current one a nonce is still accepted in
/// (one ahead is accepted too).
pub const NONCE_BUCKETS_BEHIND: i64 = 2;
/// The shortest nonce key accepted, in bytes.
pub const MIN_NONCE_KEY: usize = 32;
/// What a nonce's MAC covers besides its bucket.
const NONCE_LABEL: &[u8] = b"tessera dpop nonce";

impl Nonces {
    /// Nonces under `key` (at least [`MIN_NONCE_KEY`] random bytes; give
    /// every instance of one resource the same key).
    pub fn new(key: &[u8]) -> Result<Self, String> {
        if key.len() < MIN_NONCE_KEY {
            return Err(format!(
                "a DPoP nonce key is at least {MIN_NONCE_KEY} bytes (got {})",
                key.len()
            ));
        }
        Ok(Nonces {
            key: zeroize::Zeroizing::new(key.to_vec()),
        })
    }

    fn tag(&self, bucket: [u8; 8]) -> Vec<u8> {
        let mut data = NONCE_LABEL.to_vec();
        data.extend_from_slice(&bucket);
        Hash::Sha256.mac(&self.key, &data)
    }

    /// A fresh nonce at `now`.
    pub fn issue(&self, now: i64) -> String {
        let bucket = now.div_euclid(NONCE_PERIOD).to_be_bytes();
        let mut raw = bucket.to_vec();
        raw.extend_from_slice(&self.tag(bucket));
        tessera_jose::b64::encode(raw)
    }

    /// Whether `nonce` is one of these and still good at `now`.
    pub fn accepts(&self, nonce: &str, now: i64) -> bool {
        let Ok(raw) = tessera_jose::b64::decode(nonce, "nonce") else {
            return false;
        };
        let (Some(b), Some(tag)) = (raw.get(..8), raw.get(8..)) else {
            return false;
        };
        let Ok(bucket) = <[u8; 8]>::try_from(b) else {
            return false;
        };
        let current = now.div_euclid(NONCE_PERIOD);
        let mut data = NONCE_LABEL.to_vec();
        data.extend_from_slice(&bucket);
        (current.saturating_sub(2)..=current.saturating_add(1))
            .contains(&i64::from_be_bytes(bucket))
            && Hash::Sha256.verify_mac(&self.key, &data, tag)
    }
}

/// The request a proof came with, as this server knows it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Its HTTP method.
    pub method: &'a str,
    /// This endpoint's URL from configuration (the service's issuer, a
    /// resource's external base URL) plus the request's path — never one
    /// built from `Host` or `X-Forwarded-*`.
    pub url: &'a str,
    /// The access token sent with it (a resource server): `ath` must be its
    /// hash. `None` at a token endpoint.
    pub access_token: Option<&'a str>,
    /// Whether a server nonce is required.
    pub nonce: Nonce<'a>,
}

/// A proof that passed every check of [`check`].
#[derive(Debug, Clone)]
pub struct Proof {
    /// The RFC 7638 SHA-256 thumbprint of its key: a bound token's
    /// `cnf.jkt`.
    pub jkt: String,
    /// Its `jti`.
    pub jti: String,
    /// Its `iat`.
    pub iat: i64,
    /// Its `nonce`, if it has one.
    pub nonce: Option<String>,
    /// Its algorithm.
    pub alg: JwsAlgorithm,
    /// Its (public) key.
    pub key: Jwk,
}

impl Proof {
    /// Until when this proof could be accepted, and so must be remembered.
    pub fn remember_until(&self, rules: &ProofRules) -> i64 {
        self.iat.saturating_add(rules.max_age_seconds())
    }

    /// Records the proof in `cache` — the last step, after every other
    /// check (a token's `cnf.jkt` too) passed: [`DpopError::Replayed`] if
    /// it was used before, [`DpopError::ReplayUnavailable`] if the cache
    /// cannot say (fail closed).
    pub async fn record<C: ReplayCache + ?Sized>(
        &self,
        cache: &C,
        rules: &ProofRules,
        now: i64,
    ) -> Result<(), DpopError> {
        match cache
            .first_use(
                &replay_key(&self.jkt, &self.jti),
                self.remember_until(rules),
                now,
            )
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(DpopError::Replayed),
            Err(e) => {
                tracing::warn!(error = %e, "DPoP replay cache unavailable: proof refused");
                Err(DpopError::ReplayUnavailable)
            }
        }
    }
}

/// The key under which a proof is remembered: SHA-256 of its key's
/// thumbprint and its `jti` (fixed size, whatever the `jti`).
pub fn replay_key(jkt: &str, jti: &str) -> Vec<u8> {
    let mut input = Vec::with_capacity(jkt.len() + jti.len() + 1);
    input.extend_from_slice(jkt.as_bytes());
    input.push(0);
    input.extend_from_slice(jti.as_bytes());
    Hash::Sha256.digest(&input)
}

/// `ath`: base64url of the SHA-256 of the exact access token string.
pub fn access_token_hash(token: &str) -> String {
    tessera_jose::b64::encode(Hash::Sha256.digest(token.as_bytes()))
}

/// The one `DPoP` header of a request: `None` if there is none,
/// [`DpopError::Multiple`] if there are several or one holds a list,
/// [`DpopError::TooLarge`] over [`MAX_PROOF_BYTES`].
pub fn header(headers: &axum::http::HeaderMap) -> Result<Option<&str>, DpopError> {
    let mut values = headers.get_all("dpop").iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(DpopError::Multiple);
    }
    if first.len() > MAX_PROOF_BYTES {
        return Err(DpopError::TooLarge);
    }
    let text = first
        .to_str()
        .map_err(|_| DpopError::Malformed("the DPoP header is not ASCII".into()))?
        .trim();
    if text.contains(',') {
        return Err(DpopError::Multiple);
    }
    Ok(Some(text))
}

fn limits() -> Limits {
    Limits {
        max_token_bytes: MAX_PROOF_BYTES,
        ..Limits::default()
    }
}

/// Checks `proof` against `rules` and `request` at `now` (everything but
/// replay: see [`Proof::record`]).
pub fn check(
    proof: &str,
    rules: &ProofRules,
    request: &Request<'_>,
    now: i64,
) -> Result<Proof, DpopError> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(DpopError::TooLarge);
    }
    let limits = limits();
    let mut segments = proof.split('.');
    let header_b64 = match (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) {
        (Some(h), Some(_), Some(_), None) if !h.is_empty() => h,
        _ => return Err(DpopError::Malformed("expected a compact JWS".into())),
    };
    // A client signs every proof with the same header (`typ`, `alg`,
    // `jwk`): the checks of the header, and importing its key, are done
    // once for those exact bytes. Only a header whose proof verified is
    // kept, so nothing an attacker sends unsigned gets in.
    let header_id = Hash::Sha256.digest(header_b64.as_bytes());
    let (prepared, fresh) = match recent_key(&header_id) {
        Some(p) => (p, false),
        None => (Arc::new(prepare_header(proof, rules, &limits)?), true),
    };
    // The rules are this caller's: a header another verifier accepted
    // must still name an algorithm this one allows.
    if !rules.algorithms.contains(&prepared.alg) {
        return Err(DpopError::Algorithm(prepared.alg.name().into()));
    }
    let verified = prepared
        .verifier
        .verify_compact(proof)
        .map_err(|_| DpopError::Signature)?;
    if fresh {
        remember_key(header_id, prepared.clone());
    }
    let claims = json::parse_object(verified.payload(), &limits, "DPoP proof claims")
        .map_err(|e| DpopError::Malformed(e.to_string()))?;

    let jti = text_claim(&claims, "jti", MAX_JTI_BYTES)?;
    let htm = text_claim(&claims, "htm", 32)?;
    let htu = text_claim(&claims, "htu", 2048)?;
    let iat = claims
        .get("iat")
        .and_then(numeric_date)
        .ok_or(DpopError::Claim("iat"))?;
    if htm != request.method {
        return Err(DpopError::Htm);
    }
    if !same_target(htu, request.url) {
        return Err(DpopError::Htu);
    }
    let nonce = match claims.get("nonce") {
        None => None,
        Some(Value::String(n)) if !n.is_empty() && n.len() <= MAX_NONCE_BYTES => Some(n.clone()),
        Some(_) => return Err(DpopError::Claim("nonce")),
    };
    let nonces = matches!(request.nonce, Nonce::Required(_));
    let window = |e: DpopError| if nonces { DpopError::UseNonce } else { e };
    if iat < now.saturating_sub(rules.max_age_seconds()) {
        return Err(window(DpopError::Stale));
    }
    if iat > now.saturating_add(MAX_FUTURE) {
        return Err(window(DpopError::Future));
    }
    if let Nonce::Required(valid) = request.nonce {
        if !nonce.as_deref().is_some_and(valid) {
            return Err(DpopError::UseNonce);
        }
    }
    if let Some(token) = request.access_token {
        let ath = claims.get("ath").and_then(Value::as_str);
        if ath != Some(access_token_hash(token).as_str()) {
            return Err(DpopError::Ath);
        }
    }
    Ok(Proof {
        jkt: prepared.jkt.clone(),
        jti: jti.to_owned(),
        iat,
        nonce,
        alg: prepared.alg,
        key: prepared.key.clone(),
    })
}

/// A proof's header, checked, and its key imported: the public key, its
/// thumbprint, the algorithm, and a verifier for that key and algorithm.
struct PreparedKey {
    key: Jwk,
    jkt: String,
    alg: JwsAlgorithm,
    verifier: Verifier,
}

/// How many proof headers are kept checked (the cache is emptied when
/// full: a flood of new keys costs their importing, nothing else).
const RECENT_KEYS: usize = 4096;

/// Keyed by the SHA-256 of the header's encoded bytes (a fixed size,
/// whatever the header).
type KeyCache = std::sync::Mutex<HashMap<Vec<u8>, Arc<PreparedKey>>>;

fn key_cache() -> &'static KeyCache {
    static KEYS: std::sync::OnceLock<KeyCache> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| std::sync::Mutex::new(HashMap::new()))
}

fn recent_key(header_id: &[u8]) -> Option<Arc<PreparedKey>> {
    key_cache().lock().ok()?.get(header_id).cloned()
}

fn remember_key(header_id: Vec<u8>, key: Arc<PreparedKey>) {
    if let Ok(mut keys) = key_cache().lock() {
        if keys.len() >= RECENT_KEYS {
            keys.clear();
        }
        keys.insert(header_id, key);
    }
}

/// Checks a proof's protected header — `typ: dpop+jwt`, an `alg` of
/// `rules` (never `none` nor a MAC), a `jwk` that is a public key and suits
/// that `alg` — and imports the key.
fn prepare_header(
    proof: &str,
    rules: &ProofRules,
    limits: &Limits,
) -> Result<PreparedKey, DpopError> {
    let jws = UnverifiedJws::parse_compact(proof, limits)
        .map_err(|e| DpopError::Malformed(e.to_string()))?;
    let header = jws
        .protected_header()
        .ok_or_else(|| DpopError::Malformed("no protected header".into()))?;
    match header.get("typ").and_then(Value::as_str) {
        Some(t) if t.eq_ignore_ascii_case(TYP) => {}
        _ => return Err(DpopError::Typ),
    }
    let alg_name = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| DpopError::Algorithm("(missing)".into()))?;
    let alg = alg_name
        .parse::<JwsAlgorithm>()
        .ok()
        .filter(|a| !a.is_symmetric() && rules.algorithms.contains(a))
        .ok_or_else(|| DpopError::Algorithm(printable(alg_name)))?;
    let jwk_map = header
        .get("jwk")
        .and_then(Value::as_object)
        .ok_or(DpopError::NoKey)?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk_map.contains_key(*m)) {
        return Err(DpopError::PrivateKey);
    }
    // The key is the header's own: a `kid` names nothing to look up. The
    // header's `kid` (some clients send one) is given to the key, so that
    // the JWS verifier's kid matching finds it.
    let mut jwk_map = jwk_map.clone();
    jwk_map.remove("kid");
    if let Some(kid) = header.get("kid").and_then(Value::as_str) {
        jwk_map.insert("kid".into(), kid.into());
    }
    let key = Jwk::from_map(&jwk_map).map_err(|e| DpopError::Key(e.to_string()))?;
    if key.is_private() || key.is_symmetric() {
        return Err(DpopError::PrivateKey);
    }
    let verifier = Verifier::builder()
        .key(&key, &[alg])
        .map_err(|e| DpopError::Key(e.to_string()))?
        .expect_typ(TYP)
        .limits(*limits)
        .build()
        .map_err(|e| DpopError::Key(e.to_string()))?;
    Ok(PreparedKey {
        jkt: key.thumbprint(),
        key,
        alg,
        verifier,
    })
}

/// A claim that must be a non-empty string of at most `max` bytes.
fn text_claim<'a>(
    claims: &'a Map<String, Value>,
    name: &'static str,
    max: usize,
) -> Result<&'a str, DpopError> {
    match claims.get(name) {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= max => Ok(s),
        _ => Err(DpopError::Claim(name)),
    }
}

/// An RFC 7519 NumericDate: an integer, or a number with a fraction
/// (truncated), within the range of an `i64`.
fn numeric_date(v: &Value) -> Option<i64> {
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    let f = v.as_f64()?;
    // Within ±2^53: exact, and far beyond any real date.
    (f.is_finite() && f.abs() < 9_007_199_254_740_992.0).then(|| f.trunc() as i64)
}

/// An algorithm name as it may be echoed in an error: printable ASCII, at
/// most 32 characters.
fn printable(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(32)
        .collect()
}

/// Whether the proof's `htu` names `expected` (RFC 9449 §4.3 step 9):
/// query and fragment ignored, scheme and host compared without case and
/// default ports made explicit (the URL parser does both), the path as
/// written.
pub fn same_target(htu: &str, expected: &str) -> bool {
    let Ok(b) = url::Url::parse(expected) else {
        return false;
    };
    // What most clients send: the URL itself, parsed once.
    let parsed;
    let a = if htu == expected {
        &b
    } else {
        match url::Url::parse(htu) {
            Ok(u) => {
                parsed = u;
                &parsed
            }
            Err(_) => return false,
        }
    };
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.host().is_some()
        && a.port_or_known_default() == b.port_or_known_default()
        && a.username().is_empty()
        && a.password().is_none()
        && a.path() == b.path()
}

/// What a client puts in a proof ([`sign`]).
#[derive(Debug, Clone)]
pub struct NewProof<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The URL (query and fragment are dropped).
    pub url: &'a str,
    /// A unique id (at least 96 random bits, base64url).
    pub jti: &'a str,
    /// The time of signing.
    pub iat: i64,
    /// The access token it goes with: adds `ath`.
    pub access_token: Option<&'a str>,
    /// The server's nonce.
    pub nonce: Option<&'a str>,
}

/// Signs a proof with `key` (private, asymmetric) and `alg`; its public part
/// goes in the header's `jwk`.
pub fn sign(key: &Jwk, alg: JwsAlgorithm, proof: &NewProof<'_>) -> Result<String, String> {
    if alg.is_symmetric() || key.is_symmetric() {
        return Err("a DPoP proof is signed with a private key, not a MAC".into());
    }
    if !key.is_private() {
        return Err("signing a DPoP proof needs the private key".into());
    }
    let public = key.to_public().map_err(|e| e.to_string())?;
    let jwk: Value = serde_json::from_str(&public.to_json()).map_err(|e| e.to_string())?;
    let mut url = url::Url::parse(proof.url).map_err(|e| format!("htu: {e}"))?;
    url.set_query(None);
    url.set_fragment(None);
    let mut claims = Map::new();
    claims.insert("jti".into(), proof.jti.into());
    claims.insert("htm".into(), proof.method.into());
    claims.insert("htu".into(), url.as_str().into());
    claims.insert("iat".into(), proof.iat.into());
    if let Some(token) = proof.access_token {
        claims.insert("ath".into(), access_token_hash(token).into());
    }
    if let Some(nonce) = proof.nonce {
        claims.insert("nonce".into(), nonce.into());
    }
    let header = JwsHeader::new()
        .typ(TYP)
        .param("jwk", strip_key_metadata(jwk))
        .map_err(|e| e.to_string())?;
    let payload = serde_json::to_vec(&Value::Object(claims)).map_err(|e| e.to_string())?;
    Signer::new(key, alg)
        .and_then(|s| s.sign_compact(&header, &payload))
        .map_err(|e| e.to_string())
}

/// The key's public members only (no `kid`, `use`, `key_ops`, `alg`): a
/// proof's `jwk` describes the key, not how a JWKS files it.
fn strip_key_metadata(jwk: Value) -> Value {
    match jwk {
        Value::Object(mut m) => {
            for k in ["kid", "use", "key_ops", "alg"] {
                m.remove(k);
            }
            Value::Object(m)
        }
        other => other,
    }
}

/// Where proofs are remembered until they expire, so that each is accepted
/// once. The service keeps them in its store (every node sees every
/// proof); a resource server in [`MemoryReplayCache`].
pub trait ReplayCache: Send + Sync {
    /// Records `key` ([`replay_key`]) until `until` (Unix seconds): `true`
    /// if it was not recorded (or had expired by `now`), `false` if it is —
    /// atomically, so that of two concurrent uses exactly one is first. An
    /// error means the cache cannot say: the proof is refused.
    fn first_use(
        &self,
        key: &[u8],
        until: i64,
        now: i64,
    ) -> impl Future<Output = Result<bool, ReplayCacheError>> + Send;
}

/// The replay cache could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DPoP replay cache: {0}")]
pub struct ReplayCacheError(pub String);

/// A bounded in-memory [`ReplayCache`] for one process (a resource server).
/// When it holds `capacity` proofs that have not expired, new ones are
/// refused ([`DpopError::ReplayUnavailable`]) rather than an old one
/// forgotten — which would let it be replayed. Only proofs that passed
/// every other check (a valid bound token included) get in.
#[derive(Debug)]
pub struct MemoryReplayCache {
    capacity: usize,
    state: std::sync::Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    until: HashMap<Slot, i64>,
    /// Keys in the order they were recorded, with their expiry: the
    /// oldest are looked at first when making room.
    order: VecDeque<(i64, Slot)>,
}

/// A key as the memory cache holds it: 32 bytes, inline ([`replay_key`]'s
/// own size; a key of another size is hashed to it).
type Slot = [u8; 32];

fn slot(key: &[u8]) -> Slot {
    let digest;
    let bytes = if key.len() == 32 {
        key
    } else {
        digest = Hash::Sha256.digest(key);
        &digest
    };
    let mut slot = [0u8; 32];
    for (s, b) in slot.iter_mut().zip(bytes) {
        *s = *b;
    }
    slot
}

/// The default capacity of a [`MemoryReplayCache`]: 100,000 proofs (about
/// 10 MiB).
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

impl Default for MemoryReplayCache {
    fn default() -> Self {
        MemoryReplayCache::new(DEFAULT_REPLAY_CAPACITY)
    }
}

impl MemoryReplayCache {
    /// A cache of at most `capacity` unexpired proofs (at least one).
    pub fn new(capacity: usize) -> Self {
        MemoryReplayCache {
            capacity: capacity.max(1),
            state: std::sync::Mutex::new(Seen::default()),
        }
    }

    /// How many proofs it holds.
    pub fn len(&self) -> usize {
        self.state.lock().map_or(0, |s| s.until.len())
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn first_use_now(&self, key: &[u8], until: i64, now: i64) -> Result<bool, ReplayCacheError> {
        let mut seen = self
            .state
            .lock()
            .map_err(|_| ReplayCacheError("poisoned".into()))?;
        let key = slot(key);
        if seen.until.get(&key).is_some_and(|&u| u >= now) {
            return Ok(false);
        }
        // Forget what expired, oldest first (expiries come nearly in order:
        // every proof is kept for the same time after its iat).
        while seen.order.front().is_some_and(|(u, _)| *u < now) {
            if let Some((u, k)) = seen.order.pop_front() {
                if seen.until.get(&k) == Some(&u) {
                    seen.until.remove(&k);
                }
            }
        }
        if seen.until.len() >= self.capacity {
            // Nearly in order is not in order: sweep all once before refusing.
            let Seen { until: live, order } = &mut *seen;
            live.retain(|_, u| *u >= now);
            order.retain(|(u, k)| live.get(k) == Some(u));
            if live.len() >= self.capacity {
                return Err(ReplayCacheError(format!(
                    "full ({} proofs not yet expired)",
                    self.capacity
                )));
            }
        }
        seen.until.insert(key, until);
        seen.order.push_back((until, key));
        Ok(true)
    }
}

impl ReplayCache for MemoryReplayCache {
    fn first_use(
        &self,
        key: &[u8],
        until: i64,
        now: i64,
    ) -> impl Future<Output = Result<bool, ReplayCacheError>> + Send {
        std::future::ready(self.first_use_now(key, until, now))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
