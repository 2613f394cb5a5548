//! JWT claims validation (RFC 7519, RFC 8725, RFC 9068), with a fixed clock.

use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_jose::jwa::JwsAlgorithm;
use tessera_jose::jws::{JwsHeader, Signer, Verifier};
use tessera_jose::jwt::{self, Claims, FixedClock, Validation};

use crate::support::key_for;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Session {
    org: String,
    roles: Vec<String>,
    amr: Vec<String>,
}

const NOW: i64 = 1_800_000_000;

struct Env {
    signer: Signer,
    verifier: Verifier,
}

fn env() -> Env {
    let key = key_for(JwsAlgorithm::RS256);
    Env {
        signer: Signer::new(&key, JwsAlgorithm::RS256).unwrap(),
        verifier: Verifier::builder()
            .key(&key.to_public().unwrap(), &[JwsAlgorithm::RS256])
            .unwrap()
            .build()
            .unwrap(),
    }
}

fn claims() -> Claims<Session> {
    Claims::new(Session {
        org: "acme".into(),
        roles: vec!["admin".into(), "dev".into()],
        amr: vec!["pwd".into()],
    })
    .issuer("https://issuer.example")
    .subject("user-1")
    .audience("api")
    .issued_at(NOW)
    .expires_at(NOW + 300)
}

fn validation() -> Validation {
    Validation::new()
        .issuer("https://issuer.example")
        .audience("api")
}

fn check(
    env: &Env,
    c: &Claims<Session>,
    v: &Validation,
    at: i64,
) -> Result<Claims<Session>, String> {
    let token = jwt::sign(&env.signer, &JwsHeader::new().typ("at+jwt"), c).unwrap();
    jwt::verify::<Session>(&token, &env.verifier, v, &FixedClock(at))
        .map(|ok| ok.into_claims())
        .map_err(|e| e.code().to_owned())
}

#[test]
fn valid_token_yields_typed_claims() {
    let env = env();
    let got = check(&env, &claims(), &validation().typ("at+jwt"), NOW + 10).unwrap();
    assert_eq!(got, claims());
    // Default typ is JWT when the header sets none.
    let token = jwt::sign(&env.signer, &JwsHeader::new(), &claims()).unwrap();
    let ok = jwt::verify::<Session>(
        &token,
        &env.verifier,
        &validation().typ("JWT"),
        &FixedClock(NOW),
    )
    .unwrap();
    assert_eq!(ok.header().typ(), Some("JWT"));
}

#[test]
fn time_claims_with_leeway() {
    let env = env();
    let v = validation();
    // exp: valid until exp + leeway (60 s by default), then expired.
    assert!(check(&env, &claims(), &v, NOW + 359).is_ok());
    assert_eq!(
        check(&env, &claims(), &v, NOW + 360).unwrap_err(),
        "ERR_JWT_EXPIRED"
    );
    assert_eq!(
        check(&env, &claims(), &v.clone().leeway(0), NOW + 300).unwrap_err(),
        "ERR_JWT_EXPIRED"
    );
    // nbf in the future.
    let c = claims().not_before(NOW + 100);
    assert_eq!(
        check(&env, &c, &v, NOW).unwrap_err(),
        "ERR_JWT_NOT_YET_VALID"
    );
    assert!(check(&env, &c, &v, NOW + 41).is_ok());
    // iat in the future beyond leeway.
    let c = claims().issued_at(NOW + 61);
    assert_eq!(
        check(&env, &c, &v, NOW).unwrap_err(),
        "ERR_JWT_IAT_IN_FUTURE"
    );
    // Maximum age.
    let v_age = validation().max_age(120);
    assert!(check(&env, &claims(), &v_age, NOW + 180).is_ok());
    assert_eq!(
        check(&env, &claims(), &v_age, NOW + 181).unwrap_err(),
        "ERR_JWT_TOO_OLD"
    );
    let mut no_iat = claims();
    no_iat.iat = None;
    assert_eq!(
        check(&env, &no_iat, &v_age, NOW).unwrap_err(),
        "ERR_JWT_CLAIM_MISSING"
    );
}

#[test]
fn exp_is_required_by_default() {
    let env = env();
    let mut c = claims();
    c.exp = None;
    assert_eq!(
        check(&env, &c, &validation(), NOW).unwrap_err(),
        "ERR_JWT_CLAIM_MISSING"
    );
    assert!(check(&env, &c, &validation().allow_missing_exp(), NOW).is_ok());
    assert_eq!(
        check(&env, &claims(), &validation().require("jti"), NOW).unwrap_err(),
        "ERR_JWT_CLAIM_MISSING"
    );
}

#[test]
fn issuer_and_audience() {
    let env = env();
    assert_eq!(
        check(
            &env,
            &claims().issuer("https://evil.example"),
            &validation(),
            NOW
        )
        .unwrap_err(),
        "ERR_JWT_WRONG_ISSUER"
    );
    let mut no_iss = claims();
    no_iss.iss = None;
    assert_eq!(
        check(&env, &no_iss, &validation(), NOW).unwrap_err(),
        "ERR_JWT_CLAIM_MISSING"
    );
    assert_eq!(
        check(&env, &claims().audience("other-api"), &validation(), NOW).unwrap_err(),
        "ERR_JWT_WRONG_AUDIENCE"
    );
    // aud as an array: one match is enough.
    assert!(check(&env, &claims().audiences(&["x", "api"]), &validation(), NOW).is_ok());
    assert_eq!(
        check(&env, &claims().audiences(&["x", "y"]), &validation(), NOW).unwrap_err(),
        "ERR_JWT_WRONG_AUDIENCE"
    );
    // RFC 7519 §4.1.3: a token with aud is refused by a validator expecting none.
    let no_aud_expected = Validation::new().issuer("https://issuer.example");
    assert_eq!(
        check(&env, &claims(), &no_aud_expected, NOW).unwrap_err(),
        "ERR_JWT_WRONG_AUDIENCE"
    );
    // Several accepted issuers.
    let two = Validation::new()
        .issuer("https://a.example")
        .issuer("https://issuer.example")
        .audience("api");
    assert!(check(&env, &claims(), &two, NOW).is_ok());
}

#[test]
fn wrong_typ_is_refused() {
    let env = env();
    let token = jwt::sign(&env.signer, &JwsHeader::new().typ("JWT"), &claims()).unwrap();
    let e = jwt::verify::<Session>(
        &token,
        &env.verifier,
        &validation().typ("at+jwt"),
        &FixedClock(NOW),
    )
    .unwrap_err();
    assert_eq!(e.code(), "ERR_JWS_UNEXPECTED_TYP");
}

#[test]
fn malformed_claims_are_refused() {
    let env = env();
    let sign_raw = |payload: &str| {
        env.signer
            .sign_compact(&JwsHeader::new(), payload.as_bytes())
            .unwrap()
    };
    let v = validation();
    for (payload, code) in [
        (r#"{"exp":1800000300,"exp":1}"#, "ERR_JSON_DUPLICATE_MEMBER"),
        (
            r#"{"exp":"1800000300","iss":"https://issuer.example","aud":"api"}"#,
            "ERR_JWT_CLAIM_INVALID",
        ),
        (
            r#"{"exp":1800000300,"iss":7,"aud":"api"}"#,
            "ERR_JWT_CLAIM_INVALID",
        ),
        (
            r#"{"exp":1800000300,"iss":"https://issuer.example","aud":[1]}"#,
            "ERR_JWT_CLAIM_INVALID",
        ),
        (r#"[1,2]"#, "ERR_JSON"),
        (r#"not json"#, "ERR_JSON"),
        // The custom part must fit the caller's type.
        (
            r#"{"exp":1800000300,"iss":"https://issuer.example","aud":"api","org":1}"#,
            "ERR_JWT_CLAIM_INVALID",
        ),
    ] {
        let token = sign_raw(payload);
        let e = jwt::verify::<Session>(&token, &env.verifier, &v, &FixedClock(NOW)).unwrap_err();
        assert_eq!(e.code(), code, "{payload}");
    }
    // Non-integer NumericDate is accepted (RFC 7519 §2) and floored.
    let token = sign_raw(
        &json!({"exp": 1800000300.9, "iss": "https://issuer.example", "aud": "api",
        "org": "acme", "roles": [], "amr": []})
        .to_string(),
    );
    let ok = jwt::verify::<Session>(&token, &env.verifier, &v, &FixedClock(NOW)).unwrap();
    assert_eq!(ok.claims().exp, Some(1_800_000_300));
}

#[test]
fn signature_is_checked_before_claims() {
    let env = env();
    let other = key_for(JwsAlgorithm::ES256);
    let forged = jwt::sign(
        &Signer::new(&other, JwsAlgorithm::ES256).unwrap(),
        &JwsHeader::new(),
        &claims(),
    )
    .unwrap();
    let e = jwt::verify::<Session>(&forged, &env.verifier, &validation(), &FixedClock(NOW))
        .unwrap_err();
    assert_eq!(e.code(), "ERR_JWS_ALG_NOT_ALLOWED");
}

#[test]
fn a_claim_cannot_be_written_twice() {
    // A custom struct that repeats a registered claim would produce duplicate
    // members; signing refuses instead of minting a token parsers disagree on.
    #[derive(Serialize)]
    struct Sneaky {
        exp: i64,
    }
    let env = env();
    let claims = Claims::new(Sneaky { exp: 4_000_000_000 }).expires_at(NOW + 60);
    let e = jwt::sign(&env.signer, &JwsHeader::new(), &claims).unwrap_err();
    assert_eq!(e.code(), "ERR_JWT_CLAIM_INVALID");
    // Without the clash it signs, and nested objects may reuse names freely.
    let ok =
        Claims::new(json!({"exp_hint": 1, "nested": {"exp": 2, "iss": "x"}})).expires_at(NOW + 60);
    assert!(jwt::sign(&env.signer, &JwsHeader::new(), &ok).is_ok());
}

/// The same claims under a JSON serialization verify and validate alike.
#[test]
fn json_serialized_jwt() {
    use tessera_jose::jws::{sign_general, GeneralSignature, SignaturePolicy};
    let env = env();
    let c = claims();
    let payload = serde_json::to_vec(&c).unwrap();
    let flattened = env
        .signer
        .sign_flattened(&JwsHeader::new().typ("JWT"), None, &payload)
        .unwrap();
    let ok = jwt::verify_json::<Session>(
        &flattened,
        &env.verifier,
        SignaturePolicy::Any,
        &validation(),
        &FixedClock(NOW),
    )
    .unwrap();
    assert_eq!(ok.claims().custom.org, "acme");
    let stranger = Signer::new(&key_for(JwsAlgorithm::ES256), JwsAlgorithm::ES256).unwrap();
    let general = sign_general(
        &payload,
        &[
            GeneralSignature {
                signer: &stranger,
                protected: Some(stranger.protect(&JwsHeader::new())),
                unprotected: None,
            },
            GeneralSignature {
                signer: &env.signer,
                protected: Some(env.signer.protect(&JwsHeader::new())),
                unprotected: None,
            },
        ],
    )
    .unwrap();
    let at = |policy, t| {
        jwt::verify_json::<Session>(
            &general,
            &env.verifier,
            policy,
            &validation(),
            &FixedClock(t),
        )
        .map(|_| ())
        .map_err(|e| e.code())
    };
    assert_eq!(at(SignaturePolicy::Any, NOW), Ok(()));
    assert!(at(SignaturePolicy::All, NOW).is_err());
    assert_eq!(
        at(SignaturePolicy::Any, NOW + 10_000),
        Err("ERR_JWT_EXPIRED")
    );
    // The JSON form is unverified-readable too, for inspection tools.
    let parts = tessera_jose::danger::decode_unverified_json(&general).unwrap();
    assert_eq!(parts.signatures.len(), 2);
    assert_eq!(parts.payload.as_deref(), Some(payload.as_slice()));
}
