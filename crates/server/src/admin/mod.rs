//! The admin listener: the admin API (`/admin/v1/…`) and its OpenAPI
//! document (`/admin/openapi.json`), on their own address (`[admin] listen`,
//! loopback by default) and never on the public listener.
//!
//! Who is asking: every `/admin/v1/…` request carries `Authorization:
//! Bearer <admin token>` (`tessera admins create`), looked up by its
//! SHA-256. No token, a malformed one or an unknown one is a 401; a token
//! without the route's scope is a 403 `insufficient_scope`. The scope of
//! each route is written once, in [`ROUTES`], which the router, the
//! authorization middleware and the OpenAPI document all read: a route
//! cannot exist without one.
//!
//! One file per resource: [`clients`], [`keys`], [`sessions`], [`audit`],
//! [`service`] (overview, resources); and the [`console`], a client of
//! this API served on the same listener.

use std::sync::Arc;

use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, MethodRouter};
use axum::Router;

use crate::admins;
use crate::http::{error, ApiError, AppState};
use crate::store::{AdminRecord, Store};

pub mod audit;
pub mod clients;
pub mod console;
pub mod keys;
pub mod openapi;
pub mod service;
pub mod sessions;

/// Largest admin request body.
pub const MAX_BODY: usize = 64 * 1024;

/// One admin route: method, path template, the scope it needs, and what it does.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// The method.
    pub method: &'static str,
    /// The path template (axum syntax).
    pub path: &'static str,
    /// The scope an admin token needs for it.
    pub scope: &'static str,
    /// One line for the OpenAPI document.
    pub summary: &'static str,
}

const fn route(
    method: &'static str,
    path: &'static str,
    scope: &'static str,
    summary: &'static str,
) -> Route {
    Route {
        method,
        path,
        scope,
        summary,
    }
}

/// Every admin API route and its scope.
pub const ROUTES: &[Route] = &[
    route("GET", "/admin/v1/clients", "clients:read", "List clients."),
    route(
        "POST",
        "/admin/v1/clients",
        "clients:write",
        "Register a client; its secret is shown once.",
    ),
    route(
        "GET",
        "/admin/v1/clients/{id}",
        "clients:read",
        "One client.",
    ),
    route(
        "DELETE",
        "/admin/v1/clients/{id}",
        "clients:write",
        "Delete a client, its sessions and tokens.",
    ),
    route(
        "POST",
        "/admin/v1/clients/{id}/secret",
        "clients:write",
        "Roll a client's secret; the old one works for grace_seconds.",
    ),
    route(
        "GET",
        "/admin/v1/keys",
        "keys:read",
        "The signing keys and their states.",
    ),
    route(
        "POST",
        "/admin/v1/keys/rotate",
        "keys:write",
        "Rotate: the next key signs as soon as every verifier can know it.",
    ),
    route(
        "POST",
        "/admin/v1/keys/{kid}/compromised",
        "keys:write",
        "A key leaked: a fresh key signs now, the leaked one leaves the JWKS at once.",
    ),
    route(
        "GET",
        "/admin/v1/sessions",
        "sessions:read",
        "Search sessions by sub and/or client_id, paged.",
    ),
    route(
        "DELETE",
        "/admin/v1/sessions/{id}",
        "sessions:write",
        "Revoke one session and its tokens.",
    ),
    route(
        "POST",
        "/admin/v1/revocations",
        "sessions:write",
        "Revoke every session of a sub, of a client, or issued before a time.",
    ),
    route(
        "GET",
        "/admin/v1/audit",
        "audit:read",
        "The audit trail in order (application/x-ndjson when asked by Accept), \
         optionally filtered by action, actor and time.",
    ),
    route(
        "GET",
        "/admin/v1/audit/verify",
        "audit:read",
        "Verify the audit chain: the last seq verified, or the first broken one.",
    ),
    route(
        "GET",
        "/admin/v1/overview",
        ANY_ADMIN,
        "Issuer, version, store, signing algorithm and counts (each count as the token's scopes allow).",
    ),
    route(
        "GET",
        "/admin/v1/resources",
        "clients:read",
        "The configured resources: audience, format, algorithms, claims, and who can read their tokens.",
    ),
];

/// The "scope" of a route any authenticated admin may call (it needs no
/// scope of its own; what it shows still follows the token's scopes).
pub const ANY_ADMIN: &str = "any-admin";

/// The scope `method` on the route template `path` needs.
pub fn scope_of(method: &Method, path: &str) -> Option<&'static str> {
    ROUTES
        .iter()
        .find(|r| r.path == path && r.method == method.as_str())
        .map(|r| r.scope)
}

/// The admin who made a request, authenticated and allowed its route.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The admin.
    pub admin: AdminRecord,
    /// The request's id (also in the `X-Request-Id` answer header).
    pub request_id: String,
    /// Who connected.
    pub source_ip: Option<String>,
}

fn handler<S: Store + Clone>(r: &Route) -> MethodRouter<Arc<AppState<S>>> {
    match (r.method, r.path) {
        ("GET", "/admin/v1/clients") => get(clients::list::<S>),
        ("POST", "/admin/v1/clients") => post(clients::create::<S>),
        ("GET", "/admin/v1/clients/{id}") => get(clients::one::<S>),
        ("DELETE", "/admin/v1/clients/{id}") => delete(clients::remove::<S>),
        ("POST", "/admin/v1/clients/{id}/secret") => post(clients::roll_secret::<S>),
        ("GET", "/admin/v1/keys") => get(keys::list::<S>),
        ("POST", "/admin/v1/keys/rotate") => post(keys::rotate::<S>),
        ("POST", "/admin/v1/keys/{kid}/compromised") => post(keys::compromised::<S>),
        ("GET", "/admin/v1/sessions") => get(sessions::search::<S>),
        ("DELETE", "/admin/v1/sessions/{id}") => delete(sessions::revoke::<S>),
        ("POST", "/admin/v1/revocations") => post(sessions::mass_revoke::<S>),
        ("GET", "/admin/v1/audit") => get(audit::events::<S>),
        ("GET", "/admin/v1/audit/verify") => get(audit::verify::<S>),
        ("GET", "/admin/v1/overview") => get(service::overview::<S>),
        ("GET", "/admin/v1/resources") => get(service::resources::<S>),
        _ => get(unlisted),
    }
}

/// Never routed: every entry of [`ROUTES`] has its handler above (a test
/// checks it).
async fn unlisted() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// The admin listener's routes.
pub fn router<S: Store + Clone>(state: Arc<AppState<S>>) -> Router {
    let mut api: Router<Arc<AppState<S>>> = Router::new();
    for r in ROUTES {
        // Routes sharing a path merge their methods.
        api = api.route(r.path, handler::<S>(r));
    }
    let api = api.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        authorize::<S>,
    ));
    let api: Router = Router::new()
        .merge(api)
        .route("/admin/openapi.json", get(openapi::document))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(count))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state.clone());
    // The console is a client of the API router above, served beside it.
    api.clone()
        .merge(console::router(state, api))
        .layer(axum::middleware::from_fn(console::security_headers))
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

/// Counts every answer by route template (never the concrete path: ids
/// would grow the label set without bound) and status.
async fn count(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let response = next.run(request).await;
    crate::metrics::ADMIN_REQUESTS.inc(&[&route, response.status().as_str()]);
    response
}

fn bearer_challenge(extra: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer realm=\"tessera-admin\"{extra}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer realm=\"tessera-admin\""))
}

fn unauthorized(description: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", description)
        .challenge(bearer_challenge(", error=\"invalid_token\""))
}

/// The bearer token of the request: exactly one `Authorization: Bearer`.
fn bearer(request: &Request) -> Result<&str, ApiError> {
    let mut values = request.headers().get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "an admin token is required",
        )
        .challenge(bearer_challenge("")));
    };
    value
        .to_str()
        .ok()
        .and_then(|v| {
            v.get(..7)
                .filter(|p| p.eq_ignore_ascii_case("bearer "))
                .and_then(|_| v.get(7..))
        })
        .map(str::trim)
        .ok_or_else(|| unauthorized("expected Authorization: Bearer <admin token>"))
}

/// Who is asking, and may they ask for this: authenticates the admin token,
/// checks the route's scope, then runs the handler with the [`Caller`].
async fn authorize<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(needed) = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|m| scope_of(request.method(), m.as_str()))
    else {
        // A route outside the table cannot be reached (see `unlisted`).
        return not_found().await;
    };
    let token = match bearer(&request) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let admin = match admins::authenticate(&state.store, token).await {
        Ok(Some(admin)) => admin,
        Ok(None) => return unauthorized("unknown admin token").into_response(),
        Err(e) => return ApiError::server(e).into_response(),
    };
    let request_id = crate::audit::request_id();
    if needed != ANY_ADMIN && !admins::allows(&admin.scopes, needed) {
        tracing::warn!(admin = %admin.id, route = %request.uri().path(), scope = needed,
            "admin request refused: insufficient scope");
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("this admin token lacks the scope {needed}"),
        )
        .challenge(bearer_challenge(&format!(
            ", error=\"insufficient_scope\", scope=\"{needed}\""
        )))
        .into_response();
    }
    let source_ip = request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    tracing::info!(admin = %admin.id, method = %request.method(), route = %request.uri().path(),
        request_id = %request_id, "admin request");
    let caller = Caller {
        admin,
        request_id: request_id.clone(),
        source_ip,
    };
    request.extensions_mut().insert(caller.clone());
    let mut response = crate::audit::with_context(caller.context(), next.run(request)).await;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

impl Caller {
    /// The audit trail's view of this request: the admin, the request id,
    /// the peer's address.
    pub fn context(&self) -> crate::audit::Context {
        crate::audit::Context {
            actor: Some(crate::audit::Actor::admin(&self.admin.id)),
            request_id: Some(self.request_id.clone()),
            source_ip: self.source_ip.clone(),
        }
    }
}

/// A JSON answer with `Cache-Control: no-store` (admin answers can hold a
/// secret shown once).
pub(crate) fn answer(status: StatusCode, value: serde_json::Value) -> Response {
    let mut response = (status, axum::Json(value)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `204 No Content`.
pub(crate) fn no_content() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
    )
        .into_response()
}

/// The JSON body of an admin request; an empty body is `{}`.
pub(crate) fn body<T: serde::de::DeserializeOwned>(
    headers: &axum::http::HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = crate::http::request::body_bytes(body)?;
    if bytes.is_empty() {
        return serde_json::from_value(serde_json::json!({}))
            .map_err(|e| ApiError::invalid_request(format!("request body: {e}")));
    }
    crate::http::request::json_body(headers, &bytes)
}

/// Unix time now.
pub(crate) fn now() -> i64 {
    use tessera_jose::jwt::Clock;
    tessera_jose::jwt::SystemClock.now()
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_a_known_scope_and_one_entry() {
        for (i, r) in ROUTES.iter().enumerate() {
            assert!(
                admins::SCOPES.contains(&r.scope) || r.scope == ANY_ADMIN,
                "{} {}: {}",
                r.method,
                r.path,
                r.scope
            );
            assert!(
                !ROUTES[..i]
                    .iter()
                    .any(|o| o.method == r.method && o.path == r.path),
                "{} {} listed twice",
                r.method,
                r.path
            );
            assert!(r.path.starts_with("/admin/v1/"));
        }
    }
}
