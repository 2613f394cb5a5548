//! Persistence. [`Store`] is what the service needs; [`SqliteStore`] is the
//! default implementation (one file in the data directory, WAL, migrations
//! embedded and applied at start-up). Every state change that must not be
//! lost is one transaction.

use std::future::Future;
use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

/// A store failure. The message is for the operator's log; it never holds
/// a secret.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// Another writer changed the record first (the caller retries later).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// A stored value is not what this version understands.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

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
}

impl KeyState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Current => "current",
            KeyState::Retiring => "retiring",
            KeyState::Retired => "retired",
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
}

/// The default store: SQLite.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and applies
    /// the migrations.
    pub async fn open_file(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        Self::open_with(options).await
    }

    /// Opens a `sqlite://` URL.
    pub async fn open_url(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?.create_if_missing(true);
        Self::open_with(options).await
    }

    async fn open_with(options: SqliteConnectOptions) -> Result<Self, StoreError> {
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        MIGRATIONS.run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    /// Closes the pool (on shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl Store for SqliteStore {
    async fn signing_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, alg, state, public_jwk, sealed_private, created_at, activates_at, retires_at \
             FROM signing_keys ORDER BY created_at, activates_at, kid",
        )
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
        let mut tx = self.pool.begin().await?;
        for t in transitions {
            let done = sqlx::query(
                "UPDATE signing_keys SET state = ?1, \
                   activates_at = COALESCE(?2, activates_at), \
                   retires_at = COALESCE(?3, retires_at), \
                   sealed_private = CASE WHEN ?1 = 'retired' THEN NULL ELSE sealed_private END \
                 WHERE kid = ?4 AND state = ?5",
            )
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
        }
        for k in new_keys {
            sqlx::query(
                "INSERT INTO signing_keys \
                 (kid, alg, state, public_jwk, sealed_private, created_at, activates_at, retires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .bind(&k.kid)
            .bind(&k.alg)
            .bind(k.state.as_str())
            .bind(&k.public_jwk)
            .bind(&k.sealed_private)
            .bind(k.created_at)
            .bind(k.activates_at)
            .bind(k.retires_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
