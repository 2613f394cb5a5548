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

/// Runs `args` with the store in `data` under `master_key`, expecting
/// success; returns standard output.
fn run_ok(data: &std::path::Path, master_key: &str, args: &[&str]) -> String {
    let out = tessera(data, master_key).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "tessera {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `tessera audit export`, parsed line by line.
fn export(data: &std::path::Path, master_key: &str) -> Vec<serde_json::Value> {
    run_ok(data, master_key, &["audit", "export"])
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// `tessera audit verify`: its exit code and standard output.
fn verify(data: &std::path::Path, master_key: &str) -> (Option<i32>, String) {
    let out = tessera(data, master_key)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

/// A copy of the data directory `data` (no process holds it), at `to`.
fn copy_dir(data: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(data).unwrap() {
        let entry = entry.unwrap();
        assert!(entry.file_type().unwrap().is_file(), "{:?}", entry.path());
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Runs `statements` on the SQLite database in `data`, in one transaction,
/// as someone with the database but not the master key would.
fn tamper(data: &std::path::Path, statements: &[&str]) {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::Connection;
        let url = format!("sqlite://{}", data.join("tessera.db").display());
        let mut db = sqlx::sqlite::SqliteConnection::connect(&url).await.unwrap();
        let mut tx = db.begin().await.unwrap();
        for statement in statements {
            let done = sqlx::query(statement).execute(&mut *tx).await.unwrap();
            assert!(done.rows_affected() > 0, "{statement}: no row changed");
        }
        tx.commit().await.unwrap();
        db.close().await.unwrap();
    });
}

/// Whether `needle` occurs anywhere in `haystack`.
fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_trail_of_real_events_verifies_and_any_edit_names_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let key = "ab".repeat(32);
    let json = |text: String| -> serde_json::Value { serde_json::from_str(&text).unwrap() };
    let create_client = |name: &str| {
        json(run_ok(
            &data,
            &key,
            &[
                "clients",
                "create",
                "--name",
                name,
                "--grant",
                "client_credentials",
                "--json",
            ],
        ))
    };
    let first = create_client("first");
    let second = create_client("second");
    let client_secret = first["client_secret"].as_str().unwrap().to_owned();
    let other_secret = second["client_secret"].as_str().unwrap().to_owned();
    let admin = json(run_ok(
        &data,
        &key,
        &["admins", "create", "--name", "a", "--scopes", "*", "--json"],
    ));
    let admin_token = admin["token"].as_str().unwrap().to_owned();
    let admin_id = admin["admin_id"].as_str().unwrap().to_owned();
    run_ok(&data, &key, &["keys", "list"]);
    run_ok(&data, &key, &["keys", "rotate"]);
    let keys = json(run_ok(&data, &key, &["keys", "list", "--json"]));
    let current = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["state"] == "current")
        .unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    run_ok(&data, &key, &["keys", "compromised", &current, "--yes"]);
    let deleted = second["client_id"].as_str().unwrap();
    run_ok(&data, &key, &["clients", "delete", deleted]);

    // The export: seq 1..N without gaps, the expected actions, all by the
    // command line.
    let events = export(&data, &key);
    let n = events.len();
    assert!(n >= 8, "{events:#?}");
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["seq"], i as i64 + 1, "{e}");
        assert_eq!(e["actor"]["type"], "cli", "{e}");
        assert_eq!(e["outcome"], "success", "{e}");
        for field in [
            "time",
            "action",
            "target",
            "request_id",
            "source_ip",
            "details",
            "prev_hash",
            "hash",
        ] {
            assert!(e.get(field).is_some(), "{field} missing: {e}");
        }
        if i > 0 {
            assert_eq!(e["prev_hash"], events[i - 1]["hash"], "{e}");
        }
    }
    assert_eq!(events[0]["prev_hash"], "0".repeat(64));
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "client.created",
        "admin.created",
        "key.generated",
        "key.compromised",
        "client.deleted",
    ] {
        assert!(actions.contains(&action), "{action} missing: {actions:?}");
    }
    assert_eq!(
        &actions[..3],
        ["client.created", "client.created", "admin.created"]
    );
    assert_eq!(actions[n - 1], "client.deleted");
    let with = |action: &str, target: &str| {
        events
            .iter()
            .find(|e| e["action"] == action && e["target"] == target)
            .unwrap_or_else(|| panic!("no {action} of {target}: {actions:?}"))
    };
    with("client.created", first["client_id"].as_str().unwrap());
    with("client.deleted", deleted);
    with("key.compromised", &current);
    // Secrets appear only as references: the admin token's is there.
    let admin_created = with("admin.created", &admin_id);
    let reference = hash(&data, &key, &admin_token);
    assert_eq!(
        admin_created["details"]["token"],
        reference.strip_suffix('\n').unwrap(),
        "{admin_created}"
    );
    let exported = run_ok(&data, &key, &["audit", "export"]);
    for secret in [&admin_token, &client_secret, &other_secret] {
        assert!(
            !exported.contains(secret.as_str()),
            "{secret} in the export"
        );
    }
    let mut files = 0;
    for name in ["tessera.db", "tessera.db-wal", "tessera.db-shm"] {
        let Ok(bytes) = std::fs::read(data.join(name)) else {
            continue;
        };
        files += 1;
        for secret in [&admin_token, &client_secret, &other_secret] {
            assert!(
                !contains_bytes(&bytes, secret.as_bytes()),
                "{secret} in {name}"
            );
        }
    }
    assert!(files >= 1);
    let (code, stdout) = verify(&data, &key);
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(
        stdout,
        format!("audit trail intact: {n} events, verified through seq {n}\n")
    );

    // Each edit on its own copy of the data directory.
    let case = |name: &str, statements: &[&str]| -> String {
        let copy = dir.path().join(name);
        copy_dir(&data, &copy);
        assert_eq!(
            verify(&copy, &key).0,
            Some(0),
            "{name}: copy before the edit"
        );
        tamper(&copy, statements);
        let (code, stdout) = verify(&copy, &key);
        assert_eq!(code, Some(1), "{name}: {stdout}");
        assert!(
            stdout.starts_with("audit trail broken at seq "),
            "{name}: {stdout}"
        );
        stdout
    };
    // (a) An event's details edited.
    let out = case(
        "edited",
        &[r#"UPDATE audit_events SET details = '{"name":"someone else"}' WHERE seq = 3"#],
    );
    assert!(out.starts_with("audit trail broken at seq 3: "), "{out}");
    // (b) An event deleted.
    let out = case("deleted", &["DELETE FROM audit_events WHERE seq = 4"]);
    assert!(out.starts_with("audit trail broken at seq 4: "), "{out}");
    // (c) Two events swapped (their seq exchanged).
    let out = case(
        "swapped",
        &[
            "UPDATE audit_events SET seq = -1 WHERE seq = 2",
            "UPDATE audit_events SET seq = 2 WHERE seq = 5",
            "UPDATE audit_events SET seq = 5 WHERE seq = -1",
        ],
    );
    assert!(out.starts_with("audit trail broken at seq 2: "), "{out}");
    // (c') The same with every column but seq swapped instead.
    let columns = "time, actor_type, actor_id, action, target, outcome, request_id, \
                   source_ip, details, prev_hash, hash, mac";
    let sets = columns
        .split(", ")
        .map(|c| format!("{c} = (SELECT {c} FROM audit_events WHERE seq = -1)"))
        .collect::<Vec<_>>()
        .join(", ");
    let copy_5 = format!("INSERT INTO audit_events (seq, {columns}) SELECT -1, {columns} FROM audit_events WHERE seq = 5");
    let five_from_two = sets.replace("seq = -1", "seq = 2");
    let out = case(
        "swapped-columns",
        &[
            &copy_5,
            &format!("UPDATE audit_events SET {five_from_two} WHERE seq = 5"),
            &format!("UPDATE audit_events SET {sets} WHERE seq = 2"),
            "DELETE FROM audit_events WHERE seq = -1",
        ],
    );
    assert!(out.starts_with("audit trail broken at seq 2: "), "{out}");
    // (e) The tail cut off, the head moved back to the event before it
    // (without the master key, its MAC cannot be redone).
    let last = format!("DELETE FROM audit_events WHERE seq = {n}");
    let head = format!(
        "UPDATE audit_head SET seq = {prev}, \
         hash = (SELECT hash FROM audit_events WHERE seq = {prev}) WHERE id = 1",
        prev = n - 1
    );
    case("truncated", &[&last, &head]);
    // (e') The tail cut off, the head left alone: the missing event named.
    let out = case("truncated-only", &[&last]);
    assert!(
        out.starts_with(&format!("audit trail broken at seq {n}: ")),
        "{out}"
    );
}

#[test]
fn a_wrong_master_key_cannot_write_to_the_trail() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let (a, b) = ("ab".repeat(32), "cd".repeat(32));
    let create = |key: &str, name: &str| {
        tessera(&data, key)
            .args([
                "clients",
                "create",
                "--name",
                name,
                "--grant",
                "client_credentials",
                "--json",
            ])
            .output()
            .unwrap()
    };
    let out = create(&a, "first");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = export(&data, &a);
    assert_eq!(before.len(), 1);
    let clients = run_ok(&data, &a, &["clients", "list", "--json"]);

    let out = create(&b, "second");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("audit trail") && stderr.contains("master key"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Nothing written: neither the event nor the client.
    assert_eq!(export(&data, &a), before);
    assert_eq!(run_ok(&data, &a, &["clients", "list", "--json"]), clients);
    let (code, stdout) = verify(&data, &a);
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(
        stdout,
        "audit trail intact: 1 events, verified through seq 1\n"
    );
    // With key B the trail does not verify at all.
    let (code, stdout) = verify(&data, &b);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.starts_with("audit trail broken at seq 1: "),
        "{stdout}"
    );
}
