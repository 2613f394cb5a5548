//! Arbitrary bytes as the payload of an authentic JWT: claims parsing and
//! validation run only after a signature verified, so sign first.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tessera_jose::jws::JwsHeader;
use tessera_jose::jwt::{self, FixedClock, Validation};

mod common;

fuzz_target!(|data: &[u8]| {
    let f = common::fixture();
    let Ok(token) = f.signer.sign_compact(&JwsHeader::new().typ("JWT"), data) else {
        return;
    };
    let validation = Validation::new().issuer("iss").audience("aud").max_age(600);
    let _ = jwt::verify::<serde_json::Value>(
        &token,
        &f.verifier,
        &validation,
        &FixedClock(1_800_000_000),
    );
});
