//! Arbitrary bytes as a DPoP proof (RFC 9449), checked as the service checks
//! one: never a panic; an accepted proof names a public key whose thumbprint
//! is its `jkt`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tessera_verify::dpop::{check, Nonce, ProofRules, Request};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let rules = ProofRules::default();
    for (method, url, token, now) in [
        ("POST", "https://server.example.com/token", None, 1_562_262_616),
        (
            "GET",
            "https://resource.example.org/protectedresource",
            Some("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            1_562_262_618,
        ),
    ] {
        let request = Request {
            method,
            url,
            access_token: token,
            nonce: Nonce::NotRequired,
        };
        if let Ok(proof) = check(text, &rules, &request, now) {
            assert!(!proof.key.is_private());
            assert_eq!(proof.key.thumbprint(), proof.jkt);
        }
    }
});
