//! Oracles and cost attacks on JWE: CBC padding errors told apart from tag
//! errors (Vaudenay), RSAES-PKCS1-v1_5 padding errors told apart from
//! anything else, by the answer or by its timing (Bleichenbacher, Marvin:
//! RSA1_5 is therefore not decrypted at all), truncated tags accepted, and
//! a PBES2 iteration count that would burn the CPU.
//!
//! The inputs are made the way an attacker holding the key material would
//! make them: raw AES-CBC, HMAC and RSA from aws-lc-rs (the one crypto
//! library of this project), so that only the padding is wrong.

use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext, UnboundCipherKey, AES_128};
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rsa::{
    Pkcs1PrivateDecryptingKey, Pkcs1PublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
};
use serde_json::{json, Value};
use tessera_jose::b64;
use tessera_jose::jwa::{JweAlgorithm, JweEncryption, JwsAlgorithm};
use tessera_jose::jwe::{Decrypter, Encrypter, JweHeader};
use tessera_jose::jwk::{Jwk, JwkSet, KeyFormat};
use tessera_jose::jws::Verifier;
use tessera_jose::jwt::{self, FixedClock, Validation};
use tessera_jose::Error;

/// The raw bytes of an `oct` key.
fn secret_of(key: &Jwk) -> Vec<u8> {
    let v: Value = serde_json::from_str(&key.to_private_json()).unwrap();
    b64::decode(v["k"].as_str().unwrap(), "k").unwrap()
}

/// A compact A128CBC-HS256 JWE (RFC 7518 §5.2.2) over `blocks`, which are
/// encrypted as given (no padding added), with a correct tag: only what the
/// caller put in the last block can be wrong.
fn cbc_hs256_jwe(header: &Value, encrypted_key: &[u8], cek: &[u8], blocks: &[u8]) -> String {
    assert_eq!(cek.len(), 32);
    assert_eq!(blocks.len() % 16, 0);
    let (mac_key, enc_key) = cek.split_at(16);
    let protected = b64::encode(header.to_string());
    let iv = [7u8; 16];
    let mut ciphertext = blocks.to_vec();
    EncryptingKey::cbc(UnboundCipherKey::new(&AES_128, enc_key).unwrap())
        .unwrap()
        .less_safe_encrypt(
            &mut ciphertext,
            EncryptionContext::Iv128(FixedLength::from(iv)),
        )
        .unwrap();
    let aad = protected.as_bytes();
    let al = (aad.len() as u64 * 8).to_be_bytes();
    let mac_input = [aad, &iv, &ciphertext, &al].concat();
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, mac_key), &mac_input);
    format!(
        "{protected}.{}.{}.{}.{}",
        b64::encode(encrypted_key),
        b64::encode(iv),
        b64::encode(&ciphertext),
        b64::encode(&tag.as_ref()[..16])
    )
}

/// `text` with PKCS#7 padding, as RFC 7518 §5.2.2.1 pads it.
fn padded(text: &[u8]) -> Vec<u8> {
    let n = 16 - text.len() % 16;
    [text, &vec![n as u8; n]].concat()
}

/// Last blocks whose padding is wrong in each way a padding check can see.
fn bad_paddings() -> Vec<(&'static str, Vec<u8>)> {
    let body = b"attack at dawn!!".to_vec(); // one full block
    let with_last = |last: &[u8]| [&body[..], last].concat();
    let mut inconsistent = vec![3u8; 16];
    inconsistent[13] = 4;
    vec![
        ("pad byte 0", with_last(&[0u8; 16])),
        ("pad byte 17", with_last(&[17u8; 16])),
        ("pad byte 255", with_last(&[255u8; 16])),
        ("inconsistent", with_last(&inconsistent)),
        ("no padding", body.clone()),
        (
            "2 claimed, 1 present",
            with_last(&{
                let mut b = [0x41u8; 16];
                b[15] = 2;
                b
            }),
        ),
    ]
}

/// Vaudenay's attack needs "bad padding" and "bad tag" to differ. Here the
/// tag is right and only the padding is wrong: the answer must be the very
/// error a bad tag gives (code, message and value), for `dir` and for a key
/// wrap.
#[test]
fn cbc_padding_errors_are_indistinguishable_from_tag_errors() {
    let (alg, enc) = (JweAlgorithm::Dir, JweEncryption::A128CBC_HS256);
    let key = Jwk::generate_for_encryption(alg, enc).unwrap();
    let cek = secret_of(&key);
    let d = Decrypter::builder()
        .key(&key, &[(alg, enc)])
        .unwrap()
        .build()
        .unwrap();
    let header = json!({"alg": "dir", "enc": "A128CBC-HS256"});
    // The construction is right: correct padding decrypts.
    let good = cbc_hs256_jwe(&header, b"", &cek, &padded(b"attack at dawn"));
    assert_eq!(
        d.decrypt_compact(&good).unwrap().plaintext(),
        b"attack at dawn"
    );
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[4] = b64::encode([0u8; 16]);
    let bad_tag: Error = d.decrypt_compact(&parts.join(".")).unwrap_err();
    assert_eq!(bad_tag.code(), "ERR_JWE_DECRYPTION_FAILED");
    for (what, blocks) in bad_paddings() {
        let token = cbc_hs256_jwe(&header, b"", &cek, &blocks);
        let e = d.decrypt_compact(&token).unwrap_err();
        assert_eq!(e, bad_tag, "{what}");
        assert_eq!(e.to_string(), bad_tag.to_string(), "{what}");
        assert_eq!(format!("{e:?}"), format!("{bad_tag:?}"), "{what}");
    }
}

/// RSA1_5 decryption was removed: aws-lc-rs's PKCS#1 v1.5 decryption takes
/// an error path on bad padding (a timing oracle, the Marvin attack) and
/// offers no raw RSA operation for constant-time implicit rejection. So a
/// *valid* RSA1_5 token is refused whatever the caller asks: no decrypter
/// can be built for RSA1_5 (however the key or the pairs are given), a
/// decrypter for the same RSA key refuses the token by its `alg` with every
/// entry point, and a token of any padding gets that same refusal before
/// any private-key operation, so there is no oracle to query. (The CLI's
/// `--allow-rsa1-5`: `jose::jwe_decrypt_refuses_rsa1_5_even_with_allow_rsa1_5` in
/// `crates/cli/tests`.)
#[test]
fn rsa1_5_decryption_is_refused_whatever_the_caller_asks() {
    let key = Jwk::generate_rsa(2048).unwrap();
    let pair = (JweAlgorithm::RSA1_5, JweEncryption::A128CBC_HS256);
    let not_allowed = |e: Error, what: &str| {
        assert_eq!(e.code(), "ERR_JWE_ALG_NOT_ALLOWED", "{what}: {e}");
        assert_eq!(e.to_string(), "RSA1_5 is not allowed here", "{what}");
    };

    // A valid RSA1_5 token, made as any sender would (aws-lc-rs PKCS#1 v1.5
    // to our public key); the recipient's private key does recover the CEK.
    let spki = key.to_public().unwrap().to_der(KeyFormat::Spki).unwrap();
    let rsa = Pkcs1PublicEncryptingKey::new(PublicEncryptingKey::from_der(&spki).unwrap()).unwrap();
    let wrap = |cek: &[u8]| {
        let mut out = vec![0u8; rsa.ciphertext_size()];
        let n = rsa.encrypt(cek, &mut out).unwrap().len();
        out.truncate(n);
        out
    };
    let header = json!({"alg": "RSA1_5", "enc": "A128CBC-HS256"});
    let cek = [9u8; 32];
    let blocks = padded(b"Live long and prosper.");
    let good = cbc_hs256_jwe(&header, &wrap(&cek), &cek, &blocks);
    let pkcs8 = key.to_der(KeyFormat::Pkcs8).unwrap();
    let private =
        Pkcs1PrivateDecryptingKey::new(PrivateDecryptingKey::from_pkcs8(&pkcs8).unwrap()).unwrap();
    let ek = b64::decode(good.split('.').nth(1).unwrap(), "ek").unwrap();
    let mut out = vec![0u8; private.min_output_size()];
    assert_eq!(private.decrypt(&ek, &mut out).unwrap(), &cek[..]);

    // No decrypter for RSA1_5, however asked: the key as it is, the key
    // bound to RSA1_5, RSA1_5 beside an allowed pair, a JWK Set.
    not_allowed(Decrypter::builder().key(&key, &[pair]).unwrap_err(), "key");
    let bound = key.clone().with_alg("RSA1_5").unwrap();
    not_allowed(
        Decrypter::builder().key(&bound, &[pair]).unwrap_err(),
        "key bound to RSA1_5",
    );
    let oaep_pair = (JweAlgorithm::RSA_OAEP_256, pair.1);
    not_allowed(
        Decrypter::builder()
            .key(&key, &[oaep_pair, pair])
            .unwrap_err(),
        "beside RSA-OAEP-256",
    );
    not_allowed(
        Decrypter::builder()
            .jwk_set(&JwkSet::new(vec![key.clone()]), &[oaep_pair, pair])
            .unwrap_err(),
        "JWK Set",
    );
    // Nor an encrypter, nor a key made for it.
    not_allowed(
        Encrypter::new(&key.to_public().unwrap(), pair.0, pair.1).unwrap_err(),
        "encrypter",
    );
    not_allowed(
        Jwk::generate_for_encryption(pair.0, pair.1).unwrap_err(),
        "generate",
    );

    // The same RSA key in a decrypter for every RSA-OAEP algorithm: the
    // valid token is refused by its alg, compact, JSON and nested.
    let rsa_pairs: Vec<_> = JweAlgorithm::ALL
        .iter()
        .filter(|a| a.name().starts_with("RSA-OAEP"))
        .map(|&a| (a, pair.1))
        .collect();
    let d = Decrypter::builder()
        .key(&key, &rsa_pairs)
        .unwrap()
        .build()
        .unwrap();
    not_allowed(d.decrypt_compact(&good).unwrap_err(), "decrypt_compact");
    not_allowed(d.decrypt(&good).unwrap_err(), "decrypt");
    let p: Vec<&str> = good.split('.').collect();
    let flattened = json!({
        "protected": p[0], "encrypted_key": p[1], "iv": p[2], "ciphertext": p[3], "tag": p[4],
    })
    .to_string();
    not_allowed(d.decrypt_json(&flattened).unwrap_err(), "decrypt_json");
    let hs = Jwk::generate_for(JwsAlgorithm::HS256).unwrap();
    let verifier = Verifier::builder()
        .key(&hs, &[JwsAlgorithm::HS256])
        .unwrap()
        .build()
        .unwrap();
    not_allowed(
        jwt::decrypt_and_verify::<Value>(&good, &d, &verifier, &Validation::new(), &FixedClock(0))
            .unwrap_err(),
        "jwt::decrypt_and_verify",
    );

    // Bleichenbacher's queries get the very same answer as the valid token:
    // nothing is decrypted, so nothing about the padding can leak.
    let reference = d.decrypt_compact(&good).unwrap_err();
    let mut flipped = wrap(&cek);
    flipped[0] ^= 0x80; // the top byte: the padding no longer conforms
    let mut random = wrap(&cek);
    random
        .iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b ^= i as u8);
    for (what, ek) in [
        ("16-byte key, conforming padding", wrap(&[9u8; 16])),
        ("64-byte key, conforming padding", wrap(&[9u8; 64])),
        ("1-byte key, conforming padding", wrap(&[9u8; 1])),
        ("first byte flipped", flipped),
        ("scrambled", random),
        ("all zeros", vec![0u8; 256]),
    ] {
        let token = cbc_hs256_jwe(&header, &ek, &cek, &blocks);
        let e = d.decrypt_compact(&token).unwrap_err();
        assert_eq!(e, reference, "{what}");
        assert_eq!(format!("{e:?}"), format!("{reference:?}"), "{what}");
    }
}

/// Tags cut to any shorter length, including a correct prefix of the real
/// tag, are refused for every content encryption: GCM (RFC 7518 §5.3: 128
/// bits) and CBC-HMAC (§5.2: half the HMAC output).
#[test]
fn gcm_and_cbc_hmac_truncated_tags_are_refused() {
    for enc in [
        JweEncryption::A128GCM,
        JweEncryption::A192GCM,
        JweEncryption::A256GCM,
        JweEncryption::A128CBC_HS256,
        JweEncryption::A192CBC_HS384,
        JweEncryption::A256CBC_HS512,
    ] {
        let alg = JweAlgorithm::Dir;
        let key = Jwk::generate_for_encryption(alg, enc).unwrap();
        let token = Encrypter::new(&key, alg, enc)
            .unwrap()
            .encrypt_compact(&JweHeader::new(), b"pay 100 to alice")
            .unwrap();
        let d = Decrypter::builder()
            .key(&key, &[(alg, enc)])
            .unwrap()
            .build()
            .unwrap();
        assert!(d.decrypt_compact(&token).is_ok());
        let parts: Vec<&str> = token.split('.').collect();
        let tag = b64::decode(parts[4], "tag").unwrap();
        for len in [0, 1, 4, 8, 12, 15, tag.len() - 1] {
            let cut = [
                parts[0],
                parts[1],
                parts[2],
                parts[3],
                &b64::encode(&tag[..len]),
            ]
            .join(".");
            assert_eq!(
                d.decrypt_compact(&cut).unwrap_err().code(),
                "ERR_JWE_DECRYPTION_FAILED",
                "{enc} tag cut to {len}"
            );
        }
    }
}

/// A `p2c` of 2^31 (or its neighbours, or 2^53) would cost hours of
/// PBKDF2: refused from the header alone, before any derivation.
#[test]
fn pbes2_count_of_2_to_the_31_is_refused_before_any_work() {
    let (alg, enc) = (JweAlgorithm::PBES2_HS512_A256KW, JweEncryption::A256GCM);
    let password = Jwk::from_secret(b"correct horse battery staple").unwrap();
    let token = Encrypter::new(&password, alg, enc)
        .unwrap()
        .pbes2_count(1000)
        .unwrap()
        .encrypt_compact(&JweHeader::new(), b"x")
        .unwrap();
    let d = Decrypter::builder()
        .key(&password, &[(alg, enc)])
        .unwrap()
        .build()
        .unwrap();
    assert!(d.decrypt_compact(&token).is_ok());
    let (protected, rest) = token.split_once('.').unwrap();
    let mut header: serde_json::Map<String, Value> =
        serde_json::from_slice(&b64::decode(protected, "h").unwrap()).unwrap();
    for p2c in [
        json!(2_147_483_648u64),
        json!(2_147_483_647u64),
        json!(4_294_967_296u64),
        json!(9_007_199_254_740_993u64),
        json!(2.147_483_648e9),
    ] {
        header.insert("p2c".into(), p2c.clone());
        let t = format!(
            "{}.{rest}",
            b64::encode(Value::Object(header.clone()).to_string())
        );
        assert_eq!(
            d.decrypt_compact(&t).unwrap_err().code(),
            "ERR_JWE_PBES2_COUNT",
            "{p2c}"
        );
    }
}
