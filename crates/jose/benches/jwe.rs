//! Side-by-side JWE encrypt/decrypt: tessera-jose and `josekit` (OpenSSL),
//! in one run, on the same keys and plaintext.
//!
//! `cargo bench -p tessera-jose --bench jwe`, then `scripts/bench-report`
//! turns criterion's estimates into the table in `crates/jose/BENCHMARKS.md`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use serde::{Deserialize, Serialize};
use tessera_jose::jwa::{JweAlgorithm, JweEncryption, JwsAlgorithm};
use tessera_jose::jwe::{Decrypter, Encrypter, JweHeader};
use tessera_jose::jwk::Jwk;
use tessera_jose::jws::{JwsHeader, Signer, Verifier};
use tessera_jose::jwt::{self, Claims, FixedClock, Validation};

const NOW: i64 = 1_800_000_000;
const ISS: &str = "https://auth.tessera.example";
const AUD: &str = "orders-api";

/// The claims the service issues (as in the JWS bench).
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
    .audience(AUD)
    .issuer(ISS)
    .expires_at(NOW + 900)
    .issued_at(NOW)
}

fn plaintext() -> Vec<u8> {
    serde_json::to_vec(&claims()).unwrap()
}

/// josekit's view of one of our keys.
fn jk(key: &Jwk, private: bool) -> josekit::jwk::Jwk {
    let json = if private {
        key.to_private_json().to_string()
    } else {
        key.to_public().unwrap().to_json()
    };
    josekit::jwk::Jwk::from_bytes(json.as_bytes()).unwrap()
}

struct Case {
    name: String,
    tessera_enc: Encrypter,
    tessera_dec: Decrypter,
    jk_enc: Box<dyn josekit::jwe::JweEncrypter>,
    jk_dec: Box<dyn josekit::jwe::JweDecrypter>,
    enc: JweEncryption,
}

fn case(alg: JweAlgorithm, enc: JweEncryption) -> Case {
    let key = Jwk::generate_for_encryption(alg, enc).unwrap();
    let symmetric = key.is_symmetric();
    let sender = if symmetric {
        key.clone()
    } else {
        key.to_public().unwrap()
    };
    let (jk_enc, jk_dec): (
        Box<dyn josekit::jwe::JweEncrypter>,
        Box<dyn josekit::jwe::JweDecrypter>,
    ) = match alg {
        JweAlgorithm::RSA_OAEP_256 => (
            Box::new(
                josekit::jwe::RSA_OAEP_256
                    .encrypter_from_jwk(&jk(&key, false))
                    .unwrap(),
            ),
            Box::new(
                josekit::jwe::RSA_OAEP_256
                    .decrypter_from_jwk(&jk(&key, true))
                    .unwrap(),
            ),
        ),
        JweAlgorithm::ECDH_ES_A256KW => (
            Box::new(
                josekit::jwe::ECDH_ES_A256KW
                    .encrypter_from_jwk(&jk(&key, false))
                    .unwrap(),
            ),
            Box::new(
                josekit::jwe::ECDH_ES_A256KW
                    .decrypter_from_jwk(&jk(&key, true))
                    .unwrap(),
            ),
        ),
        JweAlgorithm::Dir => (
            Box::new(
                josekit::jwe::Dir
                    .encrypter_from_jwk(&jk(&key, true))
                    .unwrap(),
            ),
            Box::new(
                josekit::jwe::Dir
                    .decrypter_from_jwk(&jk(&key, true))
                    .unwrap(),
            ),
        ),
        JweAlgorithm::A256KW => (
            Box::new(
                josekit::jwe::A256KW
                    .encrypter_from_jwk(&jk(&key, true))
                    .unwrap(),
            ),
            Box::new(
                josekit::jwe::A256KW
                    .decrypter_from_jwk(&jk(&key, true))
                    .unwrap(),
            ),
        ),
        other => unreachable!("{other}"),
    };
    Case {
        name: format!("{}+{}", alg.name(), enc.name()),
        tessera_enc: Encrypter::new(&sender, alg, enc).unwrap(),
        tessera_dec: Decrypter::builder()
            .key(&key, &[(alg, enc)])
            .unwrap()
            .build()
            .unwrap(),
        jk_enc,
        jk_dec,
        enc,
    }
}

fn bench_plain(c: &mut Criterion) {
    let pt = plaintext();
    for (alg, enc) in [
        (JweAlgorithm::RSA_OAEP_256, JweEncryption::A256GCM),
        (JweAlgorithm::ECDH_ES_A256KW, JweEncryption::A256GCM),
        (JweAlgorithm::Dir, JweEncryption::A256GCM),
        (JweAlgorithm::A256KW, JweEncryption::A256CBC_HS512),
    ] {
        let k = case(alg, enc);
        let header = JweHeader::new();
        let mut jk_header = josekit::jwe::JweHeader::new();
        jk_header.set_content_encryption(k.enc.name());

        // Each side opens the other's tokens: the comparison is like for like.
        let ours = k.tessera_enc.encrypt_compact(&header, &pt).unwrap();
        let theirs = josekit::jwe::serialize_compact(&pt, &jk_header, &*k.jk_enc).unwrap();
        assert_eq!(
            k.tessera_dec.decrypt_compact(&theirs).unwrap().plaintext(),
            &pt[..]
        );
        assert_eq!(
            josekit::jwe::deserialize_compact(&ours, &*k.jk_dec)
                .unwrap()
                .0,
            pt
        );

        let mut g = c.benchmark_group(format!("jwe-encrypt/{}", k.name));
        g.bench_function("tessera", |b| {
            b.iter(|| {
                k.tessera_enc
                    .encrypt_compact(&header, black_box(&pt))
                    .unwrap()
            })
        });
        g.bench_function("josekit", |b| {
            b.iter(|| {
                josekit::jwe::serialize_compact(black_box(&pt), &jk_header, &*k.jk_enc).unwrap()
            })
        });
        g.finish();

        let mut g = c.benchmark_group(format!("jwe-decrypt/{}", k.name));
        g.bench_function("tessera", |b| {
            b.iter(|| k.tessera_dec.decrypt_compact(black_box(&ours)).unwrap())
        });
        g.bench_function("josekit", |b| {
            b.iter(|| josekit::jwe::deserialize_compact(black_box(&theirs), &*k.jk_dec).unwrap())
        });
        g.finish();
    }
}

/// Nested JWT: RS256 inside RSA-OAEP-256 + A256GCM. tessera's decrypt side
/// also validates the claims (iss, aud, exp, typed claims); josekit's runs
/// its payload validator for iss, aud and exp too.
fn bench_nested(c: &mut Criterion) {
    let (alg, enc) = (JweAlgorithm::RSA_OAEP_256, JweEncryption::A256GCM);
    let k = case(alg, enc);
    let signing = Jwk::generate_for(JwsAlgorithm::RS256).unwrap();
    let signer = Signer::new(&signing, JwsAlgorithm::RS256).unwrap();
    let verifier = Verifier::builder()
        .key(&signing.to_public().unwrap(), &[JwsAlgorithm::RS256])
        .unwrap()
        .build()
        .unwrap();
    let jk_signer = josekit::jws::RS256
        .signer_from_jwk(&jk(&signing, true))
        .unwrap();
    let jk_verifier = josekit::jws::RS256
        .verifier_from_jwk(&jk(&signing, false))
        .unwrap();
    let claims = claims();
    let validation = Validation::new().issuer(ISS).audience(AUD);
    let clock = FixedClock(NOW + 10);
    let jws_header = JwsHeader::new();
    let jwe_header = JweHeader::new();

    let jk_payload = josekit::jwt::JwtPayload::from_map(
        serde_json::to_value(&claims)
            .unwrap()
            .as_object()
            .unwrap()
            .clone(),
    )
    .unwrap();
    let mut jk_jws_header = josekit::jws::JwsHeader::new();
    jk_jws_header.set_token_type("JWT");
    let mut jk_jwe_header = josekit::jwe::JweHeader::new();
    jk_jwe_header.set_content_encryption(enc.name());
    jk_jwe_header.set_content_type("JWT");
    let jk_seal = || {
        let inner =
            josekit::jwt::encode_with_signer(&jk_payload, &jk_jws_header, &jk_signer).unwrap();
        josekit::jwe::serialize_compact(inner.as_bytes(), &jk_jwe_header, &*k.jk_enc).unwrap()
    };
    let mut jk_validator = josekit::jwt::JwtPayloadValidator::new();
    jk_validator.set_issuer(ISS);
    jk_validator.set_audience(AUD);
    let base = std::time::UNIX_EPOCH + Duration::from_secs((NOW + 10) as u64);
    jk_validator.set_base_time(base);
    jk_validator.set_max_issued_time(base); // its default is the real clock
    let jk_open = |token: &str| {
        let (inner, _) = josekit::jwe::deserialize_compact(token, &*k.jk_dec).unwrap();
        let (payload, _) = josekit::jwt::decode_with_verifier(&inner, &jk_verifier).unwrap();
        jk_validator.validate(&payload).unwrap();
        payload
    };
    let open = |token: &str| {
        jwt::decrypt_and_verify::<Custom>(token, &k.tessera_dec, &verifier, &validation, &clock)
            .unwrap()
    };
    let seal = || {
        jwt::sign_and_encrypt(&signer, &jws_header, &claims, &k.tessera_enc, &jwe_header).unwrap()
    };
    let ours = seal();
    let theirs = jk_seal();
    open(&theirs);
    jk_open(&ours);

    let name = "RS256-in-RSA-OAEP-256+A256GCM";
    let mut g = c.benchmark_group(format!("jwe-encrypt/{name}"));
    g.bench_function("tessera", |b| b.iter(seal));
    g.bench_function("josekit", |b| b.iter(jk_seal));
    g.finish();
    let mut g = c.benchmark_group(format!("jwe-decrypt/{name}"));
    g.bench_function("tessera", |b| b.iter(|| open(black_box(&ours))));
    g.bench_function("josekit", |b| b.iter(|| jk_open(black_box(&theirs))));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = bench_plain, bench_nested
}
criterion_main!(benches);
