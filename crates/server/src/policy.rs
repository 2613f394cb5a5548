//! The claim guard. A JWS can be read by anyone who holds it — the
//! browser, a proxy, a log pipeline — so a plain-JWS resource accepts only
//! the custom claims it declared, and no value that looks like personal
//! data: e-mail addresses, phone numbers, national ids, card numbers.

use serde_json::{Map, Value};

use crate::config::{Config, Resource, TokenFormat};
use crate::store::ClientRecord;

/// Claim names the service sets itself; a request cannot supply them.
pub const RESERVED: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "org",
    "roles",
    "amr",
    "scope",
    "client_id",
    "sid",
    "typ",
    "cnf",
    "act",
    "azp",
    "auth_time",
    "acr",
];

/// Why a claim was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// Not declared for the resource (or set by the service itself).
    #[error("claim {claim:?} is not declared for resource {audience:?}")]
    Undeclared {
        /// The claim.
        claim: String,
        /// The resource.
        audience: String,
    },
    /// Its value looks like personal data.
    #[error(
        "claim {claim:?} looks like {kind}: anyone holding a signed (JWS) token can read it; \
         send personal data only to a resource whose tokens are encrypted (format \"jwe\")"
    )]
    Sensitive {
        /// The claim.
        claim: String,
        /// What it looks like.
        kind: &'static str,
    },
}

/// Checks the request's custom claims against `resource`, and every value
/// that will appear in a JWS for personal data: the named ones in `visible`
/// (such as `sub`, which the session token — always a JWS — carries too),
/// and the custom claims when the resource's tokens are plain JWS. A sealed
/// resource (`jwe`, `nested`) may receive sensitive custom claims.
pub fn check(
    resource: &Resource,
    custom: &Map<String, Value>,
    visible: &[(&str, &Value)],
) -> Result<(), GuardError> {
    for name in custom.keys() {
        let declared = resource.claims.iter().any(|c| c == name);
        if !declared || RESERVED.contains(&name.as_str()) {
            return Err(GuardError::Undeclared {
                claim: name.clone(),
                audience: resource.audience.clone(),
            });
        }
    }
    let custom_visible = resource.format == TokenFormat::Jws;
    let all = visible.iter().map(|(k, v)| (*k, *v)).chain(
        custom
            .iter()
            .filter(|_| custom_visible)
            .map(|(k, v)| (k.as_str(), v)),
    );
    for (name, value) in all {
        if let Some(kind) = crate::pii::value_kind(value) {
            return Err(GuardError::Sensitive {
                claim: name.to_owned(),
                kind,
            });
        }
    }
    Ok(())
}

/// What a client may ask for: each token request names an audience and
/// perhaps a scope, and the client's registration decides.
///
/// - Audiences: the registered list when there is one; without one, the
///   audiences declared as `jws` resources, or — when the configuration
///   declares no resources at all (the zero-configuration start) — any.
///   A `jwe` or `nested` audience always needs explicit registration: its
///   tokens carry sealed claims or leave the trust domain. A legacy client
///   (registered before registrations existed) has the default rule besides
///   the audiences it had used.
/// - Scopes: each requested scope must be registered; none requested means
///   all registered ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// RFC 8707 `invalid_target`.
    #[error("this client may not ask for tokens for {0:?}")]
    Target(String),
    /// RFC 6749 `invalid_scope`.
    #[error("this client may not ask for scope {0:?}")]
    Scope(String),
}

/// Whether `client` may ask for tokens for `audience` (see [`AccessError`]).
pub fn audience_allowed(config: &Config, client: &ClientRecord, audience: &str) -> bool {
    let registered = &client.registration.audiences;
    if registered
        .as_ref()
        .is_some_and(|list| list.iter().any(|a| a == audience))
    {
        return true;
    }
    if registered.is_some() && !client.legacy {
        return false;
    }
    if config.resources.is_empty() {
        return true;
    }
    config
        .resources
        .iter()
        .any(|r| r.audience == audience && r.format == TokenFormat::Jws)
}

/// [`audience_allowed`], as the error a token request answers.
pub fn check_audience(
    config: &Config,
    client: &ClientRecord,
    audience: &str,
) -> Result<(), AccessError> {
    if audience_allowed(config, client, audience) {
        Ok(())
    } else {
        Err(AccessError::Target(audience.to_owned()))
    }
}

/// The scope granted for a request of `requested` (space-separated, RFC
/// 6749 §3.3) out of `allowed`: every requested scope must be allowed;
/// none requested grants all of `allowed`. Order and duplicates of the
/// request are normalised away.
pub fn grant_scope(
    allowed: &[String],
    requested: Option<&str>,
) -> Result<Vec<String>, AccessError> {
    let Some(requested) = requested else {
        return Ok(allowed.to_vec());
    };
    let mut granted: Vec<String> = Vec::new();
    for scope in requested.split(' ').filter(|s| !s.is_empty()) {
        if !allowed.iter().any(|a| a == scope) {
            return Err(AccessError::Scope(scope.to_owned()));
        }
        if !granted.iter().any(|g| g == scope) {
            granted.push(scope.to_owned());
        }
    }
    Ok(granted)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resource(claims: &[&str]) -> Resource {
        Resource {
            audience: "https://api.example.com".into(),
            format: TokenFormat::Jws,
            claims: claims.iter().map(|c| c.to_string()).collect(),
            sealing: None,
            release: Vec::new(),
            dpop_required: false,
        }
    }

    /// A sealed resource may receive personal data in its declared custom
    /// claims; what every JWS carries (`sub`, in the session token) is still
    /// checked, and undeclared claims are still refused.
    #[test]
    fn sealed_resources_take_personal_data_in_custom_claims() {
        let mut r = resource(&["record_id", "email"]);
        r.format = TokenFormat::Jwe;
        let private = custom(json!({"email": "alice@example.com", "record_id": "078-05-1120"}));
        assert!(check(&r, &private, &[]).is_ok());
        let sub = json!("alice@example.com");
        let e = check(&r, &private, &[("sub", &sub)]).unwrap_err();
        assert!(matches!(e, GuardError::Sensitive { ref claim, .. } if claim == "sub"));
        let e = check(&r, &custom(json!({"ssn": "078-05-1120"})), &[]).unwrap_err();
        assert!(matches!(e, GuardError::Undeclared { .. }));
    }

    fn custom(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn only_declared_claims_pass() {
        let r = resource(&["tenant_tier"]);
        assert!(check(&r, &custom(json!({"tenant_tier": "gold"})), &[]).is_ok());
        let e = check(&r, &custom(json!({"plan": "gold"})), &[]).unwrap_err();
        assert!(matches!(e, GuardError::Undeclared { .. }));
        // Declaring a reserved name does not let a request set it.
        let r = resource(&["sub"]);
        assert!(check(&r, &custom(json!({"sub": "x"})), &[]).is_err());
    }

    #[test]
    fn personal_data_is_refused_in_jws() {
        let r = resource(&["contact"]);
        for (value, kind) in [
            (json!("alice@example.com"), "an e-mail address"),
            (json!("4111 1111 1111 1111"), "a payment card number"),
            (json!(4111111111111111u64), "a payment card number"),
            (json!("078-05-1120"), "a national identification number"),
            (
                json!("GB82 WEST 1234 5698 7654 32"),
                "a national identification number",
            ),
            (json!("+44 20 7946 0958"), "a phone number"),
            (json!("(555) 123-4567"), "a phone number"),
            (
                json!(["ok", {"deep": "bob@example.org"}]),
                "an e-mail address",
            ),
        ] {
            let e = check(&r, &custom(json!({ "contact": value })), &[]).unwrap_err();
            assert_eq!(
                e,
                GuardError::Sensitive {
                    claim: "contact".into(),
                    kind
                },
                "{value}"
            );
            assert!(e.to_string().contains("jwe"));
        }
        for fine in [
            json!("gold"),
            json!("user-4a7f9c2e"),
            json!(42),
            json!("2026-11-23"),
            json!("4111 1111 1111 1112"),
            json!("v1.2.3@beta"),
            json!("12345678"),
        ] {
            assert!(
                check(&r, &custom(json!({ "contact": fine })), &[]).is_ok(),
                "{fine}"
            );
        }
        // Named claims are checked too.
        let sub = json!("carol@example.net");
        assert!(check(&r, &Map::new(), &[("sub", &sub)]).is_err());
    }

    fn client(audiences: Option<&[&str]>, scopes: &[&str], legacy: bool) -> ClientRecord {
        ClientRecord {
            id: "cli_t".into(),
            name: "t".into(),
            secret_hash: String::new(),
            grants: Vec::new(),
            created_at: 0,
            jwks: None,
            registration: crate::store::Registration {
                audiences: audiences.map(|a| a.iter().map(|s| s.to_string()).collect()),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
            legacy,
            previous_secret: None,
            public: false,
        }
    }

    fn config(toml: &str) -> Config {
        Config::from_table(&toml.parse().unwrap()).unwrap()
    }

    #[test]
    fn audiences_follow_the_registration_then_the_default_rule() {
        let none = config("");
        let declared = config(
            "[[resources]]\naudience = \"https://api\"\n\
             [[resources]]\naudience = \"https://rec\"\nformat = \"jwe\"\n\
             encryption_jwks_uri = \"https://rec/jwks\"\n",
        );
        let unregistered = client(None, &[], false);
        // Zero configuration: anything (the service warns at start-up).
        assert!(audience_allowed(&none, &unregistered, "https://anything"));
        // Declared resources: the jws ones only, never a sealed one.
        assert!(audience_allowed(&declared, &unregistered, "https://api"));
        assert!(!audience_allowed(&declared, &unregistered, "https://rec"));
        assert!(!audience_allowed(&declared, &unregistered, "https://other"));
        // Registered: exactly the list, in any configuration.
        let registered = client(Some(&["https://rec"]), &[], false);
        assert!(audience_allowed(&declared, &registered, "https://rec"));
        assert!(!audience_allowed(&declared, &registered, "https://api"));
        assert!(!audience_allowed(&none, &registered, "https://anything"));
        // Legacy: what it used plus the default rule.
        let legacy = client(Some(&["https://rec"]), &[], true);
        assert!(audience_allowed(&declared, &legacy, "https://rec"));
        assert!(audience_allowed(&declared, &legacy, "https://api"));
        assert!(!audience_allowed(&declared, &legacy, "https://other"));
        assert_eq!(
            check_audience(&declared, &registered, "https://api"),
            Err(AccessError::Target("https://api".into()))
        );
    }

    #[test]
    fn scopes_are_granted_within_the_registration() {
        let allowed = vec!["a".to_string(), "b".to_string()];
        assert_eq!(
            grant_scope(&allowed, None).unwrap(),
            allowed,
            "none asked: all"
        );
        assert_eq!(grant_scope(&allowed, Some("b b  a")).unwrap(), ["b", "a"]);
        assert_eq!(
            grant_scope(&allowed, Some("a admin")),
            Err(AccessError::Scope("admin".into()))
        );
        assert_eq!(
            grant_scope(&[], Some("a")),
            Err(AccessError::Scope("a".into()))
        );
        assert!(grant_scope(&[], None).unwrap().is_empty());
    }
}
