//! What a token *is* must be signed: `typ` and `cty` slipped into an
//! unprotected header, an unencoded (`b64: false`) JWS passed off as a JWT,
//! and a PBES2 iteration count that makes a forged token expensive.
//! (Findings 1, 4 and 5 of the expert review of tessera-jose.)

use serde_json::{json, Map, Value};
use tessera_jose::jwa::{JweAlgorithm, JweEncryption, JwsAlgorithm};
use tessera_jose::jwe::{Decrypter, Encrypter, JweHeader, DEFAULT_MAX_PBES2_COUNT};
use tessera_jose::jwk::Jwk;
use tessera_jose::jws::{JwsHeader, SignaturePolicy, Signer};
use tessera_jose::jwt::{self, Claims, FixedClock, Validation};

use crate::support::{key_for, verifier};

fn claims() -> Claims<()> {
    Claims::new(())
        .subject("user-1")
        .audience("api")
        .expires_at(2_000)
}

/// A compact JWS re-serialized as flattened JSON with `extra` as its
/// unprotected header: anyone holding the token can do this, no key needed.
fn flattened_with_header(compact: &str, extra: Value) -> String {
    let parts: Vec<&str> = compact.split('.').collect();
    json!({
        "protected": parts[0],
        "payload": parts[1],
        "signature": parts[2],
        "header": extra,
    })
    .to_string()
}

/// Finding 1 (JWS): an authentic token with no protected `typ` gains
/// `"header":{"typ":"at+jwt"}` and would pass as an access token (RFC 8725
/// §3.11 explicit typing bypassed). Refused now, whatever is asked; and the
/// signer does not write what the verifier refuses.
#[test]
fn typ_and_cty_in_an_unprotected_jws_header_are_refused() {
    let key = key_for(JwsAlgorithm::ES256);
    let signer = Signer::new(&key, JwsAlgorithm::ES256).unwrap();
    let v = verifier(&key, JwsAlgorithm::ES256);
    // An ID-token-like JWS: signed, but not typed as an access token.
    let untyped = signer
        .sign_compact(
            &JwsHeader::new(),
            br#"{"sub":"user-1","aud":"api","exp":2000}"#,
        )
        .unwrap();
    let at = Validation::new().audience("api").typ("at+jwt");
    let clock = FixedClock(1_000);
    // The compact form was always refused: no typ.
    assert_eq!(
        jwt::verify::<Value>(&untyped, &v, &at, &clock)
            .unwrap_err()
            .code(),
        "ERR_JWS_UNEXPECTED_TYP"
    );
    for extra in [
        json!({"typ": "at+jwt"}),
        json!({"cty": "JWT"}),
        json!({"typ": "at+jwt", "kid": "x"}),
    ] {
        let forged = flattened_with_header(&untyped, extra.clone());
        assert_eq!(
            jwt::verify_json::<Value>(&forged, &v, SignaturePolicy::All, &at, &clock)
                .unwrap_err()
                .code(),
            "ERR_JWS_INVALID_HEADER",
            "{extra}"
        );
        assert_eq!(
            v.verify_json(&forged, SignaturePolicy::All)
                .unwrap_err()
                .code(),
            "ERR_JWS_INVALID_HEADER",
            "{extra}"
        );
    }
    // Other unprotected members are still fine (RFC 7515 allows them; this
    // token's `kid` is protected already, so a private note stands in).
    let noted = flattened_with_header(&untyped, json!({"x-note": "hello"}));
    assert!(v.verify_json(&noted, SignaturePolicy::All).is_ok());
    // Signing: typ/cty are refused in the unprotected header.
    for name in ["typ", "cty"] {
        let mut u = Map::new();
        u.insert(name.into(), "at+jwt".into());
        assert_eq!(
            signer
                .sign_flattened(&JwsHeader::new(), Some(u), b"{}")
                .unwrap_err()
                .code(),
            "ERR_JWS_INVALID_HEADER"
        );
    }
}

/// Finding 1 (JWE): a flattened JWE whose protected header has no `cty`
/// gains `"unprotected":{"cty":"JWT"}` (not covered by the AAD, so it still
/// decrypts) and would pass the nested gate of `decrypt_and_verify`.
/// Refused; and where a caller tolerates unprotected typing, it does not
/// count.
#[test]
fn cty_in_an_unprotected_jwe_header_does_not_make_a_nested_token() {
    let signing = key_for(JwsAlgorithm::ES256);
    let signer = Signer::new(&signing, JwsAlgorithm::ES256).unwrap();
    let v = verifier(&signing, JwsAlgorithm::ES256);
    let (alg, enc) = (JweAlgorithm::ECDH_ES_A256KW, JweEncryption::A256GCM);
    let sealing = Jwk::generate_for_encryption(alg, enc).unwrap();
    let encrypter = Encrypter::new(&sealing.to_public().unwrap(), alg, enc).unwrap();
    let d = Decrypter::builder()
        .key(&sealing, &[(alg, enc)])
        .unwrap()
        .build()
        .unwrap();
    let inner = jwt::sign(&signer, &JwsHeader::new(), &claims()).unwrap();
    // Sealed without cty: not a nested JWT by its sender's word.
    let jwe = encrypter
        .encrypt_flattened(&JweHeader::new(), &JweHeader::new(), None, inner.as_bytes())
        .unwrap();
    let validation = Validation::new().audience("api");
    let clock = FixedClock(1_000);
    assert_eq!(
        jwt::decrypt_and_verify::<Value>(&jwe, &d, &v, &validation, &clock)
            .unwrap_err()
            .code(),
        "ERR_JWE_NOT_NESTED"
    );
    for (member, extra) in [
        ("unprotected", json!({"cty": "JWT"})),
        ("unprotected", json!({"typ": "JWT"})),
        ("header", json!({"cty": "JWT"})),
    ] {
        let mut doc: Map<String, Value> = serde_json::from_str(&jwe).unwrap();
        match doc.get_mut(member) {
            Some(Value::Object(o)) => o.extend(extra.as_object().unwrap().clone()),
            _ => {
                doc.insert(member.into(), extra.clone());
            }
        }
        let forged = Value::Object(doc).to_string();
        assert_eq!(
            jwt::decrypt_and_verify::<Value>(&forged, &d, &v, &validation, &clock)
                .unwrap_err()
                .code(),
            "ERR_JWE_INVALID_HEADER",
            "{member} {extra}"
        );
        assert_eq!(
            d.decrypt(&forged).unwrap_err().code(),
            "ERR_JWE_INVALID_HEADER"
        );
        // A decrypter that tolerates them (RFC 7520 §5.13 writes one) reads
        // the JWE, but the unprotected `cty` still does not count.
        let tolerant = Decrypter::builder()
            .key(&sealing, &[(alg, enc)])
            .unwrap()
            .tolerate_unprotected_typing()
            .expect_typ("JWT")
            .build()
            .unwrap();
        if extra.get("typ").is_some() {
            assert_eq!(
                tolerant.decrypt(&forged).unwrap_err().code(),
                "ERR_JWE_UNEXPECTED_TYP"
            );
        } else {
            let tolerant = Decrypter::builder()
                .key(&sealing, &[(alg, enc)])
                .unwrap()
                .tolerate_unprotected_typing()
                .build()
                .unwrap();
            assert_eq!(tolerant.decrypt(&forged).unwrap().header().cty(), None);
            assert_eq!(
                jwt::decrypt_and_verify::<Value>(&forged, &tolerant, &v, &validation, &clock)
                    .unwrap_err()
                    .code(),
                "ERR_JWE_NOT_NESTED",
                "{member} {extra}"
            );
        }
    }
    // Encrypting: cty in the shared unprotected header is refused.
    assert_eq!(
        encrypter
            .encrypt_flattened(
                &JweHeader::new(),
                &JweHeader::new().cty("JWT"),
                None,
                inner.as_bytes()
            )
            .unwrap_err()
            .code(),
        "ERR_JWE_INVALID_HEADER"
    );
    // The honest nested token, cty protected, still opens.
    let nested = jwt::sign_and_encrypt(
        &signer,
        &JwsHeader::new(),
        &claims(),
        &encrypter,
        &JweHeader::new(),
    )
    .unwrap();
    assert!(jwt::decrypt_and_verify::<Value>(&nested, &d, &v, &validation, &clock).is_ok());
}

/// Finding 4: RFC 7797 §7 — JWTs must not use `b64: false`. A JWS over a
/// claims object with an unencoded payload verifies as a JWS, but is not a
/// JWT: `jwt::verify` refuses it, and `jwt::sign` will not make one.
#[test]
fn a_jws_with_an_unencoded_payload_is_not_a_jwt() {
    let key = key_for(JwsAlgorithm::ES256);
    let signer = Signer::new(&key, JwsAlgorithm::ES256).unwrap();
    let v = tessera_jose::jws::Verifier::builder()
        .key(&key, &[JwsAlgorithm::ES256])
        .unwrap()
        .build()
        .unwrap();
    let claims_json = br#"{"sub":"user-1","aud":"api","exp":2000}"#;
    let header = JwsHeader::new().typ("JWT").unencoded_payload();
    let validation = Validation::new().audience("api");
    let clock = FixedClock(1_000);
    // Flattened JSON carries an unencoded payload in full.
    let token = signer.sign_flattened(&header, None, claims_json).unwrap();
    // A JWS it is…
    assert!(v.verify_json(&token, SignaturePolicy::All).is_ok());
    // …but not a JWT.
    let refused = jwt::verify_json::<Value>(&token, &v, SignaturePolicy::All, &validation, &clock)
        .unwrap_err();
    assert_eq!(refused.code(), "ERR_JWS_INVALID_HEADER");
    assert!(refused.to_string().contains("RFC 7797"), "{refused}");
    // Compact with b64:false and a payload free of '.': the same refusal.
    let compact = signer
        .sign_compact(&header, br#"{"sub":"user-1","aud":"api","exp":2000}"#)
        .unwrap();
    assert!(v.verify_compact(&compact).is_ok());
    assert_eq!(
        jwt::verify::<Value>(&compact, &v, &validation, &clock)
            .unwrap_err()
            .code(),
        "ERR_JWS_INVALID_HEADER"
    );
    assert_eq!(
        jwt::sign(&signer, &JwsHeader::new().unencoded_payload(), &claims())
            .unwrap_err()
            .code(),
        "ERR_JWS_INVALID_HEADER"
    );
}

/// Finding 5: a forged PBES2 token makes the decrypter run `p2c` HMACs
/// before anything is authenticated. The default bound is now 100,000 (one
/// forged token: tens of milliseconds, not a quarter second); tessera's own
/// default strength is inside it; a caller can still raise it.
#[test]
fn the_default_pbes2_bound_keeps_a_forged_token_cheap() {
    assert_eq!(DEFAULT_MAX_PBES2_COUNT, 100_000);
    let (alg, enc) = (JweAlgorithm::PBES2_HS256_A128KW, JweEncryption::A128GCM);
    let password = Jwk::generate_for_encryption(alg, enc).unwrap();
    let d = Decrypter::builder()
        .key(&password, &[(alg, enc)])
        .unwrap()
        .build()
        .unwrap();
    // tessera's own default strength opens under the default bound.
    let ours = Encrypter::new(&password, alg, enc)
        .unwrap()
        .encrypt_compact(&JweHeader::new(), b"ok")
        .unwrap();
    assert_eq!(d.decrypt_compact(&ours).unwrap().plaintext(), b"ok");
    // 600,000 (the old bound, and a token an attacker can make for free by
    // editing p2c: the header is checked before any derivation) is refused.
    for count in [100_001, 600_000] {
        let token = Encrypter::new(&password, alg, enc)
            .unwrap()
            .pbes2_count(count)
            .unwrap()
            .encrypt_compact(&JweHeader::new(), b"strong")
            .unwrap();
        assert_eq!(
            d.decrypt_compact(&token).unwrap_err().code(),
            "ERR_JWE_PBES2_COUNT",
            "{count}"
        );
        // A receiver that expects such tokens says so.
        let raised = Decrypter::builder()
            .key(&password, &[(alg, enc)])
            .unwrap()
            .max_pbes2_count(count)
            .build()
            .unwrap();
        assert_eq!(
            raised.decrypt_compact(&token).unwrap().plaintext(),
            b"strong"
        );
    }
}
