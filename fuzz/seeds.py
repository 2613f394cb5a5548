#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into OUT/<target>/.

The seeds are the RFC examples the repository already carries, typed in
with their sources (crates/jose/tests/vectors/: the RFC 7520 cookbook and
its RFC 7797 and RFC 8037 additions), plus RFC 7519 section 3.1's claims
and one well-formed request per endpoint of the service. PEM and DER keys
are the cookbook's JWKs converted by the tessera binary given as TESSERA.

usage: seeds.py OUT TESSERA
"""
import glob
import hashlib
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VECTORS = os.path.join(ROOT, "crates", "jose", "tests", "vectors", "cookbook")


def write(out, target, data):
    if isinstance(data, str):
        data = data.encode()
    folder = os.path.join(out, target)
    os.makedirs(folder, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def load(path):
    with open(path) as f:
        return json.load(f)


def keys_of(case):
    """Every JWK a cookbook case carries."""
    found = []
    for part in ("input", "signing", "encrypting_key", "generated"):
        section = case.get(part)
        if isinstance(section, dict):
            for name in ("key", "pwd", "epk"):
                if isinstance(section.get(name), dict):
                    found.append(section[name])
    return found


def main():
    out, tessera = sys.argv[1], sys.argv[2]
    keys = []
    for path in sorted(glob.glob(os.path.join(VECTORS, "jwk", "*.json"))):
        keys.append(load(path))
    for kind, target_compact, target_json in (
        ("jws", "jws_compact", "jws_json"),
        ("rfc7797", "jws_compact", "jws_json"),
        ("jwe", "jwe", "jwe"),
    ):
        for path in sorted(glob.glob(os.path.join(VECTORS, kind, "*.json"))):
            case = load(path)
            output = case.get("output", {})
            if "compact" in output:
                write(out, target_compact, output["compact"])
            for form in ("json", "json_flat"):
                if form in output:
                    write(out, target_json, json.dumps(output[form]))
            keys.extend(keys_of(case))
            payload = case.get("input", {}).get("payload")
            if kind == "jws" and isinstance(payload, str):
                write(out, "jwt_claims", payload)
    for name, target in (("jws.json", "jws_compact"), ("ecdh-es.json", "jwe")):
        case = load(os.path.join(VECTORS, "curve25519", name))
        write(out, target, case["output"]["compact"])
        keys.extend(keys_of(case))
    nesting = load(os.path.join(VECTORS, "6.nesting_signatures_and_encryption.json"))
    for step in ("sign", "encrypt"):
        output = nesting.get(step, {}).get("output", {})
        if "compact" in output:
            write(out, "jwe" if step == "encrypt" else "jws_compact", output["compact"])

    # RFC 7519 section 3.1, and the claims tessera itself mints.
    write(out, "jwt_claims", '{"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}')
    write(out, "jwt_claims", json.dumps({
        "iss": "iss", "aud": ["aud", "other"], "sub": "user-1", "exp": 1800000300,
        "iat": 1800000000, "nbf": 1799999999, "jti": "x", "org": "acme", "roles": ["a"],
    }))

    seen = set()
    for key in keys:
        text = json.dumps(key, sort_keys=True)
        if text in seen:
            continue
        seen.add(text)
        write(out, "jwk", text)
        pub = {k: v for k, v in key.items() if k not in ("d", "p", "q", "dp", "dq", "qi", "k")}
        if key.get("kty") != "oct":
            write(out, "jwk", json.dumps({"keys": [key, pub]}))
            for args in ([], ["--public"], ["--der"], ["--public", "--der"]):
                done = subprocess.run([tessera, "jwk", "export", *args], input=text.encode(),
                                      capture_output=True, check=False)
                if done.returncode == 0:
                    write(out, "pem_der", done.stdout)
    if len(seen) < 6:
        sys.exit("seeds.py: expected the cookbook keys, found %d" % len(seen))

    # The service: [method, path, flags] then headers, a blank line, a body.
    # flags: bit 0 adds the client's credentials; bits 1-2 the content type
    # (1 form, 2 JSON). Paths index the target's list (0 = /v1/sessions).
    requests = [
        (0, 0, 1 | 4, "", json.dumps({"sub": "user-1", "org": "acme", "roles": ["admin"],
                                       "amr": ["pwd"], "audience": "https://api.example.com"})),
        (0, 1, 1 | 2, "", "grant_type=client_credentials&audience=https%3A%2F%2Fapi.example.com"),
        (0, 1, 1 | 2, "", "grant_type=refresh_token&refresh_token=" + "A" * 43),
        (0, 1, 2, "", "grant_type=client_credentials&client_id=cli_x&client_assertion_type="
                      "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
                      "&client_assertion=eyJhbGciOiJFUzI1NiJ9.e30.AAAA"),
        (0, 2, 1 | 2, "", "token=eyJhbGciOiJFUzI1NiJ9.e30.AAAA"),
        (0, 3, 1 | 2, "", "token=" + "A" * 43 + "&token_type_hint=refresh_token"),
        (0, 4, 1 | 4, "", json.dumps({"amr": ["otp"], "audience": "https://api.example.com"})),
        (2, 5, 1, "", ""),
        (1, 6, 0, "", ""),
        (1, 7, 0, "", ""),
        (0, 1, 0, "authorization: Basic Y2xpX3g6c2VjcmV0\ncontent-type: application/x-www-form-urlencoded",
         "grant_type=client_credentials"),
        (0, 10, 1, "/v1/sessions/../oauth2/token", "grant_type=client_credentials"),
    ]
    for method, path, flags, head, body in requests:
        rest = head.encode()
        if path == 10:
            rest = head.encode() + b"\n"
            head = ""
        data = bytes([method, path, flags]) + rest + b"\n\n" + body.encode()
        write(out, "http", data)

    # RFC 9449 section 4.1 figure 2 (a token request's proof) and section
    # 7.1 figure 12 (a resource request's proof, with ath).
    for proof in (
        "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0Vj"
        "NoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5"
        "VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9T"
        "VCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T"
        "8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg",
        "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0Vj"
        "NoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5"
        "VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VU"
        "IiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2Mj"
        "I2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRq"
        "zhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA",
    ):
        write(out, "dpop_proof", proof)


if __name__ == "__main__":
    main()
