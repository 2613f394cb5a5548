//! The master key, and the signing-key lifecycle
//! `next → current → retiring → retired`.
//!
//! Several nodes may share one store: each re-reads the key set (and does
//! maintenance) every `signing.reload_every` (R), so a change made by one
//! node or by `tessera keys rotate` reaches every node within R. Verifiers
//! cache the JWKS for at most [`Lifecycle::jwks_max_age`] (M, the
//! `Cache-Control: max-age` of `/.well-known/jwks.json`). With L the longest
//! token lifetime, the timing is:
//!
//! - A *next* key created at T is in every node's JWKS by T + R, and in
//!   every verifier's cache by T + R + M: it signs nothing before then
//!   ([`Lifecycle::prepublish`] = R + M, counted from its creation; `plan`
//!   and [`rotate_now`] both keep it).
//! - At rotation (time S) the *current* key becomes *retiring*. A node that
//!   has not re-read the keys yet still signs with it until S + R, and those
//!   tokens live until S + R + L; the key stays in the JWKS until
//!   S + [`Lifecycle::retire_after`] = S + R + L + 2 min (a minute for a
//!   maintenance pass that runs late, a minute of verifiers' clock leeway).
//!   Then it is *retired*: it leaves the JWKS and its private part is
//!   erased. (A verifier whose cache still holds it only trusts it longer.)
//! - Private parts are sealed with the master key; signing keys are only
//!   ever used to sign (`use: sig`, bound to one `alg`).
//! - A key that leaked ([`compromise`], `tessera keys compromised`) skips
//!   all of this: it becomes *compromised* (out of the JWKS, its private
//!   part erased, its sealed tokens revoked) and, if it was signing, a fresh
//!   key signs at once. Verifiers that cached the JWKS may still accept it
//!   for up to M; on PostgreSQL the other nodes hear of it by `NOTIFY` and
//!   reload at once.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tessera_jose::jwa::JwsAlgorithm;
use tessera_jose::jwk::Jwk;
use tessera_jose::jws::{Signer, Verifier};
use zeroize::Zeroizing;

use crate::config::Config;
use crate::crypto::MasterKey;
use crate::store::{KeyRecord, KeyState, KeyTransition, Store, StoreError};

/// A key-management failure.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The master key could not be read or is malformed.
    #[error("master key: {0}")]
    MasterKey(String),
    /// The data directory could not be prepared.
    #[error("data directory {path}: {message}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored key does not open with this master key (wrong key, or tampering).
    #[error("signing key {0} does not open with this master key")]
    Sealed(String),
    /// Key generation or parsing failed.
    #[error("key: {0}")]
    Jose(#[from] tessera_jose::Error),
    /// No signing key has this id.
    #[error("no signing key {0:?}")]
    UnknownKey(String),
    /// The key was already marked compromised.
    #[error("signing key {0:?} is already marked compromised")]
    AlreadyCompromised(String),
}

/// Where the master key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    /// `TESSERA_MASTER_KEY`.
    Environment,
    /// `master_key_file`.
    File(PathBuf),
    /// The data directory, generated on an earlier start.
    DataDir(PathBuf),
    /// The data directory, generated now (first start).
    Generated(PathBuf),
}

/// What a master key must look like, and one way to make one: the error for
/// anything else says both.
const MASTER_KEY_FORMS: &str = "it must be 32 bytes written as 64 hex digits, as base64url, or as \
     standard base64 (padded or not); make one with `openssl rand -base64 32` \
     (or `head -c 32 /dev/urandom | base64`)";

/// Reads 32 bytes written in any of the forms people make them in: 64 hex
/// digits (`openssl rand -hex 32`), standard base64 padded or not
/// (`openssl rand -base64 32`, `base64`), or base64url padded or not. The
/// two base64 alphabets are not mixed, and padding, where present, must be
/// right; leading and trailing whitespace (a newline from `echo`) is
/// ignored.
pub(crate) fn decode_master_key(text: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let refused = |what: &str| KeyError::MasterKey(format!("{what}; {MASTER_KEY_FORMS}"));
    let text = text.trim();
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut out = Zeroizing::new(Vec::with_capacity(32));
        for pair in text.as_bytes().chunks_exact(2) {
            let hex = std::str::from_utf8(pair).map_err(|_| refused("not hex"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| refused("not hex"))?);
        }
        out
    } else {
        let url = text.contains(['-', '_']);
        let standard = text.contains(['+', '/']);
        let padded = text.ends_with('=');
        let engine = match (url, standard, padded) {
            (true, true, _) => return Err(refused("it mixes the base64 and base64url alphabets")),
            (true, false, true) => &URL_SAFE,
            (true, false, false) => &URL_SAFE_NO_PAD,
            // Neither alphabet's special characters: both read it alike.
            (false, _, true) => &STANDARD,
            (false, _, false) => &STANDARD_NO_PAD,
        };
        Zeroizing::new(
            engine
                .decode(text)
                .map_err(|_| refused("it is neither hex nor base64"))?,
        )
    };
    if bytes.len() != 32 {
        return Err(refused(&format!("it decodes to {} bytes", bytes.len())));
    }
    Ok(bytes)
}

/// Creates the data directory (mode 0700) if needed.
pub fn prepare_data_dir(path: &Path) -> Result<(), KeyError> {
    let fail = |message: String| KeyError::DataDir {
        path: path.to_owned(),
        message,
    };
    if path.exists() {
        if !path.is_dir() {
            return Err(fail("exists and is not a directory".into()));
        }
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path).map_err(|e| fail(e.to_string()))
}

/// The master key: `TESSERA_MASTER_KEY` (given as `env_value`), else
/// `master_key_file`, else `master.key` in the data directory, generated
/// (mode 0600) on the first start.
pub fn load_master_key(
    config: &Config,
    env_value: Option<&str>,
) -> Result<(MasterKey, MasterKeySource), KeyError> {
    load_or_generate(config, env_value, true)
}

/// [`load_master_key`] for the commands other than `tessera serve`: never
/// generates one. A stray key made by a command run without the service's
/// key would seal signing keys and key the audit trail under a key the
/// service does not have.
pub fn load_existing_master_key(
    config: &Config,
    env_value: Option<&str>,
) -> Result<(MasterKey, MasterKeySource), KeyError> {
    load_or_generate(config, env_value, false)
}

fn load_or_generate(
    config: &Config,
    env_value: Option<&str>,
    generate: bool,
) -> Result<(MasterKey, MasterKeySource), KeyError> {
    let from = |bytes: Zeroizing<Vec<u8>>, source| {
        MasterKey::from_bytes(&bytes)
            .map(|k| (k, source))
            .ok_or_else(|| KeyError::MasterKey("unusable".into()))
    };
    // Which source a refused key came from, in front of why.
    let from_source = |source: String| {
        move |e: KeyError| match e {
            KeyError::MasterKey(why) => KeyError::MasterKey(format!("{source}: {why}")),
            other => other,
        }
    };
    if let Some(text) = env_value {
        let bytes = decode_master_key(text).map_err(from_source("TESSERA_MASTER_KEY".into()))?;
        return from(bytes, MasterKeySource::Environment);
    }
    let read = |path: &Path| -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| KeyError::MasterKey(format!("{}: {e}", path.display())))?,
        );
        decode_master_key(&text).map_err(from_source(path.display().to_string()))
    };
    if let Some(path) = &config.master_key_file {
        return from(read(path)?, MasterKeySource::File(path.clone()));
    }
    let path = config.data_dir.join("master.key");
    if path.exists() {
        return from(read(&path)?, MasterKeySource::DataDir(path));
    }
    if !generate {
        return Err(KeyError::MasterKey(format!(
            "none found: set TESSERA_MASTER_KEY or master_key_file to the service's master key \
             ({} does not exist; `tessera serve` generates one there on its first start)",
            path.display()
        )));
    }
    let bytes =
        crate::crypto::random_bytes(32).map_err(|_| KeyError::MasterKey("no randomness".into()))?;
    let text = Zeroizing::new(tessera_jose::b64::encode(bytes.as_slice()));
    write_secret_file(&path, text.as_bytes())
        .map_err(|e| KeyError::MasterKey(format!("{}: {e}", path.display())))?;
    from(bytes, MasterKeySource::Generated(path))
}

/// Writes a new file readable by its owner only; never overwrites.
fn write_secret_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// A maintenance pass may start late (it follows the previous one, which
/// may wait on the store) and nodes' clocks differ a little: a minute.
const MAINTENANCE_SLACK: i64 = 60;
/// The clock leeway verifiers allow on `exp` (tessera-verify's default).
const VERIFIER_LEEWAY: i64 = 60;

/// The timing rules of the lifecycle, from the configuration (all in
/// seconds; see the module documentation for the arithmetic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    /// The signing algorithm of new keys.
    pub alg: JwsAlgorithm,
    /// How long a key signs.
    pub rotate_every: i64,
    /// How long verifiers may cache the JWKS (its `Cache-Control: max-age`):
    /// half the rotation period, at most an hour.
    pub jwks_max_age: i64,
    /// How often each node re-reads the key set (`signing.reload_every`):
    /// how long a node may lag behind a change made elsewhere.
    pub reload_every: i64,
    /// How long a retiring key stays published after it stopped being
    /// current: the longest token lifetime, plus `reload_every` (a node that
    /// has not seen the rotation yet still signs with it), plus a minute of
    /// maintenance slack and a minute of verifiers' clock leeway.
    pub retire_after: i64,
}

impl Lifecycle {
    /// From the configuration.
    pub fn from_config(config: &Config) -> Self {
        let secs = crate::config::seconds;
        let rotate_every = secs(config.signing.rotate_every);
        let reload_every = secs(config.signing.reload_every);
        let t = &config.tokens;
        // Step-up assertions never outlive their session; listed anyway.
        let longest = secs(t.access_ttl)
            .max(secs(t.session_ttl))
            .max(secs(t.step_up_ttl));
        Lifecycle {
            alg: config.signing.alg,
            rotate_every,
            jwks_max_age: (rotate_every / 2).min(3600),
            reload_every,
            retire_after: longest
                .saturating_add(reload_every)
                .saturating_add(MAINTENANCE_SLACK)
                .saturating_add(VERIFIER_LEEWAY),
        }
    }

    /// How long a next key is published before it may sign: every node
    /// serves it after `reload_every`, every verifier's cache holds it
    /// `jwks_max_age` later.
    pub fn prepublish(&self) -> i64 {
        self.reload_every.saturating_add(self.jwks_max_age)
    }

    /// The earliest time a next key created at `created_at` may sign.
    pub fn may_sign_from(&self, created_at: i64) -> i64 {
        created_at.saturating_add(self.prepublish())
    }
}

fn generate(
    master: &MasterKey,
    alg: JwsAlgorithm,
    state: KeyState,
    now: i64,
    activates_at: i64,
) -> Result<KeyRecord, KeyError> {
    let key = Jwk::generate_for(alg)?;
    let kid = key.kid().unwrap_or_default().to_owned();
    let sealed = master
        .seal(&kid, key.to_private_json().as_bytes())
        .map_err(|_| KeyError::MasterKey("sealing failed".into()))?;
    Ok(KeyRecord {
        kid,
        alg: alg.name().to_owned(),
        state,
        public_jwk: key.to_public()?.to_json(),
        sealed_private: Some(sealed),
        created_at: now,
        activates_at,
        retires_at: None,
    })
}

/// What maintenance decided: transitions and new keys, applied together.
#[derive(Debug, Default)]
pub struct Plan {
    /// State changes.
    pub transitions: Vec<KeyTransition>,
    /// Keys to create.
    pub new_keys: Vec<KeyRecord>,
}

/// Decides, for the keys as stored at `now`, what must change: a first key
/// on an empty store, a next key when there is none, the rotation when the
/// next key's time has come (and it has been published long enough), and
/// retirement of retiring keys whose tokens have all expired.
pub fn plan(
    keys: &[KeyRecord],
    rules: &Lifecycle,
    master: &MasterKey,
    now: i64,
) -> Result<Plan, KeyError> {
    let mut plan = Plan::default();
    let find = |s: KeyState| keys.iter().find(|k| k.state == s);
    let mut current = find(KeyState::Current).cloned();
    let mut next = find(KeyState::Next).cloned();

    for k in keys.iter().filter(|k| k.state == KeyState::Retiring) {
        if k.retires_at.is_some_and(|t| t <= now) {
            plan.transitions
                .push(transition(k, KeyState::Retired, None, None));
        }
    }
    if let (Some(cur), Some(nxt)) = (&current, &next) {
        let published_long_enough = rules.may_sign_from(nxt.created_at) <= now;
        if nxt.activates_at <= now && published_long_enough {
            plan.transitions.push(transition(
                cur,
                KeyState::Retiring,
                None,
                Some(now.saturating_add(rules.retire_after)),
            ));
            plan.transitions
                .push(transition(nxt, KeyState::Current, Some(now), None));
            current = Some(KeyRecord {
                state: KeyState::Current,
                activates_at: now,
                ..nxt.clone()
            });
            next = None;
        }
    }
    let current_activated = match &current {
        Some(c) => c.activates_at,
        None => {
            // First start (or every key lost its place): sign at once.
            let first = generate(master, rules.alg, KeyState::Current, now, now)?;
            plan.new_keys.push(first);
            now
        }
    };
    if next.is_none() {
        let at = current_activated
            .saturating_add(rules.rotate_every)
            .max(rules.may_sign_from(now));
        plan.new_keys
            .push(generate(master, rules.alg, KeyState::Next, now, at)?);
    }
    Ok(plan)
}

fn transition(
    k: &KeyRecord,
    to: KeyState,
    activates_at: Option<i64>,
    retires_at: Option<i64>,
) -> KeyTransition {
    KeyTransition {
        kid: k.kid.clone(),
        from: k.state,
        to,
        activates_at,
        retires_at,
    }
}

/// What the HTTP layer reads on every request: the signer of the current
/// key, the published JWKS, and a verifier over the published keys.
pub struct Snapshot {
    /// Signs with the current key.
    pub signer: Signer,
    /// The current key's id.
    pub kid: String,
    /// `{"keys":[…]}`: next, current and retiring public keys.
    pub jwks: String,
    /// Verifies tokens of every published key.
    pub verifier: Verifier,
    /// The ids of the published keys.
    pub published: Vec<String>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn snapshot(keys: &[KeyRecord], master: &MasterKey) -> Result<Snapshot, KeyError> {
    let current = keys
        .iter()
        .find(|k| k.state == KeyState::Current)
        .ok_or(KeyError::Store(StoreError::Corrupt(
            "no current key".into(),
        )))?;
    let sealed = current
        .sealed_private
        .as_deref()
        .ok_or_else(|| KeyError::Sealed(current.kid.clone()))?;
    let private = master
        .open(&current.kid, sealed)
        .map_err(|_| KeyError::Sealed(current.kid.clone()))?;
    let private = Jwk::from_json(&private)?;
    let alg: JwsAlgorithm = current.alg.parse()?;
    let published: Vec<&KeyRecord> = keys
        .iter()
        .filter(|k| {
            matches!(
                k.state,
                KeyState::Next | KeyState::Current | KeyState::Retiring
            )
        })
        .collect();
    let mut verifier = Verifier::builder();
    let mut jwks = Vec::with_capacity(published.len());
    for k in &published {
        let public = Jwk::from_json(k.public_jwk.as_bytes())?;
        verifier = verifier.key(&public, &[k.alg.parse::<JwsAlgorithm>()?])?;
        jwks.push(
            serde_json::from_str::<serde_json::Value>(&k.public_jwk)
                .map_err(|e| KeyError::Store(StoreError::Corrupt(e.to_string())))?,
        );
    }
    Ok(Snapshot {
        signer: Signer::new(&private, alg)?,
        kid: current.kid.clone(),
        published: published.iter().map(|k| k.kid.clone()).collect(),
        jwks: serde_json::json!({ "keys": jwks }).to_string(),
        verifier: verifier.build()?,
    })
}

/// The signing keys: maintenance against the store, and the snapshot the
/// HTTP layer reads.
pub struct KeyRing {
    master: MasterKey,
    rules: Lifecycle,
    current: RwLock<Arc<Snapshot>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Brings the stored keys up to date at `now` and loads them.
    pub async fn open<S: Store>(
        store: &S,
        master: MasterKey,
        rules: Lifecycle,
        now: i64,
    ) -> Result<Self, KeyError> {
        let keys = maintain(store, &master, &rules, now).await?;
        let snap = snapshot(&keys, &master)?;
        Ok(KeyRing {
            master,
            rules,
            current: RwLock::new(Arc::new(snap)),
        })
    }

    /// The lifecycle rules in force.
    pub fn rules(&self) -> &Lifecycle {
        &self.rules
    }

    /// The snapshot in force.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.current.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// [`rotate_now`] with this ring's keys, then its snapshot follows.
    pub async fn rotate<S: Store>(&self, store: &S, now: i64) -> Result<i64, KeyError> {
        let at = rotate_now(store, &self.master, &self.rules, now).await?;
        self.tick(store, now).await?;
        Ok(at)
    }

    /// [`compromise`] with this ring's keys; this node's snapshot stops
    /// publishing and signing with the key before it returns.
    pub async fn compromise<S: Store>(
        &self,
        store: &S,
        kid: &str,
        now: i64,
    ) -> Result<Compromise, KeyError> {
        let done = compromise(store, &self.master, &self.rules, kid, now).await?;
        // Done in the store: a failure to reload here is not the change's
        // failure (a retry would find the key compromised); maintenance
        // tries again within `reload_every`.
        if let Err(e) = self.tick(store, now).await {
            tracing::error!(error = %e, kid, "the key is compromised in the store, but this node \
                could not reload its keys yet; it retries within signing.reload_every");
        }
        Ok(done)
    }

    /// One maintenance step at `now`; the snapshot follows the store.
    pub async fn tick<S: Store>(&self, store: &S, now: i64) -> Result<(), KeyError> {
        let keys = maintain(store, &self.master, &self.rules, now).await?;
        let snap = Arc::new(snapshot(&keys, &self.master)?);
        match self.current.write() {
            Ok(mut s) => *s = snap,
            Err(poisoned) => *poisoned.into_inner() = snap,
        }
        Ok(())
    }
}

/// Applies [`plan`] at `now` and returns the keys as stored afterwards. A
/// conflict (another process changed the keys first) is not an error: the
/// keys are read again as that process left them.
pub async fn maintain<S: Store>(
    store: &S,
    master: &MasterKey,
    rules: &Lifecycle,
    now: i64,
) -> Result<Vec<KeyRecord>, KeyError> {
    let keys = store.signing_keys().await?;
    let p = plan(&keys, rules, master, now)?;
    if p.transitions.is_empty() && p.new_keys.is_empty() {
        return Ok(keys);
    }
    match store.change_keys(&p.transitions, &p.new_keys).await {
        Ok(()) | Err(StoreError::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(store.signing_keys().await?)
}

/// What marking a key compromised did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compromise {
    /// The leaked key.
    pub kid: String,
    /// The key that signs from now on.
    pub new_kid: String,
    /// Until when a verifier that cached the JWKS before may still accept
    /// the leaked key's tokens: now + the JWKS `max-age` advertised.
    pub verifiers_may_accept_until: i64,
}

/// `tessera keys compromised KID`: in one transaction the key `kid` becomes
/// compromised (it leaves the JWKS, its private part is erased, the sealed
/// tokens it signed are revoked) and, if it was the current key, a fresh key
/// signs from `now` on, without the pre-publication wait. A leaked next key
/// is replaced by a fresh next key.
pub async fn compromise<S: Store>(
    store: &S,
    master: &MasterKey,
    rules: &Lifecycle,
    kid: &str,
    now: i64,
) -> Result<Compromise, KeyError> {
    // A rotation or another node's maintenance may change the keys between
    // the read and the change (a conflict): read them again and retry.
    let mut attempts = 0;
    loop {
        let keys = store.signing_keys().await?;
        let leaked = keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| KeyError::UnknownKey(kid.to_owned()))?;
        if leaked.state == KeyState::Compromised {
            return Err(KeyError::AlreadyCompromised(kid.to_owned()));
        }
        let mut new_keys = Vec::new();
        if leaked.state == KeyState::Current {
            new_keys.push(generate(master, rules.alg, KeyState::Current, now, now)?);
        }
        let gone = transition(leaked, KeyState::Compromised, None, Some(now));
        match store.change_keys(&[gone], &new_keys).await {
            Ok(()) => break,
            Err(StoreError::Conflict(_)) if attempts < 5 => attempts += 1,
            Err(e) => return Err(e.into()),
        }
    }
    // A fresh next key if the leaked one was next; retirements due.
    let keys = maintain(store, master, rules, now).await?;
    let new_kid = keys
        .iter()
        .find(|k| k.state == KeyState::Current)
        .map(|k| k.kid.clone())
        .ok_or(KeyError::Store(StoreError::Corrupt(
            "no current key".into(),
        )))?;
    Ok(Compromise {
        kid: kid.to_owned(),
        new_kid,
        verifiers_may_accept_until: now.saturating_add(rules.jwks_max_age),
    })
}

/// `tessera keys rotate`: the next key signs from `now` on — or, if it has
/// not been published for [`Lifecycle::prepublish`] yet (every node serving
/// it, then a full JWKS cache period), as soon as it has. Returns when the
/// rotation takes effect (every node signs with it `reload_every` later at
/// the latest).
pub async fn rotate_now<S: Store>(
    store: &S,
    master: &MasterKey,
    rules: &Lifecycle,
    now: i64,
) -> Result<i64, KeyError> {
    let keys = maintain(store, master, rules, now).await?;
    let next = keys
        .iter()
        .find(|k| k.state == KeyState::Next)
        .ok_or(KeyError::Store(StoreError::Corrupt("no next key".into())))?;
    let at = now.max(rules.may_sign_from(next.created_at));
    if at < next.activates_at {
        store
            .change_keys(&[transition(next, KeyState::Next, Some(at), None)], &[])
            .await?;
    }
    maintain(store, master, rules, now).await?;
    // A key created under other rules (a longer `reload_every` since) may
    // have an earlier `activates_at`; `plan` still waits for `at`.
    Ok(at
        .min(next.activates_at)
        .max(rules.may_sign_from(next.created_at)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// Issue 24: the forms people make master keys in. `openssl rand
    /// -base64 32` (standard, padded) was refused before.
    #[test]
    fn master_keys_in_hex_base64url_and_standard_base64() {
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        use base64::Engine as _;
        // Bytes whose base64 holds '+' and '/' (and '-' '_' in base64url).
        let key: Vec<u8> = (0..32u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(0xfb))
            .collect();
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let standard = STANDARD.encode(&key);
        assert!(
            standard.contains(['+', '/']) && standard.ends_with('='),
            "{standard}"
        );
        for text in [
            hex.clone(),
            hex.to_uppercase(),
            standard.clone(),
            format!("{standard}\n"),
            STANDARD_NO_PAD.encode(&key),
            URL_SAFE.encode(&key),
            URL_SAFE_NO_PAD.encode(&key),
        ] {
            let decoded = decode_master_key(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(decoded.as_slice(), key.as_slice(), "{text}");
        }
        // Anything else names the three forms and a command that makes one.
        let mixed = format!("{}-", &standard[..42]);
        for bad in [
            STANDARD.encode(&key[..16]),
            hex[..62].to_owned(),
            "not a key at all".to_owned(),
            mixed,
            format!("{}==", STANDARD_NO_PAD.encode(&key)),
        ] {
            let e = decode_master_key(&bad).unwrap_err().to_string();
            for needed in [
                "hex",
                "base64url",
                "standard base64",
                "openssl rand -base64 32",
            ] {
                assert!(e.contains(needed), "{bad}: {e}");
            }
            assert!(!e.contains(&bad), "the error repeats the key: {e}");
        }
    }
    use crate::store::SqlStore;

    const DAY: i64 = 86_400;

    fn rules() -> Lifecycle {
        Lifecycle {
            alg: JwsAlgorithm::ES256,
            rotate_every: 30 * DAY,
            jwks_max_age: 3600,
            reload_every: 60,
            retire_after: 12 * 3600 + 60 + 120,
        }
    }

    fn states(keys: &[KeyRecord]) -> Vec<(&str, KeyState)> {
        keys.iter().map(|k| (k.kid.as_str(), k.state)).collect()
    }

    #[tokio::test]
    async fn lifecycle_next_current_retiring_retired() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlStore::open_file(&dir.path().join("t.db")).await.unwrap();
        let master = MasterKey::from_bytes(&[1u8; 32]).unwrap();
        let r = rules();
        let t0 = 1_800_000_000;

        // First start: a current key signing now, a next key published.
        let keys = maintain(&store, &master, &r, t0).await.unwrap();
        let s = states(&keys);
        assert_eq!(s.len(), 2);
        let (k1, k2) = (s[0].0.to_owned(), s[1].0.to_owned());
        assert_eq!((s[0].1, s[1].1), (KeyState::Current, KeyState::Next));
        assert_eq!(keys[1].activates_at, t0 + 30 * DAY);
        let ring = KeyRing::open(&store, MasterKey::from_bytes(&[1u8; 32]).unwrap(), r, t0)
            .await
            .unwrap();
        assert_eq!(ring.snapshot().kid, k1);
        let jwks: serde_json::Value = serde_json::from_str(&ring.snapshot().jwks).unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
        assert!(!ring.snapshot().jwks.contains("\"d\""));

        // Nothing changes until the next key's time.
        let same = maintain(&store, &master, &r, t0 + 29 * DAY).await.unwrap();
        assert_eq!(states(&same), states(&keys));

        // Rotation: k1 retiring, k2 current, a new next key.
        let t1 = t0 + 30 * DAY;
        ring.tick(&store, t1).await.unwrap();
        let keys = store.signing_keys().await.unwrap();
        let s = states(&keys);
        assert_eq!(s[0], (k1.as_str(), KeyState::Retiring));
        assert_eq!(s[1], (k2.as_str(), KeyState::Current));
        assert_eq!(s[2].1, KeyState::Next);
        assert_eq!(keys[0].retires_at, Some(t1 + r.retire_after));
        assert_eq!(ring.snapshot().kid, k2);
        // A token signed by k1 still verifies while k1 is retiring.
        let jwks: serde_json::Value = serde_json::from_str(&ring.snapshot().jwks).unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 3);

        // Retirement once every k1 token has expired: out of the JWKS, private erased.
        ring.tick(&store, t1 + r.retire_after).await.unwrap();
        let keys = store.signing_keys().await.unwrap();
        assert_eq!(keys[0].state, KeyState::Retired);
        assert_eq!(keys[0].sealed_private, None);
        assert!(!ring.snapshot().jwks.contains(&k1));
    }

    #[tokio::test]
    async fn manual_rotation_waits_for_jwks_caches() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlStore::open_file(&dir.path().join("t.db")).await.unwrap();
        let master = MasterKey::from_bytes(&[2u8; 32]).unwrap();
        let r = rules();
        let t0 = 1_800_000_000;
        maintain(&store, &master, &r, t0).await.unwrap();
        // The next key was published just now: every node serves it a
        // minute on (reload_every), every verifier's cache an hour after.
        let at = rotate_now(&store, &master, &r, t0 + 60).await.unwrap();
        assert_eq!(at, t0 + 60 + 3600);
        let keys = store.signing_keys().await.unwrap();
        assert_eq!(keys[0].state, KeyState::Current);
        assert_eq!(keys[1].activates_at, at);
        let keys = maintain(&store, &master, &r, at - 1).await.unwrap();
        assert_eq!(keys[0].state, KeyState::Current, "not a second early");
        // Then maintenance rotates.
        let keys = maintain(&store, &master, &r, at).await.unwrap();
        assert_eq!(keys[0].state, KeyState::Retiring);
        assert_eq!(keys[1].state, KeyState::Current);
        // Once the new next key has been published that long, rotate is immediate.
        let t = at + r.prepublish();
        assert_eq!(rotate_now(&store, &master, &r, t).await.unwrap(), t);
        let keys = store.signing_keys().await.unwrap();
        assert_eq!(keys[2].state, KeyState::Current);
    }

    #[test]
    fn timing_counts_the_reload_period() {
        let mut config = Config::load(None, Vec::new(), None).unwrap();
        config.signing.rotate_every = std::time::Duration::from_secs(30 * 86_400);
        config.signing.reload_every = std::time::Duration::from_secs(3600);
        let r = Lifecycle::from_config(&config);
        assert_eq!(r.jwks_max_age, 3600, "the JWKS max-age is unchanged");
        assert_eq!(r.prepublish(), 3600 + 3600);
        // 12 h sessions (the longest token) + an hour's reload + 2 min.
        assert_eq!(r.retire_after, 12 * 3600 + 3600 + 120);
    }

    /// `rotate_now` on a key created before `reload_every` grew answers
    /// when the key really signs, not its stored `activates_at`.
    #[tokio::test]
    async fn rotate_now_answers_when_the_key_really_signs() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlStore::open_file(&dir.path().join("t.db")).await.unwrap();
        let master = MasterKey::from_bytes(&[5u8; 32]).unwrap();
        let t0 = 1_800_000_000;
        let short = Lifecycle {
            rotate_every: 600,
            reload_every: 1,
            ..rules()
        };
        let keys = maintain(&store, &master, &short, t0).await.unwrap();
        assert_eq!(keys[1].activates_at, t0 + 1 + 3600);
        let long = Lifecycle {
            reload_every: 3600,
            ..short
        };
        let at = rotate_now(&store, &master, &long, t0 + 10).await.unwrap();
        assert_eq!(at, t0 + 3600 + 3600);
        let keys = maintain(&store, &master, &long, at - 1).await.unwrap();
        assert_eq!(keys[0].state, KeyState::Current);
        let keys = maintain(&store, &master, &long, at).await.unwrap();
        assert_eq!(keys[1].state, KeyState::Current);
    }

    #[tokio::test]
    async fn a_wrong_master_key_cannot_open_the_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlStore::open_file(&dir.path().join("t.db")).await.unwrap();
        let t0 = 1_800_000_000;
        maintain(
            &store,
            &MasterKey::from_bytes(&[3u8; 32]).unwrap(),
            &rules(),
            t0,
        )
        .await
        .unwrap();
        let wrong = MasterKey::from_bytes(&[4u8; 32]).unwrap();
        let err = KeyRing::open(&store, wrong, rules(), t0).await.unwrap_err();
        assert!(matches!(err, KeyError::Sealed(_)), "{err}");
    }

    #[test]
    fn master_key_encodings() {
        let hex = "00".repeat(31) + "ff";
        assert_eq!(decode_master_key(&hex).unwrap()[31], 0xff);
        let b64 = tessera_jose::b64::encode([9u8; 32]);
        assert_eq!(decode_master_key(&format!(" {b64}\n")).unwrap()[0], 9);
        for bad in [
            "",
            "abc",
            &tessera_jose::b64::encode([9u8; 31]),
            &"g".repeat(64),
        ] {
            assert!(decode_master_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn generated_master_key_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        prepare_data_dir(&data).unwrap();
        let mut config = Config::load(None, Vec::new(), None).unwrap();
        config.data_dir = data.clone();
        let (k1, s1) = load_master_key(&config, None).unwrap();
        assert!(matches!(s1, MasterKeySource::Generated(_)));
        let (k2, s2) = load_master_key(&config, None).unwrap();
        assert!(matches!(s2, MasterKeySource::DataDir(_)));
        let sealed = k1.seal("x", b"y").unwrap();
        assert_eq!(k2.open("x", &sealed).unwrap().as_slice(), b"y");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&data), 0o700);
            assert_eq!(mode(&data.join("master.key")), 0o600);
        }
        let (_, s3) = load_master_key(&config, Some(&"11".repeat(32))).unwrap();
        assert_eq!(s3, MasterKeySource::Environment);
        assert!(load_master_key(&config, Some("short")).is_err());
    }
}
