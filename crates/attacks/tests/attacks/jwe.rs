//! JWE negative tests: tampering with every part, truncated tags,
//! invalid-curve ephemeral keys, PBES2 cost and salt, zip bombs, wrong key
//! types, `use` mismatches, and algorithm pairs the decrypter does not allow.

use serde_json::{Map, Value};
use tessera_jose::b64;
use tessera_jose::json::Limits;
use tessera_jose::jwa::{EcCurve, JweAlgorithm, JweEncryption, JwsAlgorithm, OkpCurve};
use tessera_jose::jwe::{encrypt_general, Decrypter, Encrypter, JweHeader, Recipient};
use tessera_jose::jwk::{Jwk, KeyUse};
use tessera_jose::jws::{Signer, Verifier};

fn decrypter(key: &Jwk, alg: JweAlgorithm, enc: JweEncryption) -> Decrypter {
    Decrypter::builder()
        .key(key, &[(alg, enc)])
        .unwrap()
        .build()
        .unwrap()
}

fn code(r: Result<tessera_jose::jwe::Decrypted, tessera_jose::Error>) -> &'static str {
    r.unwrap_err().code()
}

/// Replaces segment `i` of a compact JWE.
fn with_segment(token: &str, i: usize, value: &str) -> String {
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[i] = value;
    parts.join(".")
}

/// Flips one bit of the decoded segment `i`.
fn flip(token: &str, i: usize) -> String {
    let seg = token.split('.').nth(i).unwrap();
    let mut bytes = b64::decode(seg, "t").unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    with_segment(token, i, &b64::encode(&bytes))
}

/// Rewrites the protected header of a compact JWE.
fn with_header(token: &str, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let seg = token.split('.').next().unwrap();
    let mut map: Map<String, Value> =
        serde_json::from_slice(&b64::decode(seg, "h").unwrap()).unwrap();
    edit(&mut map);
    with_segment(token, 0, &b64::encode(serde_json::to_vec(&map).unwrap()))
}

#[test]
fn tampering_with_any_part_fails_the_same_way() {
    for (alg, enc) in [
        (JweAlgorithm::A128KW, JweEncryption::A128GCM),
        (JweAlgorithm::A256KW, JweEncryption::A256CBC_HS512),
        (JweAlgorithm::Dir, JweEncryption::A192CBC_HS384),
        (JweAlgorithm::ECDH_ES_A128KW, JweEncryption::A128CBC_HS256),
        (JweAlgorithm::A192GCMKW, JweEncryption::A192GCM),
    ] {
        let key = Jwk::generate_for_encryption(alg, enc).unwrap();
        let sender = if key.is_symmetric() {
            key.clone()
        } else {
            key.to_public().unwrap()
        };
        let token = Encrypter::new(&sender, alg, enc)
            .unwrap()
            .encrypt_compact(&JweHeader::new(), b"attack at dawn")
            .unwrap();
        let d = decrypter(&key, alg, enc);
        assert!(d.decrypt_compact(&token).is_ok());
        let failed = "ERR_JWE_DECRYPTION_FAILED";
        // iv, ciphertext, tag
        for i in 2..5 {
            assert_eq!(
                code(d.decrypt_compact(&flip(&token, i))),
                failed,
                "{alg} {enc} part {i}"
            );
        }
        if alg != JweAlgorithm::Dir {
            assert_eq!(
                code(d.decrypt_compact(&flip(&token, 1))),
                failed,
                "{alg} encrypted key"
            );
        } else {
            // dir: an encrypted key must be empty (RFC 7516 §5.2 step 10).
            let e = d.decrypt_compact(&with_segment(&token, 1, "AAAA"));
            assert_eq!(code(e), "ERR_JWE_MALFORMED");
        }
        // The protected header is the AAD: any change fails.
        let t = with_header(&token, |h| {
            h.insert("x".into(), 1.into());
        });
        assert_eq!(code(d.decrypt_compact(&t)), failed, "{alg} header");
        // Tags: truncated by 1, extended by 1, missing.
        let tag = b64::decode(token.split('.').nth(4).unwrap(), "t").unwrap();
        for bad in [
            &tag[..tag.len() - 1],
            &[tag.as_slice(), &[0]].concat()[..],
            &[][..],
        ] {
            let t = with_segment(&token, 4, &b64::encode(bad));
            assert_eq!(
                code(d.decrypt_compact(&t)),
                failed,
                "{alg} {enc} tag length {}",
                bad.len()
            );
        }
        // The wrong key of the right type.
        // (under the same kid, so that it is tried).
        let other = Jwk::generate_for_encryption(alg, enc)
            .unwrap()
            .with_kid(key.kid().unwrap());
        assert_eq!(
            code(decrypter(&other, alg, enc).decrypt_compact(&token)),
            failed
        );
    }
}

#[test]
fn json_aad_is_authenticated() {
    let (alg, enc) = (JweAlgorithm::A128KW, JweEncryption::A128GCM);
    let key = Jwk::generate_for_encryption(alg, enc).unwrap();
    let e = Encrypter::new(&key, alg, enc).unwrap();
    let flat = e
        .encrypt_flattened(&JweHeader::new(), &JweHeader::new(), Some(b"v1"), b"data")
        .unwrap();
    let d = decrypter(&key, alg, enc);
    assert_eq!(d.decrypt_json(&flat).unwrap().aad(), Some(&b"v1"[..]));
    let mut doc: Map<String, Value> = serde_json::from_str(&flat).unwrap();
    doc.insert("aad".into(), b64::encode(b"v2").into());
    let t = Value::Object(doc.clone()).to_string();
    assert_eq!(code(d.decrypt_json(&t)), "ERR_JWE_DECRYPTION_FAILED");
    doc.remove("aad");
    let t = Value::Object(doc).to_string();
    assert_eq!(code(d.decrypt_json(&t)), "ERR_JWE_DECRYPTION_FAILED");
}

#[test]
fn invalid_curve_ephemeral_keys_are_rejected() {
    let (alg, enc) = (JweAlgorithm::ECDH_ES, JweEncryption::A128GCM);
    let p256 = Jwk::generate_ec(EcCurve::P256).unwrap();
    let token = Encrypter::new(&p256.to_public().unwrap(), alg, enc)
        .unwrap()
        .encrypt_compact(&JweHeader::new(), b"x")
        .unwrap();
    let d = decrypter(&p256, alg, enc);
    let epk_of = |t: &str| -> Map<String, Value> {
        let seg = t.split('.').next().unwrap();
        let h: Map<String, Value> =
            serde_json::from_slice(&b64::decode(seg, "h").unwrap()).unwrap();
        h["epk"].as_object().unwrap().clone()
    };
    let epk = epk_of(&token);
    let rejected = "ERR_JWE_EPK_REJECTED";

    // A point off the curve: y + 1.
    let mut y = b64::decode(epk["y"].as_str().unwrap(), "y").unwrap();
    y[31] ^= 1;
    let mut off = epk.clone();
    off.insert("y".into(), b64::encode(&y).into());
    let t = with_header(&token, |h| {
        h.insert("epk".into(), Value::Object(off));
    });
    assert_eq!(code(d.decrypt_compact(&t)), rejected);

    // A valid point of another curve (P-384) sent to a P-256 key, named as
    // P-384 and passed off as P-256.
    let p384 = Jwk::generate_ec(EcCurve::P384)
        .unwrap()
        .to_public()
        .unwrap();
    let p384: Map<String, Value> = serde_json::from_str(&p384.to_json()).unwrap();
    let t = with_header(&token, |h| {
        h.insert("epk".into(), Value::Object(p384.clone()));
    });
    assert_eq!(code(d.decrypt_compact(&t)), rejected);
    let mut renamed = p384.clone();
    renamed.insert("crv".into(), "P-256".into());
    let t = with_header(&token, |h| {
        h.insert("epk".into(), Value::Object(renamed));
    });
    assert_eq!(code(d.decrypt_compact(&t)), rejected);

    // The point at coordinates (0, 0), a missing epk, a private epk, an OKP epk.
    let mut zero = epk.clone();
    zero.insert("x".into(), b64::encode([0u8; 32]).into());
    zero.insert("y".into(), b64::encode([0u8; 32]).into());
    let mut private = epk.clone();
    private.insert("d".into(), p256.to_private_json().as_str().into());
    let okp = serde_json::json!({"kty":"OKP","crv":"X25519","x":epk["x"]});
    for bad in [
        Value::Object(zero),
        Value::Null,
        Value::Object(private),
        okp,
    ] {
        let t = with_header(&token, |h| {
            if bad.is_null() {
                h.remove("epk");
            } else {
                h.insert("epk".into(), bad.clone());
            }
        });
        assert_eq!(code(d.decrypt_compact(&t)), rejected, "{bad}");
    }

    // X25519: a small-order point (all zeros) gives an all-zero secret.
    let x = Jwk::generate_okp(OkpCurve::X25519).unwrap();
    let token = Encrypter::new(&x.to_public().unwrap(), alg, enc)
        .unwrap()
        .encrypt_compact(&JweHeader::new(), b"x")
        .unwrap();
    let d = decrypter(&x, alg, enc);
    for point in [[0u8; 32], {
        let mut one = [0u8; 32];
        one[0] = 1;
        one
    }] {
        let t = with_header(&token, |h| {
            h.insert(
                "epk".into(),
                serde_json::json!({"kty":"OKP","crv":"X25519","x":b64::encode(point)}),
            );
        });
        assert_eq!(code(d.decrypt_compact(&t)), rejected);
    }
}

#[test]
fn pbes2_cost_and_salt_are_bounded() {
    let (alg, enc) = (JweAlgorithm::PBES2_HS256_A128KW, JweEncryption::A128GCM);
    let pw = Jwk::from_secret(b"hunter2 hunter2").unwrap();
    let token = Encrypter::new(&pw, alg, enc)
        .unwrap()
        .pbes2_count(1000)
        .unwrap()
        .encrypt_compact(&JweHeader::new(), b"x")
        .unwrap();
    let d = decrypter(&pw, alg, enc);
    assert!(d.decrypt_compact(&token).is_ok());
    // A huge p2c is refused before any work; so are zero, negative and non-numbers.
    for p2c in [
        Value::from(2_000_000_000u64),
        Value::from(600_001),
        Value::from(0),
        Value::from(-5),
        Value::from("1000"),
    ] {
        let t = with_header(&token, |h| {
            h.insert("p2c".into(), p2c.clone());
        });
        assert_eq!(code(d.decrypt_compact(&t)), "ERR_JWE_PBES2_COUNT", "{p2c}");
    }
    let missing = with_header(&token, |h| {
        h.remove("p2c");
    });
    assert_eq!(code(d.decrypt_compact(&missing)), "ERR_JWE_PBES2_COUNT");
    // A stricter bound.
    let strict = Decrypter::builder()
        .key(&pw, &[(alg, enc)])
        .unwrap()
        .max_pbes2_count(999)
        .build()
        .unwrap();
    assert_eq!(code(strict.decrypt_compact(&token)), "ERR_JWE_PBES2_COUNT");
    // p2s under 8 bytes, or missing.
    for p2s in [Some(b64::encode([1u8; 7])), None] {
        let t = with_header(&token, |h| match &p2s {
            Some(s) => {
                h.insert("p2s".into(), s.as_str().into());
            }
            None => {
                h.remove("p2s");
            }
        });
        assert_eq!(code(d.decrypt_compact(&t)), "ERR_JWE_PBES2_SALT");
    }
    // The encrypter refuses counts under RFC 7518's minimum of 1000.
    assert!(Encrypter::new(&pw, alg, enc)
        .unwrap()
        .pbes2_count(999)
        .is_err());
}

#[test]
fn zip_needs_opt_in_and_inflating_stops_at_the_cap() {
    let (alg, enc) = (JweAlgorithm::A256KW, JweEncryption::A256GCM);
    let key = Jwk::generate_for_encryption(alg, enc).unwrap();
    let e = Encrypter::new(&key, alg, enc).unwrap().compress();
    // 20 MB of zeros deflate to about 20 KB: a zip bomb.
    let bomb = e
        .encrypt_compact(&JweHeader::new(), &vec![0u8; 20_000_000])
        .unwrap();
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
    let plain = decrypter(&key, alg, enc);
    assert_eq!(
        code(plain.decrypt_compact(&bomb)),
        "ERR_JWE_ZIP_NOT_ALLOWED"
    );
    let capped = Decrypter::builder()
        .key(&key, &[(alg, enc)])
        .unwrap()
        .allow_compression()
        .build()
        .unwrap();
    let err = capped.decrypt_compact(&bomb).unwrap_err();
    assert_eq!(err.code(), "ERR_JWE_DECOMPRESSED_TOO_LARGE");
    assert!(err.to_string().contains("250000"), "{err}");
    // Up to the cap is fine; a custom cap applies.
    let ok = e
        .encrypt_compact(&JweHeader::new(), &vec![7u8; 250_000])
        .unwrap();
    assert_eq!(
        capped.decrypt_compact(&ok).unwrap().plaintext().len(),
        250_000
    );
    let small = Decrypter::builder()
        .key(&key, &[(alg, enc)])
        .unwrap()
        .max_decompressed(1000)
        .build()
        .unwrap();
    assert_eq!(
        code(small.decrypt_compact(&ok)),
        "ERR_JWE_DECOMPRESSED_TOO_LARGE"
    );
    // zip must be integrity protected; anything but DEF is refused.
    let unprotected = serde_json::json!({
        "protected": b64::encode(br#"{"alg":"dir","enc":"A128GCM"}"#),
        "unprotected": {"zip": "DEF"},
        "iv": "AAAAAAAAAAAAAAAA", "ciphertext": "", "tag": "AAAAAAAAAAAAAAAAAAAAAA"
    });
    let dir = Jwk::generate_for_encryption(JweAlgorithm::Dir, JweEncryption::A128GCM).unwrap();
    let d = Decrypter::builder()
        .key(&dir, &[(JweAlgorithm::Dir, JweEncryption::A128GCM)])
        .unwrap()
        .allow_compression()
        .build()
        .unwrap();
    assert_eq!(
        code(d.decrypt_json(&unprotected.to_string())),
        "ERR_JWE_INVALID_HEADER"
    );
    let gzip = with_header(&bomb, |h| {
        h.insert("zip".into(), "GZIP".into());
    });
    assert_eq!(
        code(capped.decrypt_compact(&gzip)),
        "ERR_JWE_INVALID_HEADER"
    );
}

#[test]
fn keys_of_the_wrong_type_or_size_are_refused() {
    let enc = JweEncryption::A128GCM;
    let rsa = Jwk::generate_rsa(2048).unwrap();
    let ec = Jwk::generate_ec(EcCurve::P256).unwrap();
    let k1 = Jwk::generate_ec(EcCurve::Secp256k1).unwrap();
    let ed = Jwk::generate_okp(OkpCurve::Ed25519).unwrap();
    let aes128 = Jwk::generate_oct(16).unwrap();
    let cases: &[(&Jwk, JweAlgorithm, &str)] = &[
        (&rsa, JweAlgorithm::A128KW, "ERR_KEY_WRONG_TYPE"),
        (&rsa, JweAlgorithm::Dir, "ERR_KEY_WRONG_TYPE"),
        (&rsa, JweAlgorithm::ECDH_ES, "ERR_KEY_WRONG_TYPE"),
        (&ec, JweAlgorithm::RSA_OAEP, "ERR_KEY_WRONG_TYPE"),
        (&ec, JweAlgorithm::PBES2_HS256_A128KW, "ERR_KEY_WRONG_TYPE"),
        (&k1, JweAlgorithm::ECDH_ES, "ERR_KEY_WRONG_TYPE"),
        (&ed, JweAlgorithm::ECDH_ES_A128KW, "ERR_KEY_WRONG_TYPE"),
        (&aes128, JweAlgorithm::RSA_OAEP_256, "ERR_KEY_WRONG_TYPE"),
        (&aes128, JweAlgorithm::A256KW, "ERR_KEY_WRONG_SIZE"),
        (&aes128, JweAlgorithm::A192GCMKW, "ERR_KEY_WRONG_SIZE"),
    ];
    for (key, alg, expected) in cases {
        let e = Decrypter::builder().key(key, &[(*alg, enc)]).unwrap_err();
        assert_eq!(e.code(), *expected, "decrypt {alg} with {key:?}");
        let e = Encrypter::new(key, *alg, enc).unwrap_err();
        assert_eq!(e.code(), *expected, "encrypt {alg} with {key:?}");
    }
    // dir: the key must be exactly the content key's size.
    let e = Decrypter::builder()
        .key(&aes128, &[(JweAlgorithm::Dir, JweEncryption::A256GCM)])
        .unwrap_err();
    assert_eq!(e.code(), "ERR_KEY_WRONG_SIZE");
    // Decrypting needs the private key.
    let e = Decrypter::builder()
        .key(&rsa.to_public().unwrap(), &[(JweAlgorithm::RSA_OAEP, enc)])
        .unwrap_err();
    assert_eq!(e.code(), "ERR_KEY_NOT_PRIVATE");
    // A key bound to one alg serves no other.
    let bound = Jwk::generate_for_encryption(JweAlgorithm::A128KW, enc).unwrap();
    let e = Decrypter::builder()
        .key(&bound, &[(JweAlgorithm::A128GCMKW, enc)])
        .unwrap_err();
    assert_eq!(e.code(), "ERR_KEY_ALG_MISMATCH");
}

#[test]
fn signing_and_encryption_keys_stay_apart() {
    let enc = JweEncryption::A256GCM;
    // use: sig cannot encrypt or decrypt.
    let sig = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
    assert_eq!(
        Decrypter::builder()
            .key(&sig, &[(JweAlgorithm::ECDH_ES, enc)])
            .unwrap_err()
            .code(),
        "ERR_KEY_OPERATION_NOT_PERMITTED"
    );
    let plain_ec = Jwk::generate_ec(EcCurve::P256).unwrap();
    let sig_use = plain_ec.clone().with_use(KeyUse::Signature).unwrap();
    assert_eq!(
        Encrypter::new(&sig_use.to_public().unwrap(), JweAlgorithm::ECDH_ES, enc)
            .unwrap_err()
            .code(),
        "ERR_KEY_OPERATION_NOT_PERMITTED"
    );
    // use: enc cannot sign or verify.
    let enc_use = plain_ec.with_use(KeyUse::Encryption).unwrap();
    assert_eq!(
        Signer::new(&enc_use, JwsAlgorithm::ES256)
            .unwrap_err()
            .code(),
        "ERR_KEY_OPERATION_NOT_PERMITTED"
    );
    assert_eq!(
        Verifier::builder()
            .key(&enc_use, &[JwsAlgorithm::ES256])
            .unwrap_err()
            .code(),
        "ERR_KEY_OPERATION_NOT_PERMITTED"
    );
    // key_ops that only allow signing refuse decryption.
    let ops = Jwk::from_json(
        br#"{"kty":"oct","k":"GawgguFyGrWKav7AX4VKUg","key_ops":["sign","verify"]}"#,
    )
    .unwrap();
    assert_eq!(
        Decrypter::builder()
            .key(&ops, &[(JweAlgorithm::A128KW, enc)])
            .unwrap_err()
            .code(),
        "ERR_KEY_OPERATION_NOT_PERMITTED"
    );
    let unwrap_only =
        Jwk::from_json(br#"{"kty":"oct","k":"GawgguFyGrWKav7AX4VKUg","key_ops":["unwrapKey"]}"#)
            .unwrap();
    assert!(Decrypter::builder()
        .key(&unwrap_only, &[(JweAlgorithm::A128KW, enc)])
        .is_ok());
    assert!(Encrypter::new(&unwrap_only, JweAlgorithm::A128KW, enc).is_err());
}

#[test]
fn only_the_decrypters_alg_enc_pairs_are_accepted() {
    let key = Jwk::generate_rsa(2048).unwrap().with_kid("k1");
    let public = key.to_public().unwrap();
    let d = decrypter(&key, JweAlgorithm::RSA_OAEP_256, JweEncryption::A256GCM);
    let send = |alg, enc| {
        Encrypter::new(&public, alg, enc)
            .unwrap()
            .encrypt_compact(&JweHeader::new(), b"x")
            .unwrap()
    };
    assert!(d
        .decrypt_compact(&send(JweAlgorithm::RSA_OAEP_256, JweEncryption::A256GCM))
        .is_ok());
    for (alg, enc) in [
        (JweAlgorithm::RSA_OAEP_256, JweEncryption::A128GCM),
        (JweAlgorithm::RSA_OAEP, JweEncryption::A256GCM),
        (JweAlgorithm::RSA_OAEP_512, JweEncryption::A256CBC_HS512),
    ] {
        assert_eq!(
            code(d.decrypt_compact(&send(alg, enc))),
            "ERR_JWE_ALG_NOT_ALLOWED",
            "{alg} {enc}"
        );
    }
    let token = send(JweAlgorithm::RSA_OAEP_256, JweEncryption::A256GCM);
    // RSA1_5 in the header, though the key could do it: not allowed.
    let t = with_header(&token, |h| {
        h.insert("alg".into(), "RSA1_5".into());
    });
    assert_eq!(code(d.decrypt_compact(&t)), "ERR_JWE_ALG_NOT_ALLOWED");
    // Unknown and missing algorithms, none among them.
    for (member, value) in [("alg", "none"), ("enc", "A128CBC-HS257"), ("alg", "dir ")] {
        let t = with_header(&token, |h| {
            h.insert(member.into(), value.into());
        });
        assert_eq!(
            code(d.decrypt_compact(&t)),
            "ERR_JWE_UNSUPPORTED_ALG",
            "{value}"
        );
    }
    let t = with_header(&token, |h| {
        h.remove("enc");
    });
    assert_eq!(code(d.decrypt_compact(&t)), "ERR_JWE_UNSUPPORTED_ALG");
    // kid picks among our keys only.
    let t = with_header(&token, |h| {
        h.insert("kid".into(), "k2".into());
    });
    assert_eq!(code(d.decrypt_compact(&t)), "ERR_JWE_UNKNOWN_KID");
    // Unknown crit extensions are refused; declared ones pass the header check.
    let t = with_header(&token, |h| {
        h.insert("crit".into(), serde_json::json!(["exp"]));
        h.insert("exp".into(), 1.into());
    });
    assert_eq!(code(d.decrypt_compact(&t)), "ERR_JWE_CRIT");
    let understanding = Decrypter::builder()
        .key(
            &key,
            &[(JweAlgorithm::RSA_OAEP_256, JweEncryption::A256GCM)],
        )
        .unwrap()
        .understand_crit("exp")
        .build()
        .unwrap();
    assert_eq!(
        code(understanding.decrypt_compact(&t)),
        "ERR_JWE_DECRYPTION_FAILED"
    );
    let crit_token = Encrypter::new(&public, JweAlgorithm::RSA_OAEP_256, JweEncryption::A256GCM)
        .unwrap()
        .encrypt_compact(&JweHeader::new().critical("exp", 5.into()).unwrap(), b"x")
        .unwrap();
    assert!(understanding.decrypt_compact(&crit_token).is_ok());
    assert_eq!(code(d.decrypt_compact(&crit_token)), "ERR_JWE_CRIT");
    // typ is enforced when asked for.
    let typed = Decrypter::builder()
        .key(
            &key,
            &[(JweAlgorithm::RSA_OAEP_256, JweEncryption::A256GCM)],
        )
        .unwrap()
        .expect_typ("secevent+jwe")
        .build()
        .unwrap();
    assert_eq!(
        code(typed.decrypt_compact(&token)),
        "ERR_JWE_UNEXPECTED_TYP"
    );
}

#[test]
fn malformed_and_oversize_inputs_are_refused() {
    let (alg, enc) = (JweAlgorithm::A128KW, JweEncryption::A128GCM);
    let key = Jwk::generate_for_encryption(alg, enc).unwrap();
    let token = Encrypter::new(&key, alg, enc)
        .unwrap()
        .encrypt_compact(&JweHeader::new(), b"x")
        .unwrap();
    let d = decrypter(&key, alg, enc);
    let parts: Vec<&str> = token.split('.').collect();
    for bad in [
        parts[..4].join("."),
        format!("{token}."),
        format!(".{}", parts[1..].join(".")),
        String::new(),
    ] {
        assert_eq!(code(d.decrypt_compact(&bad)), "ERR_JWE_MALFORMED", "{bad}");
    }
    assert_eq!(
        code(d.decrypt_compact(&with_segment(&token, 2, "A+B"))),
        "ERR_BASE64"
    );
    let small = Decrypter::builder()
        .key(&key, &[(alg, enc)])
        .unwrap()
        .limits(Limits {
            max_token_bytes: 64,
            ..Limits::default()
        })
        .build()
        .unwrap();
    assert_eq!(code(small.decrypt_compact(&token)), "ERR_TOO_LARGE");
    // Too many recipients, and a JSON JWE with both shapes.
    let e = Encrypter::new(&key, alg, enc).unwrap();
    let many: Vec<Recipient> = (0..17)
        .map(|_| Recipient {
            encrypter: &e,
            header: JweHeader::new(),
        })
        .collect();
    let jwe = encrypt_general(&JweHeader::new(), &JweHeader::new(), None, &many, b"x").unwrap();
    assert_eq!(code(d.decrypt_json(&jwe)), "ERR_JWE_TOO_MANY_RECIPIENTS");
    let mut doc: Map<String, Value> = serde_json::from_str(&jwe).unwrap();
    doc.insert("encrypted_key".into(), "AAAA".into());
    assert_eq!(
        code(d.decrypt_json(&Value::Object(doc).to_string())),
        "ERR_JWE_MALFORMED"
    );
    // Duplicate members in the protected header are refused.
    let dup = with_segment(
        &token,
        0,
        &b64::encode(br#"{"alg":"A128KW","alg":"dir","enc":"A128GCM"}"#),
    );
    assert_eq!(code(d.decrypt_compact(&dup)), "ERR_JSON_DUPLICATE_MEMBER");
    // A header member in both the protected and a per-recipient header.
    let general = encrypt_general(
        &JweHeader::new(),
        &JweHeader::new(),
        None,
        &[Recipient {
            encrypter: &e,
            header: JweHeader::new(),
        }],
        b"x",
    )
    .unwrap();
    let mut doc: Map<String, Value> = serde_json::from_str(&general).unwrap();
    doc.insert("unprotected".into(), serde_json::json!({"alg": "A128KW"}));
    assert_eq!(
        code(d.decrypt_json(&Value::Object(doc).to_string())),
        "ERR_JWE_INVALID_HEADER"
    );
}

#[test]
fn debug_output_never_shows_plaintext_or_keys() {
    let (alg, enc) = (JweAlgorithm::Dir, JweEncryption::A256GCM);
    let key = Jwk::generate_for_encryption(alg, enc).unwrap();
    let e = Encrypter::new(&key, alg, enc).unwrap();
    let d = decrypter(&key, alg, enc);
    let opened = d
        .decrypt_compact(
            &e.encrypt_compact(&JweHeader::new(), b"top-secret-plaintext")
                .unwrap(),
        )
        .unwrap();
    let k = serde_json::from_str::<Value>(&key.to_private_json()).unwrap()["k"]
        .as_str()
        .unwrap()
        .to_owned();
    for text in [format!("{opened:?}"), format!("{e:?}"), format!("{d:?}")] {
        assert!(!text.contains("top-secret"), "{text}");
        assert!(!text.contains(&k), "{text}");
    }
}
