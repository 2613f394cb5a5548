//! Instruction-count A/B driver (issue 23): repeats one verify or decrypt
//! operation N times so `valgrind --tool=callgrind` can count its
//! instructions, deterministic where wall-clock benchmarks on a shared
//! machine are not. `ir_count OP N`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::hint::black_box;

use serde::{Deserialize, Serialize};
use tessera_jose::jwa::{JweAlgorithm, JweEncryption, JwsAlgorithm};
use tessera_jose::jwe::{Decrypter, Encrypter, JweHeader};
use tessera_jose::jwk::Jwk;
use tessera_jose::jws::{JwsHeader, Signer, Verifier};
use tessera_jose::jwt::{self, Claims, FixedClock, Validation};

const NOW: i64 = 1_800_000_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Custom {
    org: String,
    roles: Vec<String>,
    amr: Vec<String>,
}

fn claims() -> Claims<Custom> {
    Claims::new(Custom {
        org: "org-acme".into(),
        roles: vec!["admin".into(), "billing".into()],
        amr: vec!["pwd".into()],
    })
    .subject("user-4a7f9c2e")
    .audience("orders-api")
    .issuer("https://auth.tessera.example")
    .expires_at(NOW + 900)
    .issued_at(NOW)
}

/// The only code callgrind counts (`--toggle-collect=*measured*`).
#[inline(never)]
fn measured(n: usize, mut f: impl FnMut()) {
    for _ in 0..n {
        f();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let op = args[1].as_str();
    let n: usize = args[2].parse().unwrap();
    let validation = Validation::new()
        .issuer("https://auth.tessera.example")
        .audience("orders-api");
    let clock = FixedClock(NOW);
    if let Some(alg) = op.strip_prefix("verify-").or(op.strip_prefix("jws-")) {
        let alg: JwsAlgorithm = alg.parse().unwrap();
        let key = Jwk::generate_for(alg).unwrap();
        let token = jwt::sign(
            &Signer::new(&key, alg).unwrap(),
            &JwsHeader::new().typ("at+jwt"),
            &claims(),
        )
        .unwrap();
        let public = if key.is_symmetric() {
            key.clone()
        } else {
            key.to_public().unwrap()
        };
        let v = Verifier::builder()
            .key(&public, &[alg])
            .unwrap()
            .build()
            .unwrap();
        let full = op.starts_with("verify-");
        measured(n, || {
            if full {
                black_box(
                    jwt::verify::<Custom>(black_box(&token), &v, &validation, &clock).unwrap(),
                );
            } else {
                black_box(v.verify_compact(black_box(&token)).unwrap());
            }
        });
        return;
    }
    let (alg, enc) = match op {
        "decrypt-dir" => (JweAlgorithm::Dir, JweEncryption::A256GCM),
        "decrypt-a256kw" => (JweAlgorithm::A256KW, JweEncryption::A256CBC_HS512),
        "decrypt-ecdh" => (JweAlgorithm::ECDH_ES_A256KW, JweEncryption::A256GCM),
        "decrypt-oaep" | "decrypt-nested" => (JweAlgorithm::RSA_OAEP_256, JweEncryption::A256GCM),
        _ => panic!("unknown op {op}"),
    };
    let key = Jwk::generate_for_encryption(alg, enc).unwrap();
    let sender = if key.is_symmetric() {
        key.clone()
    } else {
        key.to_public().unwrap()
    };
    let e = Encrypter::new(&sender, alg, enc).unwrap();
    let d = Decrypter::builder()
        .key(&key, &[(alg, enc)])
        .unwrap()
        .build()
        .unwrap();
    if op == "decrypt-nested" {
        let signing = Jwk::generate_for(JwsAlgorithm::RS256).unwrap();
        let token = jwt::sign_and_encrypt(
            &Signer::new(&signing, JwsAlgorithm::RS256).unwrap(),
            &JwsHeader::new(),
            &claims(),
            &e,
            &JweHeader::new(),
        )
        .unwrap();
        let v = Verifier::builder()
            .key(&signing.to_public().unwrap(), &[JwsAlgorithm::RS256])
            .unwrap()
            .build()
            .unwrap();
        measured(n, || {
            black_box(
                jwt::decrypt_and_verify::<Custom>(black_box(&token), &d, &v, &validation, &clock)
                    .unwrap(),
            );
        });
        return;
    }
    let token = e
        .encrypt_compact(&JweHeader::new(), &serde_json::to_vec(&claims()).unwrap())
        .unwrap();
    measured(n, || {
        black_box(d.decrypt_compact(black_box(&token)).unwrap());
    });
}
