//! A resource server that accepts tessera access tokens, and a tessera
//! step-up assertion on one route.
//!
//! ```sh
//! cargo run --release -p tessera -- serve &          # the issuer, on 127.0.0.1:8080
//! TESSERA_ISSUER=http://127.0.0.1:8080 AUDIENCE=https://api.example.com \
//!   cargo run -p tessera-verify --example resource_server
//! curl -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:3000/orders
//! # /records needs, besides the access token, a step-up assertion sealed to
//! # this server's key (DECRYPTION_KEY: a private JWK file; the issuer's
//! # [[resources]] entry for AUDIENCE has format = "jwe" and its public part):
//! curl -H "Authorization: Bearer $ACCESS_TOKEN" -H "Step-Up: $ASSERTION" http://127.0.0.1:3000/records
//! # DPoP-bound tokens (RFC 9449): EXTERNAL_URL is this server's URL as
//! # clients reach it, the base of every proof's htu.
//! EXTERNAL_URL=http://127.0.0.1:3000 … cargo run -p tessera-verify --example resource_server
//! curl -H "Authorization: DPoP $ACCESS_TOKEN" \
//!   -H "DPoP: $(tessera dpop proof --key app.jwk --htm GET --htu http://127.0.0.1:3000/orders --token "$ACCESS_TOKEN")" \
//!   http://127.0.0.1:3000/orders
//! # With DPOP_NONCE_KEY (at least 32 bytes, hex; the same for every
//! # instance), every proof must carry a nonce of this server's: the first
//! # request is answered 401 use_dpop_nonce with a DPoP-Nonce header, and
//! # the retry puts it in its proof (tessera dpop proof --nonce N).
//! ```
#![allow(missing_docs)]

use axum::extract::{FromRef, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use tessera_jose::jwa::{JweAlgorithm, JweEncryption, JwsAlgorithm};
use tessera_jose::jwk::Jwk;
use tessera_verify::{require_roles, AccessClaims, AuthError, Claims, Verifier};

#[derive(Clone)]
struct AppState {
    verifier: Verifier,
}

impl FromRef<AppState> for Verifier {
    fn from_ref(state: &AppState) -> Verifier {
        state.verifier.clone()
    }
}

async fn orders(Claims(token): Claims<AccessClaims>) -> Result<String, AuthError> {
    require_roles(&token.claims.custom, &["admin", "reader"])?;
    Ok(format!(
        "orders of {} for {}",
        token.claims.custom.org.unwrap_or_default(),
        token.claims.sub.unwrap_or_default()
    ))
}

/// Needs a fresh strong authentication: a step-up assertion for the same
/// user, in a `Step-Up` header (never the URL).
async fn records(
    State(state): State<AppState>,
    Claims(token): Claims<AccessClaims>,
    headers: HeaderMap,
) -> Result<String, AuthError> {
    let assertion = headers.get("step-up").and_then(|v| v.to_str().ok()).ok_or(
        AuthError::InsufficientScope("a step-up assertion is required".into()),
    )?;
    // A bound assertion only with the key this request proved.
    let step = state
        .verifier
        .verify_step_up_with::<Value>(assertion, token.dpop_jkt.as_deref())?;
    if step.claims.sub != token.claims.sub {
        return Err(AuthError::InvalidToken("the assertion is for another user"));
    }
    Ok(format!(
        "records for {} (acr {})",
        token.claims.sub.unwrap_or_default(),
        step.claims.custom.get("acr").unwrap_or(&Value::Null)
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let issuer = std::env::var("TESSERA_ISSUER").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let audience = std::env::var("AUDIENCE").unwrap_or_else(|_| "https://api.example.com".into());
    let mut builder = Verifier::builder()
        .issuer(&issuer)
        .audience(&audience)
        .algorithms([JwsAlgorithm::RS256, JwsAlgorithm::ES256]);
    if let Ok(url) = std::env::var("EXTERNAL_URL") {
        // DPoP-bound tokens are accepted, each with a proof for this URL.
        builder = builder.external_url(&url);
    }
    if let Ok(hex) = std::env::var("DPOP_NONCE_KEY") {
        let key = (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|b| u8::from_str_radix(b, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or("DPOP_NONCE_KEY: expected hex")?;
        builder = builder.dpop_nonce_key(&key);
    }
    if let Ok(path) = std::env::var("DECRYPTION_KEY") {
        let key = Jwk::from_json(&std::fs::read(path)?)?;
        builder =
            builder.decryption_key(key, &[(JweAlgorithm::RSA_OAEP_256, JweEncryption::A256GCM)]);
    }
    let verifier = builder.build().await?;
    let _refresh = verifier.spawn_refresh();
    let app = Router::new()
        .route("/orders", get(orders))
        .route("/records", get(records))
        .with_state(AppState { verifier });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("resource server on http://127.0.0.1:3000 (issuer {issuer}, audience {audience})");
    axum::serve(listener, app).await?;
    Ok(())
}
