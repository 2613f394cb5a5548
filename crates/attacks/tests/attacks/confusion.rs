//! Confusion attacks: a public key used as an HMAC secret, a JWE handed to a
//! JWS verifier (and back), `kid` values written to escape into a file
//! system, a database or a shell, and `b64: false` slipped past a verifier.

use aws_lc_rs::hmac;
use serde_json::json;
use tessera_jose::b64;
use tessera_jose::jwa::{JweAlgorithm, JweEncryption, JwsAlgorithm};
use tessera_jose::jwe::{Decrypter, Encrypter, JweHeader};
use tessera_jose::jwk::{Jwk, JwkSet, KeyFormat};
use tessera_jose::jws::{JwsHeader, SignaturePolicy, Signer, Verifier};
use tessera_jose::jwt::{self, FixedClock, Validation};

use crate::support::{key_for, verifier};

/// A compact JWS over `payload` (base64url-encoded unless the header says
/// `b64: false`) with `header`, MACed with `secret` by the HMAC its `alg`
/// names: made by hand, as an attacker would, with no check on the key.
fn hmac_jws(header: &serde_json::Value, payload: &[u8], secret: &[u8]) -> String {
    let algorithm = match header["alg"].as_str() {
        Some("HS384") => hmac::HMAC_SHA384,
        Some("HS512") => hmac::HMAC_SHA512,
        _ => hmac::HMAC_SHA256,
    };
    let protected = b64::encode(header.to_string());
    let payload = if header["b64"] == json!(false) {
        String::from_utf8(payload.to_vec()).unwrap()
    } else {
        b64::encode(payload)
    };
    let input = format!("{protected}.{payload}");
    let tag = hmac::sign(&hmac::Key::new(algorithm, secret), input.as_bytes());
    format!("{input}.{}", b64::encode(tag.as_ref()))
}

/// The classic forgery: a verifier holds an RSA, EC or OKP public key, and
/// the attacker MACs a token with HS256/384/512 keyed by that public key's
/// JWK, PEM (SPKI, and PKCS#1 for RSA) or DER form, hoping the verifier
/// takes the header's `alg` and the key's bytes. Every family, every form.
#[test]
fn public_keys_as_hmac_secrets_are_refused() {
    for alg in [
        JwsAlgorithm::RS256,
        JwsAlgorithm::PS256,
        JwsAlgorithm::ES256,
        JwsAlgorithm::ES384,
        JwsAlgorithm::ES512,
        JwsAlgorithm::EdDSA,
    ] {
        let public = key_for(alg).to_public().unwrap().with_kid("victim");
        let v = Verifier::builder()
            .jwk_set(&JwkSet::new(vec![public.clone()]), &[alg])
            .unwrap()
            .build()
            .unwrap();
        let pem = public.to_pem(KeyFormat::Spki).unwrap();
        let der = public.to_der(KeyFormat::Spki).unwrap();
        let jwk = public.to_json();
        let pkcs1 = public
            .to_pem(KeyFormat::Pkcs1)
            .map(|p| p.as_bytes().to_vec())
            .unwrap_or_default();
        let mut forms = vec![pem.as_bytes(), &der[..], jwk.as_bytes()];
        if !pkcs1.is_empty() {
            forms.push(&pkcs1);
        }
        for secret in forms {
            for hs in ["HS256", "HS384", "HS512"] {
                let header = json!({"alg": hs, "kid": "victim"});
                let token = hmac_jws(&header, br#"{"sub":"admin"}"#, secret);
                let e = v.verify_compact(&token).unwrap_err();
                assert_eq!(e.code(), "ERR_JWS_ALG_NOT_ALLOWED", "{alg} as {hs}");
            }
        }
        // Nor can a verifier be built that treats the public key as a secret,
        // even when asked for every algorithm there is.
        let e = Verifier::builder()
            .key(&public, &[JwsAlgorithm::HS256])
            .unwrap_err();
        assert_eq!(e.code(), "ERR_KEY_WRONG_TYPE", "{alg}");
        let e = Verifier::builder()
            .key(&public, &[alg, JwsAlgorithm::HS256])
            .unwrap_err();
        assert_eq!(e.code(), "ERR_KEY_WRONG_TYPE", "{alg} with HS256 beside it");
        let all: Vec<JwsAlgorithm> = JwsAlgorithm::all().collect();
        let lax = Verifier::builder()
            .jwk_set(&JwkSet::new(vec![public.clone()]), &all)
            .unwrap()
            .build()
            .unwrap();
        let token = hmac_jws(&json!({"alg": "HS256", "kid": "victim"}), b"{}", &der);
        assert_eq!(
            lax.verify_compact(&token).unwrap_err().code(),
            "ERR_JWS_ALG_NOT_ALLOWED",
            "{alg}"
        );
    }
}

/// A JWE is not a JWS, and the other way round, in every serialization:
/// each is refused as malformed by the other's parser, before any key is
/// touched, and a nested-JWT reader refuses a bare JWS.
#[test]
fn a_jwe_at_a_jws_verifier_and_a_jws_at_a_jwe_decrypter_are_refused() {
    let (alg, enc) = (JweAlgorithm::A256KW, JweEncryption::A256GCM);
    let enc_key = Jwk::generate_for_encryption(alg, enc).unwrap();
    let sig_key = Jwk::generate_for(JwsAlgorithm::HS256).unwrap();
    let signer = Signer::new(&sig_key, JwsAlgorithm::HS256).unwrap();
    let encrypter = Encrypter::new(&enc_key, alg, enc).unwrap();
    let v = verifier(&sig_key, JwsAlgorithm::HS256);
    let d = Decrypter::builder()
        .key(&enc_key, &[(alg, enc)])
        .unwrap()
        .build()
        .unwrap();

    let jwe = encrypter
        .encrypt_compact(&JweHeader::new(), br#"{"sub":"x"}"#)
        .unwrap();
    let jws = signer
        .sign_compact(&JwsHeader::new(), br#"{"sub":"x"}"#)
        .unwrap();
    assert_eq!(
        v.verify_compact(&jwe).unwrap_err().code(),
        "ERR_JWS_MALFORMED"
    );
    assert_eq!(
        d.decrypt_compact(&jws).unwrap_err().code(),
        "ERR_JWE_MALFORMED"
    );

    let jwe_json = encrypter
        .encrypt_flattened(&JweHeader::new(), &JweHeader::new(), None, b"{}")
        .unwrap();
    let jws_json = signer
        .sign_flattened(&JwsHeader::new(), None, b"{}")
        .unwrap();
    assert_eq!(
        v.verify_json(&jwe_json, SignaturePolicy::All)
            .unwrap_err()
            .code(),
        "ERR_JWS_MALFORMED"
    );
    assert_eq!(
        d.decrypt_json(&jws_json).unwrap_err().code(),
        "ERR_JWE_MALFORMED"
    );

    // The JWT layer: a sealed token given to the plain reader, and a plain
    // signed token given to the nested reader (it must have been encrypted).
    let validation = Validation::new().allow_missing_exp();
    let e = jwt::verify::<serde_json::Value>(&jwe, &v, &validation, &FixedClock(0)).unwrap_err();
    assert_eq!(e.code(), "ERR_JWS_MALFORMED");
    let e = jwt::decrypt_and_verify::<serde_json::Value>(&jws, &d, &v, &validation, &FixedClock(0))
        .unwrap_err();
    assert_eq!(e.code(), "ERR_JWE_MALFORMED");
}

/// `kid` is only ever compared with the kids of the verifier's own keys: a
/// value built to traverse paths, inject SQL or run a command selects
/// nothing and reaches nothing (the test would see a different error, or a
/// panic, if it were used as anything but a name).
#[test]
fn kid_path_traversal_sql_and_command_strings_select_nothing() {
    let ours = Jwk::generate_for(JwsAlgorithm::ES256)
        .unwrap()
        .with_kid("ours");
    let attacker = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
    let v = Verifier::builder()
        .jwk_set(
            &JwkSet::new(vec![ours.to_public().unwrap()]),
            &[JwsAlgorithm::ES256],
        )
        .unwrap()
        .build()
        .unwrap();
    let signer = Signer::new(&attacker, JwsAlgorithm::ES256).unwrap();
    for kid in hostile_kids() {
        let token = signer
            .sign_compact(&JwsHeader::new().kid(&kid), br#"{"sub":"admin"}"#)
            .unwrap();
        let e = v.verify_compact(&token).unwrap_err();
        assert_eq!(e.code(), "ERR_JWS_UNKNOWN_KID", "{kid:?}");
    }
    // The same strings at a decrypter.
    let (alg, enc) = (JweAlgorithm::ECDH_ES_A128KW, JweEncryption::A128GCM);
    let recipient = Jwk::generate_for_encryption(alg, enc)
        .unwrap()
        .with_kid("ours");
    let d = Decrypter::builder()
        .jwk_set(&JwkSet::new(vec![recipient.clone()]), &[(alg, enc)])
        .unwrap()
        .build()
        .unwrap();
    let encrypter = Encrypter::new(&recipient.to_public().unwrap(), alg, enc).unwrap();
    for kid in hostile_kids() {
        let token = encrypter
            .encrypt_compact(&JweHeader::new().kid(&kid), b"x")
            .unwrap();
        let e = d.decrypt_compact(&token).unwrap_err();
        assert_eq!(e.code(), "ERR_JWE_UNKNOWN_KID", "{kid:?}");
    }
}

/// Strings a careless key lookup would turn into a file read, a query or a
/// command. Shared with the service attacks.
pub fn hostile_kids() -> Vec<String> {
    vec![
        "../../../../../../etc/passwd".into(),
        "..\\..\\..\\windows\\win.ini".into(),
        "/dev/zero".into(),
        "file:///etc/shadow".into(),
        "ours/../ours".into(),
        "ours\u{0}".into(),
        "' OR '1'='1".into(),
        "ours' --".into(),
        "x'; DROP TABLE signing_keys; --".into(),
        "1 UNION SELECT private_key FROM signing_keys".into(),
        "$(touch /tmp/tessera-pwned)".into(),
        "`id`".into(),
        "ours; rm -rf /".into(),
        "| cat /etc/passwd".into(),
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd".into(),
        "OURS".into(),
        " ours".into(),
        "k".repeat(4096),
    ]
}

/// RFC 7797 §6: `b64: false` must be listed in `crit`; without it, the
/// payload could be read two ways by two verifiers. Refused whatever the
/// verifier understands, and refused in JSON form too.
#[test]
fn b64_false_without_crit_is_refused() {
    let key = Jwk::generate_for(JwsAlgorithm::HS256).unwrap();
    let secret = match serde_json::from_str::<serde_json::Value>(&key.to_private_json()).unwrap()
        ["k"]
        .as_str()
    {
        Some(k) => b64::decode(k, "k").unwrap(),
        None => unreachable!(),
    };
    let v = verifier(&key, JwsAlgorithm::HS256);
    // Signed over the raw payload, as a b64:false signer would.
    let header = json!({"alg": "HS256", "b64": false});
    let token = hmac_jws(&header, b"$02", &secret);
    let e = v.verify_compact(&token).unwrap_err();
    assert_eq!(e.code(), "ERR_JWS_INVALID_HEADER");
    // b64 listed in crit but absent; present with a non-boolean.
    for (header, code) in [
        (json!({"alg": "HS256", "crit": ["b64"]}), "ERR_JWS_CRIT"),
        (
            json!({"alg": "HS256", "b64": "false", "crit": ["b64"]}),
            "ERR_JWS_INVALID_HEADER",
        ),
    ] {
        let token = hmac_jws(&header, b"x", &secret);
        let e = v.verify_compact(&token).unwrap_err();
        assert_eq!(e.code(), code, "{header}");
    }
    // b64 in the unprotected header of a flattened JWS.
    let flattened = json!({
        "protected": b64::encode(r#"{"alg":"HS256"}"#),
        "header": {"b64": false},
        "payload": "eA",
        "signature": "AAAA",
    });
    let e = v
        .verify_json(&flattened.to_string(), SignaturePolicy::All)
        .unwrap_err();
    assert_eq!(e.code(), "ERR_JWS_INVALID_HEADER");
    // The well-formed form, for contrast, verifies.
    let ok = Signer::new(&key, JwsAlgorithm::HS256)
        .unwrap()
        .sign_compact(&JwsHeader::new().unencoded_payload(), b"$02")
        .unwrap();
    assert!(v.verify_compact(&ok).is_ok());
}
