//! # The manual: what tessera-jose defends against, and why the defaults are what they are
//!
//! This module has no code. It explains the design for those who must
//! decide whether to trust it.
//!
//! ## The attacks, and where each one stops
//!
//! | attack | stopped by |
//! |---|---|
//! | `alg: none` (unsecured JWS accepted as valid) | [`jwa::JwsAlgorithm`](crate::jwa::JwsAlgorithm) has no `none`; parsing the name fails before any key is consulted |
//! | algorithm confusion (RS256 public key used as an HS256 secret) | a [`Verifier`](crate::jws::Verifier) is built from keys *and* their algorithms; an RSA/EC/OKP key is refused for HMAC when the verifier is built, so the token's `alg` has nothing to switch to |
//! | downgrade to a weaker algorithm the key also supports | the verifier lists the algorithms per key; a token's `alg` outside the list is `ERR_JWS_ALG_NOT_ALLOWED` |
//! | attacker-supplied keys (`jwk`, `jku`, `x5u`, `x5c` headers) | never read when verifying; `kid` only selects among the verifier's own keys (`ERR_JWS_UNKNOWN_KID` otherwise) |
//! | ECDSA "psychic signatures" (r = s = 0, CVE-2022-21449) | aws-lc-rs rejects them; tested for every curve |
//! | weak keys | HMAC secrets shorter than the hash, RSA under 2048 bits, RSA exponents below 65537, even or over 32 bits, and moduli with the ROCA fingerprint (CVE-2017-15361) are refused; EC points are checked on the curve; Ed25519 and X25519 public keys must be canonically encoded and of large order (under a small-order Ed25519 key, R = identity, S = 0 verifies for any message) |
//! | private/public mismatch in a JWK | the private part must produce the public part (RSA components are checked with `RSA_check_key`) |
//! | parser differentials (duplicate JSON members, padded or non-canonical base64url) | duplicates are refused at every depth, base64url is strict, so one token has one meaning |
//! | resource exhaustion | [`json::Limits`](crate::json::Limits) bounds token, header and document sizes, JSON depth, signatures per JWS and keys per set; every limit is a typed error checked before the work it protects |
//! | critical extensions ignored | `crit` must list only names present in the protected header that the caller declared understood ([`VerifierBuilder::understand_crit`](crate::jws::VerifierBuilder::understand_crit)); `b64` must be both protected and critical (RFC 7797 §6), and a JWT never has `b64: false` (RFC 7797 §7) |
//! | cross-JWT confusion (an ID token replayed as an access token) | [`VerifierBuilder::expect_typ`](crate::jws::VerifierBuilder::expect_typ) and [`jwt::Validation::typ`](crate::jwt::Validation::typ) (RFC 8725 §3.11, RFC 9068 `at+jwt`); `typ` and `cty` count only when integrity protected: in an unprotected JWS or JWE header (where anyone holding the token can add them) they are refused, `ERR_JWS_INVALID_HEADER` / `ERR_JWE_INVALID_HEADER` |
//! | tokens without expiry, for someone else, from someone else | `exp` is required unless waived; `aud` is checked whenever the token carries one (RFC 7519 §4.1.3); `iss` when configured |
//! | secrets leaking through logs | private key material and HMAC secrets never appear in `Debug`, `Display` or an error, nor does a symmetric key's RFC 7638 thumbprint (an unsalted hash of the secret, §7), which is not its default `kid` either; they are zeroized on drop, including the JSON text they were parsed from or written to |
//! | timing leaks in MAC comparison | HMAC tags are compared in constant time by aws-lc-rs; JWE AES-CBC-HMAC tags are full length and compared in constant time before anything is decrypted |
//! | JWE algorithm substitution (the token picks `alg`/`enc`) | a [`Decrypter`](crate::jwe::Decrypter) lists `alg`/`enc` pairs per key; anything else is `ERR_JWE_ALG_NOT_ALLOWED` |
//! | Bleichenbacher / RSA1_5 padding oracles, and their timing variant (the Marvin attack) | `RSA1_5` is neither used to encrypt nor decrypted, whatever the caller asks: a decrypter given an `RSA1_5` pair is not built, and a token naming it is `ERR_JWE_ALG_NOT_ALLOWED`. The RFC 7516 §11.5 defence (a random CEK on bad padding) is not enough when the padding check itself takes an error path, as aws-lc-rs's PKCS#1 v1.5 decryption does; aws-lc-rs offers no raw RSA operation on which constant-time implicit rejection could be built, and RFC 8725 §3.2 already steers away from `RSA1_5`. Senders use RSA-OAEP-256 or ECDH-ES instead |
//! | invalid-curve attacks on ECDH-ES | the `epk` must name the recipient key's curve and be a valid point on it; X25519 outputs of all zeros are refused |
//! | PBES2 as a CPU sink | `p2c` above a bound (100,000 by default: one forged token costs tens of milliseconds; raise it with [`DecrypterBuilder::max_pbes2_count`](crate::jwe::DecrypterBuilder::max_pbes2_count)) is refused before any work, `p2s` must be at least 8 bytes, and a JWE gets at most one PBES2 derivation however many recipients it lists |
//! | decompression bombs | `zip` is refused unless enabled; then inflating stops at a cap (250 KB by default), and `zip` must be integrity protected |
//! | distinguishable decryption failures | a wrong key, tag, IV, AAD, header, ciphertext or encrypted key all give the one `ERR_JWE_DECRYPTION_FAILED` |
//! | a signing key used to decrypt, or the reverse | `use: sig` keys are refused by encrypters and decrypters, `use: enc` keys by signers and verifiers; `key_ops` likewise |
//! | encrypted-but-unsigned tokens passed off as nested JWTs | [`jwt::decrypt_and_verify`](crate::jwt::decrypt_and_verify) demands a protected `cty: JWT` and a JWS inside that verifies under the caller's verifier |
//!
//! ## What it deliberately does not do
//!
//! - Fetch anything. A JWK Set comes from the caller, never from a URL in a token.
//! - Validate X.509 chains. `x5c` on a JWK is kept as data, never used to pick or trust a key.
//! - Verify an unsecured or unverified token. [`danger::decode_unverified`](crate::danger::decode_unverified)
//!   exists for inspection tools, and its name says what it is.
//! - Accept RSA keys without CRT parameters, multi-prime RSA, or compressed EC points: rare,
//!   and each a source of bugs in other libraries.
//!
//! ## Choosing keys and algorithms
//!
//! - One key, one algorithm: [`Jwk::generate_for`](crate::jwk::Jwk::generate_for) binds the key
//!   (`alg`, `use: sig`, `kid` = RFC 7638 thumbprint, or random for an HMAC secret). A key's own `alg`, `use` and `key_ops`
//!   are enforced on both sides.
//! - For tokens verified by others, prefer EdDSA or ES256 (small, fast to verify) or RS256 for
//!   the widest compatibility. HMAC only when signer and verifier are the same party.
//! - Encryption keys: [`Jwk::generate_for_encryption`](crate::jwk::Jwk::generate_for_encryption)
//!   binds the key likewise (`use: enc`). For tokens a resource server decrypts, prefer
//!   `ECDH-ES+A256KW` or `RSA-OAEP-256` with `A256GCM`; `dir` and AES key wrap only between
//!   parties that already share a secret. Leave `zip` off for anything that mixes secrets with
//!   attacker-chosen content (compression leaks through length).
//! - A verifier from a published JWK Set:
//!   [`VerifierBuilder::jwk_set`](crate::jws::VerifierBuilder::jwk_set) with the algorithms you
//!   accept; each key serves only those it can. A set mixing secrets with public keys is refused.
//!
//! ## Errors
//!
//! Every error has a stable [`Error::code`](crate::Error::code). Signature failures say only
//! that the signature did not verify: which key, byte or step failed is not the caller's to learn.
