//! JWE: RFC 7516 Appendix A.1–A.2, RFC 8037 A.6, every JWE and nesting
//! example of the RFC 7520 cookbook (tests/vectors/cookbook, commit
//! 13692b68), round trips for every alg × enc pair in every serialization,
//! and nested JWTs. (RFC 7516 A.3, RFC 7520 §5.3/§5.6–§5.8 byte-for-byte
//! and RFC 7518 Appendix C are unit tests in `src/jwe`, where the random
//! values can be replayed.)

use serde_json::Value;
use tessera_jose::jwa::{EcCurve, JweAlgorithm, JweEncryption, JwsAlgorithm, OkpCurve};
use tessera_jose::jwe::{encrypt_general, Decrypter, Encrypter, JweHeader, Recipient};
use tessera_jose::jwk::Jwk;
use tessera_jose::jws::{JwsHeader, Signer, Verifier};
use tessera_jose::jwt::{self, Claims, FixedClock, Validation};

use crate::support::{jwk, jwk_value, vector, vector_dir};

fn decrypter(key: &Jwk, alg: JweAlgorithm, enc: JweEncryption) -> Decrypter {
    Decrypter::builder()
        .key(key, &[(alg, enc)])
        .unwrap()
        .allow_compression()
        .build()
        .unwrap()
}

// RFC 7516 Appendix A.1: RSAES-OAEP and AES GCM (key from A.1.3, JWE from A.1.7).
const A1_KEY: &str = concat!(
    r#"{"kty":"RSA","#,
    r#""n":"oahUIoWw0K0usKNuOR6H4wkf4oBUXHTxRvgb48E-BVvxkeDNjbC4he8rUWcJoZmds2h7M70imEVhRU5djINXtqllXI4DFqcI1DgjT9LewND8MW2Krf3Spsk_ZkoFnilakGygTwpZ3uesH-PFABNIUYpOiN15dsQRkgr0vEhxN92i2asbOenSZeyaxziK72UwxrrKoExv6kc5twXTq4h-QChLOln0_mtUZwfsRaMStPs6mS6XrgxnxbWhojf663tuEQueGC-FCMfra36C9knDFGzKsNa7LZK2djYgyD3JR_MB_4NUJW_TqOQtwHYbxevoJArm-L5StowjzGy-_bq6Gw","#,
    r#""e":"AQAB","#,
    r#""d":"kLdtIj6GbDks_ApCSTYQtelcNttlKiOyPzMrXHeI-yk1F7-kpDxY4-WY5NWV5KntaEeXS1j82E375xxhWMHXyvjYecPT9fpwR_M9gV8n9Hrh2anTpTD93Dt62ypW3yDsJzBnTnrYu1iwWRgBKrEYY46qAZIrA2xAwnm2X7uGR1hghkqDp0Vqj3kbSCz1XyfCs6_LehBwtxHIyh8Ripy40p24moOAbgxVw3rxT_vlt3UVe4WO3JkJOzlpUf-KTVI2Ptgm-dARxTEtE-id-4OJr0h-K-VFs3VSndVTIznSxfyrj8ILL6MG_Uv8YAu7VILSB3lOW085-4qE3DzgrTjgyQ","#,
    r#""p":"1r52Xk46c-LsfB5P442p7atdPUrxQSy4mti_tZI3Mgf2EuFVbUoDBvaRQ-SWxkbkmoEzL7JXroSBjSrK3YIQgYdMgyAEPTPjXv_hI2_1eTSPVZfzL0lffNn03IXqWF5MDFuoUYE0hzb2vhrlN_rKrbfDIwUbTrjjgieRbwC6Cl0","#,
    r#""q":"wLb35x7hmQWZsWJmB_vle87ihgZ19S8lBEROLIsZG4ayZVe9Hi9gDVCOBmUDdaDYVTSNx_8Fyw1YYa9XGrGnDew00J28cRUoeBB_jKI1oma0Orv1T9aXIWxKwd4gvxFImOWr3QRL9KEBRzk2RatUBnmDZJTIAfwTs0g68UZHvtc","#,
    r#""dp":"ZK-YwE7diUh0qR1tR7w8WHtolDx3MZ_OTowiFvgfeQ3SiresXjm9gZ5KLhMXvo-uz-KUJWDxS5pFQ_M0evdo1dKiRTjVw_x4NyqyXPM5nULPkcpU827rnpZzAJKpdhWAgqrXGKAECQH0Xt4taznjnd_zVpAmZZq60WPMBMfKcuE","#,
    r#""dq":"Dq0gfgJ1DdFGXiLvQEZnuKEN0UUmsJBxkjydc3j4ZYdBiMRAy86x0vHCjywcMlYYg4yoC4YZa9hNVcsjqA3FeiL19rk8g6Qn29Tt0cj8qqyFpz9vNDBUfCAiJVeESOjJDZPYHdHY8v1b-o-Z2X5tvLx-TCekf7oxyeKDUqKWjis","#,
    r#""qi":"VIMpMYbPf47dT1w_zDUXfPimsSegnMOA1zTaX7aGk_8urY6R8-ZW1FxU7AlWAyLWybqq6t16VFd7hQd0y6flUK4SlOydB61gwanOsXGOAOv82cHq0E3eL4HrtZkUuKvnPrMnsUUFlfUdybVzxyjz9JF_XyaY14ardLSjf4L_FNY"}"#
);
const A1_JWE: &str = concat!(
    "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.",
    "OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGe",
    "ipsEdY3mx_etLbbWSrFr05kLzcSr4qKAq7YN7e9jwQRb23nfa6c9d-StnImGyFDb",
    "Sv04uVuxIp5Zms1gNxKKK2Da14B8S4rzVRltdYwam_lDp5XnZAYpQdb76FdIKLaV",
    "mqgfwX7XWRxv2322i-vDxRfqNzo_tETKzpVLzfiwQyeyPGLBIO56YJ7eObdv0je8",
    "1860ppamavo35UgoRdbYaBcoh9QcfylQr66oc6vFWXRcZ_ZT2LawVCWTIy3brGPi",
    "6UklfCpIMfIjf7iGdXKHzg.",
    "48V1_ALb6US04U3b.",
    "5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6ji",
    "SdiwkIr3ajwQzaBtQD_A.",
    "XFBoMYUZodetZdvTiFvSkQ"
);

// RFC 7516 Appendix A.2: RSAES-PKCS1-v1_5 and AES_128_CBC_HMAC_SHA_256
// (key from A.2.3, JWE from A.2.7).
const A2_KEY: &str = concat!(
    r#"{"kty":"RSA","#,
    r#""n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","#,
    r#""e":"AQAB","#,
    r#""d":"VFCWOqXr8nvZNyaaJLXdnNPXZKRaWCjkU5Q2egQQpTBMwhprMzWzpR8Sxq1OPThh_J6MUD8Z35wky9b8eEO0pwNS8xlh1lOFRRBoNqDIKVOku0aZb-rynq8cxjDTLZQ6Fz7jSjR1Klop-YKaUHc9GsEofQqYruPhzSA-QgajZGPbE_0ZaVDJHfyd7UUBUKunFMScbflYAAOYJqVIVwaYR5zWEEceUjNnTNo_CVSj-VvXLO5VZfCUAVLgW4dpf1SrtZjSt34YLsRarSb127reG_DUwg9Ch-KyvjT1SkHgUWRVGcyly7uvVGRSDwsXypdrNinPA4jlhoNdizK2zF2CWQ","#,
    r#""p":"9gY2w6I6S6L0juEKsbeDAwpd9WMfgqFoeA9vEyEUuk4kLwBKcoe1x4HG68ik918hdDSE9vDQSccA3xXHOAFOPJ8R9EeIAbTi1VwBYnbTp87X-xcPWlEPkrdoUKW60tgs1aNd_Nnc9LEVVPMS390zbFxt8TN_biaBgelNgbC95sM","#,
    r#""q":"uKlCKvKv_ZJMVcdIs5vVSU_6cPtYI1ljWytExV_skstvRSNi9r66jdd9-yBhVfuG4shsp2j7rGnIio901RBeHo6TPKWVVykPu1iYhQXw1jIABfw-MVsN-3bQ76WLdt2SDxsHs7q7zPyUyHXmps7ycZ5c72wGkUwNOjYelmkiNS0","#,
    r#""dp":"w0kZbV63cVRvVX6yk3C8cMxo2qCM4Y8nsq1lmMSYhG4EcL6FWbX5h9yuvngs4iLEFk6eALoUS4vIWEwcL4txw9LsWH_zKI-hwoReoP77cOdSL4AVcraHawlkpyd2TWjE5evgbhWtOxnZee3cXJBkAi64Ik6jZxbvk-RR3pEhnCs","#,
    r#""dq":"o_8V14SezckO6CNLKs_btPdFiO9_kC1DsuUTd2LAfIIVeMZ7jn1Gus_Ff7B7IVx3p5KuBGOVF8L-qifLb6nQnLysgHDh132NDioZkhH7mI7hPG-PYE_odApKdnqECHWw0J-F0JWnUd6D2B_1TvF9mXA2Qx-iGYn8OVV1Bsmp6qU","#,
    r#""qi":"eNho5yRBEBxhGBtQRww9QirZsB66TrfFReG_CcteI1aCneT0ELGhYlRlCtUkTRclIfuEPmNsNDPbLoLqqCVznFbvdB7x-Tl-m0l_eFTj2KiqwGqE9PZB9nNTwMVvH3VRRSLWACvPnSiwP8N5Usy-WRXS-V7TbpxIhvepTfE0NNo"}"#
);
const A2_JWE: &str = concat!(
    "eyJhbGciOiJSU0ExXzUiLCJlbmMiOiJBMTI4Q0JDLUhTMjU2In0.",
    "UGhIOguC7IuEvf_NPVaXsGMoLOmwvc1GyqlIKOK1nN94nHPoltGRhWhw7Zx0-kFm",
    "1NJn8LE9XShH59_i8J0PH5ZZyNfGy2xGdULU7sHNF6Gp2vPLgNZ__deLKxGHZ7Pc",
    "HALUzoOegEI-8E66jX2E4zyJKx-YxzZIItRzC5hlRirb6Y5Cl_p-ko3YvkkysZIF",
    "NPccxRU7qve1WYPxqbb2Yw8kZqa2rMWI5ng8OtvzlV7elprCbuPhcCdZ6XDP0_F8",
    "rkXds2vE4X-ncOIM8hAYHHi29NX0mcKiRaD0-D-ljQTP-cFPgwCp6X-nZZd9OHBv",
    "-B3oWh2TbqmScqXMR4gp_A.",
    "AxY8DCtDaGlsbGljb3RoZQ.",
    "KDlTtXchhZTGufMYmOYGS4HffxPSUrfmqCHXaI9wOGY.",
    "9hH0vgRfYgPnAHOd8stkvw"
);

#[test]
fn rfc7516_a1_rsa_oaep_a256gcm() {
    let d = decrypter(&jwk(A1_KEY), JweAlgorithm::RSA_OAEP, JweEncryption::A256GCM);
    let out = d.decrypt_compact(A1_JWE).unwrap();
    assert_eq!(
        out.plaintext(),
        b"The true sign of intelligence is not knowledge but imagination."
    );
}

/// RFC 7516 A.2 is a valid RSA1_5 JWE, and tessera refuses it whatever the
/// caller does: RSA1_5 decryption was removed (aws-lc-rs's PKCS#1 v1.5
/// decryption is not constant time on bad padding, the Marvin attack, and
/// it has no raw RSA operation to build implicit rejection on).
#[test]
fn rfc7516_a2_rsa1_5_is_refused_whatever_the_caller_does() {
    let key = jwk(A2_KEY);
    let pair = (JweAlgorithm::RSA1_5, JweEncryption::A128CBC_HS256);
    let refused = |e: tessera_jose::Error, what: &str| {
        assert_eq!(e.code(), "ERR_JWE_ALG_NOT_ALLOWED", "{what}: {e}");
        assert_eq!(e.to_string(), "RSA1_5 is not allowed here", "{what}");
    };
    // A decrypter cannot be made for it: with the key as it is, bound to
    // RSA1_5, alongside an allowed pair, or from a JWK Set.
    refused(Decrypter::builder().key(&key, &[pair]).unwrap_err(), "key");
    let bound = key.clone().with_alg("RSA1_5").unwrap();
    refused(
        Decrypter::builder().key(&bound, &[pair]).unwrap_err(),
        "key bound to RSA1_5",
    );
    let oaep = (JweAlgorithm::RSA_OAEP_256, pair.1);
    refused(
        Decrypter::builder().key(&key, &[oaep, pair]).unwrap_err(),
        "with RSA-OAEP-256",
    );
    let set = tessera_jose::jwk::JwkSet::new(vec![key.clone()]);
    refused(
        Decrypter::builder().jwk_set(&set, &[pair]).unwrap_err(),
        "JWK Set",
    );
    // The same key for every other RSA algorithm: the token is refused by
    // its algorithm, compact and JSON, and through the nested-JWT API.
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
    refused(d.decrypt_compact(A2_JWE).unwrap_err(), "decrypt_compact");
    refused(d.decrypt(A2_JWE).unwrap_err(), "decrypt");
    let p: Vec<&str> = A2_JWE.split('.').collect();
    let flattened = serde_json::json!({
        "protected": p[0], "encrypted_key": p[1], "iv": p[2], "ciphertext": p[3], "tag": p[4],
    })
    .to_string();
    refused(d.decrypt_json(&flattened).unwrap_err(), "decrypt_json");
    let verifier = Verifier::builder()
        .key(
            &Jwk::generate_for(JwsAlgorithm::HS256).unwrap(),
            &[JwsAlgorithm::HS256],
        )
        .unwrap()
        .build()
        .unwrap();
    let nested =
        jwt::decrypt_and_verify::<Value>(A2_JWE, &d, &verifier, &Validation::new(), &FixedClock(0));
    refused(nested.unwrap_err(), "jwt::decrypt_and_verify");
    // And tessera never encrypts with it, nor makes keys for it.
    let public = key.to_public().unwrap();
    refused(
        Encrypter::new(&public, pair.0, pair.1).unwrap_err(),
        "encrypt",
    );
    refused(
        Jwk::generate_for_encryption(pair.0, pair.1).unwrap_err(),
        "generate",
    );
}

/// RFC 8037 Appendix A.6: X25519 key agreement between the ephemeral key
/// (RFC 7748 §6.1 Alice) and Bob's key (Z itself is checked in
/// `crypto::enc`'s unit tests). The published keys are consistent as JWKs,
/// and Bob's key opens the X25519 ECDH-ES JWE of the cookbook
/// (curve25519/ecdh-es.json, erratum CB-3), which exercises the same
/// agreement and the Concat KDF end to end.
#[test]
fn rfc8037_a6_x25519() {
    let bob = jwk(r#"{"kty":"OKP","crv":"X25519","kid":"Bob",
            "x":"3p7bfXt9wbTTW2HC7OQ1Nz-DQ8hbeGdNrfx-FG-IK08",
            "d":"XasIfmJKikt54X-Lg4AO5m87sSkmGLb9HC-LJ_-I4Os"}"#);
    let _ephemeral = jwk(r#"{"kty":"OKP","crv":"X25519",
            "x":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo",
            "d":"dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo"}"#);
    let case = vector("cookbook/curve25519/ecdh-es.json");
    // erratum CB-3: encrypting_key.epk.x does not match its d; the outputs
    // use the protected header's epk and decrypt with input.key (Bob).
    assert_eq!(
        jwk_value(&case["input"]["key"]).thumbprint(),
        bob.thumbprint()
    );
    let d = decrypter(&bob, JweAlgorithm::ECDH_ES, JweEncryption::A128GCM);
    let plaintext = case["input"]["plaintext"].as_str().unwrap().as_bytes();
    let mut forms = 0;
    for (_, out) in case["output"].as_object().unwrap() {
        let text = match out {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert_eq!(d.decrypt(&text).unwrap().plaintext(), plaintext);
        forms += 1;
    }
    assert_eq!(forms, 3);
}

fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    }
}

/// A decrypter for a cookbook case: its keys (or password) with their
/// algorithms, and the case's `enc`.
fn cookbook_decrypter(input: &Value, enc: JweEncryption, tolerant: bool) -> Decrypter {
    let mut b = Decrypter::builder().allow_compression();
    if tolerant {
        b = b.tolerate_unprotected_typing();
    }
    let algs = as_list(&input["alg"]);
    let keys = match input.get("pwd") {
        Some(pwd) => vec![Jwk::from_secret(pwd.as_str().unwrap().as_bytes()).unwrap()],
        None => as_list(&input["key"]).iter().map(jwk_value).collect(),
    };
    assert_eq!(keys.len(), algs.len());
    for (key, alg) in keys.iter().zip(&algs) {
        let alg: JweAlgorithm = alg.as_str().unwrap().parse().unwrap();
        if alg != JweAlgorithm::RSA1_5 {
            b = b.key(key, &[(alg, enc)]).unwrap();
        }
    }
    b.build().unwrap()
}

/// The `enc` a case really uses: from its protected header (5_13's
/// `input.enc` says "A128CBC-H256", a typo; its header says A128CBC-HS256).
fn case_enc(case: &Value) -> JweEncryption {
    let content = &case["encrypting_content"];
    let protected = content["protected"]
        .get("enc")
        .or(content.get("unprotected").and_then(|u| u.get("enc")));
    protected
        .or(case["input"].get("enc"))
        .and_then(Value::as_str)
        .unwrap()
        .parse()
        .unwrap()
}

/// What a cookbook JWE case came to.
#[derive(Debug, Default, PartialEq)]
struct CookbookOutcome {
    /// (form, key) pairs decrypted to the case's plaintext.
    decrypted: usize,
    /// (form, key) pairs refused because the key's recipient uses `RSA1_5`.
    refused: usize,
    /// (form, key) pairs first refused for an unprotected `typ`/`cty`.
    typing_refused: usize,
}

/// Decrypts every output form of a cookbook JWE case with every key it
/// names. A recipient using `RSA1_5` (RFC 7520 §5.1, one of §5.13's three)
/// must instead be refused with the algorithm error: tessera no longer
/// decrypts it.
fn check_cookbook_case(file: &str, case: &Value) -> CookbookOutcome {
    let input = &case["input"];
    let enc = case_enc(case);
    let plaintext = input["plaintext"].as_str().unwrap().as_bytes();
    let algs = as_list(&input["alg"]);
    let keys: Vec<Jwk> = match input.get("pwd") {
        Some(pwd) => vec![Jwk::from_secret(pwd.as_str().unwrap().as_bytes()).unwrap()],
        None => as_list(&input["key"]).iter().map(jwk_value).collect(),
    };
    let mut outcome = CookbookOutcome::default();
    let unprotected_typing = case["encrypting_content"]
        .get("unprotected")
        .is_some_and(|u| u.get("cty").is_some() || u.get("typ").is_some());
    for (form, out) in case["output"].as_object().unwrap() {
        let text = match out {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        // Each recipient's key alone opens it (5_13 has three), but for
        // RSA1_5: no decrypter takes the key for it, and the same key for
        // RSA-OAEP-256 does not open the JWE.
        for (key, alg) in keys.iter().zip(&algs) {
            let alg: JweAlgorithm = alg.as_str().unwrap().parse().unwrap();
            if alg == JweAlgorithm::RSA1_5 {
                let e = Decrypter::builder().key(key, &[(alg, enc)]).unwrap_err();
                assert_eq!(e.code(), "ERR_JWE_ALG_NOT_ALLOWED", "{file} {form}");
                let oaep = decrypter(key, JweAlgorithm::RSA_OAEP_256, enc);
                let e = oaep.decrypt(&text).unwrap_err();
                if keys.len() == 1 {
                    // With several recipients, the error is another's.
                    assert_eq!(e.code(), "ERR_JWE_ALG_NOT_ALLOWED", "{file} {form}");
                }
                outcome.refused += 1;
                continue;
            }
            let d = decrypter(key, alg, enc);
            if unprotected_typing {
                // §5.13 puts `cty` in the shared unprotected header, where
                // anyone could have put it: refused unless tolerated, and
                // then it does not count.
                assert_eq!(
                    d.decrypt(&text).unwrap_err().code(),
                    "ERR_JWE_INVALID_HEADER",
                    "{file} {form}"
                );
                outcome.typing_refused += 1;
            }
            let d = if unprotected_typing {
                Decrypter::builder()
                    .key(key, &[(alg, enc)])
                    .unwrap()
                    .tolerate_unprotected_typing()
                    .build()
                    .unwrap()
            } else {
                d
            };
            let opened = d
                .decrypt(&text)
                .unwrap_or_else(|e| panic!("{file} {form} {alg}: {e}"));
            if unprotected_typing {
                assert_eq!(opened.header().cty(), None, "{file}");
                assert!(opened.header().get("cty").is_some(), "{file}");
            }
            assert_eq!(opened.plaintext(), plaintext, "{file} {form}");
            if let Some(aad) = input.get("aad") {
                assert_eq!(opened.aad(), Some(aad.as_str().unwrap().as_bytes()));
            }
            outcome.decrypted += 1;
        }
        // All keys together (those not for RSA1_5) also work.
        if algs.iter().any(|a| a != "RSA1_5") {
            assert_eq!(
                cookbook_decrypter(input, enc, unprotected_typing)
                    .decrypt(&text)
                    .unwrap()
                    .plaintext(),
                plaintext
            );
        }
    }
    outcome
}

#[test]
fn rfc7520_section5_every_jwe_example() {
    let mut files = 0;
    let (mut checked, mut refused, mut typing) = (0, 0, 0);
    for file in vector_dir("cookbook/jwe") {
        let case = vector(&file);
        let outcome = check_cookbook_case(&file, &case);
        checked += outcome.decrypted;
        refused += outcome.refused;
        typing += outcome.typing_refused;
        files += 1;
    }
    assert_eq!(files, 13);
    // 5_2..5_9: 3 forms; 5_10..5_12: 2 forms; 5_13: 1 form × 3 recipients,
    // but for RSA1_5, whose decryption was removed: 5_1's 3 forms and 5_13's
    // first recipient are refused.
    assert_eq!(checked, 8 * 3 + 3 * 2 + 2);
    assert_eq!(refused, 3 + 1);
    // 5_13's shared unprotected `cty`: refused by default for each of its
    // two decryptable recipients, then read with
    // `tolerate_unprotected_typing` (where it does not count).
    assert_eq!(typing, 2);
    eprintln!(
        "RFC 7520 §5: {files} files, {checked} (form, key) decryptions agree, \
         {refused} refused as RSA1_5, {typing} refused by default for an unprotected cty \
         and then decrypted with tolerate_unprotected_typing"
    );
}

/// RFC 7520 §6: a JWS (PS256) inside a JWE (RSA-OAEP, A128GCM). Every
/// output form decrypts to the signed JWT, which verifies with the signer's key.
#[test]
fn rfc7520_section6_nesting() {
    let case = vector("cookbook/6.nesting_signatures_and_encryption.json");
    let sign = &case["sign"];
    let signer_key = jwk_value(&sign["input"]["key"]);
    let verifier = Verifier::builder()
        .key(&signer_key.to_public().unwrap(), &[JwsAlgorithm::PS256])
        .unwrap()
        .build()
        .unwrap();
    let inner = sign["output"]["compact"].as_str().unwrap();
    assert_eq!(
        verifier.verify_compact(inner).unwrap().payload(),
        sign["input"]["payload"].as_str().unwrap().as_bytes()
    );
    let encrypt = &case["encrypt"];
    assert_eq!(encrypt["input"]["plaintext"].as_str().unwrap(), inner);
    let enc = case_enc(encrypt);
    let alg: JweAlgorithm = encrypt["input"]["alg"].as_str().unwrap().parse().unwrap();
    let d = decrypter(&jwk_value(&encrypt["input"]["key"]), alg, enc);
    let mut forms = 0;
    for (_, out) in encrypt["output"].as_object().unwrap() {
        let text = match out {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let opened = d.decrypt(&text).unwrap();
        assert_eq!(opened.header().cty(), Some("JWT"));
        let jws = std::str::from_utf8(opened.plaintext()).unwrap();
        assert!(verifier.verify_compact(jws).is_ok());
        forms += 1;
    }
    assert_eq!(forms, 3);
    // The compact form through the one-call nested API. Its claims expired
    // in 2011 (exp 1300819380), so the clock is set before that.
    let compact = encrypt["output"]["compact"].as_str().unwrap();
    let nested = jwt::decrypt_and_verify::<Value>(
        compact,
        &d,
        &verifier,
        &Validation::new(),
        &FixedClock(1_300_819_000),
    )
    .unwrap();
    assert_eq!(
        nested.jwt().claims().iss.as_deref(),
        Some("hobbiton.example")
    );
}

// ------------------------------------------------------------------ round trips

/// A key for `alg`; RSA keys are generated once.
fn key_for(alg: JweAlgorithm, enc: JweEncryption) -> Jwk {
    static RSA: std::sync::OnceLock<Jwk> = std::sync::OnceLock::new();
    if alg.name().starts_with("RSA") {
        return RSA
            .get_or_init(|| Jwk::generate_rsa(2048).unwrap().with_kid("rsa"))
            .clone();
    }
    if alg == JweAlgorithm::RSA1_5 {
        unreachable!()
    }
    Jwk::generate_for_encryption(alg, enc).unwrap()
}

fn sender(key: &Jwk) -> Jwk {
    if key.is_symmetric() {
        key.clone()
    } else {
        key.to_public().unwrap()
    }
}

#[test]
fn round_trip_every_alg_and_enc_in_every_serialization() {
    let plaintext = "Ünïcødé payload, with \u{0}\u{1} bytes".as_bytes();
    let mut pairs = 0;
    for &alg in JweAlgorithm::ALL {
        if alg == JweAlgorithm::RSA1_5 {
            continue; // decryption only
        }
        for &enc in JweEncryption::ALL {
            let key = key_for(alg, enc);
            let e = Encrypter::new(&sender(&key), alg, enc)
                .unwrap()
                .pbes2_count(1000)
                .unwrap();
            let d = decrypter(&key, alg, enc);
            let compact = e
                .encrypt_compact(&JweHeader::new().typ("test"), plaintext)
                .unwrap();
            let opened = d.decrypt_compact(&compact).unwrap();
            assert_eq!(opened.plaintext(), plaintext, "{alg} {enc}");
            assert_eq!((opened.header().alg(), opened.header().enc()), (alg, enc));
            assert_eq!(opened.header().typ(), Some("test"));

            let flat = e
                .encrypt_flattened(
                    &JweHeader::new(),
                    &JweHeader::new().param("x-shared", "yes".into()).unwrap(),
                    Some(b"extra authenticated data"),
                    plaintext,
                )
                .unwrap();
            let opened = d.decrypt_json(&flat).unwrap();
            assert_eq!(opened.plaintext(), plaintext, "{alg} {enc} flattened");
            assert_eq!(opened.aad(), Some(&b"extra authenticated data"[..]));
            assert_eq!(opened.header().get("x-shared"), Some(&Value::from("yes")));

            if !alg.is_direct() {
                let general = encrypt_general(
                    &JweHeader::new(),
                    &JweHeader::new(),
                    None,
                    &[Recipient {
                        encrypter: &e,
                        header: JweHeader::new().param("note", 1.into()).unwrap(),
                    }],
                    plaintext,
                )
                .unwrap();
                let opened = d.decrypt_json(&general).unwrap();
                assert_eq!(opened.plaintext(), plaintext, "{alg} {enc} general");
            }
            let zipped = Encrypter::new(&sender(&key), alg, enc)
                .unwrap()
                .pbes2_count(1000)
                .unwrap()
                .compress()
                .encrypt_compact(&JweHeader::new(), &[b'z'; 5000])
                .unwrap();
            assert!(zipped.len() < 2000, "{alg} {enc}: zip shrinks the content");
            assert_eq!(
                d.decrypt_compact(&zipped).unwrap().plaintext(),
                &[b'z'; 5000]
            );
            pairs += 1;
        }
    }
    assert_eq!(pairs, 18 * 6);
}

#[test]
fn ecdh_es_on_every_curve() {
    let curves = [
        Jwk::generate_ec(EcCurve::P256).unwrap(),
        Jwk::generate_ec(EcCurve::P384).unwrap(),
        Jwk::generate_ec(EcCurve::P521).unwrap(),
        Jwk::generate_okp(OkpCurve::X25519).unwrap(),
    ];
    for key in &curves {
        for alg in [
            JweAlgorithm::ECDH_ES,
            JweAlgorithm::ECDH_ES_A128KW,
            JweAlgorithm::ECDH_ES_A192KW,
            JweAlgorithm::ECDH_ES_A256KW,
        ] {
            for &enc in JweEncryption::ALL {
                let e = Encrypter::new(&key.to_public().unwrap(), alg, enc)
                    .unwrap()
                    .party_info(b"Alice", b"Bob");
                let token = e.encrypt_compact(&JweHeader::new(), b"agreed").unwrap();
                let opened = decrypter(key, alg, enc).decrypt_compact(&token).unwrap();
                assert_eq!(opened.plaintext(), b"agreed");
                assert_eq!(opened.header().get("apu"), Some(&Value::from("QWxpY2U")));
            }
        }
    }
}

#[test]
fn several_recipients_each_open_their_share() {
    let enc = JweEncryption::A256GCM;
    let rsa = key_for(JweAlgorithm::RSA_OAEP_256, enc);
    let ec = Jwk::generate_for_encryption(JweAlgorithm::ECDH_ES_A256KW, enc).unwrap();
    let kw = Jwk::generate_for_encryption(JweAlgorithm::A256GCMKW, enc).unwrap();
    let pw = Jwk::from_secret(b"correct horse battery staple").unwrap();
    let list = [
        (rsa.clone(), JweAlgorithm::RSA_OAEP_256),
        (ec.clone(), JweAlgorithm::ECDH_ES_A256KW),
        (kw.clone(), JweAlgorithm::A256GCMKW),
        (pw.clone(), JweAlgorithm::PBES2_HS256_A128KW),
    ];
    let encrypters: Vec<Encrypter> = list
        .iter()
        .map(|(k, a)| {
            Encrypter::new(&sender(k), *a, enc)
                .unwrap()
                .pbes2_count(1000)
                .unwrap()
        })
        .collect();
    let recipients: Vec<Recipient> = encrypters
        .iter()
        .map(|e| Recipient {
            encrypter: e,
            header: JweHeader::new(),
        })
        .collect();
    let jwe = encrypt_general(
        &JweHeader::new().typ("multi").cty("text/plain"),
        &JweHeader::new(),
        Some(b"aad"),
        &recipients,
        b"shared secret",
    )
    .unwrap();
    for (index, (key, alg)) in list.iter().enumerate() {
        let opened = decrypter(key, *alg, enc).decrypt_json(&jwe).unwrap();
        assert_eq!(opened.plaintext(), b"shared secret");
        assert_eq!(opened.recipient_index(), index);
        assert_eq!(opened.header().cty(), Some("text/plain"));
    }
    // dir and ECDH-ES decide the CEK, so they cannot share it.
    let dir_key = Jwk::generate_for_encryption(JweAlgorithm::Dir, enc).unwrap();
    let dir = Encrypter::new(&dir_key, JweAlgorithm::Dir, enc).unwrap();
    let pair_refused = |first: &Encrypter| {
        let pair = [first, &encrypters[0]].map(|e| Recipient {
            encrypter: e,
            header: JweHeader::new(),
        });
        let err = encrypt_general(&JweHeader::new(), &JweHeader::new(), None, &pair, b"x");
        assert_eq!(err.unwrap_err().code(), "ERR_JWE_INVALID_HEADER");
    };
    pair_refused(&dir);
    // Recipients must agree on enc.
    let other = Encrypter::new(&kw, JweAlgorithm::A256GCMKW, JweEncryption::A128GCM).unwrap();
    pair_refused(&other);
}

// ------------------------------------------------------------------ nested JWT

#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
struct Step {
    acr: String,
}

fn nested_setup() -> (Signer, Verifier, Encrypter, Decrypter) {
    let signing = Jwk::generate_for(JwsAlgorithm::RS256).unwrap();
    let (alg, enc) = (JweAlgorithm::RSA_OAEP_256, JweEncryption::A256GCM);
    let sealing = key_for(alg, enc);
    (
        Signer::new(&signing, JwsAlgorithm::RS256).unwrap(),
        Verifier::builder()
            .key(&signing.to_public().unwrap(), &[JwsAlgorithm::RS256])
            .unwrap()
            .build()
            .unwrap(),
        Encrypter::new(&sealing.to_public().unwrap(), alg, enc).unwrap(),
        decrypter(&sealing, alg, enc),
    )
}

#[test]
fn nested_jwt_sign_then_encrypt() {
    let (signer, verifier, encrypter, decrypter) = nested_setup();
    let claims = Claims::new(Step { acr: "mfa".into() })
        .issuer("https://issuer.example")
        .audience("rs")
        .expires_at(2_000);
    let token = jwt::sign_and_encrypt(
        &signer,
        &JwsHeader::new().typ("at+jwt"),
        &claims,
        &encrypter,
        &JweHeader::new(),
    )
    .unwrap();
    assert_eq!(token.split('.').count(), 5);
    let validation = Validation::new()
        .issuer("https://issuer.example")
        .audience("rs")
        .typ("at+jwt");
    let nested = jwt::decrypt_and_verify::<Step>(
        &token,
        &decrypter,
        &verifier,
        &validation,
        &FixedClock(1_000),
    )
    .unwrap();
    assert_eq!(nested.outer_header().cty(), Some("JWT"));
    assert_eq!(nested.jwt().claims().custom, Step { acr: "mfa".into() });
    // The claims are still validated: expired.
    let late = jwt::decrypt_and_verify::<Step>(
        &token,
        &decrypter,
        &verifier,
        &validation,
        &FixedClock(9_000),
    );
    assert_eq!(late.unwrap_err().code(), "ERR_JWT_EXPIRED");
}

#[test]
fn nested_jwt_refuses_encrypted_but_unsigned() {
    let (_, verifier, encrypter, decrypter) = nested_setup();
    let v = Validation::new().allow_missing_exp();
    let clock = FixedClock(1_000);
    // Claims straight inside the JWE, even with cty JWT.
    let bare = encrypter
        .encrypt_compact(&JweHeader::new().cty("JWT"), br#"{"sub":"admin"}"#)
        .unwrap();
    let e = jwt::decrypt_and_verify::<Value>(&bare, &decrypter, &verifier, &v, &clock).unwrap_err();
    assert_eq!(e.code(), "ERR_JWE_NOT_NESTED");
    // A signed JWT inside, but no cty: not declared nested.
    let (signer, ..) = nested_setup();
    let inner = jwt::sign(&signer, &JwsHeader::new(), &Claims::new(())).unwrap();
    let undeclared = encrypter
        .encrypt_compact(&JweHeader::new(), inner.as_bytes())
        .unwrap();
    let e = jwt::decrypt_and_verify::<Value>(&undeclared, &decrypter, &verifier, &v, &clock)
        .unwrap_err();
    assert_eq!(e.code(), "ERR_JWE_NOT_NESTED");
    // A JWT signed by someone else, properly nested: refused (its kid names
    // no key of the verifier; without a kid, the signature would fail).
    let forged = encrypter
        .encrypt_compact(&JweHeader::new().cty("JWT"), inner.as_bytes())
        .unwrap();
    let e =
        jwt::decrypt_and_verify::<Value>(&forged, &decrypter, &verifier, &v, &clock).unwrap_err();
    assert_eq!(e.code(), "ERR_JWS_UNKNOWN_KID");
    let stranger = Signer::new(&Jwk::generate_rsa(2048).unwrap(), JwsAlgorithm::RS256).unwrap();
    let unsigned_by_us = jwt::sign(&stranger, &JwsHeader::new(), &Claims::new(())).unwrap();
    let forged = encrypter
        .encrypt_compact(&JweHeader::new().cty("JWT"), unsigned_by_us.as_bytes())
        .unwrap();
    let e =
        jwt::decrypt_and_verify::<Value>(&forged, &decrypter, &verifier, &v, &clock).unwrap_err();
    assert_eq!(e.code(), "ERR_JWS_SIGNATURE_INVALID");
    // An unsecured JWT ("alg":"none") inside is refused too.
    let none = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.";
    let sealed_none = encrypter
        .encrypt_compact(&JweHeader::new().cty("JWT"), none.as_bytes())
        .unwrap();
    let e = jwt::decrypt_and_verify::<Value>(&sealed_none, &decrypter, &verifier, &v, &clock)
        .unwrap_err();
    assert_eq!(e.code(), "ERR_JWS_UNSUPPORTED_ALG");
}

#[test]
fn decrypter_from_a_jwk_set_uses_only_encryption_keys() {
    use tessera_jose::jwk::JwkSet;
    let (alg, enc) = (JweAlgorithm::ECDH_ES_A128KW, JweEncryption::A128GCM);
    let sig = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
    let enc_key = Jwk::generate_for_encryption(alg, enc).unwrap();
    let other_alg = Jwk::generate_for_encryption(JweAlgorithm::ECDH_ES, enc).unwrap();
    let set = JwkSet::new(vec![sig.clone(), enc_key.clone(), other_alg]);
    let d = Decrypter::builder()
        .jwk_set(&set, &[(alg, enc)])
        .unwrap()
        .build()
        .unwrap();
    let token = Encrypter::new(&enc_key.to_public().unwrap(), alg, enc)
        .unwrap()
        .encrypt_compact(&JweHeader::new(), b"from the set")
        .unwrap();
    assert_eq!(
        d.decrypt_compact(&token).unwrap().plaintext(),
        b"from the set"
    );
    // The set's signing key and the key bound to plain ECDH-ES were left out.
    let only_sig = JwkSet::new(vec![sig]);
    let empty = Decrypter::builder()
        .jwk_set(&only_sig, &[(alg, enc)])
        .unwrap()
        .build();
    assert_eq!(empty.unwrap_err().code(), "ERR_KEY_SET_EMPTY");
}

/// The outer JWE of a nested token may be JSON; the inner JWT stays compact.
#[test]
fn nested_jwt_with_a_json_outer_jwe() {
    let (signer, verifier, encrypter, decrypter) = nested_setup();
    let claims = Claims::new(Step { acr: "mfa".into() }).expires_at(2_000);
    let inner = jwt::sign(&signer, &JwsHeader::new(), &claims).unwrap();
    let outer = encrypter
        .encrypt_flattened(
            &JweHeader::new().cty("JWT"),
            &JweHeader::new(),
            None,
            inner.as_bytes(),
        )
        .unwrap();
    let nested = jwt::decrypt_and_verify::<Step>(
        &outer,
        &decrypter,
        &verifier,
        &Validation::new(),
        &FixedClock(1_000),
    )
    .unwrap();
    assert_eq!(nested.jwt().claims().custom.acr, "mfa");
}

/// `danger::decode_jwe_headers` shows headers of both serializations and
/// never the plaintext.
#[test]
fn jwe_headers_without_decrypting() {
    let (_, _, encrypter, _) = nested_setup();
    let compact = encrypter
        .encrypt_compact(&JweHeader::new().cty("JWT"), b"secret")
        .unwrap();
    let h = tessera_jose::danger::decode_jwe_headers(&compact).unwrap();
    assert_eq!(h.protected["cty"], "JWT");
    assert!(h.protected.contains_key("enc"));
    assert_eq!(h.shared, None);
    let json = encrypter
        .encrypt_flattened(
            &JweHeader::new(),
            &JweHeader::new().param("x-note", "shared".into()).unwrap(),
            None,
            b"secret",
        )
        .unwrap();
    let h = tessera_jose::danger::decode_jwe_headers(&json).unwrap();
    assert_eq!(h.shared.unwrap()["x-note"], "shared");
    assert_eq!(h.recipients.len(), 1);
    let e = tessera_jose::danger::decode_jwe_headers("a.b.c").unwrap_err();
    assert_eq!(e.code(), "ERR_JWE_MALFORMED");
}
