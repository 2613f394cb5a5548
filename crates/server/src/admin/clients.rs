//! `/admin/v1/clients`: list, register, read, delete, and roll a secret.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{answer, body, no_content, now};
use crate::clients::{self, ClientError};
use crate::http::{ApiError, AppState};
use crate::store::{ClientRecord, Registration, Store};

/// A client as the admin API (and `tessera clients list --json`) shows it:
/// never its secret or its hash.
pub fn client_json(c: &ClientRecord, now: i64) -> Value {
    let r = &c.registration;
    json!({
        "client_id": c.id,
        "name": c.name,
        "grants": c.grants,
        "created_at": c.created_at,
        "audiences": r.audiences,
        "scopes": r.scopes,
        "may_act": r.may_act,
        "introspect": r.introspect,
        "legacy": c.legacy,
        "auth": crate::store::client_auth(c),
        "public": c.public,
        "dpop": if r.dpop_required { "required" } else { "optional" },
        "previous_secret_valid_until": c
            .previous_secret
            .as_ref()
            .map(|(_, until)| *until)
            .filter(|until| *until > now),
    })
}

fn failed(e: ClientError) -> ApiError {
    match e {
        ClientError::Invalid(m) => ApiError::invalid_request(m),
        ClientError::Store(e) => ApiError::server(e),
        ClientError::Hash => ApiError::server(crate::crypto::OpenFailed),
    }
}

fn no_such_client() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such client")
}

/// `GET /admin/v1/clients`.
pub async fn list<S: Store>(State(state): State<Arc<AppState<S>>>) -> Result<Response, ApiError> {
    let now = now();
    let clients = state.store.clients().await.map_err(ApiError::server)?;
    let list: Vec<Value> = clients.iter().map(|c| client_json(c, now)).collect();
    Ok(answer(StatusCode::OK, json!({ "clients": list })))
}

/// `GET /admin/v1/clients/{id}`.
pub async fn one<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let client = state.store.client(&id).await.map_err(ApiError::server)?;
    let client = client.ok_or_else(no_such_client)?;
    Ok(answer(StatusCode::OK, client_json(&client, now())))
}

/// The body of `POST /admin/v1/clients`: what `tessera clients create`
/// takes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClientRequest {
    /// A name for humans.
    pub name: String,
    /// Grants: `sessions`, `client_credentials`, `refresh_token`,
    /// `token_exchange`.
    pub grants: Vec<String>,
    /// Its public JWK Set (object or JSON text): `private_key_jwt`, no secret.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Value>,
    /// Audiences it may ask tokens for (absent: the default rule).
    #[serde(default)]
    pub audiences: Option<Vec<String>>,
    /// Scopes it may ask for.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Clients trusted to exchange its sessions' tokens.
    #[serde(default)]
    pub may_act: Vec<String>,
    /// Audiences whose tokens it may introspect.
    #[serde(default)]
    pub introspect: Vec<String>,
    /// A public client (a mobile app): no secret, only `refresh_token`,
    /// always with a DPoP proof.
    #[serde(default)]
    pub public: bool,
    /// `required`: every token issued to it is bound to a DPoP key;
    /// `optional` (the default).
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "required")]
    pub dpop: Option<String>,
}

/// `POST /admin/v1/clients` → `201 {"client_id", "client_secret"?}`: the
/// secret is shown this once.
pub async fn create<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: NewClientRequest = body(&headers, raw)?;
    let jwks = match request.jwks {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text),
        Some(v @ Value::Object(_)) => Some(v.to_string()),
        Some(_) => {
            return Err(ApiError::invalid_request(
                "jwks must be a JWK Set (a JSON object)",
            ))
        }
    };
    if let Some(d) = request.dpop.as_deref() {
        if d != "required" && d != "optional" {
            return Err(ApiError::invalid_request(
                "dpop must be \"required\" or \"optional\"",
            ));
        }
    }
    if request.public && jwks.is_some() {
        return Err(ApiError::invalid_request(
            "a public client has no keys to authenticate with: give public or jwks, not both",
        ));
    }
    let registration = Registration {
        audiences: request.audiences,
        scopes: request.scopes,
        may_act: request.may_act,
        introspect: request.introspect,
        dpop_required: request.dpop.as_deref() == Some("required"),
    };
    let created = if request.public {
        clients::create_public(
            &state.store,
            &request.name,
            &request.grants,
            registration,
            now(),
        )
        .await
    } else {
        clients::create_with(
            &state.store,
            &request.name,
            &request.grants,
            jwks.as_deref(),
            registration,
            now(),
        )
        .await
    }
    .map_err(failed)?;
    tracing::info!(client = %created.record.id, "client created through the admin API");
    let mut out = serde_json::Map::new();
    out.insert("client_id".into(), created.record.id.clone().into());
    if !created.secret.is_empty() {
        out.insert(
            "client_secret".into(),
            created.secret.as_str().to_owned().into(),
        );
    }
    Ok(answer(StatusCode::CREATED, Value::Object(out)))
}

/// `DELETE /admin/v1/clients/{id}` → 204; its sessions and tokens go too.
pub async fn remove<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !state
        .store
        .delete_client(&id)
        .await
        .map_err(ApiError::server)?
    {
        return Err(no_such_client());
    }
    tracing::info!(client = %id, "client deleted through the admin API");
    Ok(no_content())
}

/// The body of `POST /admin/v1/clients/{id}/secret`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollRequest {
    /// How long the current secret keeps working (default 0: it stops now).
    #[serde(default)]
    pub grace_seconds: i64,
}

/// `POST /admin/v1/clients/{id}/secret` → `{"client_id", "client_secret",
/// "previous_secret_valid_until"}`.
pub async fn roll_secret<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: RollRequest = body(&headers, raw)?;
    let now = now();
    let secret = clients::roll_secret(&state.store, &id, request.grace_seconds, now)
        .await
        .map_err(failed)?
        .ok_or_else(no_such_client)?;
    tracing::info!(client = %id, grace_seconds = request.grace_seconds,
        "client secret rolled through the admin API");
    Ok(answer(
        StatusCode::OK,
        json!({
            "client_id": id,
            "client_secret": secret.as_str(),
            "previous_secret_valid_until":
                (request.grace_seconds > 0).then(|| now.saturating_add(request.grace_seconds)),
        }),
    ))
}
