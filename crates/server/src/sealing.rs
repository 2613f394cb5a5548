//! The public keys of sealed resources (`format = "jwe"` or `"nested"`):
//! read from a file or fetched from a JWKS URL at start-up, fetched again on
//! a schedule, and never fetched because a request asked. A failed refresh
//! keeps the last good key (and is logged and counted).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tessera_jose::jwa::{JweAlgorithm, JweEncryption};
use tessera_jose::jwe::Encrypter;
use tessera_jose::jwk::{Jwk, JwkSet, KeyUse};

use crate::config::{Config, ConfigError, KeySource, Resource};

/// One sealed resource's encrypter, and the kid it seals to.
#[derive(Debug)]
pub struct Recipient {
    /// Seals to the resource's key.
    pub encrypter: Encrypter,
    /// The key's kid, if it has one.
    pub kid: Option<String>,
}

/// The encrypters of every sealed resource, by audience.
#[derive(Debug, Default)]
pub struct SealingKeys {
    by_audience: RwLock<HashMap<String, Arc<Recipient>>>,
}

impl SealingKeys {
    /// Loads every sealed resource's key; the first that cannot be loaded
    /// stops start-up with an error naming its configuration key.
    pub async fn load(config: &Config, http: &reqwest::Client) -> Result<SealingKeys, ConfigError> {
        let keys = SealingKeys::default();
        for (i, resource) in config.resources.iter().enumerate() {
            let Some(sealing) = &resource.sealing else {
                continue;
            };
            let (key, text) = match &sealing.source {
                KeySource::File(path) => (
                    format!("resources[{i}].encryption_key"),
                    std::fs::read_to_string(path).map_err(|e| {
                        config_error(i, "encryption_key", format!("{}: {e}", path.display()))
                    })?,
                ),
                KeySource::JwksUri { uri, .. } => (
                    format!("resources[{i}].encryption_jwks_uri"),
                    fetch(http, uri)
                        .await
                        .map_err(|e| config_error(i, "encryption_jwks_uri", e))?,
                ),
            };
            let recipient = recipient(&text, sealing.alg, sealing.enc)
                .map_err(|message| ConfigError { key, message })?;
            keys.set(&resource.audience, recipient);
        }
        Ok(keys)
    }

    /// The encrypter for `audience`, if it is a sealed resource.
    pub fn get(&self, audience: &str) -> Option<Arc<Recipient>> {
        self.by_audience.read().ok()?.get(audience).cloned()
    }

    /// Puts `recipient` in use for `audience` (start-up and refreshes do
    /// this; benches and tests build a set by hand with it).
    pub fn set(&self, audience: &str, recipient: Recipient) {
        if let Ok(mut map) = self.by_audience.write() {
            map.insert(audience.to_owned(), Arc::new(recipient));
        }
    }

    /// Fetches `resource`'s JWKS again; on failure the key in use stays.
    pub async fn refresh(&self, resource: &Resource, http: &reqwest::Client) -> Result<(), String> {
        let Some(sealing) = &resource.sealing else {
            return Ok(());
        };
        let KeySource::JwksUri { uri, .. } = &sealing.source else {
            return Ok(());
        };
        let text = fetch(http, uri).await?;
        let recipient = recipient(&text, sealing.alg, sealing.enc)?;
        self.set(&resource.audience, recipient);
        Ok(())
    }
}

fn config_error(i: usize, key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: format!("resources[{i}].{key}"),
        message: message.into(),
    }
}

/// The HTTP client for JWKS fetches ([`tessera_verify::keys::http_client`]).
pub fn http_client() -> Result<reqwest::Client, String> {
    tessera_verify::keys::http_client(concat!("tessera/", env!("CARGO_PKG_VERSION")))
}

/// GETs `uri` ([`tessera_verify::keys::get_document`]: a 200, capped) as UTF-8.
async fn fetch(http: &reqwest::Client, uri: &str) -> Result<String, String> {
    let document = tessera_verify::keys::get_document(http, uri).await?;
    String::from_utf8(document.body).map_err(|_| format!("GET {uri}: not UTF-8"))
}

/// The encrypter for the one key of `text` (a JWK or JWK Set) that can seal
/// with `alg`/`enc`: an encryption key (a `use: sig` key never is), public
/// part only, of a type and size that fits.
pub fn recipient(text: &str, alg: JweAlgorithm, enc: JweEncryption) -> Result<Recipient, String> {
    let is_set = tessera_jose::json::parse_object(
        text.as_bytes(),
        &tessera_jose::json::Limits::default(),
        "key",
    )
    .map_err(|e| format!("not a JWK or JWK Set: {e}"))?
    .contains_key("keys");
    let why_not = |k: &Jwk| -> Option<String> {
        if k.key_use() == Some(&KeyUse::Signature) {
            return Some(format!(
                "{}: its use is \"sig\"; a signing key never encrypts",
                describe(k)
            ));
        }
        if k.is_symmetric() {
            return Some(format!(
                "{}: a shared secret, not a public key",
                describe(k)
            ));
        }
        k.check_permits_jwe(false, alg, enc)
            .err()
            .map(|e| format!("{}: {e}", describe(k)))
    };
    let chosen = if is_set {
        let set = JwkSet::from_json(text.as_bytes()).map_err(|e| format!("not a JWK Set: {e}"))?;
        let mut reasons: Vec<String> = set
            .rejected()
            .iter()
            .map(|(i, e)| format!("key #{i}: {e}"))
            .collect();
        let mut found = None;
        for k in set.keys() {
            match why_not(k) {
                None => {
                    found = Some(k.clone());
                    break;
                }
                Some(reason) => reasons.push(reason),
            }
        }
        found.ok_or_else(|| {
            format!(
                "no key of the set can seal with {} / {}: {}",
                alg.name(),
                enc.name(),
                if reasons.is_empty() {
                    "the set is empty".to_owned()
                } else {
                    reasons.join("; ")
                }
            )
        })?
    } else {
        let k = Jwk::from_json(text.as_bytes()).map_err(|e| format!("not a usable JWK: {e}"))?;
        if let Some(reason) = why_not(&k) {
            return Err(reason);
        }
        k
    };
    let public = chosen.to_public().map_err(|e| e.to_string())?;
    let encrypter = Encrypter::new(&public, alg, enc).map_err(|e| e.to_string())?;
    Ok(Recipient {
        encrypter,
        kid: public.kid().map(str::to_owned),
    })
}

fn describe(k: &Jwk) -> String {
    match k.kid() {
        Some(kid) => format!("key {kid:?}"),
        None => format!("the {} key", k.kty()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn public(k: &Jwk) -> String {
        k.to_public().unwrap().to_json()
    }

    #[test]
    fn the_key_must_fit_and_be_for_encryption() {
        let (alg, enc) = (JweAlgorithm::RSA_OAEP_256, JweEncryption::A256GCM);
        let rsa = Jwk::generate_rsa(2048).unwrap().with_kid("rs-1");
        assert_eq!(
            recipient(&public(&rsa), alg, enc).unwrap().kid.as_deref(),
            Some("rs-1")
        );
        let signing = rsa.clone().with_use(KeyUse::Signature).unwrap();
        let e = recipient(&public(&signing), alg, enc).unwrap_err();
        assert!(e.contains("\"sig\""), "{e}");
        let ec = Jwk::generate_ec(tessera_jose::jwa::EcCurve::P256).unwrap();
        assert!(
            recipient(&public(&ec), alg, enc).is_err(),
            "EC key for RSA-OAEP"
        );
        // A set: the first key that fits, whatever comes before it.
        let set = format!(
            r#"{{"keys":[{},{},{}]}}"#,
            public(&signing.with_kid("sig-1")),
            public(&ec.clone().with_kid("ec-1")),
            public(&rsa.clone().with_kid("enc-1"))
        );
        assert_eq!(
            recipient(&set, alg, enc).unwrap().kid.as_deref(),
            Some("enc-1")
        );
        let e = recipient(r#"{"keys":[]}"#, alg, enc).unwrap_err();
        assert!(e.contains("empty"), "{e}");
        let ecdh = recipient(&public(&ec), JweAlgorithm::ECDH_ES_A256KW, enc).unwrap();
        assert!(ecdh.kid.is_none());
    }
}
