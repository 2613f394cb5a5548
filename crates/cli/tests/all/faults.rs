//! One `tessera serve` on SQLite under load (sessions minted, refresh
//! tokens rotated, access tokens introspected) while, in turn, its signing
//! key rotates, it is killed with SIGKILL and started again, and the disk
//! under its database fills up and is freed. Bounded in time and requests,
//! loopback only.
//!
//! A second test kills it in the middle of batched commits (issue 28's
//! group commit): unpaced sessions and rotations from 48 clients, SIGKILL,
//! then every write answered 200 is found, none half-applied.
//!
//! What must hold: no acknowledged refresh is lost (each family's last
//! acknowledged token still rotates at the end), no family is forked (at
//! most one live token per family in the database), no 5xx but a 503 while
//! the disk is full, the service comes back by itself once space returns,
//! and its log (at `debug`) holds no token, refresh token, client secret or
//! private key material.
//!
//! The small disk is a 16 MiB tmpfs mounted for the test, which needs root
//! (CI runs as root); elsewhere point `TESSERA_TEST_SMALL_DISK` at an empty
//! directory on a small filesystem you own.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

const MASTER: &str = "6c6c6c6c6c6c6c6c6c6c6c6c6c6c6c6c6c6c6c6c6c6c6c6c6c6c6c6c6c6c6c6c";
const FAMILIES: usize = 12;
/// Upper bound on requests, whatever the speed of the machine.
const MAX_REQUESTS: u32 = 100_000;

/// A directory on a small filesystem, unmounted when dropped.
struct SmallDisk {
    path: PathBuf,
    mounted: bool,
}

impl SmallDisk {
    fn new(scratch: &Path) -> SmallDisk {
        if let Ok(dir) = std::env::var("TESSERA_TEST_SMALL_DISK") {
            return SmallDisk {
                path: PathBuf::from(dir),
                mounted: false,
            };
        }
        let path = scratch.join("small-disk");
        std::fs::create_dir_all(&path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs"])
            .arg(&path)
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "cannot mount a 16 MiB tmpfs for the disk-full test (it needs root): run as root, \
             or set TESSERA_TEST_SMALL_DISK to an empty directory on a small filesystem"
        );
        SmallDisk {
            path,
            mounted: true,
        }
    }

    /// Writes a filler file until the filesystem has no room left.
    fn fill(&self) -> PathBuf {
        let filler = self.path.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0x5au8; 64 * 1024];
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        let _ = f.sync_all();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

fn tessera(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tessera"));
    c.env("TESSERA_DATA_DIR", data)
        .env("TESSERA_MASTER_KEY", MASTER)
        .env("TESSERA_SIGNING_ALG", "ES256")
        .env("TESSERA_SIGNING_RELOAD_EVERY", "1s")
        // The shortest period: keys published 30 s (the JWKS max-age)
        // before they sign, so a rotation asked for now happens within it.
        .env("TESSERA_SIGNING_ROTATE_EVERY", "60s")
        .env("TESSERA_LOG", "debug")
        .env("TESSERA_LOG_FORMAT", "json")
        .env_remove("TESSERA_DATABASE_URL");
    c
}

/// The service, its whole log kept for the hygiene check.
struct Service {
    child: Child,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data: &Path, port: u16, log: &Arc<Mutex<String>>) -> Service {
    let mut child = tessera(data)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        // A fixed public port; the admin listener on an ephemeral one.
        .env("TESSERA_ADMIN_LISTEN", "127.0.0.1:0")
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    for (reader, ready) in [
        (Box::new(stderr) as Box<dyn BufRead + Send>, Some(ready_tx)),
        (Box::new(stdout), None),
    ] {
        let log = log.clone();
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                if line.contains("tessera is listening") {
                    if let Some(r) = &ready {
                        let _ = r.send(());
                    }
                }
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
    }
    ready_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("tessera serve did not start");
    Service { child }
}

/// base64url without padding, decoded.
fn tessera_jose_b64(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What happened to the requests, by phase.
#[derive(Default)]
struct Tally {
    ok: u32,
    status_503: u32,
    refused_connection: u32,
    interrupted: u32,
    other: Vec<String>,
}

/// The current phase of the test, as the workers see it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Steady,
    Restart,
    DiskFull,
    Recovered,
    Rotated,
}

struct Shared {
    base: String,
    client: (String, String),
    http: reqwest::Client,
    phase: Mutex<Phase>,
    stop: AtomicBool,
    requests: AtomicU32,
    tally: Mutex<std::collections::BTreeMap<String, Tally>>,
    /// Every token and refresh token seen, for the hygiene check.
    secrets: Mutex<Vec<String>>,
}

impl Shared {
    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap()
    }

    fn count(&self, what: impl FnOnce(&mut Tally)) {
        let key = format!("{:?}", self.phase());
        what(self.tally.lock().unwrap().entry(key).or_default());
    }

    fn keep(&self, secret: &str) {
        self.secrets.lock().unwrap().push(secret.to_owned());
    }

    async fn post(
        &self,
        path: &str,
        kind: &str,
        body: String,
    ) -> Result<(u16, Value), reqwest::Error> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let reply = self
            .http
            .post(format!("{}{path}", self.base))
            .basic_auth(&self.client.0, Some(&self.client.1))
            .header("content-type", kind)
            .body(body)
            .send()
            .await?;
        let status = reply.status().as_u16();
        let text = reply.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    async fn session(&self, sub: &str) -> Result<(u16, Value), reqwest::Error> {
        self.post(
            "/v1/sessions",
            "application/json",
            format!(r#"{{"sub":"{sub}","org":"acme","audience":"https://api.example.com"}}"#),
        )
        .await
    }

    async fn refresh(&self, token: &str) -> Result<(u16, Value), reqwest::Error> {
        self.post(
            "/oauth2/token",
            "application/x-www-form-urlencoded",
            format!("grant_type=refresh_token&refresh_token={token}"),
        )
        .await
    }

    async fn introspect(&self, token: &str) -> Result<(u16, Value), reqwest::Error> {
        self.post(
            "/oauth2/introspect",
            "application/x-www-form-urlencoded",
            format!("token={token}"),
        )
        .await
    }

    /// Records the outcome of one request; true when it is 200.
    fn record(&self, what: &str, outcome: &Result<(u16, Value), reqwest::Error>) -> bool {
        match outcome {
            Ok((200, body)) => {
                for name in ["access_token", "refresh_token", "session_token"] {
                    if let Some(t) = body[name].as_str() {
                        self.keep(t);
                    }
                }
                self.count(|t| t.ok += 1);
                true
            }
            Ok((503, _)) => {
                self.count(|t| t.status_503 += 1);
                false
            }
            Ok((status, body)) => {
                let line = format!("{what}: {status} {body}");
                self.count(|t| t.other.push(line));
                false
            }
            Err(e) if e.is_connect() => {
                self.count(|t| t.refused_connection += 1);
                false
            }
            // Cut off by the SIGKILL: no answer, which is not a 5xx.
            Err(_) if self.phase() == Phase::Restart => {
                self.count(|t| t.interrupted += 1);
                false
            }
            Err(e) => {
                let line = format!("{what}: {e}");
                self.count(|t| t.other.push(line));
                false
            }
        }
    }
}

/// What one family's worker ends with.
struct FamilyEnd {
    sid: String,
    /// The last refresh token the service acknowledged.
    token: String,
    /// A request's outcome is unknown (the process died with it in flight).
    in_doubt: bool,
    rotations: u32,
}

async fn family(s: Arc<Shared>, i: usize, first: Value) -> FamilyEnd {
    let sid = first["session_id"].as_str().unwrap().to_owned();
    let mut token = first["refresh_token"].as_str().unwrap().to_owned();
    let mut access = first["access_token"].as_str().unwrap().to_owned();
    let mut rotations = 0;
    let mut turn = 0u32;
    while !s.stop.load(Ordering::SeqCst) && s.requests.load(Ordering::SeqCst) < MAX_REQUESTS {
        turn += 1;
        if turn % 3 == 0 {
            let r = s.introspect(&access).await;
            if s.record("introspect", &r) {
                let (_, body) = r.unwrap();
                assert_eq!(
                    body["active"], true,
                    "family {i}: access token inactive: {body}"
                );
            }
            continue;
        }
        if turn % 5 == 0 {
            // An unknown refresh token now and then: a transaction that
            // ends in a rollback, also while the disk is full (a connection
            // whose transaction did not end cleanly must never be reused:
            // see `store::Conn`).
            let r = s.refresh(&format!("unknown-{i}-{turn}")).await;
            if let Ok((status, body)) = &r {
                assert!(
                    *status == 400 || *status == 503,
                    "family {i}: an unknown refresh token: {status} {body}"
                );
            }
            continue;
        }
        if turn % 7 == 0 {
            // A new session now and then: more writes.
            let r = s.session(&format!("extra-{i}-{turn}")).await;
            s.record("session", &r);
            continue;
        }
        let r = s.refresh(&token).await;
        let ok = s.record("refresh", &r);
        match r {
            Ok((200, body)) => {
                token = body["refresh_token"].as_str().unwrap().to_owned();
                access = body["access_token"].as_str().unwrap().to_owned();
                rotations += 1;
            }
            // Not done (nothing committed): the same token is still the one.
            Ok((503, _)) => {}
            Ok((status, body)) => {
                panic!(
                    "family {i} ({:?}): the acknowledged refresh token was refused: {status} {body}",
                    s.phase()
                );
            }
            // Never reached the service: nothing happened.
            Err(e) if e.is_connect() => {}
            // Died in flight: committed or not, nobody knows; the family is
            // left out of the rotation check and checked in the database.
            Err(_) => {
                return FamilyEnd {
                    sid,
                    token,
                    in_doubt: true,
                    rotations,
                }
            }
        }
        // Paced: a steady load rather than as many requests as two cores allow.
        let pause = if ok { 10 } else { 50 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    FamilyEnd {
        sid,
        token,
        in_doubt: false,
        rotations,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn load_through_rotation_sigkill_and_a_full_disk_loses_nothing() {
    let scratch = tempfile::tempdir().unwrap();
    let disk = SmallDisk::new(scratch.path());
    let data = disk.path.join("data");
    let port = free_port();
    let log = Arc::new(Mutex::new(String::new()));
    let mut service = start(&data, port, &log);
    let created = crate::service::created_client(tessera(&data), "sessions");
    let client = (
        created["client_id"].as_str().unwrap().to_owned(),
        created["client_secret"].as_str().unwrap().to_owned(),
    );
    let s = Arc::new(Shared {
        base: format!("http://127.0.0.1:{port}"),
        client,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            // A fresh connection per request: after a kill, a refused
            // connection then tells for sure that nothing was sent.
            .pool_max_idle_per_host(0)
            .build()
            .unwrap(),
        phase: Mutex::new(Phase::Steady),
        stop: AtomicBool::new(false),
        requests: AtomicU32::new(0),
        tally: Mutex::new(Default::default()),
        secrets: Mutex::new(Vec::new()),
    });
    s.keep(&s.client.1);
    let mut workers = Vec::new();
    for i in 0..FAMILIES {
        let r = s.session(&format!("user-{i}")).await;
        assert!(s.record("session", &r), "{r:?}");
        let first = r.unwrap().1;
        workers.push(tokio::spawn(family(s.clone(), i, first)));
    }
    let set_phase = |p: Phase| *s.phase.lock().unwrap() = p;
    // The kid that signs a session minted now.
    let signing_kid = |s: Arc<Shared>| async move {
        let mut r = s.session("kid-probe").await;
        for _ in 0..100 {
            if s.record("session", &r) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            r = s.session("kid-probe").await;
        }
        let token = r.unwrap().1["access_token"].as_str().unwrap().to_owned();
        let header = token.split('.').next().unwrap().to_owned();
        let header: Value = serde_json::from_slice(&tessera_jose_b64(&header)).unwrap();
        header["kid"].as_str().unwrap().to_owned()
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // (a) A rotation asked for from the command line. The next key has
    // been published for less than the JWKS max-age (30 s, the shortest
    // rotation period being 60 s), so the switch is scheduled: it must
    // happen by itself, under load, through the kill and the full disk.
    let before = signing_kid(s.clone()).await;
    let out = tessera(&data).args(["keys", "rotate"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // (b) SIGKILL, and a start again on the same port and data.
    set_phase(Phase::Restart);
    let pid = service.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap()
        .success());
    let _ = service.child.wait();
    tokio::time::sleep(Duration::from_millis(500)).await;
    service = start(&data, port, &log);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // (c) The disk fills up; then space returns, and nothing else is done.
    set_phase(Phase::DiskFull);
    let filler = disk.fill();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    std::fs::remove_file(&filler).unwrap();
    set_phase(Phase::Recovered);
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // (a) again: the scheduled rotation happens, and the load goes on.
    let asked = std::time::Instant::now();
    loop {
        if signing_kid(s.clone()).await != before {
            break;
        }
        if asked.elapsed() > Duration::from_secs(45) {
            let problems: Vec<String> = log
                .lock()
                .unwrap()
                .lines()
                .filter(|l| l.contains("\"ERROR\"") || l.contains("\"WARN\""))
                .map(str::to_owned)
                .collect();
            let last = &problems[problems.len().saturating_sub(12)..];
            panic!(
                "the scheduled rotation never happened; {} warnings, the last: {last:#?}",
                problems.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    set_phase(Phase::Rotated);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    s.stop.store(true, Ordering::SeqCst);

    let mut ends = Vec::new();
    for w in workers {
        ends.push(w.await.unwrap());
    }
    let tally = std::mem::take(&mut *s.tally.lock().unwrap());
    let mut report = String::new();
    for (phase, t) in &tally {
        report.push_str(&format!(
            "{phase}: {} ok, {} 503, {} refused connections, {} cut off by the kill, {} other\n",
            t.ok,
            t.status_503,
            t.refused_connection,
            t.interrupted,
            t.other.len()
        ));
    }
    eprintln!("{report}");
    // No 5xx but a 503 while the disk is full; nothing else unexpected.
    for (phase, t) in &tally {
        assert!(t.other.is_empty(), "{phase}: {:#?}", t.other);
        if phase != "DiskFull" && phase != "Recovered" {
            assert_eq!(
                t.status_503, 0,
                "{phase}: 503 outside the disk-full window\n{report}"
            );
        }
    }
    let full = &tally["DiskFull"];
    assert!(full.status_503 > 0, "the full disk was felt:\n{report}");
    // Back by itself: requests succeed after the space returned.
    assert!(tally["Recovered"].ok > 0, "{report}");
    assert!(tally["Restart"].ok > 0, "{report}");
    assert!(tally["Rotated"].ok > 0, "{report}");

    // No acknowledged refresh lost: each family's last token still rotates.
    let total: u32 = ends.iter().map(|e| e.rotations).sum();
    assert!(total > FAMILIES as u32 * 4, "load ran: {total} rotations");
    for e in ends.iter().filter(|e| !e.in_doubt) {
        let r = s.refresh(&e.token).await;
        assert!(s.record("final refresh", &r), "family {}: {r:?}", e.sid);
    }
    // No family forked: at most one live token per family, in the database.
    {
        use sqlx::{Connection, Row};
        let url = format!("sqlite://{}?mode=ro", data.join("tessera.db").display());
        let mut db = sqlx::sqlite::SqliteConnection::connect(&url).await.unwrap();
        let forked = sqlx::query(
            "SELECT family_id, count(*) FROM refresh_tokens \
             WHERE used_at IS NULL AND revoked_at IS NULL GROUP BY family_id HAVING count(*) > 1",
        )
        .fetch_all(&mut db)
        .await
        .unwrap();
        assert!(forked.is_empty(), "{} families forked", forked.len());
        for e in ends.iter().filter(|e| e.in_doubt) {
            let live: i64 = sqlx::query(
                "SELECT count(*) FROM refresh_tokens WHERE family_id = ? \
                 AND used_at IS NULL AND revoked_at IS NULL",
            )
            .bind(&e.sid)
            .fetch_one(&mut db)
            .await
            .unwrap()
            .get(0);
            assert_eq!(live, 1, "family {} (in flight at the kill)", e.sid);
        }
        db.close().await.unwrap();
    }
    drop(service);

    // Secrets hygiene: the whole log, against every secret of the run.
    let log = log.lock().unwrap().clone();
    assert!(log.contains("tessera is listening"), "the log was captured");
    let secrets = s.secrets.lock().unwrap().clone();
    assert!(secrets.len() > 100, "{} secrets collected", secrets.len());
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a secret is in the log: {}…",
            &secret[..8]
        );
    }
    for marker in ["PRIVATE KEY", "\"d\":\"", MASTER] {
        assert!(!log.contains(marker), "{marker} in the log");
    }
    eprintln!(
        "faults: {total} rotations, {} requests, {} families in flight at the kill, {} log lines clean",
        s.requests.load(Ordering::SeqCst),
        ends.iter().filter(|e| e.in_doubt).count(),
        log.lines().count()
    );
}

/// What the unpaced load of the batched-commit test saw acknowledged.
#[derive(Default)]
struct Acked {
    /// Sessions answered 200: their ids.
    sessions: Vec<String>,
    /// Per family (session id): the last refresh token answered 200, and
    /// whether a later request on it died in flight.
    families: std::collections::BTreeMap<String, (String, bool)>,
    /// Answers 500 and above (none expected: nothing fails but the kill).
    server_errors: Vec<String>,
}

/// One worker of the batched-commit test: sessions minted and rotated as
/// fast as the service answers, until the kill cuts it off.
async fn unpaced(
    http: reqwest::Client,
    base: String,
    client: (String, String),
    w: usize,
    acked: Arc<Mutex<Acked>>,
) {
    let post = |path: &str, kind: &'static str, body: String| {
        http.post(format!("{base}{path}"))
            .basic_auth(&client.0, Some(&client.1))
            .header("content-type", kind)
            .body(body)
            .send()
    };
    for k in 0.. {
        let minted = post(
            "/v1/sessions",
            "application/json",
            format!(
                r#"{{"sub":"crash-{w}-{k}","org":"acme","audience":"https://api.example.com"}}"#
            ),
        )
        .await;
        let Ok(reply) = minted else { return };
        let status = reply.status().as_u16();
        let Ok(body) = reply
            .text()
            .await
            .map(|t| serde_json::from_str::<Value>(&t).unwrap_or(Value::Null))
        else {
            return;
        };
        if status != 200 {
            assert!(status >= 500, "a session refused: {status} {body}");
            acked
                .lock()
                .unwrap()
                .server_errors
                .push(format!("session: {status} {body}"));
            continue;
        }
        let sid = body["session_id"].as_str().unwrap().to_owned();
        let mut token = body["refresh_token"].as_str().unwrap().to_owned();
        {
            let mut a = acked.lock().unwrap();
            a.sessions.push(sid.clone());
            a.families.insert(sid.clone(), (token.clone(), false));
        }
        for _ in 0..8 {
            let rotated = post(
                "/oauth2/token",
                "application/x-www-form-urlencoded",
                format!("grant_type=refresh_token&refresh_token={token}"),
            )
            .await;
            let outcome = match rotated {
                Ok(reply) => {
                    let status = reply.status().as_u16();
                    reply.text().await.map(|t| {
                        (
                            status,
                            serde_json::from_str::<Value>(&t).unwrap_or(Value::Null),
                        )
                    })
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok((200, body)) => {
                    token = body["refresh_token"].as_str().unwrap().to_owned();
                    acked
                        .lock()
                        .unwrap()
                        .families
                        .insert(sid.clone(), (token.clone(), false));
                }
                Ok((status, body)) => {
                    assert!(status >= 500, "family {sid}: refused {status} {body}");
                    acked
                        .lock()
                        .unwrap()
                        .server_errors
                        .push(format!("refresh: {status} {body}"));
                }
                // Cut off by the kill: committed or not, nobody knows.
                Err(_) => {
                    acked
                        .lock()
                        .unwrap()
                        .families
                        .insert(sid.clone(), (token.clone(), true));
                    return;
                }
            }
        }
    }
}

/// The group commit's counters, from `/metrics`: (commits, writes).
async fn group_commits(http: &reqwest::Client, base: &str) -> (u64, u64) {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0)
    };
    (
        value("tessera_store_group_commits_total "),
        value("tessera_store_group_writes_total "),
    )
}

/// SIGKILL while concurrent requests share commits (issue 28): after the
/// restart every session and refresh rotation answered 200 before the kill
/// is there, with its refresh token and audit event; nothing is
/// half-applied (no session without its first token or its event, no token
/// used without its successor); no family forked; the trail verifies; and
/// every family whose last request was answered still rotates.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_in_the_middle_of_batched_commits_loses_no_acknowledged_write() {
    const WORKERS: usize = 48;
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let port = free_port();
    let log = Arc::new(Mutex::new(String::new()));
    let mut service = start(&data, port, &log);
    let created = crate::service::created_client(tessera(&data), "sessions");
    let client = (
        created["client_id"].as_str().unwrap().to_owned(),
        created["client_secret"].as_str().unwrap().to_owned(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let acked = Arc::new(Mutex::new(Acked::default()));
    let before = group_commits(&http, &base).await;
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            tokio::spawn(unpaced(
                http.clone(),
                base.clone(),
                client.clone(),
                w,
                acked.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Batches are forming: more writes than commits.
    let (commits, writes) = group_commits(&http, &base).await;
    let (commits, writes) = (commits - before.0, writes - before.1);
    assert!(
        writes > commits + commits / 4,
        "{writes} writes in {commits} commits: the load did not batch"
    );
    let pid = service.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap()
        .success());
    let _ = service.child.wait();
    for w in workers {
        w.await.unwrap();
    }
    service = start(&data, port, &log);
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(acked.server_errors.is_empty(), "{:#?}", acked.server_errors);
    assert!(
        acked.sessions.len() > WORKERS,
        "{} sessions",
        acked.sessions.len()
    );

    use sqlx::{Connection, Row};
    let url = format!("sqlite://{}?mode=ro", data.join("tessera.db").display());
    let mut db = sqlx::sqlite::SqliteConnection::connect(&url).await.unwrap();
    let count = |sql: &'static str, bind: Option<Vec<u8>>, text: Option<String>| {
        let mut q = sqlx::query(sql);
        if let Some(b) = bind {
            q = q.bind(b);
        }
        if let Some(t) = text {
            q = q.bind(t);
        }
        q
    };
    // Every acknowledged session, with its event.
    for sid in &acked.sessions {
        let row = count(
            "SELECT (SELECT count(*) FROM sessions WHERE id = ?1), \
             (SELECT count(*) FROM audit_events WHERE action = 'session.created' AND target = ?1)",
            None,
            Some(sid.clone()),
        )
        .fetch_one(&mut db)
        .await
        .unwrap();
        let (session, event): (i64, i64) = (row.get(0), row.get(1));
        assert_eq!((session, event), (1, 1), "session {sid} after the kill");
    }
    // Every acknowledged rotation: the last token answered is stored, and
    // unused unless a request died with it in flight.
    let mut in_doubt = 0;
    for (sid, (token, doubt)) in &acked.families {
        let hash = tessera_server::tokens::refresh_hash(token);
        let row = count(
            "SELECT used_at IS NULL FROM refresh_tokens WHERE hash = ?1 AND family_id = ?2",
            Some(hash),
            Some(sid.clone()),
        )
        .fetch_optional(&mut db)
        .await
        .unwrap();
        let unused: bool = row
            .unwrap_or_else(|| panic!("family {sid}: its acknowledged token is gone"))
            .get(0);
        if *doubt {
            in_doubt += 1;
        } else {
            assert!(unused, "family {sid}: its last acknowledged token was used");
        }
    }
    // Nothing half-applied, nothing forked.
    for (what, sql) in [
        (
            "sessions without a refresh token",
            "SELECT count(*) FROM sessions s \
             WHERE NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.session_id = s.id)",
        ),
        (
            "sessions without their event",
            "SELECT count(*) FROM sessions s WHERE NOT EXISTS (SELECT 1 FROM audit_events e \
             WHERE e.action = 'session.created' AND e.target = s.id)",
        ),
        (
            "families whose tokens are not one unused after the used ones",
            "SELECT count(*) FROM (SELECT family_id FROM refresh_tokens GROUP BY family_id \
             HAVING sum(used_at IS NULL) != 1 OR sum(revoked_at IS NOT NULL) != 0)",
        ),
    ] {
        let n: i64 = sqlx::query(sql).fetch_one(&mut db).await.unwrap().get(0);
        assert_eq!(n, 0, "{what}");
    }
    db.close().await.unwrap();
    // The families whose last answer was seen still rotate.
    for (sid, (token, doubt)) in &acked.families {
        if *doubt {
            continue;
        }
        let reply = http
            .post(format!("{base}/oauth2/token"))
            .basic_auth(&client.0, Some(&client.1))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("grant_type=refresh_token&refresh_token={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            reply.status().as_u16(),
            200,
            "family {sid} after the restart"
        );
    }
    drop(service);
    let out = tessera(&data).args(["audit", "verify"]).output().unwrap();
    assert!(
        out.status.success(),
        "the trail after the kill: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "batched kill: {writes} writes in {commits} commits before the kill; {} sessions and {} \
         families acknowledged, {in_doubt} in flight at the kill, all found",
        acked.sessions.len(),
        acked.families.len()
    );
}
