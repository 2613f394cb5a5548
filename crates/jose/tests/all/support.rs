//! Shared helpers: loading vector files, building verifiers.

use std::path::PathBuf;

use serde_json::Value;
use tessera_jose::jwa::JwsAlgorithm;
use tessera_jose::jwk::Jwk;
use tessera_jose::jws::Verifier;

/// Reads a JSON file under `tests/vectors/`.
pub fn vector(rel: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Lists the JSON files of a folder under `tests/vectors/`, sorted.
pub fn vector_dir(rel: &str) -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(rel);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .map(|n| format!("{rel}/{n}"))
        .collect();
    names.sort();
    names
}

pub fn jwk(json: &str) -> Jwk {
    Jwk::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{e}: {json}"))
}

pub fn jwk_value(v: &Value) -> Jwk {
    jwk(&v.to_string())
}

/// A verifier with one key for one algorithm.
pub fn verifier(key: &Jwk, alg: JwsAlgorithm) -> Verifier {
    Verifier::builder()
        .key(key, &[alg])
        .unwrap()
        .build()
        .unwrap()
}

/// A fresh key bound to `alg`. RSA keys are slow to generate, so one RSA key
/// per test run serves every RSA algorithm (bound to each in turn).
pub fn key_for(alg: JwsAlgorithm) -> Jwk {
    static RSA: std::sync::OnceLock<Jwk> = std::sync::OnceLock::new();
    match alg.info().family {
        tessera_jose::jwa::KeyFamily::Rsa => RSA
            .get_or_init(|| Jwk::generate_rsa(2048).unwrap().with_kid("rsa"))
            .clone()
            .with_alg(alg.name())
            .unwrap(),
        _ => Jwk::generate_for(alg).unwrap(),
    }
}
