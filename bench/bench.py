#!/usr/bin/env python3
"""The service benchmark: tessera against oidc-provider, side by side.

Run through bench/run, which installs what this needs (wrk, the peer's npm
packages, matplotlib) and builds tessera in release mode; bench/README.md
says what each figure means. Writes bench/RESULTS.md and the charts in
bench/charts/.
"""

import argparse
import base64
import datetime
import http.client
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
TESSERA = ROOT / "target" / "release" / "tessera"
LOAD = BENCH / "load.lua"
PEER = BENCH / "peer" / "peer.mjs"
CLK_TCK = os.sysconf("SC_CLK_TCK")

API = "https://api.example.com"
RECORDS = "https://records.example.com"
PARTNER = "https://partner.example.org"
OPAQUE = "https://opaque.example.com"  # the peer's opaque-token resource
FORM = "application/x-www-form-urlencoded"
SESSION_BODY = json.dumps({
    "sub": "user-1", "org": "acme", "roles": ["admin"], "amr": ["pwd"], "audience": API,
})


class BenchError(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def basic(client_id, secret):
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def request(port, method, path, body=None, headers=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def post_json(port, path, body, headers):
    status, data = request(port, "POST", path, body, headers)
    if status != 200:
        raise BenchError(f"POST {path}: {status} {data[:300]!r}")
    return json.loads(data)


class Server:
    """A server process: what it costs is read from /proc."""

    name = "?"

    def __init__(self, work):
        self.work = Path(work)
        self.proc = None
        self.port = None
        self.log = None

    def _spawn(self, argv, env, ready_path):
        self.port = self.port or free_port()
        self.log = open(self.work / f"{self.name}.log", "ab")
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=self.work)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited with {self.proc.returncode}; "
                                 f"its log: {self.work / (self.name + '.log')}")
            try:
                status, _ = request(self.port, "GET", ready_path, timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchError(f"{self.name} did not answer {ready_path} within 60 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.log:
            self.log.close()
            self.log = None

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            # The command may hold spaces or parentheses: fields count from the last ')'.
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime

    def peak_rss_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        raise BenchError("no VmHWM in /proc")


class Tessera(Server):
    name = "tessera"

    def __init__(self, work, alg="RS256", database_url=None, binary=None):
        super().__init__(work)
        # Another build (--baseline): an earlier commit's binary, measured
        # beside this one in the same run.
        self.binary = binary or TESSERA
        self.baseline = binary is not None
        if self.baseline:
            self.name = "baseline"
        self.alg = alg
        self.database_url = database_url
        self.data = self.work / "data"
        self.config = self.work / "tessera.toml"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
        self.env.update({
            "TESSERA_MASTER_KEY": secrets.token_hex(32),
            "TESSERA_SIGNING_ALG": alg,
        })
        if database_url:
            self.env["TESSERA_DATABASE_URL"] = database_url
        self.client_id = self.secret = None

    def start(self):
        if not self.config.exists():
            run([str(self.binary), "jwk", "generate", "--kty", "RSA", "--alg", "RSA-OAEP-256",
                 "--kid", "records-1"], stdout_to=self.work / "records.jwk")
            run([str(self.binary), "jwk", "generate", "--kty", "EC", "--crv", "P-256",
                 "--alg", "ECDH-ES+A256KW", "--kid", "partner-1"],
                stdout_to=self.work / "partner.jwk")
            for name in ("records", "partner"):
                with open(self.work / f"{name}.jwk") as f:
                    run([str(self.binary), "jwk", "public"], stdin=f,
                        stdout_to=self.work / f"{name}.pub.jwk")
            self.port = free_port()
            self.config.write_text(f"""issuer = "http://127.0.0.1:{self.port}"
data_dir = "{self.data}"

[[resources]]
audience = "{API}"

[[resources]]
audience = "{RECORDS}"
format = "jwe"
encryption_key = "{self.work / 'records.pub.jwk'}"

[[resources]]
audience = "{PARTNER}"
format = "nested"
encryption_key = "{self.work / 'partner.pub.jwk'}"
alg = "ECDH-ES+A256KW"
release = ["sub", "org"]
""")
        self._spawn([str(self.binary), "serve", "--config", str(self.config),
                     "--listen", f"127.0.0.1:{self.port}"],
                    # The admin listener on an ephemeral port (a baseline from
                    # before the admin API knows no such variable).
                    self.env if self.baseline else {**self.env, "TESSERA_ADMIN_LISTEN": "127.0.0.1:0"},
                    "/healthz")
        if self.client_id is None:
            out = run([str(self.binary), "clients", "create", "--config", str(self.config),
                       "--name", "bench", "--grant", "sessions,client_credentials,refresh_token",
                       "--audience", f"{API},{RECORDS},{PARTNER}", "--json"], env=self.env)
            client = json.loads(out)
            self.client_id, self.secret = client["client_id"], client["client_secret"]
        return self

    @property
    def auth(self):
        return basic(self.client_id, self.secret)

    def sessions(self, count):
        """Mints `count` sessions; their refresh tokens."""
        headers = {"Authorization": self.auth, "Content-Type": "application/json"}
        return [post_json(self.port, "/v1/sessions", SESSION_BODY, headers)["refresh_token"]
                for _ in range(count)]

    def client_token(self, audience=API):
        body = f"grant_type=client_credentials&resource={audience}"
        headers = {"Authorization": self.auth, "Content-Type": FORM}
        return post_json(self.port, "/oauth2/token", body, headers)["access_token"]


class Peer(Server):
    name = "oidc-provider"

    def __init__(self, work, alg="RS256"):
        super().__init__(work)
        self.alg = alg
        self.client_id = "bench"
        self.secret = secrets.token_urlsafe(32)

    def start(self):
        env = dict(os.environ, PEER_PORT=str(self.port or free_port()), PEER_ALG=self.alg,
                   PEER_CLIENT_ID=self.client_id, PEER_CLIENT_SECRET=self.secret,
                   NODE_ENV="production")
        self.port = int(env["PEER_PORT"])
        self._spawn(["node", str(PEER)], env, "/jwks")
        return self

    @property
    def auth(self):
        return basic(self.client_id, self.secret)

    def client_token(self, audience=OPAQUE):
        body = f"grant_type=client_credentials&resource={audience}&scope=api"
        headers = {"Authorization": self.auth, "Content-Type": FORM}
        return post_json(self.port, "/token", body, headers)["access_token"]


def run(argv, env=None, stdin=None, stdout_to=None):
    out = subprocess.run(argv, env=env, stdin=stdin, capture_output=True, check=False)
    if out.returncode != 0:
        raise BenchError(f"{' '.join(argv)}: exit {out.returncode}: {out.stderr.decode()[:500]}")
    if stdout_to:
        Path(stdout_to).write_bytes(out.stdout)
    return out.stdout.decode()


# --- Loads -------------------------------------------------------------------------------

class Load:
    """What one row sends: wrk's environment, built afresh for every run."""

    def __init__(self, label, method, path, auth=None, ctype=None, body=None, tokens=None,
                 shown_body=None, proofs=None):
        self.label, self.method, self.path = label, method, path
        self.auth, self.ctype, self.body = auth, ctype, body
        self.tokens = tokens  # refresh: a function (count) -> fresh refresh tokens
        self.proofs = proofs  # DPoP: a function (path) writing fresh proofs there
        self.shown_body = shown_body or body  # for RESULTS.md: no token written down

    def env(self, connections, work):
        env = {"BENCH_METHOD": self.method, "BENCH_PATH": self.path}
        if self.auth:
            env["BENCH_AUTH"] = self.auth
        if self.ctype:
            env["BENCH_TYPE"] = self.ctype
        if self.body:
            env["BENCH_BODY"] = self.body
        if self.tokens:
            # One family per connection, and two spare per thread: wrk asks
            # each thread for a request it never sends (load.lua).
            path = Path(work) / "refresh-tokens.txt"
            spare = 2 * min(2, connections)
            path.write_text("\n".join(self.tokens(connections + spare)) + "\n")
            env["BENCH_TOKENS"] = str(path)
        if self.proofs:
            # Made afresh for every run: a proof is accepted once, and for
            # a minute after its iat.
            path = Path(work) / "dpop-proofs.txt"
            self.proofs(path)
            env["BENCH_PROOFS"] = str(path)
        return env

    def command(self, port, connections, seconds):
        """The exact command, for RESULTS.md (secrets elided)."""
        parts = [f"BENCH_METHOD={self.method}", f"BENCH_PATH={self.path}"]
        if self.auth:
            parts.append("BENCH_AUTH='Basic …'")
        if self.ctype:
            parts.append(f"BENCH_TYPE={self.ctype}")
        if self.body:
            parts.append(f"BENCH_BODY='{self.shown_body}'")
        threads = min(2, connections)
        if self.tokens:
            parts.append(f"BENCH_TOKENS=<a file: one fresh refresh token per connection, "
                         f"2 spare per thread> BENCH_THREADS={threads}")
        if self.proofs:
            parts.append(f"BENCH_PROOFS=<a file: fresh DPoP proofs, one per request "
                         f"(tessera dpop proof --count)> BENCH_THREADS={threads}")
        parts.append(f"wrk -t{threads} -c{connections} -d{seconds}s --timeout 10s "
                     f"-s bench/load.lua http://127.0.0.1:PORT")
        return " ".join(parts)


def wrk(port, connections, seconds, env):
    threads = min(2, connections)
    full = dict(os.environ, BENCH_THREADS=str(threads), **env)
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s",
                          "--timeout", "10s", "-s", str(LOAD), f"http://127.0.0.1:{port}"],
                         env=full, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise BenchError(f"wrk failed: {out.stderr[:500]}")
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if not lines:
        raise BenchError(f"wrk printed no result: {out.stdout[-500:]} {out.stderr[-500:]}")
    return json.loads(lines[-1])


def measure(server, load, connections, args):
    """Warm-up, then `args.runs` runs; the median run's figures."""
    wrk(server.port, connections, min(2, args.seconds), load.env(connections, server.work))
    runs = [one_run(server, load, connections, args) for _ in range(args.runs)]
    return summarize(server, load, connections, args, runs)


def measure_alternating(rows, connections, args):
    """Like `measure` for each (server, load) of `rows`, their runs taken in turn (A B A B …):
    a machine that speeds up or slows down during the runs moves every row alike, so their
    ratio holds. One result per row, in order."""
    for server, load in rows:
        wrk(server.port, connections, min(2, args.seconds), load.env(connections, server.work))
    runs = [[] for _ in rows]
    for _ in range(args.runs):
        for (server, load), mine in zip(rows, runs):
            mine.append(one_run(server, load, connections, args))
    return [summarize(server, load, connections, args, mine)
            for (server, load), mine in zip(rows, runs)]


def one_run(server, load, connections, args):
    env = load.env(connections, server.work)
    cpu0 = server.cpu_seconds()
    r = wrk(server.port, connections, args.seconds, env)
    cpu = server.cpu_seconds() - cpu0
    if r["starved"]:
        raise BenchError(f"{load.label} at {connections} connections: {r['starved']} requests "
                         "found no refresh token or DPoP proof to send (families lost to "
                         "failed answers, or too few proofs made?)")
    errors = sum(r[k] for k in r if k.startswith("errors_")) + r["starved"]
    ok = max(r["requests"] - r["errors_status"] - r["starved"], 0)
    return {
        "rps": ok / (r["duration_us"] / 1e6),
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "cpu_per_1000": cpu / (ok / 1000) if ok else float("nan"),
        "errors": errors,
        "requests": r["requests"],
    }


def summarize(server, load, connections, args, runs):
    result = {
        "rps": statistics.median(x["rps"] for x in runs),
        "p50_ms": statistics.median(x["p50_ms"] for x in runs),
        "p99_ms": statistics.median(x["p99_ms"] for x in runs),
        "cpu_per_1000": statistics.median(x["cpu_per_1000"] for x in runs),
        "errors": sum(x["errors"] for x in runs),
        "requests": sum(x["requests"] for x in runs),
        "rss_mib": server.peak_rss_mib(),
        "runs": [round(x["rps"]) for x in runs],
        "command": load.command(server.port, connections, args.seconds),
    }
    print(f"   {server.name:14} {load.label:34} c={connections:<4} {result['rps']:9.0f} req/s  "
          f"p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:7.2f} ms  "
          f"rss {result['rss_mib']:6.1f} MiB  errors {result['errors']}", flush=True)
    return result


# --- Loads per row -----------------------------------------------------------------------

def cc_load(server, audience=API):
    if isinstance(server, Peer):
        return Load("client_credentials", "POST", "/token", server.auth, FORM,
                    f"grant_type=client_credentials&resource={audience}&scope=api")
    return Load("client_credentials", "POST", "/oauth2/token", server.auth, FORM,
                f"grant_type=client_credentials&resource={audience}")


# Proofs made per second of a DPoP run: above any rate a DPoP row reaches on
# this kind of machine (each request verifies a proof's signature), so that
# no run starves.
DPOP_PROOFS_PER_SECOND = 20_000


def dpop_cc_load(server, seconds, proof_kty):
    """client_credentials with a fresh DPoP proof on every request, signed
    by one client key (`proof_kty`: arguments of `tessera jwk generate`)."""
    key = server.work / f"dpop-{'-'.join(proof_kty)}.jwk"
    if not key.exists():
        run([str(server.binary), "jwk", "generate", *proof_kty], stdout_to=key)
    count = DPOP_PROOFS_PER_SECOND * seconds + 1000

    def proofs(path):
        run([str(server.binary), "dpop", "proof", "--key", str(key), "--htm", "POST",
             "--htu", f"http://127.0.0.1:{server.port}/oauth2/token",
             "--count", str(count)], stdout_to=path)

    load = cc_load(server)
    return Load(f"client_credentials + DPoP", "POST", "/oauth2/token", server.auth, FORM,
                load.body, proofs=proofs)


def introspect_load(server):
    token = server.client_token()
    path = "/token/introspection" if isinstance(server, Peer) else "/oauth2/introspect"
    return Load("introspection", "POST", path, server.auth, FORM, f"token={token}",
                shown_body="token=<a client_credentials access token>")


def jwks_load(server):
    return Load("JWKS GET", "GET", "/jwks" if isinstance(server, Peer) else "/.well-known/jwks.json")


def mint_load(server):
    return Load("POST /v1/sessions", "POST", "/v1/sessions", server.auth, "application/json",
                SESSION_BODY)


def refresh_load(server):
    return Load("refresh rotation", "POST", "/oauth2/token", server.auth, FORM,
                "grant_type=refresh_token&refresh_token=%s", tokens=server.sessions)


# --- Seeding large tables ----------------------------------------------------------------

def seed_sqlite(path, client_id, count):
    now = int(time.time())
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        with db:
            params = {"n": count, "client": client_id, "now": now, "exp": now + 30 * 86400,
                      "aud": API}
            db.execute("""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :n)
                INSERT INTO sessions (id, client_id, sub, org, roles, amr, audience, claims,
                                      created_at, expires_at)
                SELECT 'seed-' || i, :client, 'user-' || i, 'acme', '["admin"]', '["pwd"]',
                       :aud, '{}', :now, :exp FROM n""", params)
            db.execute("""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :n)
                INSERT INTO refresh_tokens (hash, family_id, session_id, client_id, created_at,
                                            expires_at)
                SELECT randomblob(32), 'seed-family-' || i, 'seed-' || i, :client, :now, :exp
                FROM n""", params)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


def seed_postgres(url, client_id, count):
    now = int(time.time())
    sql = f"""
        INSERT INTO sessions (id, client_id, sub, org, roles, amr, audience, claims, created_at,
                              expires_at)
        SELECT 'seed-' || i, '{client_id}', 'user-' || i, 'acme', '["admin"]', '["pwd"]',
               '{API}', '{{}}', {now}, {now + 30 * 86400} FROM generate_series(1, {count}) i;
        INSERT INTO refresh_tokens (hash, family_id, session_id, client_id, created_at, expires_at)
        SELECT sha256(('seed-' || i)::bytea), 'seed-family-' || i, 'seed-' || i, '{client_id}',
               {now}, {now + 30 * 86400} FROM generate_series(1, {count}) i;
        ANALYZE;"""
    run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql])


def postgres_database(base_url, name):
    run(["psql", "-q", "-v", "ON_ERROR_STOP=1", base_url, "-c", f"DROP DATABASE IF EXISTS {name}"])
    run(["psql", "-q", "-v", "ON_ERROR_STOP=1", base_url, "-c", f"CREATE DATABASE {name}"])
    return base_url.rsplit("/", 1)[0] + "/" + name


def refresh_with_table(work, size, database_url=None, binary=None):
    """A fresh tessera whose store already holds `size` sessions and refresh families."""
    server = Tessera(work, "RS256", database_url, binary).start()
    client = server.client_id
    server.stop()
    started = time.monotonic()
    if database_url:
        seed_postgres(database_url, client, size)
    else:
        seed_sqlite(server.data / "tessera.db", client, size)
    print(f"   seeded {size:,} sessions and refresh families in "
          f"{time.monotonic() - started:.1f} s", flush=True)
    return server.start()


def compare_writes(args, base, counter, pg_url):
    """The rows that write (session minting; refresh rotation on SQLite and PostgreSQL at the
    smallest table size), for this build and the baseline, alternately: this, baseline, this,
    baseline; each figure the better of its two measurements' medians (noise only slows)."""
    baseline = Path(args.baseline).resolve()
    if not baseline.exists():
        raise BenchError(f"--baseline {baseline} is missing")
    print(f"== writes against the baseline ({args.baseline_label}: {baseline})", flush=True)
    size = int(args.sizes.split(",")[0])
    rows = {}

    def one(binary, kind, url):
        work = base / f"{next(counter):03}-compare-{kind}"
        work.mkdir()
        if kind == "mint":
            t = Tessera(work, "RS256", None, binary).start()
            load = mint_load(t)
        else:
            db = postgres_database(url, f"cmp_{next(counter)}") if url else None
            t = refresh_with_table(work, size, db, binary)
            load = refresh_load(t)
        try:
            return measure(t, load, args.connections, args)
        finally:
            t.stop()

    cases = [("POST /v1/sessions mint", "mint", None),
             (f"refresh rotation, SQLite ({size:,} families)", "refresh", None)]
    if pg_url:
        cases.append((f"refresh rotation, PostgreSQL ({size:,} families)", "refresh", pg_url))
    for label, kind, url in cases:
        this, other = [], []
        for _ in range(2):
            this.append(one(None, kind, url))
            other.append(one(baseline, kind, url))
        rows[label] = {"tessera": max(this, key=lambda r: r["rps"]),
                       "baseline": max(other, key=lambda r: r["rps"])}
    return {"label": args.baseline_label, "rows": rows}


# --- The physical limit ------------------------------------------------------------------

def raw_signing():
    """Raw signatures per second on one core, from the tessera-jose criterion bench."""
    print("== raw signing (tessera-jose bench `jws`, aws-lc-raw)", flush=True)
    filt = "^sign/(RS256|ES256|EdDSA)/aws-lc-raw$"
    out = subprocess.run(["cargo", "bench", "-p", "tessera-jose", "--bench", "jws", "--locked",
                          "--", filt, "--noplot"], cwd=ROOT, capture_output=True, text=True,
                         check=False)
    if out.returncode != 0:
        raise BenchError(f"cargo bench failed: {out.stderr[-2000:]}")
    rates = {}
    for alg in ("RS256", "ES256", "EdDSA"):
        est = ROOT / "target" / "criterion" / f"sign_{alg}" / "aws-lc-raw" / "new" / "estimates.json"
        ns = json.loads(est.read_text())["median"]["point_estimate"]
        rates[alg] = 1e9 / ns
        print(f"   {alg}: {rates[alg]:,.0f} signatures/s on one core", flush=True)
    return rates


def criterion_rate(path):
    """Iterations per second from a criterion estimate (its median)."""
    return 1e9 / json.loads((path / "new" / "estimates.json").read_text())["median"]["point_estimate"]


def write_bounds():
    """The write rows' CPU bounds, each measured on one core and with every core at once
    (criterion groups `sign` / `sign_parallel` of tessera-jose's `jws` bench, `issuance` /
    `issuance_parallel` of tessera-server's `issuance` bench): signatures/s and tokens/s."""
    print("== the write rows' CPU bounds (one core; every core at once)", flush=True)
    for crate, bench, filt in (
            ("tessera-jose", "jws", "^sign(_parallel)?/(RS256|ES256)/aws-lc-raw$"),
            ("tessera-server", "issuance", "^issuance(_parallel)?/RS256/(jwe|nested)$")):
        out = subprocess.run(["cargo", "bench", "-p", crate, "--bench", bench, "--locked", "--",
                              filt, "--noplot"], cwd=ROOT, capture_output=True, text=True,
                             check=False)
        if out.returncode != 0:
            raise BenchError(f"cargo bench failed: {out.stderr[-2000:]}")
    crit = ROOT / "target" / "criterion"
    bounds = {"one_core": {}, "all_cores": {}}
    for alg in ("RS256", "ES256"):
        bounds["one_core"][alg] = criterion_rate(crit / f"sign_{alg}" / "aws-lc-raw")
        bounds["all_cores"][alg] = criterion_rate(crit / f"sign_parallel_{alg}" / "aws-lc-raw")
    for fmt in ("jwe", "nested"):
        bounds["one_core"][fmt] = criterion_rate(crit / "issuance_RS256" / fmt)
        bounds["all_cores"][fmt] = criterion_rate(crit / "issuance_parallel_RS256" / fmt)
    for what in ("RS256", "ES256", "jwe", "nested"):
        print(f"   {what}: {bounds['one_core'][what]:,.0f}/s on one core, "
              f"{bounds['all_cores'][what]:,.0f}/s with every core", flush=True)
    return bounds


def fsync_rate(directory, seconds=3.0):
    """One writer: 4 KiB written in place, then fdatasync, as fast as the disk allows."""
    path = Path(directory) / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    block, n = b"\x5a" * 4096, 0
    try:
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            os.pwrite(fd, block, (n % 256) * 4096)
            os.fdatasync(fd)
            n += 1
        return n / (time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()


def sqlite_session_commits(schema_db, directory, seconds=3.0):
    """One writer, one transaction per session (a session, its refresh token and its audit
    event, as tessera writes them, in WAL with synchronous = FULL): what one commit per request
    allows on this disk, with tessera's own schema (read from `schema_db`)."""
    src = sqlite3.connect(schema_db)
    try:
        schema = [sql for (sql,) in src.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
            "ORDER BY type = 'table' DESC")]
    finally:
        src.close()
    path = Path(directory) / "commit-probe.db"
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        for sql in schema:
            db.execute(sql)
        cols = [r[1] for r in db.execute("PRAGMA table_info(clients)")]
        db.execute(f"INSERT INTO clients ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                   ["cli_probe"] + ["[]"] * (len(cols) - 1))
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            sid = f"ses_{time.time_ns():020d}{secrets.token_urlsafe(16)}"
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO sessions (id, client_id, sub, org, roles, amr, audience, claims, "
                       "created_at, expires_at) VALUES (?, 'cli_probe', ?, 'acme', '[\"admin\"]', "
                       "'[\"pwd\"]', ?, '{}', 1, 2)", (sid, f"user-{n}", API))
            db.execute("INSERT INTO refresh_tokens (hash, family_id, session_id, client_id, "
                       "created_at, expires_at) VALUES (?, ?, ?, 'cli_probe', 1, 2)",
                       (secrets.token_bytes(32), sid, sid))
            db.execute("INSERT INTO audit_events (seq, time, actor_type, actor_id, action, target, "
                       "outcome, request_id, source_ip, details, prev_hash, hash, mac) VALUES "
                       "(?, 1, 'client', 'cli_probe', 'session.created', ?, 'success', 'r', "
                       "'127.0.0.1', ?, ?, ?, ?)",
                       (n + 1, sid, "{" + '"x":"' + "y" * 300 + '"}', secrets.token_bytes(32),
                        secrets.token_bytes(32), secrets.token_bytes(32)))
            db.execute("COMMIT")
            n += 1
        return n / (time.perf_counter() - started)
    finally:
        db.close()
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)


def group_commits(server):
    """The server's group-commit counters from /metrics: (commits, writes)."""
    status, body = request(server.port, "GET", "/metrics")
    if status != 200:
        raise BenchError(f"/metrics: {status}")
    found = {}
    for line in body.decode().splitlines():
        for name in ("tessera_store_group_commits_total", "tessera_store_group_writes_total"):
            if line.startswith(name + " "):
                found[name] = int(line.split()[1])
    return (found.get("tessera_store_group_commits_total", 0),
            found.get("tessera_store_group_writes_total", 0))


def write_rows(args, base, counter, pg_url):
    """Issue 28's rows: every write path, on SQLite and PostgreSQL, with the group commit's mean
    batch (writes per commit, from /metrics over the row's runs)."""
    c = args.connections
    rows = {}
    backends = [("SQLite", None)] + ([("PostgreSQL", pg_url)] if pg_url else [])
    for backend, url in backends:
        cases = [("sessions, RS256 keys", "RS256", "mint"), ("sessions, ES256 keys", "ES256", "mint"),
                 ("issuance, format jwe", "RS256", RECORDS),
                 ("issuance, format nested", "RS256", PARTNER)]
        for label, alg, what in cases:
            work = base / f"{next(counter):03}-writes-{backend}"
            work.mkdir()
            db = postgres_database(url, f"writes_{next(counter)}") if url else None
            t = Tessera(work, alg, db).start()
            try:
                if what == "mint":
                    load = mint_load(t)
                else:
                    load = cc_load(t, what)
                load.label = f"{label}, {backend}"
                before = group_commits(t)
                result = measure(t, load, c, args)
                after = group_commits(t)
                commits, writes = after[0] - before[0], after[1] - before[1]
                result["commits"], result["writes"] = commits, writes
                rows[f"{label}, {backend}"] = result
                if backend == "SQLite" and what == "mint" and "schema_db" not in rows:
                    rows["schema_db"] = str(t.data / "tessera.db")
            finally:
                t.stop()
    return rows


# --- Machine ----------------------------------------------------------------------------

def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = 0.0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_gib = int(line.split()[1]) / 1024 / 1024
    def version(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "unknown"
    peer_pkg = BENCH / "peer" / "node_modules" / "oidc-provider" / "package.json"
    return {
        # The cores this process may run on (as Rust's available_parallelism counts them).
        "cores": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory": f"{mem_gib:.0f} GiB",
        "kernel": platform.release(),
        "commit": version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "rustc": version(["rustc", "--version"]),
        "node": version(["node", "--version"]),
        "oidc_provider": json.loads(peer_pkg.read_text())["version"],
        "wrk": version(["wrk", "--version"]).split(" [")[0],
        "date": datetime.date.today().isoformat(),
    }


# --- The run -----------------------------------------------------------------------------

def pair(tessera_result, peer_result):
    return {"tessera": tessera_result, "peer": peer_result}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=10, help="length of one measured run")
    ap.add_argument("--runs", type=int, default=3, help="measured runs per row (median taken)")
    ap.add_argument("--connections", type=int, default=64, help="connections of the main table")
    ap.add_argument("--sweep", default="1,16,64,256", help="connection counts of the sweep")
    ap.add_argument("--sizes", default="1000,100000,1000000",
                    help="sessions/refresh-family table sizes for the refresh rows")
    ap.add_argument("--out", default=str(BENCH), help="where RESULTS.md and charts/ go")
    ap.add_argument("--baseline", metavar="BINARY",
                    help="another build of tessera (e.g. the commit before a change) whose "
                         "write rows are measured beside this one's, alternately, in this run")
    ap.add_argument("--baseline-label", default="baseline",
                    help="what the baseline is, for RESULTS.md")
    ap.add_argument("--compare-only", action="store_true",
                    help="with --baseline: only the comparison, printed (RESULTS.md untouched)")
    args = ap.parse_args()
    sweep = [int(x) for x in args.sweep.split(",")]
    sizes = [int(x) for x in args.sizes.split(",")]
    pg_url = os.environ.get("TESSERA_TEST_PG_URL")
    if not TESSERA.exists():
        raise BenchError(f"{TESSERA} is missing: bench/run builds it")

    base = Path(tempfile.mkdtemp(prefix="tessera-bench."))
    counter = iter(range(1_000_000))

    def fresh(kind, *a, **kw):
        work = base / f"{next(counter):03}-{kind.name}"
        work.mkdir()
        return kind(work, *a, **kw).start()

    results = {"machine": machine(), "args": vars(args), "main": {}, "sweep": {}, "sizes": {},
               "postgres": bool(pg_url)}
    c = args.connections
    started = time.monotonic()
    servers = []
    try:
        if args.compare_only:
            if not args.baseline:
                raise BenchError("--compare-only needs --baseline")
            import report  # noqa: E402
            results["baseline"] = compare_writes(args, base, counter, pg_url)
            print(report.baseline_table({**results, "args": vars(args)}))
            return
        results["raw"] = raw_signing()

        print(f"== main table: {c} connections, {args.runs} × {args.seconds} s per row", flush=True)
        for alg in ("RS256", "ES256", "EdDSA"):
            t, p = fresh(Tessera, alg), fresh(Peer, alg)
            servers = [t, p]
            results["main"][f"client_credentials {alg}"] = pair(
                measure(t, cc_load(t), c, args), measure(p, cc_load(p), c, args))
            for s in servers:
                s.stop()

        print("== DPoP: client_credentials ES256 with and without a proof, one server", flush=True)
        t = fresh(Tessera, "ES256")
        servers = [t]
        results["dpop"] = {"without a proof": measure(t, cc_load(t), c, args)}
        for label, kty in (("ES256 proof (P-256)", ["--kty", "EC", "--crv", "P-256"]),
                           ("EdDSA proof (Ed25519)", ["--kty", "OKP", "--crv", "Ed25519"])):
            # Each run needs its proofs made within the minute before it.
            results["dpop"][f"with an {label}"] = measure(
                t, dpop_cc_load(t, max(2, args.seconds), kty), c, args)
        t.stop()

        print("== writes: sessions, sealed issuance (and, below, refresh) on each store",
              flush=True)
        # The CPU bounds of the write rows, measured just before and just after them (every
        # core at once, and one core): their mean is what the rows are read against.
        before = write_bounds()
        results["writes"] = write_rows(args, base, counter, pg_url)
        after = write_bounds()
        # The mean time per operation (the harmonic mean of the two rates).
        results["write_bounds"] = {k: {alg: 2 / (1 / before[k][alg] + 1 / after[k][alg])
                                       for alg in before[k]} for k in before}
        results["write_bounds_spread"] = {"before": before, "after": after}
        schema_db = results["writes"].pop("schema_db", None)
        results["disk"] = {"fsync_4k": fsync_rate(base)}
        if schema_db:
            results["disk"]["sqlite_session_commits"] = sqlite_session_commits(schema_db, base)
        print(f"   disk: {results['disk']['fsync_4k']:,.0f} write+fdatasync/s; "
              f"{results['disk'].get('sqlite_session_commits', 0):,.0f} sessions/s at one "
              "commit each", flush=True)
        for label in ("sessions, RS256 keys, SQLite", "issuance, format jwe, SQLite",
                      "issuance, format nested, SQLite"):
            row = results["writes"].get(label)
            if row:
                results["main"][label] = pair(row, None)

        t, p = fresh(Tessera), fresh(Peer)
        servers = [t, p]
        results["main"]["introspection"] = pair(measure(t, introspect_load(t), c, args),
                                                measure(p, introspect_load(p), c, args))
        results["main"]["JWKS GET"] = pair(measure(t, jwks_load(t), c, args),
                                           measure(p, jwks_load(p), c, args))
        for s in servers:
            s.stop()

        print(f"== refresh rotation by table size: {', '.join(f'{n:,}' for n in sizes)}",
              flush=True)
        backends = [("SQLite", None)]
        if pg_url:
            backends.append(("PostgreSQL", pg_url))
        for backend, url in backends:
            for size in sizes:
                work = base / f"{next(counter):03}-refresh-{backend}-{size}"
                work.mkdir()
                db = postgres_database(url, f"bench_{size}") if url else None
                t = refresh_with_table(work, size, db)
                servers = [t]
                if size == sizes[0]:
                    # The reference of issue 28's refresh target, RS256
                    # client_credentials, measured in turn with this row.
                    ref = fresh(Tessera, "RS256")
                    servers.append(ref)
                    rotation, reference = measure_alternating(
                        [(t, refresh_load(t)), (ref, cc_load(ref))], c, args)
                    results["sizes"][f"{backend} {size}"] = rotation
                    results.setdefault("refresh_reference", {})[backend] = reference
                else:
                    results["sizes"][f"{backend} {size}"] = measure(t, refresh_load(t), c, args)
                for server in servers:
                    server.stop()
            results["main"][f"refresh rotation, {backend} ({sizes[0]:,} families)"] = pair(
                results["sizes"][f"{backend} {sizes[0]}"], None)

        if args.baseline:
            results["baseline"] = compare_writes(args, base, counter, pg_url)

        print(f"== connection sweep: {', '.join(map(str, sweep))}", flush=True)
        sweep_args = argparse.Namespace(**{**vars(args), "runs": 1})
        for label, make in (("client_credentials RS256", cc_load), ("introspection", introspect_load),
                            ("JWKS GET", jwks_load)):
            t, p = fresh(Tessera), fresh(Peer)
            servers = [t, p]
            results["sweep"][label] = {
                "tessera": {n: measure(t, make(t), n, sweep_args) for n in sweep},
                "peer": {n: measure(p, make(p), n, sweep_args) for n in sweep},
            }
            for s in servers:
                s.stop()
        t = fresh(Tessera)
        servers = [t]
        results["sweep"]["refresh rotation, SQLite"] = {
            "tessera": {n: measure(t, refresh_load(t), n, sweep_args) for n in sweep},
            "peer": None,
        }
        t.stop()
    finally:
        for s in servers:
            s.stop()
    results["seconds_total"] = round(time.monotonic() - started)

    out = Path(args.out)
    (out / "charts").mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    import report  # noqa: E402 (beside this file; needs matplotlib from bench/.venv)
    report.write(results, out)
    shutil.rmtree(base, ignore_errors=True)
    print()
    print(report.main_table(results))
    print()
    print(report.targets(results))
    print(report.write_targets(results))
    print(f"== wrote {out / 'RESULTS.md'} and {out / 'charts'} in {results['seconds_total']} s")


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH))
    try:
        main()
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
