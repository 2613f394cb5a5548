#!/usr/bin/env python3
"""The console's end-to-end test, in a real browser (issue 27).

    python3 browser/console_test.py --tessera target/debug/tessera --out DIR

Starts `tessera serve` (embedded SQLite, generated keys) with the admin
listener on a free port, makes an admin token, a backend client and a few
sessions with the CLI and the public API, then drives Debian's Chromium
(headless, through Playwright for Python) through the console: signs in,
creates a client and sees its secret once, rotates a key and sees the
timeline change, marks a key compromised, revokes a session, reads the
audit page, and inspects a JWS, a JWE and a nested token. It asserts what
each page shows, that no request ever carried a pasted token, that every
console answer has the CSP header, and that a POST without the CSRF token
is refused. A screenshot of every page goes to --out.
"""

import argparse
import base64
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright, expect

API = "https://api.example.com"
RECORDS = "https://records.example.com"
PARTNER = "https://partner.example.org"
CHROMIUM = os.environ.get("TESSERA_CHROMIUM", "/usr/bin/chromium")
# Chromium on a machine without outside network: no background traffic
# (its connections would be refused, many at a time), no sandbox as root.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(argv, env, stdin=None):
    r = subprocess.run(argv, env=env, input=stdin, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        sys.exit(f"console test: {' '.join(argv[:3])} failed ({r.returncode}): {r.stderr}")
    return r.stdout


def http(url, body=None, headers=None, method=None):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


class Service:
    """tessera serve in a temporary folder, and what the test needs made first."""

    def __init__(self, binary, work):
        self.bin, self.work = str(binary), Path(work)
        self.port, self.admin_port = free_port(), free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
        self.env.update({"TESSERA_MASTER_KEY": secrets.token_hex(32),
                         "TESSERA_SIGNING_ALG": "ES256"})
        self.config = self.work / "tessera.toml"

    def start(self):
        for name, args in (("records", ["--kty", "RSA", "--alg", "RSA-OAEP-256", "--kid", "records-1"]),
                           ("partner", ["--kty", "EC", "--crv", "P-256", "--alg", "ECDH-ES+A256KW",
                                        "--kid", "partner-1"])):
            (self.work / f"{name}.jwk").write_text(run([self.bin, "jwk", "generate", *args], self.env))
            (self.work / f"{name}.pub.jwk").write_text(
                run([self.bin, "jwk", "public"], self.env, stdin=(self.work / f"{name}.jwk").read_text()))
        self.config.write_text(f"""issuer = "http://127.0.0.1:{self.port}"
data_dir = "{self.work / 'data'}"

[admin]
listen = "127.0.0.1:{self.admin_port}"

[[resources]]
audience = "{API}"
claims = ["roles"]

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
        self.log = open(self.work / "serve.log", "w")
        self.proc = subprocess.Popen([self.bin, "serve", "--config", str(self.config),
                                      "--listen", f"127.0.0.1:{self.port}"],
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                http(f"http://127.0.0.1:{self.port}/healthz")
                urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/admin/openapi.json",
                                       timeout=2).read()
                break
            except Exception:
                if self.proc.poll() is not None:
                    sys.exit("console test: tessera serve exited: "
                             + (self.work / "serve.log").read_text())
                time.sleep(0.1)
        else:
            sys.exit("console test: tessera serve did not answer within 30 s")
        admin = json.loads(run([self.bin, "admins", "create", "--config", str(self.config),
                                "--name", "console-test", "--scopes", "*", "--json"], self.env))
        self.admin_token = admin["token"]
        client = json.loads(run([self.bin, "clients", "create", "--config", str(self.config),
                                 "--name", "backend",
                                 "--grant", "sessions,client_credentials,refresh_token",
                                 "--audience", f"{API},{RECORDS},{PARTNER}", "--json"], self.env))
        self.client_id, self.secret = client["client_id"], client["client_secret"]
        return self

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    @property
    def auth(self):
        raw = base64.b64encode(f"{self.client_id}:{self.secret}".encode()).decode()
        return {"Authorization": f"Basic {raw}"}

    def session(self, sub, audience=API):
        body = json.dumps({"sub": sub, "org": "acme", "roles": ["admin"], "amr": ["pwd"],
                           "audience": audience})
        return http(f"http://127.0.0.1:{self.port}/v1/sessions", body,
                    {**self.auth, "Content-Type": "application/json"})

    def client_token(self, audience):
        return http(f"http://127.0.0.1:{self.port}/oauth2/token",
                    f"grant_type=client_credentials&resource={audience}",
                    {**self.auth, "Content-Type": "application/x-www-form-urlencoded"})["access_token"]


class Checks:
    def __init__(self):
        self.count = 0

    def ok(self, cond, what):
        if not cond:
            raise AssertionError(what)
        self.count += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tessera", required=True)
    ap.add_argument("--out", required=True, help="folder for the screenshots")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with tempfile.TemporaryDirectory() as work:
        svc = Service(args.tessera, work).start()
        try:
            checks = drive(svc, out)
        finally:
            svc.stop()
    print(f"console test: {checks} checks passed in {time.time() - started:.1f} s; "
          f"screenshots in {out}")


def drive(svc, out):
    c = Checks()
    base = f"http://127.0.0.1:{svc.admin_port}"
    # Tokens to inspect, made before the browser starts (the inspector must
    # never send them anywhere).
    jws = svc.client_token(API)
    jwe = svc.client_token(RECORDS)
    nested = svc.session("partner-user", PARTNER)["access_token"]
    c.ok(jws.count(".") == 2 and jwe.count(".") == 4 and nested.count(".") == 4,
         "token shapes: jws 3 parts, jwe and nested 5")
    for i in range(3):
        svc.session("alice")
    svc.session("bob")
    secrets_seen = [jws, jwe, nested, svc.admin_token]

    requests, console_answers = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        ctx = browser.new_context(viewport={"width": 1280, "height": 800})
        page = ctx.new_page()
        page.on("request", lambda r: requests.append(r))
        page.on("response", lambda r: console_answers.append(r) if r.url.startswith(base) else None)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

        def shot(name):
            page.screenshot(path=str(out / f"{name}.png"), full_page=True)

        # Sign in.
        page.goto(f"{base}/")
        c.ok(page.url.endswith("/console/login"), f"not signed in: the sign-in form ({page.url})")
        shot("login")
        # By keyboard alone: the token field has the focus; Enter signs in.
        expect(page.get_by_label("Admin token")).to_be_focused()
        page.keyboard.insert_text(svc.admin_token)
        page.keyboard.press("Enter")
        page.wait_for_url(f"{base}/console/")
        cookies = {k["name"]: k for k in ctx.cookies()}
        sc = cookies.get("tessera_console")
        c.ok(sc and sc["httpOnly"] and sc["sameSite"] == "Strict", f"session cookie: {sc}")
        c.ok(svc.admin_token not in page.content(), "the admin token is not in the page")

        # Overview: counts and the key timeline.
        expect(page.locator("#key-timeline")).to_be_visible()
        expect(page.locator("#content")).to_contain_text("sqlite")
        expect(page.locator("#content")).to_contain_text(f"http://127.0.0.1:{svc.port}")
        c.ok(page.locator("#key-timeline [data-kid]").count() >= 2, "timeline: a row per key")
        expect(page.locator("#key-timeline .now")).to_have_count(1)
        expect(page.locator("#nodes li")).to_have_count(1)
        expect(page.locator("#nodes")).to_contain_text("this node")
        shot("overview")

        # Clients: create one, see its secret once.
        page.get_by_role("link", name="Clients").click()
        page.wait_for_url(f"{base}/console/clients")
        expect(page.locator("#clients-table")).to_contain_text("backend")
        form = page.locator("#create-client")
        form.get_by_label("Name").fill("web-app")
        form.get_by_label("client_credentials").check()
        form.get_by_role("button").click()
        secret = page.locator("#new-secret-value")
        expect(secret).to_be_visible()
        new_secret = secret.inner_text().strip()
        c.ok(len(new_secret) >= 32, "the new client's secret is shown")
        expect(page.locator("#clients-table")).to_contain_text("web-app")
        shot("clients")
        page.reload()
        expect(page.locator("#clients-table")).to_contain_text("web-app")
        c.ok(new_secret not in page.content(), "the secret is shown once: not after a reload")
        secrets_seen.append(new_secret)
        web = page.locator("#clients-table tbody tr", has_text="web-app").first
        web_id = web.get_attribute("data-client-id")
        c.ok(bool(web_id), "the new client's row names its id")
        # Roll its secret: a new one, shown once.
        web.get_by_role("button", name=f"Roll the secret of {web_id}").click()
        page.get_by_role("form", name=f"Roll the secret of {web_id}").get_by_role(
            "button", name=f"Roll the secret of {web_id}").click()
        expect(page.locator("#new-secret-value")).to_be_visible()
        rolled = page.locator("#new-secret-value").inner_text().strip()
        c.ok(len(rolled) >= 32 and rolled != new_secret, "a new secret after the roll")
        secrets_seen.append(rolled)
        # Delete it, after typing its id.
        web = page.locator(f"#clients-table tbody tr[data-client-id='{web_id}']")
        web.get_by_role("button", name=f"Delete {web_id}").click()
        confirm = page.get_by_role("form", name=f"Delete {web_id}")
        confirm.get_by_label("Type the client_id to confirm").fill(web_id)
        confirm.get_by_role("button", name=f"Delete {web_id}").click()
        expect(page.locator("#status")).to_contain_text("deleted")
        expect(page.locator(f"#clients-table tbody tr[data-client-id='{web_id}']")).to_have_count(0)

        # Keys: rotate, and the timeline changes; then mark one compromised.
        page.get_by_role("link", name="Signing keys").click()
        page.wait_for_url(f"{base}/console/keys")
        expect(page.locator("#keys-table")).to_be_visible()
        before = page.locator("#key-timeline").inner_html()
        rows_before = page.locator("#keys-table tbody tr").count()
        page.locator("#rotate").click()
        expect(page.locator("#status")).to_contain_text("Rotation")
        page.wait_for_function(
            "b => document.querySelector('#key-timeline') && "
            "document.querySelector('#key-timeline').innerHTML !== b", arg=before)
        c.ok(page.locator("#key-timeline").inner_html() != before, "the timeline changed")
        rows_after = page.locator("#keys-table tbody tr").count()
        c.ok(rows_after >= rows_before, f"keys listed after the rotation ({rows_before}→{rows_after})")
        current = page.locator("#keys-table tbody tr", has_text="current").first
        kid = current.get_attribute("data-kid")
        c.ok(bool(kid), "the current key's row names its kid")
        current.get_by_role("button", name=f"Mark {kid} compromised").click()
        confirm = page.get_by_role("form", name=f"Mark {kid} compromised")
        confirm_box = confirm.get_by_label("Type the kid to confirm")
        confirm_box.fill(kid[:-1])
        confirm_button = confirm.get_by_role("button", name=f"Mark {kid} compromised")
        expect(confirm_button).to_be_disabled()
        confirm_box.fill(kid)
        expect(confirm_button).to_be_enabled()
        confirm_button.click()
        expect(page.locator("#exposure")).to_contain_text(kid)
        expect(page.locator("#exposure")).to_contain_text("may accept")
        expect(page.locator("#keys-table")).to_contain_text("compromised")
        shot("keys")

        # Sessions: find alice's, revoke one.
        page.get_by_role("link", name="Sessions").click()
        page.wait_for_url(f"{base}/console/sessions")
        search = page.locator("#session-search")
        search.get_by_label("sub").fill("alice")
        search.get_by_role("button", name="Search").click()
        rows = page.locator("#sessions-table tbody tr")
        expect(rows).to_have_count(3)
        first_id = rows.first.get_attribute("data-session-id")
        rows.first.get_by_role("button", name=f"Revoke session {first_id}").click()
        expect(page.locator("#status")).to_contain_text("revoked", ignore_case=True)
        revoked = page.locator(f"#sessions-table tbody tr[data-session-id='{first_id}']")
        expect(revoked.get_by_role("button", name=f"Revoke session {first_id}")).to_have_count(0)
        shot("sessions")
        # Every session of bob, at once.
        search.get_by_label("sub").fill("bob")
        search.get_by_role("button", name="Search").click()
        expect(rows).to_have_count(1)
        page.locator("#revoke-all").click()
        page.locator("#revoke-all-confirm").click()
        expect(page.locator("#status")).to_contain_text("Revoked 1 session of bob")

        # Audit: the events, and the chain verified.
        page.get_by_role("link", name="Audit trail").click()
        page.wait_for_url(f"{base}/console/audit")
        expect(page.locator("#chain-status")).to_contain_text("verified")
        c.ok(page.locator("#audit-table tbody tr").count() >= 5, "audit events listed")
        expect(page.locator("#audit-table")).to_contain_text("key.compromised")
        expect(page.locator("#audit-table")).to_contain_text("session")
        shot("audit")

        # Resources: who can read each one's tokens.
        page.get_by_role("link", name="Resources").click()
        page.wait_for_url(f"{base}/console/resources")
        expect(page.locator("#content")).to_contain_text(RECORDS)
        expect(page.locator(".reader").first).to_be_visible()
        expect(page.locator("#content")).to_contain_text("Only the partner")
        shot("resources")

        # The inspector: three tokens, none of them sent anywhere.
        page.get_by_role("link", name="Token inspector").click()
        page.wait_for_url(f"{base}/console/inspector")
        sent_before = len(requests)
        box = page.get_by_label("Token")
        box.fill(jws)
        page.locator("#inspect").click()
        expect(page.locator("#jws-banner")).to_be_visible()
        expect(page.locator("#claims")).to_contain_text(API)
        expect(page.locator("#claims [data-claim='exp']")).to_be_visible()
        shot("inspector-jws")
        box.fill(jwe)
        page.locator("#inspect").click()
        expect(page.locator("#jwe-banner")).to_be_visible()
        expect(page.locator("#sealed")).to_be_visible()
        c.ok(page.locator("#claims").count() == 0, "a JWE shows no claims")
        shot("inspector-jwe")
        box.fill(nested)
        page.locator("#inspect").click()
        expect(page.locator("#nested-note")).to_be_visible()
        shot("inspector-nested")
        # A forged unsigned token: its findings.
        unsigned = ".".join(base64.urlsafe_b64encode(json.dumps(x).encode()).decode().rstrip("=")
                            for x in ({"alg": "none", "kid": "not-ours"},
                                      {"sub": "x", "email": "x", "contact": "alice@example.com", "exp": 1})) + "."
        box.fill(unsigned)
        page.locator("#inspect").click()
        for flag in ("alg-none", "expired", "unknown-kid", "pii", "sensitive-name"):
            expect(page.locator(f"#findings [data-finding='{flag}']").first).to_be_visible()
        page.wait_for_timeout(500)
        c.ok(all(r.url.startswith(base) for r in requests[sent_before:]),
             "the inspector made no request elsewhere")

        # A POST without the CSRF token, from the signed-in browser: refused.
        refused = ctx.request.post(f"{base}/console/api/keys/rotate")
        c.ok(refused.status == 403, f"a POST without the CSRF token: {refused.status}")
        cross = ctx.request.post(f"{base}/console/api/keys/rotate",
                                 headers={"Origin": "https://evil.example", "x-csrf-token": "x"})
        c.ok(cross.status == 403, f"a cross-site POST: {cross.status}")

        # Narrow window.
        page.set_viewport_size({"width": 420, "height": 800})
        page.goto(f"{base}/console/")
        expect(page.locator("#key-timeline")).to_be_visible()
        shot("overview-narrow")

        # A token with fewer scopes: what it may not do is not offered, and
        # what it may not read says so.
        reader = json.loads(run([svc.bin, "admins", "create", "--config", str(svc.config),
                                 "--name", "reader", "--scopes", "keys:read", "--json"], svc.env))
        other = browser.new_context(viewport={"width": 1280, "height": 800})
        limited = other.new_page()
        limited.on("request", lambda r: requests.append(r))
        limited.goto(f"{base}/console/login")
        limited.get_by_label("Admin token").fill(reader["token"])
        limited.get_by_role("button", name="Sign in").click()
        limited.wait_for_url(f"{base}/console/")
        limited.goto(f"{base}/console/keys")
        expect(limited.locator("#keys-table")).to_be_visible()
        expect(limited.locator("#rotate")).to_have_count(0)
        expect(limited.locator("#keys-table button")).to_have_count(0)
        limited.goto(f"{base}/console/clients")
        expect(limited.locator("#content")).to_contain_text("clients:read")
        expect(limited.locator("#clients-table")).to_have_count(0)
        other.close()

        # Sign out.
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{base}/console/login")
        page.goto(f"{base}/console/keys")
        c.ok(page.url.endswith("/console/login"), "signed out: pages lead to the sign-in form")
        browser.close()

    # No request, of any kind, carried a token or secret the test knows.
    for r in requests:
        carried = r.url + " " + (r.post_data or "") + " " + json.dumps(r.headers)
        for s in secrets_seen[:3]:
            c.ok(s not in carried and s.split(".")[1] not in carried,
                 f"a pasted token left the inspector: {r.method} {r.url}")
    c.ok(not any(svc.admin_token in (r.post_data or "") for r in requests[1:] if "/login" not in r.url),
         "the admin token is only ever posted to the sign-in form")
    for a in console_answers:
        if a.status in (301, 302, 303) or "/console" not in a.url and not a.url.endswith("/"):
            continue
        c.ok(a.headers.get("content-security-policy", "").startswith("default-src 'self'"),
             f"CSP on {a.url}")
        c.ok(a.headers.get("x-content-type-options") == "nosniff", f"nosniff on {a.url}")
    c.ok(not errors, f"no script errors: {errors}")
    return c.count


if __name__ == "__main__":
    main()
