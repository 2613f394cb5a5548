//! Examples from the RFCs, typed in with their sources. Deterministic
//! signatures (HMAC, RSASSA-PKCS1-v1_5, Ed25519) are reproduced byte for byte.

use tessera_jose::jwa::{Hash, JwsAlgorithm};
use tessera_jose::jwk::{Jwk, JwkSet, KeyUse};
use tessera_jose::jws::{ProtectedHeader, Signer, Verifier};
use tessera_jose::jwt::{self, FixedClock, Validation};
use tessera_jose::{b64, danger};

use crate::support::{jwk, verifier};

// RFC 7515 Appendix A.1.1: the HMAC key, header and payload (with CRLFs).
const A1_KEY: &str = r#"{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#;
const A1_HEADER: &[u8] = b"{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}";
const A_PAYLOAD: &[u8] =
    b"{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";
const A1_JWS: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

// RFC 7515 Appendix A.2.1: the RSA key and the resulting JWS.
const A2_KEY: &str = r#"{"kty":"RSA","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ","e":"AQAB","d":"Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ","p":"4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_Py5PJdTJNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc","q":"uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_YwD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc","dp":"BwKfV3Akq5_MFZDFZCnW-wzl-CCo83WoZvnLQwCTeDv8uzluRSnm71I3QCLdhrqE2e9YkxvuxdBfpT_PI7Yz-FOKnu1R6HsJeDCjn12Sk3vmAktV2zb34MCdy7cpdTh_YVr7tss2u6vneTwrA86rZtu5Mbr1C1XsmvkxHQAdYo0","dq":"h_96-mK1R_7glhsum81dZxjTnYynPbZpHziZjeeHcXYsXaaMwkOlODsWa7I9xXDoRwbKgB719rrmI2oKr6N3Do9U0ajaHF-NKJnwgjMd2w9cjz3_-kyNlxAr2v4IKhGNpmM5iIgOS1VZnOZ68m6_pbLBSp3nssTdlqvd0tIiTHU","qi":"IYd7DHOhrWvxkwPQsRM2tOgrjbcrfvtQJipd-DlcxyVuuM9sQLdgjVk2oy26F0EmpScGLq2MowX7fhd_QJQ3ydy5cY7YIBi87w93IKLEdfnbJtoOPLUW0ITrJReOgo1cq9SbsxYawBgfp_gh6A5603k2-ZQwVK0JKSHuLFkuQ3U"}"#;
const A2_JWS: &str = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

// RFC 7515 Appendix A.3.1: the P-256 key and the JWS (ECDSA is randomized: verify only).
const A3_KEY: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}"#;
const A3_JWS: &str = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

// RFC 7515 Appendix A.4.1: the P-521 key and the JWS of "Payload".
const A4_KEY: &str = r#"{"kty":"EC","crv":"P-521","x":"AekpBQ8ST8a8VcfVOTNl353vSrDCLLJXmPk06wTjxrrjcBpXp5EOnYG_NjFZ6OvLFV1jSfS9tsz4qUxcWceqwQGk","y":"ADSmRA43Z1DSNx_RvcLI87cdL07l6jQyyBXMoxVg_l2Th-x3S1WDhjDly79ajL4Kkd0AZMaZmh9ubmf63e3kyMj2","d":"AY5pb7A0UFiB3RELSD64fTLOSV_jazdF7fLYyuTw8lOfRhWg6Y6rUrPAxerEzgdRhajnu0ferB0d53vM9mE15j2C"}"#;
const A4_JWS: &str = "eyJhbGciOiJFUzUxMiJ9.UGF5bG9hZA.AdwMgeerwtHoh-l192l60hp9wAHZFVJbLfD_UxMi70cwnZOYaRI1bKPWROc-mZZqwqT2SI-KGDKB34XO0aw_7XdtAG8GaSwFKdCAPZgoXD2YBJZCPEX3xKpRwcdOO8KpEHwJjyqOgzDO7iKvU8vcnwNrmxYbSW9ERBXukOXolLzeO_Jn";

// RFC 7515 Appendix A.5: an Unsecured JWS. It must never be accepted.
const A5_JWS: &str = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.";

#[test]
fn rfc7515_a1_hs256_byte_exact() {
    let key = jwk(A1_KEY);
    let header = ProtectedHeader::from_json(A1_HEADER).unwrap();
    let token = Signer::new(&key, JwsAlgorithm::HS256)
        .unwrap()
        .sign_compact_with(&header, A_PAYLOAD)
        .unwrap();
    assert_eq!(token, A1_JWS);
    let v = verifier(&key, JwsAlgorithm::HS256);
    assert_eq!(v.verify_compact(A1_JWS).unwrap().payload(), A_PAYLOAD);
    // The same token as a JWT, at a time before its exp.
    let claims = jwt::verify::<serde_json::Value>(
        A1_JWS,
        &v,
        &Validation::new().issuer("joe"),
        &FixedClock(1_300_819_000),
    )
    .unwrap();
    assert_eq!(claims.claims().custom["http://example.com/is_root"], true);
    let late = jwt::verify::<serde_json::Value>(
        A1_JWS,
        &v,
        &Validation::new(),
        &FixedClock(1_300_819_441),
    );
    assert_eq!(late.unwrap_err().code(), "ERR_JWT_EXPIRED");
}

#[test]
fn rfc7515_a2_rs256_byte_exact() {
    let key = jwk(A2_KEY);
    let header = ProtectedHeader::from_json(br#"{"alg":"RS256"}"#).unwrap();
    let token = Signer::new(&key, JwsAlgorithm::RS256)
        .unwrap()
        .sign_compact_with(&header, A_PAYLOAD)
        .unwrap();
    assert_eq!(token, A2_JWS);
    let v = verifier(&key.to_public().unwrap(), JwsAlgorithm::RS256);
    assert_eq!(v.verify_compact(A2_JWS).unwrap().payload(), A_PAYLOAD);
}

#[test]
fn rfc7515_a3_es256_verifies() {
    let key = jwk(A3_KEY);
    let v = verifier(&key.to_public().unwrap(), JwsAlgorithm::ES256);
    assert_eq!(v.verify_compact(A3_JWS).unwrap().payload(), A_PAYLOAD);
    // And our own ES256 signatures with it verify too.
    let ours = Signer::new(&key, JwsAlgorithm::ES256)
        .unwrap()
        .sign_compact_with(
            &ProtectedHeader::from_json(br#"{"alg":"ES256"}"#).unwrap(),
            A_PAYLOAD,
        )
        .unwrap();
    assert!(v.verify_compact(&ours).is_ok());
}

#[test]
fn rfc7515_a4_es512_verifies() {
    let key = jwk(A4_KEY);
    let v = verifier(&key.to_public().unwrap(), JwsAlgorithm::ES512);
    assert_eq!(v.verify_compact(A4_JWS).unwrap().payload(), b"Payload");
}

#[test]
fn rfc7515_a5_unsecured_is_refused() {
    // No verifier accepts it, whatever its keys: `none` is not an algorithm here.
    for (key, alg) in [
        (jwk(A1_KEY), JwsAlgorithm::HS256),
        (jwk(A2_KEY), JwsAlgorithm::RS256),
    ] {
        let e = verifier(&key, alg).verify_compact(A5_JWS).unwrap_err();
        assert_eq!(e.code(), "ERR_JWS_UNSUPPORTED_ALG");
    }
    assert!("none".parse::<JwsAlgorithm>().is_err());
    // Reading it is possible only through the explicitly unverified path.
    assert_eq!(
        danger::decode_unverified(A5_JWS).unwrap().header["alg"],
        "none"
    );
}

// RFC 7517 Appendix A.1: example public keys.
const RFC7517_A1: &str = r#"{"keys":[
  {"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","use":"enc","kid":"1"},
  {"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}]}"#;

// RFC 7517 Appendix A.2: example private keys.
const RFC7517_A2: &str = r#"{"keys":[
  {"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","d":"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE","use":"enc","kid":"1"},
  {"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","d":"X4cTteJY_gn4FYPsXB8rdXix5vwsg1FLN5E3EaG6RJoVH-HLLKD9M7dx5oo7GURknchnrRweUkC7hT5fJLM0WbFAKNLWY2vv7B6NqXSzUvxT0_YSfqijwp3RTzlBaCxWp4doFk5N2o8Gy_nHNKroADIkJ46pRUohsXywbReAdYaMwFs9tv8d_cPVY3i07a3t8MN6TNwm0dSawm9v47UiCl3Sk5ZiG7xojPLu4sbg1U2jx4IBTNBznbJSzFHK66jT8bgkuqsk0GjskDJk19Z4qwjwbsnn4j2WBii3RL-Us2lGVkY8fkFzme1z0HbIkfz0Y6mqnOYtqc0X4jfcKoAC8Q","p":"83i-7IvMGXoMXCskv73TKr8637FiO7Z27zv8oj6pbWUQyLPQBQxtPVnwD20R-60eTDmD2ujnMt5PoqMrm8RfmNhVWDtjjMmCMjOpSXicFHj7XOuVIYQyqVWlWEh6dN36GVZYk93N8Bc9vY41xy8B9RzzOGVQzXvNEvn7O0nVbfs","q":"3dfOR9cuYq-0S-mkFLzgItgMEfFzB2q3hWehMuG0oCuqnb3vobLyumqjVZQO1dIrdwgTnCdpYzBcOfW5r370AFXjiWft_NGEiovonizhKpo9VVS78TzFgxkIdrecRezsZ-1kYd_s1qDbxtkDEgfAITAG9LUnADun4vIcb6yelxk","dp":"G4sPXkc6Ya9y8oJW9_ILj4xuppu0lzi_H7VTkS8xj5SdX3coE0oimYwxIi2emTAue0UOa5dpgFGyBJ4c8tQ2VF402XRugKDTP8akYhFo5tAA77Qe_NmtuYZc3C3m3I24G2GvR5sSDxUyAN2zq8Lfn9EUms6rY3Ob8YeiKkTiBj0","dq":"s9lAH9fggBsoFR8Oac2R_E2gw282rT2kGOAhvIllETE1efrA6huUUvMfBcMpn8lqeW6vzznYY5SSQF7pMdC_agI3nG8Ibp1BUb0JUiraRNqUfLhcQb_d9GF4Dh7e74WbRsobRonujTYN1xCaP6TO61jvWrX-L18txXw494Q_cgk","qi":"GyM_p6JrXySiz1toFgKbWV-JdI3jQ4ypu9rbMWx3rQJBfmt0FoYzgUIZEVFEcOqwemRN81zoDAaa-Bk0KWNGDjJHZDdDmFhW3AN7lI-puxk_mHZGJ11rxyR8O55XLSe3SPmRfKwZI6yU24ZxvQKFYItdldUKGzO6Ia6zTKhAVRU","alg":"RS256","kid":"2011-04-29"}]}"#;

// RFC 7517 Appendix A.3: example symmetric keys.
const RFC7517_A3: &str = r#"{"keys":[
  {"kty":"oct","alg":"A128KW","k":"GawgguFyGrWKav7AX4VKUg"},
  {"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow","kid":"HMAC key used in JWS spec Appendix A.1 example"}]}"#;

// RFC 7517 Appendix B: an RSA public key with x5c (the certificate is left out here).
const RFC7517_B: &str = r#"{"kty":"RSA","use":"sig","kid":"1b94c","n":"vrjOfz9Ccdgx5nQudyhdoR17V-IubWMeOZCwX_jj0hgAsz2J_pqYW08PLbK_PdiVGKPrqzmDIsLI7sA25VEnHU1uCLNwBuUiCO11_-7dYbsr4iJmG0Qu2j8DsVyT1azpJC_NG84Ty5KKthuCaPod7iI7w0LK9orSMhBEwwZDCxTWq4aYWAchc8t-emd9qOvWtVMDC2BXksRngh6X5bUYLy6AyHKvj-nUy1wgzjYQDwHMTplCoLtU-o-8SNnZ1tmRoGE9uJkBLdh5gFENabWnU5m1ZqZPdwS-qo-meMvVfJb6jJVWRpl2SUtCnYG2C32qvbWbjZ_jBPD5eunqsIo1vQ","e":"AQAB"}"#;

// RFC 7517 Appendix C.1: the RSA private key that C.2–C.8 encrypt (the
// PBES2 encryption itself is JWE, tested with JWE).
const RFC7517_C1: &str = r#"{"kty":"RSA","kid":"juliet@capulet.lit","use":"enc","n":"t6Q8PWSi1dkJj9hTP8hNYFlvadM7DflW9mWepOJhJ66w7nyoK1gPNqFMSQRyO125Gp-TEkodhWr0iujjHVx7BcV0llS4w5ACGgPrcAd6ZcSR0-Iqom-QFcNP8Sjg086MwoqQU_LYywlAGZ21WSdS_PERyGFiNnj3QQlO8Yns5jCtLCRwLHL0Pb1fEv45AuRIuUfVcPySBWYnDyGxvjYGDSM-AqWS9zIQ2ZilgT-GqUmipg0XOC0Cc20rgLe2ymLHjpHciCKVAbY5-L32-lSeZO-Os6U15_aXrk9Gw8cPUaX1_I8sLGuSiVdt3C_Fn2PZ3Z8i744FPFGGcG1qs2Wz-Q","e":"AQAB","d":"GRtbIQmhOZtyszfgKdg4u_N-R_mZGU_9k7JQ_jn1DnfTuMdSNprTeaSTyWfSNkuaAwnOEbIQVy1IQbWVV25NY3ybc_IhUJtfri7bAXYEReWaCl3hdlPKXy9UvqPYGR0kIXTQRqns-dVJ7jahlI7LyckrpTmrM8dWBo4_PMaenNnPiQgO0xnuToxutRZJfJvG4Ox4ka3GORQd9CsCZ2vsUDmsXOfUENOyMqADC6p1M3h33tsurY15k9qMSpG9OX_IJAXmxzAh_tWiZOwk2K4yxH9tS3Lq1yX8C1EWmeRDkK2ahecG85-oLKQt5VEpWHKmjOi_gJSdSgqcN96X52esAQ","p":"2rnSOV4hKSN8sS4CgcQHFbs08XboFDqKum3sc4h3GRxrTmQdl1ZK9uw-PIHfQP0FkxXVrx-WE-ZEbrqivH_2iCLUS7wAl6XvARt1KkIaUxPPSYB9yk31s0Q8UK96E3_OrADAYtAJs-M3JxCLfNgqh56HDnETTQhH3rCT5T3yJws","q":"1u_RiFDP7LBYh3N4GXLT9OpSKYP0uQZyiaZwBtOCBNJgQxaj10RWjsZu0c6Iedis4S7B_coSKB0Kj9PaPaBzg-IySRvvcQuPamQu66riMhjVtG6TlV8CLCYKrYl52ziqK0E_ym2QnkwsUX7eYTB7LbAHRK9GqocDE5B0f808I4s","dp":"KkMTWqBUefVwZ2_Dbj1pPQqyHSHjj90L5x_MOzqYAJMcLMZtbUtwKqvVDq3tbEo3ZIcohbDtt6SbfmWzggabpQxNxuBpoOOf_a_HgMXK_lhqigI4y_kqS1wY52IwjUn5rgRrJ-yYo1h41KR-vz2pYhEAeYrhttWtxVqLCRViD6c","dq":"AvfS0-gRxvn0bwJoMSnFxYcK1WnuEjQFluMGfwGitQBWtfZ1Er7t1xDkbN9GQTB9yqpDoYaN06H7CFtrkxhJIBQaj6nkF5KKS3TQtQ5qCzkOkmxIe3KRbBymXxkb5qwUpX5ELD5xFc6FeiafWYY63TmmEAu_lRFCOJ3xDea-ots","qi":"lSQi-w9CpyUReMErP1RsBLk7wNtOvs5EQpPqmuMvqW57NBUczScEoPwmUqqabu9V0-Py4dQ57_bapoKRu1R90bvuFnU63SHWEFglZQvJDMeAvmj4sm-Fp0oYu_neotgQ0hzbI5gry7ajdYy9-2lNx_76aBZoOUu9HCJ-UsfSOI8"}"#;

#[test]
fn rfc7517_examples_parse_and_round_trip() {
    let public = JwkSet::from_json(RFC7517_A1.as_bytes()).unwrap();
    let private = JwkSet::from_json(RFC7517_A2.as_bytes()).unwrap();
    assert_eq!(public.keys().len(), 2);
    assert_eq!(private.keys().len(), 2);
    for (pub_key, priv_key) in public.keys().iter().zip(private.keys()) {
        assert!(!pub_key.is_private());
        assert!(priv_key.is_private());
        assert_eq!(pub_key.thumbprint(), priv_key.thumbprint());
        assert_eq!(priv_key.to_public().unwrap().to_json(), pub_key.to_json());
    }
    assert_eq!(public.keys()[0].key_use(), Some(&KeyUse::Encryption));
    assert_eq!(public.keys()[1].alg(), Some("RS256"));
    assert_eq!(public.find("2011-04-29").count(), 1);

    let symmetric = JwkSet::from_json(RFC7517_A3.as_bytes()).unwrap();
    assert_eq!(symmetric.keys().len(), 2);
    // The A.3 HMAC key is the RFC 7515 A.1 key: it verifies the A.1 JWS.
    let hmac = &symmetric.keys()[1];
    assert!(verifier(hmac, JwsAlgorithm::HS256)
        .verify_compact(A1_JWS)
        .is_ok());
    // An AES key-wrap key can never verify a signature.
    assert_eq!(
        Verifier::builder()
            .key(&symmetric.keys()[0], &[JwsAlgorithm::HS256])
            .unwrap_err()
            .code(),
        "ERR_KEY_ALG_MISMATCH"
    );

    let b = jwk(RFC7517_B);
    assert_eq!(b.rsa_bits(), Some(2048));
    let c1 = jwk(RFC7517_C1);
    assert!(c1.is_private());
    assert_eq!(
        Signer::new(&c1, JwsAlgorithm::RS256).unwrap_err().code(),
        "ERR_KEY_OPERATION_NOT_PERMITTED",
        "an enc key must not sign"
    );
    // Private material survives a JSON round trip exactly.
    let back = jwk(&c1.to_private_json());
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&back.to_private_json()).unwrap(),
        serde_json::from_str::<serde_json::Value>(RFC7517_C1).unwrap()
    );
}

#[test]
fn rfc7638_3_1_thumbprint() {
    // RFC 7638 §3.1: the RFC 7517 A.1 RSA key.
    let set = JwkSet::from_json(RFC7517_A1.as_bytes()).unwrap();
    let rsa = &set.keys()[1];
    assert_eq!(
        rsa.thumbprint(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
    // §3.1 also gives the raw SHA-256 octets.
    assert_eq!(
        rsa.thumbprint_with(Hash::Sha256),
        [
            55, 54, 203, 177, 120, 124, 184, 48, 156, 119, 238, 140, 55, 5, 197, 225, 111, 251,
            158, 133, 151, 21, 144, 31, 30, 76, 89, 177, 17, 130, 245, 123
        ]
    );
}

#[test]
fn rfc7797_4_unencoded_payload() {
    let key = jwk(A1_KEY);
    let signer = Signer::new(&key, JwsAlgorithm::HS256).unwrap();
    let v = verifier(&key, JwsAlgorithm::HS256);
    // §4.1: b64 true.
    let encoded = signer
        .sign_compact_with(
            &ProtectedHeader::from_json(br#"{"alg":"HS256"}"#).unwrap(),
            b"$.02",
        )
        .unwrap();
    assert_eq!(
        encoded,
        "eyJhbGciOiJIUzI1NiJ9.JC4wMg.5mvfOroL-g7HyqJoozehmsaqmvTYGEq5jTI1gVvoEoQ"
    );
    // §4.2: b64 false, detached compact form (the payload has a '.'). Values
    // as recomputed in the vectors README, erratum CB-1.
    let header =
        ProtectedHeader::from_json(br#"{"alg":"HS256","b64":false,"crit":["b64"]}"#).unwrap();
    assert_eq!(
        header.encoded(),
        "eyJhbGciOiJIUzI1NiIsImI2NCI6ZmFsc2UsImNyaXQiOlsiYjY0Il19"
    );
    let flattened = format!(
        r#"{{"protected":"{}","payload":"$.02","signature":"A5dxf2s96_n5FLueVuW1Z_vh161FwXZC4YLPff6dmDY"}}"#,
        header.encoded()
    );
    let ok = v
        .verify_json(&flattened, tessera_jose::jws::SignaturePolicy::All)
        .unwrap();
    assert_eq!(ok.payload(), b"$.02");
    assert!(!ok.header().b64());
    let detached = format!(
        "{}..A5dxf2s96_n5FLueVuW1Z_vh161FwXZC4YLPff6dmDY",
        header.encoded()
    );
    assert!(v.verify_compact_detached(&detached, b"$.02").is_ok());
    // A '.' in an unencoded payload cannot be sent in compact form (RFC 7797
    // §5.2): not produced, and not accepted even with a valid MAC over it.
    assert!(signer.sign_compact_with(&header, b"$.02").is_err());
    let detached = signer.sign_compact_detached_with(&header, b"$.02").unwrap();
    let (head, sig) = detached.split_once("..").unwrap();
    let smuggled = format!("{head}.$.02.{sig}");
    assert_eq!(
        v.verify_compact(&smuggled).unwrap_err().code(),
        "ERR_JWS_MALFORMED"
    );
}

// RFC 8037 Appendix A.1/A.2: the Ed25519 key.
const RFC8037_A1: &str = r#"{"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
const RFC8037_A2: &str =
    r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
// RFC 8037 Appendix A.4: the JWS of "Example of Ed25519 signing".
const RFC8037_A4: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

#[test]
fn rfc8037_a1_to_a5_ed25519() {
    let private = jwk(RFC8037_A1);
    let public = jwk(RFC8037_A2);
    // A.1/A.2: the public key is the one derived from the private key.
    assert_eq!(private.to_public().unwrap().to_json(), public.to_json());
    // A.3: the thumbprint.
    assert_eq!(
        public.thumbprint(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
    assert_eq!(
        b64::encode(public.thumbprint_with(Hash::Sha256)),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
    // A.4: signing is deterministic.
    let token = Signer::new(&private, JwsAlgorithm::EdDSA)
        .unwrap()
        .sign_compact_with(
            &ProtectedHeader::from_json(br#"{"alg":"EdDSA"}"#).unwrap(),
            b"Example of Ed25519 signing",
        )
        .unwrap();
    assert_eq!(token, RFC8037_A4);
    // A.5: verification.
    let v = verifier(&public, JwsAlgorithm::EdDSA);
    assert_eq!(
        v.verify_compact(RFC8037_A4).unwrap().payload(),
        b"Example of Ed25519 signing"
    );
    let mut tampered = RFC8037_A4.to_owned();
    tampered.replace_range(25..26, "Y");
    assert!(v.verify_compact(&tampered).is_err());
}

#[test]
fn rfc_keys_round_trip_through_pem() {
    use tessera_jose::jwk::KeyFormat;
    for key in [
        jwk(A2_KEY),
        jwk(A3_KEY),
        jwk(A4_KEY),
        jwk(RFC8037_A1),
        jwk(RFC7517_C1),
    ] {
        for format in [KeyFormat::Pkcs8, KeyFormat::Spki] {
            let pem = key.to_pem(format).unwrap();
            assert_eq!(Jwk::from_pem(&pem).unwrap().thumbprint(), key.thumbprint());
        }
    }
}
