//! The adversarial suite of tessera. It has no code of its own: each known
//! attack on a JOSE stack or a token service is a named test under
//! `tests/attacks/`, listed with the rejection it asserts in `README.md`.
#![forbid(unsafe_code)]
