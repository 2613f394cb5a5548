//! Project Wycheproof JOSE vectors (C2SP/wycheproof, commit dac1dd47; see
//! `tests/vectors/README.md`), every JWS and JWK case, data-driven.
//!
//! A case is "valid" when its key (or key set) is accepted, a verifier is
//! built from it for every JWS algorithm the key can serve, and the JWS
//! verifies. Anything failing on the way makes it "invalid". Cases whose
//! expected result is corrected by the vectors' errata are listed with the
//! erratum that explains them.

use serde_json::Value;
use tessera_jose::jwa::JwsAlgorithm;
use tessera_jose::jwk::{Jwk, JwkSet};
use tessera_jose::jws::{SignaturePolicy, Verifier};
use tessera_jose::Error;

use crate::support::vector;

fn build_verifier(key: &Value) -> Result<Verifier, Error> {
    let set = if key.get("keys").is_some() {
        JwkSet::from_json(key.to_string().as_bytes())?
    } else {
        JwkSet::new(vec![Jwk::from_json(key.to_string().as_bytes())?])
    };
    let all: Vec<JwsAlgorithm> = JwsAlgorithm::all().collect();
    Verifier::builder().jwk_set(&set, &all)?.build()
}

fn accepts(verifier: &Result<Verifier, Error>, jws: &Value) -> bool {
    let Ok(v) = verifier else { return false };
    match jws {
        Value::String(s) => v.verify_compact(s).is_ok(),
        other => v
            .verify_json(&other.to_string(), SignaturePolicy::All)
            .is_ok(),
    }
}

struct Counts {
    total: usize,
    valid: usize,
    invalid: usize,
}

/// Runs every case of `file`; `corrections` maps a tcId to the expected
/// validity that an erratum establishes.
fn run(file: &str, corrections: &[(u64, bool)]) -> Counts {
    let doc = vector(file);
    let mut counts = Counts {
        total: 0,
        valid: 0,
        invalid: 0,
    };
    let mut failures = Vec::new();
    for group in doc["testGroups"].as_array().unwrap() {
        let key = group.get("public").unwrap_or(&group["private"]);
        let verifier = build_verifier(key);
        for case in group["tests"].as_array().unwrap() {
            let Some(jws) = case.get("jws") else { continue };
            let id = case["tcId"].as_u64().unwrap();
            let expected = corrections
                .iter()
                .find(|(c, _)| *c == id)
                .map(|(_, v)| *v)
                .unwrap_or(case["result"] == "valid");
            let got = accepts(&verifier, jws);
            if got != expected {
                failures.push(format!(
                    "tc{id} ({}): expected {}, got {}; key: {:?}",
                    case["comment"],
                    if expected { "valid" } else { "invalid" },
                    if got { "valid" } else { "invalid" },
                    verifier.as_ref().err()
                ));
            }
            counts.total += 1;
            if got {
                counts.valid += 1;
            } else {
                counts.invalid += 1;
            }
        }
    }
    assert!(failures.is_empty(), "{file}:\n{}", failures.join("\n"));
    eprintln!(
        "{file}: {} cases agree ({} valid, {} invalid)",
        counts.total, counts.valid, counts.invalid
    );
    counts
}

#[test]
fn wycheproof_json_web_signature() {
    let counts = run(
        "wycheproof/testvectors_v1/json_web_signature_test.json",
        &[
            // erratum WP-1: tc367 and tc370 are byte-identical to tc357 (a valid
            // MAC, no padding); the padded inputs their comments describe are
            // absent upstream. Expect valid. Padding is covered in b64 tests.
            (367, true),
            (370, true),
            // erratum WP-2: a '?' inserted into the header / payload segment is
            // not base64url and the MAC no longer matches. Expect invalid.
            (372, false),
            (373, false),
            // erratum WP-3: header PS384 against a key bound to "alg":"PS256".
            // A key's alg is enforced, as the file's own WrongPrimitive cases
            // require. Expect invalid.
            (346, false),
            (350, false),
            // erratum WP-4: the key says "alg":"ES521", which is not a JWA
            // algorithm (JWK tc19 treats such a key as invalid). Expect invalid.
            (347, false),
            (351, false),
        ],
    );
    assert_eq!(counts.total, 401);
    // 46 valid upstream, +2 (WP-1), -2 (WP-2), -4 (WP-3, WP-4).
    assert_eq!(counts.valid, 42);
}

#[test]
fn wycheproof_json_web_key() {
    let counts = run("wycheproof/testvectors_v1/json_web_key_test.json", &[]);
    assert_eq!(counts.total, 26);
    assert_eq!(counts.valid, 5);
}

#[test]
fn wycheproof_json_web_crypto_jws_cases() {
    // The JWS cases of this file (tc1–tc49); its JWE cases run with JWE.
    let counts = run(
        "wycheproof/testvectors_v1/json_web_crypto_test.json",
        // erratum WP-5: tc17 is a well-formed flattened JSON JWS whose MAC
        // verifies. Wycheproof labels it invalid for compact-only APIs; this
        // library implements JSON serialization (RFC 7515 §7.2), so it is valid.
        &[(17, true)],
    );
    assert_eq!(counts.total, 49);
    assert_eq!(counts.valid, 5);
}
