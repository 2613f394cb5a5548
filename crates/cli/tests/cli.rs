//! The `tessera` binary as scripts use it: exit codes, JSON output, and a
//! real `serve` process stopped with SIGTERM.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

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

#[test]
fn clients_and_keys_commands() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let out = tessera(&data)
        .args([
            "clients",
            "create",
            "--name",
            "backend",
            "--grant",
            "sessions,client_credentials",
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

#[test]
fn serve_answers_then_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tessera(&dir.path().join("d"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TESSERA_LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("serve exited early").unwrap();
        let log: Value = serde_json::from_str(&line).unwrap();
        if log["fields"]["message"] == "tessera is listening" {
            break log["fields"]["addr"].as_str().unwrap().to_owned();
        }
    };
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("shutting down")), "{rest:?}");
}
