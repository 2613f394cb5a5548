//! `GET /admin/openapi.json`: the admin API's OpenAPI 3.1 document, built
//! from [`super::ROUTES`] (paths, methods, scopes) and the request types'
//! schemas, so it cannot list a route the router lacks or the reverse.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use utoipa::PartialSchema;

use super::clients::{NewClientRequest, RollRequest};
use super::sessions::RevocationRequest;
use super::ROUTES;

fn schema<T: PartialSchema>() -> Value {
    serde_json::to_value(T::schema()).unwrap_or(Value::Null)
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn json_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"type": "object"}}}
    })
}

/// The document.
pub fn document_json() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for r in ROUTES {
        let mut responses = Map::new();
        let mut op = Map::new();
        op.insert("summary".into(), r.summary.into());
        if r.scope == super::ANY_ADMIN {
            // Any admin token: no scope of its own.
            op.insert("security".into(), json!([{ "adminToken": [] }]));
        } else {
            op.insert("security".into(), json!([{ "adminToken": [r.scope] }]));
            op.insert("x-required-scope".into(), r.scope.into());
        }
        responses.insert(
            "401".into(),
            error_response("no admin token, or an unknown one"),
        );
        responses.insert(
            "403".into(),
            error_response("the admin token lacks the scope (insufficient_scope)"),
        );
        let (status, ok) = match (r.method, r.path) {
            ("POST", "/admin/v1/clients") => {
                ("201", json_response("created; the secret is shown once"))
            }
            ("DELETE", _) => ("204", json!({"description": "done"})),
            _ => ("200", json_response("done")),
        };
        responses.insert(status.into(), ok);
        if let Some(name) = r
            .path
            .split('{')
            .nth(1)
            .and_then(|rest| rest.split('}').next())
        {
            responses.insert(
                "404".into(),
                error_response("no such client, key or session"),
            );
            op.insert(
                "parameters".into(),
                json!([{
                    "name": name, "in": "path", "required": true, "schema": {"type": "string"}
                }]),
            );
        }
        let body = match (r.method, r.path) {
            ("POST", "/admin/v1/clients") => Some(schema::<NewClientRequest>()),
            ("POST", "/admin/v1/clients/{id}/secret") => Some(schema::<RollRequest>()),
            ("POST", "/admin/v1/revocations") => Some(schema::<RevocationRequest>()),
            _ => None,
        };
        if let Some(body) = body {
            op.insert(
                "requestBody".into(),
                json!({
                    "required": r.path == "/admin/v1/clients" || r.path == "/admin/v1/revocations",
                    "content": {"application/json": {"schema": body}}
                }),
            );
            responses.insert("400".into(), error_response("the body is not valid"));
            responses.insert("413".into(), error_response("the body is over 64 KiB"));
            responses.insert(
                "415".into(),
                error_response("the body is not application/json"),
            );
        }
        if r.path == "/admin/v1/sessions" && r.method == "GET" {
            op.insert(
                "parameters".into(),
                json!([
                    {"name": "sub", "in": "query", "schema": {"type": "string"}},
                    {"name": "client_id", "in": "query", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query",
                     "schema": {"type": "integer", "minimum": 1, "maximum": super::sessions::MAX_PAGE}},
                    {"name": "after", "in": "query", "schema": {"type": "string"},
                     "description": "the `next` of the previous page"},
                ]),
            );
            responses.insert("400".into(), error_response("a parameter is not valid"));
        }
        if r.path == "/admin/v1/audit" {
            op.insert(
                "parameters".into(),
                json!([
                    {"name": "after", "in": "query",
                     "schema": {"type": "integer", "minimum": 0}, "description": "events after this seq"},
                    {"name": "limit", "in": "query",
                     "schema": {"type": "integer", "minimum": 1, "maximum": super::audit::MAX_PAGE}},
                    {"name": "action", "in": "query", "schema": {"type": "string", "maxLength": 200},
                     "description": "only events of this action"},
                    {"name": "actor", "in": "query", "schema": {"type": "string", "maxLength": 200},
                     "description": "only events of this actor (its id, or its type)"},
                    {"name": "since", "in": "query", "schema": {"type": "integer", "minimum": 0},
                     "description": "only events at or after this time (Unix seconds)"},
                    {"name": "until", "in": "query", "schema": {"type": "integer", "minimum": 0},
                     "description": "only events at or before this time (Unix seconds)"},
                ]),
            );
            responses.insert(
                "200".into(),
                json!({
                    "description": "the events in order",
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "application/x-ndjson": {"schema": {"type": "string"}}
                    }
                }),
            );
            responses.insert("400".into(), error_response("a parameter is not valid"));
        }
        if r.path == "/admin/v1/keys/{kid}/compromised" {
            responses.insert(
                "409".into(),
                error_response("the key is already marked compromised"),
            );
        }
        op.insert("responses".into(), Value::Object(responses));
        if let Value::Object(item) = paths.entry(r.path.to_owned()).or_insert_with(|| json!({})) {
            item.insert(r.method.to_ascii_lowercase(), Value::Object(op));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "tessera admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Served on the admin listener only ([admin] listen). Every route \
                needs an admin token (tessera admins create) with the scope it names.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "adminToken": {"type": "http", "scheme": "bearer",
                    "description": "tessera_admin_… from `tessera admins create`"}
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "error_description"],
                    "properties": {
                        "error": {"type": "string"},
                        "error_description": {"type": "string"}
                    }
                }
            }
        }
    })
}

/// `GET /admin/openapi.json`.
pub async fn document() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json().to_string(),
    )
        .into_response()
}
