//! What sealing costs: minting one access token for a `jws`, a `jwe` and a
//! `nested` resource, in one run, with the service's signing algorithms.
//! The `jws` row is the peer each sealed format is compared with.
//!
//! `cargo bench -p tessera-server --bench issuance`; results and ratios in
//! `crates/server/BENCHMARKS.md`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use tessera_jose::jwa::{EcCurve, JweAlgorithm, JweEncryption, JwsAlgorithm};
use tessera_jose::jwk::Jwk;
use tessera_jose::jws::{Signer, Verifier};
use tessera_server::config::Config;
use tessera_server::keys::Snapshot;
use tessera_server::sealing::{recipient, SealingKeys};
use tessera_server::store::SessionRecord;
use tessera_server::tokens;

const NOW: i64 = 1_800_000_000;
const API: &str = "https://api.example.com";
const RECORDS: &str = "https://records.example.com";
const PARTNER: &str = "https://partner.example.org";

fn config(dir: &std::path::Path) -> Config {
    let toml = dir.join("tessera.toml");
    std::fs::write(
        &toml,
        format!(
            r#"issuer = "https://auth.example.com"
[[resources]]
audience = "{API}"
claims = ["tenant_tier"]
[[resources]]
audience = "{RECORDS}"
format = "jwe"
encryption_key = "records.jwk"
claims = ["tenant_tier"]
[[resources]]
audience = "{PARTNER}"
format = "nested"
encryption_key = "partner.jwk"
alg = "ECDH-ES+A256KW"
claims = ["tenant_tier"]
release = ["sub", "org", "roles"]
"#
        ),
    )
    .unwrap();
    Config::load(Some(&toml), Vec::new(), Some("127.0.0.1:0")).unwrap()
}

fn snapshot(alg: JwsAlgorithm) -> Snapshot {
    let key = Jwk::generate_for(alg).unwrap().with_kid("bench-1");
    Snapshot {
        signer: Signer::new(&key, alg).unwrap(),
        kid: "bench-1".into(),
        published: vec!["bench-1".into()],
        jwks: String::new(),
        verifier: Verifier::builder()
            .key(&key, &[alg])
            .unwrap()
            .build()
            .unwrap(),
    }
}

fn session(audience: &str) -> SessionRecord {
    SessionRecord {
        id: "ses_bench".into(),
        client_id: "cli_bench".into(),
        sub: "user-1".into(),
        org: "org-acme".into(),
        roles: vec!["admin".into(), "billing".into()],
        amr: vec!["pwd".into()],
        audience: audience.into(),
        claims: json!({"tenant_tier": "gold"}).as_object().unwrap().clone(),
        scope: Vec::new(),
        acr: None,
        created_at: NOW,
        expires_at: NOW + 43_200,
        revoked_at: None,
        dpop_jkt: None,
        holder: None,
    }
}

fn issuance(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let sealing = SealingKeys::default();
    let records = Jwk::generate_rsa(2048).unwrap().with_kid("records-1");
    let partner = Jwk::generate_ec(EcCurve::P256)
        .unwrap()
        .with_kid("partner-1");
    let (enc, records_alg) = (JweEncryption::A256GCM, JweAlgorithm::RSA_OAEP_256);
    sealing.set(
        RECORDS,
        recipient(&records.to_public().unwrap().to_json(), records_alg, enc).unwrap(),
    );
    sealing.set(
        PARTNER,
        recipient(
            &partner.to_public().unwrap().to_json(),
            JweAlgorithm::ECDH_ES_A256KW,
            enc,
        )
        .unwrap(),
    );
    for alg in [
        JwsAlgorithm::RS256,
        JwsAlgorithm::ES256,
        JwsAlgorithm::EdDSA,
    ] {
        let keys = snapshot(alg);
        let mut group = c.benchmark_group(format!("issuance/{}", alg.name()));
        group
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        for (format, audience) in [("jws", API), ("jwe", RECORDS), ("nested", PARTNER)] {
            let s = session(audience);
            group.bench_function(format, |b| {
                b.iter(|| {
                    black_box(
                        tokens::access_token(&keys, &config, &sealing, black_box(&s), None, NOW)
                            .unwrap(),
                    )
                })
            });
        }
        group.finish();
        // RS256 again with every core issuing at once: the CPU bound of the
        // service's sealed-issuance rows (bench/bench.py reads it). One
        // iteration is one token.
        if alg == JwsAlgorithm::RS256 {
            let mut group = c.benchmark_group(format!("issuance_parallel/{}", alg.name()));
            group
                .warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_secs(3));
            for (format, audience) in [("jws", API), ("jwe", RECORDS), ("nested", PARTNER)] {
                let s = session(audience);
                group.bench_function(format, |b| {
                    b.iter_custom(|iters| {
                        on_every_core(iters, || {
                            black_box(
                                tokens::access_token(
                                    &keys,
                                    &config,
                                    &sealing,
                                    black_box(&s),
                                    None,
                                    NOW,
                                )
                                .unwrap(),
                            );
                        })
                    })
                });
            }
            group.finish();
        }
    }
}

/// `iters` calls of `f` on as many threads as the machine has cores, all at
/// once: the time they took. Each thread makes the same number of calls
/// (`iters` rounded up to a multiple of the threads, the time scaled back),
/// and the clock starts once every thread is ready.
fn on_every_core(iters: u64, f: impl Fn() + Sync) -> Duration {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let each = iters.div_ceil(threads).max(1);
    let ready = std::sync::Barrier::new(threads as usize + 1);
    let took = std::thread::scope(|s| {
        for _ in 0..threads {
            let (f, ready) = (&f, &ready);
            s.spawn(move || {
                ready.wait();
                for _ in 0..each {
                    f();
                }
            });
        }
        ready.wait();
        let started = Instant::now();
        // The scope joins every thread before it returns.
        started
    })
    .elapsed();
    took.mul_f64(iters as f64 / (each * threads) as f64)
}

criterion_group!(benches, issuance);
criterion_main!(benches);
