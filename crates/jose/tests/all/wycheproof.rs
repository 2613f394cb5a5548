//! Project Wycheproof JOSE vectors (C2SP/wycheproof, commit dac1dd47; see
//! `tests/vectors/README.md`), every JWS, JWK and JWE case, data-driven.
//!
//! A case is "valid" when its key (or key set) is accepted, a verifier is
//! built from it for every JWS algorithm the key can serve, and the JWS
//! verifies. Anything failing on the way makes it "invalid". Cases whose
//! expected result is corrected by the vectors' errata are listed with the
//! erratum that explains them.
//!
//! A JWE case whose header names `RSA1_5` is "refused", whatever Wycheproof
//! expects of it: tessera no longer decrypts RSAES-PKCS1-v1_5 (no
//! constant-time padding check is available on aws-lc-rs: the Marvin
//! attack), so each such case must fail with exactly
//! `JweError::AlgorithmNotAllowed("RSA1_5")`, and is counted apart
//! (`tests/vectors/README.md`, "In tessera").
//!
//! A JWE case whose header names `RSA1_5` is "refused", whatever Wycheproof
//! expects of it: tessera no longer decrypts RSAES-PKCS1-v1_5 (no
//! constant-time padding check is available on aws-lc-rs: the Marvin
//! attack), so each such case must fail with exactly
//! `JweError::AlgorithmNotAllowed("RSA1_5")`, and is counted apart
//! (`tests/vectors/README.md`, "In tessera").
//!
//! A JWE case whose header names `RSA1_5` is "refused", whatever Wycheproof
//! expects of it: tessera no longer decrypts RSAES-PKCS1-v1_5 (no
//! constant-time padding check is available on aws-lc-rs: the Marvin
//! attack), so each such case must fail with exactly
//! `JweError::AlgorithmNotAllowed("RSA1_5")`, and is counted apart
//! (`tests/vectors/README.md`, "In tessera").

use serde_json::Value;
use tessera_jose::error::JweError;
use tessera_jose::jwa::{JweAlgorithm, JweEncryption, JwsAlgorithm};
use tessera_jose::jwe::Decrypter;
use tessera_jose::jwk::{Jwk, JwkSet};
use tessera_jose::jws::{SignaturePolicy, Verifier};
use tessera_jose::{b64, Error};

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

// ------------------------------------------------------------------------ JWE

/// A decrypter for a Wycheproof JWE group: its private key for the group
/// key's own `alg` with every `enc` (for a `dir` key, whose `alg` names the
/// content algorithm, `dir` with that `enc`; erratum WP-6); compression is
/// enabled (tc135 is compressed). For a key bound to `RSA1_5` this is
/// refused, as it is for any caller.
fn build_decrypter(key: &Value) -> Result<Decrypter, Error> {
    let key = Jwk::from_json(key.to_string().as_bytes())?;
    let key_alg = key.alg().unwrap_or_default();
    let pairs: Vec<(JweAlgorithm, JweEncryption)> = match key_alg.parse::<JweAlgorithm>() {
        Ok(alg) => JweEncryption::ALL.iter().map(|&e| (alg, e)).collect(),
        Err(_) => vec![(JweAlgorithm::Dir, key_alg.parse::<JweEncryption>()?)],
    };
    Decrypter::builder()
        .key(&key, &pairs)?
        .allow_compression()
        .build()
}

/// The `alg` values a JWE names: its protected header's (compact), or the
/// protected, shared and per-recipient headers' (JSON).
fn named_algs(jwe: &Value) -> Vec<String> {
    let decode = |b64u: &str| -> Option<Value> {
        serde_json::from_slice(&b64::decode(b64u, "protected").ok()?).ok()
    };
    let json = match jwe {
        Value::String(s) if !s.trim_start().starts_with('{') => {
            let header = s.split('.').next().and_then(decode);
            return header
                .and_then(|h| h["alg"].as_str().map(str::to_owned))
                .into_iter()
                .collect();
        }
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
        other => other.clone(),
    };
    let mut headers = vec![
        json.get("protected")
            .and_then(Value::as_str)
            .and_then(decode),
        json.get("unprotected").cloned(),
        json.get("header").cloned(),
    ];
    for r in json["recipients"].as_array().into_iter().flatten() {
        headers.push(r.get("header").cloned());
    }
    headers
        .into_iter()
        .flatten()
        .filter_map(|h| h["alg"].as_str().map(str::to_owned))
        .collect()
}

/// What a JWE case came to, or is expected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JweOutcome {
    /// Decrypted to the expected plaintext.
    Valid,
    /// Refused, for any reason but the one below.
    Invalid,
    /// Refused because it uses `RSA1_5`, which tessera no longer decrypts.
    Rsa15Refused,
}

/// The counts a JWE file came to; they add up to `total`.
#[derive(Debug, Default, PartialEq, Eq)]
struct JweCounts {
    total: usize,
    valid: usize,
    invalid: usize,
    rsa1_5_refused: usize,
}

/// Runs every JWE case of `file`: a case naming `RSA1_5` must be refused
/// with the algorithm error; every other case must come out as Wycheproof
/// (or an erratum in `corrections`) says.
fn run_jwe(file: &str, corrections: &[(u64, bool)]) -> JweCounts {
    let doc = vector(file);
    let mut counts = JweCounts::default();
    let mut failures = Vec::new();
    for group in doc["testGroups"].as_array().unwrap() {
        let decrypter = build_decrypter(&group["private"]);
        for case in group["tests"].as_array().unwrap() {
            let Some(jwe) = case.get("jwe") else { continue };
            let id = case["tcId"].as_u64().unwrap();
            let expected = if named_algs(jwe).iter().any(|a| a == "RSA1_5") {
                JweOutcome::Rsa15Refused
            } else if corrections
                .iter()
                .find(|(c, _)| *c == id)
                .map(|(_, v)| *v)
                .unwrap_or(case["result"] == "valid")
            {
                JweOutcome::Valid
            } else {
                JweOutcome::Invalid
            };
            let text = match jwe {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let outcome = decrypter
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|d| d.decrypt(&text));
            let got = match (&outcome, case.get("pt")) {
                (Ok(opened), Some(pt)) => {
                    let hex: String = opened
                        .plaintext()
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    if hex == pt.as_str().unwrap() {
                        JweOutcome::Valid
                    } else {
                        JweOutcome::Invalid
                    }
                }
                (Ok(_), None) => JweOutcome::Valid,
                (Err(Error::Jwe(JweError::AlgorithmNotAllowed("RSA1_5"))), _) => {
                    JweOutcome::Rsa15Refused
                }
                (Err(_), _) => JweOutcome::Invalid,
            };
            if got != expected {
                failures.push(format!(
                    "tc{id} ({}): expected {expected:?}, got {got:?}: {:?}",
                    case["comment"],
                    outcome.as_ref().err()
                ));
            }
            counts.total += 1;
            match got {
                JweOutcome::Valid => counts.valid += 1,
                JweOutcome::Invalid => counts.invalid += 1,
                JweOutcome::Rsa15Refused => counts.rsa1_5_refused += 1,
            }
        }
    }
    assert!(failures.is_empty(), "{file}:\n{}", failures.join("\n"));
    assert_eq!(
        counts.valid + counts.invalid + counts.rsa1_5_refused,
        counts.total
    );
    eprintln!(
        "{file}: {} JWE cases agree ({} valid, {} invalid, {} refused as RSA1_5)",
        counts.total, counts.valid, counts.invalid, counts.rsa1_5_refused
    );
    counts
}

#[test]
fn wycheproof_json_web_encryption() {
    let counts = run_jwe(
        "wycheproof/testvectors_v1/json_web_encryption_test.json",
        // erratum WP-5: tc22 is a well-formed flattened JSON JWE that decrypts
        // to its plaintext. Labelled invalid for compact-only APIs; this
        // library implements JSON serialization (RFC 7516 §7.2), so it is
        // valid here (decrypt_compact, the compact-only entry point, refuses
        // it: see wycheproof_json_serialization_is_refused_by_compact_only_api).
        // erratum WP-6 (tc132, dir with a key whose alg names the enc) needs
        // no correction: the key's alg is matched against enc for dir.
        &[(22, true)],
    );
    // The 30 cases naming RSA1_5 are refused: tc100–105, 112–120 and 128
    // (16, a key bound to RSA1_5: no decrypter is built for it; 8 of them
    // valid upstream) and tc94–99, 110, 111 and 122–127 (14, an RSA-OAEP
    // key: the token's alg is not allowed; all invalid upstream).
    assert_eq!(
        counts,
        JweCounts {
            total: 139,
            // 65 valid upstream, +1 (WP-5), -8 (valid RSA1_5 cases, refused).
            valid: 58,
            invalid: 51,
            rsa1_5_refused: 30,
        }
    );
}

#[test]
fn wycheproof_json_web_crypto_jwe_cases() {
    // The JWE cases of this file (tc50–tc83).
    let counts = run_jwe(
        "wycheproof/testvectors_v1/json_web_crypto_test.json",
        // erratum WP-5: tc66 is a well-formed JSON JWE (a JSON object in the
        // file) that decrypts; valid for an API with JSON serialization.
        &[(66, true)],
    );
    assert_eq!(
        counts,
        JweCounts {
            total: 34,
            valid: 3,
            invalid: 31,
            rsa1_5_refused: 0,
        }
    );
}

#[test]
fn wycheproof_json_serialization_is_refused_by_compact_only_api() {
    // WP-5's other reading: through the compact-only entry point, the JSON
    // serializations are invalid, as Wycheproof labels them.
    for (file, id) in [
        (
            "wycheproof/testvectors_v1/json_web_encryption_test.json",
            22,
        ),
        ("wycheproof/testvectors_v1/json_web_crypto_test.json", 66),
    ] {
        let doc = vector(file);
        for group in doc["testGroups"].as_array().unwrap() {
            for case in group["tests"].as_array().unwrap() {
                if case["tcId"] != id || case.get("jwe").is_none() {
                    continue;
                }
                let d = build_decrypter(&group["private"]).unwrap();
                let text = match &case["jwe"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                assert!(d.decrypt_json(&text).is_ok(), "{file} tc{id}");
                assert_eq!(
                    d.decrypt_compact(&text).unwrap_err().code(),
                    "ERR_JWE_MALFORMED",
                    "{file} tc{id}"
                );
            }
        }
    }
}
