//! The audit trail: one append-only, hash-chained sequence of events, each
//! written **in the same transaction** as the change it records (no change
//! without its event; an event that cannot be written fails the change).
//!
//! Which function do I call?
//! - recording a change (the store, inside the change's transaction):
//!   `append` (crate-private), with an [`Event`]; who asked comes from the
//!   task's [`Context`], set with [`with_context`], else the default actor
//!   the store gives; the keys are the store's
//!   ([`crate::store::SqlStore::with_audit_keys`]);
//! - naming a secret in an event's details: [`secret_ref`] (from the
//!   SHA-256 the store keeps) or [`secret_ref_of`] (from the value);
//! - checking the trail: [`verify_store`] (paged), [`verify`] (any
//!   iterator of records);
//! - retention: [`prune`] (from the maintenance loop, with `[audit] keep`).
//!
//! # The chain
//! Event `n` (`seq` 1, 2, 3, … without gaps) carries `prev_hash`, the hash
//! of event `n - 1`, and `hash`, the SHA-256 of its own canonical form: a
//! JSON object with sorted keys and no whitespace, written out here field
//! by field ([`AuditRecord::canonical`]) so that no serializer setting or
//! upgrade can change it, holding `seq`, `time`, `actor`, `action`,
//! `target`, `outcome`, `request_id`, `source_ip`, `details` (the text as
//! stored) and `prev_hash` in hex. Each event also carries `mac`,
//! HMAC-SHA256 of its hash under the *chain key*: SHA-256 alone only shows
//! that rows were edited by someone who did not bother to recompute the
//! hashes; the MAC means that someone with the database but not the master
//! key cannot rewrite the chain after an edit. The one `audit_head` row
//! holds the last event's `seq` and `hash` (so a truncated tail is seen),
//! where pruning left the chain's start, and a MAC over all of it. An append
//! refuses to extend a head whose MAC does not verify: a forged head is
//! never laundered by the next event.
//!
//! # Keys
//! Both keys are derived from the master key with HKDF-SHA256
//! ([`AuditKeys::from_master`]): the *secrets key* (label
//! `tessera audit secrets v1`) for references to tokens and secrets, as
//! Vault's audit devices do — `hmac-sha256:<hex>` of HMAC(secrets key,
//! SHA-256(value)), computed over the SHA-256 so that the store, which only
//! keeps the hashes of refresh and admin tokens, can name them;
//! `tessera audit hash VALUE` prints the same reference so an investigator
//! can search for a known token — and the *chain key* (label
//! `tessera audit chain v1`) for the MACs. Changing the master key makes the
//! existing trail unverifiable with the new one: export it first.
//!
//! # One chain per deployment
//! Every node appends to the same chain. On PostgreSQL an append locks the
//! head row (`SELECT … FOR UPDATE`) inside the change's transaction, so
//! appenders on every node take turns for the instant between that lock and
//! their commit; the order of the chain is the order of the commits. On
//! SQLite the change's own writes already hold the database's write lock.
//!
//! # Pruning
//! [`prune`] deletes the oldest events (a prefix of the chain: those before
//! the first event at or after the cut-off time) in one transaction, after
//! checking them — evidence of tampering is never deleted silently: a broken
//! prefix stops the pruning with an error. The head then records the seq and
//! hash of the last deleted event (`pruned_through`, `pruned_hash`, under
//! the head's MAC): verification starts there, so deleting the first rows
//! that remain is still detected.
//!
//! # What verification detects, and what it cannot
//! [`verify`] names the first bad `seq` after any edit of an event's fields
//! (its hash no longer matches), a deleted event (a gap), events reordered
//! or their `seq` swapped (the hash covers `seq`), a rewritten chain with
//! recomputed hashes (the MACs), a truncated tail (the head names a later
//! event), an edited head (its MAC). It cannot detect what someone holding
//! **both** the master key and the database does: they can rewrite
//! anything. Nor can it detect the restoration of an *old copy of the head
//! row* (whose MAC is genuine) together with the deletion of every event
//! after it, or the whole trail deleted and the head reset to its genesis
//! state: nothing inside the database can tell an old state from a current
//! one. Against those, export the trail regularly
//! (`tessera audit export --after SEQ` to storage the database's
//! administrators cannot write) and compare the seq it reached.

use std::future::Future;

use serde::{Deserialize, Serialize};
use sqlx::{Any, AnyPool, Row};

use crate::crypto::{sha256, Mac, MasterKey, OpenFailed};
use crate::store::{Backend, Store, StoreError};

/// The HKDF label of the key that names secrets in events.
pub const SECRETS_LABEL: &str = "tessera audit secrets v1";
/// The HKDF label of the key that MACs the chain.
pub const CHAIN_LABEL: &str = "tessera audit chain v1";
/// The prefix of a secret's reference.
pub const REF_PREFIX: &str = "hmac-sha256:";
/// The `prev_hash` of the first event ever, and the genesis head's hash.
pub const GENESIS_HASH: [u8; 32] = [0; 32];
/// How many events [`verify_store`] and pruning read at a time.
pub const PAGE: i64 = 1000;
/// The most events one [`Store::audit_events`] call returns.
pub const MAX_PAGE: i64 = 10_000;

/// The audit trail's two keys, derived from the master key. Prints nothing
/// of them.
pub struct AuditKeys {
    secrets: Mac,
    chain: Mac,
}

impl std::fmt::Debug for AuditKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKeys(..)")
    }
}

impl AuditKeys {
    /// The keys of the deployment whose master key this is: every node and
    /// the CLI derive the same ones.
    pub fn from_master(master: &MasterKey) -> Result<Self, OpenFailed> {
        Ok(AuditKeys {
            secrets: master.derive_mac(SECRETS_LABEL)?,
            chain: master.derive_mac(CHAIN_LABEL)?,
        })
    }

    /// Random keys, for a store opened without a master key (tests): what
    /// it appends can be verified only by the same process.
    pub fn ephemeral() -> Result<Self, OpenFailed> {
        Ok(AuditKeys {
            secrets: Mac::random()?,
            chain: Mac::random()?,
        })
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// How an event names a secret whose SHA-256 is `value_sha256` (a refresh
/// or admin token as the store keeps it): `hmac-sha256:<hex>` of
/// HMAC-SHA256(secrets key, `value_sha256`).
pub fn secret_ref(keys: &AuditKeys, value_sha256: &[u8]) -> String {
    format!("{REF_PREFIX}{}", hex(&keys.secrets.sign(value_sha256)))
}

/// [`secret_ref`] of a secret's value (hashed here first): what
/// `tessera audit hash VALUE` prints.
pub fn secret_ref_of(keys: &AuditKeys, value: &[u8]) -> String {
    secret_ref(keys, &sha256(value))
}

/// What kind of party made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    /// An operator through the admin API (`adm_…`).
    Admin,
    /// A client through the public API (`cli_…`).
    Client,
    /// Someone at the host, with the `tessera` command.
    Cli,
    /// The service itself (key maintenance, reuse detection).
    System,
}

impl ActorKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Admin => "admin",
            ActorKind::Client => "client",
            ActorKind::Cli => "cli",
            ActorKind::System => "system",
        }
    }
}

/// Who made a change: `{"type":"admin","id":"adm_…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// What kind of party.
    #[serde(rename = "type")]
    pub kind: ActorKind,
    /// Its id, when it has one.
    pub id: Option<String>,
}

impl Actor {
    /// An admin of the admin API.
    pub fn admin(id: impl Into<String>) -> Self {
        Actor {
            kind: ActorKind::Admin,
            id: Some(id.into()),
        }
    }

    /// A client.
    pub fn client(id: impl Into<String>) -> Self {
        Actor {
            kind: ActorKind::Client,
            id: Some(id.into()),
        }
    }

    /// The command line.
    pub fn cli() -> Self {
        Actor {
            kind: ActorKind::Cli,
            id: None,
        }
    }

    /// The service itself.
    pub fn system() -> Self {
        Actor {
            kind: ActorKind::System,
            id: None,
        }
    }
}

/// Who asks, for the events a piece of work appends: set once per request
/// (the admin API's middleware) or per command (the CLI), read by
/// `append`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// The actor; none: the default the store gives for the change.
    pub actor: Option<Actor>,
    /// The request's id.
    pub request_id: Option<String>,
    /// The address the request came from.
    pub source_ip: Option<String>,
}

tokio::task_local! {
    static CONTEXT: Context;
}

/// A new request id: unique (a prefix drawn at random for the process, then
/// a counter), not secret, and cheap — every request gets one.
pub fn request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        crate::crypto::random_token(6)
            .map(|t| t.as_str().to_owned())
            .unwrap_or_else(|_| format!("{:x}", std::process::id()))
    });
    format!("{prefix}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Runs `f` with `ctx` as its audit [`Context`]. Like every task-local, it
/// does not follow work into `tokio::spawn`: set it again there.
pub async fn with_context<F: Future>(ctx: Context, f: F) -> F::Output {
    CONTEXT.scope(ctx, f).await
}

/// The current task's audit [`Context`] (the default, outside
/// [`with_context`]).
pub fn context() -> Context {
    CONTEXT.try_with(Context::clone).unwrap_or_default()
}

/// A change to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What happened: `client.created`, `key.compromised`, `session.revoked`,
    /// `refresh.reuse_detected`, `sessions.mass_revoked`, …
    pub action: String,
    /// What it happened to (a client, key or session id, …).
    pub target: String,
    /// `success`, or what else came of it.
    pub outcome: String,
    /// A JSON object, **without secrets** (name them with [`secret_ref`]).
    pub details: serde_json::Value,
}

impl Event {
    /// A successful `action` on `target`, with `details` (a JSON object).
    pub fn success(
        action: impl Into<String>,
        target: impl Into<String>,
        details: serde_json::Value,
    ) -> Self {
        Event {
            action: action.into(),
            target: target.into(),
            outcome: "success".into(),
            details,
        }
    }
}

/// An event as stored: every field as written, so that verification covers
/// exactly what is in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Its place in the chain, from 1.
    pub seq: i64,
    /// Unix seconds.
    pub time: i64,
    /// `admin`, `client`, `cli` or `system` ([`ActorKind`]).
    pub actor_type: String,
    /// The actor's id.
    pub actor_id: Option<String>,
    /// What happened.
    pub action: String,
    /// To what.
    pub target: String,
    /// With what result.
    pub outcome: String,
    /// The request's id.
    pub request_id: Option<String>,
    /// Where the request came from.
    pub source_ip: Option<String>,
    /// The details, a JSON object in canonical form.
    pub details: String,
    /// The previous event's hash.
    pub prev_hash: Vec<u8>,
    /// SHA-256 of [`AuditRecord::canonical`].
    pub hash: Vec<u8>,
    /// HMAC-SHA256 of `hash` under the chain key.
    pub mac: Vec<u8>,
}

impl AuditRecord {
    /// The canonical form the hash is computed over: a JSON object, keys in
    /// sorted order, no whitespace, strings escaped as [`push_json_string`]
    /// does, `details` as stored, `prev_hash` in lowercase hex:
    ///
    /// `{"action":…,"actor":{"id":…,"type":…},"details":{…},"outcome":…,`
    /// `"prev_hash":"…","request_id":…,"seq":N,"source_ip":…,"target":…,"time":N}`
    pub fn canonical(&self) -> String {
        let mut out = String::with_capacity(256 + self.details.len());
        out.push_str("{\"action\":");
        push_json_string(&mut out, &self.action);
        out.push_str(",\"actor\":{\"id\":");
        push_json_opt(&mut out, self.actor_id.as_deref());
        out.push_str(",\"type\":");
        push_json_string(&mut out, &self.actor_type);
        out.push_str("},\"details\":");
        out.push_str(&self.details);
        out.push_str(",\"outcome\":");
        push_json_string(&mut out, &self.outcome);
        out.push_str(",\"prev_hash\":\"");
        out.push_str(&hex(&self.prev_hash));
        out.push_str("\",\"request_id\":");
        push_json_opt(&mut out, self.request_id.as_deref());
        out.push_str(",\"seq\":");
        out.push_str(&self.seq.to_string());
        out.push_str(",\"source_ip\":");
        push_json_opt(&mut out, self.source_ip.as_deref());
        out.push_str(",\"target\":");
        push_json_string(&mut out, &self.target);
        out.push_str(",\"time\":");
        out.push_str(&self.time.to_string());
        out.push('}');
        out
    }

    /// The event for export and the admin API: `{"seq","time",
    /// "actor":{"type","id"},"action","target","outcome","request_id",
    /// "source_ip","details","prev_hash","hash"}`, hashes in hex.
    pub fn to_json(&self) -> serde_json::Value {
        // Stored canonical JSON; should it not parse (an edited row), the
        // text itself is shown rather than nothing.
        let details = serde_json::from_str(&self.details)
            .unwrap_or_else(|_| serde_json::Value::String(self.details.clone()));
        serde_json::json!({
            "seq": self.seq,
            "time": self.time,
            "actor": {"type": self.actor_type, "id": self.actor_id},
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "request_id": self.request_id,
            "source_ip": self.source_ip,
            "details": details,
            "prev_hash": hex(&self.prev_hash),
            "hash": hex(&self.hash),
        })
    }

    /// Computes `hash` and `mac` from the other fields.
    fn seal(&mut self, keys: &AuditKeys) {
        self.hash = sha256(self.canonical().as_bytes());
        self.mac = keys.chain.sign(&self.hash).to_vec();
    }
}

/// The chain's head: its last event, and where pruning left its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    /// The last event's seq (0: none yet).
    pub seq: i64,
    /// The last event's hash.
    pub hash: Vec<u8>,
    /// The last deleted event's seq (0: nothing pruned).
    pub pruned_through: i64,
    /// The last deleted event's hash: the first remaining one's `prev_hash`.
    pub pruned_hash: Vec<u8>,
    /// HMAC over the four fields under the chain key; none in the genesis
    /// state the migration writes.
    pub mac: Option<Vec<u8>>,
}

impl AuditHead {
    fn is_genesis(&self) -> bool {
        self.seq == 0
            && self.pruned_through == 0
            && self.hash == GENESIS_HASH
            && self.pruned_hash == GENESIS_HASH
    }

    fn mac_input<'a>(&'a self, seq: &'a [u8; 8], pruned: &'a [u8; 8]) -> [&'a [u8]; 5] {
        [b"audit head", seq, &self.hash, pruned, &self.pruned_hash]
    }

    pub(crate) fn compute_mac(&self, keys: &AuditKeys) -> Vec<u8> {
        let (seq, pruned) = (self.seq.to_be_bytes(), self.pruned_through.to_be_bytes());
        keys.chain.tag(&self.mac_input(&seq, &pruned)).to_vec()
    }

    /// Whether the head is as an append or a pruning with these keys left
    /// it (or the untouched genesis state).
    pub(crate) fn is_authentic(&self, keys: &AuditKeys) -> bool {
        let (seq, pruned) = (self.seq.to_be_bytes(), self.pruned_through.to_be_bytes());
        match &self.mac {
            Some(mac) => keys.chain.verify_tag(&self.mac_input(&seq, &pruned), mac),
            None => self.is_genesis(),
        }
    }
}

/// Where the chain is broken: the first bad `seq` and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit trail broken at seq {seq}: {reason}")]
pub struct ChainBreak {
    /// The first seq that does not verify.
    pub seq: i64,
    /// What is wrong with it.
    pub reason: String,
}

/// Why [`verify_store`] gave no answer, or its answer.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The chain is broken.
    #[error(transparent)]
    Broken(ChainBreak),
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What [`verify_store`] found intact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// How many events it checked.
    pub events: i64,
    /// The last seq checked.
    pub through: i64,
}

/// Walks the chain from the head's pruning anchor, one event at a time.
struct Walker<'a> {
    keys: &'a AuditKeys,
    head: &'a AuditHead,
    next: i64,
    prev: Vec<u8>,
}

impl<'a> Walker<'a> {
    /// Starts at the head's pruning anchor. The head's own MAC is checked
    /// last ([`Walker::finish`]), so that a broken event is named first.
    fn new(head: &'a AuditHead, keys: &'a AuditKeys) -> Self {
        Walker {
            keys,
            head,
            next: head.pruned_through.saturating_add(1),
            prev: head.pruned_hash.clone(),
        }
    }

    fn step(&mut self, r: &AuditRecord) -> Result<(), ChainBreak> {
        let broken = |seq: i64, reason: String| Err(ChainBreak { seq, reason });
        if r.seq > self.next {
            return broken(
                self.next,
                format!("event missing (the next one found is seq {})", r.seq),
            );
        }
        if r.seq < self.next {
            return broken(r.seq, "event out of order".into());
        }
        if sha256(r.canonical().as_bytes()) != r.hash {
            return broken(
                r.seq,
                "event altered (its hash does not match its content)".into(),
            );
        }
        if !self.keys.chain.verify(&r.hash, &r.mac) {
            return broken(
                r.seq,
                "event rewritten (its MAC does not verify under this master key)".into(),
            );
        }
        if r.prev_hash != self.prev {
            return broken(
                r.seq,
                "event does not follow the previous one (prev_hash)".into(),
            );
        }
        if r.seq == self.head.seq && r.hash != self.head.hash {
            return broken(r.seq, "event is not the one the head records".into());
        }
        self.prev.clone_from(&r.hash);
        self.next = self.next.saturating_add(1);
        Ok(())
    }

    /// The last seq verified, once the head is found authentic and the
    /// tail reaches it.
    fn finish(&self) -> Result<i64, ChainBreak> {
        let head = self.head;
        if !head.is_authentic(self.keys)
            || head.pruned_through < 0
            || head.pruned_through > head.seq
        {
            return Err(ChainBreak {
                seq: head.seq,
                reason: "the head record was altered (its MAC does not verify under this \
                         master key)"
                    .into(),
            });
        }
        let last = self.next.saturating_sub(1);
        if last < self.head.seq {
            return Err(ChainBreak {
                seq: self.next,
                reason: format!(
                    "event missing: the trail ends at seq {last}, the head records seq {}",
                    self.head.seq
                ),
            });
        }
        Ok(last)
    }
}

/// Checks `events` (in seq order, from any source) against `head`: every
/// hash and MAC recomputed, seq contiguous from `head.pruned_through + 1`,
/// each `prev_hash` the previous hash (the first, `head.pruned_hash`), the
/// head's own MAC, and the event at `head.seq` the head's (nothing cut off
/// the tail). Events after the head (appended since it was read) must chain
/// on too. Events up to `head.pruned_through` (left by a pruning in
/// progress) are skipped. Returns the last seq verified.
pub fn verify(
    head: &AuditHead,
    events: impl IntoIterator<Item = AuditRecord>,
    keys: &AuditKeys,
) -> Result<i64, ChainBreak> {
    let mut walker = Walker::new(head, keys);
    for r in events {
        if r.seq <= head.pruned_through {
            continue;
        }
        walker.step(&r)?;
    }
    walker.finish()
}

/// [`verify`] over the store's trail, [`PAGE`] events at a time, while
/// the service keeps appending (the events after the head it read first
/// must chain on). A pruning that runs meanwhile can make it report a
/// missing event: run it again.
pub async fn verify_store<S: Store>(store: &S, keys: &AuditKeys) -> Result<Verified, VerifyError> {
    let head = store.audit_head().await?;
    let mut walker = Walker::new(&head, keys);
    let mut after = head.pruned_through;
    loop {
        let page = store.audit_events(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in &page {
            walker.step(r).map_err(VerifyError::Broken)?;
        }
    }
    let through = walker.finish().map_err(VerifyError::Broken)?;
    Ok(Verified {
        events: through.saturating_sub(head.pruned_through),
        through,
    })
}

/// Deletes the events older than `keep` at `now` (see the module docs);
/// returns how many. For the maintenance loop, with `[audit] keep`.
pub async fn prune<S: Store>(
    store: &S,
    keep: std::time::Duration,
    now: i64,
) -> Result<u64, StoreError> {
    let before = now.saturating_sub(crate::config::seconds(keep));
    let mut total = 0;
    // One transaction per batch of at most PRUNE_BATCH events.
    loop {
        let n = store.prune_audit(before).await?;
        total += n;
        if n < PRUNE_BATCH as u64 {
            return Ok(total);
        }
    }
}

/// The most events one pruning transaction deletes.
pub const PRUNE_BATCH: i64 = 5_000;

/// Appends `event` to the chain inside the caller's transaction `tx` and
/// returns its seq. Call it last, after the change's own writes and just
/// before the commit: on SQLite those writes already hold the write lock;
/// on PostgreSQL this locks the head row until the transaction ends, and
/// every appender on every node waits for it (taking no other lock after
/// it also keeps the lock order the same everywhere: no deadlock). The
/// actor, request id and source address come from the task's
/// [`Context`]; `default_actor` stands in when it names no actor.
#[cfg(test)]
pub(crate) async fn append(
    tx: &mut sqlx::Transaction<'_, Any>,
    backend: Backend,
    keys: &AuditKeys,
    event: &Event,
    default_actor: Actor,
    now: i64,
) -> Result<i64, StoreError> {
    append_with(tx, backend, keys, event, default_actor, now, false).await
}

/// [`append`] in a transaction that has already written (every store
/// change): on SQLite it holds the write lock already, and the head is
/// read without the extra no-op write that would take it.
pub(crate) async fn append_after_writes(
    tx: &mut sqlx::Transaction<'_, Any>,
    backend: Backend,
    keys: &AuditKeys,
    event: &Event,
    default_actor: Actor,
    now: i64,
    cache: &HeadCache,
) -> Result<i64, StoreError> {
    if backend == Backend::Sqlite {
        if let Some(seq) =
            append_on_cached_head(tx, keys, event, &default_actor, now, cache).await?
        {
            return Ok(seq);
        }
    }
    let seq = append_with(tx, backend, keys, event, default_actor, now, true).await?;
    if backend == Backend::Sqlite {
        // Read (and written) under the write lock: the head as it now is
        // in this transaction.
        let head = lock_head(tx, backend, true).await?;
        cache.put(head);
    }
    Ok(seq)
}

/// The head this process last wrote on SQLite. Never trusted: an append
/// built on it inserts its event only if the stored head is still exactly
/// this one (same seq, hash, anchor and MAC), checked in the insert itself;
/// otherwise the head is read as usual. It saves that read on the path every
/// session takes.
#[derive(Debug, Default)]
pub struct HeadCache(std::sync::Mutex<Option<AuditHead>>);

impl HeadCache {
    fn get(&self) -> Option<AuditHead> {
        self.0.lock().ok().and_then(|h| h.clone())
    }
    pub(crate) fn put(&self, head: AuditHead) {
        if let Ok(mut h) = self.0.lock() {
            *h = Some(head);
        }
    }
    /// Forgets the head (another store moved it).
    pub(crate) fn forget(&self) {
        if let Ok(mut h) = self.0.lock() {
            *h = None;
        }
    }
}

/// On SQLite, inside a transaction that holds the write lock: the event
/// appended on the cached head, if the stored head is still that one (the
/// insert, which fails if it is not, and the head's update, sent as one
/// call); `None` (nothing written) if it is not, or nothing is cached.
async fn append_on_cached_head(
    tx: &mut sqlx::Transaction<'_, Any>,
    keys: &AuditKeys,
    event: &Event,
    default_actor: &Actor,
    now: i64,
    cache: &HeadCache,
) -> Result<Option<i64>, StoreError> {
    let Some(append) = CachedAppend::prepare(keys, event, default_actor, now, cache)? else {
        return Ok(None);
    };
    match append
        .bind(sqlx::query(CachedAppend::SQL))
        .execute(&mut **tx)
        .await
    {
        Ok(_) => Ok(Some(append.appended(cache))),
        // The insert failed as a statement: the transaction goes on, and
        // the event is appended the usual way.
        Err(e) if CachedAppend::moved(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// An append on SQLite's cached head ([`HeadCache`]), ready to be sent in
/// the same call as the change it records, up to its `COMMIT` (every trip to
/// the connection's thread while the transaction holds the write lock is
/// time every other writer waits). [`CachedAppend::SQL`] inserts the event
/// only if the stored head is still the cached one, and otherwise fails —
/// the statements after it are then not run — with an error that
/// [`CachedAppend::moved`] recognises. Prepare it inside the transaction's
/// turn to write (the store's write gate), or another append will have
/// moved the head.
pub(crate) struct CachedAppend {
    record: AuditRecord,
    head: AuditHead,
    new_head: AuditHead,
}

impl CachedAppend {
    /// The event's insert, whose `mac` is NULL — refused by its `NOT NULL`
    /// — unless the stored head is the cached one, and the head's update.
    /// Anonymous `?` parameters, bound in order by [`CachedAppend::bind`]
    /// (sqlx binds a multi-statement query's `?` in order across its
    /// statements; numbered ones are not bound reliably after the first).
    pub(crate) const SQL: &'static str = "INSERT INTO audit_events (seq, time, actor_type, \
         actor_id, action, target, outcome, request_id, source_ip, details, prev_hash, hash, mac) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT ? FROM audit_head WHERE id = 1 \
           AND seq = ? AND hash = ? AND pruned_through = ? AND pruned_hash = ? AND mac IS ?)); \
         UPDATE audit_head SET seq = ?, hash = ?, mac = ? WHERE id = 1";

    /// `event` sealed on the cached head; `None` if nothing is cached or the
    /// cached head is not authentic.
    pub(crate) fn prepare(
        keys: &AuditKeys,
        event: &Event,
        default_actor: &Actor,
        now: i64,
        cache: &HeadCache,
    ) -> Result<Option<CachedAppend>, StoreError> {
        let Some(head) = cache.get() else {
            return Ok(None);
        };
        if !head.is_authentic(keys) {
            return Ok(None);
        }
        let record = new_record(&head, keys, event, default_actor.clone(), now)?;
        let mut new_head = AuditHead {
            seq: record.seq,
            hash: record.hash.clone(),
            mac: None,
            ..head.clone()
        };
        new_head.mac = Some(new_head.compute_mac(keys));
        Ok(Some(CachedAppend {
            record,
            head,
            new_head,
        }))
    }

    /// Binds the parameters of [`CachedAppend::SQL`] after the caller's.
    pub(crate) fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
        // The record's 13 values, the last (its MAC) inside the condition.
        bind_record(query, &self.record)
            .bind(self.head.seq)
            .bind(&self.head.hash)
            .bind(self.head.pruned_through)
            .bind(&self.head.pruned_hash)
            .bind(&self.head.mac)
            .bind(self.new_head.seq)
            .bind(&self.new_head.hash)
            .bind(&self.new_head.mac)
    }

    /// Whether `e` is [`CachedAppend::SQL`] finding that the stored head
    /// moved (nothing written by it).
    pub(crate) fn moved(e: &sqlx::Error) -> bool {
        e.as_database_error().is_some_and(|d| {
            d.kind() == sqlx::error::ErrorKind::NotNullViolation
                && d.message().contains("audit_events.mac")
        })
    }

    /// After the statements ran without error: the event's seq (the cache
    /// now holds the new head).
    pub(crate) fn appended(self, cache: &HeadCache) -> i64 {
        cache.put(self.new_head);
        self.record.seq
    }
}

/// The insert of an event, its values `?1` to `?13` bound by [`bind_record`].
pub(crate) const INSERT_EVENT: &str =
    "INSERT INTO audit_events (seq, time, actor_type, actor_id, action, \
     target, outcome, request_id, source_ip, details, prev_hash, hash, mac)";
pub(crate) const EVENT_VALUES: &str = "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13";

/// Binds `record`'s fields as `?1` to `?13`, in [`INSERT_EVENT`]'s order.
pub(crate) fn bind_record<'q>(
    query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    record: &'q AuditRecord,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(record.seq)
        .bind(record.time)
        .bind(&record.actor_type)
        .bind(&record.actor_id)
        .bind(&record.action)
        .bind(&record.target)
        .bind(&record.outcome)
        .bind(&record.request_id)
        .bind(&record.source_ip)
        .bind(&record.details)
        .bind(&record.prev_hash)
        .bind(&record.hash)
        .bind(&record.mac)
}

/// The sealed record of `event` following `head`, in the task's
/// [`Context`].
fn new_record(
    head: &AuditHead,
    keys: &AuditKeys,
    event: &Event,
    default_actor: Actor,
    now: i64,
) -> Result<AuditRecord, StoreError> {
    new_record_in(context(), head, keys, event, default_actor, now)
}

/// The sealed record of `event` following `head`, in `ctx` (work done
/// away from the request's task: the store's group commit).
pub(crate) fn new_record_in(
    ctx: Context,
    head: &AuditHead,
    keys: &AuditKeys,
    event: &Event,
    default_actor: Actor,
    now: i64,
) -> Result<AuditRecord, StoreError> {
    let actor = ctx.actor.unwrap_or(default_actor);
    let mut record = AuditRecord {
        seq: head
            .seq
            .checked_add(1)
            .ok_or_else(|| StoreError::Corrupt("audit seq overflow".into()))?,
        time: now,
        actor_type: actor.kind.as_str().to_owned(),
        actor_id: actor.id,
        action: event.action.clone(),
        target: event.target.clone(),
        outcome: event.outcome.clone(),
        request_id: ctx.request_id,
        source_ip: ctx.source_ip,
        details: canonical_json(&event.details),
        prev_hash: head.hash.clone(),
        hash: Vec::new(),
        mac: Vec::new(),
    };
    record.seal(keys);
    Ok(record)
}

async fn append_with(
    tx: &mut sqlx::Transaction<'_, Any>,
    backend: Backend,
    keys: &AuditKeys,
    event: &Event,
    default_actor: Actor,
    now: i64,
    wrote: bool,
) -> Result<i64, StoreError> {
    let head = lock_head(tx, backend, wrote).await?;
    if !head.is_authentic(keys) {
        return Err(head_refused());
    }
    let record = new_record(&head, keys, event, default_actor, now)?;
    let text = sql(backend, &format!("{INSERT_EVENT} VALUES ({EVENT_VALUES})"));
    bind_record(sqlx::query(&text), &record)
        .execute(&mut **tx)
        .await?;
    let new_head = AuditHead {
        seq: record.seq,
        hash: record.hash.clone(),
        mac: None,
        ..head
    };
    write_head(tx, backend, keys, &new_head).await?;
    Ok(record.seq)
}

pub(crate) fn head_refused() -> StoreError {
    StoreError::AuditRefused(
        "its head does not verify under this master key: is this the deployment's master key \
         (TESSERA_MASTER_KEY or master_key_file, as the service has it)? If it is, the trail \
         was altered: nothing is recorded until `tessera audit verify` has been looked into"
            .into(),
    )
}

/// The statement for `backend`: written with SQLite's `?N`, PostgreSQL's
/// are `$N` (as `SqlStore::sql`).
fn sql(backend: Backend, query: &str) -> String {
    match backend {
        Backend::Sqlite => query.to_owned(),
        Backend::Postgres => query.replace('?', "$"),
    }
}

pub(crate) const HEAD_COLUMNS: &str = "seq, hash, pruned_through, pruned_hash, mac";

fn head_from_row(r: &sqlx::any::AnyRow) -> Result<AuditHead, StoreError> {
    Ok(AuditHead {
        seq: r.try_get("seq")?,
        hash: r.try_get("hash")?,
        pruned_through: r.try_get("pruned_through")?,
        pruned_hash: r.try_get("pruned_hash")?,
        mac: r.try_get("mac")?,
    })
}

/// Reads the head, locked until the transaction ends: on PostgreSQL the
/// row lock every appender on every node queues on; on SQLite a write
/// (a no-op update) that takes the database's write lock, should the
/// transaction not hold it yet.
pub(crate) async fn lock_head(
    tx: &mut sqlx::Transaction<'_, Any>,
    backend: Backend,
    wrote: bool,
) -> Result<AuditHead, StoreError> {
    let query = match backend {
        Backend::Postgres => {
            format!("SELECT {HEAD_COLUMNS} FROM audit_head WHERE id = 1 FOR UPDATE")
        }
        Backend::Sqlite => {
            // Unless the transaction wrote already, a write first (it then
            // holds SQLite's write lock, and the head cannot move under it),
            // then the read: a plain statement each, no `RETURNING` (whose
            // row and write end at different steps).
            if !wrote {
                sqlx::query("UPDATE audit_head SET id = id WHERE id = 1")
                    .execute(&mut **tx)
                    .await?;
            }
            format!("SELECT {HEAD_COLUMNS} FROM audit_head WHERE id = 1")
        }
    };
    let row = sqlx::query(&query)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| StoreError::Corrupt("the audit_head row is missing".into()))?;
    head_from_row(&row)
}

pub(crate) async fn write_head(
    tx: &mut sqlx::Transaction<'_, Any>,
    backend: Backend,
    keys: &AuditKeys,
    head: &AuditHead,
) -> Result<(), StoreError> {
    sqlx::query(&sql(
        backend,
        "UPDATE audit_head SET seq = ?1, hash = ?2, pruned_through = ?3, pruned_hash = ?4, \
         mac = ?5 WHERE id = 1",
    ))
    .bind(head.seq)
    .bind(&head.hash)
    .bind(head.pruned_through)
    .bind(&head.pruned_hash)
    .bind(head.compute_mac(keys))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

const EVENT_COLUMNS: &str = "seq, time, actor_type, actor_id, action, target, outcome, \
     request_id, source_ip, details, prev_hash, hash, mac";

fn record_from_row(r: &sqlx::any::AnyRow) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        seq: r.try_get("seq")?,
        time: r.try_get("time")?,
        actor_type: r.try_get("actor_type")?,
        actor_id: r.try_get("actor_id")?,
        action: r.try_get("action")?,
        target: r.try_get("target")?,
        outcome: r.try_get("outcome")?,
        request_id: r.try_get("request_id")?,
        source_ip: r.try_get("source_ip")?,
        details: r.try_get("details")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
        mac: r.try_get("mac")?,
    })
}

/// `Store::audit_events`: up to `limit` events (at most [`MAX_PAGE`]) with
/// seq above `after`, in seq order.
pub(crate) async fn read_events(
    pool: &AnyPool,
    backend: Backend,
    after: i64,
    limit: i64,
) -> Result<Vec<AuditRecord>, StoreError> {
    let rows = sqlx::query(&sql(
        backend,
        &format!("SELECT {EVENT_COLUMNS} FROM audit_events WHERE seq > ?1 ORDER BY seq LIMIT ?2"),
    ))
    .bind(after)
    .bind(limit.clamp(1, MAX_PAGE))
    .fetch_all(pool)
    .await?;
    rows.iter().map(record_from_row).collect()
}

/// `Store::audit_head`.
pub(crate) async fn read_head(pool: &AnyPool) -> Result<AuditHead, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {HEAD_COLUMNS} FROM audit_head WHERE id = 1"
    ))
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| StoreError::Corrupt("the audit_head row is missing".into()))?;
    head_from_row(&row)
}

/// `Store::prune_audit`: in one transaction, checks then deletes the
/// prefix of the chain before the first event at or after `before_time`,
/// and anchors the head on the last deleted event. Refuses (leaving
/// everything) if the head or that prefix does not verify.
pub(crate) async fn prune_events(
    pool: &AnyPool,
    gate: &crate::store::WriteGate,
    backend: Backend,
    keys: &AuditKeys,
    before_time: i64,
) -> Result<u64, StoreError> {
    // Most calls find nothing old enough: a read of the oldest event (a
    // probe of the primary key) answers them, without the write lock
    // (SQLite) or the head's row lock (PostgreSQL) that every audited change
    // takes. (No index on `time`: each would cost every audited change a
    // write; events come in time order, give or take the nodes' clocks.)
    let oldest: Option<i64> = sqlx::query(
        "SELECT time FROM audit_events \
         WHERE seq > (SELECT pruned_through FROM audit_head WHERE id = 1) ORDER BY seq LIMIT 1",
    )
    .fetch_optional(pool)
    .await?
    .map(|r| r.try_get("time"))
    .transpose()?;
    if oldest.is_none_or(|t| t >= before_time) {
        return Ok(0);
    }
    let mut conn = crate::store::Conn::acquire(pool, gate).await?;
    let mut tx = sqlx::Connection::begin(conn.get()?).await?;
    let head = lock_head(&mut tx, backend, false).await?;
    if !head.is_authentic(keys) {
        return Err(head_refused());
    }
    // A prefix, never a time range: clocks of several nodes may disagree,
    // and a hole in the middle would break the chain.
    let first_kept: Option<i64> = sqlx::query(&sql(
        backend,
        "SELECT MIN(seq) AS seq FROM audit_events WHERE seq > ?1 AND seq <= ?3 AND time >= ?2",
    ))
    .bind(head.pruned_through)
    .bind(before_time)
    .bind(head.pruned_through.saturating_add(PRUNE_BATCH))
    .fetch_one(&mut *tx)
    .await?
    .try_get("seq")?;
    let through = match first_kept {
        Some(seq) => seq.saturating_sub(1),
        None => head.seq,
    }
    // In bounded steps: every audited change waits for the head meanwhile.
    .min(head.pruned_through.saturating_add(PRUNE_BATCH));
    if through <= head.pruned_through {
        tx.rollback().await?;
        conn.finished();
        return Ok(0);
    }
    let not_pruning = |b: ChainBreak| StoreError::Corrupt(format!("not pruning: {b}"));
    let mut walker = Walker::new(&head, keys);
    let mut after = head.pruned_through;
    while after < through {
        let rows = sqlx::query(&sql(
            backend,
            &format!(
                "SELECT {EVENT_COLUMNS} FROM audit_events WHERE seq > ?1 AND seq <= ?2 \
                 ORDER BY seq LIMIT ?3"
            ),
        ))
        .bind(after)
        .bind(through)
        .bind(PAGE)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let r = record_from_row(row)?;
            walker.step(&r).map_err(not_pruning)?;
            after = r.seq;
        }
    }
    if walker.next != through.saturating_add(1) {
        return Err(not_pruning(ChainBreak {
            seq: walker.next,
            reason: "event missing".into(),
        }));
    }
    let deleted = sqlx::query(&sql(backend, "DELETE FROM audit_events WHERE seq <= ?1"))
        .bind(through)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let new_head = AuditHead {
        pruned_through: through,
        pruned_hash: walker.prev.clone(),
        mac: None,
        ..head.clone()
    };
    write_head(&mut tx, backend, keys, &new_head).await?;
    tx.commit().await?;
    conn.finished();
    Ok(deleted)
}

/// A JSON string as the canonical form writes it: `"` and `\` escaped,
/// control characters as `\u00xx` (lowercase hex), everything else as is
/// (UTF-8). Written here rather than borrowed from a serializer so that it
/// cannot change under the chain.
pub fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                use std::fmt::Write;
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_json_opt(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => push_json_string(out, s),
        None => out.push_str("null"),
    }
}

/// A JSON value in canonical form: object members sorted by key (bytewise),
/// no whitespace, strings as [`push_json_string`]. `null` details are `{}`.
/// Only used when an event is written: verification hashes the stored text.
pub fn canonical_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    match value {
        serde_json::Value::Null => out.push_str("{}"),
        v => push_canonical(&mut out, v),
    }
    out
}

fn push_canonical(out: &mut String, value: &serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => push_json_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_canonical(out, item);
            }
            out.push(']');
        }
        Value::Object(members) => {
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_string(out, k);
                out.push(':');
                push_canonical(out, v);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use crate::store::SqlStore;

    fn keys() -> AuditKeys {
        AuditKeys::from_master(&MasterKey::from_bytes(&[7u8; 32]).unwrap()).unwrap()
    }

    fn record(seq: i64, prev_hash: &[u8], keys: &AuditKeys) -> AuditRecord {
        let mut r = AuditRecord {
            seq,
            time: 1_800_000_000 + seq,
            actor_type: "admin".into(),
            actor_id: Some("adm_1".into()),
            action: "client.created".into(),
            target: format!("cli_{seq}"),
            outcome: "success".into(),
            request_id: Some(format!("req-{seq}")),
            source_ip: None,
            details: canonical_json(&serde_json::json!({"name": "backend", "seq": seq})),
            prev_hash: prev_hash.to_vec(),
            hash: Vec::new(),
            mac: Vec::new(),
        };
        r.seal(keys);
        r
    }

    /// `n` events and their head, as appends would leave them.
    fn chain(n: i64, keys: &AuditKeys) -> (AuditHead, Vec<AuditRecord>) {
        let mut events: Vec<AuditRecord> = Vec::new();
        for seq in 1..=n {
            let prev = events
                .last()
                .map_or(GENESIS_HASH.to_vec(), |e| e.hash.clone());
            events.push(record(seq, &prev, keys));
        }
        let mut head = AuditHead {
            seq: n,
            hash: events
                .last()
                .map_or(GENESIS_HASH.to_vec(), |e| e.hash.clone()),
            pruned_through: 0,
            pruned_hash: GENESIS_HASH.to_vec(),
            mac: None,
        };
        head.mac = Some(head.compute_mac(keys));
        (head, events)
    }

    fn broken_at(result: Result<i64, ChainBreak>) -> i64 {
        match result {
            Ok(through) => panic!("verified through {through}, expected a break"),
            Err(b) => b.seq,
        }
    }

    #[test]
    fn canonical_form_is_stable() {
        let r = AuditRecord {
            seq: 42,
            time: 1_800_000_000,
            actor_type: "admin".into(),
            actor_id: Some("adm_x".into()),
            action: "key.compromised".into(),
            target: "kid-1".into(),
            outcome: "success".into(),
            request_id: None,
            source_ip: Some("192.0.2.1".into()),
            details: canonical_json(&serde_json::json!({
                "z": [1, true, null, "q\"uo\\te\n\u{1}é"],
                "a": {"y": 2.5, "b": -3},
            })),
            prev_hash: vec![0xab; 32],
            hash: Vec::new(),
            mac: Vec::new(),
        };
        let expected = concat!(
            r#"{"action":"key.compromised","actor":{"id":"adm_x","type":"admin"},"#,
            r#""details":{"a":{"b":-3,"y":2.5},"z":[1,true,null,"q\"uo\\te\n\u0001é"]},"#,
            r#""outcome":"success","#,
            r#""prev_hash":"abababababababababababababababababababababababababababababababab","#,
            r#""request_id":null,"seq":42,"source_ip":"192.0.2.1","target":"kid-1","#,
            r#""time":1800000000}"#
        )
        .replace(r"\n", r"\u000a");
        assert_eq!(r.canonical(), expected);
        // Valid JSON, and what every later version must keep computing.
        let parsed: serde_json::Value = serde_json::from_str(&r.canonical()).unwrap();
        assert_eq!(parsed["details"]["z"][3], "q\"uo\\te\n\u{1}é");
        assert_eq!(
            hex(&sha256(r.canonical().as_bytes())),
            "e349901d76ed80cc912bfee7b66d6b321a8fb7b05bbe24b273bb5328028cdb4e"
        );
        assert_eq!(canonical_json(&serde_json::Value::Null), "{}");
    }

    #[test]
    fn secret_refs_are_keyed_hmacs_of_the_sha256() {
        let k = keys();
        let r = secret_ref_of(&k, b"refresh-token-value");
        assert_eq!(r, secret_ref(&k, &sha256(b"refresh-token-value")));
        assert!(r.starts_with("hmac-sha256:") && r.len() == 12 + 64, "{r}");
        assert_eq!(r, secret_ref_of(&keys(), b"refresh-token-value"), "stable");
        assert_ne!(r, secret_ref_of(&k, b"another"));
        assert_ne!(
            r,
            secret_ref_of(&AuditKeys::ephemeral().unwrap(), b"refresh-token-value")
        );
        assert_eq!(format!("{k:?}"), "AuditKeys(..)");
    }

    #[test]
    fn actors_serialise_as_type_and_id() {
        assert_eq!(
            serde_json::to_value(Actor::admin("adm_1")).unwrap(),
            serde_json::json!({"type": "admin", "id": "adm_1"})
        );
        assert_eq!(
            serde_json::to_value(Actor::cli()).unwrap(),
            serde_json::json!({"type": "cli", "id": null})
        );
    }

    #[tokio::test]
    async fn the_context_is_per_task() {
        assert_eq!(context(), Context::default());
        let ctx = Context {
            actor: Some(Actor::admin("adm_1")),
            request_id: Some("r1".into()),
            source_ip: None,
        };
        let seen = with_context(ctx.clone(), async { context() }).await;
        assert_eq!(seen, ctx);
        assert_eq!(context(), Context::default());
    }

    #[test]
    fn verify_accepts_an_intact_chain() {
        let k = keys();
        let (head, events) = chain(5, &k);
        assert_eq!(verify(&head, events.clone(), &k), Ok(5));
        // Events appended after the head was read chain on.
        let (_, longer) = chain(7, &k);
        assert_eq!(verify(&head, longer, &k), Ok(7));
        let (genesis, none) = chain(0, &k);
        let genesis = AuditHead {
            mac: None,
            ..genesis
        };
        assert_eq!(verify(&genesis, none, &k), Ok(0));
        // The JSON form.
        let j = events[1].to_json();
        assert_eq!(j["seq"], 2);
        assert_eq!(
            j["actor"],
            serde_json::json!({"type": "admin", "id": "adm_1"})
        );
        assert_eq!(
            j["details"],
            serde_json::json!({"name": "backend", "seq": 2})
        );
        assert_eq!(j["prev_hash"], hex(&events[0].hash));
        assert_eq!(j["hash"], hex(&events[1].hash));
        assert_eq!(j.as_object().unwrap().len(), 11);
    }

    #[test]
    fn verify_names_the_first_bad_seq() {
        let k = keys();
        let (head, events) = chain(5, &k);
        // An edited field.
        let mut edited = events.clone();
        edited[2].details = r#"{"name":"attacker","seq":3}"#.into();
        assert_eq!(broken_at(verify(&head, edited, &k)), 3);
        let mut edited = events.clone();
        edited[3].time += 1;
        assert_eq!(broken_at(verify(&head, edited, &k)), 4);
        // A deleted row.
        let mut deleted = events.clone();
        deleted.remove(1);
        let b = verify(&head, deleted, &k).unwrap_err();
        assert_eq!(b.seq, 2);
        assert!(b.reason.contains("missing"), "{b}");
        // Two rows' seq swapped (read back in seq order).
        let mut swapped = events.clone();
        swapped[1].seq = 4;
        swapped[3].seq = 2;
        swapped.sort_by_key(|e| e.seq);
        assert_eq!(broken_at(verify(&head, swapped, &k)), 2);
        // A truncated tail.
        let mut truncated = events.clone();
        truncated.pop();
        let b = verify(&head, truncated, &k).unwrap_err();
        assert_eq!(b.seq, 5);
        // An edited head: moved back to hide the truncation.
        let mut truncated = events.clone();
        truncated.pop();
        let moved = AuditHead {
            seq: 4,
            hash: events[3].hash.clone(),
            ..head.clone()
        };
        let b = verify(&moved, truncated, &k).unwrap_err();
        assert_eq!(b.seq, 4);
        assert!(b.reason.contains("head"), "{b}");
        let unmaced = AuditHead {
            mac: None,
            ..head.clone()
        };
        assert_eq!(broken_at(verify(&unmaced, events.clone(), &k)), 5);
        // A chain rewritten from seq 3 on, with every SHA-256 recomputed but
        // without the key: the MAC gives it away.
        let mut rewritten = events.clone();
        let other = AuditKeys::ephemeral().unwrap();
        for i in 2..5 {
            if i == 2 {
                rewritten[i].details = r#"{"name":"attacker"}"#.into();
            }
            rewritten[i].prev_hash = rewritten[i - 1].hash.clone();
            rewritten[i].seal(&other);
        }
        let forged_head = AuditHead {
            hash: rewritten[4].hash.clone(),
            ..head.clone()
        };
        let b = verify(&forged_head, rewritten.clone(), &k).unwrap_err();
        assert_eq!(b.seq, 3);
        assert!(b.reason.contains("MAC"), "{b}");
        // ... and with the original head kept, too.
        assert_eq!(broken_at(verify(&head, rewritten, &k)), 3);
        // Another master key verifies nothing.
        assert_eq!(broken_at(verify(&head, events, &other)), 1);
    }

    #[test]
    fn verify_starts_at_the_pruning_anchor() {
        let k = keys();
        let (head, events) = chain(5, &k);
        let mut pruned = AuditHead {
            pruned_through: 2,
            pruned_hash: events[1].hash.clone(),
            ..head.clone()
        };
        pruned.mac = Some(pruned.compute_mac(&k));
        assert_eq!(verify(&pruned, events[2..].to_vec(), &k), Ok(5));
        // Leftovers of the pruned part are skipped.
        assert_eq!(verify(&pruned, events.clone(), &k), Ok(5));
        // The first remaining row deleted.
        assert_eq!(broken_at(verify(&pruned, events[3..].to_vec(), &k)), 3);
        // The anchor moved without the key.
        let moved = AuditHead {
            pruned_through: 3,
            pruned_hash: events[2].hash.clone(),
            ..pruned.clone()
        };
        assert_eq!(broken_at(verify(&moved, events[3..].to_vec(), &k)), 5);
        // Everything pruned: the anchor is the head.
        let mut all = AuditHead {
            pruned_through: 5,
            pruned_hash: head.hash.clone(),
            ..head.clone()
        };
        all.mac = Some(all.compute_mac(&k));
        assert_eq!(verify(&all, Vec::new(), &k), Ok(5));
    }

    // ---- On a database: SQLite always, PostgreSQL with TESSERA_TEST_PG_URL ----

    const T0: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;

    struct Db {
        store: SqlStore,
        pool: AnyPool,
        backend: Backend,
        _dir: Option<tempfile::TempDir>,
    }

    impl Db {
        async fn open(url: &str, backend: Backend, dir: Option<tempfile::TempDir>) -> Db {
            let store = SqlStore::open_url(url)
                .await
                .unwrap()
                .with_audit_keys(keys());
            let pool = sqlx::any::AnyPoolOptions::new()
                .max_connections(10)
                .connect(url)
                .await
                .unwrap();
            Db {
                store,
                pool,
                backend,
                _dir: dir,
            }
        }

        async fn sqlite() -> Db {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("t.db").display());
            Db::open(&url, Backend::Sqlite, Some(dir)).await
        }

        async fn postgres() -> Option<Db> {
            let url = fresh_pg_database().await?;
            Some(Db::open(&url, Backend::Postgres, None).await)
        }

        async fn append(&self, n: i64, event: &Event) -> Result<i64, StoreError> {
            let mut tx = self.pool.begin().await?;
            let seq = append(
                &mut tx,
                self.backend,
                &keys(),
                event,
                Actor::system(),
                T0 + n * DAY,
            )
            .await?;
            tx.commit().await?;
            Ok(seq)
        }

        async fn exec(&self, statement: &str) {
            sqlx::query(&sql(self.backend, statement))
                .execute(&self.pool)
                .await
                .unwrap();
        }

        async fn verify(&self) -> Result<Verified, ChainBreak> {
            match verify_store(&self.store, &keys()).await {
                Ok(v) => Ok(v),
                Err(VerifyError::Broken(b)) => Err(b),
                Err(VerifyError::Store(e)) => panic!("store: {e}"),
            }
        }

        async fn broken_at(&self) -> ChainBreak {
            self.verify().await.unwrap_err()
        }

        async fn snapshot(&self) {
            for t in ["audit_events", "audit_head"] {
                self.exec(&format!("DROP TABLE IF EXISTS saved_{t}")).await;
                self.exec(&format!("CREATE TABLE saved_{t} AS SELECT * FROM {t}"))
                    .await;
            }
        }

        async fn restore(&self) {
            for t in ["audit_events", "audit_head"] {
                self.exec(&format!("DELETE FROM {t}")).await;
                self.exec(&format!("INSERT INTO {t} SELECT * FROM saved_{t}"))
                    .await;
            }
            assert!(self.verify().await.is_ok());
        }
    }

    /// A fresh, empty database on the PostgreSQL server named by
    /// `TESSERA_TEST_PG_URL` (scripts/with-postgres), or none without it.
    async fn fresh_pg_database() -> Option<String> {
        let base = std::env::var("TESSERA_TEST_PG_URL").ok()?;
        Some(crate::testing::fresh_pg_database(&base).await.unwrap())
    }

    fn event(n: i64) -> Event {
        Event::success(
            "client.created",
            format!("cli_{n}"),
            serde_json::json!({"name": format!("backend {n}"), "grants": ["sessions"]}),
        )
    }

    async fn tamper_suite(db: Db) {
        assert_eq!(
            db.verify().await,
            Ok(Verified {
                events: 0,
                through: 0
            })
        );
        for n in 1..=5 {
            let ctx = Context {
                actor: (n % 2 == 0).then(|| Actor::admin("adm_1")),
                request_id: Some(format!("req-{n}")),
                source_ip: Some("192.0.2.7".into()),
            };
            let seq = with_context(ctx, db.append(n, &event(n))).await.unwrap();
            assert_eq!(seq, n);
        }
        assert_eq!(
            db.verify().await,
            Ok(Verified {
                events: 5,
                through: 5
            })
        );
        let page = db.store.audit_events(1, 2).await.unwrap();
        assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
        let j = page[0].to_json();
        assert_eq!(
            j["actor"],
            serde_json::json!({"type": "admin", "id": "adm_1"})
        );
        assert_eq!(j["request_id"], "req-2");
        assert_eq!(j["source_ip"], "192.0.2.7");
        assert_eq!(j["details"]["grants"], serde_json::json!(["sessions"]));
        assert_eq!(page[1].actor_type, "system", "the default actor");
        let head = db.store.audit_head().await.unwrap();
        assert_eq!((head.seq, head.pruned_through), (5, 0));
        db.snapshot().await;

        // An edited row.
        db.exec("UPDATE audit_events SET details = '{\"name\":\"x\"}' WHERE seq = 3")
            .await;
        assert_eq!(db.broken_at().await.seq, 3);
        db.restore().await;
        db.exec("UPDATE audit_events SET actor_id = 'adm_2' WHERE seq = 4")
            .await;
        assert_eq!(db.broken_at().await.seq, 4);
        db.restore().await;
        // A deleted row.
        db.exec("DELETE FROM audit_events WHERE seq = 2").await;
        let b = db.broken_at().await;
        assert_eq!(b.seq, 2);
        assert!(b.reason.contains("missing"), "{b}");
        db.restore().await;
        // Two rows swapped.
        db.exec("UPDATE audit_events SET seq = -2 WHERE seq = 2")
            .await;
        db.exec("UPDATE audit_events SET seq = 2 WHERE seq = 4")
            .await;
        db.exec("UPDATE audit_events SET seq = 4 WHERE seq = -2")
            .await;
        assert_eq!(db.broken_at().await.seq, 2);
        db.restore().await;
        // A truncated tail.
        db.exec("DELETE FROM audit_events WHERE seq = 5").await;
        assert_eq!(db.broken_at().await.seq, 5);
        // ... with the head moved back (no key for its MAC).
        db.exec(
            "UPDATE audit_head SET seq = 4, \
             hash = (SELECT hash FROM audit_events WHERE seq = 4) WHERE id = 1",
        )
        .await;
        let b = db.broken_at().await;
        assert_eq!(b.seq, 4);
        assert!(b.reason.contains("head"), "{b}");
        // Nothing is appended on a forged head.
        assert!(matches!(
            db.append(6, &event(6)).await,
            Err(StoreError::AuditRefused(_))
        ));
        db.restore().await;
        // A row rewritten with its SHA-256 recomputed, but no key.
        let mut r = db.store.audit_events(2, 1).await.unwrap().remove(0);
        r.details = r#"{"name":"attacker"}"#.into();
        r.hash = sha256(r.canonical().as_bytes());
        sqlx::query(&sql(
            db.backend,
            "UPDATE audit_events SET details = ?1, hash = ?2 WHERE seq = 3",
        ))
        .bind(&r.details)
        .bind(&r.hash)
        .execute(&db.pool)
        .await
        .unwrap();
        let b = db.broken_at().await;
        assert_eq!(b.seq, 3);
        assert!(b.reason.contains("MAC"), "{b}");
        db.restore().await;
        // Another master key.
        let other = AuditKeys::from_master(&MasterKey::from_bytes(&[8u8; 32]).unwrap()).unwrap();
        assert!(matches!(
            verify_store(&db.store, &other).await,
            Err(VerifyError::Broken(ChainBreak { seq: 1, .. }))
        ));

        // Pruning: event n was written on day n. Nothing before day 1.
        assert_eq!(db.store.prune_audit(T0 + DAY).await.unwrap(), 0);
        // A broken prefix is not pruned (the evidence stays).
        db.exec("UPDATE audit_events SET outcome = 'failure' WHERE seq = 1")
            .await;
        assert!(matches!(
            db.store.prune_audit(T0 + 3 * DAY).await,
            Err(StoreError::Corrupt(_))
        ));
        assert_eq!(db.store.audit_events(0, 100).await.unwrap().len(), 5);
        db.restore().await;
        // Days 1 and 2 go; the chain verifies from seq 3.
        assert_eq!(
            prune(
                &db.store,
                std::time::Duration::from_secs(2 * 86_400),
                T0 + 5 * DAY
            )
            .await
            .unwrap(),
            2
        );
        let head = db.store.audit_head().await.unwrap();
        assert_eq!((head.seq, head.pruned_through), (5, 2));
        assert_eq!(
            db.verify().await,
            Ok(Verified {
                events: 3,
                through: 5
            })
        );
        db.snapshot().await;
        // Deleting the first remaining row is still seen.
        db.exec("DELETE FROM audit_events WHERE seq = 3").await;
        assert_eq!(db.broken_at().await.seq, 3);
        db.restore().await;
        // Everything pruned, then the chain goes on.
        assert_eq!(db.store.prune_audit(T0 + 100 * DAY).await.unwrap(), 3);
        assert_eq!(
            db.verify().await,
            Ok(Verified {
                events: 0,
                through: 5
            })
        );
        assert_eq!(db.append(6, &event(6)).await.unwrap(), 6);
        assert_eq!(
            db.verify().await,
            Ok(Verified {
                events: 1,
                through: 6
            })
        );
        db.store.close().await;
    }

    async fn concurrent_appends(db: Db, tasks: i64, each: i64) {
        let db = std::sync::Arc::new(db);
        let mut handles = Vec::new();
        for t in 0..tasks {
            let db = db.clone();
            handles.push(tokio::spawn(async move {
                for i in 0..each {
                    db.append(0, &event(t * 1000 + i)).await.unwrap();
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let all = db.store.audit_events(0, MAX_PAGE).await.unwrap();
        let seqs: Vec<i64> = all.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=tasks * each).collect::<Vec<_>>());
        assert_eq!(
            db.verify().await,
            Ok(Verified {
                events: tasks * each,
                through: tasks * each
            })
        );
    }

    #[tokio::test]
    async fn sqlite_appends_verify_and_tampering_is_named() {
        tamper_suite(Db::sqlite().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_concurrent_appends_form_one_chain() {
        concurrent_appends(Db::sqlite().await, 4, 10).await;
    }

    #[tokio::test]
    async fn postgres_appends_verify_and_tampering_is_named() {
        let Some(db) = Db::postgres().await else {
            eprintln!("TESSERA_TEST_PG_URL is not set: skipped");
            return;
        };
        tamper_suite(db).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres_concurrent_appends_form_one_chain() {
        let Some(db) = Db::postgres().await else {
            eprintln!("TESSERA_TEST_PG_URL is not set: skipped");
            return;
        };
        concurrent_appends(db, 8, 20).await;
    }
}
