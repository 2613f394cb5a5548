//! `tessera audit hash|verify|export` (issue 25): the references under
//! which the trail names secrets, and the chain's check on a fresh store.

use std::io::Write;
use std::process::{Command, Stdio};

fn tessera(data: &std::path::Path, master_key: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tessera"));
    c.env("TESSERA_DATA_DIR", data)
        .env("TESSERA_MASTER_KEY", master_key)
        .env_remove("TESSERA_DATABASE_URL")
        .env_remove("TESSERA_LOG");
    c
}

fn hash(data: &std::path::Path, master_key: &str, value: &str) -> String {
    let out = tessera(data, master_key)
        .args(["audit", "hash", value])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn audit_hash_is_a_stable_keyed_reference() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let key = "ab".repeat(32);
    let line = hash(&data, &key, "a-refresh-token");
    let reference = line.strip_suffix('\n').unwrap();
    let digits = reference.strip_prefix("hmac-sha256:").unwrap();
    assert_eq!(digits.len(), 64, "{reference}");
    assert!(digits
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert!(!reference.contains("a-refresh-token"));
    // Stable across runs, from the value on standard input too.
    assert_eq!(hash(&data, &key, "a-refresh-token"), line);
    let mut child = tessera(&data, &key)
        .args(["audit", "hash"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a-refresh-token\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), line);
    // Another value, another master key: another reference.
    assert_ne!(hash(&data, &key, "another-token"), line);
    assert_ne!(hash(&data, &"cd".repeat(32), "a-refresh-token"), line);
}

#[test]
fn audit_verify_and_export_on_a_fresh_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let key = "ab".repeat(32);
    let out = tessera(&data, &key)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "audit trail intact: 0 events, verified through seq 0\n"
    );
    let out = tessera(&data, &key)
        .args(["audit", "export", "--after", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    // With a configuration file too.
    let config = dir.path().join("tessera.toml");
    std::fs::write(&config, "[audit]\nkeep = \"30d\"\n").unwrap();
    let out = tessera(&data, &key)
        .args(["audit", "verify", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // A head moved without the master key: exit 1, naming the seq.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::Connection;
        let url = format!("sqlite://{}", data.join("tessera.db").display());
        let mut db = sqlx::sqlite::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE audit_head SET seq = 3 WHERE id = 1")
            .execute(&mut db)
            .await
            .unwrap();
        db.close().await.unwrap();
    });
    let out = tessera(&data, &key)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with("audit trail broken at seq 3: "),
        "{stdout}"
    );
}
