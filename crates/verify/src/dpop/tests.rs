use super::*;
use serde_json::json;
use tessera_jose::b64;

// RFC 9449 §4.1, Figure 4 (the key of every example), §6.1 Figure 9 (its
// thumbprint), §7.1 Figures 13–14 (the access token and its `ath`).
const RFC_JWK: &str = r#"{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}"#;
const RFC_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
const RFC_ACCESS_TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
const RFC_ATH: &str = "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo";
// RFC 9449 §4.1, Figure 2: the proof of a token request, made at 1562262616.
const RFC_TOKEN_PROOF: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
// RFC 9449 §7.1, Figure 12: the proof of a protected resource request,
// made at 1562262618, with `ath`.
const RFC_RESOURCE_PROOF: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA";

const URL: &str = "https://auth.example.com/oauth2/token";
const NOW: i64 = 1_800_000_000;

fn request<'a>() -> Request<'a> {
    Request {
        method: "POST",
        url: URL,
        access_token: None,
        nonce: Nonce::NotRequired,
    }
}

fn es256() -> Jwk {
    Jwk::generate_for(JwsAlgorithm::ES256).unwrap()
}

fn good(key: &Jwk) -> String {
    signed(key, JwsAlgorithm::ES256, None, None, NOW)
}

/// A POST proof for [`URL`] with jti `jti-1`, as a client signs one.
fn signed(
    key: &Jwk,
    alg: JwsAlgorithm,
    access_token: Option<&str>,
    nonce: Option<&str>,
    iat: i64,
) -> String {
    sign(
        key,
        alg,
        &NewProof {
            method: "POST",
            url: URL,
            jti: "jti-1",
            iat,
            access_token,
            nonce,
        },
    )
    .unwrap()
}

fn public_jwk(key: &Jwk) -> Value {
    strip_key_metadata(serde_json::from_str(&key.to_public().unwrap().to_json()).unwrap())
}

/// A proof with this header (its `alg` set by the signer: `alg`) and these
/// claims, signed by `key`.
fn craft(key: &Jwk, alg: JwsAlgorithm, header: Value, claims: Value) -> String {
    let mut h = JwsHeader::new();
    for (name, value) in header.as_object().unwrap() {
        if name != "alg" {
            h = h.param(name, value.clone()).unwrap();
        }
    }
    Signer::new(key, alg)
        .unwrap()
        .sign_compact(&h, &serde_json::to_vec(&claims).unwrap())
        .unwrap()
}

/// A proof with exactly this header, whatever its `alg`, and a signature
/// that signs nothing (for checks made before the signature's).
fn unsigned(header: Value, claims: Value) -> String {
    format!(
        "{}.{}.{}",
        b64::encode(serde_json::to_vec(&header).unwrap()),
        b64::encode(serde_json::to_vec(&claims).unwrap()),
        b64::encode([7u8; 64])
    )
}

fn claims() -> Value {
    json!({"jti": "jti-1", "htm": "POST", "htu": URL, "iat": NOW})
}

fn proof_header(key: &Jwk) -> Value {
    json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(key)})
}

fn err(proof: &str, req: &Request<'_>) -> DpopError {
    check(proof, &ProofRules::default(), req, NOW).unwrap_err()
}

#[test]
fn rfc_9449_thumbprint_and_ath() {
    let key = Jwk::from_json(RFC_JWK.as_bytes()).unwrap();
    assert_eq!(key.thumbprint(), RFC_JKT);
    assert_eq!(access_token_hash(RFC_ACCESS_TOKEN), RFC_ATH);
}

#[test]
fn rfc_9449_token_request_proof_verifies_with_a_frozen_clock() {
    let req = Request {
        method: "POST",
        url: "https://server.example.com/token",
        access_token: None,
        nonce: Nonce::NotRequired,
    };
    let p = check(RFC_TOKEN_PROOF, &ProofRules::default(), &req, 1_562_262_616).unwrap();
    assert_eq!(p.jkt, RFC_JKT);
    assert_eq!(p.jti, "-BwC3ESc6acc2lTc");
    assert_eq!(p.iat, 1_562_262_616);
    assert_eq!(p.alg, JwsAlgorithm::ES256);
    // An hour later it is stale.
    assert_eq!(
        check(RFC_TOKEN_PROOF, &ProofRules::default(), &req, 1_562_266_216).unwrap_err(),
        DpopError::Stale
    );
}

#[test]
fn rfc_9449_resource_request_proof_verifies_with_its_access_token() {
    let mut req = Request {
        method: "GET",
        url: "https://resource.example.org/protectedresource",
        access_token: Some(RFC_ACCESS_TOKEN),
        nonce: Nonce::NotRequired,
    };
    let p = check(
        RFC_RESOURCE_PROOF,
        &ProofRules::default(),
        &req,
        1_562_262_618,
    )
    .unwrap();
    assert_eq!(p.jkt, RFC_JKT);
    assert_eq!(p.jti, "e1j3V_bKic8-LAEB");
    req.access_token = Some("another token");
    assert_eq!(
        check(
            RFC_RESOURCE_PROOF,
            &ProofRules::default(),
            &req,
            1_562_262_618
        )
        .unwrap_err(),
        DpopError::Ath
    );
}

#[test]
fn a_good_proof_passes_and_binds_its_key() {
    let key = es256();
    let p = check(&good(&key), &ProofRules::default(), &request(), NOW).unwrap();
    assert_eq!(p.jkt, key.to_public().unwrap().thumbprint());
    assert_eq!(p.jti, "jti-1");
    assert!(!p.key.is_private());
}

#[test]
fn every_algorithm_of_the_default_list_signs_and_verifies() {
    for alg in DEFAULT_ALGORITHMS {
        let key = Jwk::generate_for(alg).unwrap();
        let proof = signed(&key, alg, None, None, NOW);
        let p = check(&proof, &ProofRules::default(), &request(), NOW).unwrap();
        assert_eq!(p.alg, alg);
    }
}

/// A header whose proof verified is remembered (its checks and its key's
/// import are not repeated): what it spares must not change any answer.
#[test]
fn a_remembered_header_still_answers_to_each_callers_rules_and_signature() {
    let key = es256();
    let first = good(&key);
    check(&first, &ProofRules::default(), &request(), NOW).unwrap();
    // The same header bytes under rules without ES256: refused.
    let eddsa_only = ProofRules::new(&[JwsAlgorithm::EdDSA], DEFAULT_MAX_AGE).unwrap();
    assert_eq!(
        check(&first, &eddsa_only, &request(), NOW).unwrap_err(),
        DpopError::Algorithm("ES256".into())
    );
    // The same header with another payload and the first proof's signature.
    let mut parts = first.split('.');
    let (header, _, signature) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let claims = json!({"jti": "jti-2", "htm": "POST", "htu": URL, "iat": NOW});
    let forged = format!(
        "{header}.{}.{signature}",
        b64::encode(serde_json::to_vec(&claims).unwrap())
    );
    assert_eq!(err(&forged, &request()), DpopError::Signature);
    // Or with a fourth segment, or an empty header.
    assert!(matches!(
        err(&format!("{first}.x"), &request()),
        DpopError::Malformed(_)
    ));
    assert!(matches!(
        err(&first[header.len()..], &request()),
        DpopError::Malformed(_)
    ));
    // Another key's proof with the remembered header: its signature is not
    // the remembered key's.
    let other = signed(&es256(), JwsAlgorithm::ES256, None, None, NOW);
    let other_tail = &other[other.find('.').unwrap()..];
    assert_eq!(
        err(&format!("{header}{other_tail}"), &request()),
        DpopError::Signature
    );
    // And the claims are still checked on every proof.
    let late = signed(&key, JwsAlgorithm::ES256, None, None, NOW - 3600);
    assert_eq!(err(&late, &request()), DpopError::Stale);
}

#[test]
fn header_failures_each_have_their_own_error() {
    let key = es256();
    let c = claims();
    // typ: missing, wrong.
    let mut h = proof_header(&key);
    h.as_object_mut().unwrap().remove("typ");
    assert_eq!(
        err(&craft(&key, JwsAlgorithm::ES256, h, c.clone()), &request()),
        DpopError::Typ
    );
    let mut h = proof_header(&key);
    h["typ"] = json!("jwt");
    assert_eq!(
        err(&craft(&key, JwsAlgorithm::ES256, h, c.clone()), &request()),
        DpopError::Typ
    );
    // alg: missing, none, a MAC, one not allowed.
    let mut h = proof_header(&key);
    h.as_object_mut().unwrap().remove("alg");
    assert!(matches!(
        err(&unsigned(h, c.clone()), &request()),
        DpopError::Algorithm(_)
    ));
    let mut h = proof_header(&key);
    h["alg"] = json!("none");
    assert_eq!(
        err(&unsigned(h.clone(), c.clone()), &request()),
        DpopError::Algorithm("none".into())
    );
    let none = unsigned(h, c.clone());
    let (hp, _) = none.rsplit_once('.').unwrap();
    assert_eq!(
        err(&format!("{hp}."), &request()),
        DpopError::Algorithm("none".into())
    );
    let mac = Jwk::generate_for(JwsAlgorithm::HS256).unwrap();
    let h = json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": "AAAA"}});
    assert_eq!(
        err(&craft(&mac, JwsAlgorithm::HS256, h, c.clone()), &request()),
        DpopError::Algorithm("HS256".into())
    );
    let only_eddsa = ProofRules::new(&[JwsAlgorithm::EdDSA], DEFAULT_MAX_AGE).unwrap();
    assert_eq!(
        check(&good(&key), &only_eddsa, &request(), NOW).unwrap_err(),
        DpopError::Algorithm("ES256".into())
    );
    // jwk: missing, private.
    let mut h = proof_header(&key);
    h.as_object_mut().unwrap().remove("jwk");
    assert_eq!(
        err(&craft(&key, JwsAlgorithm::ES256, h, c.clone()), &request()),
        DpopError::NoKey
    );
    let private: Value = serde_json::from_str(&key.to_private_json()).unwrap();
    let mut h = proof_header(&key);
    h["jwk"] = private;
    assert_eq!(
        err(&craft(&key, JwsAlgorithm::ES256, h, c.clone()), &request()),
        DpopError::PrivateKey
    );
    // The signature: made by another key than the jwk's; or altered.
    let other = es256();
    assert_eq!(
        err(
            &craft(&other, JwsAlgorithm::ES256, proof_header(&key), c.clone()),
            &request()
        ),
        DpopError::Signature
    );
    let proof = good(&key);
    let (hp, sig) = proof.rsplit_once('.').unwrap();
    let mut sig = b64::decode(sig, "signature").unwrap();
    sig[5] ^= 1;
    assert_eq!(
        err(&format!("{hp}.{}", b64::encode(sig)), &request()),
        DpopError::Signature
    );
    // Not a JWS at all; too large.
    assert!(matches!(err("a.b", &request()), DpopError::Malformed(_)));
    assert_eq!(
        err(&"a".repeat(MAX_PROOF_BYTES + 1), &request()),
        DpopError::TooLarge
    );
    // A MAC cannot be configured.
    assert!(ProofRules::new(&[JwsAlgorithm::HS256], DEFAULT_MAX_AGE).is_err());
    assert!(ProofRules::new(&[], DEFAULT_MAX_AGE).is_err());
}

#[test]
fn claim_failures_each_have_their_own_error() {
    let key = es256();
    let h = proof_header(&key);
    for name in ["jti", "htm", "htu", "iat"] {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(name);
        assert_eq!(
            err(&craft(&key, JwsAlgorithm::ES256, h.clone(), c), &request()),
            DpopError::Claim(name),
            "{name}"
        );
    }
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims();
        f(&mut c);
        craft(&key, JwsAlgorithm::ES256, h.clone(), c)
    };
    assert_eq!(
        err(
            &with(&|c| c["jti"] = json!("x".repeat(MAX_JTI_BYTES + 1))),
            &request()
        ),
        DpopError::Claim("jti")
    );
    assert_eq!(
        err(&with(&|c| c["iat"] = json!("1800000000")), &request()),
        DpopError::Claim("iat")
    );
    assert_eq!(
        err(&with(&|c| c["htm"] = json!("GET")), &request()),
        DpopError::Htm
    );
    assert_eq!(
        err(&with(&|c| c["htm"] = json!("post")), &request()),
        DpopError::Htm
    );
    // Another path, host, scheme or port.
    for htu in [
        "https://auth.example.com/oauth2/introspect",
        "https://evil.example.com/oauth2/token",
        "http://auth.example.com/oauth2/token",
        "https://auth.example.com:8443/oauth2/token",
    ] {
        assert_eq!(
            err(&with(&|c| c["htu"] = json!(htu)), &request()),
            DpopError::Htu,
            "{htu}"
        );
    }
    // iat: ±1 h refused; the edges of the window.
    assert_eq!(
        err(&with(&|c| c["iat"] = json!(NOW - 3600)), &request()),
        DpopError::Stale
    );
    assert_eq!(
        err(&with(&|c| c["iat"] = json!(NOW + 3600)), &request()),
        DpopError::Future
    );
    assert_eq!(
        err(&with(&|c| c["iat"] = json!(NOW - 61)), &request()),
        DpopError::Stale
    );
    assert_eq!(
        err(
            &with(&|c| c["iat"] = json!(NOW + MAX_FUTURE + 1)),
            &request()
        ),
        DpopError::Future
    );
    let rules = ProofRules::default();
    for ok in [NOW - 60, NOW + MAX_FUTURE] {
        assert!(check(&with(&|c| c["iat"] = json!(ok)), &rules, &request(), NOW).is_ok());
    }
}

#[test]
fn what_must_be_accepted_is() {
    let key = es256();
    let h = proof_header(&key);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims();
        f(&mut c);
        craft(&key, JwsAlgorithm::ES256, h.clone(), c)
    };
    let rules = ProofRules::default();
    // htu with a query or a fragment; scheme and host in capitals; the
    // default port written out.
    for htu in [
        "https://auth.example.com/oauth2/token?x=1",
        "https://auth.example.com/oauth2/token#f",
        "HTTPS://AUTH.EXAMPLE.COM/oauth2/token",
        "https://auth.example.com:443/oauth2/token",
    ] {
        let proof = with(&|c| c["htu"] = json!(htu));
        assert!(check(&proof, &rules, &request(), NOW).is_ok(), "{htu}");
    }
    // Extra claims; a fractional iat; application/dpop+jwt as typ.
    let proof = with(&|c| {
        c["extra"] = json!({"a": [1, 2]});
        c["iat"] = json!(NOW as f64 + 0.5);
    });
    assert!(check(&proof, &rules, &request(), NOW).is_ok());
    let mut h2 = proof_header(&key);
    h2["typ"] = json!("DPoP+JWT");
    assert!(check(
        &craft(&key, JwsAlgorithm::ES256, h2, claims()),
        &rules,
        &request(),
        NOW
    )
    .is_ok());
}

#[test]
fn ath_is_required_with_an_access_token() {
    let key = es256();
    let token = "an.access.token";
    let req = Request {
        access_token: Some(token),
        ..request()
    };
    let sign_with = |t: Option<&str>| signed(&key, JwsAlgorithm::ES256, t, None, NOW);
    assert!(check(&sign_with(Some(token)), &ProofRules::default(), &req, NOW).is_ok());
    assert_eq!(err(&sign_with(None), &req), DpopError::Ath);
    assert_eq!(err(&sign_with(Some("another")), &req), DpopError::Ath);
}

#[test]
fn nonces_when_required() {
    let key = es256();
    let valid = |n: &str| n == "fresh";
    let req = Request {
        nonce: Nonce::Required(&valid),
        ..request()
    };
    let proof = |nonce: Option<&str>, iat: i64| signed(&key, JwsAlgorithm::ES256, None, nonce, iat);
    assert_eq!(err(&proof(None, NOW), &req), DpopError::UseNonce);
    assert_eq!(err(&proof(Some("stale"), NOW), &req), DpopError::UseNonce);
    assert!(check(
        &proof(Some("fresh"), NOW),
        &ProofRules::default(),
        &req,
        NOW
    )
    .is_ok());
    // With nonces on, a clock out of the window is healed by a nonce.
    assert_eq!(
        err(&proof(Some("fresh"), NOW - 3600), &req),
        DpopError::UseNonce
    );
    assert_eq!(
        err(&proof(Some("fresh"), NOW + 3600), &req),
        DpopError::UseNonce
    );
    assert_eq!(DpopError::UseNonce.code(), "use_dpop_nonce");
    // Without nonces required, one sent is ignored.
    assert!(check(
        &proof(Some("whatever"), NOW),
        &ProofRules::default(),
        &request(),
        NOW
    )
    .is_ok());
}

#[tokio::test]
async fn a_proof_is_accepted_once() {
    let key = es256();
    let rules = ProofRules::default();
    let cache = MemoryReplayCache::new(2);
    let p = check(&good(&key), &rules, &request(), NOW).unwrap();
    p.record(&cache, &rules, NOW).await.unwrap();
    assert_eq!(
        p.record(&cache, &rules, NOW + 1).await.unwrap_err(),
        DpopError::Replayed
    );
    // Remembered as long as it could be accepted, then forgotten.
    let until = p.remember_until(&rules);
    assert_eq!(until, NOW + 60);
    assert_eq!(
        p.record(&cache, &rules, until).await.unwrap_err(),
        DpopError::Replayed
    );
    p.record(&cache, &rules, until + 1).await.unwrap();
    // Full of live proofs: refused, not forgotten.
    let key2 = es256();
    let p2 = check(&good(&key2), &rules, &request(), NOW).unwrap();
    p2.record(&cache, &rules, NOW).await.unwrap();
    let p3 = check(&good(&es256()), &rules, &request(), NOW).unwrap();
    assert_eq!(
        p3.record(&cache, &rules, NOW).await.unwrap_err(),
        DpopError::ReplayUnavailable
    );
    assert_eq!(
        p2.record(&cache, &rules, NOW).await.unwrap_err(),
        DpopError::Replayed
    );
    assert_eq!(cache.len(), 2);
    // The same jti under another key is another proof.
    assert_ne!(replay_key(&p.jkt, "j"), replay_key(&p2.jkt, "j"));
}

#[test]
fn the_dpop_header_is_one_value() {
    use axum::http::{HeaderMap, HeaderValue};
    let mut h = HeaderMap::new();
    assert_eq!(super::header(&h), Ok(None));
    h.insert("DPoP", HeaderValue::from_static("a.b.c"));
    assert_eq!(super::header(&h), Ok(Some("a.b.c")));
    h.append("dpop", HeaderValue::from_static("d.e.f"));
    assert_eq!(super::header(&h), Err(DpopError::Multiple));
    let mut h = HeaderMap::new();
    h.insert("dpop", HeaderValue::from_static("a.b.c, d.e.f"));
    assert_eq!(super::header(&h), Err(DpopError::Multiple));
    let mut h = HeaderMap::new();
    h.insert(
        "dpop",
        HeaderValue::from_str(&"a".repeat(MAX_PROOF_BYTES + 1)).unwrap(),
    );
    assert_eq!(super::header(&h), Err(DpopError::TooLarge));
}

#[test]
fn server_nonces_live_two_to_three_minutes_under_their_key_only() {
    assert!(Nonces::new(&[1u8; 31]).is_err(), "a short key");
    let n = Nonces::new(&[1u8; 32]).unwrap();
    let other = Nonces::new(&[2u8; 32]).unwrap();
    let t = 1_800_000_000 - 1_800_000_000 % NONCE_PERIOD; // a bucket's start
    let nonce = n.issue(t);
    for later in [0, 59, 60, 119, 179] {
        assert!(n.accepts(&nonce, t + later), "{later} s later");
    }
    assert!(!n.accepts(&nonce, t + 180), "three buckets on");
    assert!(
        n.accepts(&nonce, t - 60),
        "a node whose clock is a minute behind"
    );
    assert!(!n.accepts(&nonce, t - 61));
    assert!(!other.accepts(&nonce, t), "another key's nonce");
    let cut = nonce.get(..nonce.len() - 2).unwrap();
    for bad in ["", "AAAA", "not base64!", cut] {
        assert!(!n.accepts(bad, t), "{bad:?}");
    }
    assert!(format!("{n:?}").contains(".."), "no key in Debug");
}
