//! Client secrets under a burst: Argon2id checks (19 MiB each) run at most
//! one per core at a time, and a burst of calls with the same good secret
//! pays for one check per permit, not one per call. A test binary of its
//! own, so the process-wide counters it reads see nobody else's calls.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use tessera_server::clients::{authenticate, create, hashing_limit};
use tessera_server::metrics::SECRET_HASHES;
use tessera_server::store::SqlStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_queues_for_a_few_hashes_and_guesses_each_pay_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqlStore::open_file(&dir.path().join("t.db")).await.unwrap());
    let client = create(&*store, "burst", &["client_credentials".into()], None, 0)
        .await
        .unwrap();
    let id = client.record.id.clone();
    let secret = client.secret.to_string();

    let calls = 32;
    let before = SECRET_HASHES.get();
    let mut tasks = Vec::new();
    for _ in 0..calls {
        let (store, id, secret) = (store.clone(), id.clone(), secret.clone());
        tasks.push(tokio::spawn(async move {
            authenticate(&*store, &id, &secret).await.unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(
            t.await.unwrap().unwrap().id,
            id,
            "every call is authenticated"
        );
    }
    let hashed = SECRET_HASHES.get() - before;
    assert!(
        (1..=hashing_limit() as u64).contains(&hashed),
        "{calls} simultaneous calls computed {hashed} hashes; at most {} (one per permit)",
        hashing_limit()
    );

    // Guesses are never remembered: each one costs a hash, queued behind the permits.
    let before = SECRET_HASHES.get();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (store, id) = (store.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            authenticate(&*store, &id, &format!("guess-{i}"))
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().is_none(), "a wrong secret is refused");
    }
    assert_eq!(SECRET_HASHES.get() - before, 8);

    // The good secret is still remembered: no hash at all.
    let before = SECRET_HASHES.get();
    assert!(authenticate(&*store, &id, &secret).await.unwrap().is_some());
    assert_eq!(SECRET_HASHES.get() - before, 0);
}
