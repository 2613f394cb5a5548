//! # tessera-jose
//!
//! A hard-to-misuse JOSE library on aws-lc-rs. Which function do I call?
//! - **Verify a JWT**: [`jws::Verifier::builder`] with your keys and their
//!   algorithms, then [`jwt::verify`] with a [`jwt::Validation`].
//! - **Issue a JWT**: [`jws::Signer::new`] with a [`jwk::Jwk`] and one
//!   algorithm, then [`jwt::sign`]. Raw JWS: [`jws::Signer::sign_compact`].
//! - **Encrypt** (JWE): [`jwe::Encrypter::new`] with the recipient's key, one
//!   `alg` and one `enc`; [`jwe::encrypt_general`] for several recipients.
//!   **Decrypt**: [`jwe::Decrypter::builder`] with your keys and their
//!   `alg`/`enc` pairs. Nested (signed, then encrypted) JWTs:
//!   [`jwt::sign_and_encrypt`] and [`jwt::decrypt_and_verify`].
//! - **Keys**: [`jwk::Jwk::generate_for`], [`jwk::Jwk::generate_for_encryption`],
//!   [`jwk::Jwk::from_json`], [`jwk::Jwk::from_pem`], [`jwk::JwkSet`].
//!
//! ## Why the defaults are what they are (in full: [`manual`])
//! - The verifier, never the token, chooses the algorithm: each key is added
//!   with the algorithms it may serve, and the token's `alg` only has to match.
//!   `none` has no representation, so an unsecured JWS cannot be accepted.
//! - A key's type decides what it can do: an RSA, EC or OKP key can never be
//!   used as an HMAC secret (the RS256→HS256 confusion), HMAC secrets must be
//!   at least as long as the hash, RSA keys at least 2048 bits. A key's own
//!   `alg`, `use` and `key_ops` are enforced.
//! - `kid` selects only among the verifier's own keys; `jwk`, `jku`, `x5u`
//!   and `x5c` headers are never used to find a key. Unknown `crit`
//!   extensions reject the token.
//! - Every input is bounded ([`json::Limits`]); JSON with duplicate member
//!   names is refused; base64url is strict. Errors are typed with stable
//!   [`Error::code`]s and never carry secret material.
//! - Only [`jws::Verified`] hands out a payload, and only [`jwe::Decrypted`]
//!   a plaintext; [`danger::decode_unverified`] is the one explicit
//!   exception, for inspection tools.
//! - JWE: the decrypter, like the verifier, pins `alg`/`enc` per key;
//!   `RSA1_5` is neither produced nor decrypted (its PKCS#1 v1.5 padding
//!   check cannot be made constant time here: the Marvin attack); `zip`
//!   needs opt-in and is inflated under a cap; ECDH-ES ephemeral keys must
//!   be on the recipient key's curve; PBES2 iteration counts are bounded.
//!   Signing and encryption keys stay apart
//!   (`use`, `key_ops`).
//!
//! ```
//! use tessera_jose::{jwa::JwsAlgorithm, jwk::Jwk, jws::{JwsHeader, Signer, Verifier}};
//! let key = Jwk::generate_for(JwsAlgorithm::HS256).unwrap();
//! let token = Signer::new(&key, JwsAlgorithm::HS256).unwrap()
//!     .sign_compact(&JwsHeader::new(), b"payload").unwrap();
//! let verifier = Verifier::builder().key(&key, &[JwsAlgorithm::HS256]).unwrap().build().unwrap();
//! assert_eq!(verifier.verify_compact(&token).unwrap().payload(), b"payload");
//! // A verifier for RS256 never accepts an HS256 token, whatever its header says.
//! ```
#![forbid(unsafe_code)]

pub mod b64;
mod crypto;
pub mod danger;
mod der;
pub mod error;
pub mod json;
pub mod jwa;
pub mod jwe;
pub mod jwk;
pub mod jws;
pub mod jwt;
pub mod manual;
mod recent;

pub use error::{Error, Result};

#[cfg(test)]
mod tests {
    /// Servers share verifiers and signers across threads.
    #[test]
    fn shared_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<crate::jws::Verifier>();
        check::<crate::jws::Signer>();
        check::<crate::jws::Header>();
        check::<crate::jwe::Encrypter>();
        check::<crate::jwe::Decrypter>();
        check::<crate::jwe::Decrypted>();
        check::<crate::jwe::Header>();
        check::<crate::jwk::Jwk>();
        check::<crate::jwk::JwkSet>();
        check::<crate::jwt::Validation>();
        check::<crate::Error>();
    }
}
