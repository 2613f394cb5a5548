//! Keys that others register (a `private_key_jwt` client's JWKS, a
//! partner's JWKS) and that must not be accepted: small-order and
//! non-canonical Curve25519 public keys, RSA exponents below 65537; and a
//! symmetric key's thumbprint, which is a hash of the secret. (Findings 2,
//! 6 and 7 of the expert review of tessera-jose.)

use serde_json::json;
use tessera_jose::b64;
use tessera_jose::jwa::{JweAlgorithm, JweEncryption, JwsAlgorithm};
use tessera_jose::jwk::{Jwk, JwkSet};
use tessera_jose::jws::{SignaturePolicy, Verifier};

fn okp(crv: &str, x: &[u8]) -> Vec<u8> {
    json!({"kty": "OKP", "crv": crv, "x": b64::encode(x)})
        .to_string()
        .into_bytes()
}

/// p = 2^255 − 19, little-endian, plus `delta` on the lowest byte.
fn p_plus(delta: u8) -> [u8; 32] {
    let mut p = [0xff; 32];
    p[0] = 0xed + delta;
    p[31] = 0x7f;
    p
}

/// Finding 2: under the Ed25519 public key "01 ‖ 00×31" (the identity
/// point) the signature R = identity, S = 0 verifies for every payload —
/// universal forgery for whoever registers that key. The eight small-order
/// points, and non-canonical spellings, are refused at import: as a single
/// JWK, in a JWK Set (left out, with the reason), so no verifier ever holds
/// one. X25519's small-order keys likewise.
#[test]
fn small_order_and_non_canonical_curve25519_keys_are_refused_at_import() {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut minus_one = p_plus(0);
    minus_one[0] = 0xec;
    let mut identity_negative_zero = identity;
    identity_negative_zero[31] = 0x80;
    let order_8 = b64::decode("JuiVj8KyJ7BFw_SJ8u-Y8NXfrAXTxjM5sTgCiG1T_AU", "x").unwrap();
    let ed25519_bad: Vec<Vec<u8>> = vec![
        identity.to_vec(),
        identity_negative_zero.to_vec(),
        minus_one.to_vec(),
        [0u8; 32].to_vec(),
        order_8,
        p_plus(0).to_vec(), // y = p: 0 spelled non-canonically
        p_plus(1).to_vec(), // y = p + 1: the identity again
        [0xff; 32].to_vec(),
    ];
    for x in &ed25519_bad {
        let refused = Jwk::from_json(&okp("Ed25519", x)).unwrap_err();
        assert_eq!(refused.code(), "ERR_KEY_TOO_WEAK", "{x:02x?}");
        assert!(refused.to_string().contains("small-order"), "{refused}");
    }
    // In a JWK Set beside a good key: the bad one is left out, and said why.
    let good = Jwk::generate_for(JwsAlgorithm::EdDSA).unwrap();
    let set = format!(
        r#"{{"keys":[{},{}]}}"#,
        good.to_public().unwrap().to_json(),
        String::from_utf8(okp("Ed25519", &identity)).unwrap()
    );
    let set = JwkSet::from_json(set.as_bytes()).unwrap();
    assert_eq!(set.keys().len(), 1);
    assert_eq!(set.rejected().len(), 1);
    assert_eq!(set.rejected()[0].1.code(), "ERR_KEY_TOO_WEAK");
    // The forgery itself: R = identity, S = 0, any payload. With the key
    // refused there is no verifier to try it on; against the good key it
    // fails, as it must.
    let mut sig = [0u8; 64];
    sig[0] = 1;
    let forged = json!({
        "protected": b64::encode(r#"{"alg":"EdDSA"}"#),
        "payload": b64::encode(r#"{"sub":"admin"}"#),
        "signature": b64::encode(sig),
    })
    .to_string();
    let v = Verifier::builder()
        .jwk_set(&set, &[JwsAlgorithm::EdDSA])
        .unwrap()
        .build()
        .unwrap();
    assert!(v.verify_json(&forged, SignaturePolicy::All).is_err());

    // X25519: u = 0, 1, p − 1 (small order), p, p + 1 (non-canonical), and
    // a good key with bit 255 set (the same key spelled twice).
    let x25519 = Jwk::generate_okp(tessera_jose::jwa::OkpCurve::X25519).unwrap();
    let public: serde_json::Value =
        serde_json::from_str(&x25519.to_public().unwrap().to_json()).unwrap();
    let mut top_bit = b64::decode(public["x"].as_str().unwrap(), "x").unwrap();
    assert!(Jwk::from_json(&okp("X25519", &top_bit)).is_ok());
    top_bit[31] |= 0x80;
    for x in [
        [0u8; 32].to_vec(),
        identity.to_vec(),
        minus_one.to_vec(),
        p_plus(0).to_vec(),
        p_plus(1).to_vec(),
        top_bit,
    ] {
        assert_eq!(
            Jwk::from_json(&okp("X25519", &x)).unwrap_err().code(),
            "ERR_KEY_TOO_WEAK",
            "{x:02x?}"
        );
    }
}

/// Finding 6: the docs promise a sane exponent; e = 3 (and 17, 257) was
/// accepted. Refused at import now: 65537 or more.
#[test]
fn rsa_exponents_below_65537_are_refused() {
    let rsa = Jwk::generate_rsa(2048).unwrap().to_public().unwrap();
    let mut public: serde_json::Value = serde_json::from_str(&rsa.to_json()).unwrap();
    assert_eq!(public["e"], "AQAB");
    assert!(Jwk::from_json(public.to_string().as_bytes()).is_ok());
    for e in [&[3u8][..], &[17], &[1, 1], &[0xff, 0xff]] {
        public["e"] = b64::encode(e).into();
        let refused = Jwk::from_json(public.to_string().as_bytes()).unwrap_err();
        assert_eq!(refused.code(), "ERR_KEY_TOO_WEAK", "{e:?}");
        assert!(refused.to_string().contains("65537"), "{refused}");
    }
    // Above 65537 and odd: accepted (2^32 − 1 is the largest tessera reads).
    for e in [&[1u8, 0, 3][..], &[0xff, 0xff, 0xff, 0xff]] {
        public["e"] = b64::encode(e).into();
        assert!(
            Jwk::from_json(public.to_string().as_bytes()).is_ok(),
            "{e:?}"
        );
    }
}

/// Finding 7: a symmetric key's RFC 7638 thumbprint is an unsalted SHA-256
/// of the secret (§7): printed by `Debug` into a log, or used as the `kid`
/// every token carries, it lets anyone test guesses of a password-derived
/// PBES2 key offline. Neither happens now; public keys keep theirs.
#[test]
fn a_secrets_thumbprint_is_neither_logged_nor_its_kid() {
    let password = Jwk::from_json(br#"{"kty":"oct","k":"Y29ycmVjdCBob3JzZSBiYXR0ZXJ5"}"#).unwrap();
    let generated = [
        Jwk::generate_for(JwsAlgorithm::HS256).unwrap(),
        Jwk::generate_for_encryption(JweAlgorithm::A128KW, JweEncryption::A128GCM).unwrap(),
        Jwk::generate_for_encryption(JweAlgorithm::PBES2_HS256_A128KW, JweEncryption::A128GCM)
            .unwrap(),
        Jwk::generate_for_encryption(JweAlgorithm::Dir, JweEncryption::A256GCM).unwrap(),
    ];
    for key in generated.iter().chain([&password]) {
        let debug = format!("{key:?}");
        assert!(!debug.contains(&key.thumbprint()), "{debug}");
        assert_ne!(key.kid(), Some(key.thumbprint().as_str()));
    }
    // Generated secrets get a random kid: two keys, two kids, neither a hash.
    let again = Jwk::generate_for(JwsAlgorithm::HS256).unwrap();
    assert_ne!(again.kid(), generated[0].kid());
    assert_eq!(again.kid().map(str::len), Some(22));
    let defaulted = password.clone().with_default_kid().unwrap();
    assert_ne!(defaulted.kid(), Some(password.thumbprint().as_str()));
    // A public key's thumbprint is public: shown, and its default kid.
    let es = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
    assert!(format!("{es:?}").contains(&es.thumbprint()));
    assert_eq!(es.kid(), Some(es.thumbprint().as_str()));
}
