//! SQLite's group commit: the writes a request waits on — a new session
//! with its first refresh token and its audit event, a refresh token's
//! rotation, a sealed token's record — go to one writer thread, which takes
//! everything queued and writes it as one transaction: one `COMMIT`, so one
//! fsync of the WAL (`synchronous = FULL`), for the whole batch. Each caller
//! is answered only after that `COMMIT` returned: its write is on disk.
//!
//! - **Each write stands alone.** Every write runs inside its own
//!   `SAVEPOINT`: one that fails (its client deleted meanwhile, a constraint,
//!   the audit trail refusing its event) is rolled back to it and fails only
//!   its own request; the others commit. Should SQLite end the whole
//!   transaction by itself (a full disk, an I/O error), every write of the
//!   batch fails and none is applied; should the `COMMIT` itself fail,
//!   every write fails as "outcome unknown" (an I/O error while syncing can
//!   leave a commit that recovery applies). Either way the connection is
//!   closed and opened afresh for the next batch.
//! - **A caller that gave up writes nothing.** A write whose request was
//!   dropped (its client hung up, or it timed out) before its turn is
//!   skipped, as it was when each request ran its own transaction: a
//!   client that retries with the same refresh token finds it unused.
//! - **Bounded.** At most [`MAX_QUEUE`] messages wait (beyond: 503 at
//!   once); the thread waits at most 30 s for its turn behind this
//!   process's other writer (then the batch fails: 503); a panic fails its
//!   batch (its callers get 503) and the thread goes on with a fresh
//!   connection.
//! - **No added latency when idle.** The thread waits for the first write,
//!   then takes whatever else is already queued (at most [`MAX_BATCH`]), and
//!   writes at once when no other write is on its way: a lone request
//!   commits alone. A batch forms while the previous one is being written —
//!   exactly when sharing the fsync pays — and, under load, while the
//!   writes requests announced are still being signed.
//! - **Gathering, bounded.** A request that was accepted and will write
//!   once it has signed its tokens says so first ([`GroupCommit::announce`];
//!   the announcement ends when its write is queued, or when the request
//!   gives up). While a batch has fewer than [`GATHER_WRITES`] writes and
//!   some announced write is not queued yet, the thread waits for more —
//!   at most [`GATHER_FOR`] per batch
//!   ([`super::SqlStore::gather_writes_for`]) — and the last announcement
//!   to end wakes it. Any write of the batch, announced or not, waits with
//!   it; with no announcement outstanding, nothing waits. RS256 sessions
//!   arrive ~1.3 ms apart on two cores: committed one by one, each paid a
//!   commit and an fsync of its own (1.1 writes per commit, ~0.2 ms of CPU
//!   each, and the hypervisor's time for the fsync taken from this VM's
//!   cores). Reads (a refresh token's) are answered at once meanwhile.
//! - **Its own thread, not a Tokio task.** A task holding SQLite's write
//!   lock waits for a free Tokio worker after every statement, and under
//!   load the workers are busy signing tokens (an RS256 signature takes
//!   ~0.4 ms); the writer thread never waits for them. Its statements are
//!   prepared once and kept (rusqlite, on the same SQLite library as sqlx).
//! - **The audit chain.** The head is read once per batch inside the
//!   transaction (under SQLite's write lock), each write's event is chained
//!   on it in order, and the head is written once, before the `COMMIT`.
//! - **With the rest of the store.** The store's other writes go through
//!   sqlx's writer connection behind [`WriteGate`]; this thread takes the
//!   same gate for each batch, so the two never contend for SQLite's lock.
//!   Other processes (the CLI) meet SQLite's busy timeout, as before.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OpenFlags};
use tokio::sync::oneshot;

use super::{RefreshRecord, SealedRecord, StoreError, WriteGate};
use crate::audit::{Actor, AuditHead, AuditKeys, Context, Event, HeadCache};

/// Writes per transaction, at most.
pub(crate) const MAX_BATCH: usize = 128;
/// Messages (writes and reads) waiting for the thread, at most.
pub(crate) const MAX_QUEUE: usize = 4096;
/// A batch smaller than this waits for announced writes (up to
/// [`GATHER_FOR`]); one this large is written at once.
pub(crate) const GATHER_WRITES: usize = 32;
/// How long a batch waits for announced writes, at most (by default).
pub(crate) const GATHER_FOR: Duration = Duration::from_millis(10);
/// The longest wait [`GroupCommit::gather_for`] accepts.
const GATHER_AT_MOST: Duration = Duration::from_secs(60);
/// The writer connection's page cache, as SQLite's `cache_size` (negative:
/// KiB): 16 MiB.
const WRITER_CACHE_KIB: i64 = -16_384;

/// A session as its row stores it (`roles`, `amr`, `claims` as JSON,
/// `scope` space-separated).
#[derive(Debug)]
pub(crate) struct SessionRow {
    pub(crate) id: String,
    pub(crate) client_id: String,
    pub(crate) sub: String,
    pub(crate) org: String,
    pub(crate) roles: String,
    pub(crate) amr: String,
    pub(crate) audience: String,
    pub(crate) claims: String,
    pub(crate) created_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) scope: String,
    pub(crate) acr: Option<String>,
    pub(crate) dpop_jkt: Option<String>,
    pub(crate) holder: Option<String>,
}

/// A write for the writer thread.
#[derive(Debug)]
pub(crate) enum Write {
    /// A new session, its first refresh token, and its event.
    Session {
        row: Box<SessionRow>,
        refresh: RefreshRecord,
        event: Event,
    },
    /// A refresh token used up and its successor stored — if the token is
    /// still unused, unrevoked and unexpired, bound to `client_id`, and its
    /// session (`session_id`) alive at `now`; else nothing is written
    /// ([`Written::Unchanged`]).
    Rotate {
        hash: Vec<u8>,
        client_id: String,
        session_id: String,
        successor: RefreshRecord,
        now: i64,
    },
    /// A sealed token's record, and its event if it is audited. Records
    /// expired before `now` are deleted first (once per batch).
    Sealed {
        record: Box<SealedRecord>,
        now: i64,
        event: Option<Event>,
    },
}

/// What a write did, once committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// Written as asked.
    Done,
    /// Its condition did not hold ([`Write::Rotate`]): nothing written.
    Unchanged,
}

struct Job {
    write: Write,
    /// Who the event names, unless `ctx` names someone.
    actor: Actor,
    /// The request's audit context (request id, address, actor): the
    /// thread is not the request's task.
    ctx: Context,
    reply: oneshot::Sender<Result<Written, StoreError>>,
}

/// A refresh token and its session, as a rotation's common case reads
/// them before deciding ([`GroupCommit::read_refresh`]).
#[derive(Debug)]
pub(crate) struct RefreshRow {
    pub(crate) family_id: String,
    pub(crate) used: bool,
    pub(crate) revoked: bool,
    pub(crate) expires_at: i64,
    pub(crate) session: super::SessionRecord,
}

struct ReadJob {
    hash: Vec<u8>,
    client_id: String,
    reply: oneshot::Sender<Result<Option<RefreshRow>, StoreError>>,
}

enum Message {
    Job(Box<Job>),
    /// A read, answered before the batch it arrived with is written (it
    /// sees what was committed, nothing of that batch).
    Read(ReadJob),
    /// Close the connection (after the writes queued before this), answer.
    Close(oneshot::Sender<()>),
    /// No announced write is left: a batch waiting for them is written.
    Wake,
}

/// What requests told the thread of the writes they are about to make.
#[derive(Debug, Default)]
struct Ahead {
    /// Writes announced and neither queued nor given up yet.
    coming: AtomicUsize,
    /// The thread waits for them: the last to end wakes it.
    gathering: AtomicBool,
    /// How long a batch may wait for them, in microseconds (0: never).
    window_us: AtomicU64,
}

/// A write a request announced ([`GroupCommit::announce`]); dropped once
/// it is queued, or the request gave up on it.
pub(crate) struct Announced {
    ahead: Arc<Ahead>,
    queue: mpsc::SyncSender<Message>,
}

impl Drop for Announced {
    fn drop(&mut self) {
        // Sequentially consistent, like the thread's side (`gathering`
        // stored, then `coming` read): either it sees this write gone, or
        // this sees it waiting and wakes it.
        let last = self.ahead.coming.fetch_sub(1, Ordering::SeqCst) == 1;
        if last && self.ahead.gathering.load(Ordering::SeqCst) {
            // A full queue wakes it anyway; else its wait ends on time.
            let _ = self.queue.try_send(Message::Wake);
        }
    }
}

tokio::task_local! {
    /// The announcement of the write the task is about to queue
    /// ([`Announced::until_queued`]).
    static ANNOUNCED: std::cell::RefCell<Option<Announced>>;
}

impl Announced {
    /// Runs `write`, the announced write; the announcement ends as soon as
    /// it is queued ([`GroupCommit::write`]), or when `write` ends without
    /// queuing it (it failed before, or the store has no writer thread).
    pub(crate) async fn until_queued<F: std::future::Future>(self, write: F) -> F::Output {
        ANNOUNCED
            .scope(std::cell::RefCell::new(Some(self)), write)
            .await
    }
}

impl std::fmt::Debug for Announced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announced").finish_non_exhaustive()
    }
}

/// The handle on the writer thread; the thread ends when every handle is
/// gone (an announcement, [`Announced`], holds one too).
#[derive(Clone)]
pub(crate) struct GroupCommit {
    queue: mpsc::SyncSender<Message>,
    ahead: Arc<Ahead>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

fn stopped() -> StoreError {
    StoreError::Sqlite("the store's writer thread stopped".into())
}

fn send(queue: &mpsc::SyncSender<Message>, message: Message) -> Result<(), StoreError> {
    queue.try_send(message).map_err(|e| match e {
        mpsc::TrySendError::Full(_) => {
            StoreError::Sqlite("too many writes are waiting for the store".into())
        }
        mpsc::TrySendError::Disconnected(_) => stopped(),
    })
}

impl GroupCommit {
    /// Starts the writer thread for the database file at `path` (which
    /// exists: the migrations ran), taking turns with sqlx's writer through
    /// `gate`, chaining events with `keys`, telling `head` the chain's new
    /// head after each batch that moved it, and letting a small batch wait
    /// up to `gather` for announced writes ([`GroupCommit::gather_for`]).
    pub(crate) fn start(
        path: PathBuf,
        gate: WriteGate,
        keys: Arc<AuditKeys>,
        head: Arc<HeadCache>,
        stats: Arc<super::GroupStats>,
        gather: Duration,
    ) -> std::io::Result<GroupCommit> {
        let (queue, jobs) = mpsc::sync_channel(MAX_QUEUE);
        let ahead = Arc::new(Ahead::default());
        let group = GroupCommit {
            queue,
            ahead: ahead.clone(),
        };
        group.gather_for(gather);
        let worker = Worker {
            ahead: ahead.clone(),
            path,
            conn: None,
            gate,
            keys,
            head,
            stats,
        };
        std::thread::Builder::new()
            .name("tessera-sqlite-writer".into())
            .spawn(move || worker.run(&jobs))?;
        Ok(group)
    }

    /// A write the caller will queue soon (once it has signed its tokens):
    /// a small batch waits for it, within the gathering window. The
    /// announcement ends when the write is queued inside
    /// [`Announced::until_queued`], or when the guard is dropped.
    pub(crate) fn announce(&self) -> Announced {
        self.ahead.coming.fetch_add(1, Ordering::SeqCst);
        Announced {
            ahead: self.ahead.clone(),
            queue: self.queue.clone(),
        }
    }

    /// How long a batch waits for announced writes, at most (zero: it
    /// never waits; beyond a minute, a minute).
    pub(crate) fn gather_for(&self, window: Duration) {
        let window = window.min(GATHER_AT_MOST);
        let us = u64::try_from(window.as_micros()).unwrap_or(u64::MAX);
        self.ahead.window_us.store(us, Ordering::Relaxed);
    }

    /// Writes `write` in the next batch; answered once that batch is
    /// committed (or failed). The task's audit context goes with it.
    pub(crate) async fn write(&self, write: Write, actor: Actor) -> Result<Written, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            write,
            actor,
            ctx: crate::audit::context(),
            reply,
        };
        send(&self.queue, Message::Job(Box::new(job)))?;
        // Queued: its announcement, if any, ends (behind it in the queue,
        // should it wake the thread).
        let _ = ANNOUNCED.try_with(|a| drop(a.borrow_mut().take()));
        answer.await.map_err(|_| stopped())?
    }

    /// The refresh token `hash` of `client_id` and its session, read on the
    /// writer's connection between two batches (no trip through sqlx's pool
    /// on the refresh path: the rotation that follows comes here anyway).
    pub(crate) async fn read_refresh(
        &self,
        hash: &[u8],
        client_id: &str,
    ) -> Result<Option<RefreshRow>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = ReadJob {
            hash: hash.to_vec(),
            client_id: client_id.to_owned(),
            reply,
        };
        send(&self.queue, Message::Read(job))?;
        answer.await.map_err(|_| stopped())?
    }

    /// Closes the thread's connection once the writes queued before this
    /// call are done; the next write opens it again.
    pub(crate) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        // Waits for room: a close is never dropped.
        if self.queue.send(Message::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }
}

/// The writer thread's state.
struct Worker {
    /// The writes announced ([`GroupCommit::announce`]).
    ahead: Arc<Ahead>,
    path: PathBuf,
    /// `None` until the first write, and after a failure left it in doubt.
    conn: Option<Connection>,
    gate: WriteGate,
    keys: Arc<AuditKeys>,
    head: Arc<HeadCache>,
    stats: Arc<super::GroupStats>,
}

/// A batch that could not be written: every write of it fails.
struct BatchFailed(StoreError);

impl From<rusqlite::Error> for BatchFailed {
    fn from(e: rusqlite::Error) -> Self {
        BatchFailed(sqlite_error(&e))
    }
}

impl From<StoreError> for BatchFailed {
    fn from(e: StoreError) -> Self {
        BatchFailed(e)
    }
}

/// A failed statement as the store reports it (no values: no secret).
fn sqlite_error(e: &rusqlite::Error) -> StoreError {
    StoreError::Sqlite(e.to_string())
}

/// SQLite's extended code of a failed statement.
fn extended_code(e: &rusqlite::Error) -> Option<std::ffi::c_int> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.extended_code),
        _ => None,
    }
}

const INSERT_SESSION: &str = "INSERT INTO sessions (id, client_id, sub, org, roles, amr, \
     audience, claims, created_at, expires_at, scope, acr, dpop_jkt, holder) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
const INSERT_REFRESH: &str = "INSERT INTO refresh_tokens (hash, family_id, session_id, \
     client_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const USE_REFRESH: &str = "UPDATE refresh_tokens SET used_at = ?1 WHERE hash = ?2 \
     AND client_id = ?3 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?1 \
     AND EXISTS (SELECT 1 FROM sessions WHERE id = ?4 AND revoked_at IS NULL \
       AND expires_at > ?1)";
const INSERT_SEALED: &str = "INSERT INTO sealed_tokens (hash, jti, kind, format, client_id, \
     session_id, sub, audience, issued_at, expires_at, session_ref, kid, jkt) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
const PRUNE_SEALED: &str = "DELETE FROM sealed_tokens WHERE expires_at < ?1";
const WRITE_HEAD: &str = "UPDATE audit_head SET seq = ?1, hash = ?2, mac = ?3 WHERE id = 1";

impl Worker {
    fn run(mut self, queue: &mpsc::Receiver<Message>) {
        while let Ok(first) = queue.recv() {
            let mut batch = Vec::new();
            let mut reads = Vec::new();
            let mut close = None;
            let mut next = Some(first);
            while let Some(message) = next {
                match message {
                    Message::Job(job) => batch.push(*job),
                    Message::Read(read) => reads.push(read),
                    Message::Close(done) => {
                        close = Some(done);
                        break;
                    }
                    Message::Wake => {}
                }
                next = if batch.len() < MAX_BATCH {
                    queue.try_recv().ok()
                } else {
                    None
                };
            }
            if !reads.is_empty() {
                self.read(reads);
            }
            if close.is_none() && !batch.is_empty() && batch.len() < GATHER_WRITES {
                close = self.gather(queue, &mut batch);
            }
            // A caller that went away before its turn: its write is not made.
            batch.retain(|job| !job.reply.is_closed());
            if !batch.is_empty() {
                // A panic fails this batch only (its callers' answers are
                // dropped: 503), and the connection is opened afresh.
                let written =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.write(batch)));
                if written.is_err() {
                    tracing::error!("the store's writer panicked; its batch failed");
                    self.conn = None;
                }
            }
            if let Some(done) = close {
                self.close();
                let _ = done.send(());
            }
        }
        self.close();
    }

    /// Waits for the writes announced, adding them to `batch`, while it
    /// is small and for at most the window; answers reads meanwhile.
    /// Returns a close asked for meanwhile (the batch is written first).
    fn gather(
        &mut self,
        queue: &mpsc::Receiver<Message>,
        batch: &mut Vec<Job>,
    ) -> Option<oneshot::Sender<()>> {
        let window = Duration::from_micros(self.ahead.window_us.load(Ordering::Relaxed));
        if window.is_zero() {
            return None;
        }
        let deadline = Instant::now().checked_add(window)?;
        self.ahead.gathering.store(true, Ordering::SeqCst);
        let mut close = None;
        while batch.len() < GATHER_WRITES && self.ahead.coming.load(Ordering::SeqCst) > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match queue.recv_timeout(left) {
                Ok(Message::Job(job)) => batch.push(*job),
                Ok(Message::Read(read)) => self.read(vec![read]),
                Ok(Message::Wake) => {}
                Ok(Message::Close(done)) => {
                    close = Some(done);
                    break;
                }
                Err(_) => break,
            }
        }
        self.ahead.gathering.store(false, Ordering::SeqCst);
        // What is already queued goes too (a wake-up finds the write that
        // ended the last announcement ahead of it), up to a batch's worth
        // of messages; the reads among them are answered first.
        let mut reads = Vec::new();
        for _ in 0..MAX_BATCH {
            if close.is_some() || batch.len() >= MAX_BATCH {
                break;
            }
            match queue.try_recv() {
                Ok(Message::Job(job)) => batch.push(*job),
                Ok(Message::Read(read)) => reads.push(read),
                Ok(Message::Wake) => {}
                Ok(Message::Close(done)) => close = Some(done),
                Err(_) => break,
            }
        }
        if !reads.is_empty() {
            self.read(reads);
        }
        close
    }

    fn close(&mut self) {
        if let Some(conn) = self.conn.take() {
            if let Err((_, e)) = conn.close() {
                tracing::warn!(error = %e, "closing the store's group-commit connection");
            }
        }
    }

    /// The connection, opened if need be.
    fn connection(&mut self) -> Result<&mut Connection, rusqlite::Error> {
        if self.conn.is_none() {
            let conn = Connection::open_with_flags(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            // The writer's page cache holds the B-trees' hot pages (every
            // index takes inserts at random places): at SQLite's default
            // 2 MiB it re-read pages from the OS (a copy and a system call
            // each) once the refresh tokens' hash index outgrew it.
            conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(%mode, "the store is not in WAL mode");
            }
            conn.set_prepared_statement_cache_capacity(32);
            self.conn = Some(conn);
        }
        self.conn.as_mut().ok_or(rusqlite::Error::InvalidQuery)
    }

    /// Answers reads, each on what was last committed.
    fn read(&mut self, reads: Vec<ReadJob>) {
        for job in reads {
            let answer = self
                .connection()
                .map_err(|e| sqlite_error(&e))
                .and_then(|conn| read_refresh(conn, &job.hash, &job.client_id));
            let _ = job.reply.send(answer);
        }
    }

    /// Writes one batch and answers each of its callers.
    fn write(&mut self, batch: Vec<Job>) {
        let gate = self.gate.clone();
        // This process's other writers wait meanwhile (sqlx's writer).
        let (turn, outcome) = match gate.blocking_turn() {
            Ok(turn) => (turn, self.transaction(&batch)),
            Err(e) => (None, Err(BatchFailed(e))),
        };
        let answers = match outcome {
            Ok((answers, events)) => {
                self.stats.committed(
                    answers
                        .iter()
                        .filter(|a| matches!(a, Ok(Written::Done)))
                        .count(),
                );
                for action in events {
                    crate::metrics::AUDIT_EVENTS.inc(&[action]);
                }
                answers
            }
            Err(BatchFailed(e)) => {
                // Rolled back, or in doubt: either way this connection is
                // not used again (a transaction SQLite may or may not have
                // ended by itself is never built on).
                if let Some(conn) = self.conn.as_mut() {
                    if !conn.is_autocommit() {
                        let _ = conn.execute_batch("ROLLBACK");
                    }
                }
                self.close();
                tracing::warn!(error = %e, writes = batch.len(), "a batch of writes failed");
                let message = e.to_string();
                batch
                    .iter()
                    .map(|_| Err(StoreError::Sqlite(message.clone())))
                    .collect()
            }
        };
        drop(turn);
        for (job, answer) in batch.into_iter().zip(answers) {
            // A caller that went away (its client hung up) wants no answer;
            // its write stands.
            let _ = job.reply.send(answer);
        }
    }

    /// One transaction for `batch`: each write's own answer, and the
    /// actions of the events written; or the failure of the whole batch.
    #[allow(clippy::type_complexity)]
    fn transaction<'b>(
        &mut self,
        batch: &'b [Job],
    ) -> Result<(Vec<Result<Written, StoreError>>, Vec<&'b str>), BatchFailed> {
        let keys = self.keys.clone();
        let conn = self.connection()?;
        conn.execute_batch("BEGIN IMMEDIATE")?;
        // The chain's head, read only if a write of the batch has an event.
        let mut head = if batch.iter().any(|j| j.write.event().is_some()) {
            Some(read_head(conn)?)
        } else {
            None
        };
        let authentic = head.as_ref().is_some_and(|h| h.is_authentic(&keys));
        let first_seq = head.as_ref().map_or(0, |h| h.seq);
        if let Some(now) = batch
            .iter()
            .filter_map(|j| match &j.write {
                Write::Sealed { now, .. } => Some(*now),
                _ => None,
            })
            .min()
        {
            conn.prepare_cached(PRUNE_SEALED)?.execute([now])?;
        }
        let mut answers = Vec::with_capacity(batch.len());
        let mut events = Vec::new();
        // Stands in when no write of the batch has an event.
        let mut no_head = AuditHead {
            seq: 0,
            hash: Vec::new(),
            pruned_through: 0,
            pruned_hash: Vec::new(),
            mac: None,
        };
        for job in batch {
            if job.reply.is_closed() {
                // Gone while the batch waited for its turn: not written.
                answers.push(Err(StoreError::Sqlite("the caller went away".into())));
                continue;
            }
            conn.prepare_cached("SAVEPOINT write")?.execute([])?;
            let head = head.as_mut().unwrap_or(&mut no_head);
            let before = (head.seq, head.hash.clone());
            let mut chain = Chain {
                head,
                authentic,
                keys: &keys,
                ctx: &job.ctx,
                actor: &job.actor,
            };
            let answer = apply(conn, &job.write, &mut chain);
            if answer.is_err() {
                conn.prepare_cached("ROLLBACK TO write")?.execute([])?;
                (head.seq, head.hash) = before;
            }
            conn.prepare_cached("RELEASE write")?.execute([])?;
            if conn.is_autocommit() {
                // SQLite ended the transaction by itself (a full disk, an
                // I/O error): what the batch wrote so far is gone.
                return Err(BatchFailed(match answer {
                    Err(e) => e,
                    Ok(_) => StoreError::Sqlite("the transaction ended by itself".into()),
                }));
            }
            if answer.is_ok() {
                if let Some(e) = job.write.event() {
                    events.push(e.action.as_str());
                }
            }
            answers.push(answer);
        }
        let moved = match head.filter(|h| h.seq != first_seq) {
            Some(mut h) => {
                let mac = h.compute_mac(&keys);
                conn.prepare_cached(WRITE_HEAD)?
                    .execute(params![h.seq, h.hash, mac])?;
                h.mac = Some(mac);
                Some(h)
            }
            None => None,
        };
        if let Err(e) = conn.execute_batch("COMMIT") {
            // Whether it reached the disk is not known (recovery may apply
            // a commit whose sync failed).
            return Err(BatchFailed(StoreError::Sqlite(format!(
                "the commit failed; its outcome is unknown: {e}"
            ))));
        }
        if let Some(h) = moved {
            // sqlx's writer builds its next event on it (checked there).
            self.head.put(h);
        }
        Ok((answers, events))
    }
}

impl Write {
    /// The event this write appends, if any.
    pub(crate) fn event(&self) -> Option<&Event> {
        match self {
            Write::Session { event, .. } => Some(event),
            Write::Sealed { event, .. } => event.as_ref(),
            Write::Rotate { .. } => None,
        }
    }
}

/// The audit chain as a write in the batch finds it.
struct Chain<'a> {
    head: &'a mut AuditHead,
    /// Whether the head verified under these keys (else no event is
    /// written, and a write that has one fails).
    authentic: bool,
    keys: &'a AuditKeys,
    ctx: &'a Context,
    actor: &'a Actor,
}

impl Chain<'_> {
    /// Appends `event` after the head, which moves to it.
    fn append(&mut self, conn: &Connection, event: &Event) -> Result<(), StoreError> {
        if !self.authentic {
            return Err(crate::audit::head_refused());
        }
        let record = crate::audit::new_record_in(
            self.ctx.clone(),
            self.head,
            self.keys,
            event,
            self.actor.clone(),
            super::wall_clock(),
        )?;
        conn.prepare_cached(insert_event_sql())
            .and_then(|mut s| {
                s.execute(params![
                    record.seq,
                    record.time,
                    record.actor_type,
                    record.actor_id,
                    record.action,
                    record.target,
                    record.outcome,
                    record.request_id,
                    record.source_ip,
                    record.details,
                    record.prev_hash,
                    record.hash,
                    record.mac,
                ])
            })
            .map_err(|e| sqlite_error(&e))?;
        self.head.seq = record.seq;
        self.head.hash = record.hash;
        Ok(())
    }
}

/// The event insert, built once.
fn insert_event_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "{} VALUES ({})",
            crate::audit::INSERT_EVENT,
            crate::audit::EVENT_VALUES
        )
    })
}

/// Applies one write inside its savepoint.
fn apply(conn: &Connection, write: &Write, chain: &mut Chain<'_>) -> Result<Written, StoreError> {
    let failed = |e: rusqlite::Error| sqlite_error(&e);
    match write {
        Write::Session {
            row,
            refresh,
            event,
        } => {
            let inserted = conn.prepare_cached(INSERT_SESSION).and_then(|mut s| {
                s.execute(params![
                    row.id,
                    row.client_id,
                    row.sub,
                    row.org,
                    row.roles,
                    row.amr,
                    row.audience,
                    row.claims,
                    row.created_at,
                    row.expires_at,
                    row.scope,
                    row.acr,
                    row.dpop_jkt,
                    row.holder,
                ])
            });
            if let Err(e) = inserted {
                return Err(
                    if extended_code(&e) == Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) {
                        StoreError::ClientGone
                    } else {
                        failed(e)
                    },
                );
            }
            insert_refresh(conn, refresh).map_err(failed)?;
            chain.append(conn, event)?;
            Ok(Written::Done)
        }
        Write::Rotate {
            hash,
            client_id,
            session_id,
            successor,
            now,
        } => {
            let used = conn
                .prepare_cached(USE_REFRESH)
                .and_then(|mut s| s.execute(params![now, hash, client_id, session_id]))
                .map_err(failed)?;
            if used != 1 {
                return Ok(Written::Unchanged);
            }
            insert_refresh(conn, successor).map_err(failed)?;
            Ok(Written::Done)
        }
        Write::Sealed {
            record: t, event, ..
        } => {
            conn.prepare_cached(INSERT_SEALED)
                .and_then(|mut s| {
                    s.execute(params![
                        t.hash,
                        t.jti,
                        t.kind,
                        t.format,
                        t.client_id,
                        t.session_id,
                        t.sub,
                        t.audience,
                        t.issued_at,
                        t.expires_at,
                        t.session_ref,
                        t.kid,
                        t.jkt,
                    ])
                })
                .map_err(failed)?;
            if let Some(e) = event {
                chain.append(conn, e)?;
            }
            Ok(Written::Done)
        }
    }
}

const READ_REFRESH: &str = "SELECT r.family_id, r.used_at IS NOT NULL, \
     r.revoked_at IS NOT NULL, r.expires_at, s.id, s.client_id, s.sub, s.org, s.roles, s.amr, \
     s.audience, s.claims, s.scope, s.acr, s.created_at, s.expires_at, s.revoked_at, s.dpop_jkt, \
     s.holder FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id \
     WHERE r.hash = ?1 AND r.client_id = ?2";

fn read_refresh(
    conn: &Connection,
    hash: &[u8],
    client_id: &str,
) -> Result<Option<RefreshRow>, StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
    let mut statement = conn
        .prepare_cached(READ_REFRESH)
        .map_err(|e| sqlite_error(&e))?;
    let mut rows = statement
        .query(params![hash, client_id])
        .map_err(|e| sqlite_error(&e))?;
    let Some(r) = rows.next().map_err(|e| sqlite_error(&e))? else {
        return Ok(None);
    };
    let text = |i: usize| r.get::<_, String>(i).map_err(|e| sqlite_error(&e));
    let session = super::SessionRecord {
        id: text(4)?,
        client_id: text(5)?,
        sub: text(6)?,
        org: text(7)?,
        roles: serde_json::from_str(&text(8)?).map_err(corrupt)?,
        amr: serde_json::from_str(&text(9)?).map_err(corrupt)?,
        audience: text(10)?,
        claims: serde_json::from_str(&text(11)?).map_err(corrupt)?,
        scope: text(12)?.split_whitespace().map(str::to_owned).collect(),
        acr: r.get(13).map_err(|e| sqlite_error(&e))?,
        created_at: r.get(14).map_err(|e| sqlite_error(&e))?,
        expires_at: r.get(15).map_err(|e| sqlite_error(&e))?,
        revoked_at: r.get(16).map_err(|e| sqlite_error(&e))?,
        dpop_jkt: r.get(17).map_err(|e| sqlite_error(&e))?,
        holder: r.get(18).map_err(|e| sqlite_error(&e))?,
    };
    Ok(Some(RefreshRow {
        family_id: text(0)?,
        used: r.get(1).map_err(|e| sqlite_error(&e))?,
        revoked: r.get(2).map_err(|e| sqlite_error(&e))?,
        expires_at: r.get(3).map_err(|e| sqlite_error(&e))?,
        session,
    }))
}

fn insert_refresh(conn: &Connection, r: &RefreshRecord) -> Result<usize, rusqlite::Error> {
    conn.prepare_cached(INSERT_REFRESH)?.execute(params![
        r.hash,
        r.family_id,
        r.session_id,
        r.client_id,
        r.created_at,
        r.expires_at,
    ])
}

/// The audit chain's head, read inside the batch's transaction.
fn read_head(conn: &Connection) -> Result<AuditHead, BatchFailed> {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "SELECT {} FROM audit_head WHERE id = 1",
            crate::audit::HEAD_COLUMNS
        )
    });
    let head = conn
        .prepare_cached(sql)?
        .query_row([], |r| {
            Ok(AuditHead {
                seq: r.get(0)?,
                hash: r.get(1)?,
                pruned_through: r.get(2)?,
                pruned_hash: r.get(3)?,
                mac: r.get(4)?,
            })
        })
        .map_err(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => {
                StoreError::Corrupt("the audit_head row is missing".into())
            }
            e => sqlite_error(&e),
        })?;
    Ok(head)
}
