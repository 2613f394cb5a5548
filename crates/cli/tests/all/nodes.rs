//! Several `tessera serve` processes on one PostgreSQL database (started by
//! scripts/with-postgres, or `TESSERA_TEST_PG_URL`): sessions and refresh
//! tokens cross nodes, exactly one of many concurrent refreshes wins, a
//! node killed with SIGKILL loses no family, and a key rotation reaches
//! every node within its reload period.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const MASTER: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
const ISSUER: &str = "https://auth.example.com";

/// A fresh database on the test PostgreSQL server: its URL.
async fn fresh_database() -> String {
    use sqlx::{Connection, Executor};
    let base = std::env::var("TESSERA_TEST_PG_URL").unwrap_or_else(|_| {
        panic!(
            "TESSERA_TEST_PG_URL is not set: run the tests through scripts/test, which starts a \
             throw-away PostgreSQL, or point it at a server you own"
        )
    });
    let mut conn = sqlx::postgres::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {base}: {e}"));
    let name = format!(
        "tessera_n_{}_{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos() ^ u128::from(rand_u32())
    );
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    conn.close().await.unwrap();
    let (without_query, query) = match base.split_once('?') {
        Some((u, q)) => (u, format!("?{q}")),
        None => (base.as_str(), String::new()),
    };
    let (server, _) = without_query.rsplit_once('/').unwrap();
    format!("{server}/{name}{query}")
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(u64::from(std::process::id()));
    h.finish() as u32
}

fn tessera(db: &str, data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tessera"));
    c.env("TESSERA_DATABASE_URL", db)
        .env("TESSERA_DATA_DIR", data)
        .env("TESSERA_MASTER_KEY", MASTER)
        .env("TESSERA_ISSUER", ISSUER)
        .env("TESSERA_SIGNING_ALG", "ES256")
        .env("TESSERA_SIGNING_RELOAD_EVERY", "1s")
        .env("TESSERA_SIGNING_ROTATE_EVERY", "60s")
        .env("TESSERA_LOG_FORMAT", "json")
        .env_remove("TESSERA_LOG");
    c
}

/// A running node; killed (SIGKILL) when dropped, if still running.
struct Node {
    child: Child,
    base: String,
    /// Its ERROR log lines so far.
    errors: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Node {
    fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_node(db: &str, data: &Path) -> Node {
    let mut child = tessera(db, data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("serve exited early").unwrap();
        let log: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if log["fields"]["message"] == "tessera is listening" {
            break log["fields"]["addr"].as_str().unwrap().to_owned();
        }
    };
    // Keep reading its log (or it blocks once the pipe is full); errors are
    // kept for the test's messages.
    let errors = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = errors.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if line.contains("\"level\":\"ERROR\"") {
                kept.lock().unwrap().push(line);
            }
        }
    });
    Node {
        child,
        base: format!("http://{addr}"),
        errors,
    }
}

fn create_client(db: &str, data: &Path) -> (String, String) {
    let v = crate::service::created_client(tessera(db, data), "sessions");
    (
        v["client_id"].as_str().unwrap().to_owned(),
        v["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// The node tests run one at a time: each starts two services and loads
/// them, on a machine of two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Cluster {
    db: String,
    a: Node,
    b: Node,
    client: (String, String),
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn cluster() -> Cluster {
    let db = fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    // Each node has its own data directory: nothing is shared but the database.
    let a = start_node(&db, &dir.path().join("a"));
    let b = start_node(&db, &dir.path().join("b"));
    let client = create_client(&db, &dir.path().join("cli"));
    Cluster {
        db,
        a,
        b,
        client,
        http: reqwest::Client::builder()
            // Generous: each request verifies an Argon2id client secret, and
            // two debug-built nodes share two cores with the other tests.
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap(),
        _dir: dir,
    }
}

impl Cluster {
    async fn session(&self, node: &Node, sub: &str) -> Value {
        let reply = self
            .http
            .post(format!("{}/v1/sessions", node.base))
            .basic_auth(&self.client.0, Some(&self.client.1))
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"sub":"{sub}","org":"acme","audience":"https://api.example.com"}}"#
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
        serde_json::from_str(&reply.text().await.unwrap()).unwrap()
    }

    async fn refresh(&self, base: &str, token: &str) -> Result<(u16, Value), reqwest::Error> {
        let reply = self
            .http
            .post(format!("{base}/oauth2/token"))
            .basic_auth(&self.client.0, Some(&self.client.1))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("grant_type=refresh_token&refresh_token={token}"))
            .send()
            .await?;
        let status = reply.status().as_u16();
        let text = reply.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    async fn jwks(&self, node: &Node) -> String {
        self.http
            .get(format!("{}/.well-known/jwks.json", node.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_and_refresh_cross_nodes_and_one_of_200_concurrent_refreshes_wins() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let c = cluster().await;
    assert_eq!(c.jwks(&c.a).await, c.jwks(&c.b).await, "one key set");

    // Minted on A, refreshed on B, then on A; a replay on B revokes the family.
    let s = c.session(&c.a, "user-1").await;
    let first = s["refresh_token"].as_str().unwrap().to_owned();
    let (status, b1) = c.refresh(&c.b.base, &first).await.unwrap();
    assert_eq!(status, 200, "{b1}");
    let second = b1["refresh_token"].as_str().unwrap().to_owned();
    let (status, a2) = c.refresh(&c.a.base, &second).await.unwrap();
    assert_eq!(status, 200, "{a2}");
    let third = a2["refresh_token"].as_str().unwrap().to_owned();
    let (status, replay) = c.refresh(&c.b.base, &first).await.unwrap();
    assert_eq!(status, 400);
    assert_eq!(replay["error"], "invalid_grant");
    let (status, _) = c.refresh(&c.a.base, &third).await.unwrap();
    assert_eq!(
        status, 400,
        "the family died with the replay, on the other node"
    );

    // 200 concurrent refreshes of one token, spread over both nodes.
    let s = c.session(&c.b, "user-2").await;
    let token = s["refresh_token"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let base = if i % 2 == 0 {
            c.a.base.clone()
        } else {
            c.b.base.clone()
        };
        let (http, client, token) = (c.http.clone(), c.client.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            http.post(format!("{base}/oauth2/token"))
                .basic_auth(&client.0, Some(&client.1))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("grant_type=refresh_token&refresh_token={token}"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let logged = [c.a.errors(), c.b.errors()].concat();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 400),
        "{statuses:?}\n{logged:#?}"
    );
    assert!(logged.is_empty(), "{logged:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_mid_load_loses_no_family_and_the_other_serves_on() {
    let _turn = ONE_AT_A_TIME.lock().await;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let c = Arc::new(cluster().await);
    let families = 16;
    let mut tokens = Vec::new();
    let mut sids = Vec::new();
    for i in 0..families {
        let s = c.session(&c.b, &format!("user-{i}")).await;
        tokens.push(s["refresh_token"].as_str().unwrap().to_owned());
        sids.push(s["session_id"].as_str().unwrap().to_owned());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for (i, first) in tokens.into_iter().enumerate() {
        let (c, stop) = (c.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            // Gives (the last acknowledged token, whether the family is in doubt,
            // rotations done, why).
            let mut token = first;
            let mut rotations = 0u32;
            let mut turn = i;
            while !stop.load(Ordering::SeqCst) {
                turn += 1;
                // A third of the families only ever talk to B: their last
                // token is known for sure when A dies.
                let on_a = i % 3 != 0 && turn % 2 == 0;
                let base = if on_a { &c.a.base } else { &c.b.base };
                match c.refresh(base, &token).await {
                    Ok((200, body)) => {
                        token = body["refresh_token"].as_str().unwrap().to_owned();
                        rotations += 1;
                    }
                    Ok((status, body)) => panic!("family {i}: {status} {body}"),
                    // A never reached: nothing happened; B takes it next turn.
                    Err(e) if on_a && e.is_connect() => {}
                    // A died with the request in flight: its outcome is unknown
                    // (committed or not), so this family is left out of the check.
                    Err(e) if on_a => return (token, true, rotations, e.to_string()),
                    Err(e) => panic!("family {i}: node B failed: {e}"),
                }
            }
            (token, false, rotations, String::new())
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // SIGKILL node A mid-load.
    let a_pid = c.a.child.id();
    assert!(Command::new("kill")
        .args(["-KILL", &a_pid.to_string()])
        .status()
        .unwrap()
        .success());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);
    let mut in_doubt = Vec::new();
    let mut total = 0;
    let mut last = Vec::new();
    for (w, sid) in workers.into_iter().zip(&sids) {
        let (token, doubt, rotations, _) = w.await.unwrap();
        total += rotations;
        if doubt {
            in_doubt.push(sid.clone());
        } else {
            last.push(token);
        }
    }
    assert!(total > families as u32, "load ran: {total} rotations");
    use sqlx::{Connection, Row};
    let mut db = sqlx::postgres::PgConnection::connect(&c.db).await.unwrap();
    // A family whose request died with A: whether A committed it or not,
    // the family still has exactly one live token (in the database).
    for sid in &in_doubt {
        let live: i64 = sqlx::query(
            "SELECT count(*) FROM refresh_tokens WHERE family_id = $1 \
             AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(sid)
        .fetch_one(&mut db)
        .await
        .unwrap()
        .get(0);
        assert_eq!(live, 1, "family {sid} (request in flight at the kill)");
    }
    // Not lost: every other family's last acknowledged token still rotates, on B.
    for token in &last {
        let (status, body) = c.refresh(&c.b.base, token).await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let forked = sqlx::query(
        "SELECT family_id, count(*) AS n FROM refresh_tokens \
         WHERE used_at IS NULL AND revoked_at IS NULL GROUP BY family_id HAVING count(*) > 1",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert!(forked.is_empty(), "{} families forked", forked.len());
    eprintln!(
        "SIGKILL test: {total} rotations, {} families in flight at the kill, {} checked by rotation",
        in_doubt.len(),
        last.len()
    );
    let live: i64 = sqlx::query(
        "SELECT count(DISTINCT family_id) FROM refresh_tokens WHERE used_at IS NULL AND revoked_at IS NULL",
    )
    .fetch_one(&mut db)
    .await
    .unwrap()
    .get(0);
    assert!(
        live >= last.len() as i64,
        "{live} live families, {} expected",
        last.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_rotation_reaches_the_other_node_within_its_reload_period() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let c = cluster().await;
    let before = c.jwks(&c.a).await;
    assert_eq!(before, c.jwks(&c.b).await);
    let kid_of = |token: &str| -> String {
        tessera_jose::danger::decode_unverified(token)
            .unwrap()
            .header["kid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let old = kid_of(c.session(&c.a, "u").await["access_token"].as_str().unwrap());
    // The next key may sign once verifiers' caches have had it for
    // jwks_max_age (30 s with rotate_every = 60s): then rotate, from A's side
    // of the database (the CLI writes exactly what a node's maintenance does).
    tokio::time::sleep(Duration::from_secs(31)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = tessera(&c.db, dir.path())
        .args(["keys", "rotate"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotated_at = Instant::now();
    // Within the reload period (1 s) plus a margin, both nodes sign with the
    // new key and publish the same set.
    let mut seen = (false, false);
    while rotated_at.elapsed() < Duration::from_secs(4) && !(seen.0 && seen.1) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        seen.0 = kid_of(c.session(&c.a, "u").await["access_token"].as_str().unwrap()) != old;
        seen.1 = kid_of(c.session(&c.b, "u").await["access_token"].as_str().unwrap()) != old;
    }
    assert!(
        seen.0 && seen.1,
        "new key on A: {}, on B: {}",
        seen.0,
        seen.1
    );
    assert_eq!(c.jwks(&c.a).await, c.jwks(&c.b).await);
    assert_ne!(c.jwks(&c.a).await, before);
}
