//! Minting: access tokens (RFC 9068 `at+jwt`), session tokens, and opaque
//! refresh tokens that rotate on every use.

use serde_json::{Map, Value};
use tessera_jose::jws::JwsHeader;
use tessera_jose::jwt::{self, Claims};

use crate::config::{seconds as secs, Config};
use crate::crypto::{random_token, sha256};
use crate::keys::Snapshot;
use crate::store::{ClientRecord, NewRefresh, SessionRecord};

/// `typ` of access tokens (RFC 9068).
pub const ACCESS_TYP: &str = "at+jwt";
/// `typ` of session tokens.
pub const SESSION_TYP: &str = "session+jwt";

/// Bytes of randomness in a refresh token (256 bits).
const REFRESH_BYTES: usize = 32;

/// A minting failure (no randomness, or signing failed).
#[derive(Debug, thiserror::Error)]
#[error("could not mint a token: {0}")]
pub struct MintError(String);

fn jti() -> Result<String, MintError> {
    random_token(16)
        .map(|t| t.to_string())
        .map_err(|_| MintError("no randomness".into()))
}

/// A new refresh token, and what is stored of it (its hash).
pub fn new_refresh(
    config: &Config,
    now: i64,
) -> Result<(zeroize::Zeroizing<String>, NewRefresh), MintError> {
    let token = random_token(REFRESH_BYTES).map_err(|_| MintError("no randomness".into()))?;
    let stored = NewRefresh {
        hash: sha256(token.as_bytes()),
        created_at: now,
        expires_at: now.saturating_add(secs(config.tokens.refresh_ttl)),
    };
    Ok((token, stored))
}

/// The hash under which a presented refresh token is looked up.
pub fn refresh_hash(token: &str) -> Vec<u8> {
    sha256(token.as_bytes())
}

/// `extra` plus the session's own claims: `org, roles, amr, client_id, sid`.
fn session_claims(session: &SessionRecord, mut extra: Map<String, Value>) -> Map<String, Value> {
    extra.insert("org".into(), session.org.clone().into());
    extra.insert("roles".into(), session.roles.clone().into());
    extra.insert("amr".into(), session.amr.clone().into());
    extra.insert("client_id".into(), session.client_id.clone().into());
    extra.insert("sid".into(), session.id.clone().into());
    extra
}

/// An access token for a session's user: `iss, sub, aud, exp, iat, jti,
/// org, roles, amr, client_id, sid` and the session's (guarded) custom
/// claims. It never outlives the session.
pub fn access_token(
    keys: &Snapshot,
    config: &Config,
    session: &SessionRecord,
    now: i64,
) -> Result<(String, i64), MintError> {
    let exp = now
        .saturating_add(secs(config.tokens.access_ttl))
        .min(session.expires_at);
    let claims = Claims::new(session_claims(session, session.claims.clone()))
        .issuer(&config.issuer)
        .subject(&session.sub)
        .audience(&session.audience)
        .issued_at(now)
        .expires_at(exp)
        .jwt_id(&jti()?);
    let token = jwt::sign(&keys.signer, &JwsHeader::new().typ(ACCESS_TYP), &claims)
        .map_err(|e| MintError(e.to_string()))?;
    Ok((token, exp - now))
}

/// A session token: the session itself, for the client and for tessera
/// (`aud` is the issuer), with its own `typ`.
pub fn session_token(
    keys: &Snapshot,
    config: &Config,
    session: &SessionRecord,
    now: i64,
) -> Result<String, MintError> {
    let claims = Claims::new(session_claims(session, Map::new()))
        .issuer(&config.issuer)
        .subject(&session.sub)
        .audience(&config.issuer)
        .issued_at(now)
        .expires_at(session.expires_at)
        .jwt_id(&jti()?);
    jwt::sign(&keys.signer, &JwsHeader::new().typ(SESSION_TYP), &claims)
        .map_err(|e| MintError(e.to_string()))
}

/// An access token for a client acting on its own behalf
/// (`client_credentials`): `sub` and `client_id` are the client.
pub fn client_token(
    keys: &Snapshot,
    config: &Config,
    client: &ClientRecord,
    audience: &str,
    scope: Option<&str>,
    now: i64,
) -> Result<(String, i64), MintError> {
    let ttl = secs(config.tokens.access_ttl);
    let mut custom = Map::new();
    custom.insert("client_id".into(), client.id.clone().into());
    if let Some(scope) = scope {
        custom.insert("scope".into(), Value::from(scope));
    }
    let claims = Claims::new(custom)
        .issuer(&config.issuer)
        .subject(&client.id)
        .audience(audience)
        .issued_at(now)
        .expires_at(now.saturating_add(ttl))
        .jwt_id(&jti()?);
    let token = jwt::sign(&keys.signer, &JwsHeader::new().typ(ACCESS_TYP), &claims)
        .map_err(|e| MintError(e.to_string()))?;
    Ok((token, ttl))
}
