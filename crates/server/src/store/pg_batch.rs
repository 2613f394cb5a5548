//! PostgreSQL's group commit: the same writes as SQLite's
//! ([`super::group::Write`]: sessions, refresh rotations, sealed tokens)
//! from concurrent requests of one node share one transaction, written with
//! one multi-row statement per kind, whatever the batch size:
//!
//! - sessions are inserted only where their client still exists (`WHERE
//!   EXISTS`, `ON CONFLICT DO NOTHING`), and those not returned fail alone
//!   (the client was deleted meanwhile);
//! - rotations first lock their sessions' rows (`FOR NO KEY UPDATE`, in id
//!   order), then use up the tokens whose conditions hold (`RETURNING` says
//!   which) and store the successors of those only; the others are
//!   [`Written::Unchanged`], decided again one at a time. Session first,
//!   then its tokens, as everywhere: a reuse (its session `FOR UPDATE`), a
//!   revocation (`UPDATE sessions`, then the tokens) and another batch
//!   holding the same session wait for this one instead of deadlocking or
//!   missing its successor;
//! - the audit events of the writes that happened are appended last, under
//!   one lock of the chain's head for the whole batch (on PostgreSQL every
//!   audited change of every node queues on that row: per batch, not per
//!   session), the head lock the last one taken, as everywhere.
//!
//! Every caller is answered after the `COMMIT`. A batch whose statements
//! fail (a deadlock, a constraint that the conditions did not foresee, a
//! trail that refuses events) is rolled back and each of its writes is then
//! tried alone: one bad write fails only its own request. A batch whose
//! connection broke midway is no write's fault: it is tried once more as a
//! whole; one that got no connection, or broke again, fails together.
//!
//! The batches form as in [`crate::batch::Batcher`]: a lone request is
//! written at once, and whoever arrives meanwhile joins the next batch. A
//! node writes one batch at a time (the store's `pg_batches`); its batches
//! of refresh-token reads run up to [`AT_ONCE`] at a time.

use std::collections::HashSet;

use sqlx::{Any, Connection, Row};

use super::group::{RefreshRow, Write, Written};
use super::{SqlStore, StoreError};
use crate::audit::{Actor, Context, Event};

/// Writes per transaction, at most (each write binds at most 14 values:
/// well under PostgreSQL's 65,535 parameters per statement).
pub(crate) const MAX_BATCH: usize = 128;

/// Batches of reads in flight at once on one node: PostgreSQL runs them side
/// by side, so one batch's round trip need not hold up the next. (Its
/// writer thread's pool has twice as many connections.)
pub(crate) const AT_ONCE: usize = 4;

/// Where a node's batches run: a thread of their own with a one-thread
/// Tokio runtime and its own connections. A batch is a few round trips to
/// PostgreSQL, and on the service's runtime each of them waited, after its
/// answer arrived, for a worker to finish signing a token (~0.4 ms for
/// RS256): the batch that everyone in it waits on took several signatures
/// long. Here nothing else runs.
pub(crate) struct PgWriter {
    handle: tokio::runtime::Handle,
    pool: sqlx::AnyPool,
    /// Dropped with the last store: the thread then ends.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl std::fmt::Debug for PgWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgWriter").finish_non_exhaustive()
    }
}

impl PgWriter {
    /// Closes its connections (the store is closing).
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts the thread and connects its pool (`options`: the store's).
    pub(crate) async fn start(
        options: sqlx::any::AnyConnectOptions,
    ) -> Result<PgWriter, StoreError> {
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("tessera-pg-writer".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(StoreError::Sqlite(format!(
                            "the writer's runtime: {e}"
                        ))));
                        return;
                    }
                };
                let pool = runtime.block_on(
                    sqlx::any::AnyPoolOptions::new()
                        .max_connections(u32::try_from(AT_ONCE * 2).unwrap_or(8))
                        .acquire_timeout(std::time::Duration::from_secs(10))
                        .connect_with(options),
                );
                let pool = match pool {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = ready_tx.send(Err(StoreError::from(e)));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok((runtime.handle().clone(), pool.clone())));
                // Runs the batches spawned on it until the store is gone.
                let _ = runtime.block_on(stopped);
                runtime.block_on(pool.close());
            })
            .map_err(|e| StoreError::Sqlite(format!("starting the writer thread: {e}")))?;
        let (handle, pool) = ready
            .await
            .map_err(|_| StoreError::Sqlite("the writer thread did not start".into()))??;
        Ok(PgWriter {
            handle,
            pool,
            _stop: stop,
        })
    }
}

/// A write and who asked for it.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) write: Write,
    pub(crate) actor: Actor,
    pub(crate) ctx: Context,
}

/// The batches of one store.
pub(crate) type PgBatcher = crate::batch::Batcher<Job, Result<Written, StoreError>>;

/// A rotation's read (the token's hash, the client presenting it).
pub(crate) type ReadKey = (Vec<u8>, String);
/// Reads of refresh tokens batched the same way: one query for all.
pub(crate) type PgReads = crate::batch::Batcher<ReadKey, Result<Option<RefreshRow>, StoreError>>;

/// `$n::type` placeholders for `rows` rows of `types`, as a VALUES list.
fn values(rows: usize, types: &[&str]) -> String {
    let mut out = String::with_capacity(rows * types.len() * 12);
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for (i, t) in types.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            n += 1;
            out.push_str(&format!("${n}::{t}"));
        }
        out.push(')');
    }
    out
}

const SESSION_TYPES: &[&str] = &[
    "text", "text", "text", "text", "text", "text", "text", "text", "bigint", "bigint", "text",
    "text", "text", "text",
];
const REFRESH_TYPES: &[&str] = &["bytea", "text", "text", "text", "bigint", "bigint"];
const ROTATE_TYPES: &[&str] = &["bytea", "text", "text", "bigint"];
const SEALED_TYPES: &[&str] = &[
    "bytea", "text", "text", "text", "text", "text", "text", "text", "bigint", "bigint", "bytea",
    "text", "text",
];
const EVENT_TYPES: &[&str] = &[
    "bigint", "bigint", "text", "text", "text", "text", "text", "text", "text", "text", "bytea",
    "bytea", "bytea",
];

type Query<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>;

fn bind_refresh<'q>(q: Query<'q>, r: &'q super::RefreshRecord) -> Query<'q> {
    q.bind(&r.hash)
        .bind(&r.family_id)
        .bind(&r.session_id)
        .bind(&r.client_id)
        .bind(r.created_at)
        .bind(r.expires_at)
}

impl SqlStore {
    /// Writes `write` in this node's next PostgreSQL batch.
    pub(crate) async fn pg_write(&self, write: Write, actor: Actor) -> Result<Written, StoreError> {
        let job = Job {
            write,
            actor,
            ctx: crate::audit::context(),
        };
        let store = self.clone();
        self.pg_batches
            .submit(job, move |jobs| {
                let store = store.clone();
                async move {
                    let n = jobs.len();
                    let Some(writer) = store.pg_writer.clone() else {
                        return store.pg_batch(jobs).await;
                    };
                    let on_writer = writer
                        .handle
                        .spawn(async move { store.pg_batch(jobs).await });
                    on_writer.await.unwrap_or_else(|e| {
                        let message = format!("the batch's task failed: {e}");
                        (0..n)
                            .map(|_| Err(StoreError::Sqlite(message.clone())))
                            .collect()
                    })
                }
            })
            .await
            .map_err(|crate::batch::Abandoned| {
                StoreError::Sqlite("the batch was abandoned; its outcome is unknown".into())
            })?
    }

    /// The refresh token `hash` of `client_id` and its session, read in
    /// this node's next batch of such reads (one query for the batch).
    pub(crate) async fn pg_read_refresh(
        &self,
        hash: &[u8],
        client_id: &str,
    ) -> Result<Option<RefreshRow>, StoreError> {
        let store = self.clone();
        self.pg_reads
            .submit((hash.to_vec(), client_id.to_owned()), move |keys| {
                let store = store.clone();
                async move {
                    match store.pg_reads_once(&keys).await {
                        Ok(rows) => rows.into_iter().map(Ok).collect(),
                        Err(e) => {
                            let message = e.to_string();
                            keys.iter()
                                .map(|_| Err(StoreError::Sqlite(message.clone())))
                                .collect()
                        }
                    }
                }
            })
            .await
            .map_err(|crate::batch::Abandoned| {
                StoreError::Sqlite("the read was abandoned".into())
            })?
    }

    /// One query for a batch of reads: each key's row, in order.
    async fn pg_reads_once(&self, keys: &[ReadKey]) -> Result<Vec<Option<RefreshRow>>, StoreError> {
        let columns = super::SESSION_COLUMNS
            .split(", ")
            .map(|c| format!("s.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT r.hash AS token_hash, r.client_id AS token_client, \
             r.family_id AS token_family, r.used_at AS token_used_at, \
             r.revoked_at AS token_revoked_at, r.expires_at AS token_expires_at, {columns} \
             FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id \
             JOIN (VALUES {}) AS v(hash, client_id) \
               ON r.hash = v.hash AND r.client_id = v.client_id",
            values(keys.len(), &["bytea", "text"])
        );
        let mut q = sqlx::query(&sql);
        for (hash, client) in keys {
            q = q.bind(hash.as_slice()).bind(client);
        }
        let mut found = std::collections::HashMap::new();
        for row in q.fetch_all(&self.pool).await? {
            let key: ReadKey = (row.try_get("token_hash")?, row.try_get("token_client")?);
            let read = RefreshRow {
                family_id: row.try_get("token_family")?,
                used: row.try_get::<Option<i64>, _>("token_used_at")?.is_some(),
                revoked: row.try_get::<Option<i64>, _>("token_revoked_at")?.is_some(),
                expires_at: row.try_get("token_expires_at")?,
                session: super::session_from_row(&row)?,
            };
            found.insert(key, read);
        }
        // A key asked twice in one batch: the first gets the row, the
        // other reads alone next time (it is a replay anyway).
        Ok(keys.iter().map(|k| found.remove(k)).collect())
    }

    /// One batch: together. If the database refused one of its statements
    /// (a constraint the conditions did not foresee, a deadlock, a trail
    /// that refuses events), each write alone: one bad write fails only
    /// its own request. If its connection broke midway (a server that
    /// restarted, a connection it ended), the batch once more as a whole
    /// on another. If no connection could be had (the pool already tried
    /// for up to its acquire timeout), or the connection broke again,
    /// every write fails: each alone would wait again for the same missing
    /// server while the batch holds the node's one turn to write, and the
    /// callers queued behind it would time out instead of being answered
    /// 503. A failed `COMMIT` (a connection lost as it went) may have
    /// committed: trying again would find the batch's tokens used and call
    /// it a reuse, so every write answers "outcome unknown".
    async fn pg_batch(&self, jobs: Vec<Job>) -> Vec<Result<Written, StoreError>> {
        let mut outcome = self.pg_transaction(&jobs).await;
        if let Err(Failed::Broken(e)) = &outcome {
            tracing::debug!(error = %e, writes = jobs.len(), "a batch's connection broke; once more");
            outcome = self.pg_transaction(&jobs).await;
        }
        match outcome {
            Ok(answers) => answers,
            Err(Failed::Commit(e)) => {
                let message = format!("the commit failed; its outcome is unknown: {e}");
                jobs.iter()
                    .map(|_| Err(StoreError::Sqlite(message.clone())))
                    .collect()
            }
            Err(Failed::Before(e) | Failed::Unreachable(e) | Failed::Broken(e))
                if jobs.len() == 1 =>
            {
                vec![Err(e)]
            }
            Err(Failed::Unreachable(e) | Failed::Broken(e)) => {
                tracing::warn!(error = %e, writes = jobs.len(), "the database is unreachable; a batch of writes failed");
                let message = format!("the database is unreachable: {e}");
                jobs.iter()
                    .map(|_| Err(StoreError::Sqlite(message.clone())))
                    .collect()
            }
            Err(Failed::Before(e)) => {
                tracing::debug!(error = %e, writes = jobs.len(), "a batch failed; each write alone");
                self.grouped.retried_alone(jobs.len());
                let mut answers = Vec::with_capacity(jobs.len());
                let mut unreachable = None;
                for job in &jobs {
                    // The server went away meanwhile: the rest fail with
                    // it, rather than each waiting for it again.
                    if let Some(message) = &unreachable {
                        answers.push(Err(StoreError::Sqlite(format!(
                            "the database is unreachable: {message}"
                        ))));
                        continue;
                    }
                    let one = std::slice::from_ref(job);
                    answers.push(match self.pg_transaction(one).await {
                        Ok(mut a) => a.pop().unwrap_or_else(|| {
                            Err(StoreError::Corrupt("a write went unanswered".into()))
                        }),
                        Err(Failed::Before(e)) => Err(e),
                        Err(Failed::Unreachable(e) | Failed::Broken(e)) => {
                            unreachable = Some(e.to_string());
                            Err(e)
                        }
                        Err(Failed::Commit(e)) => Err(StoreError::Sqlite(format!(
                            "the commit failed; its outcome is unknown: {e}"
                        ))),
                    });
                }
                answers
            }
        }
    }

    /// `jobs` in one transaction: each one's answer, or why it failed.
    async fn pg_transaction(
        &self,
        jobs: &[Job],
    ) -> Result<Vec<Result<Written, StoreError>>, Failed> {
        let mut stage = Stage::Connecting;
        self.pg_transaction_in(jobs, &mut stage)
            .await
            .map_err(|e| match stage {
                Stage::Committing => Failed::Commit(e),
                Stage::Connecting => Failed::Unreachable(e),
                // The server refused a statement: it (so perhaps one
                // write) is at fault. Anything else (the connection broke,
                // the server is going away) is the connection's.
                Stage::Writing if matches!(e, StoreError::Database(ref d) if !is_refusal(d)) => {
                    Failed::Broken(e)
                }
                Stage::Writing => Failed::Before(e),
            })
    }

    /// [`SqlStore::pg_transaction`]; `stage` follows it to the `COMMIT`.
    async fn pg_transaction_in(
        &self,
        jobs: &[Job],
        stage: &mut Stage,
    ) -> Result<Vec<Result<Written, StoreError>>, StoreError> {
        let mut answers: Vec<Option<Result<Written, StoreError>>> =
            jobs.iter().map(|_| None).collect();
        // Closed, not reused, unless the transaction ends cleanly.
        let pool = self.pg_writer.as_ref().map_or(&self.pool, |w| &w.pool);
        let mut conn = super::Conn::acquire(pool, &self.write_gate).await?;
        // A connection the pool gave out that breaks at `BEGIN` (the
        // server restarted since its last use) is worth one more try.
        *stage = Stage::Writing;
        let mut tx = conn.get()?.begin().await?;

        // Sessions, where their client still exists; then their first
        // refresh tokens.
        let sessions: Vec<(usize, &super::group::SessionRow, &super::RefreshRecord)> = jobs
            .iter()
            .enumerate()
            .filter_map(|(i, j)| match &j.write {
                Write::Session { row, refresh, .. } => Some((i, &**row, refresh)),
                _ => None,
            })
            .collect();
        if !sessions.is_empty() {
            let sql = format!(
                "INSERT INTO sessions (id, client_id, sub, org, roles, amr, audience, claims, \
                 created_at, expires_at, scope, acr, dpop_jkt, holder) \
                 SELECT v.* FROM (VALUES {}) AS v(id, client_id, sub, org, roles, amr, audience, \
                   claims, created_at, expires_at, scope, acr, dpop_jkt, holder) \
                 WHERE EXISTS (SELECT 1 FROM clients c WHERE c.id = v.client_id) \
                 ON CONFLICT (id) DO NOTHING RETURNING id",
                values(sessions.len(), SESSION_TYPES)
            );
            let mut q = sqlx::query(&sql);
            for (_, s, _) in &sessions {
                q = q
                    .bind(&s.id)
                    .bind(&s.client_id)
                    .bind(&s.sub)
                    .bind(&s.org)
                    .bind(&s.roles)
                    .bind(&s.amr)
                    .bind(&s.audience)
                    .bind(&s.claims)
                    .bind(s.created_at)
                    .bind(s.expires_at)
                    .bind(&s.scope)
                    .bind(&s.acr)
                    .bind(&s.dpop_jkt)
                    .bind(&s.holder);
            }
            let inserted: HashSet<String> = q
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>("id"))
                .collect::<Result<_, _>>()?;
            let mut firsts = Vec::new();
            for (i, s, r) in &sessions {
                if inserted.contains(&s.id) {
                    firsts.push(*r);
                    set(&mut answers, *i, Ok(Written::Done));
                } else {
                    // Its client is gone (a 128-bit random id already
                    // taken is not a case worth another answer).
                    set(&mut answers, *i, Err(StoreError::ClientGone));
                }
            }
            if !firsts.is_empty() {
                let sql = format!(
                    "INSERT INTO refresh_tokens (hash, family_id, session_id, client_id, \
                     created_at, expires_at) VALUES {}",
                    values(firsts.len(), REFRESH_TYPES)
                );
                let mut q = sqlx::query(&sql);
                for r in firsts {
                    q = bind_refresh(q, r);
                }
                q.execute(&mut *tx).await?;
            }
        }

        // Rotations: sessions held first (id order), then the tokens whose
        // conditions hold used up, then their successors.
        let mut seen = HashSet::new();
        let rotations: Vec<(usize, &Write)> = jobs
            .iter()
            .enumerate()
            .filter(|(_, j)| matches!(j.write, Write::Rotate { .. }))
            .map(|(i, j)| (i, &j.write))
            .collect();
        let mut unique = Vec::new();
        for (i, w) in &rotations {
            if let Write::Rotate { hash, .. } = w {
                if seen.insert(hash.as_slice()) {
                    unique.push((*i, *w));
                } else {
                    // The same token twice in one batch: the second is
                    // decided alone (and finds it used: a reuse).
                    set(&mut answers, *i, Ok(Written::Unchanged));
                }
            }
        }
        if !unique.is_empty() {
            let mut ids: Vec<&str> = unique
                .iter()
                .filter_map(|(_, w)| match w {
                    Write::Rotate { session_id, .. } => Some(session_id.as_str()),
                    _ => None,
                })
                .collect();
            ids.sort_unstable();
            ids.dedup();
            let sql = format!(
                "SELECT s.id FROM sessions s JOIN (VALUES {}) AS v(id) ON s.id = v.id \
                 ORDER BY s.id FOR NO KEY UPDATE OF s",
                values(ids.len(), &["text"])
            );
            let mut q = sqlx::query(&sql);
            for id in &ids {
                q = q.bind(*id);
            }
            q.fetch_all(&mut *tx).await?;
            let sql = format!(
                "UPDATE refresh_tokens r SET used_at = v.now \
                 FROM (VALUES {}) AS v(hash, client_id, session_id, now) \
                 WHERE r.hash = v.hash AND r.client_id = v.client_id AND r.used_at IS NULL \
                   AND r.revoked_at IS NULL AND r.expires_at > v.now \
                   AND EXISTS (SELECT 1 FROM sessions s WHERE s.id = v.session_id \
                     AND s.revoked_at IS NULL AND s.expires_at > v.now) \
                 RETURNING r.hash",
                values(unique.len(), ROTATE_TYPES)
            );
            let mut q = sqlx::query(&sql);
            for (_, w) in &unique {
                if let Write::Rotate {
                    hash,
                    client_id,
                    session_id,
                    now,
                    ..
                } = w
                {
                    q = q
                        .bind(hash.as_slice())
                        .bind(client_id)
                        .bind(session_id)
                        .bind(*now);
                }
            }
            let used: HashSet<Vec<u8>> = q
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get::<Vec<u8>, _>("hash"))
                .collect::<Result<_, _>>()?;
            let mut successors = Vec::new();
            for (i, w) in &unique {
                if let Write::Rotate {
                    hash, successor, ..
                } = w
                {
                    if used.contains(hash) {
                        successors.push(successor);
                        set(&mut answers, *i, Ok(Written::Done));
                    } else {
                        set(&mut answers, *i, Ok(Written::Unchanged));
                    }
                }
            }
            if !successors.is_empty() {
                let sql = format!(
                    "INSERT INTO refresh_tokens (hash, family_id, session_id, client_id, \
                     created_at, expires_at) VALUES {}",
                    values(successors.len(), REFRESH_TYPES)
                );
                let mut q = sqlx::query(&sql);
                for r in successors {
                    q = bind_refresh(q, r);
                }
                q.execute(&mut *tx).await?;
            }
        }

        // Sealed tokens: the expired ones go, the new ones are kept.
        let sealed: Vec<(usize, &super::SealedRecord, i64)> = jobs
            .iter()
            .enumerate()
            .filter_map(|(i, j)| match &j.write {
                Write::Sealed { record, now, .. } => Some((i, &**record, *now)),
                _ => None,
            })
            .collect();
        if let Some(now) = sealed.iter().map(|(_, _, now)| *now).min() {
            sqlx::query("DELETE FROM sealed_tokens WHERE expires_at < $1")
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let sql = format!(
                "INSERT INTO sealed_tokens (hash, jti, kind, format, client_id, session_id, sub, \
                 audience, issued_at, expires_at, session_ref, kid, jkt) VALUES {}",
                values(sealed.len(), SEALED_TYPES)
            );
            let mut q = sqlx::query(&sql);
            for (_, t, _) in &sealed {
                q = super::bind_sealed(q, t);
            }
            q.execute(&mut *tx).await?;
            for (i, _, _) in &sealed {
                set(&mut answers, *i, Ok(Written::Done));
            }
        }

        // The events of what was written, under the head's lock: the last
        // lock this transaction takes.
        let events: Vec<(&Job, &Event)> = jobs
            .iter()
            .zip(&answers)
            .filter(|(_, a)| matches!(a, Some(Ok(Written::Done))))
            .filter_map(|(j, _)| j.write.event().map(|e| (j, e)))
            .collect();
        if !events.is_empty() {
            let mut head = crate::audit::lock_head(&mut tx, super::Backend::Postgres, true).await?;
            if !head.is_authentic(&self.audit) {
                return Err(crate::audit::head_refused());
            }
            let now = super::wall_clock();
            let mut records = Vec::with_capacity(events.len());
            for (job, event) in &events {
                let record = crate::audit::new_record_in(
                    job.ctx.clone(),
                    &head,
                    &self.audit,
                    event,
                    job.actor.clone(),
                    now,
                )?;
                head.seq = record.seq;
                head.hash.clone_from(&record.hash);
                records.push(record);
            }
            let sql = format!(
                "{} VALUES {}",
                crate::audit::INSERT_EVENT,
                values(records.len(), EVENT_TYPES)
            );
            let mut q = sqlx::query(&sql);
            for r in &records {
                q = crate::audit::bind_record(q, r);
            }
            q.execute(&mut *tx).await?;
            crate::audit::write_head(&mut tx, super::Backend::Postgres, &self.audit, &head).await?;
        }
        *stage = Stage::Committing;
        tx.commit().await?;
        conn.finished();
        self.grouped.committed(
            answers
                .iter()
                .filter(|a| matches!(a, Some(Ok(Written::Done))))
                .count(),
        );
        super::counted_refs(events.iter().map(|(_, e)| *e));
        Ok(answers
            .into_iter()
            .map(|a| {
                a.unwrap_or_else(|| Err(StoreError::Corrupt("a write went unanswered".into())))
            })
            .collect())
    }
}

/// Why a batch failed: the database refused a statement before the
/// `COMMIT` was sent (nothing written; perhaps one write's fault), no
/// connection could be had, or it broke before the `COMMIT` (nothing
/// written; no write's fault), or at the `COMMIT` (the outcome is unknown).
enum Failed {
    Before(StoreError),
    Unreachable(StoreError),
    Broken(StoreError),
    Commit(StoreError),
}

/// How far a batch's transaction got.
#[derive(Clone, Copy)]
enum Stage {
    /// Getting a connection from the pool (which tries to connect for up
    /// to its acquire timeout).
    Connecting,
    /// `BEGIN` and the statements.
    Writing,
    /// The `COMMIT` is sent.
    Committing,
}

/// Whether the server refused a statement (a constraint, a deadlock, a
/// serialization failure): as opposed to a connection that broke, a pool
/// that had none to give, or a server that will refuse every write alike
/// ([`ends_every_write`]).
fn is_refusal(e: &sqlx::Error) -> bool {
    if let sqlx::Error::Database(d) = e {
        let fatal = d
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .is_some_and(|p| {
                matches!(
                    p.severity(),
                    sqlx::postgres::PgSeverity::Fatal | sqlx::postgres::PgSeverity::Panic
                )
            });
        return !ends_every_write(d.code().as_deref(), fatal);
    }
    matches!(
        e,
        sqlx::Error::RowNotFound
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::TypeNotFound { .. }
    )
}

/// Whether an error PostgreSQL sent (its SQLSTATE, and whether it ended the
/// session: FATAL or PANIC) would meet every write alike, so that trying
/// them one at a time only waits longer: a connection exception (class
/// 08), the server out of resources (53, e.g. too many connections),
/// shutting down or not yet accepting connections (57P01–57P03), an idle
/// session or transaction timed out (57P05, 25P03), or a server that takes
/// no writes (25006: a read-only transaction, e.g. a standby or a demoted
/// primary).
fn ends_every_write(code: Option<&str>, fatal: bool) -> bool {
    let code = code.unwrap_or("");
    fatal
        || code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "57P05" | "25P03" | "25006"
        )
}

fn set(
    answers: &mut [Option<Result<Written, StoreError>>],
    i: usize,
    answer: Result<Written, StoreError>,
) {
    if let Some(slot) = answers.get_mut(i) {
        *slot = Some(answer);
    }
}

#[cfg(test)]
mod tests {
    use super::ends_every_write;

    #[test]
    fn a_refused_statement_is_one_writes_fault_and_a_lost_server_is_everyones() {
        // Perhaps one write's: a unique or foreign key violation, a check,
        // a deadlock, a serialization failure, a statement timeout.
        for code in [
            "23505", "23503", "23514", "40P01", "40001", "57014", "22P02",
        ] {
            assert!(!ends_every_write(Some(code), false), "{code}");
        }
        // Everyone's.
        for code in [
            "08006", "08003", "08001", "53300", "53100", "57P01", "57P02", "57P03", "57P05",
            "25P03", "25006",
        ] {
            assert!(ends_every_write(Some(code), false), "{code}");
        }
        // Whatever the code, an error that ended the session.
        assert!(ends_every_write(Some("XX000"), true));
        assert!(ends_every_write(None, true));
        assert!(!ends_every_write(None, false));
    }
}
