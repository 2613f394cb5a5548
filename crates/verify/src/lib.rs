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
//!   keeps the last good key set (logged and counted), never an empty one.
//! - **Keys travel over TLS**: the issuer, the JWKS URL given and the one
//!   its metadata names must be `https://`, or `http://` to a loopback host
//!   (`localhost`, 127.0.0.0/8, `[::1]`), and carry no `user:password@`;
//!   this is decided on the parsed URL, before any request ([`urls`]).
//! - **Tokens are read from `Authorization: Bearer` only**: one in the query
//!   string or a form body is refused (RFC 6750 §2.2, §2.3 are not
//!   offered), with a 401 and an RFC 6750 `WWW-Authenticate` error, and is
//!   never logged.
//! - Access tokens must be `typ: at+jwt` (RFC 9068), unexpired, for your
//!   audience alone (a token whose `aud` also names another service is
//!   refused: it could be replayed there), from your issuer. With a [`VerifierBuilder::decryption_key`],
//!   sealed tokens (JWE holding our signed JWT) and step-up assertions
//!   (`typ: step-up+jwt`) are accepted too.
#![forbid(unsafe_code)]

mod error;
mod extract;
pub mod keys;
pub mod urls;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

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

/// Bounds on how long a fetched JWKS is used before it is fetched again,
/// whatever the issuer's `Cache-Control` says.
#[derive(Debug, Clone, Copy)]
pub struct RefreshBounds {
    /// Never sooner than this (default 60 s).
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
#[derive(Default)]
pub struct VerifierBuilder {
    issuer: Option<String>,
    audience: Option<String>,
    algorithms: Vec<JwsAlgorithm>,
    jwks_uri: Option<String>,
    decryption: Option<(Jwk, Vec<(JweAlgorithm, JweEncryption)>)>,
    leeway: Option<Duration>,
    bounds: RefreshBounds,
}

impl VerifierBuilder {
    /// The issuer (`iss`), e.g. `https://auth.example.com`. Its RFC 8414
    /// metadata names the JWKS URL, unless [`VerifierBuilder::jwks_uri`] does.
    /// [`VerifierBuilder::build`] refuses it unless it is `https://` (or
    /// `http://` on a loopback host), without userinfo, query or fragment,
    /// and in normal form ([`urls::check_issuer`]).
    pub fn issuer(mut self, issuer: &str) -> Self {
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
    /// or `http://` on a loopback host ([`urls::check_fetchable`]).
    pub fn jwks_uri(mut self, uri: &str) -> Self {
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

    /// Fetches the issuer's metadata (unless the JWKS URL was given) and its
    /// JWKS: a verifier ready to use, or why not. The URLs are checked
    /// first ([`BuildError::Url`]): nothing is fetched from a refused one.
    pub async fn build(self) -> Result<Verifier, BuildError> {
        let issuer = self.issuer.ok_or(BuildError::Missing("issuer"))?;
        let issuer = urls::check_issuer(&issuer).map_err(|reason| BuildError::Url {
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
        let inner = Inner {
            issuer,
            audience,
            algorithms: self.algorithms,
            jwks_uri,
            decrypter,
            leeway,
            bounds: self.bounds,
            http,
            keys: RwLock::new(None),
            fetches,
            failures: AtomicU64::new(0),
        };
        let verifier = Verifier {
            inner: Arc::new(inner),
        };
        verifier.refresh().await.map_err(BuildError::Jwks)?;
        Ok(verifier)
    }
}

struct Inner {
    issuer: String,
    audience: String,
    algorithms: Vec<JwsAlgorithm>,
    jwks_uri: String,
    decrypter: Option<Decrypter>,
    leeway: u32,
    bounds: RefreshBounds,
    http: reqwest::Client,
    keys: RwLock<Option<Arc<tessera_jose::jws::Verifier>>>,
    fetches: AtomicU64,
    failures: AtomicU64,
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

/// A token that verified: its header's `typ` and its claims.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    /// The registered claims and `T`.
    pub claims: jwt::Claims<T>,
    /// Whether it arrived sealed (JWE).
    pub sealed: bool,
}

impl Verifier {
    /// Starts a builder.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
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

    /// Fetches the JWKS now and, if it holds usable keys, puts it in use.
    /// Returns how long to use it (`Cache-Control` within bounds). On
    /// failure the key set in use stays, and the failure is counted.
    pub async fn refresh(&self) -> Result<Duration, String> {
        let i = &self.inner;
        match keys::fetch_jwks(&i.http, &i.jwks_uri, &i.algorithms, &i.bounds, &i.fetches).await {
            Ok((verifier, ttl)) => {
                if let Ok(mut slot) = i.keys.write() {
                    *slot = Some(Arc::new(verifier));
                }
                Ok(ttl)
            }
            Err(e) => {
                i.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(jwks_uri = %i.jwks_uri, error = %e,
                    "JWKS refresh failed; the last good key set stays in use");
                Err(e)
            }
        }
    }

    /// Refreshes the JWKS on its schedule, for as long as the returned task
    /// runs (abort it to stop). A failed refresh is retried after the minimum.
    pub fn spawn_refresh(&self) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut wait = me.inner.bounds.default;
            loop {
                tokio::time::sleep(wait).await;
                wait = me.refresh().await.unwrap_or(me.inner.bounds.min);
            }
        })
    }

    fn keys(&self) -> Result<Arc<tessera_jose::jws::Verifier>, AuthError> {
        self.inner
            .keys
            .read()
            .ok()
            .and_then(|k| k.clone())
            .ok_or(AuthError::Unavailable)
    }

    /// Verifies an access token (`typ: at+jwt`): signature with the
    /// issuer's keys under your algorithms, `iss`, `aud`, `exp` (required),
    /// `nbf`, `iat`. A sealed (JWE) token needs the decryption key.
    pub fn verify<T: DeserializeOwned>(&self, token: &str) -> Result<Verified<T>, AuthError> {
        self.verify_typed(token, ACCESS_TYP)
    }

    /// Verifies a step-up assertion (`typ: step-up+jwt`, always sealed).
    pub fn verify_step_up<T: DeserializeOwned>(
        &self,
        token: &str,
    ) -> Result<Verified<T>, AuthError> {
        if token.bytes().filter(|&b| b == b'.').count() != 4 {
            return Err(AuthError::InvalidToken(
                "a step-up assertion is sealed (JWE)",
            ));
        }
        self.verify_typed(token, STEP_UP_TYP)
    }

    fn verify_typed<T: DeserializeOwned>(
        &self,
        token: &str,
        typ: &str,
    ) -> Result<Verified<T>, AuthError> {
        let i = &self.inner;
        // tessera mints one audience per token: a token that also names
        // another service could be replayed there, so it is refused here.
        let validation = Validation::new()
            .issuer(&i.issuer)
            .audience(&i.audience)
            .sole_audience()
            .typ(typ)
            .leeway(i.leeway);
        let keys = self.keys()?;
        let sealed = token.bytes().filter(|&b| b == b'.').count() == 4;
        let result = if sealed {
            let decrypter = i.decrypter.as_ref().ok_or(AuthError::InvalidToken(
                "sealed token, and no decryption key",
            ))?;
            jwt::decrypt_and_verify::<T>(token, decrypter, &keys, &validation, &SystemClock)
                .map(jwt::NestedJwt::into_jwt)
        } else {
            jwt::verify::<T>(token, &keys, &validation, &SystemClock)
        };
        result
            .map(|v| Verified {
                claims: v.into_claims(),
                sealed,
            })
            .map_err(AuthError::from_jose)
    }

    /// The current time, as the verifier sees it.
    pub fn now(&self) -> i64 {
        SystemClock.now()
    }
}
