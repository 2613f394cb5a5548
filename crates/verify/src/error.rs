//! Errors, and their RFC 6750 answers.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_jose::error::{ClaimsError, JwsError};

/// Why a [`crate::Verifier`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A required setting was not given.
    #[error("tessera-verify: {0} is required")]
    Missing(&'static str),
    /// The HTTP client could not be built.
    #[error("tessera-verify: HTTP client: {0}")]
    Http(String),
    /// The issuer's metadata could not be read, or names another issuer
    /// (not identical to the one configured: RFC 8414 §3.3).
    #[error("tessera-verify: issuer metadata: {0}")]
    Metadata(String),
    /// The JWKS could not be fetched, or holds no usable key.
    #[error("tessera-verify: JWKS: {0}")]
    Jwks(String),
    /// The refresh schedule makes no sense: [`crate::RefreshBounds`] out of
    /// order or under a second, or a
    /// [`crate::VerifierBuilder::jwks_max_staleness`] under twice the
    /// longest refresh interval.
    #[error("tessera-verify: refresh schedule: {0}")]
    RefreshSchedule(String),
    /// `"issuer"` or `"jwks_uri"` was given twice: a verifier is bound to
    /// one issuer and its one key set, never several.
    #[error("tessera-verify: {0} given twice: a verifier is bound to one issuer and its one JWKS")]
    Repeated(&'static str),
    /// The decryption key does not fit.
    #[error("tessera-verify: decryption key: {0}")]
    Key(String),
    /// The DPoP nonce key is too short
    /// ([`crate::VerifierBuilder::dpop_nonce_key`]).
    #[error("tessera-verify: dpop_nonce_key: {0}")]
    DpopNonce(String),
    /// The issuer, the JWKS URL given, or the one the issuer's metadata
    /// names is not one keys may come from (see [`crate::urls`]); refused
    /// before any request is made to it.
    #[error("tessera-verify: {which} {reason}")]
    Url {
        /// `"issuer"`, `"jwks_uri"`, `"jwks_uri of the issuer's metadata"`
        /// or `"external_url"`.
        which: &'static str,
        /// Why.
        reason: crate::urls::UrlError,
    },
}

/// Why a request was refused; each maps to an RFC 6750 answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header (RFC 6750 §3.1: no error code).
    #[error("no bearer token")]
    Missing,
    /// The request is malformed: a token in the query string or a form body,
    /// or a malformed `Authorization` header.
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// More than one `Authorization` header, or several credentials in one
    /// (`Bearer a, Bearer b`): refused with a 400 `invalid_request`
    /// (RFC 6750 §3.1), since a proxy in front may have judged another of
    /// them than the one this would pick.
    #[error("{0}")]
    AmbiguousCredentials(&'static str),
    /// The token is expired, revoked, malformed, or otherwise invalid.
    #[error("{0}")]
    InvalidToken(&'static str),
    /// The token lacks a role or scope the resource requires.
    #[error("insufficient scope: {0}")]
    InsufficientScope(String),
    /// No key set may be used: none yet (not after `build`), or the last
    /// successful JWKS fetch is older than
    /// [`crate::VerifierBuilder::jwks_max_staleness`]. A 503: the token may
    /// be fine, the verifier cannot tell.
    #[error("verification keys unavailable")]
    Unavailable,
    /// DPoP (RFC 9449 §7): the proof is missing or refused, the token is
    /// bound to another key, or a bound token came as `Bearer` (no
    /// downgrade). Answered 401 with a `DPoP` challenge naming the
    /// accepted algorithms (503 when replay cannot be checked).
    #[error("{description}")]
    Dpop {
        /// `invalid_dpop_proof`, `use_dpop_nonce` (a fresh nonce is in
        /// `nonce`), `invalid_token` (a bound token sent as `Bearer`, or an
        /// unbound one as `DPoP`) or `temporarily_unavailable`.
        error: &'static str,
        /// What failed (safe to send back).
        description: String,
        /// The algorithms accepted, space-separated (the challenge's `algs`).
        algs: String,
        /// A fresh server nonce, sent back as `DPoP-Nonce` (with
        /// `use_dpop_nonce`, when this resource requires nonces).
        nonce: Option<String>,
    },
}

impl AuthError {
    /// A token the verifier refused: never says more than the class of
    /// problem (the library's errors carry no secret either).
    pub(crate) fn from_jose(e: tessera_jose::Error) -> AuthError {
        use tessera_jose::Error as E;
        AuthError::InvalidToken(match e {
            E::Claims(ClaimsError::Expired) => "the token expired",
            E::Claims(ClaimsError::NotYetValid | ClaimsError::IssuedInFuture) => {
                "the token is not valid yet"
            }
            E::Claims(ClaimsError::WrongAudience) => "the token is for another audience",
            E::Claims(ClaimsError::WrongIssuer) => "the token is from another issuer",
            E::Claims(_) => "the token's claims are invalid",
            E::Jws(JwsError::UnknownKid) => "the token names no key of the issuer",
            E::Jws(JwsError::AlgorithmNotAllowed(_) | JwsError::UnsupportedAlgorithm) => {
                "the token's algorithm is not accepted"
            }
            E::Jws(JwsError::UnexpectedType) => "the token is not of the expected type",
            E::Jws(JwsError::SignatureInvalid) => "the token's signature is invalid",
            E::Jwe(_) => "the sealed token does not open",
            _ => "the token is malformed",
        })
    }

    /// The HTTP status and the RFC 6750 `error` code, if any.
    pub fn status_and_code(&self) -> (StatusCode, Option<&'static str>) {
        match self {
            AuthError::Missing => (StatusCode::UNAUTHORIZED, None),
            // A token in the URL or body is refused as unauthenticated: the
            // client must present it properly (RFC 6750 §3.1, invalid_request).
            AuthError::InvalidRequest(_) => (StatusCode::UNAUTHORIZED, Some("invalid_request")),
            AuthError::AmbiguousCredentials(_) => {
                (StatusCode::BAD_REQUEST, Some("invalid_request"))
            }
            AuthError::InvalidToken(_) => (StatusCode::UNAUTHORIZED, Some("invalid_token")),
            AuthError::InsufficientScope(_) => (StatusCode::FORBIDDEN, Some("insufficient_scope")),
            AuthError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, None),
            AuthError::Dpop { error, .. } if *error == "temporarily_unavailable" => {
                (StatusCode::SERVICE_UNAVAILABLE, Some(*error))
            }
            AuthError::Dpop { error, .. } => (StatusCode::UNAUTHORIZED, Some(*error)),
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let description = self.to_string().replace('"', "'");
        let challenge = match (&self, code) {
            (AuthError::Dpop { algs, .. }, Some(code)) => format!(
                "DPoP realm=\"tessera\", error=\"{code}\", error_description=\"{description}\", \
                 algs=\"{algs}\""
            ),
            (_, None) => "Bearer realm=\"tessera\"".to_owned(),
            (_, Some(code)) => format!(
                "Bearer realm=\"tessera\", error=\"{code}\", error_description=\"{description}\""
            ),
        };
        let body = serde_json::json!({
            "error": code.unwrap_or("unauthorized"),
            "error_description": description,
        });
        let mut response = (status, axum::Json(body)).into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        if let AuthError::Dpop {
            nonce: Some(nonce), ..
        } = &self
        {
            if let Ok(value) = HeaderValue::from_str(nonce) {
                response.headers_mut().insert(crate::DPOP_NONCE, value);
            }
        }
        response
    }
}
