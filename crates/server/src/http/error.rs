//! The one place where failures become RFC 6749 §5.2 responses.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::store::StoreError;

/// An RFC 6749 §5.2 error.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    description: String,
    /// `WWW-Authenticate` of a 401 or 403, when not the default (`Basic`).
    challenge: Option<HeaderValue>,
    /// A fresh `DPoP-Nonce` (RFC 9449 §8), with `use_dpop_nonce`.
    /// (Boxed: every `Result` of the handlers carries an `ApiError`.)
    dpop_nonce: Option<Box<HeaderValue>>,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        description: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            code,
            description: description.into(),
            challenge: None,
            dpop_nonce: None,
        }
    }
    /// Replaces the description.
    pub(crate) fn describe(&mut self, description: String) {
        self.description = description;
    }
    /// With this `DPoP-Nonce` header (RFC 9449 §8).
    pub(crate) fn dpop_nonce(mut self, value: HeaderValue) -> Self {
        self.dpop_nonce = Some(Box::new(value));
        self
    }
    /// With this `WWW-Authenticate` challenge (RFC 6750 §3 for bearer tokens).
    pub(crate) fn challenge(mut self, value: HeaderValue) -> Self {
        self.challenge = Some(value);
        self
    }

    pub(crate) fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }
    pub(crate) fn invalid_client() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        )
    }
    pub(crate) fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }
    pub(crate) fn unauthorized_client(grant: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            format!("this client may not use {grant}"),
        )
    }
    /// 503 with `Retry-After`: too much work queued (secret checks).
    pub(crate) fn busy() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the service is busy; retry shortly",
        )
    }
    /// The client asked beyond its registration: RFC 8707 `invalid_target`
    /// or RFC 6749 `invalid_scope`.
    pub(crate) fn access(e: crate::policy::AccessError) -> Self {
        crate::metrics::ACCESS_REFUSED.inc();
        let code = match e {
            crate::policy::AccessError::Target(_) => "invalid_target",
            crate::policy::AccessError::Scope(_) => "invalid_scope",
        };
        Self::new(StatusCode::BAD_REQUEST, code, e.to_string())
    }
    pub(crate) fn server(e: impl Failure) -> Self {
        if e.transient() {
            tracing::warn!(error = %e, "request failed: the store is unavailable");
            return Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the service cannot reach its store; retry shortly",
            );
        }
        tracing::error!(error = %e, "request failed inside the service");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the service failed; see its log",
        )
    }
}

/// A failure inside the service, and whether it may pass by itself.
pub(crate) trait Failure: std::fmt::Display {
    /// Whether a retry may succeed: the database is unreachable, locked,
    /// out of space, or a concurrent writer won (a 503 with `Retry-After`),
    /// as opposed to a fault in the service or its data (a 500).
    fn transient(&self) -> bool {
        false
    }
}

impl Failure for StoreError {
    fn transient(&self) -> bool {
        !matches!(
            self,
            StoreError::Corrupt(_) | StoreError::ClientGone | StoreError::AuditRefused(_)
        )
    }
}
impl Failure for crate::tokens::MintError {}
impl Failure for crate::crypto::OpenFailed {}
impl Failure for crate::keys::KeyError {}
impl Failure for tessera_jose::Error {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = crate::api::ErrorResponse {
            error: self.code.to_owned(),
            error_description: self.description,
        };
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Some(nonce) = self.dpop_nonce {
            headers.insert(super::dpop::NONCE_HEADER, *nonce);
        }
        if let Some(challenge) = self.challenge {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        } else if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tessera\""),
            );
        }
        response
    }
}

/// An RFC 6749 §5.2-shaped error response.
pub fn error(status: StatusCode, code: &'static str, description: &str) -> Response {
    ApiError::new(status, code, description).into_response()
}
