//! One negative test per invariant of the verifier: each is a known attack
//! on JOSE implementations, and each must fail with a precise error.

use serde_json::{json, Value};
use tessera_jose::b64;
use tessera_jose::json::Limits;
use tessera_jose::jwa::{EcCurve, JwsAlgorithm};
use tessera_jose::jwk::{Jwk, JwkSet, KeyOp, KeyUse};
use tessera_jose::jws::{
    sign_general, GeneralSignature, JwsHeader, SignaturePolicy, Signer, Verifier,
};

use crate::support::{key_for, verifier};

/// Builds a compact JWS by hand, as an attacker would: any header, any
/// payload, a signature made by `mac_key` (HMAC-SHA256) or given bytes.
fn forge(header: &Value, payload: &[u8], sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64::encode(header.to_string()),
        b64::encode(payload),
        b64::encode(sig)
    )
}

fn hs256_with_secret(header: &Value, payload: &[u8], secret: &[u8]) -> String {
    let key = Jwk::from_secret(secret).unwrap();
    let signer = Signer::new(&key, JwsAlgorithm::HS256).unwrap();
    let protected =
        tessera_jose::jws::ProtectedHeader::from_json(header.to_string().as_bytes()).unwrap();
    signer.sign_compact_with(&protected, payload).unwrap()
}

fn rsa_key() -> Jwk {
    key_for(JwsAlgorithm::RS256)
}

#[test]
fn alg_none_is_refused_with_and_without_signature() {
    let key = Jwk::generate_for(JwsAlgorithm::HS256).unwrap();
    let v = verifier(&key, JwsAlgorithm::HS256);
    let good = Signer::new(&key, JwsAlgorithm::HS256)
        .unwrap()
        .sign_compact(&JwsHeader::new(), b"{}")
        .unwrap();
    let real_sig = b64::decode(good.rsplit('.').next().unwrap(), "t").unwrap();
    for alg in ["none", "None", "NONE", "nOnE", ""] {
        for sig in [&b""[..], &real_sig[..]] {
            let token = forge(&json!({ "alg": alg }), b"{}", sig);
            let e = v.verify_compact(&token).unwrap_err();
            assert_eq!(e.code(), "ERR_JWS_UNSUPPORTED_ALG", "{alg}");
        }
    }
    // A missing or non-string alg is refused too.
    for header in [json!({}), json!({"alg": null}), json!({"alg": ["HS256"]})] {
        assert!(v.verify_compact(&forge(&header, b"{}", &real_sig)).is_err());
    }
}

#[test]
fn stripped_or_truncated_signatures_fail() {
    for alg in JwsAlgorithm::all() {
        let key = key_for(alg);
        let token = Signer::new(&key, alg)
            .unwrap()
            .sign_compact(&JwsHeader::new(), b"payload")
            .unwrap();
        let v = verifier(&key, alg);
        assert!(v.verify_compact(&token).is_ok(), "{alg}");
        let (head, sig) = token.rsplit_once('.').unwrap();
        let stripped = format!("{head}.");
        let truncated = format!("{head}.{}", &sig[..sig.len() - 4]);
        let no_dot = head.to_owned();
        let extended = format!("{token}AAAA");
        for bad in [stripped, truncated, no_dot, extended] {
            assert!(v.verify_compact(&bad).is_err(), "{alg}: {bad}");
        }
    }
}

#[test]
fn ecdsa_zero_signature_cve_2022_21449() {
    for (alg, curve) in [
        (JwsAlgorithm::ES256, EcCurve::P256),
        (JwsAlgorithm::ES384, EcCurve::P384),
        (JwsAlgorithm::ES512, EcCurve::P521),
        (JwsAlgorithm::ES256K, EcCurve::Secp256k1),
    ] {
        let key = Jwk::generate_for(alg).unwrap();
        let v = verifier(&key, alg);
        // r = s = 0, at the right length (and at other lengths).
        for len in [2 * curve.coordinate_len(), 0, 1, 64] {
            let token = forge(
                &json!({"alg": alg.name()}),
                b"{\"admin\":true}",
                &vec![0u8; len],
            );
            let e = v.verify_compact(&token).unwrap_err();
            assert_eq!(e.code(), "ERR_JWS_SIGNATURE_INVALID", "{alg} len {len}");
        }
    }
}

#[test]
fn kid_selects_only_among_the_verifiers_keys() {
    let ours = Jwk::generate_for(JwsAlgorithm::ES256)
        .unwrap()
        .with_kid("ours");
    let attacker = Jwk::generate_for(JwsAlgorithm::ES256)
        .unwrap()
        .with_kid("attacker");
    let v = verifier(&ours, JwsAlgorithm::ES256);
    let token = Signer::new(&attacker, JwsAlgorithm::ES256)
        .unwrap()
        .sign_compact(&JwsHeader::new(), b"{}")
        .unwrap();
    assert_eq!(
        v.verify_compact(&token).unwrap_err().code(),
        "ERR_JWS_UNKNOWN_KID"
    );
    // The attacker claims our kid: the signature then fails against our key.
    let token = Signer::new(&attacker, JwsAlgorithm::ES256)
        .unwrap()
        .sign_compact(&JwsHeader::new().kid("ours"), b"{}")
        .unwrap();
    assert_eq!(
        v.verify_compact(&token).unwrap_err().code(),
        "ERR_JWS_SIGNATURE_INVALID"
    );
    // A non-string kid is malformed, not "absent".
    let token = forge(&json!({"alg": "ES256", "kid": 7}), b"{}", &[0; 64]);
    assert_eq!(
        v.verify_compact(&token).unwrap_err().code(),
        "ERR_JWS_INVALID_HEADER"
    );
}

#[test]
fn embedded_keys_and_key_urls_are_never_used() {
    let ours = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
    let attacker = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
    let attacker_public: Value =
        serde_json::from_str(&attacker.to_public().unwrap().to_json()).unwrap();
    let v = verifier(&ours, JwsAlgorithm::ES256);
    let signer = Signer::new(
        &attacker.clone().with_kid(ours.kid().unwrap()),
        JwsAlgorithm::ES256,
    )
    .unwrap();
    for (name, value) in [
        ("jwk", attacker_public.clone()),
        ("jku", json!("https://attacker.example/jwks.json")),
        ("x5u", json!("https://attacker.example/cert.pem")),
        ("x5c", json!(["MIIBszCCAVmgAwIBAgIUKQ"])),
    ] {
        let header = JwsHeader::new().param(name, value).unwrap();
        let token = signer.sign_compact(&header, b"{\"admin\":true}").unwrap();
        let e = v.verify_compact(&token).unwrap_err();
        assert_eq!(e.code(), "ERR_JWS_SIGNATURE_INVALID", "{name}");
    }
}

#[test]
fn crit_rules() {
    let key = Jwk::generate_for(JwsAlgorithm::HS256).unwrap();
    let signer = Signer::new(&key, JwsAlgorithm::HS256).unwrap();
    let strict = verifier(&key, JwsAlgorithm::HS256);
    let lenient = Verifier::builder()
        .key(&key, &[JwsAlgorithm::HS256])
        .unwrap()
        .understand_crit("exp")
        .build()
        .unwrap();
    let token = signer
        .sign_compact(
            &JwsHeader::new()
                .critical("exp", json!(1_363_284_000))
                .unwrap(),
            b"x",
        )
        .unwrap();
    assert_eq!(
        strict.verify_compact(&token).unwrap_err().code(),
        "ERR_JWS_CRIT"
    );
    assert!(lenient.verify_compact(&token).is_ok());

    // Malformed crit values are refused even by a lenient verifier.
    let secret = match serde_json::from_str::<Value>(&key.to_private_json()).unwrap()["k"].as_str()
    {
        Some(k) => b64::decode(k, "k").unwrap(),
        None => unreachable!(),
    };
    for header in [
        json!({"alg":"HS256","crit":[]}),
        json!({"alg":"HS256","crit":"exp","exp":1}),
        json!({"alg":"HS256","crit":["exp"]}), // listed but absent
        json!({"alg":"HS256","crit":["exp","exp"],"exp":1}), // duplicated
        json!({"alg":"HS256","crit":["alg"]}), // registered name
        json!({"alg":"HS256","crit":["kid"],"kid":"k"}),
        json!({"alg":"HS256","crit":[""]}),
        json!({"alg":"HS256","crit":[1]}),
    ] {
        let token = hs256_with_secret(&header, b"x", &secret);
        assert_eq!(
            lenient.verify_compact(&token).unwrap_err().code(),
            "ERR_JWS_CRIT",
            "{header}"
        );
    }
    // crit in an unprotected header is refused (RFC 7515 §4.1.11).
    let flattened = json!({
        "payload": "eA",
        "protected": b64::encode(r#"{"alg":"HS256","exp":1}"#),
        "header": {"crit": ["exp"]},
        "signature": "AAAA"
    });
    let e = lenient
        .verify_json(&flattened.to_string(), SignaturePolicy::All)
        .unwrap_err();
    assert_eq!(e.code(), "ERR_JWS_CRIT");
}

#[test]
fn duplicate_header_member_is_refused() {
    let key = Jwk::generate_for(JwsAlgorithm::HS256).unwrap();
    let v = verifier(&key, JwsAlgorithm::HS256);
    for header in [
        r#"{"alg":"HS256","alg":"none"}"#,
        r#"{"alg":"none","alg":"HS256"}"#,
        r#"{"alg":"HS256","kid":"a","kid":"b"}"#,
        r#"{"alg":"HS256","x":{"y":1,"y":2}}"#,
    ] {
        let token = format!("{}.e30.AAAA", b64::encode(header));
        let e = v.verify_compact(&token).unwrap_err();
        assert_eq!(e.code(), "ERR_JSON_DUPLICATE_MEMBER", "{header}");
    }
    // The same name in protected and unprotected headers is refused too.
    let signer = Signer::new(&key, JwsAlgorithm::HS256).unwrap();
    let mut unprotected = serde_json::Map::new();
    unprotected.insert("note".into(), json!("unprotected"));
    let text = signer
        .sign_flattened(&JwsHeader::new(), Some(unprotected.clone()), b"x")
        .unwrap();
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    doc["header"]["alg"] = json!("HS256");
    let e = v
        .verify_json(&doc.to_string(), SignaturePolicy::All)
        .unwrap_err();
    assert_eq!(e.code(), "ERR_JWS_INVALID_HEADER");
}

#[test]
fn oversize_and_deep_inputs_are_refused() {
    let key = Jwk::generate_for(JwsAlgorithm::HS256).unwrap();
    let limits = Limits {
        max_token_bytes: 4096,
        max_header_bytes: 512,
        ..Limits::default()
    };
    let v = Verifier::builder()
        .key(&key, &[JwsAlgorithm::HS256])
        .unwrap()
        .limits(limits)
        .build()
        .unwrap();
    let signer = Signer::new(&key, JwsAlgorithm::HS256).unwrap();
    let big = signer
        .sign_compact(&JwsHeader::new(), &vec![b'a'; 5000])
        .unwrap();
    assert_eq!(v.verify_compact(&big).unwrap_err().code(), "ERR_TOO_LARGE");
    let big_header = JwsHeader::new()
        .param("pad", json!("x".repeat(1000)))
        .unwrap();
    let token = signer.sign_compact(&big_header, b"x").unwrap();
    assert_eq!(
        v.verify_compact(&token).unwrap_err().code(),
        "ERR_TOO_LARGE"
    );
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!([deep]);
    }
    let token = signer
        .sign_compact(&JwsHeader::new().param("deep", deep).unwrap(), b"x")
        .unwrap();
    assert_eq!(
        verifier(&key, JwsAlgorithm::HS256)
            .verify_compact(&token)
            .unwrap_err()
            .code(),
        "ERR_JSON_TOO_DEEP"
    );
    // A megabyte of garbage costs nothing: refused by size before any parsing.
    let garbage = "a".repeat(1 << 20);
    assert_eq!(
        verifier(&key, JwsAlgorithm::HS256)
            .verify_compact(&garbage)
            .unwrap_err()
            .code(),
        "ERR_TOO_LARGE"
    );
    // Too many signatures in a general JWS.
    let sigs: Vec<Value> = (0..17)
        .map(|_| json!({"protected": "eyJhbGciOiJIUzI1NiJ9", "signature": "AA"}))
        .collect();
    let doc = json!({"payload": "eA", "signatures": sigs});
    let e = verifier(&key, JwsAlgorithm::HS256)
        .verify_json(&doc.to_string(), SignaturePolicy::Any)
        .unwrap_err();
    assert_eq!(e.code(), "ERR_JWS_TOO_MANY_SIGNATURES");
}

#[test]
fn typ_is_checked_when_asked() {
    let key = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
    let signer = Signer::new(&key, JwsAlgorithm::ES256).unwrap();
    let v = Verifier::builder()
        .key(&key, &[JwsAlgorithm::ES256])
        .unwrap()
        .expect_typ("at+jwt")
        .build()
        .unwrap();
    for (typ, ok) in [
        (Some("at+jwt"), true),
        (Some("AT+JWT"), true),
        (Some("application/at+jwt"), true),
        (Some("JWT"), false),
        (Some("application/jwt"), false),
        (None, false),
    ] {
        let header = match typ {
            Some(t) => JwsHeader::new().typ(t),
            None => JwsHeader::new(),
        };
        let token = signer.sign_compact(&header, b"{}").unwrap();
        let result = v.verify_compact(&token);
        assert_eq!(result.is_ok(), ok, "{typ:?}");
        if !ok {
            assert_eq!(result.unwrap_err().code(), "ERR_JWS_UNEXPECTED_TYP");
        }
    }
}

#[test]
fn malformed_compact_forms_fail_cleanly() {
    let key = Jwk::generate_for(JwsAlgorithm::HS256).unwrap();
    let v = verifier(&key, JwsAlgorithm::HS256);
    let good = Signer::new(&key, JwsAlgorithm::HS256)
        .unwrap()
        .sign_compact(&JwsHeader::new(), b"{\"a\":1}")
        .unwrap();
    let parts: Vec<&str> = good.split('.').collect();
    let cases = [
        String::new(),
        ".".into(),
        "..".into(),
        "...".into(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{}.{}.{}.", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}.{}.{}", parts[0], "", parts[1], "", parts[2]), // JWE-shaped
        format!(" {good}"),
        format!("{good}\n"),
        format!("{}.{}=.{}", parts[0], parts[1], parts[2]),
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}", parts[0], parts[1].replace('e', "+"), parts[2]),
        format!(".{}.{}", parts[1], parts[2]),
        format!("{}..{}", parts[0], parts[2]),
        format!("e30.{}.{}", parts[1], parts[2]), // {} : no alg
        format!("W10.{}.{}", parts[1], parts[2]), // [] : not an object
    ];
    for bad in &cases {
        assert!(v.verify_compact(bad).is_err(), "{bad:?}");
    }
    assert!(v.verify_compact(&good).is_ok());
}

#[test]
fn key_use_ops_and_alg_are_enforced() {
    let enc = Jwk::generate_ec(EcCurve::P256)
        .unwrap()
        .with_use(KeyUse::Encryption)
        .unwrap();
    assert_eq!(
        Signer::new(&enc, JwsAlgorithm::ES256).unwrap_err().code(),
        "ERR_KEY_OPERATION_NOT_PERMITTED"
    );
    assert_eq!(
        Verifier::builder()
            .key(&enc, &[JwsAlgorithm::ES256])
            .unwrap_err()
            .code(),
        "ERR_KEY_OPERATION_NOT_PERMITTED"
    );
    let verify_only = Jwk::generate_ec(EcCurve::P256)
        .unwrap()
        .with_key_ops(vec![KeyOp::Verify])
        .unwrap();
    assert_eq!(
        Signer::new(&verify_only, JwsAlgorithm::ES256)
            .unwrap_err()
            .code(),
        "ERR_KEY_OPERATION_NOT_PERMITTED"
    );
    let bound = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
    assert_eq!(
        Verifier::builder()
            .key(&bound, &[JwsAlgorithm::ES384])
            .unwrap_err()
            .code(),
        "ERR_KEY_WRONG_TYPE"
    );
    let es = Jwk::generate_ec(EcCurve::P256).unwrap();
    assert!(es.clone().with_alg("RS256").is_err());
    assert!(es.clone().with_alg("ES521").is_err());
    // HMAC secrets shorter than the hash are refused for signing and verifying.
    let short = Jwk::from_secret(&[7u8; 31]).unwrap();
    assert_eq!(
        Signer::new(&short, JwsAlgorithm::HS256).unwrap_err().code(),
        "ERR_KEY_TOO_WEAK"
    );
    assert_eq!(
        Verifier::builder()
            .key(&short, &[JwsAlgorithm::HS256])
            .unwrap_err()
            .code(),
        "ERR_KEY_TOO_WEAK"
    );
    let hs384_short = Jwk::from_secret(&[7u8; 47]).unwrap();
    assert!(Signer::new(&hs384_short, JwsAlgorithm::HS384).is_err());
    assert!(Signer::new(&hs384_short, JwsAlgorithm::HS256).is_ok());
    // A public key cannot sign.
    let public = bound.to_public().unwrap();
    assert_eq!(
        Signer::new(&public, JwsAlgorithm::ES256)
            .unwrap_err()
            .code(),
        "ERR_KEY_NOT_PRIVATE"
    );
    // Two keys of one type may not share a kid; a set may not mix secrets with public keys.
    let a = Jwk::generate_for(JwsAlgorithm::HS256)
        .unwrap()
        .with_kid("k");
    let b = Jwk::generate_for(JwsAlgorithm::HS256)
        .unwrap()
        .with_kid("k");
    let dup = Verifier::builder()
        .key(&a, &[JwsAlgorithm::HS256])
        .unwrap()
        .key(&b, &[JwsAlgorithm::HS256])
        .unwrap()
        .build();
    assert_eq!(dup.unwrap_err().code(), "ERR_JWK_INVALID");
    let mixed = JwkSet::new(vec![a, public]);
    assert!(Verifier::builder()
        .jwk_set(&mixed, &[JwsAlgorithm::HS256, JwsAlgorithm::ES256])
        .is_err());
    assert_eq!(
        Verifier::builder().build().unwrap_err().code(),
        "ERR_KEY_SET_EMPTY"
    );
}

#[test]
fn general_json_policies() {
    let k1 = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
    let k2 = Jwk::generate_for(JwsAlgorithm::EdDSA).unwrap();
    let stranger = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
    let s1 = Signer::new(&k1, JwsAlgorithm::ES256).unwrap();
    let s2 = Signer::new(&k2, JwsAlgorithm::EdDSA).unwrap();
    let s3 = Signer::new(&stranger, JwsAlgorithm::ES256).unwrap();
    fn sig(s: &Signer) -> GeneralSignature<'_> {
        GeneralSignature {
            signer: s,
            protected: Some(s.protect(&JwsHeader::new())),
            unprotected: None,
        }
    }
    let both = sign_general(b"hello", &[sig(&s1), sig(&s2)]).unwrap();
    let with_stranger = sign_general(b"hello", &[sig(&s1), sig(&s3)]).unwrap();
    let v = Verifier::builder()
        .key(&k1, &[JwsAlgorithm::ES256])
        .unwrap()
        .key(&k2, &[JwsAlgorithm::EdDSA])
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(
        v.verify_json(&both, SignaturePolicy::All)
            .unwrap()
            .signatures()
            .len(),
        2
    );
    assert!(v.verify_json(&with_stranger, SignaturePolicy::All).is_err());
    let any = v.verify_json(&with_stranger, SignaturePolicy::Any).unwrap();
    assert_eq!(any.signatures().len(), 1);
    assert_eq!(any.signatures()[0].index, 0);
    assert_eq!(any.payload(), b"hello");
    // Tampering with the shared payload breaks every signature.
    let mut doc: Value = serde_json::from_str(&both).unwrap();
    doc["payload"] = json!(b64::encode("hellO"));
    assert!(v
        .verify_json(&doc.to_string(), SignaturePolicy::Any)
        .is_err());
}

#[test]
fn secrets_stay_out_of_debug_and_errors() {
    let key = Jwk::generate_for(JwsAlgorithm::HS256).unwrap();
    let secret: Value = serde_json::from_str(&key.to_private_json()).unwrap();
    let k = secret["k"].as_str().unwrap().to_owned();
    let signer = Signer::new(&key, JwsAlgorithm::HS256).unwrap();
    let v = verifier(&key, JwsAlgorithm::HS256);
    for shown in [format!("{key:?}"), format!("{signer:?}"), format!("{v:?}")] {
        assert!(!shown.contains(&k), "{shown}");
    }
    let token = forge(&json!({"alg":"HS256"}), b"{}", &[1; 32]);
    let e = v.verify_compact(&token).unwrap_err();
    assert!(!format!("{e:?} {e}").contains(&k));
    let rsa = rsa_key();
    let d = serde_json::from_str::<Value>(&rsa.to_private_json()).unwrap()["d"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!format!("{rsa:?}").contains(&d[..20]));
    assert!(!rsa.to_json().contains(&d[..20]));
}
