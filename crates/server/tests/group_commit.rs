//! Group commit (issue 28), on SQLite and PostgreSQL: writes queued while
//! the database is busy share one transaction, each is answered with its
//! own outcome, and one that fails (its client deleted, its token already
//! used) fails alone — its neighbours in the batch are written, no refresh
//! family forks, and the audit trail still verifies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;
use tessera_server::audit::{verify_store, AuditKeys};
use tessera_server::crypto::MasterKey;
use tessera_server::store::{
    ClientRecord, NewRefresh, RefreshOutcome, Registration, SealedRecord, SessionRecord, SqlStore,
    Store, StoreError,
};

const NOW: i64 = 1_800_000_000;
/// Writes queued behind the lock: more than one batch's worth would need.
const SESSIONS: usize = 24;

fn keys() -> AuditKeys {
    AuditKeys::from_master(&MasterKey::from_bytes(&[7; 32]).unwrap()).unwrap()
}

fn client(id: &str) -> ClientRecord {
    ClientRecord {
        id: id.into(),
        name: "backend".into(),
        secret_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        grants: vec!["sessions".into()],
        created_at: NOW,
        jwks: None,
        registration: Registration {
            audiences: Some(vec!["api".into()]),
            scopes: Vec::new(),
            may_act: Vec::new(),
            introspect: Vec::new(),
            dpop_required: false,
        },
        legacy: false,
        previous_secret: None,
        public: false,
    }
}

fn session(i: usize, client: &str) -> SessionRecord {
    SessionRecord {
        id: format!("ses_{i:04}"),
        client_id: client.into(),
        sub: format!("user-{i}"),
        org: "acme".into(),
        roles: vec!["admin".into()],
        amr: vec!["pwd".into()],
        audience: "api".into(),
        claims: serde_json::Map::new(),
        scope: Vec::new(),
        acr: None,
        created_at: NOW,
        expires_at: NOW + 3600,
        revoked_at: None,
        dpop_jkt: None,
        holder: None,
    }
}

/// The refresh token numbered `n` (its hash: `n` in the first two bytes).
fn token(n: usize) -> NewRefresh {
    let mut hash = vec![0xa5; 32];
    hash[0] = (n >> 8) as u8;
    hash[1] = n as u8;
    NewRefresh {
        hash,
        created_at: NOW,
        expires_at: NOW + 600,
    }
}

/// Something that keeps the store's writes waiting until dropped (SQLite:
/// another connection's write transaction; PostgreSQL: the audit head's row
/// lock, which every batch with an event takes last).
enum Lock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

async fn hold(url: &str) -> Lock {
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut c)
            .await
            .unwrap();
        Lock::Sqlite(c)
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query("BEGIN").execute(&mut c).await.unwrap();
        sqlx::query("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE")
            .execute(&mut c)
            .await
            .unwrap();
        Lock::Postgres(c)
    }
}

async fn release(lock: Lock) {
    match lock {
        Lock::Sqlite(mut c) => {
            sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
            c.close().await.unwrap();
        }
        Lock::Postgres(mut c) => {
            sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
            c.close().await.unwrap();
        }
    }
}

/// Live (unused, unrevoked) tokens per family: never more than one.
async fn live_tokens(url: &str) -> Vec<(String, i64)> {
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT family_id, count(*) FROM refresh_tokens \
         WHERE used_at IS NULL AND revoked_at IS NULL GROUP BY family_id ORDER BY family_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows
}

async fn suite(url: &str) {
    sqlx::any::install_default_drivers();
    let store = Arc::new(
        SqlStore::open_url(url)
            .await
            .unwrap()
            .with_audit_keys(keys()),
    );
    store.create_client(&client("cli_a")).await.unwrap();
    store.create_client(&client("cli_b")).await.unwrap();
    let (commits0, writes0) = store.group_commits();

    // Sessions queued while the database is busy: two of them name a client
    // that does not exist.
    let lock = hold(url).await;
    let mut tasks = Vec::new();
    for i in 0..SESSIONS {
        let store = store.clone();
        let owner = if i % 12 == 5 { "cli_gone" } else { "cli_a" };
        tasks.push(tokio::spawn(async move {
            let s = session(i, owner);
            let r = token(i).record(&s.id, &s.id, owner);
            store.create_session(&s, &r).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    release(lock).await;
    let mut created = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match (i % 12 == 5, t.await.unwrap()) {
            (false, Ok(())) => created.push(i),
            (true, Err(StoreError::ClientGone)) => {}
            (gone, other) => panic!("session {i} (client gone: {gone}): {other:?}"),
        }
    }
    assert_eq!(created.len(), SESSIONS - 2);
    for i in &created {
        assert!(store
            .session(&format!("ses_{i:04}"))
            .await
            .unwrap()
            .is_some());
    }
    let (commits, writes) = store.group_commits();
    assert_eq!(writes - writes0, (SESSIONS - 2) as u64, "each session once");
    // At most the one write taken before the lock was seen, then the rest
    // together (PostgreSQL's first batch may also hold a few).
    assert!(
        commits - commits0 <= 3,
        "{} commits for {} sessions: fsyncs not shared",
        commits - commits0,
        SESSIONS - 2
    );

    // A caller that goes away while its write waits writes nothing (as
    // when each request ran its own transaction): a session queued behind a
    // batch held up by the lock, then dropped.
    let lock = hold(url).await;
    let held = {
        let store = store.clone();
        tokio::spawn(async move {
            let s = session(900, "cli_a");
            store
                .create_session(&s, &token(900).record(&s.id, &s.id, "cli_a"))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dropped = {
        let store = store.clone();
        tokio::spawn(async move {
            let s = session(901, "cli_a");
            store
                .create_session(&s, &token(901).record(&s.id, &s.id, "cli_a"))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    dropped.abort();
    tokio::time::sleep(Duration::from_millis(50)).await;
    release(lock).await;
    held.await.unwrap().unwrap();
    assert!(store.session("ses_0900").await.unwrap().is_some());
    assert!(
        store.session("ses_0901").await.unwrap().is_none(),
        "a dropped caller's session was written"
    );

    // Rotations queued the same way: every family's token, the first
    // family's token twice more (only one presentation can win: the
    // family is then revoked as reused), and another client presenting the
    // second family's token (unknown to it).
    let lock = hold(url).await;
    let mut tasks = Vec::new();
    let presented: Vec<(usize, &str)> = created
        .iter()
        .map(|i| (*i, "cli_a"))
        .chain([
            (created[0], "cli_a"),
            (created[0], "cli_a"),
            (created[1], "cli_b"),
        ])
        .collect();
    for (n, (i, who)) in presented.iter().enumerate() {
        let store = store.clone();
        let (i, who) = (*i, who.to_string());
        tasks.push(tokio::spawn(async move {
            let next = token(1000 + n);
            store
                .rotate_refresh(&token(i).hash, &who, &next, &|_| true, NOW + 1)
                .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    release(lock).await;
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap().unwrap());
    }
    let first = created[0];
    let of_first: Vec<&RefreshOutcome> = presented
        .iter()
        .zip(&outcomes)
        .filter(|((i, _), _)| *i == first)
        .map(|(_, o)| o)
        .collect();
    assert_eq!(
        of_first
            .iter()
            .filter(|o| matches!(o, RefreshOutcome::Rotated(_)))
            .count(),
        1,
        "one presentation of a token wins: {of_first:?}"
    );
    assert_eq!(
        of_first
            .iter()
            .filter(|o| matches!(o, RefreshOutcome::Reused { .. }))
            .count(),
        2,
        "{of_first:?}"
    );
    for ((i, who), o) in presented.iter().zip(&outcomes) {
        if *i == first {
            continue;
        }
        match (*who, o) {
            ("cli_a", RefreshOutcome::Rotated(s)) => assert_eq!(s.id, format!("ses_{i:04}")),
            ("cli_b", RefreshOutcome::Unknown) => {}
            other => panic!("family {i}: {other:?}"),
        }
    }
    // No family forked; the reused one has no live token left.
    let live = live_tokens(url).await;
    assert!(live.iter().all(|(_, n)| *n == 1), "{live:?}");
    // Every family but the reused one, and the session made beside the
    // dropped caller's.
    assert_eq!(live.len(), created.len() - 1 + 1, "{live:?}");
    assert!(!live.iter().any(|(f, _)| *f == format!("ses_{first:04}")));

    // Sealed tokens with their events, batched too.
    let lock = hold(url).await;
    let mut tasks = Vec::new();
    for n in 0..8u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let record = SealedRecord {
                hash: vec![n; 32],
                jti: format!("jti-{n}"),
                kind: "step_up".into(),
                format: "jwe".into(),
                client_id: "cli_a".into(),
                session_id: None,
                session_ref: None,
                sub: "user-1".into(),
                audience: "api".into(),
                issued_at: NOW,
                expires_at: NOW + 300,
                revoked_at: None,
                kid: Some("k1".into()),
                jkt: None,
            };
            let event = tessera_server::audit::Event::success(
                "step_up.issued",
                "ses_x",
                serde_json::json!({"client_id": "cli_a"}),
            );
            store.record_sealed(&record, NOW, Some(&event)).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    release(lock).await;
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    for n in 0..8u8 {
        assert!(store.sealed(&[n; 32]).await.unwrap().is_some());
    }

    // The trail: one event per session and sealed token, chained in order.
    let verified = verify_store(&*store, &keys()).await.unwrap();
    let events = store.audit_events(0, 10_000).await.unwrap();
    let count = |action: &str| events.iter().filter(|e| e.action == action).count();
    assert_eq!(count("session.created"), SESSIONS - 2 + 1);
    assert_eq!(count("step_up.issued"), 8);
    assert_eq!(count("refresh.reuse_detected"), 2);
    assert_eq!(verified.events, events.len() as i64);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_writes_share_a_transaction_and_fail_alone_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    suite(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_writes_share_a_transaction_and_fail_alone_on_postgres() {
    let url = common::fresh_pg_database().await;
    suite(&url).await;
}

/// A reuse revokes its session's tokens through the session's index
/// (migration 0013 dropped the family's own: a family never spans two
/// sessions), not by a scan of every refresh token; and a replay still
/// revokes every token of the family, and no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reuse_finds_its_family_through_the_session_index_on_sqlite() {
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let store = SqlStore::open_url(&url)
        .await
        .unwrap()
        .with_audit_keys(keys());
    store.create_client(&client("cli_a")).await.unwrap();
    for i in 0..3 {
        let s = session(i, "cli_a");
        store
            .create_session(&s, &token(i).record(&s.id, &s.id, "cli_a"))
            .await
            .unwrap();
    }
    let first = token(0).hash.clone();
    let rotated = store
        .rotate_refresh(&first, "cli_a", &token(100), &|_| true, NOW + 1)
        .await
        .unwrap();
    assert!(matches!(rotated, RefreshOutcome::Rotated(_)));
    let replayed = store
        .rotate_refresh(&first, "cli_a", &token(101), &|_| true, NOW + 2)
        .await
        .unwrap();
    assert!(matches!(replayed, RefreshOutcome::Reused { .. }));
    // The family (token 0 and its successor) is revoked; the others are not.
    assert_eq!(
        live_tokens(&url).await,
        vec![("ses_0001".to_owned(), 1), ("ses_0002".to_owned(), 1)]
    );

    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let indexes: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'refresh_tokens' \
         AND sql IS NOT NULL ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(indexes, vec![("refresh_by_session".to_owned(),)]);
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "EXPLAIN QUERY PLAN UPDATE refresh_tokens SET revoked_at = 1 \
         WHERE session_id = 'ses_0000' AND revoked_at IS NULL",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(
        plan.iter()
            .any(|(_, _, _, detail)| detail.contains("USING INDEX refresh_by_session")),
        "{plan:?}"
    );
}

/// PostgreSQL drops the family index too (`CONCURRENTLY`, outside a
/// transaction: the migration must still apply and be recorded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_family_index_is_gone_on_postgres() {
    sqlx::any::install_default_drivers();
    let url = common::fresh_pg_database().await;
    let store = SqlStore::open_url(&url).await.unwrap();
    drop(store);
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let indexes: Vec<(String,)> = sqlx::query_as(
        "SELECT indexname::text FROM pg_indexes WHERE tablename = 'refresh_tokens' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        indexes,
        vec![
            ("refresh_by_session".to_owned(),),
            ("refresh_tokens_pkey".to_owned(),)
        ]
    );
    let applied: (i64,) =
        sqlx::query_as("SELECT count(*) FROM _sqlx_migrations WHERE version = 13 AND success")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(applied.0, 1);
}

/// PostgreSQL going away under load: the batch whose connection broke
/// fails (tried once more on another connection, which the server
/// refuses), and the writes queued behind it, which get no connection,
/// fail together (transient errors: 503s) — never one write at a time,
/// each waiting again for a server that is not there while the batch holds
/// the node's turn to write. Nothing is half-written, and once the server
/// accepts connections again the next write succeeds. (Which errors end
/// every write alike is `pg_batch`'s unit test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_fail_together_when_postgres_goes_away() {
    sqlx::any::install_default_drivers();
    let url = common::fresh_pg_database().await;
    let (base, name) = url.rsplit_once('/').unwrap();
    let admin_url = format!("{base}/postgres");
    let store = Arc::new(
        SqlStore::open_url(&url)
            .await
            .unwrap()
            .with_audit_keys(keys()),
    );
    store.create_client(&client("cli_a")).await.unwrap();
    let first = session(0, "cli_a");
    store
        .create_session(&first, &token(0).record(&first.id, &first.id, "cli_a"))
        .await
        .unwrap();

    // One batch waits at the audit head's lock (its connection inside its
    // transaction); the rest queue for the node's turn to write.
    let lock = hold(&url).await;
    let mut tasks = Vec::new();
    for i in 1..=SESSIONS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let s = session(i, "cli_a");
            let r = token(i).record(&s.id, &s.id, "cli_a");
            store.create_session(&s, &r).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The database stops accepting connections and ends those it has (the
    // lock's among them).
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    sqlx::query(&format!(
        "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(name)
        .execute(&mut admin)
        .await
        .unwrap();
    drop(lock);
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Err(e @ (StoreError::Sqlite(_) | StoreError::Database(_))) => {
                assert!(!e.to_string().is_empty());
            }
            other => panic!("session {}: {other:?}", i + 1),
        }
    }
    assert_eq!(
        store.group_retried_alone(),
        0,
        "a batch whose server went away was split into one write at a time"
    );

    sqlx::query(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true"))
        .execute(&mut admin)
        .await
        .unwrap();
    let after = session(SESSIONS + 1, "cli_a");
    store
        .create_session(
            &after,
            &token(SESSIONS + 1).record(&after.id, &after.id, "cli_a"),
        )
        .await
        .unwrap();
    // None of the failed writes was made, the first and the last were.
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let ids: Vec<(String,)> = sqlx::query_as("SELECT id FROM sessions ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        ids,
        vec![(first.id.clone(),), (after.id.clone(),)],
        "a failed batch left writes behind"
    );
    let events: (i64,) =
        sqlx::query_as("SELECT count(*) FROM audit_events WHERE action = 'session.created'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(events.0, 2);
    // The trail verifies: the failed batches chained nothing.
    let verified = verify_store(&*store, &keys()).await.unwrap();
    assert_eq!(
        verified.events,
        store.audit_events(0, 10_000).await.unwrap().len() as i64
    );
    store.close().await;
}

/// Gathering (SQLite): a small batch waits for the writes requests
/// announced — up to the window, and no longer than they take; with no
/// announcement outstanding (none made, one given up, one whose request was
/// dropped), a batch of 32, or a window of zero, a write is committed at
/// once; reads are answered while a batch waits. The window is 20 s here,
/// so that a batch that waited it out shows as a test taking that long, and
/// as one commit where two were due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_waits_for_announced_writes_and_only_for_them() {
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let store = Arc::new(
        SqlStore::open_url(&url)
            .await
            .unwrap()
            .with_audit_keys(keys())
            .gather_writes_for(Duration::from_secs(20)),
    );
    store.create_client(&client("cli_a")).await.unwrap();
    let create = |i: usize| {
        let store = store.clone();
        async move {
            let s = session(i, "cli_a");
            store
                .create_session(&s, &token(i).record(&s.id, &s.id, "cli_a"))
                .await
        }
    };
    let quick = Duration::from_secs(10);
    let delta = |before: (u64, u64)| {
        let (c, w) = store.group_commits();
        (c - before.0, w - before.1)
    };

    // Nothing announced: a lone write commits at once.
    let before = store.group_commits();
    let started = std::time::Instant::now();
    create(0).await.unwrap();
    assert!(started.elapsed() < quick, "a lone write waited");
    assert_eq!(delta(before), (1, 1));

    // Two announced: the first written waits for the second, which comes
    // 1.8 s later; one commit for both, well within the window. (Each
    // announcement ends as its write is queued.)
    let before = store.group_commits();
    let started = std::time::Instant::now();
    let (first, second) = (store.write_ahead(), store.write_ahead());
    let early = tokio::spawn(first.until_queued(create(1)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !early.is_finished() && delta(before) == (0, 0),
        "the batch did not wait for the announced write"
    );
    // Meanwhile a read is answered (a refresh token's, on the writer's
    // connection): the rotation that follows joins the waiting batch.
    let (presented, next) = (token(0).hash, token(999));
    let rotated = store.rotate_refresh(&presented, "cli_a", &next, &|_| true, NOW + 1);
    let late = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        second.until_queued(create(2)).await
    };
    let (rotated, late) = tokio::join!(rotated, late);
    assert!(matches!(rotated.unwrap(), RefreshOutcome::Rotated(_)));
    late.unwrap();
    early.await.unwrap().unwrap();
    assert!(started.elapsed() < quick, "the batch waited out its window");
    assert_eq!(
        delta(before),
        (1, 3),
        "the announced writes and the rotation share a commit"
    );

    // An announced write given up on (its request failed) ends the wait.
    let before = store.group_commits();
    let started = std::time::Instant::now();
    let given_up = store.write_ahead();
    let waiting = tokio::spawn(create(3));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished());
    drop(given_up);
    waiting.await.unwrap().unwrap();
    assert!(
        started.elapsed() < quick,
        "a given-up announcement kept the batch waiting"
    );
    assert_eq!(delta(before), (1, 1));

    // A request dropped while its announcement is open (its client hung
    // up) ends it.
    let abandoned = tokio::spawn(
        store
            .write_ahead()
            .until_queued(std::future::pending::<()>()),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    abandoned.abort();
    assert!(abandoned.await.unwrap_err().is_cancelled());
    let before = store.group_commits();
    let started = std::time::Instant::now();
    create(4).await.unwrap();
    assert!(
        started.elapsed() < quick,
        "a dropped request's announcement kept the batch waiting"
    );
    assert_eq!(delta(before), (1, 1));

    // A batch of 32 does not wait, announcements or not.
    let before = store.group_commits();
    let started = std::time::Instant::now();
    let pending = store.write_ahead();
    let many: Vec<_> = (100..132).map(|i| tokio::spawn(create(i))).collect();
    for t in many {
        t.await.unwrap().unwrap();
    }
    assert!(started.elapsed() < quick, "a batch of 32 waited");
    let (commits, writes) = delta(before);
    assert_eq!(writes, 32);
    assert!(commits <= 2, "{commits} commits for 32 writes");

    // A window of zero: never waits.
    let store = Arc::try_unwrap(store)
        .ok()
        .unwrap()
        .gather_writes_for(Duration::ZERO);
    let before = store.group_commits();
    let started = std::time::Instant::now();
    let s = session(200, "cli_a");
    store
        .create_session(&s, &token(200).record(&s.id, &s.id, "cli_a"))
        .await
        .unwrap();
    assert!(started.elapsed() < quick, "a window of zero waited");
    let (c, w) = store.group_commits();
    assert_eq!((c - before.0, w - before.1), (1, 1));
    drop(pending);

    let verified = verify_store(&store, &keys()).await.unwrap();
    assert_eq!(verified.events, 1 + 38, "the client's, and one per session");
    store.close().await;
}
