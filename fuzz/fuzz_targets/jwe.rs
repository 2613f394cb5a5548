//! Arbitrary text as a JWE (compact or JSON): never a panic, whatever the
//! input, through every key-management family.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tessera_jose::jwa::{JweAlgorithm as A, JweEncryption as E};
use tessera_jose::jwe::Decrypter;
use tessera_jose::jwk::Jwk;

// Fixed keys so crashes reproduce: RFC 7516 A.3's AES key, RFC 7520 §5.6's
// dir key, RFC 7518 Appendix C's P-256 key (Bob), RFC 8037 A.6's X25519 key.
const KW: &str = r#"{"kty":"oct","kid":"kw","k":"GawgguFyGrWKav7AX4VKUg"}"#;
const DIR: &str = r#"{"kty":"oct","kid":"dir","k":"XctOhJAkA-pD9Lh7ZgW_2A"}"#;
const EC: &str = r#"{"kty":"EC","kid":"ec","crv":"P-256","x":"weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ","y":"e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck","d":"VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw"}"#;
const X: &str = r#"{"kty":"OKP","kid":"x","crv":"X25519","x":"3p7bfXt9wbTTW2HC7OQ1Nz-DQ8hbeGdNrfx-FG-IK08","d":"XasIfmJKikt54X-Lg4AO5m87sSkmGLb9HC-LJ_-I4Os"}"#;

fn decrypter() -> &'static Decrypter {
    static D: OnceLock<Decrypter> = OnceLock::new();
    D.get_or_init(|| {
        let key = |json: &str| Jwk::from_json(json.as_bytes()).expect("fixed key");
        let all = |alg: A| E::ALL.iter().map(move |&e| (alg, e)).collect::<Vec<_>>();
        let mut kw = all(A::A128KW);
        kw.extend(all(A::A128GCMKW));
        kw.extend(all(A::PBES2_HS256_A128KW));
        let mut ec = all(A::ECDH_ES);
        ec.extend(all(A::ECDH_ES_A128KW));
        Decrypter::builder()
            .key(&key(KW), &kw)
            .expect("kw")
            .key(&key(DIR), &[(A::Dir, E::A128GCM)])
            .expect("dir")
            .key(&key(EC), &ec)
            .expect("ec")
            .key(&key(X), &ec)
            .expect("x25519")
            .allow_compression()
            // Keep PBES2 cheap for the fuzzer; the bound itself is tested.
            .max_pbes2_count(2000)
            .build()
            .expect("decrypter")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let d = decrypter();
    let _ = d.decrypt(text);
    let _ = d.decrypt_compact(text);
    let _ = d.decrypt_json(text);
});
