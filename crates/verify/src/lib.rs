//! # tessera-verify
//!
//! What a Rust resource server adds to accept tessera tokens, in three lines:
//!
//! ```no_run
//! # async fn demo() -> Result<(), tessera_verify::BuildError> {
//! use tessera_jose::jwa::JwsAlgorithm;
//! let verifier = tessera_verify::Verifier::builder()
//!     .issuer("https://auth.example.com")
//!     .audience("https://api.example.com")
//!     .algorithms([JwsAlgorithm::RS256])
//!     .build()
//!     .await?;
//! // axum: `Claims<T>` in a handler (state: `FromRef` the `Verifier`), or `layer(verifier)`.
//! # Ok(()) }
//! ```
//!
//! The rules it keeps, so your service does not have to remember them:
//! - **The algorithm is pinned** by you; `none` cannot be named, and a
//!   token whose `alg` is not in your list is refused.
//! - **Keys come from your issuer only**: its JWKS URL from its RFC 8414
//!   metadata (or given), fetched at start-up and refreshed on a schedule
//!   that honours `Cache-Control` within bounds. A token's `kid` only picks
//!   among those keys: an unknown `kid` is refused and never triggers a
//!   fetch; `jku`, `x5u`, `jwk` and `x5c` are never used. A failed refresh
//!   keeps the last good key set (logged and counted), never an empty one —
//!   but not forever (below).
//! - **One verifier, one issuer.** A [`Verifier`] holds the keys of exactly
//!   one issuer, from its one JWKS, and accepts only tokens whose `iss` is
//!   that issuer: there is no way to add a key, merge another issuer's
//!   JWKS or name a second JWKS URL (giving [`VerifierBuilder::issuer`] or
//!   [`VerifierBuilder::jwks_uri`] twice is [`BuildError::Repeated`]). A
//!   service that trusts several issuers builds one verifier per issuer
//!   and chooses among them by its own configuration — never by the
//!   token's unverified `iss` or `kid`, which another issuer may reuse.
//! - **The issuer is compared as written** (RFC 8414 §3.3, RFC 7519 §2):
//!   the metadata's `issuer` and every token's `iss` must be identical to
//!   the configured string, so `https://auth.example.com/` (as some issuers
//!   write it) and `https://auth.example.com` are different issuers. The
//!   metadata is read where RFC 8414 §3.1 puts it: the well-known string
//!   between the host and the path, any terminating `/` removed —
//!   `https://a.example/tenant1` →
//!   `https://a.example/.well-known/oauth-authorization-server/tenant1`
//!   ([`urls::metadata_url`]); if that is a 404, the OpenID Connect
//!   Discovery document `{issuer}/.well-known/openid-configuration`, under
//!   the same rule.
//! - **A key set has a maximum age** ([`VerifierBuilder::jwks_max_staleness`],
//!   default [`DEFAULT_JWKS_MAX_STALENESS`], 6 h): if no refresh has
//!   succeeded for that long — the JWKS endpoint is down, or blocked by
//!   someone who wants a rotated-out key to stay trusted — tokens are
//!   refused with a 503 ([`AuthError::Unavailable`]) until one succeeds.
//!   Refreshes keep being retried meanwhile; [`Verifier::key_set_age`],
//!   [`Verifier::key_set_stale`] and [`Verifier::stale_refusals`] report it.
//! - **Keys travel over TLS**: the issuer, the JWKS URL given and the one
//!   its metadata names must be `https://`, or `http://` to a loopback host
//!   (`localhost`, 127.0.0.0/8, `[::1]`), and carry no `user:password@`;
//!   this is decided on the parsed URL, before any request ([`urls`]).
//! - **DPoP-bound tokens are proven, never downgraded** (RFC 9449 §7): with
//!   [`VerifierBuilder::external_url`], `Authorization: DPoP` is accepted
//!   with a `DPoP` proof for this request — its method, this resource's
//!   configured URL and path (never `Host` or `X-Forwarded-*`), `ath` the
//!   token's hash, fresh, signed by the key the token's `cnf.jkt` names,
//!   and never seen before (a bounded in-memory replay cache). A bound
//!   token sent as `Bearer` is refused, as is an unbound one sent as
//!   `DPoP`; failures answer `WWW-Authenticate: DPoP error=…, algs=…`
//!   ([`Verifier::verify_request`]).
//! - **Tokens are read from `Authorization: Bearer` or `DPoP` only**: one in the query
//!   string or a form body is refused (RFC 6750 §2.2, §2.3 are not
//!   offered), with a 401 and an RFC 6750 `WWW-Authenticate` error, and is
//!   never logged. A request with more than one `Authorization` header, or
//!   several credentials in one (`Bearer a, Bearer b`, as a proxy may merge
//!   them), is refused with a 400 `invalid_request`
//!   ([`AuthError::AmbiguousCredentials`]): a proxy in front may have
//!   judged the other one, so none is picked.
//! - Access tokens must be `typ: at+jwt` (RFC 9068), unexpired, for your
//!   audience alone (a token whose `aud` also names another service is
//!   refused: it could be replayed there), from your issuer. With a [`VerifierBuilder::decryption_key`],
//!   sealed tokens (JWE holding our signed JWT) and step-up assertions
//!   (`typ: step-up+jwt`) are accepted too.
#![forbid(unsafe_code)]

pub mod dpop;
mod error;
mod extract;
pub mod keys;
pub mod urls;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use tessera_jose::jwa::{JweAlgorithm, JweEncryption, JwsAlgorithm};
use tessera_jose::jwe::Decrypter;
use tessera_jose::jwk::Jwk;
use tessera_jose::jwt::{self, Clock, SystemClock, Validation};

pub use error::{AuthError, BuildError};
pub use extract::{layer, require_roles, require_scope, AccessClaims, Claims, Layer};

/// `typ` of tessera access tokens (RFC 9068).
pub const ACCESS_TYP: &str = "at+jwt";
/// `typ` of tessera step-up assertions.
pub const STEP_UP_TYP: &str = "step-up+jwt";
/// The response header carrying a DPoP server nonce (RFC 9449 §8.1, §9).
pub const DPOP_NONCE: &str = "dpop-nonce";

/// How long a key set stays in use without a successful refresh: 6 hours.
///
/// Long enough that an issuer outage of a few hours (or a JWKS endpoint
/// blocked for as long) costs nothing but log lines and counters — time
/// for whoever is on call to see [`Verifier::key_set_age`] grow and fix it;
/// short enough that a key the issuer removed in an emergency stops being
/// trusted the same day even where the JWKS cannot be reached. tessera
/// keeps a retired key in its JWKS until the tokens it signed have expired
/// (15 min for access tokens), so a normal rotation never needs a stale set.
pub const DEFAULT_JWKS_MAX_STALENESS: Duration = Duration::from_secs(6 * 3600);

/// Bounds on how long a fetched JWKS is used before it is fetched again,
/// whatever the issuer's `Cache-Control` says. [`VerifierBuilder::build`]
/// refuses `min` under one second, `min` above `max` and `default` outside
/// them ([`BuildError::RefreshSchedule`]).
#[derive(Debug, Clone, Copy)]
pub struct RefreshBounds {
    /// Never sooner than this (default 60 s); also the first wait after a
    /// failed refresh, doubling with each failure up to `max` (and to
    /// `min` again once the key set is stale).
    pub min: Duration,
    /// Never later than this (default 1 h).
    pub max: Duration,
    /// Without `Cache-Control: max-age` (default 5 min).
    pub default: Duration,
}

impl Default for RefreshBounds {
    fn default() -> Self {
        RefreshBounds {
            min: Duration::from_secs(60),
            max: Duration::from_secs(3600),
            default: Duration::from_secs(300),
        }
    }
}

/// Builds a [`Verifier`]: issuer, audience and algorithms are required.
pub struct VerifierBuilder {
    issuer: Option<String>,
    audience: Option<String>,
    algorithms: Vec<JwsAlgorithm>,
    jwks_uri: Option<String>,
    decryption: Option<(Jwk, Vec<(JweAlgorithm, JweEncryption)>)>,
    leeway: Option<Duration>,
    bounds: RefreshBounds,
    max_staleness: Duration,
    clock: Arc<dyn Clock>,
    external_url: Option<String>,
    dpop_rules: dpop::ProofRules,
    dpop_replay_capacity: usize,
    dpop_nonce_key: Option<zeroize::Zeroizing<Vec<u8>>>,
    /// The first of `issuer`/`jwks_uri` given twice: refused at build.
    repeated: Option<&'static str>,
}

impl Default for VerifierBuilder {
    fn default() -> Self {
        VerifierBuilder {
            issuer: None,
            audience: None,
            algorithms: Vec::new(),
            jwks_uri: None,
            decryption: None,
            leeway: None,
            bounds: RefreshBounds::default(),
            max_staleness: DEFAULT_JWKS_MAX_STALENESS,
            clock: Arc::new(SystemClock),
            external_url: None,
            dpop_rules: dpop::ProofRules::default(),
            dpop_replay_capacity: dpop::DEFAULT_REPLAY_CAPACITY,
            dpop_nonce_key: None,
            repeated: None,
        }
    }
}

impl VerifierBuilder {
    /// The issuer, written exactly as its tokens' `iss` and its metadata's
    /// `issuer` write it (compared as strings: `https://auth.example.com/`
    /// and `https://auth.example.com` are two issuers). Its RFC 8414
    /// metadata names the JWKS URL, unless [`VerifierBuilder::jwks_uri`]
    /// does. [`VerifierBuilder::build`] refuses it unless it is `https://`
    /// (or `http://` on a loopback host), without userinfo, query or
    /// fragment, and in normal form ([`urls::check_issuer`]); given twice,
    /// [`BuildError::Repeated`] (a verifier has one issuer).
    pub fn issuer(mut self, issuer: &str) -> Self {
        if self.issuer.is_some() {
            self.repeated.get_or_insert("issuer");
        }
        self.issuer = Some(issuer.to_owned());
        self
    }
    /// Who you are: tokens must carry this `aud`.
    pub fn audience(mut self, audience: &str) -> Self {
        self.audience = Some(audience.to_owned());
        self
    }
    /// The signature algorithms you accept (those your issuer uses).
    pub fn algorithms(mut self, algs: impl IntoIterator<Item = JwsAlgorithm>) -> Self {
        self.algorithms = algs.into_iter().collect();
        self
    }
    /// The issuer's JWKS URL, instead of reading its metadata; `https://`,
    /// or `http://` on a loopback host ([`urls::check_fetchable`]). One only:
    /// given twice, [`BuildError::Repeated`] — keys are never merged from
    /// several sets.
    pub fn jwks_uri(mut self, uri: &str) -> Self {
        if self.jwks_uri.is_some() {
            self.repeated.get_or_insert("jwks_uri");
        }
        self.jwks_uri = Some(uri.to_owned());
        self
    }
    /// Your private key, to open sealed tokens and step-up assertions
    /// (the issuer's resource entry names its public part); the `alg`/`enc`
    /// pairs your issuer is configured with (default RSA-OAEP-256/A256GCM).
    pub fn decryption_key(mut self, key: Jwk, pairs: &[(JweAlgorithm, JweEncryption)]) -> Self {
        let pairs = if pairs.is_empty() {
            vec![(JweAlgorithm::RSA_OAEP_256, JweEncryption::A256GCM)]
        } else {
            pairs.to_vec()
        };
        self.decryption = Some((key, pairs));
        self
    }
    /// Clock skew tolerated on `exp`, `nbf`, `iat` (default 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = Some(leeway);
        self
    }
    /// How often the JWKS is fetched again (see [`RefreshBounds`]).
    pub fn refresh_bounds(mut self, bounds: RefreshBounds) -> Self {
        self.bounds = bounds;
        self
    }
    /// How long after the last successful JWKS fetch the key set is still
    /// trusted while refreshes fail (default [`DEFAULT_JWKS_MAX_STALENESS`],
    /// 6 h). Beyond it every token is refused ([`AuthError::Unavailable`],
    /// 503) until a refresh succeeds. At least twice
    /// [`RefreshBounds::max`], so that a refresh failing when due has as
    /// long again to succeed; [`VerifierBuilder::build`] refuses less
    /// ([`BuildError::RefreshSchedule`]).
    pub fn jwks_max_staleness(mut self, max: Duration) -> Self {
        self.max_staleness = max;
        self
    }
    /// This resource's external base URL, as its clients reach it
    /// (`https://api.example.com`, or with a path prefix): the `htu` of a
    /// DPoP proof must be it followed by the request's path. Given, DPoP
    /// is accepted (`Authorization: DPoP` with a proof, RFC 9449 §7);
    /// without it, DPoP-bound tokens are refused. Never derived from the
    /// request's `Host` or `X-Forwarded-*`, which the client controls.
    pub fn external_url(mut self, url: &str) -> Self {
        self.external_url = Some(url.trim_end_matches('/').to_owned());
        self
    }
    /// The algorithms and age DPoP proofs may have (default
    /// [`dpop::DEFAULT_ALGORITHMS`], [`dpop::DEFAULT_MAX_AGE`]).
    pub fn dpop_rules(mut self, rules: dpop::ProofRules) -> Self {
        self.dpop_rules = rules;
        self
    }
    /// How many DPoP proofs the in-memory replay cache holds (default
    /// [`dpop::DEFAULT_REPLAY_CAPACITY`]); when full of live proofs, new
    /// ones are refused with a 503 rather than an old one forgotten.
    pub fn dpop_replay_capacity(mut self, capacity: usize) -> Self {
        self.dpop_replay_capacity = capacity;
        self
    }
    /// Require a server nonce (RFC 9449 §9) in every DPoP proof, made and
    /// checked with `key` (at least [`dpop::MIN_NONCE_KEY`] random bytes;
    /// give every instance of the resource the same key). A proof without
    /// a good nonce is answered `401` with `WWW-Authenticate: DPoP
    /// error="use_dpop_nonce"` and a fresh `DPoP-Nonce`, which the client
    /// puts in its next proof; [`layer`] also sends a fresh one with every
    /// answer to a DPoP request. Nonces live two to three minutes, so they
    /// also heal a client's clock drift. Off by default.
    pub fn dpop_nonce_key(mut self, key: &[u8]) -> Self {
        self.dpop_nonce_key = Some(zeroize::Zeroizing::new(key.to_vec()));
        self
    }
    /// Where the time comes from, for `exp`/`nbf`/`iat` and the key set's
    /// age (default: the system clock). For tests, which then never sleep.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Fetches the issuer's metadata (unless the JWKS URL was given) and its
    /// JWKS: a verifier ready to use, or why not. The settings are checked
    /// first ([`BuildError::Url`], [`BuildError::Repeated`],
    /// [`BuildError::RefreshSchedule`]): nothing is fetched for a refused one.
    pub async fn build(self) -> Result<Verifier, BuildError> {
        if let Some(which) = self.repeated {
            return Err(BuildError::Repeated(which));
        }
        let issuer = self.issuer.ok_or(BuildError::Missing("issuer"))?;
        // Checked, then kept as written: the returned form drops a
        // trailing `/`, which would make it another issuer (RFC 8414 §3.3).
        urls::check_issuer(&issuer).map_err(|reason| BuildError::Url {
            which: "issuer",
            reason,
        })?;
        let audience = self.audience.ok_or(BuildError::Missing("audience"))?;
        if self.algorithms.is_empty() {
            return Err(BuildError::Missing("algorithms"));
        }
        if let Some(uri) = &self.jwks_uri {
            urls::check_fetchable(uri).map_err(|reason| BuildError::Url {
                which: "jwks_uri",
                reason,
            })?;
        }
        check_schedule(&self.bounds, self.max_staleness).map_err(BuildError::RefreshSchedule)?;
        let http = keys::http_client(concat!("tessera-verify/", env!("CARGO_PKG_VERSION")))
            .map_err(BuildError::Http)?;
        let fetches = AtomicU64::new(0);
        let jwks_uri = match self.jwks_uri {
            Some(uri) => uri,
            None => keys::discover(&http, &issuer, &fetches).await?,
        };
        let decrypter = match &self.decryption {
            None => None,
            Some((key, pairs)) => Some(
                Decrypter::builder()
                    .key(key, pairs)
                    .and_then(|b| b.build())
                    .map_err(|e| BuildError::Key(e.to_string()))?,
            ),
        };
        let leeway = self
            .leeway
            .map_or(60, |l| u32::try_from(l.as_secs()).unwrap_or(u32::MAX));
        let dpop = match self.external_url {
            None => None,
            Some(base) => {
                let parsed = url::Url::parse(&base).map_err(|e| BuildError::Url {
                    which: "external_url",
                    reason: urls::UrlError::Malformed(e.to_string()),
                })?;
                if parsed.host().is_none() {
                    return Err(BuildError::Url {
                        which: "external_url",
                        reason: urls::UrlError::Malformed("it has no host".into()),
                    });
                }
                if parsed.query().is_some() || parsed.fragment().is_some() {
                    return Err(BuildError::Url {
                        which: "external_url",
                        reason: urls::UrlError::QueryOrFragment,
                    });
                }
                let nonces = self
                    .dpop_nonce_key
                    .as_deref()
                    .map(|k| dpop::Nonces::new(k))
                    .transpose()
                    .map_err(BuildError::DpopNonce)?;
                Some(DpopSide {
                    base,
                    rules: self.dpop_rules,
                    seen: dpop::MemoryReplayCache::new(self.dpop_replay_capacity),
                    nonces,
                })
            }
        };
        // tessera mints one audience per token: a token that also names
        // another service could be replayed there, so it is refused here.
        let validation = |typ: &str| {
            Validation::new()
                .issuer(&issuer)
                .audience(&audience)
                .sole_audience()
                .typ(typ)
                .leeway(leeway)
        };
        let (access, step_up) = (validation(ACCESS_TYP), validation(STEP_UP_TYP));
        let inner = Inner {
            access,
            step_up,
            issuer,
            audience,
            algorithms: self.algorithms,
            jwks_uri,
            decrypter,
            bounds: self.bounds,
            max_staleness: self.max_staleness,
            clock: self.clock,
            http,
            dpop,
            keys: RwLock::new(None),
            fetches,
            failures: AtomicU64::new(0),
            stale_refusals: AtomicU64::new(0),
        };
        let verifier = Verifier {
            inner: Arc::new(inner),
        };
        verifier.refresh().await.map_err(BuildError::Jwks)?;
        Ok(verifier)
    }
}

/// `bounds` and `max_staleness` as [`VerifierBuilder::build`] accepts them.
fn check_schedule(bounds: &RefreshBounds, max_staleness: Duration) -> Result<(), String> {
    let RefreshBounds { min, max, default } = *bounds;
    if min < Duration::from_secs(1) {
        // A JWKS served `no-store` would otherwise be fetched in a loop.
        return Err(format!("RefreshBounds::min ({min:?}) is under one second"));
    }
    if min > max {
        return Err(format!(
            "RefreshBounds::min ({min:?}) is above RefreshBounds::max ({max:?})"
        ));
    }
    if default < min || default > max {
        return Err(format!(
            "RefreshBounds::default ({default:?}) is outside min ({min:?}) and max ({max:?})"
        ));
    }
    if max_staleness < max.saturating_mul(2) {
        return Err(format!(
            "jwks_max_staleness ({max_staleness:?}) is under twice RefreshBounds::max \
             ({max:?}): a refresh that fails when due must have as long again to succeed"
        ));
    }
    Ok(())
}

/// How long to wait after the `failures`-th failed refresh in a row: `min`,
/// doubling with each failure up to `max` — but never past the moment the
/// key set goes stale (`until_stale`), and so every `min` once it is.
fn retry_after(bounds: &RefreshBounds, failures: u32, until_stale: Duration) -> Duration {
    let doubling = 1u32 << failures.saturating_sub(1).min(20);
    bounds
        .min
        .saturating_mul(doubling)
        .min(bounds.max)
        .min(until_stale)
        .max(bounds.min)
}

/// The key set in use, and when it was fetched.
struct KeySet {
    verifier: Arc<tessera_jose::jws::Verifier>,
    /// On the verifier's clock: its age is measured from here.
    fetched_at: i64,
    /// The same moment on the monotonic clock: setting the wall clock back
    /// cannot make the key set younger.
    fetched: Instant,
    /// When the scheduled refresh is due (`Cache-Control` within bounds).
    refresh_due: Instant,
}

struct Inner {
    /// What an access token (`typ: at+jwt`) must be, built once.
    access: Validation,
    /// What a step-up assertion (`typ: step-up+jwt`) must be.
    step_up: Validation,
    issuer: String,
    audience: String,
    algorithms: Vec<JwsAlgorithm>,
    jwks_uri: String,
    decrypter: Option<Decrypter>,
    bounds: RefreshBounds,
    max_staleness: Duration,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    /// With an external URL: how DPoP proofs are checked here.
    dpop: Option<DpopSide>,
    keys: RwLock<Option<KeySet>>,
    fetches: AtomicU64,
    failures: AtomicU64,
    stale_refusals: AtomicU64,
}

/// Verifies tessera tokens for one audience. Cheap to clone (shared).
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .field("jwks_uri", &self.inner.jwks_uri)
            .finish_non_exhaustive()
    }
}

/// A token that is not bound to a DPoP key, or the refusal.
fn unbound<T>(verified: Verified<T>) -> Result<Verified<T>, AuthError> {
    if verified.dpop_jkt.is_some() {
        return Err(AuthError::InvalidToken(
            "the token is bound to a DPoP key: it is accepted only with a proof \
             (Authorization: DPoP, through verify_request)",
        ));
    }
    Ok(verified)
}

/// DPoP at this resource: its base URL, the proof rules, the replay cache.
#[derive(Debug)]
pub(crate) struct DpopSide {
    pub(crate) base: String,
    pub(crate) rules: dpop::ProofRules,
    pub(crate) seen: dpop::MemoryReplayCache,
    /// When proofs must carry a server nonce: how nonces are made.
    pub(crate) nonces: Option<dpop::Nonces>,
}

/// A token that verified: its header's `typ` and its claims.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    /// The registered claims and `T`.
    pub claims: jwt::Claims<T>,
    /// Whether it arrived sealed (JWE).
    pub sealed: bool,
    /// The DPoP key it is bound to (`cnf.jkt`, RFC 9449 §6), if any: such a
    /// token is accepted only with a proof by that key
    /// ([`Verifier::verify_request`]).
    pub dpop_jkt: Option<String>,
}

/// The claims `T` and the token's `cnf` (RFC 7800), which tessera-verify
/// reads whatever `T` is (and takes out of what `T` sees). Written out
/// rather than with `#[serde(flatten)]`, which buffers every claim once
/// more on each request.
struct Bound<T> {
    cnf: Option<Confirmation>,
    rest: T,
}

impl<'de, T: DeserializeOwned> serde::Deserialize<'de> for Bound<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut claims = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let cnf = match claims.remove("cnf") {
            None | Some(serde_json::Value::Null) => None,
            Some(c) => Some(Confirmation::deserialize(c).map_err(D::Error::custom)?),
        };
        let rest = T::deserialize(serde_json::Value::Object(claims)).map_err(D::Error::custom)?;
        Ok(Bound { cnf, rest })
    }
}

/// `cnf`: for DPoP, `jkt`.
#[derive(serde::Deserialize)]
struct Confirmation {
    #[serde(default)]
    jkt: Option<String>,
}

impl Verifier {
    /// Starts a builder.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
    }

    /// The issuer, as configured (and as its tokens' `iss` must be).
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The issuer's JWKS URL in use.
    pub fn jwks_uri(&self) -> &str {
        &self.inner.jwks_uri
    }

    /// How many HTTP requests this verifier has made (metadata and JWKS):
    /// verifying a token never makes one.
    pub fn fetches(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// How many JWKS refreshes failed (each kept the last good key set).
    pub fn refresh_failures(&self) -> u64 {
        self.inner.failures.load(Ordering::Relaxed)
    }

    /// How long ago, on the verifier's clock, the key set in use was
    /// fetched: the time since the last successful refresh.
    pub fn key_set_age(&self) -> Duration {
        let keys = self
            .inner
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        keys.as_ref().map_or(Duration::ZERO, |k| self.age_of(k))
    }

    /// Whether the key set is older than its maximum age
    /// ([`VerifierBuilder::jwks_max_staleness`]): tokens are refused
    /// until a refresh succeeds.
    pub fn key_set_stale(&self) -> bool {
        self.key_set_age() > self.inner.max_staleness
    }

    /// How many tokens were refused because the key set was stale.
    pub fn stale_refusals(&self) -> u64 {
        self.inner.stale_refusals.load(Ordering::Relaxed)
    }

    /// A key set's age: the time since it was fetched on the verifier's
    /// clock (whole seconds), or on the monotonic clock if that is longer —
    /// a wall clock set back (by an operator, NTP or an attacker) does not
    /// keep a key set trusted past its maximum age.
    fn age_of(&self, keys: &KeySet) -> Duration {
        let age = self.inner.clock.now().saturating_sub(keys.fetched_at);
        let wall = Duration::from_secs(u64::try_from(age).unwrap_or(0));
        let monotonic = Duration::from_secs(keys.fetched.elapsed().as_secs());
        wall.max(monotonic)
    }

    /// Fetches the JWKS now and, if it holds usable keys, puts it in use.
    /// Returns how long to use it (`Cache-Control` within bounds). On
    /// failure the key set in use stays (until it is older than its
    /// maximum age), and the failure is counted.
    pub async fn refresh(&self) -> Result<Duration, String> {
        let i = &self.inner;
        match keys::fetch_jwks(&i.http, &i.jwks_uri, &i.algorithms, &i.bounds, &i.fetches).await {
            Ok((verifier, ttl)) => {
                let fresh = KeySet {
                    verifier: Arc::new(verifier),
                    fetched_at: i.clock.now(),
                    fetched: Instant::now(),
                    refresh_due: Instant::now() + ttl,
                };
                *i.keys.write().unwrap_or_else(PoisonError::into_inner) = Some(fresh);
                Ok(ttl)
            }
            Err(e) => {
                i.failures.fetch_add(1, Ordering::Relaxed);
                let age = self.key_set_age();
                if age > i.max_staleness {
                    tracing::error!(jwks_uri = %i.jwks_uri, error = %e, age_secs = age.as_secs(),
                        max_staleness_secs = i.max_staleness.as_secs(),
                        "JWKS refresh failed and the key set is past its maximum age: \
                         every token is refused until a refresh succeeds");
                } else {
                    tracing::warn!(jwks_uri = %i.jwks_uri, error = %e, age_secs = age.as_secs(),
                        "JWKS refresh failed; the last good key set stays in use");
                }
                Err(e)
            }
        }
    }

    /// Refreshes the JWKS on its schedule, for as long as the returned task
    /// runs (abort it to stop): first when the key set fetched by `build`
    /// (or the last refresh) is due by its `Cache-Control`. A failed
    /// refresh is retried after [`RefreshBounds::min`], doubling with each
    /// failure in a row up to [`RefreshBounds::max`], never later than the
    /// moment the key set goes stale, and every `min` once it is.
    pub fn spawn_refresh(&self) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut wait = me.until_refresh_due();
            let mut failures: u32 = 0;
            loop {
                tokio::time::sleep(wait).await;
                wait = match me.refresh().await {
                    Ok(ttl) => {
                        failures = 0;
                        ttl
                    }
                    Err(_) => {
                        failures = failures.saturating_add(1);
                        let until_stale = me.inner.max_staleness.saturating_sub(me.key_set_age());
                        retry_after(&me.inner.bounds, failures, until_stale)
                    }
                };
            }
        })
    }

    fn until_refresh_due(&self) -> Duration {
        let keys = self
            .inner
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        keys.as_ref().map_or(Duration::ZERO, |k| {
            k.refresh_due.saturating_duration_since(Instant::now())
        })
    }

    /// The key set to verify with, unless there is none or it is past its
    /// maximum age (then the refusal is counted).
    fn keys(&self) -> Result<Arc<tessera_jose::jws::Verifier>, AuthError> {
        let keys = self
            .inner
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let keys = keys.as_ref().ok_or(AuthError::Unavailable)?;
        if self.age_of(keys) > self.inner.max_staleness {
            self.inner.stale_refusals.fetch_add(1, Ordering::Relaxed);
            return Err(AuthError::Unavailable);
        }
        Ok(keys.verifier.clone())
    }

    /// Verifies an access token (`typ: at+jwt`): signature with the
    /// issuer's keys under your algorithms, `iss`, `aud`, `exp` (required),
    /// `nbf`, `iat`. A sealed (JWE) token needs the decryption key. A token
    /// bound to a DPoP key (`cnf.jkt`) is refused here: it is accepted only
    /// with a proof of its key, by [`Verifier::verify_request`] (what the
    /// extractor and the layer use).
    pub fn verify<T: DeserializeOwned>(&self, token: &str) -> Result<Verified<T>, AuthError> {
        unbound(self.verify_typed(token, &self.inner.access)?)
    }

    /// Verifies a step-up assertion (`typ: step-up+jwt`, always sealed). One
    /// bound to a DPoP key (its session's) is refused here: see
    /// [`Verifier::verify_step_up_with`].
    pub fn verify_step_up<T: DeserializeOwned>(
        &self,
        token: &str,
    ) -> Result<Verified<T>, AuthError> {
        self.verify_step_up_with(token, None)
    }

    /// Verifies a step-up assertion sent along an access token whose DPoP
    /// key the request proved (`proven`: the access token's
    /// [`Verified::dpop_jkt`] after [`Verifier::verify_request`]): a bound
    /// assertion is accepted only if it is bound to that same key, so that
    /// a copied assertion is worthless without it.
    pub fn verify_step_up_with<T: DeserializeOwned>(
        &self,
        token: &str,
        proven: Option<&str>,
    ) -> Result<Verified<T>, AuthError> {
        if token.bytes().filter(|&b| b == b'.').count() != 4 {
            return Err(AuthError::InvalidToken(
                "a step-up assertion is sealed (JWE)",
            ));
        }
        let verified = self.verify_typed(token, &self.inner.step_up)?;
        match (&verified.dpop_jkt, proven) {
            (None, _) => Ok(verified),
            (Some(bound), Some(p)) if bound == p => Ok(verified),
            (Some(_), _) => Err(AuthError::InvalidToken(
                "the assertion is bound to a DPoP key this request did not prove",
            )),
        }
    }

    /// [`Verifier::verify`] without refusing a bound token: the caller
    /// checks its proof.
    pub(crate) fn verify_any<T: DeserializeOwned>(
        &self,
        token: &str,
    ) -> Result<Verified<T>, AuthError> {
        self.verify_typed(token, &self.inner.access)
    }

    fn verify_typed<T: DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<Verified<T>, AuthError> {
        let i = &self.inner;
        let keys = self.keys()?;
        let sealed = token.bytes().filter(|&b| b == b'.').count() == 4;
        let result = if sealed {
            let decrypter = i.decrypter.as_ref().ok_or(AuthError::InvalidToken(
                "sealed token, and no decryption key",
            ))?;
            jwt::decrypt_and_verify::<Bound<T>>(token, decrypter, &keys, validation, &*i.clock)
                .map(jwt::NestedJwt::into_jwt)
        } else {
            jwt::verify::<Bound<T>>(token, &keys, validation, &*i.clock)
        };
        let c = result.map_err(AuthError::from_jose)?.into_claims();
        let dpop_jkt = match c.custom.cnf {
            None => None,
            // A `cnf` without a key this verifier can check binds the token
            // to something it cannot prove: refused, never ignored.
            Some(Confirmation { jkt: None }) => {
                return Err(AuthError::InvalidToken(
                    "the token is bound to a key this resource cannot check",
                ))
            }
            Some(Confirmation { jkt }) => jkt,
        };
        Ok(Verified {
            claims: jwt::Claims {
                iss: c.iss,
                sub: c.sub,
                aud: c.aud,
                exp: c.exp,
                nbf: c.nbf,
                iat: c.iat,
                jti: c.jti,
                custom: c.custom.rest,
            },
            sealed,
            dpop_jkt,
        })
    }

    /// The DPoP server nonces of this resource, when it requires them
    /// ([`VerifierBuilder::dpop_nonce_key`]): to hand out a fresh one in an
    /// answer of your own.
    pub fn dpop_nonces(&self) -> Option<&dpop::Nonces> {
        self.inner.dpop.as_ref().and_then(|d| d.nonces.as_ref())
    }

    /// The current time, as the verifier sees it.
    pub fn now(&self) -> i64 {
        self.inner.clock.now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(min: u64, max: u64) -> RefreshBounds {
        RefreshBounds {
            min: Duration::from_secs(min),
            max: Duration::from_secs(max),
            default: Duration::from_secs(min),
        }
    }

    #[test]
    fn failed_refreshes_back_off_within_bounds_and_keep_trying_while_stale() {
        let b = bounds(60, 3600);
        let far = Duration::from_secs(6 * 3600);
        let waits: Vec<u64> = (1..=9).map(|n| retry_after(&b, n, far).as_secs()).collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(retry_after(&b, u32::MAX, far), Duration::from_secs(3600));
        // Never sleeping past the moment the set goes stale; every `min`
        // once it is (tokens are being refused: recover quickly).
        assert_eq!(
            retry_after(&b, 7, Duration::from_secs(600)),
            Duration::from_secs(600)
        );
        assert_eq!(retry_after(&b, 7, Duration::ZERO), Duration::from_secs(60));
        assert_eq!(retry_after(&b, 1, Duration::ZERO), Duration::from_secs(60));
    }

    #[test]
    fn the_default_schedule_is_accepted() {
        assert_eq!(
            check_schedule(&RefreshBounds::default(), DEFAULT_JWKS_MAX_STALENESS),
            Ok(())
        );
        assert!(check_schedule(&bounds(1, 2), Duration::from_secs(4)).is_ok());
        assert!(check_schedule(&bounds(1, 2), Duration::from_secs(3)).is_err());
    }
}
