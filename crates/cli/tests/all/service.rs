//! The service commands as scripts use them: exit codes, JSON output, and a
//! real `serve` process stopped with SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

use serde_json::Value;

fn tessera(data: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tessera"));
    c.env("TESSERA_DATA_DIR", data)
        .env("TESSERA_MASTER_KEY", "ab".repeat(32))
        .env("TESSERA_SIGNING_ALG", "ES256")
        .env_remove("TESSERA_LOG");
    c
}

#[test]
fn a_bad_config_stops_with_one_line_naming_the_key_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.toml");
    std::fs::write(&path, "[signing]\nalgo = \"RS256\"\n").unwrap();
    let out = tessera(&dir.path().join("d"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim(), "error: config: `signing.algo`: unknown key");
    let out = tessera(&dir.path().join("d"))
        .env("TESSERA_TOKENS_ACCESS_TTL", "forever")
        .args(["serve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("`tokens.access_ttl`"));
}

/// `tessera clients create --name backend --grant sessions,client_credentials --json`.
fn create_client(data: &std::path::Path) -> Value {
    created_client(tessera(data), "sessions,client_credentials")
}

/// Runs `clients create --name backend --grant GRANTS --json` with `command`
/// (its environment names the store) and returns the printed JSON.
pub(crate) fn created_client(mut command: Command, grants: &str) -> Value {
    let out = command
        .args([
            "clients", "create", "--name", "backend", "--grant", grants, "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `tessera admins create|list|delete` (issue 25): the token is printed
/// Only `tessera serve` generates a master key: another command run without
/// the service's key refuses, rather than keying the store (signing keys,
/// the audit trail) with a stray one.
#[test]
fn only_serve_generates_a_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    for args in [
        &[
            "clients",
            "create",
            "--name",
            "x",
            "--grant",
            "client_credentials",
        ][..],
        &["admins", "create", "--name", "a", "--scopes", "*"],
        &["keys", "list"],
        &["audit", "hash", "v"],
    ] {
        let out = tessera(&data)
            .env_remove("TESSERA_MASTER_KEY")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("TESSERA_MASTER_KEY"), "{args:?}: {err}");
        assert!(
            !data.join("master.key").exists(),
            "{args:?} generated a master key"
        );
    }
}

/// Issue 25: `tessera keys compromised KID --yes`: a fresh key signs at
/// once, the leaked one is out of the JWKS for good; without --yes nothing
/// happens; twice or for an unknown kid, exit 1.
#[test]
fn keys_compromised_command() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let keys = |data: &std::path::Path| -> Value {
        let out = tessera(data)
            .args(["keys", "list", "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let before = keys(&data);
    let current = before
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["state"] == "current")
        .unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let unconfirmed = tessera(&data)
        .args(["keys", "compromised", &current])
        .output()
        .unwrap();
    assert_eq!(unconfirmed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unconfirmed.stderr).contains("--yes"));
    assert_eq!(keys(&data), before, "nothing changed without --yes");

    let out = tessera(&data)
        .args(["keys", "compromised", &current, "--yes", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(done["kid"], current.as_str());
    let new_kid = done["new_kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, current);
    assert!(done["verifiers_may_accept_until"].as_i64().unwrap() > 0);
    let after = keys(&data);
    let state = |kid: &str| {
        after
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(state(&current), "compromised");
    assert_eq!(state(&new_kid), "current");
    for (kid, expect) in [
        (current.as_str(), "already marked compromised"),
        ("nope", "no signing key"),
    ] {
        let again = tessera(&data)
            .args(["keys", "compromised", kid, "--yes"])
            .output()
            .unwrap();
        assert_eq!(again.status.code(), Some(1), "{kid}");
        let err = String::from_utf8_lossy(&again.stderr);
        assert!(err.contains(expect), "{kid}: {err}");
    }
}

/// once and stored only hashed; list never shows it; scopes are checked.
#[test]
fn admins_commands() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let out = tessera(&data)
        .args([
            "admins",
            "create",
            "--name",
            "alice",
            "--scopes",
            "clients:read,keys:write",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = created["admin_id"].as_str().unwrap().to_owned();
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(id.starts_with("adm_"), "{id}");
    assert!(token.starts_with("tessera_admin_"), "{token}");
    for args in [&["admins", "list", "--json"][..], &["admins", "list"]] {
        let list = tessera(&data).args(args).output().unwrap();
        assert!(list.status.success());
        let text = String::from_utf8(list.stdout).unwrap();
        assert!(text.contains(&id), "{text}");
        assert!(!text.contains(&token), "the token is listed: {text}");
        assert!(!text.contains(&token["tessera_admin_".len()..]));
    }
    let list: Value = serde_json::from_slice(
        &tessera(&data)
            .args(["admins", "list", "--json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(
        list[0]["scopes"],
        serde_json::json!(["clients:read", "keys:write"])
    );
    // Nothing of the token in the database file either (only its hash).
    for entry in std::fs::read_dir(&data).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
    }
    // Usage errors: exit 2, saying what to change.
    for scopes in ["clients:delete", "admin", ""] {
        let bad = tessera(&data)
            .args(["admins", "create", "--name", "x", "--scopes", scopes])
            .output()
            .unwrap();
        assert_eq!(bad.status.code(), Some(2), "{scopes}");
        let stderr = String::from_utf8(bad.stderr).unwrap();
        assert!(
            stderr.contains("clients:read") || stderr.contains("--scopes"),
            "{stderr}"
        );
    }
    assert!(tessera(&data)
        .args(["admins", "delete", &id])
        .output()
        .unwrap()
        .status
        .success());
    assert_eq!(
        tessera(&data)
            .args(["admins", "delete", &id])
            .output()
            .unwrap()
            .status
            .code(),
        Some(1)
    );
}

/// `tessera clients create --public` (a mobile app: no secret, refresh
/// only) and `--dpop required` (issue 26).
#[test]
fn public_and_dpop_bound_clients() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    create_client(&data); // keys the store (the master key is generated once)
    let run = |args: &[&str]| tessera(&data).args(args).output().unwrap();
    let app = run(&[
        "clients",
        "create",
        "--name",
        "app",
        "--public",
        "--grant",
        "refresh_token",
        "--audience",
        "https://api.example.com",
        "--json",
    ]);
    assert!(
        app.status.success(),
        "{}",
        String::from_utf8_lossy(&app.stderr)
    );
    let app: Value = serde_json::from_slice(&app.stdout).unwrap();
    assert!(app["client_id"].as_str().unwrap().starts_with("cli_"));
    assert!(
        app.get("client_secret").is_none(),
        "a public client has no secret: {app}"
    );
    // Only refresh_token; never with a JWKS.
    for bad in [
        &[
            "clients",
            "create",
            "--name",
            "x",
            "--public",
            "--grant",
            "client_credentials",
        ][..],
        &[
            "clients",
            "create",
            "--name",
            "x",
            "--public",
            "--grant",
            "sessions,refresh_token",
        ],
        &[
            "clients",
            "create",
            "--name",
            "x",
            "--public",
            "--grant",
            "refresh_token",
            "--jwks",
            "keys.json",
        ],
    ] {
        assert_eq!(run(bad).status.code(), Some(2), "{bad:?}");
    }
    let strict = run(&[
        "clients",
        "create",
        "--name",
        "strict",
        "--grant",
        "client_credentials",
        "--dpop",
        "required",
        "--json",
    ]);
    assert!(
        strict.status.success(),
        "{}",
        String::from_utf8_lossy(&strict.stderr)
    );
    let list: Value = serde_json::from_slice(&run(&["clients", "list", "--json"]).stdout).unwrap();
    let by_name = |n: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("app")["auth"], "none");
    assert_eq!(by_name("app")["public"], true);
    assert_eq!(by_name("app")["dpop"], "required");
    assert_eq!(by_name("strict")["dpop"], "required");
    assert_eq!(by_name("backend")["dpop"], "optional");
    // `clients update --dpop optional` relaxes it.
    let id = by_name("strict")["client_id"].as_str().unwrap().to_owned();
    assert!(run(&["clients", "update", &id, "--dpop", "optional"])
        .status
        .success());
    let list: Value = serde_json::from_slice(&run(&["clients", "list", "--json"]).stdout).unwrap();
    let strict = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == id.as_str())
        .unwrap();
    assert_eq!(strict["dpop"], "optional");
}

#[test]
fn clients_and_keys_commands() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let created = create_client(&data);
    let id = created["client_id"].as_str().unwrap().to_owned();
    assert_eq!(created["client_secret"].as_str().unwrap().len(), 43);
    let list = tessera(&data)
        .args(["clients", "list", "--json"])
        .output()
        .unwrap();
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list[0]["client_id"], id.as_str());
    assert!(!list
        .to_string()
        .contains(created["client_secret"].as_str().unwrap()));
    let bad = tessera(&data)
        .args(["clients", "create", "--name", "x", "--grant", "password"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(tessera(&data)
        .args(["clients", "delete", &id])
        .output()
        .unwrap()
        .status
        .success());
    assert_eq!(
        tessera(&data)
            .args(["clients", "delete", &id])
            .output()
            .unwrap()
            .status
            .code(),
        Some(1)
    );

    // What a client may ask for: registered at creation, changed with
    // `clients update` (the options given replace their list), listed.
    let run = |args: &[&str]| tessera(&data).args(args).output().unwrap();
    let gw = run(&[
        "clients",
        "create",
        "--name",
        "gw",
        "--grant",
        "token_exchange",
        "--json",
    ]);
    assert!(
        gw.status.success(),
        "{}",
        String::from_utf8_lossy(&gw.stderr)
    );
    let gw: Value = serde_json::from_slice(&gw.stdout).unwrap();
    let gw = gw["client_id"].as_str().unwrap();
    let made = run(&[
        "clients",
        "create",
        "--name",
        "orders",
        "--grant",
        "client_credentials",
        "--audience",
        "https://api.example.com,https://b.example.com",
        "--scope",
        "orders:read orders:write",
        "--may-act",
        gw,
        "--introspect",
        "https://api.example.com",
        "--json",
    ]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let orders: Value = serde_json::from_slice(&made.stdout).unwrap();
    let orders = orders["client_id"].as_str().unwrap();
    let listed = |id: &str| -> Value {
        let list: Value =
            serde_json::from_slice(&run(&["clients", "list", "--json"]).stdout).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .find(|c| c["client_id"] == id)
            .unwrap()
            .clone()
    };
    let row = listed(orders);
    assert_eq!(
        row["audiences"],
        serde_json::json!(["https://api.example.com", "https://b.example.com"])
    );
    assert_eq!(
        row["scopes"],
        serde_json::json!(["orders:read", "orders:write"])
    );
    assert_eq!(row["may_act"], serde_json::json!([gw]));
    assert_eq!(
        row["introspect"],
        serde_json::json!(["https://api.example.com"])
    );
    assert_eq!(row["legacy"], false);
    let updated = run(&["clients", "update", orders, "--scope", "orders:read"]);
    assert!(
        updated.status.success(),
        "{}",
        String::from_utf8_lossy(&updated.stderr)
    );
    let row = listed(orders);
    assert_eq!(row["scopes"], serde_json::json!(["orders:read"]));
    assert_eq!(
        row["audiences"].as_array().unwrap().len(),
        2,
        "not given: kept"
    );
    let reset = run(&["clients", "update", orders, "--default-audiences"]);
    assert!(reset.status.success());
    assert_eq!(listed(orders)["audiences"], Value::Null);
    // Refused with exit 2 and one line: a bad scope token, an unknown actor;
    // an unknown client is exit 1.
    for (args, code) in [
        (
            vec!["clients", "update", orders, "--scope", "bad\"scope"],
            2,
        ),
        (
            vec!["clients", "update", orders, "--may-act", "cli_nobody"],
            2,
        ),
        (vec!["clients", "update", "cli_nobody", "--scope", "a"], 1),
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "));
    }

    let keys = tessera(&data)
        .args(["keys", "list", "--json"])
        .output()
        .unwrap();
    let keys: Value = serde_json::from_slice(&keys.stdout).unwrap();
    let states: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["current", "next"]);
    let rotate = tessera(&data).args(["keys", "rotate"]).output().unwrap();
    assert!(rotate.status.success());
    assert!(String::from_utf8(rotate.stdout)
        .unwrap()
        .contains("once verifiers' JWKS caches"));
}

fn http(addr: &str, request: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    (
        head.split(' ').nth(1).unwrap().parse().unwrap(),
        body.to_owned(),
    )
}

/// A started `tessera serve`, killed if the test ends before it stops it
/// (a failed assertion must not leave a server running).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The newcomer flow of the README, with the real binary: serve, create a
/// client, mint a session, verify the access token against the JWKS; then
/// SIGTERM stops it cleanly.
#[test]
fn newcomer_flow_then_sigterm() {
    use base64::Engine as _;
    use tessera_jose::jwa::JwsAlgorithm;
    use tessera_jose::jwk::JwkSet;
    use tessera_jose::jws::Verifier;
    use tessera_jose::jwt::{self, SystemClock, Validation};

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let mut child = KillOnDrop(
        tessera(&data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("TESSERA_LOG_FORMAT", "json")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("serve exited early").unwrap();
        let log: Value = serde_json::from_str(&line).unwrap();
        if log["fields"]["message"] == "tessera is listening" {
            break log["fields"]["addr"].as_str().unwrap().to_owned();
        }
    };
    let (status, _) = http(
        &addr,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);

    // A client, created while the service runs.
    let created = create_client(&data);
    let credentials = format!(
        "{}:{}",
        created["client_id"].as_str().unwrap(),
        created["client_secret"].as_str().unwrap()
    );
    let auth = base64::engine::general_purpose::STANDARD.encode(credentials);

    // A session for a user the backend authenticated.
    let body = r#"{"sub":"user-1","org":"acme","roles":["admin"],"amr":["pwd"],"audience":"https://api.example.com"}"#;
    let session_request = format!(
        "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Basic {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, reply) = http(&addr, &session_request);
    assert_eq!(status, 200, "{reply}");
    let session: Value = serde_json::from_str(&reply).unwrap();

    // Verified against the published keys, as a resource server would.
    let (_, jwks) = http(
        &addr,
        "GET /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let set = JwkSet::from_json(jwks.as_bytes()).unwrap();
    let verifier = Verifier::builder()
        .jwk_set(&set, &[JwsAlgorithm::ES256])
        .unwrap()
        .build()
        .unwrap();
    let validation = Validation::new()
        .issuer(&format!("http://{addr}"))
        .audience("https://api.example.com")
        .typ("at+jwt");
    let token = session["access_token"].as_str().unwrap();
    let verified = jwt::verify::<Value>(token, &verifier, &validation, &SystemClock).unwrap();
    assert_eq!(verified.claims().sub.as_deref(), Some("user-1"));

    // Deleted with the CLI while the service runs: refused once the
    // service's copy of the record (`clients.cache_for`, 1 s) is over. (A
    // new session is refused at once: the database has no such client.)
    let cc = "grant_type=client_credentials";
    let token_request = format!(
        "POST /oauth2/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Basic {auth}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{cc}",
        cc.len()
    );
    let (status, reply) = http(&addr, &token_request);
    assert_eq!(status, 200, "{reply}");
    let id = created["client_id"].as_str().unwrap();
    let out = tessera(&data)
        .args(["clients", "delete", id])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("deleted {id}")
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("up to 1 s (clients.cache_for)"));
    let deleted_at = std::time::Instant::now();
    let mut accepted = 0;
    let (status, reply) = loop {
        let (status, reply) = http(&addr, &token_request);
        if status != 200 {
            break (status, reply);
        }
        accepted += 1;
        assert!(
            deleted_at.elapsed() < std::time::Duration::from_secs(5),
            "a deleted client still got tokens 5 s later ({accepted} answers)"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status, 401, "{reply}");
    assert!(reply.contains("invalid_client"), "{reply}");
    eprintln!("tokens issued to the deleted client before it was refused: {accepted}");
    let (status, reply) = http(&addr, &session_request);
    assert_eq!(status, 401, "{reply}");
    assert!(reply.contains("invalid_client"), "{reply}");

    let kill = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert_eq!(child.0.wait().unwrap().code(), Some(0));
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("shutting down")), "{rest:?}");
    // No token or secret reached the log.
    let secret = created["client_secret"].as_str().unwrap();
    assert!(!rest.iter().any(|l| l.contains(token) || l.contains(secret)));
}
