//! Operators of the admin API: who may manage clients, keys and sessions,
//! and read the audit trail (issue 25). Admins are created, listed and
//! deleted with the CLI only (`tessera admins …`): nothing reachable over
//! HTTP can make one.
//!
//! An admin authenticates with a bearer token of 256 random bits, shown once
//! and stored as its SHA-256: a lookup by hash needs no secret comparison,
//! and a stolen database holds no usable token. What it may do is a set of
//! scopes ([`SCOPES`]); `*` is every scope.

use zeroize::Zeroizing;

use crate::crypto::{random_token, sha256};
use crate::store::{AdminRecord, Store, StoreError};

/// The scopes an admin can be given (`*` stands for all of them).
pub const SCOPES: &[&str] = &[
    "clients:read",
    "clients:write",
    "keys:read",
    "keys:write",
    "sessions:read",
    "sessions:write",
    "audit:read",
];

/// Every scope, in one.
pub const ALL: &str = "*";

/// The prefix of admin tokens: a token found in a log or a paste says what
/// it is (and secret scanners can look for it).
pub const TOKEN_PREFIX: &str = "tessera_admin_";

/// An admin-management failure.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The request is malformed (an unknown scope, an empty name).
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No randomness.
    #[error("could not make a token")]
    Random,
}

/// An admin just created: the only time its token exists in clear.
pub struct NewAdmin {
    /// The record as stored.
    pub record: AdminRecord,
    /// The bearer token, to show once.
    pub token: Zeroizing<String>,
}

impl std::fmt::Debug for NewAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAdmin")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// The scopes as given (comma- or space-separated names, repeated flags),
/// checked and in a canonical order: `*` alone, or known scopes once each.
pub fn parse_scopes(given: &[String]) -> Result<Vec<String>, AdminError> {
    let mut wanted: Vec<&str> = given
        .iter()
        .flat_map(|g| g.split([',', ' ']))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if wanted.is_empty() {
        return Err(AdminError::Invalid(format!(
            "an admin needs at least one scope: {} or {ALL}",
            SCOPES.join(", ")
        )));
    }
    if let Some(unknown) = wanted.iter().find(|s| **s != ALL && !SCOPES.contains(s)) {
        return Err(AdminError::Invalid(format!(
            "unknown scope {unknown:?}: the scopes are {} and {ALL}",
            SCOPES.join(", ")
        )));
    }
    if wanted.contains(&ALL) {
        return Ok(vec![ALL.to_owned()]);
    }
    wanted.sort_by_key(|s| SCOPES.iter().position(|k| k == s));
    wanted.dedup();
    Ok(wanted.into_iter().map(str::to_owned).collect())
}

/// Whether an admin with `scopes` may do what `needed` names.
pub fn allows(scopes: &[String], needed: &str) -> bool {
    scopes.iter().any(|s| s == ALL || s == needed)
}

/// Creates an admin with these scopes (see [`parse_scopes`]).
pub async fn create<S: Store>(
    store: &S,
    name: &str,
    scopes: &[String],
    now: i64,
) -> Result<NewAdmin, AdminError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(AdminError::Invalid("an admin needs a name".into()));
    }
    let scopes = parse_scopes(scopes)?;
    let id = format!(
        "adm_{}",
        random_token(16).map_err(|_| AdminError::Random)?.as_str()
    );
    let secret = random_token(32).map_err(|_| AdminError::Random)?;
    let token = Zeroizing::new(format!("{TOKEN_PREFIX}{}", secret.as_str()));
    let record = AdminRecord {
        id,
        name: name.to_owned(),
        scopes,
        token_hash: sha256(token.as_bytes()),
        created_at: now,
    };
    store.create_admin(&record).await?;
    Ok(NewAdmin { record, token })
}

/// The admin a bearer token belongs to, if any. Anything that is not one of
/// our tokens is refused before the store is asked.
pub async fn authenticate<S: Store>(
    store: &S,
    token: &str,
) -> Result<Option<AdminRecord>, StoreError> {
    let well_formed = token
        .strip_prefix(TOKEN_PREFIX)
        .is_some_and(|rest| rest.len() == 43 && rest.bytes().all(is_base64url));
    if !well_formed {
        return Ok(None);
    }
    store.admin_by_token_hash(&sha256(token.as_bytes())).await
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn scopes_are_checked_and_canonical() {
        assert_eq!(
            parse_scopes(&list(&["keys:write,clients:read", "clients:read"])).unwrap(),
            list(&["clients:read", "keys:write"])
        );
        assert_eq!(
            parse_scopes(&list(&["audit:read sessions:write"])).unwrap(),
            list(&["sessions:write", "audit:read"])
        );
        assert_eq!(
            parse_scopes(&list(&["clients:read,*"])).unwrap(),
            list(&["*"])
        );
        for bad in [
            &[][..],
            &[""],
            &["clients:delete"],
            &["admin"],
            &["Clients:Read"],
        ] {
            let e = parse_scopes(&list(bad)).unwrap_err().to_string();
            assert!(e.contains("clients:read"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn scopes_allow_only_what_they_name() {
        let reader = list(&["clients:read", "audit:read"]);
        assert!(allows(&reader, "clients:read"));
        assert!(!allows(&reader, "clients:write"));
        assert!(!allows(&reader, "*"));
        assert!(allows(&list(&["*"]), "keys:write"));
        assert!(!allows(&[], "clients:read"));
    }
}
