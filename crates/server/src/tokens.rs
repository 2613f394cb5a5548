//! Minting: access tokens (RFC 9068 `at+jwt`), session tokens, and opaque
//! refresh tokens that rotate on every use.

use serde_json::{Map, Value};
use tessera_jose::jwe::JweHeader;
use tessera_jose::jws::JwsHeader;
use tessera_jose::jwt::{self, Claims};

use crate::config::{seconds as secs, Config, Resource, TokenFormat};
use crate::crypto::{random_token, sha256};
use crate::keys::Snapshot;
use crate::sealing::SealingKeys;
use crate::store::{ClientRecord, NewRefresh, SealedRecord, SessionRecord};

/// `typ` of access tokens (RFC 9068).
pub const ACCESS_TYP: &str = tessera_verify::ACCESS_TYP;
/// `typ` of session tokens.
pub const SESSION_TYP: &str = "session+jwt";
/// `typ` of step-up assertions (inside their JWE), so that no verifier
/// expecting an access token accepts one.
pub const STEP_UP_TYP: &str = tessera_verify::STEP_UP_TYP;
/// `typ` of federation tokens (inside their JWE).
pub const FEDERATION_TYP: &str = "JWT";

/// Bytes of randomness in a refresh token (256 bits).
const REFRESH_BYTES: usize = 32;

/// A minting failure (no randomness, or signing failed).
#[derive(Debug, thiserror::Error)]
#[error("could not mint a token: {0}")]
pub struct MintError(String);

impl MintError {
    pub(crate) fn new(why: impl Into<String>) -> Self {
        MintError(why.into())
    }
}

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
    // A session held by a public client (a mobile app refreshing it) names
    // that client: its tokens are issued to it.
    let client_id = session.holder.as_ref().unwrap_or(&session.client_id);
    extra.insert("client_id".into(), client_id.clone().into());
    extra.insert("sid".into(), session.id.clone().into());
    if !session.scope.is_empty() {
        extra.insert("scope".into(), session.scope.join(" ").into());
    }
    extra
}

/// A minted token; for a sealed one, what is kept of it (tessera cannot
/// read it back).
#[derive(Debug)]
pub struct Minted {
    /// The token.
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// For `jwe`/`nested` tokens: the record for introspection and revocation.
    pub sealed: Option<SealedRecord>,
}

/// What a token is, for its sealed record.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// An access token.
    Access,
    /// A step-up assertion.
    StepUp,
    /// A federation token (token exchange to a partner).
    Federation,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Access => "access_token",
            Kind::StepUp => "step_up",
            Kind::Federation => "federation",
        }
    }
}

/// Who a token is issued to, for its sealed record.
pub struct Issued<'a> {
    /// The client.
    pub client_id: &'a str,
    /// The session, if any.
    pub session_id: Option<&'a str>,
    /// What it is.
    pub kind: Kind,
    /// For a token exchange: the exchanging client, which the token names
    /// in `act` (RFC 8693 §4.1) and as its `client_id`.
    pub actor: Option<&'a str>,
    /// The DPoP key it is bound to (RFC 9449 §6: `cnf.jkt`, an RFC 7638
    /// thumbprint); sealed tokens carry it inside, and their record keeps it.
    pub jkt: Option<&'a str>,
}

/// Signs `claims` with our current key, in `resource`'s format: the JWS
/// itself for `jws`; that JWS sealed to the resource's key (`cty: "JWT"`)
/// for `jwe` and `nested`. For a `nested` partner only the attributes in
/// its `release` list stay: `iss`, `aud`, `exp`, `iat` and `jti` describe
/// the token and always do; `sub` is an attribute like any other.
fn mint(
    keys: &Snapshot,
    sealing: &SealingKeys,
    resource: &Resource,
    typ: &str,
    mut claims: Claims<Map<String, Value>>,
    issued: &Issued<'_>,
    now: i64,
) -> Result<Minted, MintError> {
    let expires_at = claims.exp.unwrap_or(now);
    if let Some(jkt) = issued.jkt {
        // Describes the token itself: it always stays, whatever a
        // partner's release list says.
        claims
            .custom
            .insert("cnf".into(), serde_json::json!({ "jkt": jkt }));
        crate::metrics::DPOP_BOUND.inc();
    }
    let header = JwsHeader::new().typ(typ);
    let failed = |e: tessera_jose::Error| MintError(e.to_string());
    if resource.format == TokenFormat::Jws {
        return Ok(Minted {
            token: jwt::sign(&keys.signer, &header, &claims).map_err(failed)?,
            expires_in: expires_at - now,
            sealed: None,
        });
    }
    let jti = claims.jti.clone().unwrap_or_default();
    // What the token carries, and so all its record may keep: a partner
    // gets only its release list.
    let carries = |name: &str| {
        resource.format != TokenFormat::Nested || resource.release.iter().any(|r| r == name)
    };
    if !carries("sub") {
        claims.sub = None;
    }
    claims
        .custom
        .retain(|name, _| name == "cnf" || carries(name));
    if let Some(actor) = issued.actor {
        // Describes the token itself, like `iss`: it always stays.
        claims
            .custom
            .insert("act".into(), serde_json::json!({ "sub": actor }));
    }
    let sub = claims.sub.clone().unwrap_or_default();
    let recipient = sealing.get(&resource.audience).ok_or_else(|| {
        MintError(format!(
            "no encryption key loaded for {:?}",
            resource.audience
        ))
    })?;
    let token = jwt::sign_and_encrypt(
        &keys.signer,
        &header,
        &claims,
        &recipient.encrypter,
        &JweHeader::new(),
    )
    .map_err(failed)?;
    let sealed = SealedRecord {
        hash: sha256(token.as_bytes()),
        jti,
        kind: issued.kind.as_str().to_owned(),
        format: resource.format.to_string(),
        client_id: issued.client_id.to_owned(),
        session_id: issued
            .session_id
            .filter(|_| carries("sid"))
            .map(str::to_owned),
        session_ref: issued.session_id.map(crate::store::session_ref),
        sub,
        audience: resource.audience.clone(),
        issued_at: now,
        expires_at,
        revoked_at: None,
        kid: Some(keys.kid.clone()),
        jkt: issued.jkt.map(str::to_owned),
    };
    Ok(Minted {
        token,
        expires_in: expires_at - now,
        sealed: Some(sealed),
    })
}

/// A token for `resource` carrying the session's user: `iss, sub, aud,
/// exp, iat, jti, org, roles, amr, client_id, sid` and the session's
/// (guarded) custom claims, living as long as an access token and never
/// past the session.
#[allow(clippy::too_many_arguments)]
fn for_session(
    keys: &Snapshot,
    config: &Config,
    sealing: &SealingKeys,
    session: &SessionRecord,
    resource: &Resource,
    typ: &str,
    issued: &Issued<'_>,
    now: i64,
) -> Result<Minted, MintError> {
    let exp = now
        .saturating_add(secs(config.tokens.access_ttl))
        .min(session.expires_at);
    let mut custom = session_claims(session, session.claims.clone());
    if let Some(actor) = issued.actor {
        custom.insert("client_id".into(), actor.into());
    }
    let claims = Claims::new(custom)
        .issuer(&config.issuer)
        .subject(&session.sub)
        .audience(&resource.audience)
        .issued_at(now)
        .expires_at(exp)
        .jwt_id(&jti()?);
    mint(keys, sealing, resource, typ, claims, issued, now)
}

/// An access token for a session's user, in its audience's format, bound
/// to the DPoP key `jkt` if given.
pub fn access_token(
    keys: &Snapshot,
    config: &Config,
    sealing: &SealingKeys,
    session: &SessionRecord,
    jkt: Option<&str>,
    now: i64,
) -> Result<Minted, MintError> {
    let issued = Issued {
        client_id: session.holder.as_ref().unwrap_or(&session.client_id),
        session_id: Some(&session.id),
        kind: Kind::Access,
        actor: None,
        jkt,
    };
    let resource = config.resource(&session.audience);
    for_session(
        keys, config, sealing, session, &resource, ACCESS_TYP, &issued, now,
    )
}

/// A session token: the session itself, for the client and for tessera
/// (`aud` is the issuer), with its own `typ`. Always a JWS.
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
/// (`client_credentials`), in the audience's format: `sub` and
/// `client_id` are the client; `scope` the granted scopes (none: no claim).
#[allow(clippy::too_many_arguments)]
pub fn client_token(
    keys: &Snapshot,
    config: &Config,
    sealing: &SealingKeys,
    client: &ClientRecord,
    audience: &str,
    scope: &[String],
    jkt: Option<&str>,
    now: i64,
) -> Result<Minted, MintError> {
    let ttl = secs(config.tokens.access_ttl);
    let mut custom = Map::new();
    custom.insert("client_id".into(), client.id.clone().into());
    if !scope.is_empty() {
        custom.insert("scope".into(), Value::from(scope.join(" ")));
    }
    let claims = Claims::new(custom)
        .issuer(&config.issuer)
        .subject(&client.id)
        .audience(audience)
        .issued_at(now)
        .expires_at(now.saturating_add(ttl))
        .jwt_id(&jti()?);
    let issued = Issued {
        client_id: &client.id,
        session_id: None,
        kind: Kind::Access,
        actor: None,
        jkt,
    };
    mint(
        keys,
        sealing,
        &config.resource(audience),
        ACCESS_TYP,
        claims,
        &issued,
        now,
    )
}

/// What a step-up assertion attests: a fresh strong authentication reported
/// by the session's client, or (token exchange) the session's own.
#[derive(Debug, Clone)]
pub struct StepUp {
    /// How the user authenticated (RFC 8176 values).
    pub amr: Vec<String>,
    /// The assurance level reached (none: no `acr` claim).
    pub acr: Option<String>,
    /// When the user authenticated so (Unix seconds).
    pub auth_time: i64,
    /// Private claims for the resource (declared by it; may be sensitive,
    /// since the assertion is sealed).
    pub claims: Map<String, Value>,
}

/// A step-up assertion for a sealed resource: `sub, sid, amr, acr,
/// auth_time` and the claims, sealed (default 5 minutes, never past the
/// session). With `actor` (token exchange), issued to that client and
/// naming it in `act`.
#[allow(clippy::too_many_arguments)]
pub fn step_up_assertion(
    keys: &Snapshot,
    config: &Config,
    sealing: &SealingKeys,
    session: &SessionRecord,
    resource: &Resource,
    step: StepUp,
    actor: Option<&str>,
    jkt: Option<&str>,
    now: i64,
) -> Result<Minted, MintError> {
    let exp = now
        .saturating_add(secs(config.tokens.step_up_ttl))
        .min(session.expires_at);
    let mut custom = step.claims;
    custom.insert("sid".into(), session.id.clone().into());
    custom.insert("amr".into(), step.amr.into());
    if let Some(acr) = step.acr {
        custom.insert("acr".into(), acr.into());
    }
    custom.insert("auth_time".into(), step.auth_time.into());
    let claims = Claims::new(custom)
        .issuer(&config.issuer)
        .subject(&session.sub)
        .audience(&resource.audience)
        .issued_at(now)
        .expires_at(exp)
        .jwt_id(&jti()?);
    let issued = Issued {
        client_id: actor.unwrap_or(&session.client_id),
        session_id: Some(&session.id),
        kind: Kind::StepUp,
        actor,
        jkt,
    };
    mint(keys, sealing, resource, STEP_UP_TYP, claims, &issued, now)
}

/// A federation token for a partner (a `nested` resource): the session's
/// attributes, of which only the partner's `release` list leaves, signed
/// and sealed to the partner, issued to `client_id` (the exchanging client,
/// named in `act`).
#[allow(clippy::too_many_arguments)]
pub fn federation_token(
    keys: &Snapshot,
    config: &Config,
    sealing: &SealingKeys,
    session: &SessionRecord,
    partner: &Resource,
    client_id: &str,
    jkt: Option<&str>,
    now: i64,
) -> Result<Minted, MintError> {
    let issued = Issued {
        client_id,
        session_id: Some(&session.id),
        kind: Kind::Federation,
        actor: Some(client_id),
        jkt,
    };
    for_session(
        keys,
        config,
        sealing,
        session,
        partner,
        FEDERATION_TYP,
        &issued,
        now,
    )
}
