//! Side-by-side JWT sign/verify: tessera-jose, the `jsonwebtoken` crate
//! (aws-lc-rs backend) and the raw aws-lc-rs primitive, in one run.
//!
//! `cargo bench -p tessera-jose`, then `scripts/bench-report` turns
//! criterion's estimates into the table in `crates/jose/BENCHMARKS.md`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::large_enum_variant
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{self, KeyPair as _};
use aws_lc_rs::{hmac, rand, rsa};
use criterion::{criterion_group, criterion_main, Criterion};
use serde::{Deserialize, Serialize};
use tessera_jose::jwa::JwsAlgorithm;
use tessera_jose::jwk::{Jwk, KeyFormat};
use tessera_jose::jws::{JwsHeader, Signer, Verifier};
use tessera_jose::jwt::{self, Claims, FixedClock, Validation};

/// The token body the service issues: sub, aud, iss, exp, iat, org, roles[2], amr[1].
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Body {
    sub: String,
    aud: String,
    iss: String,
    exp: i64,
    iat: i64,
    org: String,
    roles: Vec<String>,
    amr: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Custom {
    org: String,
    roles: Vec<String>,
    amr: Vec<String>,
}

const NOW: i64 = 1_800_000_000;
const ISS: &str = "https://auth.tessera.example";
const AUD: &str = "orders-api";

fn body() -> Body {
    Body {
        sub: "user-4a7f9c2e".into(),
        aud: AUD.into(),
        iss: ISS.into(),
        exp: NOW + 900,
        iat: NOW,
        org: "org-acme".into(),
        roles: vec!["admin".into(), "billing".into()],
        amr: vec!["pwd".into()],
    }
}

fn tessera_claims() -> Claims<Custom> {
    let b = body();
    Claims::new(Custom {
        org: b.org,
        roles: b.roles,
        amr: b.amr,
    })
    .subject(&b.sub)
    .audience(&b.aud)
    .issuer(&b.iss)
    .expires_at(b.exp)
    .issued_at(b.iat)
}

/// The raw primitive, prepared once, over the same signing input.
enum Raw {
    Hmac(hmac::Key),
    Rsa(
        rsa::KeyPair,
        &'static signature::RsaSignatureEncoding,
        signature::ParsedPublicKey,
    ),
    Ecdsa(signature::EcdsaKeyPair, signature::ParsedPublicKey),
    Ed25519(signature::Ed25519KeyPair, signature::ParsedPublicKey),
}

impl Raw {
    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match self {
            Raw::Hmac(k) => hmac::sign(k, msg).as_ref().to_vec(),
            Raw::Rsa(kp, enc, _) => {
                let mut sig = vec![0; kp.public_modulus_len()];
                kp.sign(*enc, &rand::SystemRandom::new(), msg, &mut sig)
                    .unwrap();
                sig
            }
            Raw::Ecdsa(kp, _) => kp
                .sign(&rand::SystemRandom::new(), msg)
                .unwrap()
                .as_ref()
                .to_vec(),
            Raw::Ed25519(kp, _) => kp.sign(msg).as_ref().to_vec(),
        }
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match self {
            Raw::Hmac(k) => hmac::verify(k, msg, sig).is_ok(),
            Raw::Rsa(_, _, p) | Raw::Ecdsa(_, p) | Raw::Ed25519(_, p) => {
                p.verify_sig(msg, sig).is_ok()
            }
        }
    }
}

struct Case {
    alg: JwsAlgorithm,
    signer: Signer,
    verifier: Verifier,
    jwt_header: jsonwebtoken::Header,
    jwt_enc: jsonwebtoken::EncodingKey,
    jwt_dec: jsonwebtoken::DecodingKey,
    raw: Raw,
}

fn case(alg: JwsAlgorithm) -> Case {
    let key = Jwk::generate_for(alg).unwrap();
    let signer = Signer::new(&key, alg).unwrap();
    let verify_key = if key.is_symmetric() {
        key.clone()
    } else {
        key.to_public().unwrap()
    };
    let verifier = Verifier::builder()
        .key(&verify_key, &[alg])
        .unwrap()
        .build()
        .unwrap();
    let (jwt_alg, jwt_enc, jwt_dec, raw) = if key.is_symmetric() {
        let secret: serde_json::Value = serde_json::from_str(&key.to_private_json()).unwrap();
        let secret = tessera_jose::b64::decode(secret["k"].as_str().unwrap(), "k").unwrap();
        (
            jsonwebtoken::Algorithm::HS256,
            jsonwebtoken::EncodingKey::from_secret(&secret),
            jsonwebtoken::DecodingKey::from_secret(&secret),
            Raw::Hmac(hmac::Key::new(hmac::HMAC_SHA256, &secret)),
        )
    } else {
        let pkcs8 = key.to_der(KeyFormat::Pkcs8).unwrap();
        let private_pem = key.to_pem(KeyFormat::Pkcs8).unwrap();
        let public_pem = key.to_pem(KeyFormat::Spki).unwrap();
        match alg {
            JwsAlgorithm::RS256 | JwsAlgorithm::PS256 => {
                let kp = rsa::KeyPair::from_pkcs8(&pkcs8).unwrap();
                let params = if alg == JwsAlgorithm::RS256 {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                } else {
                    &signature::RSA_PSS_2048_8192_SHA256
                };
                let enc: &'static signature::RsaSignatureEncoding = if alg == JwsAlgorithm::RS256 {
                    &signature::RSA_PKCS1_SHA256
                } else {
                    &signature::RSA_PSS_SHA256
                };
                let parsed =
                    signature::ParsedPublicKey::new(params, kp.public_key().as_ref()).unwrap();
                (
                    if alg == JwsAlgorithm::RS256 {
                        jsonwebtoken::Algorithm::RS256
                    } else {
                        jsonwebtoken::Algorithm::PS256
                    },
                    jsonwebtoken::EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(),
                    jsonwebtoken::DecodingKey::from_rsa_pem(public_pem.as_bytes()).unwrap(),
                    Raw::Rsa(kp, enc, parsed),
                )
            }
            JwsAlgorithm::ES256 => {
                let kp = signature::EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &pkcs8,
                )
                .unwrap();
                let parsed = signature::ParsedPublicKey::new(
                    &signature::ECDSA_P256_SHA256_FIXED,
                    kp.public_key().as_ref(),
                )
                .unwrap();
                (
                    jsonwebtoken::Algorithm::ES256,
                    jsonwebtoken::EncodingKey::from_ec_pem(private_pem.as_bytes()).unwrap(),
                    jsonwebtoken::DecodingKey::from_ec_pem(public_pem.as_bytes()).unwrap(),
                    Raw::Ecdsa(kp, parsed),
                )
            }
            JwsAlgorithm::EdDSA => {
                let kp = signature::Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap();
                let parsed =
                    signature::ParsedPublicKey::new(&signature::ED25519, kp.public_key().as_ref())
                        .unwrap();
                (
                    jsonwebtoken::Algorithm::EdDSA,
                    jsonwebtoken::EncodingKey::from_ed_pem(private_pem.as_bytes()).unwrap(),
                    jsonwebtoken::DecodingKey::from_ed_pem(public_pem.as_bytes()).unwrap(),
                    Raw::Ed25519(kp, parsed),
                )
            }
            other => unreachable!("{other}"),
        }
    };
    let mut jwt_header = jsonwebtoken::Header::new(jwt_alg);
    jwt_header.kid = key.kid().map(str::to_owned);
    Case {
        alg,
        signer,
        verifier,
        jwt_header,
        jwt_enc,
        jwt_dec,
        raw,
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

fn bench(c: &mut Criterion) {
    let header = JwsHeader::new().typ("JWT");
    for alg in [
        JwsAlgorithm::HS256,
        JwsAlgorithm::RS256,
        JwsAlgorithm::PS256,
        JwsAlgorithm::ES256,
        JwsAlgorithm::EdDSA,
    ] {
        let k = case(alg);
        let claims = tessera_claims();
        let token = jwt::sign(&k.signer, &header, &claims).unwrap();
        let (signing_input, sig_b64) = token.rsplit_once('.').unwrap();
        let sig = tessera_jose::b64::decode(sig_b64, "sig").unwrap();
        assert!(k.raw.verify(signing_input.as_bytes(), &sig));

        let validation = Validation::new().issuer(ISS).audience(AUD);
        let clock = FixedClock(NOW + 10);
        let mut jwt_validation = jsonwebtoken::Validation::new(k.jwt_header.alg);
        jwt_validation.set_issuer(&[ISS]);
        jwt_validation.set_audience(&[AUD]);
        // jsonwebtoken reads the system clock; give its tokens a far-future exp.
        let mut far = body();
        far.exp = 4_000_000_000;
        let jwt_token = jsonwebtoken::encode(&k.jwt_header, &far, &k.jwt_enc).unwrap();
        jsonwebtoken::decode::<Body>(&jwt_token, &k.jwt_dec, &jwt_validation).unwrap();
        jwt::verify::<Custom>(&token, &k.verifier, &validation, &clock).unwrap();

        let mut g = c.benchmark_group(format!("sign/{}", k.alg));
        g.bench_function("tessera", |b| {
            b.iter(|| jwt::sign(&k.signer, &header, black_box(&claims)).unwrap())
        });
        let jwt_body = body();
        g.bench_function("jsonwebtoken", |b| {
            b.iter(|| {
                jsonwebtoken::encode(&k.jwt_header, black_box(&jwt_body), &k.jwt_enc).unwrap()
            })
        });
        g.bench_function("aws-lc-raw", |b| {
            b.iter(|| k.raw.sign(black_box(signing_input.as_bytes())))
        });
        g.finish();

        // The same primitive with every core signing at once: what the
        // machine, not one core, can do (cores that share a host slow each
        // other down). One iteration is one signature; bench/bench.py reads
        // this as the signing bound of the service's write rows.
        if matches!(
            alg,
            JwsAlgorithm::RS256 | JwsAlgorithm::ES256 | JwsAlgorithm::EdDSA
        ) {
            let mut g = c.benchmark_group(format!("sign_parallel/{}", k.alg));
            g.bench_function("aws-lc-raw", |b| {
                b.iter_custom(|iters| {
                    on_every_core(iters, || {
                        black_box(k.raw.sign(black_box(signing_input.as_bytes())));
                    })
                })
            });
            g.finish();
        }

        let mut g = c.benchmark_group(format!("verify/{}", k.alg));
        g.bench_function("tessera", |b| {
            b.iter(|| {
                jwt::verify::<Custom>(black_box(&token), &k.verifier, &validation, &clock).unwrap()
            })
        });
        g.bench_function("tessera-jws", |b| {
            b.iter(|| k.verifier.verify_compact(black_box(&token)).unwrap())
        });
        g.bench_function("jsonwebtoken", |b| {
            b.iter(|| {
                jsonwebtoken::decode::<Body>(black_box(&jwt_token), &k.jwt_dec, &jwt_validation)
                    .unwrap()
            })
        });
        g.bench_function("aws-lc-raw", |b| {
            b.iter(|| {
                assert!(k
                    .raw
                    .verify(black_box(signing_input.as_bytes()), black_box(&sig)))
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = bench
}
criterion_main!(benches);
