//! Signatures out of range or encoded in ways the specifications refuse:
//! ECDSA `r`, `s` at or above the group order, DER where JWS wants the raw
//! `r || s` (RFC 7518 §3.4), Ed25519 `S` not reduced (RFC 8032 §5.1.7), and
//! base64url with stray bits. The RFC 2022-21449 zero signature is in
//! `jws::ecdsa_zero_signature_cve_2022_21449`.

use serde_json::json;
use tessera_jose::b64;
use tessera_jose::jwa::JwsAlgorithm;
use tessera_jose::jwk::Jwk;
use tessera_jose::jws::{JwsHeader, Signer};

use crate::support::verifier;

/// The order n of P-256 (SEC 2 v2 §2.4.2), big-endian.
const P256_N: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
];

/// The order L of the Ed25519 base point (RFC 8032 §5.1), little-endian.
const ED25519_L: [u8; 32] = [
    0xED, 0xD3, 0xF5, 0x5C, 0x1A, 0x63, 0x12, 0x58, 0xD6, 0x9C, 0xF7, 0xA2, 0xDE, 0xF9, 0xDE, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

/// `a - b` for big-endian numbers of equal length, `a >= b`.
fn sub_be(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut borrow = 0i16;
    for i in (0..a.len()).rev() {
        let mut d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = 0;
        if d < 0 {
            d += 256;
            borrow = 1;
        }
        out[i] = d as u8;
    }
    assert_eq!(borrow, 0);
    out
}

/// `a + b` for little-endian numbers of equal length (no overflow expected).
fn add_le(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut carry = 0u16;
    for i in 0..a.len() {
        let s = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = s as u8;
        carry = s >> 8;
    }
    assert_eq!(carry, 0);
    out
}

/// `token` with its signature replaced by `sig`.
fn with_signature(token: &str, sig: &[u8]) -> String {
    let (head, _) = token.rsplit_once('.').unwrap();
    format!("{head}.{}", b64::encode(sig))
}

fn signature(token: &str) -> Vec<u8> {
    b64::decode(token.rsplit('.').next().unwrap(), "sig").unwrap()
}

fn es256_token() -> (Jwk, String) {
    let key = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
    let token = Signer::new(&key, JwsAlgorithm::ES256)
        .unwrap()
        .sign_compact(&JwsHeader::new(), br#"{"sub":"user-1"}"#)
        .unwrap();
    (key, token)
}

/// An `r` or `s` equal to n, above n, or all ones is outside [1, n-1]: the
/// verifier must refuse it rather than reduce it modulo n.
#[test]
fn ecdsa_r_or_s_at_or_above_the_order_is_refused() {
    let (key, token) = es256_token();
    let v = verifier(&key, JwsAlgorithm::ES256);
    assert!(v.verify_compact(&token).is_ok());
    let sig = signature(&token);
    let (r, s) = sig.split_at(32);
    let ones = [0xFFu8; 32];
    let mut n_plus_1 = P256_N;
    n_plus_1[31] += 1;
    for (what, bad) in [
        ("r = n", [&P256_N[..], s].concat()),
        ("s = n", [r, &P256_N[..]].concat()),
        ("r = s = n", [&P256_N[..], &P256_N[..]].concat()),
        ("r = n + 1", [&n_plus_1[..], s].concat()),
        ("s = n + 1", [r, &n_plus_1[..]].concat()),
        ("r = 2^256 - 1", [&ones[..], s].concat()),
        ("s = 2^256 - 1", [r, &ones[..]].concat()),
    ] {
        let e = v.verify_compact(&with_signature(&token, &bad)).unwrap_err();
        assert_eq!(e.code(), "ERR_JWS_SIGNATURE_INVALID", "{what}");
    }
}

/// RFC 7518 §3.4 does not refuse a high `s`: `(r, n - s)` is as valid as
/// `(r, s)`, and peers produce both. So tessera accepts the twin, and never
/// identifies a JWS by its bytes: revocation goes by session (`sid`), and
/// the twin carries the same claims. What must still fail: the twin of a
/// signature over other bytes.
#[test]
fn ecdsa_high_s_twin_verifies_and_carries_the_same_claims() {
    let (key, token) = es256_token();
    let v = verifier(&key, JwsAlgorithm::ES256);
    let sig = signature(&token);
    let (r, s) = sig.split_at(32);
    let twin = with_signature(&token, &[r, &sub_be(&P256_N, s)].concat());
    assert_ne!(twin, token);
    let a = v.verify_compact(&token).unwrap();
    let b = v.verify_compact(&twin).unwrap();
    assert_eq!(a.payload(), b.payload());
    // The twin moved onto another payload fails.
    let (head, _) = twin.rsplit_once('.').unwrap();
    let (protected, _) = head.split_once('.').unwrap();
    let other = format!(
        "{protected}.{}.{}",
        b64::encode(br#"{"sub":"admin"}"#),
        twin.rsplit('.').next().unwrap()
    );
    assert_eq!(
        v.verify_compact(&other).unwrap_err().code(),
        "ERR_JWS_SIGNATURE_INVALID"
    );
}

/// JWS ECDSA signatures are the fixed-length `r || s`; the ASN.1 DER form
/// other APIs produce, or `r || s` with a stray leading zero, is refused.
#[test]
fn ecdsa_der_and_off_length_encodings_are_refused() {
    let (key, token) = es256_token();
    let v = verifier(&key, JwsAlgorithm::ES256);
    let sig = signature(&token);
    let (r, s) = sig.split_at(32);
    let int = |x: &[u8]| {
        let mut body = x.to_vec();
        if body[0] & 0x80 != 0 {
            body.insert(0, 0);
        }
        [&[0x02, body.len() as u8][..], &body].concat()
    };
    let seq_body = [int(r), int(s)].concat();
    let der = [&[0x30, seq_body.len() as u8][..], &seq_body].concat();
    for (what, bad) in [
        ("DER", der),
        ("leading zero", [&[0u8][..], &sig].concat()),
        ("trailing zero", [&sig[..], &[0u8]].concat()),
        ("63 bytes", sig[1..].to_vec()),
        ("r only", r.to_vec()),
        ("P-384 length", [&sig[..], &[0u8; 32]].concat()),
    ] {
        let e = v.verify_compact(&with_signature(&token, &bad)).unwrap_err();
        assert_eq!(e.code(), "ERR_JWS_SIGNATURE_INVALID", "{what}");
    }
}

/// RFC 8032 §5.1.7: "If ... S is not in the range [0, L), reject." Ed25519
/// signatures are otherwise malleable by adding L to S.
#[test]
fn ed25519_unreduced_s_is_refused() {
    let key = Jwk::generate_for(JwsAlgorithm::EdDSA).unwrap();
    let v = verifier(&key, JwsAlgorithm::EdDSA);
    let token = Signer::new(&key, JwsAlgorithm::EdDSA)
        .unwrap()
        .sign_compact(&JwsHeader::new(), br#"{"sub":"user-1"}"#)
        .unwrap();
    assert!(v.verify_compact(&token).is_ok());
    let sig = signature(&token);
    let (big_r, s) = sig.split_at(32);
    let s_plus_l = add_le(s, &ED25519_L);
    let bad = [big_r, &s_plus_l].concat();
    assert_eq!(
        v.verify_compact(&with_signature(&token, &bad))
            .unwrap_err()
            .code(),
        "ERR_JWS_SIGNATURE_INVALID"
    );
    // S = L exactly, and an all-ones S.
    for s in [ED25519_L.to_vec(), vec![0xFF; 32]] {
        let bad = [big_r, &s].concat();
        assert_eq!(
            v.verify_compact(&with_signature(&token, &bad))
                .unwrap_err()
                .code(),
            "ERR_JWS_SIGNATURE_INVALID"
        );
    }
}

/// base64url without padding has one encoding per byte string (RFC 7515
/// §2, RFC 4648 §3.5): a final character carrying non-zero spare bits, a
/// padding `=`, or the `+`/`/` alphabet is refused, so no two token strings
/// carry the same signed bytes.
#[test]
fn base64url_with_spare_bits_padding_or_the_wrong_alphabet_is_refused() {
    let (key, token) = es256_token();
    let v = verifier(&key, JwsAlgorithm::ES256);
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    // 64 signature bytes: 86 characters, the last one carrying 4 spare bits.
    let (head, sig) = token.rsplit_once('.').unwrap();
    let last = *sig.as_bytes().last().unwrap();
    let index = alphabet.iter().position(|&c| c == last).unwrap();
    let twin_char = alphabet[index | 1] as char;
    let twin_char = if twin_char as u8 == last {
        alphabet[index | 2] as char
    } else {
        twin_char
    };
    let twin = format!("{head}.{}{twin_char}", &sig[..sig.len() - 1]);
    assert_eq!(v.verify_compact(&twin).unwrap_err().code(), "ERR_BASE64");
    // The same in the payload and the header.
    let (protected, payload) = head.split_once('.').unwrap();
    for bad in [
        format!("{protected}.{payload}=.{sig}"),
        format!("{protected}=.{payload}.{sig}"),
        format!("{protected}.+{}.{sig}", &payload[1..]),
        format!("{protected}./{}.{sig}", &payload[1..]),
    ] {
        assert!(v.verify_compact(&bad).is_err(), "{bad}");
    }
    // A header whose decoding differs only in spare bits: the JSON
    // `{"alg":"ES256"}` (15 bytes, no spare bits) padded to 16 bytes.
    let header = json!({"alg": "ES256", "x": 1}).to_string();
    let enc = b64::encode(header.as_bytes());
    if header.len() % 3 != 0 {
        let last = *enc.as_bytes().last().unwrap();
        let index = alphabet.iter().position(|&c| c == last).unwrap();
        let flipped = alphabet[index ^ 1] as char;
        let bad = format!("{}{flipped}.{payload}.{sig}", &enc[..enc.len() - 1]);
        assert!(v.verify_compact(&bad).is_err());
    }
}
