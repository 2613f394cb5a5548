//! RFC 7520 cookbook (JWK §3, JWS §4), RFC 7797 and RFC 8037 examples, run
//! from the data files in `tests/vectors/cookbook` (source: ietf-jose/cookbook,
//! commit 13692b68; see `tests/vectors/README.md`). Every output form of every
//! file is verified; deterministic signatures are reproduced byte for byte.

use serde_json::{Map, Value};
use tessera_jose::jwa::JwsAlgorithm;
use tessera_jose::jwk::Jwk;
use tessera_jose::jws::{
    sign_general, GeneralSignature, ProtectedHeader, SignaturePolicy, Signer, Verifier,
};

use crate::support::{jwk_value, vector, vector_dir};

fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    }
}

/// Keys and algorithms of a case, paired in order.
fn keys_and_algs(case: &Value) -> Vec<(Jwk, JwsAlgorithm)> {
    let keys = as_list(&case["input"]["key"]);
    let algs = as_list(&case["input"]["alg"]);
    assert_eq!(keys.len(), algs.len());
    keys.iter()
        .zip(&algs)
        .map(|(k, a)| (jwk_value(k), a.as_str().unwrap().parse().unwrap()))
        .collect()
}

fn verifier_for(pairs: &[(Jwk, JwsAlgorithm)]) -> Verifier {
    let mut b = Verifier::builder();
    for (key, alg) in pairs {
        b = b.key(key, &[*alg]).unwrap();
    }
    b.build().unwrap()
}

fn is_deterministic(alg: JwsAlgorithm) -> bool {
    let name = alg.name();
    name.starts_with("HS") || name.starts_with("RS") || alg == JwsAlgorithm::EdDSA
}

/// Verifies every output form; returns how many forms were checked.
fn verify_outputs(file: &str, case: &Value, expect_valid: bool) -> usize {
    let pairs = keys_and_algs(case);
    let v = verifier_for(&pairs);
    let payload = case["input"]["payload"].as_str().unwrap().as_bytes();
    let mut checked = 0;
    for (form, out) in case["output"].as_object().unwrap() {
        let result = match form.as_str() {
            "compact" => {
                let token = out.as_str().unwrap();
                if token.contains("..") {
                    v.verify_compact_detached(token, payload)
                } else {
                    v.verify_compact(token)
                }
            }
            "json" | "json_flat" => {
                let text = out.to_string();
                if out.get("payload").is_none() {
                    v.verify_json_detached(&text, SignaturePolicy::All, payload)
                } else {
                    v.verify_json(&text, SignaturePolicy::All)
                }
            }
            other => panic!("{file}: unknown output form {other}"),
        };
        match (expect_valid, result) {
            (true, Ok(verified)) => {
                assert_eq!(verified.payload(), payload, "{file} {form}");
                assert_eq!(verified.signatures().len(), pairs.len(), "{file} {form}");
            }
            (true, Err(e)) => panic!("{file} {form}: {e}"),
            (false, Ok(_)) => panic!("{file} {form}: accepted"),
            (false, Err(_)) => {}
        }
        checked += 1;
    }
    checked
}

/// Re-signs the deterministic signatures and compares them byte for byte.
fn reproduce(file: &str, case: &Value) -> usize {
    let pairs = keys_and_algs(case);
    let payload = case["input"]["payload"].as_str().unwrap().as_bytes();
    let signing = as_list(&case["signing"]);
    let expected_json = &case["output"]["json"];
    let mut reproduced = 0;
    for (i, ((key, alg), entry)) in pairs.iter().zip(&signing).enumerate() {
        if !is_deterministic(*alg) {
            continue;
        }
        let signer = Signer::new(key, *alg).unwrap();
        let protected = entry["protected_b64u"].as_str().map(|b| {
            ProtectedHeader::from_json(&tessera_jose::b64::decode(b, "t").unwrap()).unwrap()
        });
        let unprotected: Option<Map<String, Value>> = entry
            .get("unprotected")
            .map(|u| u.as_object().unwrap().clone());
        let out = sign_general(
            payload,
            &[GeneralSignature {
                signer: &signer,
                protected: protected.clone(),
                unprotected,
            }],
        )
        .unwrap();
        let out: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            out["signatures"][0]["signature"], expected_json["signatures"][i]["signature"],
            "{file} signature {i}"
        );
        if let (Some(compact), Some(protected)) = (case["output"]["compact"].as_str(), &protected) {
            let ours = if compact.contains("..") {
                signer
                    .sign_compact_detached_with(protected, payload)
                    .unwrap()
            } else {
                signer.sign_compact_with(protected, payload).unwrap()
            };
            assert_eq!(ours, compact, "{file} compact");
        }
        reproduced += 1;
    }
    reproduced
}

#[test]
fn cookbook_jwk_section_3() {
    let files = vector_dir("cookbook/jwk");
    assert_eq!(files.len(), 6);
    for file in &files {
        let original = vector(file);
        let key = jwk_value(&original);
        // Every member survives a round trip (private ones included).
        let back: Value = serde_json::from_str(&key.to_private_json()).unwrap();
        assert_eq!(back, original, "{file}");
        let public_members = key.to_json();
        assert!(
            !public_members.contains("\"d\"") && !public_members.contains("\"k\""),
            "{file}"
        );
    }
    eprintln!("cookbook jwk: {} keys", files.len());
}

#[test]
fn cookbook_jws_section_4() {
    let files = vector_dir("cookbook/jws");
    assert_eq!(files.len(), 8);
    let (mut forms, mut reproduced) = (0, 0);
    for file in &files {
        let case = vector(file);
        forms += verify_outputs(file, &case, true);
        reproduced += reproduce(file, &case);
    }
    // 4.1–4.5: 3 forms each; 4.6, 4.7: 2 each; 4.8: 1.
    assert_eq!(forms, 20);
    // 4.1, 4.4, 4.5, 4.6, 4.7 and the RS256 + HS256 signatures of 4.8.
    assert_eq!(reproduced, 7);
    eprintln!("cookbook jws: {forms} output forms verified, {reproduced} signatures reproduced");
}

#[test]
fn cookbook_rfc8037_ed25519() {
    let case = vector("cookbook/curve25519/jws.json");
    assert_eq!(verify_outputs("curve25519/jws.json", &case, true), 3);
    assert_eq!(reproduce("curve25519/jws.json", &case), 1);
}

#[test]
fn cookbook_rfc7797_unencoded() {
    // erratum CB-2: the `signing` section of this file is wrong; test output.* only.
    let case = vector("cookbook/rfc7797/hmac-sha2_b64_false.json");
    assert_eq!(
        verify_outputs("rfc7797/hmac-sha2_b64_false.json", &case, true),
        3
    );
    // erratum CB-1: these outputs carry b64:false without crit, which RFC 7797
    // §6 forbids; a conforming verifier rejects them. The positive RFC 7797
    // §4.2 values are tested in rfc.rs.
    let case = vector("cookbook/rfc7797/4.2.hmac-sha2_b64_false.json");
    assert_eq!(
        verify_outputs("rfc7797/4.2.hmac-sha2_b64_false.json", &case, false),
        2
    );
}
