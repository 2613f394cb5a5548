//! The HTTP surface. Every answer is JSON; errors use the RFC 6749 §5.2
//! shape (`{"error": …, "error_description": …}`) with a 4xx status (5xx
//! only for the service's own failures, never for bad input). Request
//! bodies are bounded; tokens and secrets are never logged.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use tessera_jose::jwt::{Clock, SystemClock};

use crate::config::{Config, Resource, TokenFormat};
use crate::keys::KeyRing;
use crate::sealing::SealingKeys;
use crate::store::{ClientRecord, RefreshOutcome, SessionRecord, Store, StoreError};
use crate::tokens::Minted;
use crate::{clients, policy, tokens};

/// RFC 8693 token exchange.
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 §3: an OAuth access token.
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 8693 §3: a JWT.
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Debug)]
pub struct AppState<S> {
    /// The signing keys.
    pub keys: KeyRing,
    /// The store.
    pub store: S,
    /// The configuration.
    pub config: Config,
    /// The public keys of sealed (`jwe`, `nested`) resources.
    pub sealing: SealingKeys,
    /// The client for JWKS fetches (sealed resources' keys).
    pub http: reqwest::Client,
}

/// Hands out a minted token, recording it first if it is sealed (tessera
/// cannot read a sealed token back; introspection finds it by hash).
async fn issue<S: Store>(
    state: &AppState<S>,
    minted: Minted,
    now: i64,
) -> Result<(String, i64), ApiError> {
    if let Some(record) = &minted.sealed {
        state
            .store
            .record_sealed(record, now)
            .await
            .map_err(ApiError::server)?;
    }
    Ok((minted.token, minted.expires_in))
}

/// An RFC 6749 §5.2 error.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    description: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            description: description.into(),
        }
    }
    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }
    fn invalid_client() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        )
    }
    fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }
    fn unauthorized_client(grant: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            format!("this client may not use {grant}"),
        )
    }
    fn server(e: impl Failure) -> Self {
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
trait Failure: std::fmt::Display {
    /// Whether a retry may succeed: the database is unreachable, locked,
    /// out of space, or a concurrent writer won (a 503 with `Retry-After`),
    /// as opposed to a fault in the service or its data (a 500).
    fn transient(&self) -> bool {
        false
    }
}

impl Failure for StoreError {
    fn transient(&self) -> bool {
        !matches!(self, StoreError::Corrupt(_) | StoreError::ClientGone)
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
        if self.status == StatusCode::UNAUTHORIZED {
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

/// The routes.
pub fn router<S: Store + Clone>(state: Arc<AppState<S>>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/.well-known/jwks.json", get(jwks::<S>))
        .route("/v1/sessions", post(create_session::<S>))
        .route("/v1/sessions/{id}", delete(delete_session::<S>))
        .route("/v1/sessions/{id}/step-up", post(step_up::<S>))
        .route("/oauth2/token", post(token::<S>))
        .route("/metrics", get(metrics))
        .route("/oauth2/introspect", post(introspect::<S>))
        .route("/oauth2/revoke", post(revoke::<S>))
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::<S>),
        )
        .route(
            "/.well-known/openid-configuration",
            get(openid_configuration::<S>),
        )
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

#[utoipa::path(get, path = "/healthz", responses((status = 200, body = crate::api::Health)))]
pub(crate) async fn healthz() -> Response {
    Json(crate::api::Health { status: "ok" }).into_response()
}

/// The published keys (next, current, retiring). Verifiers may cache this
/// for exactly the period by which a next key precedes its first signature.
#[utoipa::path(get, path = "/.well-known/jwks.json", responses((status = 200, description = "The JWK Set: next, current and retiring keys", content_type = "application/jwk-set+json", body = Object)))]
pub(crate) async fn jwks<S: Store>(State(state): State<Arc<AppState<S>>>) -> Response {
    let snap = state.keys.snapshot();
    let max_age = state.keys.rules().jwks_max_age;
    let mut response = (
        [(header::CONTENT_TYPE, "application/jwk-set+json")],
        snap.jwks.clone(),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}

#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub(crate) async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
        .into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request",
        "method not allowed on this endpoint",
    )
}

/// RFC 6749 §2.3.1 `%`-decoding of a Basic credential part.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    Some(bytes)
}

/// `Authorization: Basic` credentials, if present and well-formed.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ApiError::invalid_client())?;
    let Some(encoded) = value
        .get(..6)
        .filter(|p| p.eq_ignore_ascii_case("basic "))
        .and_then(|_| value.get(6..))
    else {
        return Err(ApiError::invalid_client());
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| ApiError::invalid_client())?;
    let text = String::from_utf8(decoded).map_err(|_| ApiError::invalid_client())?;
    let (id, secret) = text.split_once(':').ok_or_else(ApiError::invalid_client)?;
    Ok(Some((
        percent_decode(id).ok_or_else(ApiError::invalid_client)?,
        percent_decode(secret).ok_or_else(ApiError::invalid_client)?,
    )))
}

/// Authenticates the client (`client_secret_basic`, or `client_secret_post`
/// when `form` carries `client_id` and `client_secret`); one method only.
async fn authenticate<S: Store>(
    state: &AppState<S>,
    headers: &HeaderMap,
    form: Option<&Map<String, Value>>,
) -> Result<ClientRecord, ApiError> {
    let basic = basic_credentials(headers)?;
    if let Some(kind) = form.and_then(|f| f.get("client_assertion_type")) {
        if basic.is_some() || form.is_some_and(|f| f.contains_key("client_secret")) {
            return Err(ApiError::invalid_request(
                "use one client authentication method, not two",
            ));
        }
        if kind.as_str() != Some(JWT_BEARER) {
            return Err(ApiError::invalid_client());
        }
        return authenticate_assertion(state, form.unwrap_or(&Map::new())).await;
    }
    let posted = form.and_then(|f| {
        let id = f.get("client_id")?.as_str()?;
        let secret = f.get("client_secret")?.as_str()?;
        Some((id.to_owned(), secret.to_owned()))
    });
    let (id, secret) = match (basic, posted) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_request(
                "use one client authentication method, not two",
            ))
        }
        (Some(c), None) | (None, Some(c)) => c,
        (None, None) => return Err(ApiError::invalid_client()),
    };
    let secret = zeroize::Zeroizing::new(secret);
    let client = clients::authenticate(&state.store, &id, &secret)
        .await
        .map_err(ApiError::server)?;
    client.ok_or_else(|| {
        crate::metrics::CLIENT_AUTH_FAILURES.inc();
        ApiError::invalid_client()
    })
}

/// RFC 7523 §2.2: the client assertion type of `private_key_jwt`.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Longest accepted assertion lifetime: the `jti` is remembered that long.
const MAX_ASSERTION_LIFETIME: i64 = 600;

/// `private_key_jwt` (RFC 7523 §3): the assertion in `client_assertion`,
/// signed by a key of the client's registered JWKS with that key's
/// algorithm; `iss` and `sub` the client (named by `client_id`, which
/// must accompany it), `aud` the issuer or the endpoint, `exp` within ten
/// minutes, and a `jti` never seen before.
async fn authenticate_assertion<S: Store>(
    state: &AppState<S>,
    form: &Map<String, Value>,
) -> Result<ClientRecord, ApiError> {
    let fail = || {
        crate::metrics::CLIENT_AUTH_FAILURES.inc();
        ApiError::invalid_client()
    };
    let assertion = form
        .get("client_assertion")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid_request("client_assertion is required"))?;
    let id = form
        .get("client_id")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid_request("client_id must accompany client_assertion"))?;
    let client = state
        .store
        .client(id)
        .await
        .map_err(ApiError::server)?
        .ok_or_else(fail)?;
    let jwks = client.jwks.as_deref().ok_or_else(fail)?;
    let set = clients::check_client_jwks(jwks).map_err(|_| fail())?;
    let all: Vec<tessera_jose::jwa::JwsAlgorithm> =
        tessera_jose::jwa::JwsAlgorithm::all().collect();
    let verifier = tessera_jose::jws::Verifier::builder()
        .jwk_set(&set, &all)
        .and_then(|b| b.build())
        .map_err(|_| fail())?;
    let issuer = &state.config.issuer;
    let validation = tessera_jose::jwt::Validation::new()
        .issuer(id)
        .audience(issuer)
        .audience(&format!("{issuer}/oauth2/token"))
        .audience(&format!("{issuer}/oauth2/introspect"))
        .audience(&format!("{issuer}/oauth2/revoke"));
    let now = SystemClock.now();
    let verified =
        tessera_jose::jwt::verify::<Value>(assertion, &verifier, &validation, &SystemClock)
            .map_err(|_| fail())?;
    let claims = verified.claims();
    let exp = claims.exp.ok_or_else(fail)?;
    let jti = claims
        .jti
        .as_deref()
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(fail)?;
    if claims.sub.as_deref() != Some(id) || exp - now > MAX_ASSERTION_LIFETIME {
        return Err(fail());
    }
    let fresh = state
        .store
        .use_assertion(id, jti, exp, now)
        .await
        .map_err(ApiError::server)?;
    if !fresh {
        tracing::warn!(client = %id, "client assertion replayed");
        return Err(fail());
    }
    Ok(client)
}

fn require_content_type(headers: &HeaderMap, expected: &str) -> Result<(), ApiError> {
    let ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(expected));
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            format!("the body must be {expected}"),
        ))
    }
}

/// The body, or an RFC 6749-shaped error (413 when over [`MAX_BODY`]).
fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "invalid_request",
                format!("the body is larger than {MAX_BODY} bytes"),
            )
        } else {
            ApiError::invalid_request("the body could not be read")
        }
    })
}

/// The common start of the form-encoded OAuth endpoints: a bounded
/// `application/x-www-form-urlencoded` body with each parameter once, and
/// an authenticated client.
async fn form_request<S: Store>(
    state: &AppState<S>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Map<String, Value>, ClientRecord), ApiError> {
    let body = body_bytes(body)?;
    require_content_type(headers, "application/x-www-form-urlencoded")?;
    let form = parse_form(&body)?;
    let client = authenticate(state, headers, Some(&form)).await?;
    Ok((form, client))
}

fn required_param<'a>(form: &'a Map<String, Value>, name: &str) -> Result<&'a str, ApiError> {
    form.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid_request(format!("{name} is required")))
}

/// An `application/x-www-form-urlencoded` body, each parameter at most once
/// (RFC 6749 §3.2); a parameter without a value is treated as omitted
/// (§3.1), so `client_id=` is no client id.
fn parse_form(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    for (k, v) in form_urlencoded::parse(body) {
        if v.is_empty() {
            continue;
        }
        if out
            .insert(k.clone().into_owned(), Value::String(v.into_owned()))
            .is_some()
        {
            return Err(ApiError::invalid_request(format!(
                "parameter {k:?} is given more than once"
            )));
        }
    }
    Ok(out)
}

fn no_store(value: Value) -> Response {
    let mut response = Json(value).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// A JSON request of a client with the `sessions` grant: authenticated
/// first, then the body (bounded, strict JSON, no duplicate members) as `T`.
async fn json_request<S: Store, T: serde::de::DeserializeOwned>(
    state: &AppState<S>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(T, ClientRecord), ApiError> {
    let body = body_bytes(body)?;
    let client = authenticate(state, headers, None).await?;
    if !client.grants.iter().any(|g| g == "sessions") {
        return Err(ApiError::unauthorized_client("sessions"));
    }
    require_content_type(headers, "application/json")?;
    let limits = tessera_jose::json::Limits::default();
    let body = tessera_jose::json::parse_object(&body, &limits, "request body")
        .map_err(|e| ApiError::invalid_request(e.to_string()))?;
    let request = serde_json::from_value(Value::Object(body))
        .map_err(|e| ApiError::invalid_request(format!("request body: {e}")))?;
    Ok((request, client))
}

/// `POST /v1/sessions`: a trusted client mints a session for a user it has
/// authenticated. Body `{"sub", "org", "roles", "amr", "audience", "claims"}`;
/// answer `{"session_id", "access_token", "session_token", "refresh_token",
/// "token_type": "Bearer", "expires_in"}`.
#[utoipa::path(post, path = "/v1/sessions", request_body(content = crate::api::SessionRequest, content_type = "application/json"), security(("client_secret_basic" = [])), responses((status = 200, body = crate::api::SessionResponse), (status = 400, body = crate::api::ErrorResponse), (status = 401, body = crate::api::ErrorResponse), (status = 413, body = crate::api::ErrorResponse), (status = 415, body = crate::api::ErrorResponse), (status = 503, description = "The store is unavailable (retry after `Retry-After` seconds)", body = crate::api::ErrorResponse)))]
pub(crate) async fn create_session<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (request, client): (crate::api::SessionRequest, _) =
        json_request(&state, &headers, body).await?;
    let crate::api::SessionRequest {
        sub,
        org,
        roles,
        amr,
        audience,
        claims,
    } = request;
    for (name, value) in [("sub", &sub), ("org", &org), ("audience", &audience)] {
        if value.is_empty() || value.len() > 1024 {
            return Err(ApiError::invalid_request(format!(
                "{name} must be a non-empty string of at most 1024 bytes"
            )));
        }
    }
    for (name, list) in [("roles", &roles), ("amr", &amr)] {
        if list.iter().any(|v| v.is_empty() || v.len() > 256) || list.len() > 64 {
            return Err(ApiError::invalid_request(format!(
                "{name} must be at most 64 non-empty strings of at most 256 bytes"
            )));
        }
    }
    let resource = state.config.resource(&audience);
    let sub_value = Value::from(sub.as_str());
    let org_value = Value::from(org.as_str());
    let roles_value = Value::from(roles.clone());
    policy::check(
        &resource,
        &claims,
        &[
            ("sub", &sub_value),
            ("org", &org_value),
            ("roles", &roles_value),
        ],
    )
    .map_err(|e| ApiError::invalid_request(e.to_string()))?;

    let now = SystemClock.now();
    let id = crate::crypto::random_token(16)
        .map_err(ApiError::server)?
        .to_string();
    let session = SessionRecord {
        id: format!("ses_{id}"),
        client_id: client.id.clone(),
        sub,
        org,
        roles,
        amr,
        audience,
        claims,
        created_at: now,
        expires_at: now.saturating_add(crate::config::seconds(state.config.tokens.session_ttl)),
        revoked_at: None,
    };
    let (refresh, record) = tokens::new_refresh(&state.config, now).map_err(ApiError::server)?;
    let keys = state.keys.snapshot();
    let access = tokens::access_token(&keys, &state.config, &state.sealing, &session, now)
        .map_err(ApiError::server)?;
    let session_token =
        tokens::session_token(&keys, &state.config, &session, now).map_err(ApiError::server)?;
    state
        .store
        // One family per session: the family is named after it.
        .create_session(
            &session,
            &record.record(&session.id, &session.id, &client.id),
        )
        .await
        .map_err(|e| match e {
            // Deleted since its record was read: as if it had never been.
            StoreError::ClientGone => {
                crate::metrics::CLIENT_AUTH_FAILURES.inc();
                ApiError::invalid_client()
            }
            e => ApiError::server(e),
        })?;
    let (access, expires_in) = issue(&state, access, now).await?;
    crate::metrics::SESSIONS_CREATED.inc();
    crate::metrics::ACCESS_TOKENS.inc();
    tracing::info!(sid = %session.id, client = %client.id, "session created");
    Ok(no_store(json!(crate::api::SessionResponse {
        session_id: session.id,
        access_token: access,
        session_token,
        refresh_token: refresh.to_string(),
        token_type: "Bearer",
        expires_in,
    })))
}

/// `DELETE /v1/sessions/{id}`: the client that minted it ends a session;
/// its refresh tokens die with it.
#[utoipa::path(delete, path = "/v1/sessions/{id}", params(("id" = String, Path, description = "The session id")), security(("client_secret_basic" = [])), responses((status = 204, description = "Revoked"), (status = 401, body = crate::api::ErrorResponse), (status = 404, body = crate::api::ErrorResponse), (status = 503, description = "The store is unavailable (retry after `Retry-After` seconds)", body = crate::api::ErrorResponse)))]
pub(crate) async fn delete_session<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let client = authenticate(&state, &headers, None).await?;
    let found = state
        .store
        .revoke_session(&id, &client.id, SystemClock.now())
        .await
        .map_err(ApiError::server)?;
    if !found {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request",
            "no such session for this client",
        ));
    }
    tracing::info!(sid = %id, client = %client.id, "session revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /oauth2/token` (RFC 6749 §4.4 `client_credentials`, §6
/// `refresh_token` with rotation and reuse detection).
#[utoipa::path(post, path = "/oauth2/token", request_body(content = crate::api::TokenRequest, content_type = "application/x-www-form-urlencoded"), responses((status = 200, body = crate::api::TokenResponse), (status = 400, body = crate::api::ErrorResponse), (status = 401, body = crate::api::ErrorResponse), (status = 413, body = crate::api::ErrorResponse), (status = 415, body = crate::api::ErrorResponse), (status = 503, description = "The store is unavailable (retry after `Retry-After` seconds)", body = crate::api::ErrorResponse)))]
pub(crate) async fn token<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (form, client) = form_request(&state, &headers, body).await?;
    let grant = required_param(&form, "grant_type")?;
    let now = SystemClock.now();
    match grant {
        "client_credentials" => {
            if !client.grants.iter().any(|g| g == "client_credentials") {
                return Err(ApiError::unauthorized_client("client_credentials"));
            }
            let audience = form
                .get("audience")
                .or_else(|| form.get("resource"))
                .and_then(Value::as_str)
                .unwrap_or(&state.config.issuer)
                .to_owned();
            let scope = form.get("scope").and_then(Value::as_str);
            crate::metrics::ACCESS_TOKENS.inc();
            let keys = state.keys.snapshot();
            let minted = tokens::client_token(
                &keys,
                &state.config,
                &state.sealing,
                &client,
                &audience,
                scope,
                now,
            )
            .map_err(ApiError::server)?;
            let (access, expires_in) = issue(&state, minted, now).await?;
            Ok(no_store(json!(crate::api::TokenResponse {
                access_token: access,
                issued_token_type: None,
                token_type: "Bearer",
                expires_in,
                refresh_token: None,
            })))
        }
        "refresh_token" => {
            // Refresh tokens come from sessions; a client refreshes its own.
            if !client
                .grants
                .iter()
                .any(|g| g == "sessions" || g == "refresh_token")
            {
                return Err(ApiError::unauthorized_client("refresh_token"));
            }
            let presented = required_param(&form, "refresh_token")?;
            let (next, stored) =
                tokens::new_refresh(&state.config, now).map_err(ApiError::server)?;
            let outcome = state
                .store
                .rotate_refresh(&tokens::refresh_hash(presented), &client.id, &stored, now)
                .await
                .map_err(ApiError::server)?;
            match outcome {
                RefreshOutcome::Rotated(session) => {
                    crate::metrics::ACCESS_TOKENS.inc();
                    let keys = state.keys.snapshot();
                    let minted =
                        tokens::access_token(&keys, &state.config, &state.sealing, &session, now)
                            .map_err(ApiError::server)?;
                    let (access, expires_in) = issue(&state, minted, now).await?;
                    Ok(no_store(json!(crate::api::TokenResponse {
                        access_token: access,
                        issued_token_type: None,
                        token_type: "Bearer",
                        expires_in,
                        refresh_token: Some(next.to_string()),
                    })))
                }
                RefreshOutcome::Reused {
                    family_id,
                    session_id,
                } => {
                    tracing::warn!(
                        family = %family_id, sid = %session_id, client = %client.id,
                        "refresh token reused: family and session revoked"
                    );
                    crate::metrics::REFRESH_REUSE.inc();
                    Err(ApiError::invalid_grant("refresh token already used"))
                }
                RefreshOutcome::Expired => {
                    Err(ApiError::invalid_grant("refresh token expired or revoked"))
                }
                RefreshOutcome::Unknown => Err(ApiError::invalid_grant("unknown refresh token")),
            }
        }
        TOKEN_EXCHANGE => token_exchange(&state, &form, &client, now).await,
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials, refresh_token or \
             urn:ietf:params:oauth:grant-type:token-exchange",
        )),
    }
}

/// A session that is alive now and, if `client` is given, that client's.
async fn live_session<S: Store>(
    state: &AppState<S>,
    id: &str,
    client: Option<&str>,
    now: i64,
) -> Result<SessionRecord, ApiError> {
    let session = state.store.session(id).await.map_err(ApiError::server)?;
    let session = session
        .filter(|s| client.is_none_or(|c| s.client_id == c))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request",
                "no such session for this client",
            )
        })?;
    if session.revoked_at.is_some() || session.expires_at <= now {
        return Err(ApiError::invalid_grant("the session has ended"));
    }
    Ok(session)
}

/// Checks a step-up's input for `resource`: a `jwe` resource (a partner
/// gets federation tokens instead), bounded `amr`/`acr`, and claims the
/// resource declared (personal data is allowed: the assertion is sealed).
fn step_up_input(
    resource: &Resource,
    amr: Vec<String>,
    acr: String,
    claims: Map<String, Value>,
) -> Result<tokens::StepUp, ApiError> {
    match resource.format {
        TokenFormat::Jwe => {}
        TokenFormat::Jws => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_target",
                format!(
                    "{:?} is a jws resource: step-up assertions are sealed, so the resource \
                     must be configured with format = \"jwe\"",
                    resource.audience
                ),
            ))
        }
        TokenFormat::Nested => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_target",
                format!(
                    "{:?} is a partner (nested): partners receive federation tokens through \
                     token exchange",
                    resource.audience
                ),
            ))
        }
    }
    if amr.is_empty() || amr.len() > 64 || amr.iter().any(|v| v.is_empty() || v.len() > 256) {
        return Err(ApiError::invalid_request(
            "amr must be 1 to 64 non-empty strings of at most 256 bytes",
        ));
    }
    if acr.is_empty() || acr.len() > 256 {
        return Err(ApiError::invalid_request(
            "acr must be a non-empty string of at most 256 bytes",
        ));
    }
    policy::check(resource, &claims, &[]).map_err(|e| ApiError::invalid_request(e.to_string()))?;
    Ok(tokens::StepUp { amr, acr, claims })
}

/// `POST /v1/sessions/{id}/step-up`: the session's client reports a fresh
/// strong authentication; the answer is a short-lived assertion sealed to a
/// `jwe` resource, carrying `sub, sid, amr, acr, auth_time` and the claims.
#[utoipa::path(post, path = "/v1/sessions/{id}/step-up", params(("id" = String, Path, description = "The session id")), request_body(content = crate::api::StepUpRequest, content_type = "application/json"), security(("client_secret_basic" = [])), responses((status = 200, body = crate::api::StepUpResponse), (status = 400, body = crate::api::ErrorResponse), (status = 401, body = crate::api::ErrorResponse), (status = 404, body = crate::api::ErrorResponse), (status = 413, body = crate::api::ErrorResponse), (status = 415, body = crate::api::ErrorResponse), (status = 503, description = "The store is unavailable (retry after `Retry-After` seconds)", body = crate::api::ErrorResponse)))]
pub(crate) async fn step_up<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (request, client): (crate::api::StepUpRequest, _) =
        json_request(&state, &headers, body).await?;
    let now = SystemClock.now();
    let session = live_session(&state, &id, Some(&client.id), now).await?;
    let resource = state.config.resource(&request.audience);
    let step = step_up_input(&resource, request.amr, request.acr, request.claims)?;
    let keys = state.keys.snapshot();
    let minted = tokens::step_up_assertion(
        &keys,
        &state.config,
        &state.sealing,
        &session,
        &resource,
        step,
        now,
    )
    .map_err(ApiError::server)?;
    let (assertion, expires_in) = issue(&state, minted, now).await?;
    crate::metrics::STEP_UPS.inc();
    tracing::info!(sid = %session.id, client = %client.id, audience = %resource.audience, "step-up assertion issued");
    Ok(no_store(json!(crate::api::StepUpResponse {
        assertion,
        token_type: "N_A",
        expires_in,
    })))
}

/// RFC 8693 token exchange: the caller's access token (`subject_token`)
/// for a sealed token to `audience`/`resource`: a step-up assertion for a
/// `jwe` resource (`amr`, `acr`, `claims` parameters), a federation token
/// (JWS-in-JWE, only released attributes) for a `nested` partner.
async fn token_exchange<S: Store>(
    state: &AppState<S>,
    form: &Map<String, Value>,
    client: &ClientRecord,
    now: i64,
) -> Result<Response, ApiError> {
    if !client.grants.iter().any(|g| g == "token_exchange") {
        return Err(ApiError::unauthorized_client("token_exchange"));
    }
    let subject = required_param(form, "subject_token")?;
    if required_param(form, "subject_token_type")? != ACCESS_TOKEN_TYPE {
        return Err(ApiError::invalid_request(format!(
            "subject_token_type must be {ACCESS_TOKEN_TYPE}"
        )));
    }
    if let Some(t) = form.get("requested_token_type").and_then(Value::as_str) {
        if t != JWT_TOKEN_TYPE {
            return Err(ApiError::invalid_request(format!(
                "requested_token_type can only be {JWT_TOKEN_TYPE}"
            )));
        }
    }
    let target = form
        .get("audience")
        .or_else(|| form.get("resource"))
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid_request("audience (or resource) names the target"))?;
    let not_live =
        || ApiError::invalid_grant("subject_token is not a live access token of this issuer");
    // A JWS access token is verified; a sealed one (tessera cannot read it)
    // is found by its hash among those it issued.
    let sid = if looks_sealed(subject) {
        state
            .store
            .sealed(&tokens::refresh_hash(subject))
            .await
            .map_err(ApiError::server)?
            .filter(|t| t.kind == "access_token" && t.expires_at > now && t.revoked_at.is_none())
            .ok_or_else(not_live)?
            .session_id
    } else {
        verified_access_token(state, subject, now)
            .ok_or_else(not_live)?
            .get("sid")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let sid = sid.ok_or_else(|| {
        ApiError::invalid_grant(
            "subject_token belongs to no session (a client's own token cannot be exchanged)",
        )
    })?;
    let session = live_session(state, &sid, None, now).await?;
    let resource = state.config.resource(target);
    let keys = state.keys.snapshot();
    let minted = match resource.format {
        TokenFormat::Nested => tokens::federation_token(
            &keys,
            &state.config,
            &state.sealing,
            &session,
            &resource,
            &client.id,
            now,
        )
        .map_err(ApiError::server)?,
        TokenFormat::Jwe => {
            let amr = form
                .get("amr")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            let acr = form
                .get("acr")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let extra = match form.get("claims").and_then(Value::as_str) {
                None => Map::new(),
                Some(text) => tessera_jose::json::parse_object(
                    text.as_bytes(),
                    &tessera_jose::json::Limits::default(),
                    "claims",
                )
                .map_err(|e| ApiError::invalid_request(e.to_string()))?,
            };
            let step = step_up_input(&resource, amr, acr, extra)?;
            tokens::step_up_assertion(
                &keys,
                &state.config,
                &state.sealing,
                &session,
                &resource,
                step,
                now,
            )
            .map_err(ApiError::server)?
        }
        TokenFormat::Jws => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_target",
                format!(
                    "{target:?} is a jws resource: token exchange issues sealed tokens \
                     (jwe step-up assertions, nested federation tokens)"
                ),
            ))
        }
    };
    let (token, expires_in) = issue(state, minted, now).await?;
    crate::metrics::TOKEN_EXCHANGES.inc();
    tracing::info!(sid = %session.id, client = %client.id, audience = %resource.audience, format = %resource.format, "token exchanged");
    Ok(no_store(json!(crate::api::TokenResponse {
        access_token: token,
        issued_token_type: Some(JWT_TOKEN_TYPE),
        token_type: "N_A",
        expires_in,
        refresh_token: None,
    })))
}

/// RFC 8414 authorization server metadata (also served as the OpenID
/// discovery document, for clients that only look there).
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", responses((status = 200, description = "RFC 8414 metadata", body = Object)))]
pub(crate) async fn metadata<S: Store>(State(state): State<Arc<AppState<S>>>) -> Response {
    let issuer = &state.config.issuer;
    let auth_methods = json!([
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt"
    ]);
    Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "grant_types_supported": ["client_credentials", "refresh_token", TOKEN_EXCHANGE],
        "response_types_supported": [],
        "subject_types_supported": ["public"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "id_token_signing_alg_values_supported": [state.config.signing.alg.name()],
        "token_endpoint_auth_signing_alg_values_supported": [state.config.signing.alg.name()],
    }))
    .into_response()
}

/// The same metadata, where OpenID clients look for it.
#[utoipa::path(get, path = "/.well-known/openid-configuration", responses((status = 200, description = "RFC 8414 metadata, as OpenID discovery", body = Object)))]
pub(crate) async fn openid_configuration<S: Store>(state: State<Arc<AppState<S>>>) -> Response {
    metadata(state).await
}

/// The OpenAPI 3.1 document of every endpoint, generated from the code.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "OpenAPI 3.1", body = Object)))]
pub(crate) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::api::openapi_json(),
    )
        .into_response()
}

/// An access token of ours that verifies now: its claims.
fn verified_access_token<S: Store>(
    state: &AppState<S>,
    token: &str,
    now: i64,
) -> Option<Map<String, Value>> {
    let snap = state.keys.snapshot();
    let verified = snap.verifier.verify_compact(token).ok()?;
    if verified.header().typ() != Some(tokens::ACCESS_TYP) {
        return None;
    }
    let limits = tessera_jose::json::Limits::default();
    let claims = tessera_jose::json::parse_object(verified.payload(), &limits, "claims").ok()?;
    let issuer_ok = claims.get("iss").and_then(Value::as_str) == Some(state.config.issuer.as_str());
    let live = claims
        .get("exp")
        .and_then(Value::as_i64)
        .is_some_and(|exp| exp > now);
    (issuer_ok && live).then_some(claims)
}

/// Whether `token` has the shape of a JWE (five compact segments, or JSON):
/// a sealed token, which tessera looks up rather than reads.
fn looks_sealed(token: &str) -> bool {
    token.starts_with('{') || token.bytes().filter(|&b| b == b'.').count() == 4
}

/// The session an access token names (`sid`), if it is still alive.
async fn session_alive<S: Store>(
    state: &AppState<S>,
    claims: &Map<String, Value>,
    now: i64,
) -> Result<bool, ApiError> {
    let Some(sid) = claims.get("sid").and_then(Value::as_str) else {
        return Ok(true); // client_credentials tokens have no session
    };
    let session = state.store.session(sid).await.map_err(ApiError::server)?;
    Ok(session.is_some_and(|s| s.revoked_at.is_none() && s.expires_at > now))
}

/// `POST /oauth2/introspect` (RFC 7662): for an authenticated client, whether
/// an access or refresh token is active, and its claims. Unknown, expired,
/// revoked or foreign tokens are just `{"active": false}`.
#[utoipa::path(post, path = "/oauth2/introspect", request_body(content = crate::api::TokenParam, content_type = "application/x-www-form-urlencoded"), responses((status = 200, description = "RFC 7662 introspection response", body = Object), (status = 400, body = crate::api::ErrorResponse), (status = 401, body = crate::api::ErrorResponse), (status = 413, body = crate::api::ErrorResponse), (status = 415, body = crate::api::ErrorResponse), (status = 503, description = "The store is unavailable (retry after `Retry-After` seconds)", body = crate::api::ErrorResponse)))]
pub(crate) async fn introspect<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (form, client) = form_request(&state, &headers, body).await?;
    let token = required_param(&form, "token")?;
    let now = SystemClock.now();
    let inactive = || no_store(json!({ "active": false }));
    if let Some(mut claims) = verified_access_token(&state, token, now) {
        if !session_alive(&state, &claims, now).await? {
            return Ok(inactive());
        }
        claims.insert("active".into(), true.into());
        claims.insert("token_type".into(), "Bearer".into());
        return Ok(no_store(Value::Object(claims)));
    }
    if looks_sealed(token) {
        let Some(t) = state
            .store
            .sealed(&tokens::refresh_hash(token))
            .await
            .map_err(ApiError::server)?
        else {
            return Ok(inactive());
        };
        let session_ok = match &t.session_id {
            None => true,
            Some(sid) => {
                let s = state.store.session(sid).await.map_err(ApiError::server)?;
                s.is_some_and(|s| s.revoked_at.is_none() && s.expires_at > now)
            }
        };
        if t.expires_at <= now || t.revoked_at.is_some() || !session_ok {
            return Ok(inactive());
        }
        // What tessera kept of it: never the sealed claims themselves.
        let mut answer = json!({
            "active": true,
            "token_type": if t.kind == "access_token" { "Bearer" } else { "N_A" },
            "iss": state.config.issuer,
            "sub": t.sub,
            "aud": t.audience,
            "client_id": t.client_id,
            "iat": t.issued_at,
            "exp": t.expires_at,
            "jti": t.jti,
            "tessera_format": t.format,
            "tessera_kind": t.kind,
        });
        if let (Some(sid), Value::Object(m)) = (&t.session_id, &mut answer) {
            m.insert("sid".into(), sid.as_str().into());
        }
        return Ok(no_store(answer));
    }
    let status = state
        .store
        .refresh_status(&tokens::refresh_hash(token), now)
        .await
        .map_err(ApiError::server)?;
    match status {
        // A client learns about its own refresh tokens only.
        Some(s) if s.active && s.client_id == client.id => Ok(no_store(json!({
            "active": true,
            "token_type": "refresh_token",
            "client_id": s.client_id,
            "sub": s.session.sub,
            "sid": s.session.id,
            "iss": state.config.issuer,
            "iat": s.created_at,
            "exp": s.expires_at,
        }))),
        _ => Ok(inactive()),
    }
}

/// `POST /oauth2/revoke` (RFC 7009): a refresh token ends its session and
/// family; an access token ends its session (so introspection and refresh
/// stop at once; the JWS itself lives until it expires). Always 200 for a
/// well-formed request, whether or not the token was known.
#[utoipa::path(post, path = "/oauth2/revoke", request_body(content = crate::api::TokenParam, content_type = "application/x-www-form-urlencoded"), responses((status = 200, description = "Revoked, or unknown (RFC 7009 §2.2)"), (status = 400, body = crate::api::ErrorResponse), (status = 401, body = crate::api::ErrorResponse), (status = 413, body = crate::api::ErrorResponse), (status = 415, body = crate::api::ErrorResponse), (status = 503, description = "The store is unavailable (retry after `Retry-After` seconds)", body = crate::api::ErrorResponse)))]
pub(crate) async fn revoke<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (form, client) = form_request(&state, &headers, body).await?;
    let token = required_param(&form, "token")?;
    let now = SystemClock.now();
    let sid = if let Some(claims) = verified_access_token(&state, token, now) {
        let own = claims.get("client_id").and_then(Value::as_str) == Some(client.id.as_str());
        claims
            .get("sid")
            .and_then(Value::as_str)
            .filter(|_| own)
            .map(str::to_owned)
    } else if looks_sealed(token) {
        // The token itself stops being active; a session it was issued
        // into for this client ends too, as for a JWS access token.
        let hash = tokens::refresh_hash(token);
        state
            .store
            .revoke_sealed(&hash, &client.id, now)
            .await
            .map_err(ApiError::server)?;
        state
            .store
            .sealed(&hash)
            .await
            .map_err(ApiError::server)?
            .filter(|t| t.client_id == client.id)
            .and_then(|t| t.session_id)
    } else {
        state
            .store
            .refresh_status(&tokens::refresh_hash(token), now)
            .await
            .map_err(ApiError::server)?
            .filter(|s| s.client_id == client.id)
            .map(|s| s.session.id)
    };
    if let Some(sid) = sid {
        state
            .store
            .revoke_session(&sid, &client.id, now)
            .await
            .map_err(ApiError::server)?;
        tracing::info!(%sid, client = %client.id, "session revoked through /oauth2/revoke");
    }
    Ok(no_store(json!({})))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn forms_treat_empty_parameters_as_omitted_and_refuse_repeats() {
        let form = parse_form(b"grant_type=client_credentials&client_id=&scope=").unwrap();
        assert_eq!(form.len(), 1);
        assert_eq!(form["grant_type"], "client_credentials");
        // An empty value and a real one: the real one stands.
        let form = parse_form(b"token=&token=abc").unwrap();
        assert_eq!(form["token"], "abc");
        assert!(parse_form(b"token=a&token=b").is_err());
        assert!(parse_form(b"").unwrap().is_empty());
    }
}
