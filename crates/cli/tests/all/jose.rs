//! The JOSE commands of the `tessera` binary, run as scripts run them: every
//! command, every exit code (0 success, 1 rejected, 2 usage or malformed
//! input), standard vectors (RFC 7520, from `crates/jose/tests/vectors`,
//! source ietf-jose/cookbook commit 13692b68), and hostile input that must
//! end in a one-line `error: …`, never a panic.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

struct Out {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Out {
    fn text(&self) -> String {
        String::from_utf8(self.stdout.clone()).unwrap()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.text()))
    }
    /// Asserts the exit code; on failure shows what the command said.
    fn expect(self, code: i32) -> Out {
        assert_eq!(
            self.code,
            code,
            "exit code; stderr: {}; stdout: {}",
            self.stderr,
            String::from_utf8_lossy(&self.stdout)
        );
        if code != 0 {
            assert!(
                self.stderr.contains("error: "),
                "a failure says `error: …`: {}",
                self.stderr
            );
        }
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"),
            "no panic, no backtrace: {}",
            self.stderr
        );
        self
    }
}

/// Runs `tessera ARGS` in `dir` with `stdin` piped in.
fn run(dir: &Path, args: &[&str], stdin: &[u8]) -> Out {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    // The command may stop reading early (and close the pipe): ignore that.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            tmp: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self) -> &Path {
        self.tmp.path()
    }
    fn write(&self, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.tmp.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    }
    fn run(&self, args: &[&str]) -> Out {
        run(self.path(), args, b"")
    }
    fn pipe(&self, args: &[&str], stdin: impl AsRef<[u8]>) -> Out {
        run(self.path(), args, stdin.as_ref())
    }
    /// `jwk generate ARGS` into `name`; returns the JWK.
    fn key(&self, name: &str, args: &[&str]) -> Value {
        let mut all = vec!["jwk", "generate"];
        all.extend_from_slice(args);
        let out = self.run(&all).expect(0);
        std::fs::write(self.tmp.path().join(name), &out.stdout).unwrap();
        out.json()
    }
    /// `jwk public --in private` into `public`.
    fn public(&self, private: &str, public: &str) {
        let out = self.run(&["jwk", "public", "--in", private]).expect(0);
        std::fs::write(self.tmp.path().join(public), &out.stdout).unwrap();
    }
}

/// A command line of plain words (no quoting), as `run`/`pipe` take it.
fn sh(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// A command line of plain words, then arguments that have spaces (JSON).
fn with<'a>(line: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    [sh(line), rest.to_vec()].concat()
}

fn vectors(rel: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../jose/tests/vectors/cookbook")
        .join(rel);
    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
}

fn trimmed(out: &Out) -> String {
    out.text().trim().to_owned()
}

/// The README walk-through: generate a key, sign, inspect, verify, encrypt.
#[test]
fn walk_through() {
    let d = Dir::new();
    d.key(
        "key.jwk",
        &["--kty", "EC", "--crv", "P-256", "--alg", "ES256"],
    );
    let token = d
        .run(&sh(
            "jwt sign --key key.jwk --alg ES256 --sub user-1 --aud api",
        ))
        .expect(0);
    d.write("token", &token.stdout);
    let inspected = d.run(&sh("jwt inspect --in token")).expect(0);
    assert_eq!(inspected.json()["claims"]["sub"], "user-1");
    assert!(inspected.stderr.contains("anyone who holds it can read"));
    let verified = d
        .run(&sh(
            "jwt verify --key key.jwk --alg ES256 --aud api --in token",
        ))
        .expect(0);
    let claims = verified.json();
    assert_eq!(claims["sub"], "user-1");
    for c in ["iat", "exp", "jti"] {
        assert!(claims.get(c).is_some(), "jwt sign adds {c}");
    }
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900,
        "default ttl 15m"
    );
    d.key("enc.jwk", &["--kty", "RSA", "--alg", "RSA-OAEP-256"]);
    d.public("enc.jwk", "enc.pub.jwk");
    let sealed = d
        .run(&sh(
            "jwe encrypt --key enc.pub.jwk --alg RSA-OAEP-256 --enc A256GCM --in token",
        ))
        .expect(0);
    assert_eq!(trimmed(&sealed).split('.').count(), 5);
    let opened = d
        .pipe(
            &sh("jwe decrypt --key enc.jwk --alg RSA-OAEP-256 --enc A256GCM"),
            &sealed.stdout,
        )
        .expect(0);
    assert_eq!(opened.stdout, token.stdout, "stdin works as well as --in");
}

#[test]
fn jwk_generate_every_type() {
    let d = Dir::new();
    let cases: &[(&[&str], &str, Option<&str>)] = &[
        (&["--kty", "RSA"], "RSA", None),
        (
            &["--kty", "RSA", "--bits", "3072", "--alg", "PS256"],
            "RSA",
            None,
        ),
        (&["--kty", "EC", "--crv", "P-256"], "EC", Some("P-256")),
        (&["--kty", "EC", "--crv", "P-384"], "EC", Some("P-384")),
        (&["--kty", "EC", "--crv", "P-521"], "EC", Some("P-521")),
        (
            &["--kty", "EC", "--crv", "secp256k1"],
            "EC",
            Some("secp256k1"),
        ),
        (&["--kty", "EC", "--alg", "ES384"], "EC", Some("P-384")),
        (
            &["--kty", "OKP", "--crv", "Ed25519"],
            "OKP",
            Some("Ed25519"),
        ),
        (
            &["--kty", "OKP", "--crv", "X25519", "--use", "enc"],
            "OKP",
            Some("X25519"),
        ),
        (&["--kty", "OKP", "--alg", "EdDSA"], "OKP", Some("Ed25519")),
        (&["--kty", "oct"], "oct", None),
        (
            &["--kty", "oct", "--bits", "512", "--alg", "HS512"],
            "oct",
            None,
        ),
    ];
    for (i, (args, kty, crv)) in cases.iter().enumerate() {
        let name = format!("k{i}.jwk");
        let jwk = d.key(&name, args);
        assert_eq!(jwk["kty"], *kty, "{args:?}");
        if let Some(crv) = crv {
            assert_eq!(jwk["crv"], *crv, "{args:?}");
        }
        // No --kid: the kid is the RFC 7638 thumbprint; for a secret, whose
        // thumbprint is a hash of it (RFC 7638 §7), 128 random bits.
        let tp = d.run(&["jwk", "thumbprint", "--in", &name]).expect(0);
        if *kty == "oct" {
            let kid = jwk["kid"].as_str().unwrap();
            assert_ne!(kid, trimmed(&tp), "{args:?}");
            assert_eq!(kid.len(), 22, "{args:?}");
            let again = d.key(&format!("again{i}.jwk"), args);
            assert_ne!(again["kid"], jwk["kid"], "{args:?}");
        } else {
            assert_eq!(jwk["kid"].as_str().unwrap(), trimmed(&tp), "{args:?}");
        }
        assert!(
            jwk.get("d").is_some() || jwk.get("k").is_some(),
            "private: {args:?}"
        );
    }
    let rsa: Value =
        serde_json::from_slice(&std::fs::read(d.path().join("k0.jwk")).unwrap()).unwrap();
    assert_eq!(tessera_len(&rsa["n"]), 256, "RSA defaults to 2048 bits");
    let oct: Value =
        serde_json::from_slice(&std::fs::read(d.path().join("k10.jwk")).unwrap()).unwrap();
    assert_eq!(tessera_len(&oct["k"]), 32, "oct defaults to 256 bits");
    let bound = d.key(
        "hs.jwk",
        &["--kty", "oct", "--alg", "HS384", "--kid", "mine"],
    );
    assert_eq!(bound["kid"], "mine");
    assert_eq!(bound["alg"], "HS384");
    assert_eq!(bound["use"], "sig", "a JWS alg implies use sig");
    assert_eq!(tessera_len(&bound["k"]), 48, "HS384 implies 384 bits");
    // A thumbprint kid may start with '-': still a value, not an option.
    let dash = d.key("dash.jwk", &["--kty", "oct", "--kid", "-Bx9"]);
    assert_eq!(dash["kid"], "-Bx9");
    let wrap = d.key("kw.jwk", &["--kty", "oct", "--alg", "A128KW"]);
    assert_eq!(wrap["use"], "enc");
    assert_eq!(tessera_len(&wrap["k"]), 16);

    // Usage errors: exit 2, one line saying what to change.
    for args in [
        &["jwk", "generate", "--kty", "RSA", "--bits", "1024"][..],
        &["jwk", "generate", "--kty", "RSA", "--bits", "2000"],
        &["jwk", "generate", "--kty", "RSA", "--crv", "P-256"],
        &["jwk", "generate", "--kty", "EC"],
        &["jwk", "generate", "--kty", "EC", "--crv", "P-999"],
        &["jwk", "generate", "--kty", "OKP", "--crv", "P-256"],
        &[
            "jwk", "generate", "--kty", "EC", "--crv", "P-256", "--alg", "RS256",
        ],
        &[
            "jwk", "generate", "--kty", "EC", "--alg", "ES256", "--use", "enc",
        ],
        &["jwk", "generate", "--kty", "oct", "--bits", "100"],
        &["jwk", "generate", "--kty", "oct", "--bits", "64"],
        &["jwk", "generate", "--kty", "oct", "--alg", "none"],
        &["jwk", "generate", "--kty", "DSA"],
        &["jwk", "generate"],
    ] {
        let out = d.run(args).expect(2);
        assert!(out.stdout.is_empty(), "{args:?} printed a key");
    }
    let weak = d.run(&sh("jwk generate --kty RSA --bits 1024"));
    assert!(weak.stderr.contains("at least 2048"), "{}", weak.stderr);
}

/// Decoded length of a base64url JSON string.
fn tessera_len(v: &Value) -> usize {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(v.as_str().unwrap())
        .unwrap()
        .len()
}

#[test]
fn jwk_public_thumbprint_import_export() {
    let d = Dir::new();
    // RFC 7638 §3.1: the thumbprint of the RFC 7517 A.1 RSA key (RFC 7520
    // §3.3 key here, whose thumbprint we compute two ways instead).
    let rfc7638 = r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#;
    d.write("rfc7638.jwk", rfc7638);
    let tp = d.run(&sh("jwk thumbprint --in rfc7638.jwk")).expect(0);
    assert_eq!(trimmed(&tp), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    for (hash, len) in [("sha384", 48), ("sha512", 64)] {
        let out = d
            .run(&["jwk", "thumbprint", "--hash", hash, "--in", "rfc7638.jwk"])
            .expect(0);
        assert_eq!(tessera_len(&Value::String(trimmed(&out))), len);
    }

    // public: private members go, the rest stays; sets too; secrets refused.
    let ec = d.key(
        "ec.jwk",
        &["--kty", "EC", "--crv", "P-384", "--alg", "ES384"],
    );
    let public = d.run(&sh("jwk public --in ec.jwk")).expect(0).json();
    assert!(public.get("d").is_none());
    assert_eq!(public["x"], ec["x"]);
    assert_eq!(public["kid"], ec["kid"]);
    assert_eq!(public["alg"], "ES384");
    let rsa = d.key("rsa.jwk", &["--kty", "RSA"]);
    let set = serde_json::json!({ "keys": [ec, rsa] });
    d.write("set.json", set.to_string());
    let public_set = d.run(&sh("jwk public --in set.json")).expect(0).json();
    let keys = public_set["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys
        .iter()
        .all(|k| k.get("d").is_none() && k.get("p").is_none()));
    let tps = d.run(&sh("jwk thumbprint --in set.json")).expect(0);
    assert_eq!(trimmed(&tps).lines().count(), 2);
    d.key("oct.jwk", &["--kty", "oct"]);
    let refused = d.run(&sh("jwk public --in oct.jwk")).expect(2);
    assert!(refused.stdout.is_empty(), "a secret is never printed");
    assert!(refused.stderr.contains("symmetric"));

    // export → import, PEM and DER, every encoding that fits the key.
    for (key, formats) in [
        ("ec.jwk", &["pkcs8", "sec1"][..]),
        ("rsa.jwk", &["pkcs8", "pkcs1"]),
    ] {
        let original: Value =
            serde_json::from_slice(&std::fs::read(d.path().join(key)).unwrap()).unwrap();
        for format in formats {
            let pem = d
                .run(&["jwk", "export", "--format", format, "--in", key])
                .expect(0);
            assert!(pem.text().starts_with("-----BEGIN "), "{key} {format}");
            let back = d.pipe(&sh("jwk import"), &pem.stdout).expect(0).json();
            assert_eq!(back["d"], original["d"], "{key} {format} round trip");
            assert_eq!(back["kid"], original["kid"], "thumbprint kid survives");
            let der = d
                .run(&["jwk", "export", "--der", "--format", format, "--in", key])
                .expect(0);
            let back = d.pipe(&sh("jwk import"), &der.stdout).expect(0).json();
            assert_eq!(back["d"], original["d"], "{key} {format} DER round trip");
        }
        let spki = d.run(&["jwk", "export", "--public", "--in", key]).expect(0);
        assert!(spki.text().starts_with("-----BEGIN PUBLIC KEY-----"));
        let back = d.pipe(&sh("jwk import --alg ES384"), &spki.stdout);
        if key == "ec.jwk" {
            let back = back.expect(0).json();
            assert!(back.get("d").is_none());
            assert_eq!(back["alg"], "ES384");
            assert_eq!(back["use"], "sig");
        } else {
            back.expect(2); // ES384 does not fit an RSA key
        }
        // PKCS#1 public (RSA PUBLIC KEY) and SPKI DER.
        if key == "rsa.jwk" {
            let p1 = d
                .run(&[
                    "jwk", "export", "--public", "--format", "pkcs1", "--in", key,
                ])
                .expect(0);
            assert!(p1.text().starts_with("-----BEGIN RSA PUBLIC KEY-----"));
            let back = d
                .pipe(&sh("jwk import --kid r1"), &p1.stdout)
                .expect(0)
                .json();
            assert_eq!(back["n"], original["n"]);
            assert_eq!(back["kid"], "r1");
        }
    }
    // A set: pick the key with --kid, or be told to.
    d.run(&sh("jwk export --in set.json")).expect(2);
    let kid = rsa["kid"].as_str().unwrap();
    d.run(&["jwk", "export", "--kid", kid, "--in", "set.json"])
        .expect(0);
    // Refusals: secrets have no PEM; encrypted PEM; garbage; the wrong format.
    d.run(&sh("jwk export --in oct.jwk")).expect(2);
    d.run(&sh("jwk export --format sec1 --in rsa.jwk"))
        .expect(2);
    d.pipe(
        &sh("jwk import"),
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .expect(2);
    d.pipe(&sh("jwk import"), [0x30, 0x82, 0xff, 0xff, 0x02])
        .expect(2);
    d.pipe(&sh("jwk import"), "").expect(2);
}

/// RFC 7520 §4.1 reproduced byte for byte through the binary (RSA v1.5 is
/// deterministic); §4.1–4.4 outputs in every serialization verify.
#[test]
fn jws_rfc7520_vectors() {
    let d = Dir::new();
    let v = vectors("jws/4_1.rsa_v15_signature.json");
    d.write("bilbo.jwk", v["input"]["key"].to_string());
    d.write("payload", v["input"]["payload"].as_str().unwrap());
    let out = d
        .run(&sh("jws sign --key bilbo.jwk --alg RS256 --kid bilbo.baggins@hobbiton.example --in payload"))
        .expect(0);
    assert_eq!(trimmed(&out), v["output"]["compact"].as_str().unwrap());
    for (file, alg) in [
        ("jws/4_1.rsa_v15_signature.json", "RS256"),
        ("jws/4_2.rsa-pss_signature.json", "PS384"),
        ("jws/4_3.ecdsa_signature.json", "ES512"),
        ("jws/4_4.hmac-sha2_integrity_protection.json", "HS256"),
    ] {
        let v = vectors(file);
        d.write("k.jwk", v["input"]["key"].to_string());
        for form in ["compact", "json", "json_flat"] {
            let token = match &v["output"][form] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let out = d
                .pipe(&["jws", "verify", "--key", "k.jwk", "--alg", alg], &token)
                .expect(0);
            assert_eq!(
                out.text(),
                v["input"]["payload"].as_str().unwrap(),
                "{file} {form}"
            );
        }
    }
    // §4.5: detached content.
    let v = vectors("jws/4_5.signature_with_detached_content.json");
    d.write("k.jwk", v["input"]["key"].to_string());
    d.write("detached", v["input"]["payload"].as_str().unwrap());
    let token = v["output"]["compact"].as_str().unwrap();
    d.pipe(
        &sh("jws verify --key k.jwk --alg HS256 --payload detached"),
        token,
    )
    .expect(0);
    d.pipe(&sh("jws verify --key k.jwk --alg HS256"), token)
        .expect(2);
}

#[test]
fn jws_sign_verify_and_refuse() {
    let d = Dir::new();
    d.key(
        "es.jwk",
        &["--kty", "EC", "--crv", "P-256", "--alg", "ES256"],
    );
    d.public("es.jwk", "es.pub.jwk");
    d.key("ed.jwk", &["--kty", "OKP", "--crv", "Ed25519"]);
    d.public("ed.jwk", "ed.pub.jwk");
    d.write("payload", "hello, world");
    for ser in ["compact", "flattened", "general"] {
        for extra in [&[][..], &["--detached"], &["--unencoded", "--detached"]] {
            let mut args = vec![
                "jws",
                "sign",
                "--key",
                "es.jwk",
                "--alg",
                "ES256",
                "--serialization",
                ser,
            ];
            args.extend_from_slice(extra);
            args.extend_from_slice(&["--in", "payload"]);
            let signed = d.run(&args).expect(0);
            let mut verify = vec!["jws", "verify", "--key", "es.pub.jwk", "--alg", "ES256"];
            if !extra.is_empty() {
                verify.extend_from_slice(&["--payload", "payload"]);
            }
            let out = d.pipe(&verify, &signed.stdout).expect(0);
            assert_eq!(out.stdout, b"hello, world", "{ser} {extra:?}");
            if ser != "compact" && !extra.is_empty() {
                assert!(
                    signed.json().get("payload").is_none(),
                    "detached JSON has no payload"
                );
            }
        }
    }
    // Unencoded compact payloads may not contain '.': a usage error.
    d.pipe(&sh("jws sign --key es.jwk --alg ES256 --unencoded"), "a.b")
        .expect(2);
    let unencoded = d
        .pipe(&sh("jws sign --key es.jwk --alg ES256 --unencoded"), "$.02")
        .expect(2);
    assert!(unencoded.stderr.contains("'.'"));
    let signed = d
        .pipe(
            &with(
                "jws sign --key ed.jwk --alg EdDSA --header",
                &[r#"{"typ":"example+jws","cty":"text/plain"}"#],
            ),
            "signed",
        )
        .expect(0);
    let header = d.pipe(&sh("jwt inspect"), &signed.stdout).expect(0).json();
    assert_eq!(header["header"]["typ"], "example+jws");
    assert_eq!(header["header"]["alg"], "EdDSA");

    // Exit 1: refused tokens.
    let token = trimmed(&signed);
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 3;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    d.pipe(&sh("jws verify --key ed.pub.jwk --alg EdDSA"), &tampered)
        .expect(1);
    // Someone else's Ed25519 key: the signature does not verify.
    d.key("other.jwk", &["--kty", "OKP", "--crv", "Ed25519"]);
    let wrong = d.pipe(&sh("jws verify --key other.jwk --alg EdDSA"), &token);
    assert_eq!(wrong.expect(1).stdout, b"", "nothing printed when refused");
    // An algorithm the verifier does not accept (RS256 asked; the token is EdDSA).
    d.key("rsa.jwk", &["--kty", "RSA"]);
    let mut set = serde_json::json!({"keys": []});
    for f in ["rsa.jwk", "ed.pub.jwk"] {
        let k: Value = serde_json::from_slice(&std::fs::read(d.path().join(f)).unwrap()).unwrap();
        set["keys"].as_array_mut().unwrap().push(k);
    }
    d.write("set.json", set.to_string());
    let out = d
        .pipe(&sh("jws verify --key set.json --alg RS256"), &token)
        .expect(1);
    assert!(
        out.stderr.contains("ERR_JWS_ALG_NOT_ALLOWED"),
        "{}",
        out.stderr
    );
    d.pipe(&sh("jws verify --key set.json --alg RS256,EdDSA"), &token)
        .expect(0);
    // `none`, in any casing, on either side: refused.
    for none in ["none", "None", "NONE"] {
        d.pipe(
            &["jws", "verify", "--key", "ed.pub.jwk", "--alg", none],
            &token,
        )
        .expect(2);
        d.pipe(&["jws", "sign", "--key", "ed.jwk", "--alg", none], "x")
            .expect(2);
    }
    let unsigned = "eyJhbGciOiJub25lIn0.aGVsbG8.";
    d.pipe(&sh("jws verify --key ed.pub.jwk --alg EdDSA"), unsigned)
        .expect(1);
    // HS256 with a public key as the secret: the key cannot serve HS256.
    d.pipe(&sh("jws verify --key ed.pub.jwk --alg HS256"), &token)
        .expect(2);
    // Signing needs the private key; --header may not set alg/crit/b64.
    d.pipe(&sh("jws sign --key ed.pub.jwk --alg EdDSA"), "x")
        .expect(2);
    for h in [
        r#"{"alg":"none"}"#,
        r#"{"crit":["x"]}"#,
        r#"{"b64":false}"#,
        "[1]",
        "{",
    ] {
        d.pipe(
            &[
                "jws", "sign", "--key", "ed.jwk", "--alg", "EdDSA", "--header", h,
            ],
            "x",
        )
        .expect(2);
    }
    // Missing files and unknown algorithms.
    d.pipe(&sh("jws verify --key nope.jwk --alg EdDSA"), &token)
        .expect(2);
    d.pipe(&sh("jws verify --key ed.pub.jwk --alg XS256"), &token)
        .expect(2);
    d.pipe(&sh("jws verify --key ed.pub.jwk --alg EdDSA --in nope"), "")
        .expect(2);
    d.run(&sh("jws verify --key ed.pub.jwk")).expect(2);
}

#[test]
fn jwe_encrypt_decrypt_and_refuse() {
    let d = Dir::new();
    d.key("rsa.jwk", &["--kty", "RSA", "--use", "enc"]);
    d.public("rsa.jwk", "rsa.pub.jwk");
    d.key("ec.jwk", &["--kty", "EC", "--crv", "P-384", "--use", "enc"]);
    d.public("ec.jwk", "ec.pub.jwk");
    d.key("x.jwk", &["--kty", "OKP", "--crv", "X25519"]);
    d.public("x.jwk", "x.pub.jwk");
    d.key("kw.jwk", &["--kty", "oct", "--bits", "256"]);
    d.key("dir.jwk", &["--kty", "oct", "--bits", "256"]);
    d.key("pw.jwk", &["--kty", "oct", "--bits", "128"]);
    let plaintext = "Live long and prosper.";
    let cases = [
        ("rsa.pub.jwk", "rsa.jwk", "RSA-OAEP", "A128CBC-HS256"),
        ("rsa.pub.jwk", "rsa.jwk", "RSA-OAEP-256", "A256GCM"),
        ("rsa.pub.jwk", "rsa.jwk", "RSA-OAEP-512", "A192GCM"),
        ("ec.pub.jwk", "ec.jwk", "ECDH-ES", "A256GCM"),
        ("ec.pub.jwk", "ec.jwk", "ECDH-ES+A256KW", "A256CBC-HS512"),
        ("x.pub.jwk", "x.jwk", "ECDH-ES+A128KW", "A128GCM"),
        ("kw.jwk", "kw.jwk", "A256KW", "A192CBC-HS384"),
        ("kw.jwk", "kw.jwk", "A256GCMKW", "A256GCM"),
        ("dir.jwk", "dir.jwk", "dir", "A128CBC-HS256"),
        ("pw.jwk", "pw.jwk", "PBES2-HS256+A128KW", "A128GCM"),
    ];
    for (public, private, alg, enc) in cases {
        for ser in ["compact", "flattened", "general"] {
            let sealed = d
                .pipe(
                    &[
                        "jwe",
                        "encrypt",
                        "--key",
                        public,
                        "--alg",
                        alg,
                        "--enc",
                        enc,
                        "--serialization",
                        ser,
                    ],
                    plaintext,
                )
                .expect(0);
            assert!(!sealed.text().contains("prosper"));
            let opened = d
                .pipe(
                    &[
                        "jwe", "decrypt", "--key", private, "--alg", alg, "--enc", enc,
                    ],
                    &sealed.stdout,
                )
                .expect(0);
            assert_eq!(opened.text(), plaintext, "{alg} {enc} {ser}");
            // Another enc than the one accepted: refused.
            let other = if enc == "A256GCM" {
                "A128GCM"
            } else {
                "A256GCM"
            };
            d.pipe(
                &[
                    "jwe", "decrypt", "--key", private, "--alg", alg, "--enc", other,
                ],
                &sealed.stdout,
            )
            .expect(1);
        }
    }
    let sealed = d
        .pipe(
            &sh("jwe encrypt --key ec.pub.jwk --alg ECDH-ES+A256KW --enc A256GCM --zip"),
            plaintext,
        )
        .expect(0);
    let refuse = d
        .pipe(
            &sh("jwe decrypt --key ec.jwk --alg ECDH-ES+A256KW --enc A256GCM"),
            &sealed.stdout,
        )
        .expect(1);
    assert!(refuse.stderr.contains("ERR_JWE_ZIP_NOT_ALLOWED"));
    let opened = d
        .pipe(
            &sh("jwe decrypt --key ec.jwk --alg ECDH-ES+A256KW,RSA-OAEP-256 --enc A128GCM,A256GCM --allow-zip"),
            &sealed.stdout,
        )
        .expect(0);
    assert_eq!(opened.text(), plaintext);
    // Tampering and the wrong key give one uninformative failure, exit 1.
    let token = trimmed(&sealed);
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let flipped = if parts[3].starts_with('A') { "B" } else { "A" };
    parts[3] = format!("{flipped}{}", &parts[3][1..]);
    let tampered = parts.join(".");
    let t = d
        .pipe(
            &sh("jwe decrypt --key ec.jwk --alg ECDH-ES+A256KW --enc A256GCM --allow-zip"),
            &tampered,
        )
        .expect(1);
    assert!(
        t.stderr.contains("ERR_JWE_DECRYPTION_FAILED"),
        "{}",
        t.stderr
    );
    // Another key under the same kid: decryption is tried and fails.
    let ec: Value =
        serde_json::from_slice(&std::fs::read(d.path().join("ec.jwk")).unwrap()).unwrap();
    d.key(
        "ec2.jwk",
        &[
            "--kty",
            "EC",
            "--crv",
            "P-384",
            "--kid",
            ec["kid"].as_str().unwrap(),
        ],
    );
    let w = d
        .pipe(
            &sh("jwe decrypt --key ec2.jwk --alg ECDH-ES+A256KW --enc A256GCM --allow-zip"),
            &token,
        )
        .expect(1);
    assert!(
        w.stderr.contains("ERR_JWE_DECRYPTION_FAILED"),
        "{}",
        w.stderr
    );
    // RSA1_5: never produced, never decrypted (see
    // jwe_decrypt_refuses_rsa1_5_even_with_allow_rsa1_5).
    d.pipe(
        &sh("jwe encrypt --key rsa.pub.jwk --alg RSA1_5 --enc A128GCM"),
        "x",
    )
    .expect(2);
    d.pipe(
        &sh("jwe decrypt --key rsa.jwk --alg RSA1_5 --enc A128GCM"),
        &token,
    )
    .expect(2);
    // Usage errors: a public key to decrypt, a signing key to encrypt, bad names.
    d.pipe(
        &sh("jwe decrypt --key ec.pub.jwk --alg ECDH-ES --enc A256GCM"),
        &token,
    )
    .expect(2);
    d.key(
        "sig.jwk",
        &["--kty", "EC", "--crv", "P-256", "--alg", "ES256"],
    );
    d.pipe(
        &sh("jwe encrypt --key sig.jwk --alg ECDH-ES --enc A256GCM"),
        "x",
    )
    .expect(2);
    d.pipe(
        &sh("jwe encrypt --key kw.jwk --alg A256KW,A128KW --enc A256GCM"),
        "x",
    )
    .expect(2);
    d.pipe(
        &sh("jwe encrypt --key kw.jwk --alg A512KW --enc A256GCM"),
        "x",
    )
    .expect(2);
    d.pipe(
        &sh("jwe encrypt --key kw.jwk --alg A256KW --enc A512GCM"),
        "x",
    )
    .expect(2);
    d.pipe(
        &sh("jwe encrypt --key kw.jwk --alg A128KW --enc A256GCM"),
        "x",
    )
    .expect(2);
    // A JWS handed to the decrypter, a JWE to the verifier: malformed, exit 2.
    let jws = d
        .pipe(&sh("jws sign --key sig.jwk --alg ES256"), "x")
        .expect(0);
    d.pipe(
        &sh("jwe decrypt --key kw.jwk --alg A256KW --enc A256GCM"),
        &jws.stdout,
    )
    .expect(2);
    d.pipe(&sh("jws verify --key sig.jwk --alg ES256"), &token)
        .expect(2);
}

/// `jwe encrypt --p2c`: the PBES2 count a recipient with a lower cap than
/// ours (panva/jose 10,000, jwcrypto 16,384) accepts; 600,000 by default.
#[test]
fn jwe_encrypt_pbes2_count() {
    use base64::Engine as _;
    let d = Dir::new();
    d.key("pw.jwk", &["--kty", "oct", "--bits", "128"]);
    d.key("kw.jwk", &["--kty", "oct", "--bits", "256"]);
    let p2c = |token: &str| -> Value {
        let header = token.split('.').next().unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap();
        serde_json::from_slice::<Value>(&bytes).unwrap()["p2c"].clone()
    };
    let encrypt = "jwe encrypt --key pw.jwk --alg PBES2-HS256+A128KW --enc A128GCM";
    let default = d.pipe(&sh(encrypt), "secret").expect(0);
    assert_eq!(p2c(&trimmed(&default)), 100_000);
    let low = d
        .pipe(&with(encrypt, &["--p2c", "10000"]), "secret")
        .expect(0);
    assert_eq!(p2c(&trimmed(&low)), 10_000);
    let opened = d
        .pipe(
            &sh("jwe decrypt --key pw.jwk --alg PBES2-HS256+A128KW --enc A128GCM"),
            &low.stdout,
        )
        .expect(0);
    assert_eq!(opened.text(), "secret");
    // Under RFC 7518's minimum, or for an algorithm without a count: usage errors.
    let few = d
        .pipe(&with(encrypt, &["--p2c", "999"]), "secret")
        .expect(2);
    assert!(few.stderr.contains("at least 1000"), "{}", few.stderr);
    let kw = d
        .pipe(
            &sh("jwe encrypt --key kw.jwk --alg A256KW --enc A128GCM --p2c 10000"),
            "secret",
        )
        .expect(2);
    assert!(
        kw.stderr.contains("--p2c is for the PBES2"),
        "{}",
        kw.stderr
    );
}

/// RFC 7520 §5 examples decrypted through the binary.
#[test]
fn jwe_rfc7520_vectors() {
    let d = Dir::new();
    for (file, extra) in [
        ("jwe/5_2.key_encryption_using_rsa-oaep_with_aes-gcm.json", &[][..]),
        ("jwe/5_4.key_agreement_with_key_wrapping_using_ecdh-es_and_aes-keywrap_with_aes-gcm.json", &[]),
        ("jwe/5_5.key_agreement_using_ecdh-es_with_aes-cbc-hmac-sha2.json", &[]),
        ("jwe/5_6.direct_encryption_using_aes-gcm.json", &[]),
        ("jwe/5_8.key_wrap_using_aes-keywrap_with_aes-gcm.json", &[]),
        ("jwe/5_9.compressed_content.json", &["--allow-zip"]),
    ] {
        let v = vectors(file);
        d.write("k.jwk", v["input"]["key"].to_string());
        let alg = v["input"]["alg"].as_str().unwrap();
        let enc = v["input"]["enc"].as_str().unwrap();
        for form in ["compact", "json_flat"] {
            let token = match &v["output"][form] {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            let mut args = vec!["jwe", "decrypt", "--key", "k.jwk", "--alg", alg, "--enc", enc];
            args.extend_from_slice(extra);
            let out = d.pipe(&args, &token).expect(0);
            assert_eq!(out.text(), v["input"]["plaintext"].as_str().unwrap(), "{file} {form}");
        }
    }
}

/// A valid RSA1_5 JWE (RFC 7520 §5.1) is refused however it is asked for:
/// `--allow-rsa1-5` (still accepted as a flag, for the message) and
/// `--alg RSA1_5` are usage errors saying why and what to do instead, and
/// the token given to a decrypter for RSA-OAEP is refused by its `alg`.
#[test]
fn jwe_decrypt_refuses_rsa1_5_even_with_allow_rsa1_5() {
    let d = Dir::new();
    let v = vectors("jwe/5_1.key_encryption_using_rsa_v15_and_aes-hmac-sha2.json");
    assert_eq!(v["input"]["alg"], "RSA1_5");
    d.write("k.jwk", v["input"]["key"].to_string());
    let enc = v["input"]["enc"].as_str().unwrap();
    let removed = |out: &Out| {
        for needle in [
            "RSA1_5 decryption was removed",
            "Marvin",
            "RSA-OAEP-256",
            "ECDH-ES",
        ] {
            assert!(out.stderr.contains(needle), "{needle}: {}", out.stderr);
        }
    };
    for form in ["compact", "json_flat", "json"] {
        let token = match &v["output"][form] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        for (alg, extra) in [
            ("RSA1_5", &["--allow-rsa1-5"][..]),
            ("RSA1_5", &[]),
            ("RSA-OAEP-256,RSA1_5", &[]),
            ("RSA-OAEP-256", &["--allow-rsa1-5"]),
        ] {
            let mut args = vec![
                "jwe", "decrypt", "--key", "k.jwk", "--alg", alg, "--enc", enc,
            ];
            args.extend_from_slice(extra);
            let out = d.pipe(&args, &token).expect(2);
            removed(&out);
            assert!(out.stdout.is_empty(), "{form} {alg} {extra:?}");
        }
        let out = d
            .pipe(
                &[
                    "jwe",
                    "decrypt",
                    "--key",
                    "k.jwk",
                    "--alg",
                    "RSA-OAEP-256,RSA-OAEP",
                    "--enc",
                    enc,
                ],
                &token,
            )
            .expect(1);
        assert!(
            out.stderr.contains("ERR_JWE_ALG_NOT_ALLOWED"),
            "{form}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{form}");
    }
    // The nested-token path shares the decrypter: --key-alg RSA1_5 likewise.
    d.key(
        "sig.jwk",
        &["--kty", "EC", "--crv", "P-256", "--alg", "ES256"],
    );
    d.public("sig.jwk", "sig.pub.jwk");
    let token = v["output"]["compact"].as_str().unwrap();
    let out = d
        .pipe(
            &[
                "jwt",
                "verify",
                "--key",
                "sig.pub.jwk",
                "--alg",
                "ES256",
                "--decrypt-key",
                "k.jwk",
                "--key-alg",
                "RSA1_5",
                "--enc",
                enc,
            ],
            token,
        )
        .expect(2);
    removed(&out);
}

#[test]
fn jwt_sign_verify_nested_and_refuse() {
    let d = Dir::new();
    d.key(
        "rs.jwk",
        &["--kty", "RSA", "--alg", "RS256", "--kid", "issuer-1"],
    );
    d.public("rs.jwk", "rs.pub.jwk");
    let signed = d
        .run(&with("jwt sign --key rs.jwk --alg RS256 --iss https://issuer.example --aud api --sub user-1 --ttl 1h --typ at+jwt --claims", &[r#"{"org":"acme","roles":["reader"]}"#]))
        .expect(0);
    d.write("token", &signed.stdout);
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "jwt",
            "verify",
            "--key",
            "rs.pub.jwk",
            "--alg",
            "RS256",
            "--in",
            "token",
        ];
        args.extend_from_slice(extra);
        d.run(&args)
    };
    let claims = verify(&[
        "--iss",
        "https://issuer.example",
        "--aud",
        "api",
        "--typ",
        "at+jwt",
    ])
    .expect(0)
    .json();
    assert_eq!(claims["org"], "acme");
    assert_eq!(claims["roles"][0], "reader");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    let header = d.run(&sh("jwt inspect --in token")).expect(0).json();
    assert_eq!(header["header"]["kid"], "issuer-1");
    assert_eq!(header["header"]["typ"], "at+jwt");
    // Exit 1: wrong issuer, audience, typ; no --aud for a token with one.
    verify(&["--iss", "https://evil.example", "--aud", "api"]).expect(1);
    verify(&["--aud", "other"]).expect(1);
    verify(&["--aud", "api", "--typ", "JWT"]).expect(1);
    let no_aud = verify(&[]).expect(1);
    assert!(no_aud.stderr.contains("--aud"), "{}", no_aud.stderr);
    // The token's alg (RS256) is not one the verifier accepts: exit 1. (With
    // rs.pub.jwk, bound to RS256, asking for PS256 is a usage error instead.)
    d.key("plain.jwk", &["--kty", "RSA"]);
    let rs256 = d
        .run(&sh("jwt sign --key plain.jwk --alg RS256 --aud api"))
        .expect(0);
    let out = d
        .pipe(
            &sh("jwt verify --key plain.jwk --alg PS256 --aud api"),
            &rs256.stdout,
        )
        .expect(1);
    assert!(
        out.stderr.contains("ERR_JWS_ALG_NOT_ALLOWED"),
        "{}",
        out.stderr
    );
    d.run(&sh(
        "jwt verify --key rs.pub.jwk --alg PS256 --aud api --in token",
    ))
    .expect(2);
    // Expired (exp set through --claims), with and without leeway.
    let past = d
        .run(&with(
            "jwt sign --key rs.jwk --alg RS256 --claims",
            &[r#"{"exp": 1000000000, "iat": 999999000}"#],
        ))
        .expect(0);
    let out = d
        .pipe(&sh("jwt verify --key rs.pub.jwk --alg RS256"), &past.stdout)
        .expect(1);
    assert!(out.stderr.contains("ERR_JWT_EXPIRED"));
    let soon = d
        .run(&sh("jwt sign --key rs.jwk --alg RS256 --ttl 0s"))
        .expect(0);
    d.pipe(
        &sh("jwt verify --key rs.pub.jwk --alg RS256 --leeway 60s"),
        &soon.stdout,
    )
    .expect(0);
    d.pipe(
        &sh("jwt verify --key rs.pub.jwk --alg RS256 --leeway 0"),
        &soon.stdout,
    )
    .expect(1);
    // Not valid yet.
    let future = d
        .run(&with(
            "jwt sign --key rs.jwk --alg RS256 --claims",
            &[r#"{"nbf": 99999999999}"#],
        ))
        .expect(0);
    d.pipe(
        &sh("jwt verify --key rs.pub.jwk --alg RS256"),
        &future.stdout,
    )
    .expect(1);
    // A token without exp (signed with jws sign): refused, exp is required.
    let no_exp = d
        .pipe(&sh("jws sign --key rs.jwk --alg RS256"), r#"{"sub":"x"}"#)
        .expect(0);
    let out = d
        .pipe(
            &sh("jwt verify --key rs.pub.jwk --alg RS256"),
            &no_exp.stdout,
        )
        .expect(1);
    assert!(out.stderr.contains("exp"));
    // JSON serialization of the same claims verifies alike.
    let exp = claims["exp"].to_string();
    let json_jwt = d
        .pipe(
            &sh("jws sign --key rs.jwk --alg RS256 --serialization general"),
            format!(r#"{{"aud":"api","exp":{exp}}}"#),
        )
        .expect(0);
    d.pipe(
        &sh("jwt verify --key rs.pub.jwk --alg RS256 --aud api"),
        &json_jwt.stdout,
    )
    .expect(0);
    // Issue 23, finding 1: no protected typ, and `"header":{"typ":"at+jwt"}`
    // added by whoever holds the token: refused (exit 1), not an at+jwt.
    let untyped = d
        .pipe(
            &sh("jws sign --key rs.jwk --alg RS256 --serialization flattened"),
            format!(r#"{{"aud":"api","exp":{exp}}}"#),
        )
        .expect(0);
    let mut doc: Value = untyped.json();
    doc["header"] = serde_json::json!({"typ": "at+jwt"});
    let refused = d
        .pipe(
            &sh("jwt verify --key rs.pub.jwk --alg RS256 --aud api --typ at+jwt"),
            doc.to_string(),
        )
        .expect(1);
    assert!(
        refused.stderr.contains("integrity protected"),
        "{}",
        refused.stderr
    );
    // Finding 4: `jws sign --unencoded` over claims is a JWS, not a JWT.
    let unencoded = d
        .pipe(
            &sh("jws sign --key rs.jwk --alg RS256 --unencoded --serialization flattened"),
            format!(r#"{{"aud":"api","exp":{exp}}}"#),
        )
        .expect(0);
    let refused = d
        .pipe(
            &sh("jwt verify --key rs.pub.jwk --alg RS256 --aud api"),
            &unencoded.stdout,
        )
        .expect(1);
    assert!(refused.stderr.contains("RFC 7797"), "{}", refused.stderr);
    // Usage errors.
    d.run(&sh("jwt sign --key rs.jwk --alg RS256 --ttl soon"))
        .expect(2);
    d.run(&with(
        "jwt sign --key rs.jwk --alg RS256 --sub a --claims",
        &[r#"{"sub":"b"}"#],
    ))
    .expect(2);
    d.run(&with(
        "jwt sign --key rs.jwk --alg RS256 --claims",
        &[r#"{"exp":"tomorrow"}"#],
    ))
    .expect(2);
    d.run(&sh("jwt sign --key rs.jwk --alg RS256 --claims []"))
        .expect(2);
    d.run(&sh("jwt sign --key rs.jwk --alg none")).expect(2);
    d.run(&sh("jwt verify --key rs.pub.jwk --alg none --in token"))
        .expect(2);
    verify(&["--aud", "api", "--leeway", "a while"]).expect(2);

    // Nested: signed by us, sealed to the partner; both ways of making it.
    d.key(
        "partner.jwk",
        &["--kty", "EC", "--crv", "P-256", "--alg", "ECDH-ES+A256KW"],
    );
    d.public("partner.jwk", "partner.pub.jwk");
    let nested = d
        .run(&with(
            "jwt sign --key rs.jwk --alg RS256 --aud partner --claims",
            &[
                r#"{"email":"ada@example.com"}"#,
                "--encrypt-key",
                "partner.pub.jwk",
                "--key-alg",
                "ECDH-ES+A256KW",
                "--enc",
                "A256GCM",
            ],
        ))
        .expect(0);
    let by_hand = d
        .pipe(
            &sh("jwe encrypt --key partner.pub.jwk --alg ECDH-ES+A256KW --enc A256GCM --cty JWT --serialization flattened"),
            {
                let inner = d
                    .run(&sh("jwt sign --key rs.jwk --alg RS256 --aud partner"))
                    .expect(0);
                inner.stdout
            },
        )
        .expect(0);
    for token in [&nested.stdout, &by_hand.stdout] {
        let claims = d
            .pipe(
                &sh("jwt verify --key rs.pub.jwk --alg RS256 --aud partner --decrypt-key partner.jwk --key-alg ECDH-ES+A256KW --enc A256GCM"),
                token,
            )
            .expect(0)
            .json();
        assert_eq!(claims["aud"], "partner");
        // Without the decryption key: a usage error that says what to add.
        let out = d
            .pipe(
                &sh("jwt verify --key rs.pub.jwk --alg RS256 --aud partner"),
                token,
            )
            .expect(2);
        assert!(out.stderr.contains("--decrypt-key"));
        // Inspect shows the header only: the claims are sealed.
        let shown = d.pipe(&sh("jwt inspect"), token).expect(0);
        assert!(shown.json().get("claims").is_none());
        assert!(!shown.text().contains("ada@example.com"));
        assert!(shown.stderr.contains("sealed"), "{}", shown.stderr);
    }
    // Demanding a nested token and getting a plain one: refused.
    d.run(&sh("jwt verify --key rs.pub.jwk --alg RS256 --aud api --decrypt-key partner.jwk --key-alg ECDH-ES+A256KW --enc A256GCM --in token"))
    .expect(1);
    // The partner's key decrypts, but our signature is checked with our key:
    // another issuer's key does not verify the inner JWT.
    d.key("evil.jwk", &["--kty", "RSA"]);
    d.pipe(
        &sh("jwt verify --key evil.jwk --alg RS256 --aud partner --decrypt-key partner.jwk --key-alg ECDH-ES+A256KW --enc A256GCM"),
        &nested.stdout,
    )
    .expect(1);
    // --key-alg without --decrypt-key: clap's usage error.
    verify(&["--key-alg", "RSA-OAEP-256"]).expect(2);
}

#[test]
fn jwt_inspect_flags_personal_data() {
    let d = Dir::new();
    d.key("k.jwk", &["--kty", "OKP", "--crv", "Ed25519"]);
    let token = d
        .run(&with("jwt sign --key k.jwk --alg EdDSA --sub user-1 --claims", &[r#"{"contact":"ada@example.com","phone_number":"+44 20 7946 0958","ssn":"078-05-1120",
               "card":"4111 1111 1111 1111","seen_from":"203.0.113.9","dob":"1815-12-10",
               "profile":{"Email":"x@y.example"},"roles":["reader"],"org":"acme"}"#]))
        .expect(0);
    let out = d.pipe(&sh("jwt inspect"), &token.stdout).expect(0);
    let shown = out.json();
    assert_eq!(shown["claims"]["org"], "acme");
    assert_eq!(shown["header"]["alg"], "EdDSA");
    assert!(out.stderr.contains("NOT VERIFIED"));
    assert!(out.stderr.contains("anyone who holds it can read"));
    for flagged in [
        "\"contact\" looks like an e-mail address",
        "\"phone_number\"",
        "\"ssn\"",
        "\"card\" looks like a payment card number",
        "\"seen_from\" looks like an IP address",
        "\"dob\"",
        "\"profile.Email\"",
    ] {
        assert!(
            out.stderr.contains(flagged),
            "{flagged} not flagged:\n{}",
            out.stderr
        );
    }
    for quiet in ["\"org\"", "\"roles", "\"sub\"", "\"exp\""] {
        assert!(
            !out.stderr.contains(quiet),
            "{quiet} flagged:\n{}",
            out.stderr
        );
    }
    // A clean token: the readability warning, no findings.
    let clean = d
        .run(&sh("jwt sign --key k.jwk --alg EdDSA --sub user-1"))
        .expect(0);
    let out = d.pipe(&sh("jwt inspect"), &clean.stdout).expect(0);
    assert!(out.stderr.contains("anyone who holds it can read"));
    assert!(!out.stderr.contains("warning: claim"));
    // An expired token is still shown, with a note.
    let old = d
        .run(&with(
            "jwt sign --key k.jwk --alg EdDSA --claims",
            &[r#"{"exp":1000}"#],
        ))
        .expect(0);
    let out = d.pipe(&sh("jwt inspect"), &old.stdout).expect(0);
    assert!(out.stderr.contains("expired"));
    // JSON serializations are shown too.
    let general = d
        .pipe(
            &sh("jws sign --key k.jwk --alg EdDSA --serialization general"),
            r#"{"email":"a@b.example"}"#,
        )
        .expect(0);
    let out = d.pipe(&sh("jwt inspect"), &general.stdout).expect(0);
    assert_eq!(out.json()["claims"]["email"], "a@b.example");
    assert!(out.stderr.contains("\"email\""));
}

/// Truncated tokens, binary garbage, a 10 MB token, a JWK with a missing
/// member, empty input: every command that reads input ends with exit 2
/// and one `error:` line, never a panic.
#[test]
fn hostile_input_is_refused_cleanly() {
    let d = Dir::new();
    d.key("k.jwk", &["--kty", "EC", "--crv", "P-256"]);
    d.public("k.jwk", "k.pub.jwk");
    d.key("e.jwk", &["--kty", "EC", "--crv", "P-256", "--use", "enc"]);
    let token = trimmed(&d.run(&sh("jwt sign --key k.jwk --alg ES256")).expect(0));
    let jwe = trimmed(
        &d.pipe(
            &sh("jwe encrypt --key e.jwk --alg ECDH-ES --enc A256GCM"),
            "x",
        )
        .expect(0),
    );
    let mut garbage = vec![0u8; 4096];
    for (i, b) in garbage.iter_mut().enumerate() {
        *b = (i * 7919 % 251) as u8;
    }
    let big = format!("eyJhbGciOiJFUzI1NiJ9.{}.AAAA", "A".repeat(10_000_000));
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let mut inputs: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), Vec::new()),
        ("garbage".into(), garbage),
        ("10 MB token".into(), big.into_bytes()),
        ("deep JSON".into(), deep.into_bytes()),
        ("JSON null".into(), b"null".to_vec()),
        ("dots".into(), b"....".to_vec()),
        ("{}".into(), b"{}".to_vec()),
        ("bad header".into(), b"e30.e30.e30".to_vec()),
        ("not JSON header".into(), b"bm90IGpzb24.e30.AAAA".to_vec()),
        ("header array".into(), b"W10.e30.AAAA".to_vec()),
    ];
    for cut in [1, 10, token.len() / 2, token.len() - 1] {
        inputs.push((
            format!("JWS cut at {cut}"),
            token.as_bytes()[..cut].to_vec(),
        ));
    }
    for cut in [20, jwe.len() / 2, jwe.len() - 1] {
        inputs.push((format!("JWE cut at {cut}"), jwe.as_bytes()[..cut].to_vec()));
    }
    let readers: &[&[&str]] = &[
        &["jwt", "inspect"],
        &["jwt", "verify", "--key", "k.pub.jwk", "--alg", "ES256"],
        &["jws", "verify", "--key", "k.pub.jwk", "--alg", "ES256"],
        &[
            "jwe", "decrypt", "--key", "e.jwk", "--alg", "ECDH-ES", "--enc", "A256GCM",
        ],
        &["jwk", "public"],
        &["jwk", "thumbprint"],
        &["jwk", "import"],
        &["jwk", "export"],
    ];
    for cmd in readers {
        for (what, input) in &inputs {
            let out = d.pipe(cmd, input);
            let code = out.code;
            let out = out.expect(code);
            if code == 0 && cmd[1] == "inspect" {
                // Structurally a JWS (e.g. `e30.e30.e30`): shown, not judged.
                assert!(out.json().get("header").is_some());
                continue;
            }
            assert!(
                code == 1 || code == 2,
                "{cmd:?} on {what}: exit {code}, stderr {}",
                out.stderr
            );
            assert_eq!(
                out.stderr
                    .lines()
                    .filter(|l| l.starts_with("error: "))
                    .count(),
                1,
                "{cmd:?} on {what}: {}",
                out.stderr
            );
        }
    }
    // Malformed tokens are exit 2, not 1.
    for cmd in &readers[..4] {
        d.pipe(cmd, "....").expect(2);
        d.pipe(
            cmd,
            format!("eyJhbGciOiJFUzI1NiJ9.{}.AAAA", "A".repeat(10_000_000)),
        )
        .expect(2);
    }
    // A key file with a missing member, garbage, a huge file: exit 2 naming it.
    d.write(
        "missing-y.jwk",
        r#"{"kty":"EC","crv":"P-256","x":"1EZENpwhMrgmQqqKb4_FFNy_B-6ql1P5lVmUg3osHJ4"}"#,
    );
    d.write("garbage.jwk", [0xffu8, 0x00, 0x13]);
    d.write("huge.jwk", "{".repeat(2 * 1024 * 1024));
    d.write("nokeys.json", r#"{"keys":[]}"#);
    d.write("empty.jwk", "");
    for key in [
        "missing-y.jwk",
        "garbage.jwk",
        "huge.jwk",
        "nokeys.json",
        "empty.jwk",
    ] {
        for cmd in [
            &["jws", "verify", "--key", key, "--alg", "ES256"][..],
            &["jwt", "verify", "--key", key, "--alg", "ES256"],
            &["jws", "sign", "--key", key, "--alg", "ES256"],
            &[
                "jwe", "encrypt", "--key", key, "--alg", "ECDH-ES", "--enc", "A256GCM",
            ],
            &[
                "jwe", "decrypt", "--key", key, "--alg", "ECDH-ES", "--enc", "A256GCM",
            ],
        ] {
            let out = d.pipe(cmd, &token).expect(2);
            assert!(out.stderr.contains(key), "{cmd:?}: {}", out.stderr);
        }
    }
    let out = d.run(&sh("jwk public --in missing-y.jwk")).expect(2);
    assert!(out.stderr.contains("`y`"), "{}", out.stderr);
    // Over 16 MiB of input is refused before parsing.
    let out = d
        .pipe(&sh("jwt inspect"), vec![b'A'; 17 * 1024 * 1024])
        .expect(2);
    assert!(out.stderr.contains("MiB"));
}

#[test]
fn help_and_completions() {
    let d = Dir::new();
    for cmd in [
        &["--help"][..],
        &["jwk", "--help"],
        &["jwk", "generate", "--help"],
        &["jwk", "public", "--help"],
        &["jwk", "thumbprint", "--help"],
        &["jwk", "import", "--help"],
        &["jwk", "export", "--help"],
        &["jws", "sign", "--help"],
        &["jws", "verify", "--help"],
        &["jwe", "encrypt", "--help"],
        &["jwe", "decrypt", "--help"],
        &["jwt", "sign", "--help"],
        &["jwt", "verify", "--help"],
        &["jwt", "inspect", "--help"],
        &["completions", "--help"],
    ] {
        let out = d.run(cmd).expect(0);
        let text = out.text();
        assert!(text.contains("Usage: tessera"), "{cmd:?}");
        if cmd.len() > 2 {
            assert!(text.contains("Example"), "{cmd:?} has an example");
        }
    }
    let top = d.run(&sh("--help")).expect(0).text();
    assert!(top.contains("Exit codes"));
    for shell in ["bash", "zsh", "fish"] {
        let out = d.run(&["completions", shell]).expect(0);
        assert!(out.text().contains("jwt"), "{shell}");
    }
    d.run(&sh("completions tcsh")).expect(2);
    d.run(&sh("jwt")).expect(2);
    d.run(&sh("frobnicate")).expect(2);
    // A missing subcommand is a usage error like any other.
    for cmd in [&[][..], &["jwk"], &["jws"], &["jwe"], &["jwt"]] {
        let out = d.run(cmd).expect(2);
        assert!(out.stderr.contains("requires a subcommand"), "{cmd:?}");
    }
}

/// `tessera dpop proof`: a proof the service's own checker accepts, with
/// `ath` and `nonce` when asked; refused keys and methods exit 2.
#[test]
fn dpop_proof_command() {
    use tessera_verify::dpop;
    let d = Dir::new();
    d.key("device.jwk", &["--kty", "EC", "--crv", "P-256"]);
    d.key("ed.jwk", &["--kty", "OKP", "--crv", "Ed25519"]);
    d.key("hmac.jwk", &["--kty", "oct"]);
    d.public("device.jwk", "device.pub.jwk");
    let url = "https://auth.example.com/oauth2/token";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let valid = |n: &str| n == "n-1";
    for (key, alg) in [("device.jwk", "ES256"), ("ed.jwk", "EdDSA")] {
        let out = d
            .run(&[
                "dpop",
                "proof",
                "--key",
                key,
                "--htm",
                "POST",
                "--htu",
                "https://auth.example.com/oauth2/token?ignored=1",
                "--token",
                "T.T.T",
                "--nonce",
                "n-1",
            ])
            .expect(0);
        let proof = out.text();
        assert!(proof.ends_with('\n') && !proof.trim().contains('\n'));
        let request = dpop::Request {
            method: "POST",
            url,
            access_token: Some("T.T.T"),
            nonce: dpop::Nonce::Required(&valid),
        };
        let checked = dpop::check(proof.trim(), &dpop::ProofRules::default(), &request, now)
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(checked.alg.name(), alg);
        assert!(!checked.key.is_private(), "only the public key travels");
    }
    // Two proofs differ (their jti), even within one second.
    let proof = || {
        d.run(&[
            "dpop",
            "proof",
            "--key",
            "device.jwk",
            "--htm",
            "GET",
            "--htu",
            url,
        ])
        .expect(0)
    };
    let (a, b) = (proof(), proof());
    assert_ne!(a.text(), b.text());
    // Refused: a public key, a MAC key, alg none, a method that is not one.
    for args in [
        vec!["--key", "device.pub.jwk", "--htm", "POST", "--htu", url],
        vec!["--key", "hmac.jwk", "--htm", "POST", "--htu", url],
        vec![
            "--key",
            "device.jwk",
            "--alg",
            "none",
            "--htm",
            "POST",
            "--htu",
            url,
        ],
        vec!["--key", "device.jwk", "--htm", "PO ST", "--htu", url],
        vec!["--key", "device.jwk", "--htm", "POST", "--htu", "not a url"],
    ] {
        let mut all = vec!["dpop", "proof"];
        all.extend(args.iter());
        d.run(&all).expect(2);
    }

    // `tessera dpop verify`: what tessera-verify accepts, from the shell.
    let bound = d
        .run(&[
            "dpop",
            "proof",
            "--key",
            "device.jwk",
            "--htm",
            "GET",
            "--htu",
            "https://api.example.com/orders",
            "--token",
            "T.T.T",
        ])
        .expect(0)
        .text();
    d.write("proof.txt", bound.trim());
    let jkt = d
        .run(&["jwk", "thumbprint", "--in", "device.pub.jwk"])
        .expect(0)
        .text();
    let verify = |extra: &[&str]| {
        let mut all = vec![
            "dpop",
            "verify",
            "--htm",
            "GET",
            "--htu",
            "https://api.example.com/orders",
            "--in",
            "proof.txt",
        ];
        all.extend(extra.iter());
        d.run(&all)
    };
    let out = verify(&["--token", "T.T.T", "--jkt", jkt.trim()]).expect(0);
    let answer: serde_json::Value = serde_json::from_str(&out.text()).unwrap();
    assert_eq!(answer["jkt"], jkt.trim());
    assert_eq!(answer["alg"], "ES256");
    // Without --token, ath is not checked (as at a token endpoint).
    verify(&[]).expect(0);
    // Refused (exit 1): another token, another key, too old.
    verify(&["--token", "U.U.U"]).expect(1);
    verify(&[
        "--token",
        "T.T.T",
        "--jkt",
        "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
    ])
    .expect(1);
    let late = (now + 3600).to_string();
    verify(&["--token", "T.T.T", "--now", &late]).expect(1);
}
