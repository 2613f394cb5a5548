//! Attacks through the claims of a correctly signed token: lifetimes that
//! do not hold, audiences shared with other services, claims written twice,
//! and claims objects too large or too deep. Each is signed with the right
//! key, so only the claims check stands between it and acceptance.

use serde_json::{json, Value};
use tessera_jose::jwa::JwsAlgorithm;
use tessera_jose::jwk::Jwk;
use tessera_jose::jws::{JwsHeader, ProtectedHeader, Signer, Verifier};
use tessera_jose::jwt::{self, FixedClock, Validation};

use crate::support::verifier;

const NOW: i64 = 1_800_000_000;
const ISS: &str = "https://auth.example.com";
const API: &str = "https://api.example.com";

struct Keys {
    signer: Signer,
    verifier: Verifier,
}

fn keys() -> Keys {
    let key = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
    Keys {
        signer: Signer::new(&key, JwsAlgorithm::ES256).unwrap(),
        verifier: verifier(&key, JwsAlgorithm::ES256),
    }
}

/// Signs the claims object exactly as given (bytes included), as a
/// malicious or broken issuer holding the key would.
fn sign_raw(k: &Keys, payload: &[u8]) -> String {
    let protected = ProtectedHeader::from_json(br#"{"alg":"ES256","typ":"at+jwt"}"#).unwrap();
    k.signer.sign_compact_with(&protected, payload).unwrap()
}

fn base() -> Value {
    json!({"iss": ISS, "sub": "user-1", "aud": API, "iat": NOW, "exp": NOW + 300})
}

fn validation() -> Validation {
    Validation::new().issuer(ISS).audience(API).typ("at+jwt")
}

fn check(k: &Keys, claims: &Value, v: &Validation, at: i64) -> Result<(), &'static str> {
    let token = sign_raw(k, claims.to_string().as_bytes());
    jwt::verify::<Value>(&token, &k.verifier, v, &FixedClock(at))
        .map(|_| ())
        .map_err(|e| e.code())
}

fn with(members: Value) -> Value {
    let mut c = base();
    for (k, v) in members.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

/// Expired, not yet valid, issued in the future, and no `exp` at all:
/// refused, each with its own code, with the default 60 s leeway and with
/// none.
#[test]
fn expired_not_yet_valid_and_future_iat_are_refused() {
    let k = keys();
    let v = validation();
    assert_eq!(check(&k, &base(), &v, NOW), Ok(()));
    for (claims, at, code) in [
        (with(json!({"exp": NOW - 61})), NOW, "ERR_JWT_EXPIRED"),
        (with(json!({"exp": NOW - 1})), NOW + 59, "ERR_JWT_EXPIRED"),
        (with(json!({"nbf": NOW + 61})), NOW, "ERR_JWT_NOT_YET_VALID"),
        (with(json!({"iat": NOW + 61})), NOW, "ERR_JWT_IAT_IN_FUTURE"),
        (
            with(json!({"iat": NOW + 86_400 * 365})),
            NOW,
            "ERR_JWT_IAT_IN_FUTURE",
        ),
        (with(json!({"exp": null})), NOW, "ERR_JWT_CLAIM_MISSING"),
        (
            with(json!({"exp": "9999999999"})),
            NOW,
            "ERR_JWT_CLAIM_INVALID",
        ),
        (with(json!({"exp": 1e300})), NOW, "ERR_JWT_CLAIM_INVALID"),
        (with(json!({"nbf": [NOW]})), NOW, "ERR_JWT_CLAIM_INVALID"),
    ] {
        assert_eq!(check(&k, &claims, &v, at), Err(code), "{claims} at {at}");
    }
    // With no leeway, one second past `exp` is too late.
    let strict = validation().leeway(0);
    assert_eq!(
        check(&k, &with(json!({"exp": NOW})), &strict, NOW),
        Err("ERR_JWT_EXPIRED")
    );
    assert_eq!(
        check(&k, &with(json!({"nbf": NOW + 1})), &strict, NOW),
        Err("ERR_JWT_NOT_YET_VALID")
    );
    assert_eq!(
        check(&k, &with(json!({"iat": NOW + 1})), &strict, NOW),
        Err("ERR_JWT_IAT_IN_FUTURE")
    );
}

/// `aud: [ours, theirs]`. RFC 7519 §4.1.3 accepts it, and so does a
/// default [`Validation`]; a token good at two services can be replayed by
/// either at the other, so the sole-audience policy (which tessera-verify
/// applies, tessera minting one audience per token) refuses it. An array
/// without us, an empty array, and a non-string member are refused by both.
#[test]
fn audience_array_with_ours_and_others_against_the_policy() {
    let k = keys();
    let rfc = validation();
    let sole = validation().sole_audience();
    let shared = with(json!({"aud": [API, "https://other.example.com"]}));
    assert_eq!(check(&k, &shared, &rfc, NOW), Ok(()));
    assert_eq!(
        check(&k, &shared, &sole, NOW),
        Err("ERR_JWT_WRONG_AUDIENCE")
    );
    // Only us, as a string or a one-element array: accepted by both.
    for ok in [with(json!({"aud": API})), with(json!({"aud": [API]}))] {
        assert_eq!(check(&k, &ok, &rfc, NOW), Ok(()));
        assert_eq!(check(&k, &ok, &sole, NOW), Ok(()));
    }
    // A validation that accepts two audiences, given a token naming both.
    let both = validation()
        .audience("https://api2.example.com")
        .sole_audience();
    let two = with(json!({"aud": [API, "https://api2.example.com"]}));
    assert_eq!(check(&k, &two, &both, NOW), Ok(()));
    for (claims, code) in [
        (
            with(json!({"aud": ["https://other.example.com"]})),
            "ERR_JWT_WRONG_AUDIENCE",
        ),
        (with(json!({"aud": []})), "ERR_JWT_WRONG_AUDIENCE"),
        (with(json!({"aud": [API, 7]})), "ERR_JWT_CLAIM_INVALID"),
        (with(json!({"aud": {"0": API}})), "ERR_JWT_CLAIM_INVALID"),
        (
            with(json!({"aud": format!("{API} ")})),
            "ERR_JWT_WRONG_AUDIENCE",
        ),
        (
            with(json!({"aud": API.to_uppercase()})),
            "ERR_JWT_WRONG_AUDIENCE",
        ),
    ] {
        for v in [&rfc, &sole] {
            assert_eq!(check(&k, &claims, v, NOW), Err(code), "{claims}");
        }
    }
}

/// A claim written twice means two parsers may read two different values
/// (`{"sub":"user-1","sub":"admin"}`): refused, at any depth, before any
/// claim is looked at.
#[test]
fn duplicate_claims_are_refused() {
    let k = keys();
    for payload in [
        format!(
            r#"{{"iss":"{ISS}","aud":"{API}","exp":{},"sub":"user-1","sub":"admin"}}"#,
            NOW + 300
        ),
        format!(
            r#"{{"iss":"{ISS}","aud":"{API}","exp":{},"exp":{}}}"#,
            NOW - 1000,
            NOW + 300
        ),
        format!(
            r#"{{"iss":"{ISS}","aud":"{API}","aud":"https://other","exp":{}}}"#,
            NOW + 300
        ),
        format!(
            r#"{{"iss":"{ISS}","aud":"{API}","exp":{},"roles":{{"a":1,"a":2}}}}"#,
            NOW + 300
        ),
    ] {
        let token = sign_raw(&k, payload.as_bytes());
        let e =
            jwt::verify::<Value>(&token, &k.verifier, &validation(), &FixedClock(NOW)).unwrap_err();
        assert_eq!(e.code(), "ERR_JSON_DUPLICATE_MEMBER", "{payload}");
    }
}

/// A megabyte of claims, or claims nested 10,000 deep, is refused with a
/// typed error (never a stack overflow), and so is a payload that is not a
/// JSON object.
#[test]
fn huge_deep_and_non_object_claims_are_refused() {
    let k = keys();
    let v = validation();
    let mut deep = String::new();
    for _ in 0..10_000 {
        deep.push('[');
    }
    for _ in 0..10_000 {
        deep.push(']');
    }
    let huge = format!(
        r#"{{"iss":"{ISS}","aud":"{API}","exp":{},"pad":"{}"}}"#,
        NOW + 300,
        "x".repeat(1 << 20)
    );
    let nested = format!(
        r#"{{"iss":"{ISS}","aud":"{API}","exp":{},"deep":{deep}}}"#,
        NOW + 300
    );
    for (what, payload, codes) in [
        ("1 MiB", huge, &["ERR_TOO_LARGE"][..]),
        ("10,000 deep", nested, &["ERR_JSON_TOO_DEEP"][..]),
        (
            "array",
            "[1,2,3]".to_owned(),
            &["ERR_JSON", "ERR_JWT_CLAIM_INVALID"][..],
        ),
        (
            "string",
            "\"claims\"".to_owned(),
            &["ERR_JSON", "ERR_JWT_CLAIM_INVALID"][..],
        ),
        ("not JSON", "sub=admin".to_owned(), &["ERR_JSON"][..]),
        (
            "invalid UTF-8",
            "{\"sub\":\"\u{fffd}\"}".to_owned(),
            &["ERR_JWT_CLAIM_MISSING"][..],
        ),
    ] {
        let token = sign_raw(&k, payload.as_bytes());
        let e = jwt::verify::<Value>(&token, &k.verifier, &v, &FixedClock(NOW)).unwrap_err();
        assert!(codes.contains(&e.code()), "{what}: {}", e.code());
    }
    // Raw invalid UTF-8 bytes in the payload.
    let protected = ProtectedHeader::from_json(br#"{"alg":"ES256","typ":"at+jwt"}"#).unwrap();
    let token = k
        .signer
        .sign_compact_with(&protected, b"{\"sub\":\"\xff\xfe\"}")
        .unwrap();
    assert!(jwt::verify::<Value>(&token, &k.verifier, &v, &FixedClock(NOW)).is_err());
    // A header `typ` that is not ours, on otherwise perfect claims.
    let token = k
        .signer
        .sign_compact(&JwsHeader::new().typ("JWT"), base().to_string().as_bytes())
        .unwrap();
    assert_eq!(
        jwt::verify::<Value>(&token, &k.verifier, &v, &FixedClock(NOW))
            .unwrap_err()
            .code(),
        "ERR_JWS_UNEXPECTED_TYP"
    );
}
