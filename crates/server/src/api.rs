//! The shapes of the HTTP API, as Rust types: handlers serialize these, and
//! `GET /openapi.json` is generated from them and from the handlers'
//! annotations, so the document cannot drift from the code.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{OpenApi, ToSchema};

/// `POST /v1/sessions` request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// The user, as the client authenticated them (1 to 1024 bytes).
    #[schema(min_length = 1, max_length = 1024)]
    pub sub: String,
    /// The user's organisation (1 to 1024 bytes).
    #[schema(min_length = 1, max_length = 1024)]
    pub org: String,
    /// Roles: at most 64, each 1 to 256 bytes.
    #[serde(default)]
    #[schema(max_items = 64)]
    pub roles: Vec<String>,
    /// Authentication methods used (RFC 8176), e.g. `pwd`, `otp`: at most
    /// 64, each 1 to 256 bytes.
    #[serde(default)]
    #[schema(max_items = 64)]
    pub amr: Vec<String>,
    /// The resource (`aud`) the access token is for: one the client is
    /// registered for (`invalid_target` otherwise; 1 to 1024 bytes).
    #[schema(min_length = 1, max_length = 1024, example = "https://api.example.com")]
    pub audience: String,
    /// Custom claims; each must be declared for the resource.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub claims: Map<String, Value>,
    /// The scopes the session's tokens carry, space-separated: each one
    /// registered for the client (`invalid_scope` otherwise); absent: all of
    /// the client's registered scopes.
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub scope: Option<String>,
    /// The assurance level the client reached when it authenticated the
    /// user (1 to 256 bytes); a token exchange's step-up assertion attests it.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    pub acr: Option<String>,
    /// Binds every token of the session to this DPoP key (RFC 9449 §10:
    /// its RFC 7638 SHA-256 thumbprint, 43 base64url characters): its
    /// access tokens carry `cnf.jkt`, and every refresh must present a
    /// proof by that key. A `DPoP` proof sent with this request must be by
    /// the same key.
    #[serde(default)]
    #[schema(
        min_length = 43,
        max_length = 43,
        example = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
    )]
    pub dpop_jkt: Option<String>,
    /// The public client (a mobile app) that will refresh the session with
    /// its DPoP key: its `client_id`. Requires `dpop_jkt`; the session's
    /// audience and scope must be registered for that client too.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    pub holder: Option<String>,
}

/// `POST /v1/sessions` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    /// The session id (`sid`).
    pub session_id: String,
    /// JWS, `typ: at+jwt`.
    pub access_token: String,
    /// JWS, `typ: session+jwt`.
    pub session_token: String,
    /// Opaque; rotated on every use.
    pub refresh_token: String,
    /// `DPoP` when the session's tokens are bound to a key (`cnf.jkt`),
    /// else `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

/// `POST /v1/sessions/{id}/step-up` request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepUpRequest {
    /// The sealed (`jwe` or `nested`) resource the assertion is for.
    #[schema(min_length = 1, max_length = 1024)]
    pub audience: String,
    /// How the user just authenticated (RFC 8176), e.g. `hwk`, `otp`: 1 to
    /// 64 methods, each 1 to 256 bytes.
    #[schema(min_items = 1, max_items = 64)]
    pub amr: Vec<String>,
    /// The assurance level reached (1 to 256 bytes).
    #[schema(min_length = 1, max_length = 256)]
    pub acr: String,
    /// Private claims for the resource, each declared for it; personal data
    /// is allowed here, since the assertion is sealed.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub claims: Map<String, Value>,
}

/// `POST /v1/sessions/{id}/step-up` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepUpResponse {
    /// A JWE sealed to the resource's key, holding our signed assertion
    /// (`typ: step-up+jwt`): `sub, sid, amr, acr, auth_time` and the claims.
    pub assertion: String,
    /// Always `N_A` (RFC 8693 §2.2.1: not an access token).
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: i64,
}

/// `POST /oauth2/token` request (form-encoded).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documents the form; the handler reads it strictly by hand
pub struct TokenRequest {
    /// `client_credentials`, `refresh_token`, or
    /// `urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693).
    pub grant_type: String,
    /// For `refresh_token`.
    pub refresh_token: Option<String>,
    /// For `client_credentials` and token exchange: the resource (also
    /// accepted as `resource`).
    pub audience: Option<String>,
    /// Token exchange: the caller's access token.
    pub subject_token: Option<String>,
    /// Token exchange: `urn:ietf:params:oauth:token-type:access_token`.
    pub subject_token_type: Option<String>,
    /// Space-separated scopes, each registered for the client
    /// (`invalid_scope` otherwise); absent: all registered ones. For a
    /// refresh or a token exchange, within the session's scope too.
    /// (A token exchange takes `amr`, `acr` and claims from the session:
    /// such parameters are refused.)
    pub scope: Option<String>,
    /// `client_secret_post`, `private_key_jwt`, or a public client (`none`:
    /// only `client_id`, refreshing with a DPoP proof).
    pub client_id: Option<String>,
    /// `client_secret_post`.
    pub client_secret: Option<String>,
    /// `private_key_jwt`: `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    pub client_assertion_type: Option<String>,
    /// `private_key_jwt`: the signed assertion.
    pub client_assertion: Option<String>,
}

/// `POST /oauth2/token` answer (RFC 6749 §5.1, RFC 8693 §2.2.1).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// In the resource's format: JWS `typ: at+jwt`, or a JWE holding one.
    /// For token exchange: the issued token.
    pub access_token: String,
    /// Token exchange: `urn:ietf:params:oauth:token-type:jwt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
    /// `DPoP` when the token is bound to the key of the request's DPoP
    /// proof (`cnf.jkt`, RFC 9449); else `Bearer`, or `N_A` for a token
    /// exchange's sealed assertion.
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// The next refresh token (refresh grant only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The scopes granted, space-separated (RFC 6749 §5.1), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// `POST /oauth2/introspect` and `/oauth2/revoke` request (form-encoded).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documents the form; the handler reads it strictly by hand
pub struct TokenParam {
    /// The token.
    pub token: String,
    /// `access_token` or `refresh_token` (a hint; both are tried).
    pub token_type_hint: Option<String>,
}

/// RFC 6749 §5.2 error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorResponse {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, …
    pub error: String,
    /// For humans.
    pub error_description: String,
}

/// `GET /healthz` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}

/// The API document.
#[derive(OpenApi)]
#[openapi(
    info(title = "tessera", description = "Token service: sessions, OAuth 2.0 token, introspection and revocation endpoints, JWKS."),
    paths(
        crate::http::discovery::healthz,
        crate::http::discovery::jwks,
        crate::http::discovery::metadata,
        crate::http::discovery::openid_configuration,
        crate::http::sessions::create_session,
        crate::http::sessions::delete_session,
        crate::http::sessions::step_up,
        crate::http::token::token,
        crate::http::introspection::introspect,
        crate::http::introspection::revoke,
        crate::http::discovery::metrics,
        crate::http::discovery::openapi,
    ),
    components(schemas(
        SessionRequest,
        SessionResponse,
        StepUpRequest,
        StepUpResponse,
        TokenRequest,
        TokenResponse,
        TokenParam,
        ErrorResponse,
        Health
    )),
    modifiers(&ClientAuth)
)]
pub struct ApiDoc;

/// Declares the client authentication schemes.
struct ClientAuth;

impl utoipa::Modify for ClientAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "client_secret_basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
    }
}

/// The document as JSON.
pub fn openapi_json() -> String {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    // The items of `roles` and `amr` are 1 to 256 bytes: utoipa has no
    // attribute for the items of a `Vec<String>`, so the bounds go in here.
    for (schema, lists) in [
        ("SessionRequest", &["roles", "amr"][..]),
        ("StepUpRequest", &["amr"][..]),
    ] {
        for list in lists {
            if let Some(items) = doc
                .pointer_mut(&format!(
                    "/components/schemas/{schema}/properties/{list}/items"
                ))
                .and_then(Value::as_object_mut)
            {
                items.insert("minLength".into(), 1.into());
                items.insert("maxLength".into(), 256.into());
            }
        }
    }
    doc.to_string()
}
