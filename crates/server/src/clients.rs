//! Client registration and authentication: secrets are 256 random bits,
//! shown once, stored as Argon2id hashes and checked in constant time.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use zeroize::Zeroizing;

use tessera_jose::jwk::JwkSet;

use crate::crypto::random_bytes;
use crate::store::{ClientRecord, Registration, Store, StoreError};

/// The grants a client can be given.
pub const GRANTS: &[&str] = &[
    "sessions",
    "client_credentials",
    "refresh_token",
    "token_exchange",
];

/// A client-management failure.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request is malformed (an unknown grant, an empty name).
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed.
    #[error("could not hash the secret")]
    Hash,
}

/// A client just created: the only time its secret exists in clear.
pub struct NewClient {
    /// The record as stored.
    pub record: ClientRecord,
    /// The secret, to show once (empty for a `private_key_jwt` client).
    pub secret: Zeroizing<String>,
}

/// Checks a client's JWK Set for `private_key_jwt`: at least one public
/// signing key, and no private or symmetric key (a JWKS is public data).
pub fn check_client_jwks(json: &str) -> Result<JwkSet, ClientError> {
    let set = JwkSet::from_json(json.as_bytes())
        .map_err(|e| ClientError::Invalid(format!("the client JWKS is not valid: {e}")))?;
    if set
        .keys()
        .iter()
        .any(|k| k.is_private() || k.is_symmetric())
    {
        return Err(ClientError::Invalid(
            "the client JWKS must hold public keys only".into(),
        ));
    }
    if set.keys().is_empty() {
        return Err(ClientError::Invalid(
            "the client JWKS has no usable key".into(),
        ));
    }
    Ok(set)
}

fn random_token(bytes: usize) -> Result<Zeroizing<String>, ClientError> {
    crate::crypto::random_token(bytes).map_err(|_| ClientError::Hash)
}

/// Hashes a secret with Argon2id (default parameters: 19 MiB, 2 passes).
pub fn hash_secret(secret: &str) -> Result<String, ClientError> {
    let salt = random_bytes(16).map_err(|_| ClientError::Hash)?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| ClientError::Hash)?;
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| ClientError::Hash)
}

/// Whether `secret` matches the stored hash.
pub fn verify_secret(secret: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .and_then(|h| Argon2::default().verify_password(secret.as_bytes(), &h))
        .is_ok()
}

/// Registers a client with `grants` and no registered audiences or scopes
/// (the default rule: see [`crate::policy::AccessError`]); [`create_with`]
/// registers them too.
pub async fn create<S: Store>(
    store: &S,
    name: &str,
    grants: &[String],
    jwks: Option<&str>,
    now: i64,
) -> Result<NewClient, ClientError> {
    create_with(store, name, grants, jwks, Registration::default(), now).await
}

/// The longest list a registration field may hold.
const MAX_REGISTERED: usize = 256;

/// Checks a registration: audiences and introspected audiences non-empty
/// strings (at most 1024 bytes), scopes RFC 6749 §3.3 scope tokens, and
/// every client named in `may_act` registered. Duplicates are dropped.
pub async fn check_registration<S: Store>(
    store: &S,
    registration: Registration,
) -> Result<Registration, ClientError> {
    fn dedup(
        list: Vec<String>,
        what: &str,
        valid: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, ClientError> {
        if list.len() > MAX_REGISTERED {
            return Err(ClientError::Invalid(format!(
                "at most {MAX_REGISTERED} {what} may be registered"
            )));
        }
        let mut out: Vec<String> = Vec::with_capacity(list.len());
        for item in list {
            if !valid(&item) {
                return Err(ClientError::Invalid(format!(
                    "{item:?} is not a valid {what}"
                )));
            }
            if !out.contains(&item) {
                out.push(item);
            }
        }
        Ok(out)
    }
    let audience = |a: &str| !a.is_empty() && a.len() <= 1024 && !a.chars().any(char::is_control);
    // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
    let scope = |s: &str| {
        !s.is_empty()
            && s.len() <= 256
            && s.bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
    };
    let registration = Registration {
        audiences: registration
            .audiences
            .map(|list| dedup(list, "audience", audience))
            .transpose()?,
        scopes: dedup(registration.scopes, "scope", scope)?,
        may_act: dedup(registration.may_act, "client id", |c| !c.is_empty())?,
        introspect: dedup(registration.introspect, "audience", audience)?,
        dpop_required: registration.dpop_required,
    };
    for actor in &registration.may_act {
        if store.client(actor).await?.is_none() {
            return Err(ClientError::Invalid(format!(
                "may_act names {actor:?}, which is not a registered client"
            )));
        }
    }
    Ok(registration)
}

/// Registers a client with `grants` (each one of [`GRANTS`]) and what it
/// may ask for. With `jwks` (its public JWK Set), it authenticates with
/// `private_key_jwt` and gets no secret; otherwise it gets a secret, shown
/// once.
pub async fn create_with<S: Store>(
    store: &S,
    name: &str,
    grants: &[String],
    jwks: Option<&str>,
    registration: Registration,
    now: i64,
) -> Result<NewClient, ClientError> {
    if let Some(json) = jwks {
        check_client_jwks(json)?;
    }
    register(store, name, grants, jwks, false, registration, now).await
}

/// Registers a public client (RFC 6749 §2.1: an app on a device, which
/// cannot keep a secret): no secret and no JWKS, only the `refresh_token`
/// grant, and every token it gets bound to a DPoP key (RFC 9449 §5). It
/// refreshes the sessions a backend minted for it (`holder`), within its
/// own registered audiences and scopes.
pub async fn create_public<S: Store>(
    store: &S,
    name: &str,
    grants: &[String],
    registration: Registration,
    now: i64,
) -> Result<NewClient, ClientError> {
    if grants.iter().any(|g| g != "refresh_token") {
        return Err(ClientError::Invalid(
            "a public client may only have the refresh_token grant: it cannot keep a secret, \
             so it only refreshes the sessions a backend minted for it, with a DPoP proof"
                .into(),
        ));
    }
    let registration = Registration {
        dpop_required: true,
        ..registration
    };
    check_public(&registration)?;
    register(store, name, grants, None, true, registration, now).await
}

/// What a public client's registration may not say: that it introspects,
/// or that its tokens may go unbound. Its `may_act` names the backends that
/// mint the sessions it holds (`POST /v1/sessions` with `"holder"`).
pub fn check_public(registration: &Registration) -> Result<(), ClientError> {
    if !registration.introspect.is_empty() {
        return Err(ClientError::Invalid(
            "a public client cannot introspect: it has no credentials".into(),
        ));
    }
    if !registration.dpop_required {
        return Err(ClientError::Invalid(
            "a public client's tokens are always bound to its key (dpop: required)".into(),
        ));
    }
    Ok(())
}

async fn register<S: Store>(
    store: &S,
    name: &str,
    grants: &[String],
    jwks: Option<&str>,
    public: bool,
    registration: Registration,
    now: i64,
) -> Result<NewClient, ClientError> {
    let registration = check_registration(store, registration).await?;
    if name.trim().is_empty() || name.len() > 200 {
        return Err(ClientError::Invalid(
            "a client needs a name (1 to 200 characters)".into(),
        ));
    }
    if grants.is_empty() {
        return Err(ClientError::Invalid(format!(
            "a client needs at least one grant: {}",
            GRANTS.join(", ")
        )));
    }
    let mut list: Vec<String> = Vec::new();
    for g in grants {
        if !GRANTS.contains(&g.as_str()) {
            return Err(ClientError::Invalid(format!(
                "unknown grant {g:?}; known: {}",
                GRANTS.join(", ")
            )));
        }
        if !list.contains(g) {
            list.push(g.clone());
        }
    }
    let id = format!("cli_{}", random_token(16)?.as_str());
    let (secret, secret_hash) = match jwks {
        Some(_) => (Zeroizing::new(String::new()), String::new()),
        None if public => (Zeroizing::new(String::new()), String::new()),
        None => {
            let secret = random_token(32)?;
            let hash = hash_secret(&secret)?;
            (secret, hash)
        }
    };
    let record = ClientRecord {
        id,
        name: name.trim().to_owned(),
        secret_hash,
        grants: list,
        created_at: now,
        jwks: jwks.map(str::to_owned),
        registration,
        legacy: false,
        previous_secret: None,
        public,
    };
    store.create_client(&record).await?;
    Ok(NewClient { record, secret })
}

/// How long a successful Argon2id check is remembered in memory.
const VERIFIED_FOR: std::time::Duration = std::time::Duration::from_secs(60);
/// At most this many remembered checks; the memory is emptied when full.
const VERIFIED_MAX: usize = 4096;

/// Recent successful checks, so a client calling many times a second pays
/// Argon2id once a minute rather than on every request. An entry is keyed
/// by an HMAC (a key drawn per process) of the id and the presented secret,
/// and holds the stored hash it was checked against: a new secret or a
/// deleted client misses, since the record is looked up on every call (the
/// store keeps one for at most `clients.cache_for`). Failures
/// are never remembered, so guessing still costs a hash per guess.
struct Verified {
    mac: crate::crypto::Mac,
    seen: std::sync::Mutex<std::collections::HashMap<[u8; 32], (String, std::time::Instant)>>,
}

fn verified() -> Option<&'static Verified> {
    static V: std::sync::OnceLock<Option<Verified>> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        crate::crypto::Mac::random().ok().map(|mac| Verified {
            mac,
            seen: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    })
    .as_ref()
}

impl Verified {
    fn key(&self, id: &str, secret: &str) -> [u8; 32] {
        self.mac.tag(&[id.as_bytes(), secret.as_bytes()])
    }

    fn recalls(&self, key: &[u8; 32], hash: &str) -> bool {
        let Ok(seen) = self.seen.lock() else {
            return false;
        };
        seen.get(key)
            .is_some_and(|(h, at)| h == hash && at.elapsed() < VERIFIED_FOR)
    }

    fn remember(&self, key: [u8; 32], hash: String) {
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() >= VERIFIED_MAX {
                seen.retain(|_, (_, at)| at.elapsed() < VERIFIED_FOR);
                if seen.len() >= VERIFIED_MAX {
                    seen.clear();
                }
            }
            seen.insert(key, (hash, std::time::Instant::now()));
        }
    }
}

/// Why a client could not be authenticated, other than a wrong secret.
#[derive(Debug, thiserror::Error)]
pub enum AuthenticateError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Too many secret checks are queued: the caller answers 503 with
    /// `Retry-After` instead of waiting without bound.
    #[error("too many client secret checks are waiting")]
    Busy,
}

/// How many requests may wait for a secret-hashing permit; beyond that a
/// request is refused at once ([`AuthenticateError::Busy`]).
pub const HASHING_QUEUE: usize = 64;
/// How long a request waits for a permit before it is refused.
pub const HASHING_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A permit to run one Argon2id check: waits at most [`HASHING_WAIT`],
/// behind at most [`HASHING_QUEUE`] others. Both the permit and the place
/// in the queue are released when dropped, also when the request is
/// abandoned (the client went away, a timeout): nothing leaks.
async fn hashing_permit() -> Result<tokio::sync::SemaphorePermit<'static>, AuthenticateError> {
    static QUEUE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(HASHING_QUEUE);
    let permits = hashing_permits();
    if let Ok(permit) = permits.try_acquire() {
        return Ok(permit);
    }
    let refused = || {
        crate::metrics::SECRET_HASH_REFUSED.inc();
        AuthenticateError::Busy
    };
    let _place = QUEUE.try_acquire().map_err(|_| refused())?;
    match tokio::time::timeout(HASHING_WAIT, permits.acquire()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(refused()),
    }
}

/// The client `id`, if `secret` is its secret. Unknown ids cost a hash
/// too, so timing does not tell which ids exist. A success is remembered
/// for a minute, bound to the stored hash: the record is still looked up each
/// time (in the store, which may keep it for `clients.cache_for`).
pub async fn authenticate<S: Store>(
    store: &S,
    id: &str,
    secret: &str,
) -> Result<Option<std::sync::Arc<ClientRecord>>, AuthenticateError> {
    // A fixed, valid hash of a random secret, for unknown ids.
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let client = store.client(id).await?;
    let memory = verified();
    let key = memory.map(|m| m.key(id, secret));
    // After a roll with a grace period, the previous secret until then.
    let previous = client
        .as_ref()
        .and_then(|c| c.previous_secret.clone())
        .filter(|(_, until)| *until > unix_now())
        .map(|(hash, _)| hash);
    let recalled = |m: &Verified, k: &[u8; 32], c: &ClientRecord| {
        (!c.secret_hash.is_empty() && m.recalls(k, &c.secret_hash))
            || previous.as_deref().is_some_and(|p| m.recalls(k, p))
    };
    if let (Some(m), Some(k), Some(c)) = (memory, &key, &client) {
        if recalled(m, k, c) {
            return Ok(client);
        }
    }
    let hash = match &client {
        Some(c) => c.secret_hash.clone(),
        None => DUMMY
            .get_or_init(|| hash_secret("not a client secret").unwrap_or_default())
            .clone(),
    };
    // A private_key_jwt client has no secret: nothing matches it.
    if client.as_ref().is_some_and(|c| c.secret_hash.is_empty()) {
        return Ok(None);
    }
    // Each check holds 19 MiB for a few milliseconds: a burst of calls, or
    // of guesses, queues for a permit instead of growing memory without
    // bound. Whoever waited looks at the memory again: the first of a burst
    // of calls with the same secret verifies it for all the others.
    let permit = hashing_permit().await?;
    if let (Some(m), Some(k), Some(c)) = (memory, &key, &client) {
        if recalled(m, k, c) {
            return Ok(client);
        }
    }
    crate::metrics::SECRET_HASHES.inc();
    // A real client's success is remembered before the permit is released,
    // so that whoever waited for it finds it.
    let remember = memory.zip(key).filter(|_| client.is_some());
    let ok = tokio::task::spawn_blocking({
        let secret = Zeroizing::new(secret.to_owned());
        // The permit goes with the hash: a request abandoned meanwhile does
        // not free it while the hash still runs (and holds its 19 MiB).
        move || {
            let matched = if verify_secret(&secret, &hash) {
                Some(hash)
            } else {
                previous.filter(|p| verify_secret(&secret, p))
            };
            let ok = matched.is_some();
            if let (Some(hash), Some((m, k))) = (matched, remember) {
                m.remember(k, hash);
            }
            drop(permit);
            ok
        }
    })
    .await
    .unwrap_or(false);
    Ok(client.filter(|_| ok))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The longest grace period of a secret roll: 30 days.
pub const MAX_SECRET_GRACE: i64 = 30 * 86_400;

/// Gives the client `id` a new secret, returned once; its current secret
/// keeps working for `grace_seconds` (0 to [`MAX_SECRET_GRACE`]) so that
/// it can roll without downtime. `None` if there is no such client.
pub async fn roll_secret<S: Store>(
    store: &S,
    id: &str,
    grace_seconds: i64,
    now: i64,
) -> Result<Option<Zeroizing<String>>, ClientError> {
    if !(0..=MAX_SECRET_GRACE).contains(&grace_seconds) {
        return Err(ClientError::Invalid(format!(
            "grace_seconds must be between 0 and {MAX_SECRET_GRACE}"
        )));
    }
    let Some(client) = store.client(id).await? else {
        return Ok(None);
    };
    if client.public {
        return Err(ClientError::Invalid(
            "this is a public client: it has no secret to roll".into(),
        ));
    }
    if client.secret_hash.is_empty() {
        return Err(ClientError::Invalid(
            "this client authenticates with private_key_jwt: it has no secret to roll".into(),
        ));
    }
    let secret = random_token(32)?;
    let hash = hash_secret(&secret)?;
    let grace = (grace_seconds > 0).then(|| now.saturating_add(grace_seconds));
    if !store.roll_client_secret(id, &hash, grace).await? {
        return Ok(None);
    }
    Ok(Some(secret))
}

/// How many Argon2id checks may run at once: one per core, which is all the
/// CPU they can use anyway.
pub fn hashing_limit() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

fn hashing_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| tokio::sync::Semaphore::new(hashing_limit()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let a = hash_secret("s3cret").unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_secret("s3cret", &a));
        assert!(!verify_secret("s3cre", &a));
        assert!(!verify_secret("s3cret", "not a hash"));
        assert_ne!(hash_secret("s3cret").unwrap(), a, "fresh salt");
    }

    #[test]
    fn remembered_checks_are_bound_to_id_secret_and_stored_hash() {
        let v = verified().unwrap();
        let key = v.key("cli_a", "s3cret");
        assert_ne!(key, v.key("cli_b", "s3cret"));
        assert_ne!(key, v.key("cli_a", "s3cre"));
        // Length-prefixed: moving bytes between id and secret changes the key.
        assert_ne!(v.key("ab", "c"), v.key("a", "bc"));
        assert!(!v.recalls(&key, "$argon2id$h1"));
        v.remember(key, "$argon2id$h1".into());
        assert!(v.recalls(&key, "$argon2id$h1"));
        // A new secret (a new stored hash) is not recalled.
        assert!(!v.recalls(&key, "$argon2id$h2"));
    }
}
