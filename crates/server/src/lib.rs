//! # tessera-server
//!
//! The tessera token service as a library: [`config`] (TOML, `TESSERA_*`
//! environment, command line), [`store`] (the [`store::Store`] trait and
//! its SQLite implementation), [`keys`] (master key, signing-key lifecycle
//! and JWKS), [`http`] (the routes). [`Server::start`] puts them together;
//! the `tessera serve` command runs it until SIGTERM.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tessera_server::StartError> {
//! use tessera_server::{config::Config, Server};
//! let config = Config::load(None, std::env::vars(), Some("127.0.0.1:0"))?;
//! let server = Server::start(config, None).await?;
//! println!("listening on {}", server.local_addr());
//! server.shutdown().await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod admin;
pub mod admins;
pub mod api;
pub mod audit;
mod batch;
pub mod clients;
pub mod config;
pub mod crypto;
pub mod denylist;
pub mod http;
pub mod keys;
pub mod listener;
pub mod metrics;
pub mod pii;
pub mod policy;
pub mod sealing;
pub mod store;
pub mod testing;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;

use tessera_jose::jwt::{Clock, SystemClock};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::keys::{KeyRing, Lifecycle, MasterKeySource};
use crate::store::SqlStore;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// Keys, master key or data directory.
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    /// The store.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The listening socket.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be loaded.
    #[error("config: `tls`: {0}")]
    Tls(String),
}

/// How long after it expired a DPoP proof's record is kept (clock skew
/// between nodes).
const DPOP_PRUNE_MARGIN: i64 = 300;

/// Opens the store named by the configuration (the SQLite file in the data
/// directory unless `database_url` says otherwise), creating the data
/// directory (mode 0700) if needed; its audit trail is keyed by `master`
/// (every process that writes must use the deployment's master key, or the
/// trail refuses its events).
pub async fn open_store(
    config: &Config,
    master: &crypto::MasterKey,
) -> Result<SqlStore, StartError> {
    keys::prepare_data_dir(&config.data_dir)?;
    let audit_keys = audit::AuditKeys::from_master(master)
        .map_err(|e| keys::KeyError::MasterKey(e.to_string()))?;
    Ok(match &config.database_url {
        Some(url) => SqlStore::open_url(url).await?,
        None => SqlStore::open_file(&config.data_dir.join("tessera.db")).await?,
    }
    .with_audit_keys(audit_keys))
}

/// The deployment's master key for the commands other than `tessera
/// serve`, which never generate one ([`keys::load_existing_master_key`]).
pub fn existing_master_key(
    config: &Config,
    env_value: Option<&str>,
) -> Result<crypto::MasterKey, StartError> {
    Ok(keys::load_existing_master_key(config, env_value)?.0)
}

/// The deployment's master key ([`existing_master_key`]: never generated
/// here) and the store keyed by it: what the commands other than `tessera
/// serve` open.
pub async fn open_with_master(
    config: &Config,
    master_key_env: Option<&str>,
) -> Result<(SqlStore, crypto::MasterKey), StartError> {
    keys::prepare_data_dir(&config.data_dir)?;
    let master = existing_master_key(config, master_key_env)?;
    let store = open_store(config, &master).await?;
    Ok((store, master))
}

/// Loads the master key, warning when it lives in the data directory.
pub fn master_key(
    config: &Config,
    env_value: Option<&str>,
) -> Result<crypto::MasterKey, StartError> {
    let (key, source) = keys::load_master_key(config, env_value)?;
    match source {
        MasterKeySource::Generated(path) => tracing::warn!(
            path = %path.display(),
            "generated a master key in the data directory; in production supply one via \
             TESSERA_MASTER_KEY or master_key_file, kept apart from the database"
        ),
        MasterKeySource::DataDir(path) => tracing::warn!(
            path = %path.display(),
            "the master key lives next to the database; in production supply one via \
             TESSERA_MASTER_KEY or master_key_file"
        ),
        MasterKeySource::Environment | MasterKeySource::File(_) => {}
    }
    Ok(key)
}

/// Fetches again each sealed resource's JWKS whose refresh period has
/// passed since it was last fetched (at start-up, then here). A failure
/// keeps the key in use, logged and counted, and is tried again next time.
async fn refresh_sealing_keys<S: store::Store>(
    state: &http::AppState<S>,
    fetched: &mut std::collections::HashMap<String, tokio::time::Instant>,
    started: tokio::time::Instant,
) {
    for resource in &state.config.resources {
        let Some(config::Sealing {
            source: config::KeySource::JwksUri { uri, refresh },
            ..
        }) = &resource.sealing
        else {
            continue;
        };
        let last = fetched.get(&resource.audience).copied().unwrap_or(started);
        if last.elapsed() < *refresh {
            continue;
        }
        match state.sealing.refresh(resource, &state.http).await {
            Ok(()) => {
                fetched.insert(resource.audience.clone(), tokio::time::Instant::now());
            }
            Err(e) => {
                metrics::SEALING_KEY_REFRESH_FAILURES.inc();
                tracing::warn!(audience = %resource.audience, %uri, error = %e,
                    "could not refresh the resource's encryption key; the last good key stays");
            }
        }
    }
}

/// The TLS acceptor of a `[tls]` or `[admin.tls]` table, if set.
async fn acceptor(
    tls: Option<&config::Tls>,
    key: &str,
) -> Result<Option<tokio_rustls::TlsAcceptor>, StartError> {
    let Some(t) = tls else { return Ok(None) };
    listener::tls_acceptor(&t.cert, &t.key)
        .await
        .map(Some)
        .map_err(|e| {
            StartError::Tls(format!(
                "`{key}`: cannot load {} / {}: {e}",
                t.cert.display(),
                t.key.display()
            ))
        })
}

/// On PostgreSQL, the `NOTIFY` of a change of signing keys (a rotation, a
/// compromised key) made by any node: this node reloads at once instead of
/// after `signing.reload_every`. On SQLite (one node), never. Its own task,
/// so that no other maintenance delays a reload.
struct KeyChanges {
    url: Option<String>,
    listener: Option<sqlx::postgres::PgListener>,
}

/// How long to wait before listening again after the connection failed.
const LISTEN_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

impl KeyChanges {
    fn new(database_url: Option<&str>) -> Self {
        KeyChanges {
            url: database_url
                .filter(|u| !u.starts_with("sqlite:"))
                .map(str::to_owned),
            listener: None,
        }
    }

    /// Resolves when the keys may have changed elsewhere: a change was
    /// announced, or the listening connection was (re)established — anything
    /// announced while it was down was missed. Never, on SQLite.
    async fn next(&mut self) {
        let Some(url) = &self.url else {
            return std::future::pending().await;
        };
        let Some(listener) = &mut self.listener else {
            let connected = async {
                let mut l = sqlx::postgres::PgListener::connect(url).await?;
                l.listen(store::KEYS_CHANNEL).await?;
                Ok::<_, sqlx::Error>(l)
            };
            match connected.await {
                Ok(l) => self.listener = Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for key changes; retrying (other \
                        nodes' changes reach this one within signing.reload_every meanwhile)");
                    tokio::time::sleep(LISTEN_RETRY).await;
                }
            }
            return;
        };
        match listener.try_recv().await {
            // A change, or (None) the connection was lost: it reconnects on
            // the next call, and what was announced meanwhile is lost.
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "lost the key-change listener; listening again");
                self.listener = None;
                tokio::time::sleep(LISTEN_RETRY).await;
            }
        }
    }
}

/// How often the audit trail is pruned of events older than `[audit] keep`.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// A running service.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    serving: JoinHandle<()>,
    admin_serving: Option<JoinHandle<()>>,
    key_watch: JoinHandle<()>,
    maintenance: JoinHandle<()>,
    store: SqlStore,
    state: Arc<http::AppState<SqlStore>>,
}

impl Server {
    /// Starts the service: data directory, master key (`master_key_env` is
    /// the value of `TESSERA_MASTER_KEY`, if set), store and migrations,
    /// signing keys, then the listener, with the connection limits of
    /// [`listener`]. Returns once it accepts connections.
    pub async fn start(config: Config, master_key_env: Option<&str>) -> Result<Server, StartError> {
        Self::start_with(config, master_key_env, listener::Limits::default()).await
    }

    /// [`Server::start`] with other connection [`listener::Limits`]: for
    /// tests that need second-long timeouts. Not configuration: the
    /// service's limits are [`listener::Limits::default`].
    pub async fn start_with(
        config: Config,
        master_key_env: Option<&str>,
        limits: listener::Limits,
    ) -> Result<Server, StartError> {
        let tls = acceptor(config.tls.as_ref(), "tls").await?;
        let admin_tls = acceptor(config.admin.tls.as_ref(), "admin.tls").await?;
        // Sealed resources' keys first: a bad one stops start-up before
        // anything is opened or bound.
        let http = sealing::http_client().map_err(|e| config::ConfigError {
            key: "resources".into(),
            message: e,
        })?;
        let sealing = sealing::SealingKeys::load(&config, &http).await?;
        keys::prepare_data_dir(&config.data_dir)?;
        let master = master_key(&config, master_key_env)?;
        let store = open_store(&config, &master)
            .await?
            .cache_clients(config.clients.cache_for);
        let rules = Lifecycle::from_config(&config);
        let nonces = http::dpop::Nonces::from_master(&master).map_err(|_| {
            StartError::Keys(keys::KeyError::MasterKey(
                "cannot derive the DPoP nonce key".into(),
            ))
        })?;
        let ring = KeyRing::open(&store, master, rules, SystemClock.now()).await?;
        let listen = config.listen;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: listen,
            source,
        })?;
        let admin_listener = match config.admin.listen {
            None => None,
            Some(at) => {
                let bound = tokio::net::TcpListener::bind(at)
                    .await
                    .map_err(|source| StartError::Listen { addr: at, source })?;
                let local = bound
                    .local_addr()
                    .map_err(|source| StartError::Listen { addr: at, source })?;
                Some((bound, local))
            }
        };
        let mut config = config;
        if config.issuer_defaulted {
            // With port 0 the configured address is not the one clients use.
            config.issuer = config::default_issuer(addr);
        }
        let issuer = config.issuer.clone();
        if config.resources.is_empty() {
            tracing::warn!(
                "no [[resources]] are configured: a client registered without --audience may ask \
                 for tokens for any audience; declare your resources (or register each client's \
                 audiences) before production"
            );
        }
        let node = store::NodeRecord {
            id: format!(
                "node_{}",
                crypto::random_token(9)
                    .map_err(|_| StartError::Keys(keys::KeyError::MasterKey(
                        "the system's random source failed".into()
                    )))?
                    .as_str()
            ),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: SystemClock.now(),
            seen_at: SystemClock.now(),
        };
        if let Err(e) = store::Store::node_alive(&store, &node, node.started_at).await {
            tracing::warn!(error = %e, "could not record this node in the store; will retry");
        }
        let state = Arc::new(http::AppState {
            keys: ring,
            store: store.clone(),
            revoked: denylist::Denylist::new(config.clients.cache_for),
            config,
            sealing,
            http,
            nonces,
            node,
        });
        let (stop, mut stopped) = watch::channel(false);

        let app = http::router(state.clone());
        let kept = state.clone();
        let serving = tokio::spawn(listener::serve(listener, app, tls, limits, stopped.clone()));
        let admin_addr = admin_listener.as_ref().map(|(_, a)| *a);
        let admin_serving = admin_listener.map(|(bound, at)| {
            tracing::info!(addr = %at, "the admin API is listening");
            let app = admin::router(state.clone());
            tokio::spawn(listener::serve(
                bound,
                app,
                admin_tls,
                limits,
                stopped.clone(),
            ))
        });
        if let (Some(at), None) = (admin_addr, &state.config.admin.tls) {
            if !at.ip().is_loopback() {
                tracing::warn!(addr = %at, "the admin API listens beyond loopback without TLS: \
                    its bearer tokens cross the network in the clear; set [admin.tls]");
            }
        }
        if admin_addr.is_none() {
            tracing::info!("the admin listener is off ([admin] listen = \"off\")");
        }

        let maintenance_store = store.clone();
        let reload_every = state.config.signing.reload_every;
        let mut key_changes = KeyChanges::new(state.config.database_url.as_deref());
        let watcher = (state.clone(), store.clone(), stopped.clone());
        let key_watch = tokio::spawn(async move {
            let (state, store, mut stopped) = watcher;
            loop {
                tokio::select! {
                    () = key_changes.next() => {}
                    _ = stopped.wait_for(|s| *s) => break,
                }
                if let Err(e) = state.keys.tick(&store, SystemClock.now()).await {
                    tracing::error!(error = %e, "reloading the keys after a change failed; will retry");
                }
            }
        });
        let maintenance = tokio::spawn(async move {
            let mut fetched = std::collections::HashMap::new();
            let started = tokio::time::Instant::now();
            let mut pruned: Option<tokio::time::Instant> = None;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(reload_every) => {}
                    _ = stopped.wait_for(|s| *s) => break,
                }
                if let Err(e) = state.keys.tick(&maintenance_store, SystemClock.now()).await {
                    tracing::error!(error = %e, "key maintenance failed; will retry");
                }
                let alive =
                    store::Store::node_alive(&maintenance_store, &state.node, SystemClock.now());
                if let Err(e) = alive.await {
                    tracing::warn!(error = %e, "could not record this node as alive; will retry");
                }
                if pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                    pruned = Some(tokio::time::Instant::now());
                    let keep = state.config.audit.keep;
                    match audit::prune(&maintenance_store, keep, SystemClock.now()).await {
                        Ok(0) => {}
                        Ok(n) => {
                            tracing::info!(events = n, "pruned old audit events ([audit] keep)")
                        }
                        Err(e) => tracing::error!(error = %e, "audit pruning failed; will retry"),
                    }
                    // Only records expired for some minutes: a node whose
                    // clock runs ahead must not forget a proof that a node
                    // behind it would still accept.
                    let before = SystemClock.now().saturating_sub(DPOP_PRUNE_MARGIN);
                    match store::Store::prune_dpop_proofs(&maintenance_store, before).await {
                        Ok(n) => tracing::debug!(proofs = n, "forgot expired DPoP proofs"),
                        Err(e) => {
                            tracing::error!(error = %e, "pruning DPoP proofs failed; will retry")
                        }
                    }
                }
                refresh_sealing_keys(&state, &mut fetched, started).await;
            }
        });
        tracing::info!(%addr, %issuer, "tessera is listening");
        Ok(Server {
            addr,
            admin_addr,
            stop,
            serving,
            admin_serving,
            maintenance,
            key_watch,
            store,
            state: kept,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin listener's address, unless `[admin] listen = "off"`.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The admin routes over the same state, for callers in the same process.
    pub fn admin_router(&self) -> axum::Router {
        admin::router(self.state.clone())
    }

    /// Runs key maintenance at `now` at once (it also runs every minute):
    /// rotation and retirement as the lifecycle rules say.
    pub async fn maintain_keys(&self, now: i64) -> Result<(), keys::KeyError> {
        self.state.keys.tick(&self.store, now).await
    }

    /// The service's routes over the same state, for callers in the same
    /// process (the fuzz targets drive requests through it without a socket).
    pub fn router(&self) -> axum::Router {
        http::router(self.state.clone())
    }

    /// The store it uses (for administration alongside the running service).
    pub fn store(&self) -> &SqlStore {
        &self.store
    }

    /// Stops accepting connections, lets in-flight requests finish, stops
    /// maintenance and closes the store.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.serving.await;
        if let Some(admin) = self.admin_serving {
            let _ = admin.await;
        }
        let _ = self.maintenance.await;
        let _ = self.key_watch.await;
        self.store.close().await;
    }
}
