//! Persistence. [`Store`] is what the service needs; [`SqlStore`] is its
//! one implementation ([`SqliteStore`], [`PostgresStore`]), on SQLite (the default: one file in the data
//! directory, WAL) or PostgreSQL (`database_url = "postgres://…"`, several
//! nodes sharing one state). Migrations are embedded, one set per database,
//! and applied at start-up. Every state change that must not be lost is one
//! transaction; what must happen once across nodes (a refresh token used, a
//! key rotated) is decided by the database, never in a node's memory.

use std::future::Future;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, ConnectOptions, Connection, Executor, Row};

mod group;
mod pg_batch;

/// A store failure. The message is for the operator's log; it never holds
/// a secret.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Database(sqlx::Error),
    /// SQLite's group commit failed (the database, or its writer thread).
    #[error("database: {0}")]
    Sqlite(String),
    /// A migration failed.
    #[error("database migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// Another writer changed the record first (the caller retries later).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// A stored value is not what this version understands.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The client a new session names was deleted meanwhile (by another
    /// node, or the CLI, while this one still held its record).
    #[error("the client was deleted")]
    ClientGone,
    /// The audit trail refuses the change's event (a wrong master key, or a
    /// trail altered): the change is not made.
    #[error("the audit trail refuses the change: {0}")]
    AuditRefused(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        SUSPECT_RELEASES.store(SUSPECT_CHECKS, Ordering::Relaxed);
        StoreError::Database(e)
    }
}

/// After a database error, this many SQLite connection releases look for a
/// transaction left open (see `after_release` in [`SqlStore::open_url`]).
static SUSPECT_RELEASES: AtomicU32 = AtomicU32::new(0);
/// Sixteen times the SQLite pool: every connection is checked several times.
const SUSPECT_CHECKS: u32 = 64;

/// A signing key's place in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published in the JWKS, not yet signing.
    Next,
    /// Signing.
    Current,
    /// No longer signing; published until every token it signed has expired.
    Retiring,
    /// Gone from the JWKS; its private part erased.
    Retired,
    /// Leaked: gone from the JWKS at once, its private part erased, never
    /// served again (`tessera keys compromised`).
    Compromised,
}

impl KeyState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Current => "current",
            KeyState::Retiring => "retiring",
            KeyState::Retired => "retired",
            KeyState::Compromised => "compromised",
        }
    }
}

impl FromStr for KeyState {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "next" => KeyState::Next,
            "current" => KeyState::Current,
            "retiring" => KeyState::Retiring,
            "retired" => KeyState::Retired,
            "compromised" => KeyState::Compromised,
            other => return Err(StoreError::Corrupt(format!("key state {other:?}"))),
        })
    }
}

/// A signing key as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// Key id (RFC 7638 thumbprint).
    pub kid: String,
    /// JWS algorithm name.
    pub alg: String,
    /// Lifecycle state.
    pub state: KeyState,
    /// The public JWK, as JSON.
    pub public_jwk: String,
    /// The private JWK, sealed with the master key; `None` once retired.
    pub sealed_private: Option<Vec<u8>>,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// When it starts (or started) signing.
    pub activates_at: i64,
    /// When it leaves the JWKS (set when it stops signing).
    pub retires_at: Option<i64>,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("state", &self.state)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .field("retires_at", &self.retires_at)
            .finish_non_exhaustive()
    }
}

/// A change of state, applied only if the key is still in `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTransition {
    /// The key.
    pub kid: String,
    /// The state it must be in.
    pub from: KeyState,
    /// The state it moves to.
    pub to: KeyState,
    /// New activation time, if it changes.
    pub activates_at: Option<i64>,
    /// New retirement time, if it changes.
    pub retires_at: Option<i64>,
}

/// An operator of the admin API. The bearer token is stored only as its
/// SHA-256 (it is 256 random bits: a fast hash is enough, and lookups by
/// hash need no secret comparison).
#[derive(Clone, PartialEq, Eq)]
pub struct AdminRecord {
    /// The admin id (`adm_…`).
    pub id: String,
    /// A name for humans.
    pub name: String,
    /// What it may do (`clients:read`, …, or `*`).
    pub scopes: Vec<String>,
    /// SHA-256 of the bearer token.
    pub token_hash: Vec<u8>,
    /// When it was created (Unix seconds).
    pub created_at: i64,
}

impl std::fmt::Debug for AdminRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// A registered client. The secret is stored only as an Argon2id hash.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// Client id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Argon2id PHC string of the secret.
    pub secret_hash: String,
    /// Grants it may use (`sessions`, `client_credentials`, `refresh_token`).
    pub grants: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Its public JWK Set, for `private_key_jwt` (RFC 7523), as JSON.
    pub jwks: Option<String>,
    /// What it may ask for.
    pub registration: Registration,
    /// Registered before audiences and scopes were: besides the audiences it
    /// had used (migrated into `registration.audiences`), the default rule
    /// applies to it, until its registration is updated.
    pub legacy: bool,
    /// After a secret roll with a grace period: the previous secret's
    /// Argon2id hash and until when (Unix seconds) it still works.
    pub previous_secret: Option<(String, i64)>,
    /// A public client (RFC 6749 §2.1; a mobile app): no secret, no JWKS.
    /// It names itself with `client_id` and may only refresh the sessions
    /// it holds, each time with a DPoP proof by the session's key.
    pub public: bool,
}

/// What a client may ask for, registered with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registration {
    /// The audiences it may ask tokens for; `None`: the default rule (the
    /// audiences declared as `jws` resources, or any audience when the
    /// configuration declares no resources at all).
    pub audiences: Option<Vec<String>>,
    /// The scopes it may ask for (none: a request naming a scope is refused).
    pub scopes: Vec<String>,
    /// Clients it trusts to exchange its sessions' tokens (RFC 8693
    /// delegation: the token names them in `act`).
    pub may_act: Vec<String>,
    /// Audiences whose tokens it may introspect (a resource server).
    pub introspect: Vec<String>,
    /// Every token issued to it is bound to a DPoP key (`--dpop required`).
    pub dpop_required: bool,
}

impl std::fmt::Debug for ClientRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("grants", &self.grants)
            .field("registration", &self.registration)
            .field("legacy", &self.legacy)
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// A session minted for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Session id (`sid`).
    pub id: String,
    /// The client that minted it.
    pub client_id: String,
    /// The user.
    pub sub: String,
    /// The user's organisation.
    pub org: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Authentication methods (RFC 8176).
    pub amr: Vec<String>,
    /// The resource its access tokens are for.
    pub audience: String,
    /// Custom claims (already through the claim guard), as a JSON object.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// The scope granted to it (RFC 6749 §3.3), within its client's.
    pub scope: Vec<String>,
    /// The assurance level its client reported when it authenticated the
    /// user, if any.
    pub acr: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// The DPoP key (RFC 7638 thumbprint) every token of the session is
    /// bound to, and that every refresh must prove (RFC 9449 §5, §10).
    pub dpop_jkt: Option<String>,
    /// The public client that refreshes it (its refresh tokens are that
    /// client's); `None`: the client that minted it.
    pub holder: Option<String>,
}

/// A refresh token as stored: its hash, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    /// SHA-256 of the token.
    pub hash: Vec<u8>,
    /// The family (one per session).
    pub family_id: String,
    /// The session.
    pub session_id: String,
    /// The client it is bound to.
    pub client_id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A refresh token about to be stored: its hash and lifetime. Which family,
/// session and client it belongs to is decided where it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefresh {
    /// SHA-256 of the token.
    pub hash: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

impl NewRefresh {
    /// The stored record, in a family of a session, bound to a client.
    pub fn record(&self, family_id: &str, session_id: &str, client_id: &str) -> RefreshRecord {
        RefreshRecord {
            hash: self.hash.clone(),
            family_id: family_id.to_owned(),
            session_id: session_id.to_owned(),
            client_id: client_id.to_owned(),
            created_at: self.created_at,
            expires_at: self.expires_at,
        }
    }
}

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Rotated: the old token is used up, the new one stored; the session.
    Rotated(Box<SessionRecord>),
    /// Unknown token, or bound to another client.
    Unknown,
    /// Expired, or its session expired or was revoked.
    Expired,
    /// The session is not one the client may refresh now (its registration
    /// changed, or the request asks for more than the session has): nothing
    /// changed, the token is still unused.
    Refused(Box<SessionRecord>),
    /// Already used: the whole family and the session are now revoked.
    Reused {
        /// The family.
        family_id: String,
        /// The session.
        session_id: String,
    },
}

/// What is kept of a sealed (`jwe`/`nested`) token, found by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedRecord {
    /// SHA-256 of the token as issued.
    pub hash: Vec<u8>,
    /// Its `jti`.
    pub jti: String,
    /// `access_token`, `step_up` or `federation`.
    pub kind: String,
    /// `jwe` or `nested`.
    pub format: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The session id, when the token carried it (`sid`); none for
    /// `client_credentials` and for a partner whose release list withholds it.
    pub session_id: Option<String>,
    /// SHA-256 of its session's id (whether or not the token carried it):
    /// ending the session revokes the token through it.
    pub session_ref: Option<Vec<u8>>,
    /// The subject.
    pub sub: String,
    /// The resource.
    pub audience: String,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// When it was revoked (RFC 7009), if it was.
    pub revoked_at: Option<i64>,
    /// The signing key's id (sealed tokens are signed, then sealed): a token
    /// of a compromised key is refused.
    pub kid: Option<String>,
    /// The DPoP key it is bound to (its `cnf.jkt`), if any.
    pub jkt: Option<String>,
}

/// A refresh token looked up by its hash (introspection, revocation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshStatus {
    /// The client it is bound to.
    pub client_id: String,
    /// Its session.
    pub session: SessionRecord,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Unused, unrevoked, unexpired, and its session alive, at the time asked.
    pub active: bool,
}

/// Which sessions an admin ends at once (`POST /admin/v1/revocations`,
/// `DELETE /admin/v1/sessions/{id}`). There is deliberately no "all".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// One session, whichever client minted it.
    Session(String),
    /// Every session of a user.
    Subject(String),
    /// Every session a client minted.
    Client(String),
    /// Every session created before this time (Unix seconds).
    IssuedBefore(i64),
}

/// A page of a session search: by user and/or client, in id order,
/// continuing after the id `after`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionQuery {
    /// Only this user's.
    pub sub: Option<String>,
    /// Only this client's.
    pub client_id: Option<String>,
    /// Ids greater than this one (the last of the previous page).
    pub after: Option<String>,
    /// At most this many.
    pub limit: u32,
}

/// What the service persists.
pub trait Store: Send + Sync + 'static {
    /// Every signing key, oldest first (by creation, then activation).
    fn signing_keys(&self) -> impl Future<Output = Result<Vec<KeyRecord>, StoreError>> + Send;

    /// In one transaction: the transitions (each only if the key is still in
    /// its `from` state, else the whole change is a [`StoreError::Conflict`]),
    /// then the new keys. Retired keys lose their private part.
    fn change_keys(
        &self,
        transitions: &[KeyTransition],
        new_keys: &[KeyRecord],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Registers a client.
    fn create_client(
        &self,
        client: &ClientRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Every client.
    fn clients(&self) -> impl Future<Output = Result<Vec<ClientRecord>, StoreError>> + Send;
    /// One client.
    fn client(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Arc<ClientRecord>>, StoreError>> + Send;
    /// Records a client assertion's `jti` as used until `expires_at`; false if
    /// it was used before (RFC 7523 §3, item 7). Forgets expired ones.
    fn use_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Replaces what a client may ask for (and ends its legacy status);
    /// false if there is no such client.
    fn update_registration(
        &self,
        id: &str,
        registration: &Registration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Deletes a client, its sessions and refresh tokens; false if there was none.
    fn delete_client(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// In one transaction: a new session and its first refresh token.
    fn create_session(
        &self,
        session: &SessionRecord,
        refresh: &RefreshRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// One session.
    fn session(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<SessionRecord>, StoreError>> + Send;
    /// Revokes a session and every refresh token of it; false if unknown or
    /// not the client's.
    fn revoke_session(
        &self,
        id: &str,
        client_id: &str,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The refresh token hashed `hash`, as of `now`.
    fn refresh_status(
        &self,
        hash: &[u8],
        now: i64,
    ) -> impl Future<Output = Result<Option<RefreshStatus>, StoreError>> + Send;
    /// In one transaction: uses up the refresh token hashed `hash` for
    /// `client_id` and stores `next` in its family, if `accept` takes the
    /// session (else [`RefreshOutcome::Refused`], nothing changed); or, if
    /// it was used before, revokes the family and the session.
    fn rotate_refresh(
        &self,
        hash: &[u8],
        client_id: &str,
        next: &NewRefresh,
        accept: &(dyn Fn(&SessionRecord) -> bool + Sync),
        now: i64,
    ) -> impl Future<Output = Result<RefreshOutcome, StoreError>> + Send;

    /// Records a sealed token as issued, and forgets those expired by `now`;
    /// with `event` (a step-up assertion, a token exchange), appends it to
    /// the audit trail with the token named by its HMAC.
    fn record_sealed(
        &self,
        token: &SealedRecord,
        now: i64,
        event: Option<&Event>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The sealed token hashed `hash`, if tessera issued it (expired or not).
    fn sealed(
        &self,
        hash: &[u8],
    ) -> impl Future<Output = Result<Option<SealedRecord>, StoreError>> + Send;
    /// Revokes the sealed token hashed `hash` if it was issued to
    /// `client_id`; false if unknown or not the client's.
    fn revoke_sealed(
        &self,
        hash: &[u8],
        client_id: &str,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Denies a session-less token (`client_credentials`) by its `jti` until
    /// `expires_at`, and forgets denials expired by `now`.
    fn revoke_jti(
        &self,
        jti: &str,
        client_id: &str,
        expires_at: i64,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The `jti`s denied since `since` (by the revoking node's clock) and
    /// not yet expired at `now`, with their expiry.
    fn revoked_jtis(
        &self,
        since: i64,
        now: i64,
    ) -> impl Future<Output = Result<Vec<(String, i64)>, StoreError>> + Send;

    /// Gives a client a new secret (its Argon2id hash). With `grace_until`,
    /// the current secret keeps working until then; without, it stops at
    /// once (as does any earlier one). False if there is no such client.
    fn roll_client_secret(
        &self,
        id: &str,
        new_hash: &str,
        grace_until: Option<i64>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// A page of sessions, live or not, in id order.
    fn search_sessions(
        &self,
        query: &SessionQuery,
    ) -> impl Future<Output = Result<Vec<SessionRecord>, StoreError>> + Send;
    /// In one transaction: revokes the live sessions `which` names, every
    /// refresh token of theirs and the sealed tokens issued for them.
    /// Returns how many sessions it revoked.
    fn revoke_sessions(
        &self,
        which: &Revocation,
        now: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Registers an admin.
    fn create_admin(
        &self,
        admin: &AdminRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Every admin, oldest first.
    fn admins(&self) -> impl Future<Output = Result<Vec<AdminRecord>, StoreError>> + Send;
    /// The admin whose token has this SHA-256, if any.
    fn admin_by_token_hash(
        &self,
        hash: &[u8],
    ) -> impl Future<Output = Result<Option<AdminRecord>, StoreError>> + Send;
    /// Deletes an admin; false if there was none. Its token stops working at once.
    fn delete_admin(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Up to `limit` audit events (at most [`crate::audit::MAX_PAGE`]) with
    /// a seq above `after`, in seq order.
    fn audit_events(
        &self,
        after: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<crate::audit::AuditRecord>, StoreError>> + Send;
    /// The audit chain's head.
    fn audit_head(
        &self,
    ) -> impl Future<Output = Result<crate::audit::AuditHead, StoreError>> + Send;
    /// The keys the audit trail is chained and sealed with (to verify it).
    fn audit_keys(&self) -> &crate::audit::AuditKeys;
    /// Which database: `"sqlite"` or `"postgresql"`.
    fn kind(&self) -> &'static str;
    /// How many sessions are live at `now` (neither revoked nor expired).
    fn count_live_sessions(&self, now: i64)
        -> impl Future<Output = Result<i64, StoreError>> + Send;
    /// Records that node `node` is alive at `now` (and forgets the nodes
    /// silent for [`NODE_FORGOTTEN_AFTER`]).
    fn node_alive(
        &self,
        node: &NodeRecord,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The nodes seen alive at or after `since`, most recent first (at
    /// most 100).
    fn nodes_seen(
        &self,
        since: i64,
    ) -> impl Future<Output = Result<Vec<NodeRecord>, StoreError>> + Send;
    /// In one transaction: deletes the oldest audit events (at most
    /// [`crate::audit::PRUNE_BATCH`]), up to the first
    /// at or after `before_time`, once they verify, and anchors the chain's
    /// head on the last deleted one. Returns how many it deleted.
    fn prune_audit(&self, before_time: i64)
        -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Appends `events` by `actor` on their own (a refusal worth keeping:
    /// nothing else changed), in one transaction.
    fn append_audit(
        &self,
        events: &[Event],
        actor: Actor,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// An audit reference to a secret known by its SHA-256 (its HMAC under
    /// the trail's secrets key: see [`crate::audit`]).
    fn secret_ref(&self, sha256: &[u8]) -> String;

    /// Announces a write the caller will make once it has done the work
    /// before it (signing its tokens): a new session, a sealed token's
    /// record. Announce only once the request was accepted, make that write
    /// inside [`WriteAhead::until_queued`], and await no other write of the
    /// store meanwhile: the announcement ends once the write is queued, or
    /// when the guard is dropped (the request gave up). While writes are
    /// announced, SQLite's group commit lets a small batch — whatever its
    /// writes — wait for them, briefly ([`SqlStore::gather_writes_for`]), to
    /// share its fsync; with none announced, a lone write commits at once.
    fn write_ahead(&self) -> WriteAhead {
        WriteAhead::none()
    }

    /// Records a DPoP proof by its replay key
    /// ([`tessera_verify::dpop::replay_key`]) until `expires_at`: `true` if
    /// it was not recorded (or its record had expired by `now`), `false` if
    /// it was — in one statement, so that of two uses on any nodes exactly
    /// one is first.
    fn dpop_first_use(
        &self,
        key: &[u8],
        expires_at: i64,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Deletes the DPoP proof records expired by `now`; returns how many.
    fn prune_dpop_proofs(&self, now: i64) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

fn json_list(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn session_from_row(r: &AnyRow) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        id: r.try_get("id")?,
        client_id: r.try_get("client_id")?,
        sub: r.try_get("sub")?,
        org: r.try_get("org")?,
        roles: json_list(&r.try_get::<String, _>("roles")?)?,
        amr: json_list(&r.try_get::<String, _>("amr")?)?,
        audience: r.try_get("audience")?,
        claims: serde_json::from_str(&r.try_get::<String, _>("claims")?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        scope: r
            .try_get::<String, _>("scope")?
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        acr: r.try_get("acr")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        dpop_jkt: r.try_get("dpop_jkt")?,
        holder: r.try_get("holder")?,
    })
}

const SESSION_COLUMNS: &str = "id, client_id, sub, org, roles, amr, audience, claims, scope, acr, \
     created_at, expires_at, revoked_at, dpop_jkt, holder";

const CLIENT_COLUMNS: &str =
    "id, name, secret_hash, grants, created_at, jwks, audiences, scopes, may_act, introspect, legacy, \
     previous_secret_hash, previous_secret_until, is_public, dpop_required";

use crate::audit::{Actor, Event};

/// Counts committed audit events (`tessera_audit_events_total{action}`).
fn counted(events: &[Event]) {
    counted_refs(events.iter());
}

fn counted_refs<'a>(events: impl Iterator<Item = &'a Event>) {
    for e in events {
        crate::metrics::AUDIT_EVENTS.inc(&[&e.action]);
    }
}

/// What a client's audit events say of it: never its secret or hash.
fn client_details(c: &ClientRecord) -> serde_json::Value {
    let r = &c.registration;
    serde_json::json!({
        "name": c.name, "grants": c.grants,
        "auth": client_auth(c),
        "audiences": r.audiences, "scopes": r.scopes,
        "may_act": r.may_act, "introspect": r.introspect,
        "dpop": if r.dpop_required { "required" } else { "optional" },
    })
}

/// How a client authenticates: `none` (public), `private_key_jwt`, `secret`.
pub fn client_auth(c: &ClientRecord) -> &'static str {
    if c.public {
        "none"
    } else if c.jwks.is_some() {
        "private_key_jwt"
    } else {
        "secret"
    }
}

/// The time an audit event records: the wall clock, whatever time the
/// caller reasons with (tests and maintenance pass other times).
fn wall_clock() -> i64 {
    use tessera_jose::jwt::Clock;
    tessera_jose::jwt::SystemClock.now()
}

/// What a key's change of state is called in the audit trail.
fn key_action(t: &KeyTransition) -> &'static str {
    match (t.from, t.to) {
        (_, KeyState::Compromised) => "key.compromised",
        (KeyState::Next, KeyState::Current) => "key.promoted",
        (_, KeyState::Retiring) => "key.retiring",
        (_, KeyState::Retired) => "key.retired",
        (KeyState::Next, KeyState::Next) => "keys.rotation_requested",
        _ => "key.changed",
    }
}

/// The reference under which a session's sealed tokens are kept.
pub fn session_ref(session_id: &str) -> Vec<u8> {
    crate::crypto::sha256(session_id.as_bytes())
}

/// Which database a [`SqlStore`] speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite: one node.
    Sqlite,
    /// PostgreSQL: one or several nodes.
    Postgres,
}

/// The store, on SQLite or PostgreSQL (through sqlx's `Any` driver, so one
/// implementation serves both).
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    clients: std::sync::Arc<ClientCache>,
    /// The audit trail's keys ([`SqlStore::with_audit_keys`]).
    audit: Arc<crate::audit::AuditKeys>,
    /// The audit head this store last wrote (SQLite; checked before use).
    audit_head: Arc<crate::audit::HeadCache>,
    /// Whose turn it is to write (SQLite).
    write_gate: WriteGate,
    /// DPoP proofs recorded together (one transaction per batch).
    replay: Arc<ReplayBatcher>,
    /// SQLite: the group commit of the writes requests wait on (sessions,
    /// refresh rotations, sealed tokens), and the file it writes to.
    group: Option<(group::GroupCommit, std::path::PathBuf)>,
    /// PostgreSQL: the same writes, batched per node ([`pg_batch`]).
    pg_batches: Arc<pg_batch::PgBatcher>,
    /// PostgreSQL: the refresh path's reads, batched likewise.
    pg_reads: Arc<pg_batch::PgReads>,
    /// PostgreSQL: the thread the write batches run on.
    pg_writer: Option<Arc<pg_batch::PgWriter>>,
    /// What the group commit did ([`SqlStore::group_commits`]).
    grouped: Arc<GroupStats>,
    /// How long SQLite's group commit waits for announced writes, at most.
    gather: std::time::Duration,
}

/// A write announced by [`Store::write_ahead`], until dropped.
#[derive(Debug, Default)]
#[must_use = "the announcement ends when the guard is dropped"]
pub struct WriteAhead(Option<group::Announced>);

impl WriteAhead {
    /// An announcement no writer listens to.
    pub fn none() -> Self {
        WriteAhead(None)
    }

    /// Runs `write`, which makes the announced write; the announcement
    /// ends as soon as that write is queued (the batch waiting for it can
    /// go), or when `write` ends without queuing one.
    pub async fn until_queued<F: Future>(self, write: F) -> F::Output {
        match self.0 {
            Some(announced) => announced.until_queued(write).await,
            None => write.await,
        }
    }
}

/// Transactions committed by the group commit, and the writes they carried.
#[derive(Debug, Default)]
pub(crate) struct GroupStats {
    commits: AtomicU64,
    writes: AtomicU64,
    retried_alone: AtomicU64,
}

impl GroupStats {
    /// One transaction committed, carrying `writes` writes.
    pub(crate) fn committed(&self, writes: usize) {
        let writes = u64::try_from(writes).unwrap_or(u64::MAX);
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(writes, Ordering::Relaxed);
        crate::metrics::STORE_GROUP_COMMITS.inc();
        crate::metrics::STORE_GROUP_WRITES.add(writes);
    }

    /// `writes` writes of a refused batch are tried one at a time.
    pub(crate) fn retried_alone(&self, writes: usize) {
        let writes = u64::try_from(writes).unwrap_or(u64::MAX);
        self.retried_alone.fetch_add(writes, Ordering::Relaxed);
        crate::metrics::STORE_GROUP_RETRIED_ALONE.add(writes);
    }
}

/// A DPoP proof to record: its replay key, until when, and the time of the
/// request.
type ReplayEntry = (Vec<u8>, i64, i64);
/// Proofs recorded in one statement: at most this many.
const REPLAY_BATCH: usize = 256;
type ReplayBatcher = crate::batch::Batcher<ReplayEntry, Result<bool, String>>;

/// Client records read lately, kept for a short time so that a busy
/// client's every request does not read its record again (off unless
/// [`SqlStore::cache_clients`] turns it on). What this store creates or
/// deletes is dropped at once; a change made elsewhere (another node, the
/// CLI) is seen within the cache time. Unknown ids are never kept, so
/// guessing ids neither fills it nor hides a client created meanwhile.
struct ClientCache {
    keep_for: std::time::Duration,
    state: std::sync::Mutex<CachedClients>,
}

#[derive(Default)]
struct CachedClients {
    records: std::collections::HashMap<String, (Arc<ClientRecord>, std::time::Instant)>,
    /// Counts the records forgotten: a read that began before a deletion
    /// must not keep what it read.
    forgotten: u64,
}

/// At most this many records are kept; beyond it the stale ones go, and if
/// none is stale, all.
const CLIENT_CACHE_MAX: usize = 4096;

impl std::fmt::Debug for ClientCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCache")
            .field("keep_for", &self.keep_for)
            .finish_non_exhaustive()
    }
}

/// What a read of a client record started from: when, and how many records
/// had been forgotten by then.
#[derive(Clone, Copy)]
struct ReadStart {
    at: std::time::Instant,
    forgotten: u64,
}

impl ClientCache {
    fn new(keep_for: std::time::Duration) -> Self {
        ClientCache {
            keep_for,
            state: std::sync::Mutex::new(CachedClients::default()),
        }
    }

    /// The record of `id` if one fresh enough is kept, else where a read
    /// of it starts from.
    fn get(&self, id: &str) -> Result<Arc<ClientRecord>, Option<ReadStart>> {
        if self.keep_for.is_zero() {
            return Err(None);
        }
        let state = self.state.lock().map_err(|_| None)?;
        match state.records.get(id) {
            Some((c, at)) if at.elapsed() < self.keep_for => Ok(c.clone()),
            _ => Err(Some(ReadStart {
                at: std::time::Instant::now(),
                forgotten: state.forgotten,
            })),
        }
    }

    /// Keeps `client`, read from `start` (whose time it keeps, so that its
    /// age is never understated), unless a record was forgotten meanwhile.
    fn put(&self, client: &Arc<ClientRecord>, start: ReadStart) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state.forgotten != start.forgotten {
            return;
        }
        let records = &mut state.records;
        if records.len() >= CLIENT_CACHE_MAX && !records.contains_key(&client.id) {
            records.retain(|_, (_, at)| at.elapsed() < self.keep_for);
            if records.len() >= CLIENT_CACHE_MAX {
                records.clear();
            }
        }
        records.insert(client.id.clone(), (client.clone(), start.at));
    }

    fn forget(&self, id: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.records.remove(id);
            state.forgotten = state.forgotten.wrapping_add(1);
        }
    }
}

/// A connection for one write transaction: on PostgreSQL one from the
/// pool, on SQLite the store's own writer ([`WriteGate`]). It is used again
/// only if the transaction ended as planned ([`Conn::finished`] after its
/// commit or rollback); otherwise it is closed (the writer: replaced before
/// the next transaction). After a failed `COMMIT` or `ROLLBACK` sqlx's count
/// of the transactions open on a connection can differ from the database's
/// (SQLite may roll a transaction back by itself on `SQLITE_FULL` while
/// sqlx, whose commit failed, still counts it open): the next `BEGIN` on it
/// becomes a `SAVEPOINT`, and a "commit" may then commit nothing. The
/// load-and-faults test lost acknowledged refreshes after a full disk while
/// a background task opened a write transaction every second (issue 25's
/// audit pruning, before it read first); with failed transactions'
/// connections closed, it did not. A connection in doubt is never reused.
pub(crate) struct Conn {
    inner: Inner,
    finished: bool,
}

enum Inner {
    Pooled(sqlx::pool::PoolConnection<sqlx::Any>),
    /// The writer, this task's while it holds the guard.
    Writer(tokio::sync::OwnedMutexGuard<Writer>),
}

/// How long a write waits for its turn (SQLite): as long as a pool
/// acquisition may wait.
const WRITER_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Conn {
    /// The connection for a write transaction: the writer once `gate` gives
    /// this task its turn (SQLite), or one from `pool` (PostgreSQL).
    pub(crate) async fn acquire(pool: &AnyPool, gate: &WriteGate) -> Result<Conn, StoreError> {
        let inner = match &gate.0 {
            Some(writer) => {
                let mut turn = tokio::time::timeout(WRITER_WAIT, writer.clone().lock_owned())
                    .await
                    .map_err(|_| StoreError::Database(sqlx::Error::PoolTimedOut))?;
                if turn.conn.is_none() {
                    // The last one was closed (a transaction that did not
                    // end as planned, or the store closed): a new one.
                    turn.conn = Some(pool.acquire().await?.detach());
                }
                Inner::Writer(turn)
            }
            None => Inner::Pooled(pool.acquire().await?),
        };
        Ok(Conn {
            inner,
            finished: false,
        })
    }

    /// The connection.
    pub(crate) fn get(&mut self) -> Result<&mut sqlx::AnyConnection, StoreError> {
        match &mut self.inner {
            Inner::Pooled(c) => Ok(c),
            Inner::Writer(w) => w
                .conn
                .as_mut()
                .ok_or_else(|| StoreError::Corrupt("the store's writer is closed".into())),
        }
    }

    /// The transaction on it was committed or rolled back without error:
    /// the connection may be used again.
    pub(crate) fn finished(&mut self) {
        self.finished = true;
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if !self.finished {
            match &mut self.inner {
                Inner::Pooled(c) => c.close_on_drop(),
                // Closed now, before the next writer's turn: SQLite rolls
                // back what it had open and releases its lock — also when
                // the task was cancelled in the middle of a one-call write.
                Inner::Writer(w) => w.conn = None,
            }
        }
    }
}

/// SQLite takes one write transaction at a time; the others get
/// `SQLITE_BUSY`, and its busy handler retries them after sleeps of 1, 2,
/// 5, 10… ms, each holding one of the pool's few connections meanwhile. A
/// store's write transactions therefore queue here, in order, for one
/// connection kept for writing (outside the pool, whose connections serve
/// the reads): each starts as soon as the one before it ended, with no
/// sleep, no connection held idle and no trip through the pool between
/// them. Writers in other processes (the CLI) still meet the busy handler.
/// On PostgreSQL there is no gate: its row locks let unrelated writes run
/// together.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteGate(Option<Arc<tokio::sync::Mutex<Writer>>>);

/// SQLite's writer connection: `None` once closed, opened again on the
/// next write.
#[derive(Debug)]
pub(crate) struct Writer {
    conn: Option<sqlx::AnyConnection>,
}

impl WriteGate {
    /// One writer at a time on `conn` (SQLite).
    fn one_at_a_time(conn: sqlx::AnyConnection) -> WriteGate {
        WriteGate(Some(Arc::new(tokio::sync::Mutex::new(Writer {
            conn: Some(conn),
        }))))
    }

    /// This thread's turn to write (the group commit's thread, outside
    /// Tokio), waited for at most as long as any write waits for its turn
    /// ([`WRITER_WAIT`]): `Err` if it did not come, `Ok(None)` without a
    /// gate. Polled every millisecond: the gate is only ever held by this
    /// process's other, rarer writes (key changes, revocations, pruning).
    pub(crate) fn blocking_turn(
        &self,
    ) -> Result<Option<tokio::sync::MutexGuard<'_, Writer>>, StoreError> {
        let Some(writer) = &self.0 else {
            return Ok(None);
        };
        let started = std::time::Instant::now();
        loop {
            if let Ok(turn) = writer.try_lock() {
                return Ok(Some(turn));
            }
            if started.elapsed() > WRITER_WAIT {
                return Err(StoreError::Sqlite(
                    "the store's other writer held its turn too long".into(),
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Closes the writer (its last transaction ended), waiting for SQLite
    /// to close the file; a later write opens it again.
    async fn close(&self) {
        if let Some(writer) = &self.0 {
            let conn = writer.lock().await.conn.take();
            if let Some(conn) = conn {
                if let Err(e) = sqlx::Connection::close(conn).await {
                    tracing::warn!(error = %e, "closing the store's writer");
                }
            }
        }
    }
}

/// The store on PostgreSQL ([`SqlStore::open_url`] with a `postgres://`
/// URL): several nodes sharing one state.
pub type PostgresStore = SqlStore;
/// The store on SQLite (the default: [`SqlStore::open_file`]).
pub type SqliteStore = SqlStore;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The key under which PostgreSQL nodes take turns changing signing keys
/// (`pg_advisory_xact_lock`): "tessera keys".
const KEY_ROTATION_LOCK: i64 = 0x7465_7373_6b65_7973;

/// Sessions per statement of a mass revocation (SQLite allows 32,766
/// parameters; PostgreSQL 65,535).
const REVOKE_CHUNK: usize = 500;

/// The PostgreSQL `NOTIFY` channel on which a change of signing keys is
/// announced to every node.
pub const KEYS_CHANNEL: &str = "tessera_keys";

impl SqlStore {
    /// Opens (creating if needed) the SQLite database file at `path` and
    /// applies the migrations.
    pub async fn open_file(path: &Path) -> Result<Self, StoreError> {
        let url = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .to_url_lossy();
        Self::open_url(url.as_str()).await
    }

    /// Opens a `sqlite:` or `postgres://` (`postgresql://`) URL and applies
    /// the migrations. SQLite files are created if missing.
    pub async fn open_url(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::Corrupt(
                "database_url must be sqlite:… or postgres://…".into(),
            ));
        };
        // The database file the group commit writes to (SQLite, not in
        // memory: its thread opens a connection of its own).
        let mut file = None;
        let url = match backend {
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)?.create_if_missing(true);
                let name = options.get_filename();
                if !name.as_os_str().is_empty()
                    && name.as_os_str() != ":memory:"
                    && !url.contains("mode=memory")
                {
                    file = Some(name.to_path_buf());
                }
                options.to_url_lossy().to_string()
            }
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
        let pg_writer = match backend {
            Backend::Postgres => Some(Arc::new(pg_batch::PgWriter::start(options.clone()).await?)),
            Backend::Sqlite => None,
        };
        let pool = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(4)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    // A write that failed half-way (the disk full, an I/O
                    // error) can leave a transaction open on the connection,
                    // holding SQLite's write lock: every other writer would
                    // then wait and fail for good. A ROLLBACK that succeeds
                    // here found such a transaction: the connection is
                    // dropped rather than reused. (With none open, SQLite
                    // refuses the ROLLBACK: the normal case.) Only after a
                    // database error: on every release the check cost a
                    // fifth of a token's CPU. Should a stuck connection slip
                    // back before the error is counted, the next write fails
                    // (its BEGIN on that connection, or any other write,
                    // blocked by its lock), and that error has it checked.
                    .after_release(|conn, _| {
                        Box::pin(async move {
                            let suspect = SUSPECT_RELEASES
                                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                                    n.checked_sub(1)
                                })
                                .is_ok();
                            if suspect && conn.execute("ROLLBACK").await.is_ok() {
                                tracing::warn!(
                                    "a store connection was left in a transaction; dropped it"
                                );
                                return Ok(false);
                            }
                            Ok(true)
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(std::time::Duration::from_secs(10))
                    .connect_with(options)
                    .await?
            }
        };
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        let write_gate = match backend {
            Backend::Sqlite => WriteGate::one_at_a_time(pool.acquire().await?.detach()),
            Backend::Postgres => WriteGate::default(),
        };
        let store = SqlStore {
            pool,
            backend,
            clients: std::sync::Arc::new(ClientCache::new(std::time::Duration::ZERO)),
            audit: Arc::new(
                crate::audit::AuditKeys::ephemeral()
                    .map_err(|_| StoreError::Corrupt("no randomness for the audit keys".into()))?,
            ),
            audit_head: Arc::new(crate::audit::HeadCache::default()),
            write_gate,
            replay: Arc::new(crate::batch::Batcher::new(REPLAY_BATCH)),
            group: None,
            pg_batches: Arc::new(crate::batch::Batcher::concurrent(pg_batch::MAX_BATCH, 1)),
            pg_reads: Arc::new(crate::batch::Batcher::concurrent(
                pg_batch::MAX_BATCH,
                pg_batch::AT_ONCE,
            )),
            grouped: Arc::new(GroupStats::default()),
            gather: group::GATHER_FOR,
            pg_writer,
        };
        Ok(match file {
            Some(path) => store.with_group_commit(path)?,
            None => store,
        })
    }

    /// Starts (again) the group commit's thread on `path`, with this
    /// store's audit keys; the previous thread, if any, ends once its
    /// queued writes are done.
    fn with_group_commit(mut self, path: std::path::PathBuf) -> Result<Self, StoreError> {
        let group = group::GroupCommit::start(
            path.clone(),
            self.write_gate.clone(),
            self.audit.clone(),
            self.audit_head.clone(),
            self.grouped.clone(),
            self.gather,
        )
        .map_err(|e| StoreError::Sqlite(format!("starting the writer thread: {e}")))?;
        self.group = Some((group, path));
        Ok(self)
    }

    /// Uses the audit keys derived from the deployment's master key
    /// ([`crate::audit::AuditKeys::from_master`]). Until then the store has
    /// random ones, which only suit a store used once (tests): every process
    /// writing to the same database must use the master key's.
    #[must_use]
    pub fn with_audit_keys(mut self, keys: crate::audit::AuditKeys) -> Self {
        self.audit = Arc::new(keys);
        match self.group.take() {
            // The group commit chains events with the new keys.
            Some((_, path)) => match self.clone().with_group_commit(path.clone()) {
                Ok(store) => store,
                Err(e) => {
                    // No thread for it: those writes take sqlx's writer.
                    tracing::warn!(error = %e, "no group commit for the store");
                    self
                }
            },
            None => self,
        }
    }

    /// The audit trail's keys.
    pub fn audit_keys(&self) -> &crate::audit::AuditKeys {
        &self.audit
    }

    /// Keeps each client record read for up to `keep_for` (zero: reads it
    /// every time, the default). A client deleted by another process (the
    /// CLI, another node) is then still accepted by this one for up to that
    /// long; one deleted through this store is forgotten at once.
    #[must_use]
    pub fn cache_clients(mut self, keep_for: std::time::Duration) -> Self {
        self.clients = std::sync::Arc::new(ClientCache::new(keep_for));
        self
    }

    /// How long a small batch of SQLite's group commit waits, at most, for
    /// the writes requests announced ([`Store::write_ahead`]) — 10 ms
    /// unless set; zero: never; at most a minute. A batch of 32 writes or
    /// more, or any batch while no announced write is outstanding, is
    /// written at once.
    #[must_use]
    pub fn gather_writes_for(mut self, window: std::time::Duration) -> Self {
        self.gather = window;
        if let Some((group, _)) = &self.group {
            group.gather_for(window);
        }
        self
    }

    /// The group commit so far: transactions committed, and the writes
    /// (sessions, refresh rotations, sealed-token records) they carried —
    /// more writes than transactions means fsyncs were shared. Also
    /// exported as `tessera_store_group_commits_total` and
    /// `tessera_store_group_writes_total`.
    pub fn group_commits(&self) -> (u64, u64) {
        (
            self.grouped.commits.load(Ordering::Relaxed),
            self.grouped.writes.load(Ordering::Relaxed),
        )
    }

    /// Writes tried again one at a time after the database refused their
    /// batch (PostgreSQL; also `tessera_store_group_retried_alone_total`).
    /// A batch whose connection broke midway, or could not be had, is not
    /// split (each write alone would meet the same failure): the first is
    /// tried once more as a whole, the second fails together.
    pub fn group_retried_alone(&self) -> u64 {
        self.grouped.retried_alone.load(Ordering::Relaxed)
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes the pool (on shutdown).
    pub async fn close(&self) {
        if let Some((group, _)) = &self.group {
            group.close().await;
        }
        if let Some(writer) = &self.pg_writer {
            writer.close().await;
        }
        self.write_gate.close().await;
        self.pool.close().await;
    }

    /// The statement for this database: the queries are written with
    /// SQLite's numbered `?N` parameters, PostgreSQL's are `$N`.
    fn sql(&self, query: &str) -> String {
        match self.backend {
            Backend::Sqlite => query.to_owned(),
            Backend::Postgres => query.replace('?', "$"),
        }
    }

    /// Appends `event` to the audit trail inside `tx`: the transaction's last
    /// statement before its commit (no change without its event, and an
    /// event that cannot be written fails the change). `actor` stands in
    /// when the task's [`crate::audit::Context`] names none.
    async fn audit(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        event: &Event,
        actor: Actor,
    ) -> Result<(), StoreError> {
        crate::audit::append_after_writes(
            tx,
            self.backend,
            &self.audit,
            event,
            actor,
            wall_clock(),
            &self.audit_head,
        )
        .await
        .map(|_| ())
    }

    /// Appends `events` to the audit trail as the transaction's last
    /// statements (by `actor` where the task's [`crate::audit::Context`]
    /// names none) and commits it: no change without its events. They are
    /// counted once committed.
    async fn commit_audited(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Any>,
        events: &[Event],
        actor: Actor,
    ) -> Result<(), StoreError> {
        for e in events {
            self.audit(&mut tx, e, actor.clone()).await?;
        }
        tx.commit().await?;
        counted(events);
        Ok(())
    }

    /// A secret (a token, by its SHA-256) as audit events name it.
    fn secret(&self, sha256: &[u8]) -> String {
        crate::audit::secret_ref(&self.audit, sha256)
    }

    /// Revokes the sealed tokens of a session (in the caller's transaction).
    async fn revoke_sealed_of_session(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        session_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(&self.sql(
            "UPDATE sealed_tokens SET revoked_at = COALESCE(revoked_at, ?1) WHERE session_ref = ?2",
        ))
        .bind(now)
        .bind(session_ref(session_id))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// On SQLite, the common case of [`Store::rotate_refresh`]: the token
    /// and its session read first (no lock), and if the token is unused and
    /// live and the session live and accepted, the token used up and its
    /// successor written from BEGIN to COMMIT in one call to the
    /// connection's thread, both on the condition that nothing changed
    /// meanwhile. `None` in every other case, with nothing written: the
    /// caller then decides under the write lock (reuse, expiry, refusal).
    async fn rotate_refresh_at_once(
        &self,
        hash: &[u8],
        client_id: &str,
        next: &NewRefresh,
        accept: &(dyn Fn(&SessionRecord) -> bool + Sync),
        now: i64,
    ) -> Result<Option<SessionRecord>, StoreError> {
        // Written once: the refresh path's read, its session's columns named
        // from the join.
        static READ: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let read = READ.get_or_init(|| {
            let columns = SESSION_COLUMNS
                .split(", ")
                .map(|c| format!("s.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "SELECT r.family_id AS token_family, r.used_at AS token_used_at, \
                 r.revoked_at AS token_revoked_at, r.expires_at AS token_expires_at, {columns} \
                 FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id \
                 WHERE r.hash = ?1 AND r.client_id = ?2"
            )
        });
        let row = match (&self.group, self.backend) {
            (Some((group, _)), _) => group.read_refresh(hash, client_id).await?,
            (None, Backend::Postgres) => self.pg_read_refresh(hash, client_id).await?,
            // SQLite without its writer thread (an in-memory database).
            (None, Backend::Sqlite) => {
                let row = sqlx::query(read)
                    .bind(hash)
                    .bind(client_id)
                    .fetch_optional(&self.pool)
                    .await?;
                match row {
                    None => None,
                    Some(row) => Some(group::RefreshRow {
                        family_id: row.try_get("token_family")?,
                        used: row.try_get::<Option<i64>, _>("token_used_at")?.is_some(),
                        revoked: row.try_get::<Option<i64>, _>("token_revoked_at")?.is_some(),
                        expires_at: row.try_get("token_expires_at")?,
                        session: session_from_row(&row)?,
                    }),
                }
            }
        };
        let Some(group::RefreshRow {
            family_id,
            used,
            revoked,
            expires_at,
            session,
        }) = row
        else {
            return Ok(None);
        };
        if used
            || revoked
            || expires_at <= now
            || session.revoked_at.is_some()
            || session.expires_at <= now
            || !accept(&session)
        {
            return Ok(None);
        }
        let successor = next.record(&family_id, &session.id, client_id);
        if self.group.is_some() || self.backend == Backend::Postgres {
            let write = group::Write::Rotate {
                hash: hash.to_vec(),
                client_id: client_id.to_owned(),
                session_id: session.id.clone(),
                successor,
                now,
            };
            let actor = Actor::client(client_id);
            let written = match &self.group {
                Some((group, _)) => group.write(write, actor).await?,
                None => self.pg_write(write, actor).await?,
            };
            return Ok(match written {
                group::Written::Done => Some(session),
                // Used, revoked or expired since it was read: decided
                // again under the lock.
                group::Written::Unchanged => None,
            });
        }
        let mut conn = Conn::acquire(&self.pool, &self.write_gate).await?;
        let written = sqlx::query(
            "BEGIN IMMEDIATE; \
             UPDATE refresh_tokens SET used_at = ? WHERE hash = ? AND client_id = ? \
               AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ? \
               AND EXISTS (SELECT 1 FROM sessions WHERE id = ? AND revoked_at IS NULL \
                 AND expires_at > ?); \
             INSERT INTO refresh_tokens (hash, family_id, session_id, client_id, created_at, \
               expires_at) SELECT ?, ?, ?, ?, ?, ? WHERE changes() = 1 RETURNING 1; \
             COMMIT",
        )
        .bind(now)
        .bind(hash)
        .bind(client_id)
        .bind(now)
        .bind(&session.id)
        .bind(now)
        .bind(&successor.hash)
        .bind(&successor.family_id)
        .bind(&successor.session_id)
        .bind(&successor.client_id)
        .bind(successor.created_at)
        .bind(successor.expires_at)
        // All of it: every statement runs, up to the COMMIT. (The successor's
        // row returned says it was written: a multi-statement query's
        // "rows affected" also counts BEGIN and COMMIT, as whatever the
        // connection's last change was.)
        .fetch_all(conn.get()?)
        .await;
        let outcome = match written {
            Ok(rows) => {
                conn.finished();
                // No row: used, revoked or expired since it was read;
                // nothing was written, and it is decided again under the
                // lock.
                Ok((!rows.is_empty()).then_some(session))
            }
            Err(e) => {
                // Left open unless the COMMIT failed; a ROLLBACK that fails
                // leaves the connection in doubt, and it is closed (Conn).
                if sqlx::query("ROLLBACK").execute(conn.get()?).await.is_ok() {
                    conn.finished();
                }
                Err(e.into())
            }
        };
        drop(conn);
        outcome
    }

    /// Records a batch of DPoP proofs in one statement: for each, whether
    /// it was first (inserted, or an expired record of it taken over). A
    /// key repeated in the batch is first once, at its first place. Expiry
    /// is judged at the earliest request time of the batch (never later
    /// than any one request's).
    async fn record_proofs(&self, batch: Vec<ReplayEntry>) -> Vec<Result<bool, String>> {
        let mut seen = std::collections::HashSet::with_capacity(batch.len());
        let repeated: Vec<bool> = batch.iter().map(|e| !seen.insert(e.0.as_slice())).collect();
        let mut unique: Vec<&ReplayEntry> = batch
            .iter()
            .zip(&repeated)
            .filter(|(_, again)| !**again)
            .map(|(e, _)| e)
            .collect();
        // In key order: two nodes' batches then lock the rows they share in
        // the same order (PostgreSQL would otherwise abort one as a deadlock).
        unique.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let now = batch.iter().map(|e| e.2).min().unwrap_or(0);
        let mut sql = String::from("INSERT INTO dpop_proofs (proof_key, expires_at) VALUES ");
        for i in 0..unique.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("(?{}, ?{})", 2 * i + 2, 2 * i + 3));
        }
        // Inserted, or an expired record taken over: returned; a live
        // record of the same proof: not.
        sql.push_str(
            " ON CONFLICT (proof_key) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE dpop_proofs.expires_at < ?1 RETURNING proof_key",
        );
        let written: Result<Vec<Vec<u8>>, StoreError> = async {
            let sql = self.sql(&sql);
            let mut query = sqlx::query(&sql).bind(now);
            for (key, until, _) in &unique {
                query = query.bind(key.as_slice()).bind(*until);
            }
            let mut conn = Conn::acquire(&self.pool, &self.write_gate).await?;
            let rows = query.fetch_all(conn.get()?).await?;
            conn.finished();
            rows.iter()
                .map(|r| {
                    r.try_get::<Vec<u8>, _>("proof_key")
                        .map_err(StoreError::from)
                })
                .collect()
        }
        .await;
        match written {
            Ok(firsts) => {
                let firsts: std::collections::HashSet<Vec<u8>> = firsts.into_iter().collect();
                batch
                    .iter()
                    .zip(&repeated)
                    .map(|(entry, again)| Ok(!again && firsts.contains(&entry.0)))
                    .collect()
            }
            Err(e) => {
                let message = e.to_string();
                batch.iter().map(|_| Err(message.clone())).collect()
            }
        }
    }

    async fn insert_refresh(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        r: &RefreshRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(&self.sql(
            "INSERT INTO refresh_tokens (hash, family_id, session_id, client_id, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        ))
        .bind(&r.hash)
        .bind(&r.family_id)
        .bind(&r.session_id)
        .bind(&r.client_id)
        .bind(r.created_at)
        .bind(r.expires_at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// A session and its first refresh token, on SQLite, as one call
/// ([`bind_session_inserts`]; anonymous `?`: sqlx binds a multi-statement
/// query's parameters in order).
const SQLITE_SESSION_INSERTS: &str = "INSERT INTO sessions (id, client_id, sub, org, roles, amr, \
     audience, claims, created_at, expires_at, scope, acr, dpop_jkt, holder) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?); \
     INSERT INTO refresh_tokens (hash, family_id, session_id, client_id, created_at, expires_at) \
     VALUES (?, ?, ?, ?, ?, ?)";

/// Binds [`SQLITE_SESSION_INSERTS`]' parameters (`roles`, `amr`, `claims`
/// and `scope` as stored).
fn bind_session_inserts<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    s: &'q SessionRecord,
    r: &'q RefreshRecord,
    roles: &'q str,
    amr: &'q str,
    claims: &'q str,
    scope: &'q str,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    bind_session(query, s, [roles, amr, claims, scope])
        .bind(&r.hash)
        .bind(&r.family_id)
        .bind(&r.session_id)
        .bind(&r.client_id)
        .bind(r.created_at)
        .bind(r.expires_at)
}

/// Binds a sealed token's thirteen columns, in the order of its inserts.
pub(crate) fn bind_sealed<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    t: &'q SealedRecord,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(&t.hash)
        .bind(&t.jti)
        .bind(&t.kind)
        .bind(&t.format)
        .bind(&t.client_id)
        .bind(&t.session_id)
        .bind(&t.sub)
        .bind(&t.audience)
        .bind(t.issued_at)
        .bind(t.expires_at)
        .bind(&t.session_ref)
        .bind(&t.kid)
        .bind(&t.jkt)
}

/// Binds a session's twelve columns in the order of its inserts; `stored`
/// is its roles, amr, claims and scope as stored.
fn bind_session<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    s: &'q SessionRecord,
    stored: [&'q str; 4],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let [roles, amr, claims, scope] = stored;
    query
        .bind(&s.id)
        .bind(&s.client_id)
        .bind(&s.sub)
        .bind(&s.org)
        .bind(roles)
        .bind(amr)
        .bind(&s.audience)
        .bind(claims)
        .bind(s.created_at)
        .bind(s.expires_at)
        .bind(scope)
        .bind(&s.acr)
        .bind(&s.dpop_jkt)
        .bind(&s.holder)
}

impl Store for SqlStore {
    async fn signing_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query(&self.sql("SELECT kid, alg, state, public_jwk, sealed_private, created_at, activates_at, retires_at \
             FROM signing_keys ORDER BY created_at, activates_at, kid"))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(KeyRecord {
                    kid: r.try_get("kid")?,
                    alg: r.try_get("alg")?,
                    state: r.try_get::<String, _>("state")?.parse()?,
                    public_jwk: r.try_get("public_jwk")?,
                    sealed_private: r.try_get("sealed_private")?,
                    created_at: r.try_get("created_at")?,
                    activates_at: r.try_get("activates_at")?,
                    retires_at: r.try_get("retires_at")?,
                })
            })
            .collect()
    }

    async fn change_keys(
        &self,
        transitions: &[KeyTransition],
        new_keys: &[KeyRecord],
    ) -> Result<(), StoreError> {
        let mut conn = Conn::acquire(&self.pool, &self.write_gate).await?;
        let mut tx = conn.get()?.begin().await?;
        if self.backend == Backend::Postgres {
            // One node at a time changes keys; the others wait here, then find
            // their plan stale (the states below no longer match) and reload.
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(KEY_ROTATION_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        let mut events = Vec::new();
        for t in transitions {
            let done = sqlx::query(&self.sql(
                "UPDATE signing_keys SET state = ?1, \
                   activates_at = COALESCE(?2, activates_at), \
                   retires_at = COALESCE(?3, retires_at), \
                   sealed_private = CASE WHEN ?1 IN ('retired', 'compromised') \
                                    THEN NULL ELSE sealed_private END \
                 WHERE kid = ?4 AND state = ?5",
            ))
            .bind(t.to.as_str())
            .bind(t.activates_at)
            .bind(t.retires_at)
            .bind(&t.kid)
            .bind(t.from.as_str())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict("a key changed state meanwhile"));
            }
            let mut details = serde_json::json!({
                "from": t.from.as_str(), "to": t.to.as_str(),
                "signs_from": t.activates_at, "leaves_jwks_at": t.retires_at,
            });
            if t.to == KeyState::Compromised {
                // Every sealed token it signed is refused at introspection
                // from this commit on, on every node.
                let revoked = sqlx::query(&self.sql(
                    "UPDATE sealed_tokens SET revoked_at = COALESCE(revoked_at, ?1) WHERE kid = ?2",
                ))
                .bind(t.retires_at.unwrap_or(0))
                .bind(&t.kid)
                .execute(&mut *tx)
                .await?;
                if let serde_json::Value::Object(d) = &mut details {
                    d.insert(
                        "sealed_tokens_revoked".into(),
                        revoked.rows_affected().into(),
                    );
                    d.insert("private_key".into(), "destroyed".into());
                }
            }
            events.push(Event::success(key_action(t), &t.kid, details));
        }
        for k in new_keys {
            sqlx::query(&self.sql("INSERT INTO signing_keys \
                 (kid, alg, state, public_jwk, sealed_private, created_at, activates_at, retires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"))
            .bind(&k.kid)
            .bind(&k.alg)
            .bind(k.state.as_str())
            .bind(&k.public_jwk)
            .bind(&k.sealed_private)
            .bind(k.created_at)
            .bind(k.activates_at)
            .bind(k.retires_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| match e.as_database_error() {
                // Another node added the next key first (one `next`, one `current`).
                Some(db) if db.is_unique_violation() => {
                    StoreError::Conflict("another node added a key meanwhile")
                }
                _ => StoreError::from(e),
            })?;
            events.push(Event::success(
                "key.generated",
                &k.kid,
                serde_json::json!({"alg": k.alg, "state": k.state.as_str(), "signs_from": k.activates_at}),
            ));
        }
        for event in &events {
            self.audit(&mut tx, event, Actor::system()).await?;
        }
        if self.backend == Backend::Postgres {
            // Delivered at commit: the other nodes reload their keys at once
            // rather than after `signing.reload_every`.
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(KEYS_CHANNEL)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        conn.finished();
        counted(&events);
        Ok(())
    }

    async fn create_client(&self, c: &ClientRecord) -> Result<(), StoreError> {
        let grants = to_json(&c.grants)?;
        let r = &c.registration;
        let mut conn = Conn::acquire(&self.pool, &self.write_gate).await?;
        let mut tx = conn.get()?.begin().await?;
        sqlx::query(&self.sql(&format!("INSERT INTO clients ({CLIENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)")))
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.secret_hash)
        .bind(grants)
        .bind(c.created_at)
        .bind(&c.jwks)
        .bind(r.audiences.as_deref().map(to_json).transpose()?)
        .bind(to_json(&r.scopes)?)
        .bind(to_json(&r.may_act)?)
        .bind(to_json(&r.introspect)?)
        .bind(i64::from(c.legacy))
        .bind(c.previous_secret.as_ref().map(|(h, _)| h.as_str()))
        .bind(c.previous_secret.as_ref().map(|(_, until)| *until))
        .bind(i64::from(c.public))
        .bind(i64::from(r.dpop_required))
        .execute(&mut *tx)
        .await?;
        let event = Event::success("client.created", &c.id, client_details(c));
        self.commit_audited(tx, &[event], Actor::system()).await?;
        conn.finished();
        self.clients.forget(&c.id);
        Ok(())
    }

    async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let rows = sqlx::query(&self.sql(&format!(
            "SELECT {CLIENT_COLUMNS} FROM clients ORDER BY created_at, id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(client_from_row).collect()
    }

    async fn client(&self, id: &str) -> Result<Option<Arc<ClientRecord>>, StoreError> {
        let start = match self.clients.get(id) {
            Ok(c) => return Ok(Some(c)),
            Err(start) => start,
        };
        let row = sqlx::query(&self.sql(&format!(
            "SELECT {CLIENT_COLUMNS} FROM clients WHERE id = ?1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let client = row.as_ref().map(client_from_row).transpose()?.map(Arc::new);
        if let (Some(c), Some(start)) = (&client, start) {
            self.clients.put(c, start);
        }
        Ok(client)
    }

    async fn use_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = Conn::acquire(&self.pool, &self.write_gate).await?;
        let mut tx = conn.get()?.begin().await?;
        sqlx::query(&self.sql("DELETE FROM used_assertions WHERE expires_at < ?1"))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(&self.sql(
            "INSERT INTO used_assertions (client_id, jti, expires_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (client_id, jti) DO NOTHING",
        ))
        .bind(client_id)
        .bind(jti)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        conn.finished();
        Ok(done.rows_affected() == 1)
    }

    async fn update_registration(&self, id: &str, r: &Registration) -> Result<bool, StoreError> {
        let mut conn = Conn::acquire(&self.pool, &self.write_gate).await?;
        let mut tx = conn.get()?.begin().await?;
        let done = sqlx::query(&self.sql(
            "UPDATE clients SET audiences = ?1, scopes = ?2, may_act = ?3, introspect = ?4, \
             dpop_required = ?5, legacy = 0 WHERE id = ?6",
        ))
        .bind(r.audiences.as_deref().map(to_json).transpose()?)
        .bind(to_json(&r.scopes)?)
        .bind(to_json(&r.may_act)?)
        .bind(to_json(&r.introspect)?)
        .bind(i64::from(r.dpop_required))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let mut events = Vec::new();
        if done.rows_affected() == 1 {
            events.push(Event::success(
                "client.updated",
                id,
                serde_json::json!({
                    "audiences": r.audiences, "scopes": r.scopes,
                    "may_act": r.may_act, "introspect": r.introspect,
                    "dpop": if r.dpop_required { "required" } else { "optional" },
                }),
            ));
        }
        self.commit_audited(tx, &events, Actor::system()).await?;
        conn.finished();
        self.clients.forget(id);
        Ok(done.rows_affected() == 1)
    }

    async fn delete_client(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = Conn::acquire(&self.pool, &self.write_gate).await?;
        let mut tx = conn.get()?.begin().await?;
        // Sealed tokens issued to other clients (exchangers) for its
        // sessions die with those sessions.
        let sessions = sqlx::query(&self.sql("SELECT id FROM sessions WHERE client_id = ?1"))
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        for row in &sessions {
            let sid: String = row.try_get("id")?;
            // Deletion takes no clock; any time marks them revoked.
            self.revoke_sealed_of_session(&mut tx, &sid, 0).await?;
        }
        // Sessions first (their refresh tokens go with them, by cascade): the
        // same lock order as a refresh, session then tokens.
        sqlx::query(&self.sql("DELETE FROM sessions WHERE client_id = ?1"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&self.sql("DELETE FROM refresh_tokens WHERE client_id = ?1"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&self.sql("DELETE FROM used_assertions WHERE client_id = ?1"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&self.sql("DELETE FROM sealed_tokens WHERE client_id = ?1"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(&self.sql("DELETE FROM clients WHERE id = ?1"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let mut events = Vec::new();
        if done.rows_affected() == 1 {
            events.push(Event::success(
                "client.deleted",
                id,
                serde_json::json!({ "sessions_deleted": sessions.len() }),
            ));
        }
        self.commit_audited(tx, &events, Actor::system()).await?;
        conn.finished();
        // After the commit: a read that began before it (and saw the row)
        // cannot keep what it read either, since forgetting bumps the count.
        self.clients.forget(id);
        Ok(done.rows_affected() == 1)
    }

    async fn create_session(
        &self,
        s: &SessionRecord,
        refresh: &RefreshRecord,
    ) -> Result<(), StoreError> {
        let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
        let (roles, amr, claims) = (
            serde_json::to_string(&s.roles).map_err(corrupt)?,
            serde_json::to_string(&s.amr).map_err(corrupt)?,
            serde_json::to_string(&s.claims).map_err(corrupt)?,
        );
        let scope = s.scope.join(" ");
        let event = Event::success(
            "session.created",
            &s.id,
            serde_json::json!({
                "client_id": s.client_id, "sub": s.sub, "audience": s.audience,
                "scope": scope, "amr": s.amr, "acr": s.acr,
                "expires_at": s.expires_at, "refresh_token": self.secret(&refresh.hash),
                "dpop_jkt": s.dpop_jkt, "holder": s.holder,
            }),
        );
        let actor = Actor::client(&s.client_id);
        if self.group.is_some() || self.backend == Backend::Postgres {
            let row = group::SessionRow {
                id: s.id.clone(),
                client_id: s.client_id.clone(),
                sub: s.sub.clone(),
                org: s.org.clone(),
                roles,
                amr,
                audience: s.audience.clone(),
                claims,
                created_at: s.created_at,
                expires_at: s.expires_at,
                scope,
                acr: s.acr.clone(),
                dpop_jkt: s.dpop_jkt.clone(),
                holder: s.holder.clone(),
            };
            let write = group::Write::Session {
                row: Box::new(row),
                refresh: refresh.clone(),
                event,
            };
            let written = match &self.group {
                Some((group, _)) => group.write(write, actor).await,
                None => self.pg_write(write, actor).await,
            };
            return match written {
                Ok(_) => Ok(()),
                Err(StoreError::ClientGone) => {
                    self.clients.forget(&s.client_id);
                    Err(StoreError::ClientGone)
                }
                Err(e) => Err(e),
            };
        }
        let mut conn = Conn::acquire(&self.pool, &self.write_gate).await?;
        let gone = |e: sqlx::Error| {
            let gone = e
                .as_database_error()
                .is_some_and(|d| d.kind() == sqlx::error::ErrorKind::ForeignKeyViolation);
            // Converted either way: a database error arms the connection probe.
            let e = StoreError::from(e);
            if gone {
                self.clients.forget(&s.client_id);
                return StoreError::ClientGone;
            }
            e
        };
        let sqlite = self.backend == Backend::Sqlite;
        // On SQLite, the session, its first refresh token and its event
        // (built on the head this store last wrote) go from BEGIN to COMMIT
        // in one call to the connection's thread: the write lock is held
        // for the statements and the sync, not for trips between threads.
        let append = if sqlite {
            crate::audit::CachedAppend::prepare(
                &self.audit,
                &event,
                &actor,
                wall_clock(),
                &self.audit_head,
            )?
        } else {
            None
        };
        if let Some(append) = append {
            let text = format!(
                "BEGIN IMMEDIATE; {SQLITE_SESSION_INSERTS}; {}; COMMIT",
                crate::audit::CachedAppend::SQL
            );
            let query = bind_session_inserts(
                sqlx::query(&text),
                s,
                refresh,
                &roles,
                &amr,
                &claims,
                &scope,
            );
            match append.bind(query).execute(conn.get()?).await {
                Ok(_) => {
                    conn.finished();
                    // The new head cached before the next writer's turn.
                    append.appended(&self.audit_head);
                    drop(conn);
                    counted(&[event]);
                    return Ok(());
                }
                Err(e) => {
                    // Whatever failed left the transaction open, unless it
                    // was the COMMIT; a ROLLBACK that fails leaves the
                    // connection in doubt, and it is closed (Conn).
                    let moved = crate::audit::CachedAppend::moved(&e);
                    if sqlx::query("ROLLBACK").execute(conn.get()?).await.is_err() {
                        return Err(gone(e));
                    }
                    if !moved {
                        conn.finished();
                        return Err(gone(e));
                    }
                    // Another store appended since this one did: the usual
                    // way below, on a fresh transaction, reading the head.
                    self.audit_head.forget();
                }
            }
        }
        let mut tx = conn.get()?.begin().await?;
        if sqlite {
            let query = bind_session_inserts(
                sqlx::query(SQLITE_SESSION_INSERTS),
                s,
                refresh,
                &roles,
                &amr,
                &claims,
                &scope,
            );
            query.execute(&mut *tx).await.map_err(gone)?;
        } else {
            bind_session(
                sqlx::query(
                    "INSERT INTO sessions (id, client_id, sub, org, roles, amr, audience, \
                     claims, created_at, expires_at, scope, acr, dpop_jkt, holder) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                ),
                s,
                [
                    roles.as_str(),
                    amr.as_str(),
                    claims.as_str(),
                    scope.as_str(),
                ],
            )
            .execute(&mut *tx)
            .await
            .map_err(gone)?;
            self.insert_refresh(&mut tx, refresh).await?;
        }
        self.commit_audited(tx, &[event], actor).await?;
        conn.finished();
        Ok(())
    }

    async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(&self.sql(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn revoke_session(
        &self,
        id: &str,
        client_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = Conn::acquire(&self.pool, &self.write_gate).await?;
        let mut tx = conn.get()?.begin().await?;
        let done = sqlx::query(&self.sql("UPDATE sessions SET revoked_at = COALESCE(revoked_at, ?1) WHERE id = ?2 AND client_id = ?3"))
        .bind(now)
        .bind(id)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            // Not the caller's (or no such session): nothing else changes.
            tx.rollback().await?;
            conn.finished();
            return Ok(false);
        }
        sqlx::query(&self.sql(
            "UPDATE refresh_tokens SET revoked_at = COALESCE(revoked_at, ?1) \
             WHERE session_id = ?2 AND client_id = ?3",
        ))
        .bind(now)
        .bind(id)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
        self.revoke_sealed_of_session(&mut tx, id, now).await?;
        let event = Event::success(
            "session.revoked",
            id,
            serde_json::json!({ "client_id": client_id }),
        );
        self.commit_audited(tx, &[event], Actor::client(client_id))
            .await?;
        conn.finished();
        Ok(true)
    }

    async fn refresh_status(
        &self,
        hash: &[u8],
        now: i64,
    ) -> Result<Option<RefreshStatus>, StoreError> {
        let row = sqlx::query(&self.sql("SELECT session_id, client_id, created_at, expires_at, used_at, revoked_at FROM refresh_tokens WHERE hash = ?1"))
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let session_id: String = row.try_get("session_id")?;
        let Some(session) = self.session(&session_id).await? else {
            return Ok(None);
        };
        let expires_at: i64 = row.try_get("expires_at")?;
        let used: Option<i64> = row.try_get("used_at")?;
        let revoked: Option<i64> = row.try_get("revoked_at")?;
        let active = used.is_none()
            && revoked.is_none()
            && expires_at > now
            && session.revoked_at.is_none()
            && session.expires_at > now;
        Ok(Some(RefreshStatus {
            client_id: row.try_get("client_id")?,
            session,
            created_at: row.try_get("created_at")?,
            expires_at,
            active,
        }))
    }

    async fn rotate_refresh(
        &self,
        hash: &[u8],
        client_id: &str,
        next: &NewRefresh,
        accept: &(dyn Fn(&SessionRecord) -> bool + Sync),
        now: i64,
    ) -> Result<RefreshOutcome, StoreError> {
        if let Some(session) = self
            .rotate_refresh_at_once(hash, client_id, next, accept, now)
            .await?
        {
            return Ok(RefreshOutcome::Rotated(Box::new(session)));
        }
        let mut conn = Conn::acquire(&self.pool, &self.write_gate).await?;
        let mut tx = conn.get()?.begin().await?;
        if self.backend == Backend::Postgres {
            // Rows are locked in one order, session first, then its tokens:
            // every use of a family queues on its session row. (Locking the
            // token first deadlocks: a waiting UPDATE keeps the row lock it
            // took to recheck its condition, while a later replay holding
            // the session wants that row.)
            let session_id =
                sqlx::query(&self.sql("SELECT session_id FROM refresh_tokens WHERE hash = ?1"))
                    .bind(hash)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(session_id) = session_id else {
                tx.rollback().await?;
                conn.finished();
                return Ok(RefreshOutcome::Unknown);
            };
            let session_id: String = session_id.try_get("session_id")?;
            sqlx::query("SELECT id FROM sessions WHERE id = $1 FOR UPDATE")
                .bind(&session_id)
                .execute(&mut *tx)
                .await?;
        }
        // On SQLite the first statement writes, so this transaction holds the
        // write lock from the start: two concurrent uses of one token are
        // serialized, and exactly one finds it unused.
        let used = sqlx::query(&self.sql("UPDATE refresh_tokens SET used_at = ?1 \
             WHERE hash = ?2 AND client_id = ?3 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?1"))
        .bind(now)
        .bind(hash)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&self.sql("SELECT family_id, session_id, client_id, expires_at, used_at, revoked_at FROM refresh_tokens WHERE hash = ?1"))
        .bind(hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            conn.finished();
            return Ok(RefreshOutcome::Unknown);
        };
        let family_id: String = row.try_get("family_id")?;
        let session_id: String = row.try_get("session_id")?;
        let owner: String = row.try_get("client_id")?;
        if owner != client_id {
            tx.rollback().await?;
            conn.finished();
            return Ok(RefreshOutcome::Unknown);
        }
        if used.rows_affected() != 1 {
            let was_used: Option<i64> = row.try_get("used_at")?;
            if was_used.is_some() {
                // OAuth 2.0 Security BCP §4.14: reuse revokes the family and the
                // session. The session row is locked first: concurrent replays
                // of one family queue on that one row instead of locking the
                // family's tokens in scan order (which deadlocks on PostgreSQL),
                // and find everything already revoked when their turn comes.
                sqlx::query(&self.sql(
                    "UPDATE sessions SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
                ))
                .bind(now)
                .bind(&session_id)
                .execute(&mut *tx)
                .await?;
                // Every token of the session (its family never spans
                // another session, and the session itself is revoked just
                // above), found through the session's index.
                sqlx::query(&self.sql(
                    "UPDATE refresh_tokens SET revoked_at = ?1 \
                     WHERE session_id = ?2 AND revoked_at IS NULL",
                ))
                .bind(now)
                .bind(&session_id)
                .execute(&mut *tx)
                .await?;
                self.revoke_sealed_of_session(&mut tx, &session_id, now)
                    .await?;
                let event = Event {
                    action: "refresh.reuse_detected".into(),
                    target: session_id.clone(),
                    outcome: "family_revoked".into(),
                    details: serde_json::json!({
                        "client_id": client_id, "family_id": family_id,
                        "refresh_token": self.secret(hash),
                    }),
                };
                self.commit_audited(tx, &[event], Actor::client(client_id))
                    .await?;
                conn.finished();
                return Ok(RefreshOutcome::Reused {
                    family_id,
                    session_id,
                });
            }
            tx.rollback().await?;
            conn.finished();
            return Ok(RefreshOutcome::Expired);
        }
        let session = sqlx::query(&self.sql(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1"
        )))
        .bind(&session_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(session) = session.as_ref().map(session_from_row).transpose()? else {
            tx.rollback().await?;
            conn.finished();
            return Ok(RefreshOutcome::Unknown);
        };
        if session.revoked_at.is_some() || session.expires_at <= now {
            tx.rollback().await?;
            conn.finished();
            return Ok(RefreshOutcome::Expired);
        }
        if !accept(&session) {
            // The token stays unused: the transaction is rolled back.
            tx.rollback().await?;
            conn.finished();
            return Ok(RefreshOutcome::Refused(Box::new(session)));
        }
        self.insert_refresh(&mut tx, &next.record(&family_id, &session_id, client_id))
            .await?;
        tx.commit().await?;
        conn.finished();
        Ok(RefreshOutcome::Rotated(Box::new(session)))
    }

    async fn record_sealed(
        &self,
        t: &SealedRecord,
        now: i64,
        event: Option<&Event>,
    ) -> Result<(), StoreError> {
        let event = event.map(|e| {
            let mut e = e.clone();
            if let serde_json::Value::Object(d) = &mut e.details {
                d.insert("token".into(), self.secret(&t.hash).into());
                d.insert("jti".into(), t.jti.as_str().into());
                d.insert("kid".into(), t.kid.clone().into());
            }
            e
        });
        if self.group.is_some() || self.backend == Backend::Postgres {
            let write = group::Write::Sealed {
                record: Box::new(t.clone()),
                now,
                event,
            };
            let actor = Actor::client(&t.client_id);
            return match &self.group {
                Some((group, _)) => group.write(write, actor).await,
                None => self.pg_write(write, actor).await,
            }
            .map(|_| ());
        }
        let mut conn = Conn::acquire(&self.pool, &self.write_gate).await?;
        let mut tx = conn.get()?.begin().await?;
        sqlx::query(&self.sql("DELETE FROM sealed_tokens WHERE expires_at < ?1"))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        bind_sealed(
            sqlx::query(&self.sql(
                "INSERT INTO sealed_tokens (hash, jti, kind, format, client_id, session_id, sub, \
             audience, issued_at, expires_at, session_ref, kid, jkt) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )),
            t,
        )
        .execute(&mut *tx)
        .await?;
        let events: Vec<Event> = event.into_iter().collect();
        self.commit_audited(tx, &events, Actor::client(&t.client_id))
            .await?;
        conn.finished();
        Ok(())
    }

    async fn sealed(&self, hash: &[u8]) -> Result<Option<SealedRecord>, StoreError> {
        let row = sqlx::query(&self.sql(
            "SELECT hash, jti, kind, format, client_id, session_id, session_ref, sub, audience, \
             issued_at, expires_at, revoked_at, kid, jkt FROM sealed_tokens WHERE hash = ?1",
        ))
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SealedRecord {
                hash: r.try_get("hash")?,
                jti: r.try_get("jti")?,
                kind: r.try_get("kind")?,
                format: r.try_get("format")?,
                client_id: r.try_get("client_id")?,
                session_id: r.try_get("session_id")?,
                session_ref: r.try_get("session_ref")?,
                sub: r.try_get("sub")?,
                audience: r.try_get("audience")?,
                issued_at: r.try_get("issued_at")?,
                expires_at: r.try_get("expires_at")?,
                revoked_at: r.try_get("revoked_at")?,
                kid: r.try_get("kid")?,
                jkt: r.try_get("jkt")?,
            })
        })
        .transpose()
    }

    async fn revoke_sealed(
        &self,
        hash: &[u8],
        client_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = Conn::acquire(&self.pool, &self.write_gate).await?;
        let mut tx = conn.get()?.begin().await?;
        let done = sqlx::query(&self.sql(
            "UPDATE sealed_tokens SET revoked_at = COALESCE(revoked_at, ?1) \
             WHERE hash = ?2 AND client_id = ?3",
        ))
        .bind(now)
        .bind(hash)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            // Not the caller's (or unknown): nothing changed, nothing to record.
            tx.rollback().await?;
            conn.finished();
            return Ok(false);
        }
        let event = Event::success(
            "token.revoked",
            self.secret(hash),
            serde_json::json!({ "client_id": client_id, "kind": "sealed" }),
        );
        self.commit_audited(tx, &[event], Actor::client(client_id))
            .await?;
        conn.finished();
        Ok(true)
    }

    async fn revoke_jti(
        &self,
        jti: &str,
        client_id: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut conn = Conn::acquire(&self.pool, &self.write_gate).await?;
        let mut tx = conn.get()?.begin().await?;
        sqlx::query(&self.sql("DELETE FROM revoked_tokens WHERE expires_at < ?1"))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&self.sql(
            "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (jti) DO NOTHING",
        ))
        .bind(jti)
        .bind(client_id)
        .bind(expires_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let event = Event::success(
            "token.revoked",
            jti,
            serde_json::json!({ "client_id": client_id, "kind": "client_credentials", "expires_at": expires_at }),
        );
        self.commit_audited(tx, &[event], Actor::client(client_id))
            .await?;
        conn.finished();
        Ok(())
    }

    async fn revoked_jtis(&self, since: i64, now: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(&self.sql(
            "SELECT jti, expires_at FROM revoked_tokens WHERE revoked_at >= ?1 AND expires_at >= ?2",
        ))
        .bind(since)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("jti")?, r.try_get("expires_at")?)))
            .collect()
    }

    async fn roll_client_secret(
        &self,
        id: &str,
        new_hash: &str,
        grace_until: Option<i64>,
    ) -> Result<bool, StoreError> {
        let mut conn = Conn::acquire(&self.pool, &self.write_gate).await?;
        let mut tx = conn.get()?.begin().await?;
        // On the right of SET every column is its value before the update.
        let done = match grace_until {
            Some(until) => {
                sqlx::query(&self.sql(
                    "UPDATE clients SET previous_secret_hash = secret_hash, \
                     previous_secret_until = ?1, secret_hash = ?2 \
                     WHERE id = ?3 AND secret_hash <> ''",
                ))
                .bind(until)
                .bind(new_hash)
                .bind(id)
                .execute(&mut *tx)
                .await?
            }
            None => {
                sqlx::query(&self.sql(
                    "UPDATE clients SET previous_secret_hash = NULL, \
                     previous_secret_until = NULL, secret_hash = ?1 \
                     WHERE id = ?2 AND secret_hash <> ''",
                ))
                .bind(new_hash)
                .bind(id)
                .execute(&mut *tx)
                .await?
            }
        };
        let mut events = Vec::new();
        if done.rows_affected() == 1 {
            events.push(Event::success(
                "client.secret_rotated",
                id,
                serde_json::json!({ "previous_secret_valid_until": grace_until }),
            ));
        }
        self.commit_audited(tx, &events, Actor::system()).await?;
        conn.finished();
        self.clients.forget(id);
        Ok(done.rows_affected() == 1)
    }

    async fn search_sessions(&self, q: &SessionQuery) -> Result<Vec<SessionRecord>, StoreError> {
        let mut conditions = Vec::new();
        let mut binds: Vec<&str> = Vec::new();
        for (column, value) in [("sub", &q.sub), ("client_id", &q.client_id)] {
            if let Some(v) = value {
                binds.push(v);
                conditions.push(format!("{column} = ?{}", binds.len()));
            }
        }
        if let Some(after) = &q.after {
            binds.push(after);
            conditions.push(format!("id > ?{}", binds.len()));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let text = self.sql(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions {filter} ORDER BY id LIMIT {}",
            q.limit.clamp(1, 1000)
        ));
        let mut query = sqlx::query(&text);
        for b in binds {
            query = query.bind(b);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(session_from_row).collect()
    }

    async fn revoke_sessions(&self, which: &Revocation, now: i64) -> Result<u64, StoreError> {
        let (condition, text, number) = match which {
            Revocation::Session(id) => ("id = ?3", Some(id.as_str()), None),
            Revocation::Subject(sub) => ("sub = ?3", Some(sub.as_str()), None),
            Revocation::Client(id) => ("client_id = ?3", Some(id.as_str()), None),
            Revocation::IssuedBefore(t) => ("created_at < ?3", None, Some(*t)),
        };
        let mut conn = Conn::acquire(&self.pool, &self.write_gate).await?;
        let mut tx = conn.get()?.begin().await?;
        // The write first (SQLite takes its write lock here), the ids with it.
        let update = self.sql(&format!(
            "UPDATE sessions SET revoked_at = ?1 \
             WHERE revoked_at IS NULL AND expires_at > ?2 AND {condition} RETURNING id"
        ));
        let query = sqlx::query(&update).bind(now).bind(now);
        let query = match (text, number) {
            (Some(t), _) => query.bind(t),
            (None, n) => query.bind(n.unwrap_or(0)),
        };
        let rows = query.fetch_all(&mut *tx).await?;
        let ids = rows
            .iter()
            .map(|r| r.try_get::<String, _>("id"))
            .collect::<Result<Vec<_>, _>>()?;
        // In statements of many ids each, not one per session: a revocation
        // of a million sessions holds the write lock for seconds, not hours.
        for chunk in ids.chunks(REVOKE_CHUNK) {
            let list = (0..chunk.len())
                .map(|i| format!("?{}", i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let text = self.sql(&format!(
                "UPDATE refresh_tokens SET revoked_at = COALESCE(revoked_at, ?1) \
                 WHERE session_id IN ({list})"
            ));
            let mut q = sqlx::query(&text).bind(now);
            for id in chunk {
                q = q.bind(id);
            }
            q.execute(&mut *tx).await?;
            let text = self.sql(&format!(
                "UPDATE sealed_tokens SET revoked_at = COALESCE(revoked_at, ?1) \
                 WHERE session_ref IN ({list})"
            ));
            let mut q = sqlx::query(&text).bind(now);
            for id in chunk {
                q = q.bind(session_ref(id));
            }
            q.execute(&mut *tx).await?;
        }
        let (action, target, by) = match which {
            Revocation::Session(id) => ("session.revoked", id.clone(), "session"),
            Revocation::Subject(sub) => ("sessions.mass_revoked", sub.clone(), "sub"),
            Revocation::Client(id) => ("sessions.mass_revoked", id.clone(), "client_id"),
            Revocation::IssuedBefore(t) => {
                ("sessions.mass_revoked", t.to_string(), "issued_before")
            }
        };
        let event = Event::success(
            action,
            target,
            serde_json::json!({ "by": by, "sessions_revoked": rows.len() }),
        );
        self.commit_audited(tx, &[event], Actor::system()).await?;
        conn.finished();
        Ok(rows.len() as u64)
    }

    async fn create_admin(&self, a: &AdminRecord) -> Result<(), StoreError> {
        let mut conn = Conn::acquire(&self.pool, &self.write_gate).await?;
        let mut tx = conn.get()?.begin().await?;
        sqlx::query(&self.sql(
            "INSERT INTO admins (id, name, scopes, token_hash, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        ))
        .bind(&a.id)
        .bind(&a.name)
        .bind(to_json(&a.scopes)?)
        .bind(&a.token_hash)
        .bind(a.created_at)
        .execute(&mut *tx)
        .await?;
        let event = Event::success(
            "admin.created",
            &a.id,
            serde_json::json!({
                "name": a.name, "scopes": a.scopes, "token": self.secret(&a.token_hash),
            }),
        );
        self.commit_audited(tx, &[event], Actor::cli()).await?;
        conn.finished();
        Ok(())
    }

    async fn admins(&self) -> Result<Vec<AdminRecord>, StoreError> {
        let rows = sqlx::query(&self.sql(&format!(
            "SELECT {ADMIN_COLUMNS} FROM admins ORDER BY created_at, id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(admin_from_row).collect()
    }

    async fn admin_by_token_hash(&self, hash: &[u8]) -> Result<Option<AdminRecord>, StoreError> {
        let row = sqlx::query(&self.sql(&format!(
            "SELECT {ADMIN_COLUMNS} FROM admins WHERE token_hash = ?1"
        )))
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(admin_from_row).transpose()
    }

    async fn delete_admin(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = Conn::acquire(&self.pool, &self.write_gate).await?;
        let mut tx = conn.get()?.begin().await?;
        let done = sqlx::query(&self.sql("DELETE FROM admins WHERE id = ?1"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let mut events = Vec::new();
        if done.rows_affected() == 1 {
            events.push(Event::success("admin.deleted", id, serde_json::json!({})));
        }
        self.commit_audited(tx, &events, Actor::cli()).await?;
        conn.finished();
        Ok(done.rows_affected() == 1)
    }

    async fn audit_events(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<crate::audit::AuditRecord>, StoreError> {
        crate::audit::read_events(&self.pool, self.backend, after, limit).await
    }

    async fn audit_head(&self) -> Result<crate::audit::AuditHead, StoreError> {
        crate::audit::read_head(&self.pool).await
    }

    fn audit_keys(&self) -> &crate::audit::AuditKeys {
        SqlStore::audit_keys(self)
    }

    fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgresql",
        }
    }

    async fn node_alive(&self, node: &NodeRecord, now: i64) -> Result<(), StoreError> {
        let mut conn = Conn::acquire(&self.pool, &self.write_gate).await?;
        sqlx::query(&self.sql(
            "INSERT INTO nodes (id, version, started_at, seen_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
        ))
        .bind(&node.id)
        .bind(&node.version)
        .bind(node.started_at)
        .bind(now)
        .execute(conn.get()?)
        .await?;
        sqlx::query(&self.sql("DELETE FROM nodes WHERE seen_at < ?1"))
            .bind(now.saturating_sub(NODE_FORGOTTEN_AFTER))
            .execute(conn.get()?)
            .await?;
        conn.finished();
        Ok(())
    }

    async fn nodes_seen(&self, since: i64) -> Result<Vec<NodeRecord>, StoreError> {
        let rows = sqlx::query(&self.sql(
            "SELECT id, version, started_at, seen_at FROM nodes WHERE seen_at >= ?1 \
             ORDER BY seen_at DESC, id LIMIT 100",
        ))
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(NodeRecord {
                    id: r.try_get("id")?,
                    version: r.try_get("version")?,
                    started_at: r.try_get("started_at")?,
                    seen_at: r.try_get("seen_at")?,
                })
            })
            .collect()
    }

    async fn count_live_sessions(&self, now: i64) -> Result<i64, StoreError> {
        let text =
            self.sql("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL AND expires_at > ?1");
        let n: i64 = sqlx::query_scalar(&text)
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    async fn prune_audit(&self, before_time: i64) -> Result<u64, StoreError> {
        crate::audit::prune_events(
            &self.pool,
            &self.write_gate,
            self.backend,
            &self.audit,
            before_time,
        )
        .await
    }

    async fn dpop_first_use(
        &self,
        key: &[u8],
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        // Concurrent proofs share one statement (one fsync): at the token
        // endpoint every request with a proof writes one.
        let answer = self
            .replay
            .submit((key.to_vec(), expires_at, now), |batch| {
                let store = self.clone();
                async move { store.record_proofs(batch).await }
            })
            .await;
        match answer {
            Ok(Ok(first)) => Ok(first),
            Ok(Err(e)) => Err(StoreError::Database(sqlx::Error::Protocol(e))),
            Err(crate::batch::Abandoned) => Err(StoreError::Database(sqlx::Error::Protocol(
                "the batch recording this DPoP proof was abandoned".into(),
            ))),
        }
    }

    async fn append_audit(&self, events: &[Event], actor: Actor) -> Result<(), StoreError> {
        let mut conn = Conn::acquire(&self.pool, &self.write_gate).await?;
        let tx = conn.get()?.begin().await?;
        self.commit_audited(tx, events, actor).await?;
        conn.finished();
        Ok(())
    }

    fn secret_ref(&self, sha256: &[u8]) -> String {
        self.secret(sha256)
    }

    fn write_ahead(&self) -> WriteAhead {
        WriteAhead(self.group.as_ref().map(|(group, _)| group.announce()))
    }

    async fn prune_dpop_proofs(&self, now: i64) -> Result<u64, StoreError> {
        let mut conn = Conn::acquire(&self.pool, &self.write_gate).await?;
        let done = sqlx::query(&self.sql("DELETE FROM dpop_proofs WHERE expires_at < ?1"))
            .bind(now)
            .execute(conn.get()?)
            .await?;
        conn.finished();
        Ok(done.rows_affected())
    }
}

fn to_json(list: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(list).map_err(|e| StoreError::Corrupt(e.to_string()))
}

const ADMIN_COLUMNS: &str = "id, name, scopes, token_hash, created_at";

fn admin_from_row(r: &AnyRow) -> Result<AdminRecord, StoreError> {
    Ok(AdminRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        scopes: json_list(&r.try_get::<String, _>("scopes")?)?,
        token_hash: r.try_get("token_hash")?,
        created_at: r.try_get("created_at")?,
    })
}

fn client_from_row(r: &AnyRow) -> Result<ClientRecord, StoreError> {
    Ok(ClientRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        secret_hash: r.try_get("secret_hash")?,
        grants: json_list(&r.try_get::<String, _>("grants")?)?,
        created_at: r.try_get("created_at")?,
        jwks: r.try_get("jwks")?,
        registration: Registration {
            audiences: r
                .try_get::<Option<String>, _>("audiences")?
                .as_deref()
                .map(json_list)
                .transpose()?,
            scopes: json_list(&r.try_get::<String, _>("scopes")?)?,
            may_act: json_list(&r.try_get::<String, _>("may_act")?)?,
            introspect: json_list(&r.try_get::<String, _>("introspect")?)?,
            dpop_required: r.try_get::<i64, _>("dpop_required")? != 0,
        },
        legacy: r.try_get::<i64, _>("legacy")? != 0,
        public: r.try_get::<i64, _>("is_public")? != 0,
        previous_secret: match (
            r.try_get::<Option<String>, _>("previous_secret_hash")?,
            r.try_get::<Option<i64>, _>("previous_secret_until")?,
        ) {
            (Some(hash), Some(until)) => Some((hash, until)),
            _ => None,
        },
    })
}

/// A node's row in `nodes` is deleted after this long without a word.
pub const NODE_FORGOTTEN_AFTER: i64 = 86_400;

/// A node serving this store, as it last reported itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// Its id (`node_…`, random at each start).
    pub id: String,
    /// Its version of tessera.
    pub version: String,
    /// When it started (Unix seconds).
    pub started_at: i64,
    /// When it last said it was alive.
    pub seen_at: i64,
}

/// The service's DPoP replay cache is its store: every node sees every
/// proof.
impl tessera_verify::dpop::ReplayCache for SqlStore {
    async fn first_use(
        &self,
        key: &[u8],
        until: i64,
        now: i64,
    ) -> Result<bool, tessera_verify::dpop::ReplayCacheError> {
        self.dpop_first_use(key, until, now)
            .await
            .map_err(|e| tessera_verify::dpop::ReplayCacheError(e.to_string()))
    }
}
