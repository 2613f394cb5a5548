"""The jwcrypto peer of tessera's interoperability harness (interop/harness.py).

The same operations and answers as the panva/jose peer (interop/node/peer.mjs),
called in-process: ``Peer().call(op, args)`` returns ``{"ok": True, "result":
...}`` or ``{"ok": False, "refused": bool, "error": "..."}``. ``refused`` is true
only when jwcrypto itself rejected the input (a ``JWException``); anything else
is a fault of the harness and never counts as a rejection.
"""

import json
import os
from importlib.metadata import version
from urllib.request import urlopen

from jwcrypto import jwe, jwk, jws, jwt
from jwcrypto.common import JWException

CAPABILITIES = {
    "jws": ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
            "ES256", "ES384", "ES512", "ES256K", "EdDSA"],
    # RSA1_5 is here: jwcrypto still writes it, and tessera must refuse it (its
    # RSA1_5 decryption was removed; it never wrote it).
    "jwe_alg": ["RSA1_5", "RSA-OAEP", "RSA-OAEP-256", "A128KW", "A192KW", "A256KW", "dir",
                "ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A192KW", "ECDH-ES+A256KW",
                "A128GCMKW", "A192GCMKW", "A256GCMKW", "PBES2-HS256+A128KW",
                "PBES2-HS384+A192KW", "PBES2-HS512+A256KW"],
    "jwe_enc": ["A128CBC-HS256", "A192CBC-HS384", "A256CBC-HS512", "A128GCM", "A192GCM",
                "A256GCM"],
    "ecdh_curves": ["P-256", "P-384", "P-521", "X25519"],
    # jwcrypto writes a single signature or recipient as flattened JSON; it
    # reads all three serializations.
    "jws_serializations": ["compact", "flattened"],
    "jwe_serializations": ["compact", "flattened"],
}

ENC_BITS = {"A128CBC-HS256": 256, "A192CBC-HS384": 384, "A256CBC-HS512": 512,
            "A128GCM": 128, "A192GCM": 192, "A256GCM": 256}

EC_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521", "ES256K": "secp256k1"}


def _oct(nbytes):
    return jwk.JWK(kty="oct", k=jwk.base64url_encode(os.urandom(nbytes)))


def generate(use, alg, enc=None, crv=None):
    if use == "sig" and alg.startswith("HS"):
        key = _oct(int(alg[2:]) // 8)
    elif use == "enc" and alg == "dir":
        key = _oct(ENC_BITS[enc] // 8)
    elif use == "enc" and alg.startswith("PBES2"):
        key = _oct(24)  # the password
    elif use == "enc" and alg.startswith("A") and alg.endswith("KW"):
        key = _oct(int(alg[1:4]) // 8)
    elif alg.startswith(("RS", "PS", "RSA")):
        key = jwk.JWK.generate(kty="RSA", size=2048)
    elif alg in EC_CURVES:
        key = jwk.JWK.generate(kty="EC", crv=EC_CURVES[alg])
    elif alg == "EdDSA":
        key = jwk.JWK.generate(kty="OKP", crv="Ed25519")
    elif alg.startswith("ECDH-ES"):
        crv = crv or "P-256"
        key = jwk.JWK.generate(kty="OKP" if crv == "X25519" else "EC", crv=crv)
    else:
        raise ValueError(f"no key generation for {alg}")
    private = key.export(private_key=True, as_dict=True) if key.has_private else None
    if key.get("kty") == "oct":
        private = json.loads(key.export_symmetric())
        return {"private": private, "public": private}
    return {"private": private, "public": key.export_public(as_dict=True)}


def _key(key):
    if "pem" in key:
        return jwk.JWK.from_pem(key["pem"].encode())
    return jwk.JWK(**key["jwk"])


def export_pem(alg=None, **key_json):
    key = jwk.JWK(**key_json["jwk"])
    return key.export_to_pem(private_key=key.has_private, password=None).decode()


def _is_json(token):
    return token.lstrip().startswith("{")


def sign(alg, key, payload, serialization):
    if serialization not in CAPABILITIES["jws_serializations"]:
        raise ValueError(f"jwcrypto does not write {serialization}")
    token = jws.JWS(payload.encode())
    token.add_signature(_key(key), alg=alg, protected=json.dumps({"alg": alg}))
    return token.serialize(compact=serialization == "compact")


def verify(alg, key, token):
    obj = jws.JWS()
    obj.allowed_algs = [alg]
    obj.deserialize(token.strip())
    obj.verify(_key(key), alg=alg)
    return obj.payload.decode("utf-8")


def encrypt(alg, enc, key, plaintext, serialization, cty=None):
    if serialization not in CAPABILITIES["jwe_serializations"]:
        raise ValueError(f"jwcrypto does not write {serialization}")
    header = {"alg": alg, "enc": enc}
    if cty is not None:
        header["cty"] = cty
    obj = jwe.JWE(plaintext.encode(), protected=json.dumps(header))
    obj.allowed_algs = [alg, enc]
    obj.add_recipient(_key(key))
    return obj.serialize(compact=serialization == "compact")


def decrypt(alg, enc, key, token):
    obj = jwe.JWE()
    obj.allowed_algs = [alg, enc]
    obj.deserialize(token.strip(), key=_key(key))
    return obj.payload.decode("utf-8")


def nested_sign(sig_alg, sig_key, key_alg, enc, enc_key, claims):
    inner = jwt.JWT(header={"alg": sig_alg, "typ": "JWT"}, claims=claims)
    inner.make_signed_token(_key(sig_key))
    outer = jwt.JWT(header={"alg": key_alg, "enc": enc, "cty": "JWT"},
                    claims=inner.serialize())
    outer.make_encrypted_token(_key(enc_key))
    return outer.serialize()


def nested_verify(sig_alg, sig_key, key_alg, enc, dec_key, token, audience):
    outer = jwt.JWT(jwt=token.strip(), key=_key(dec_key), algs=[key_alg, enc],
                    expected_type="JWE", check_claims=False)
    cty = outer.token.jose_header.get("cty", "")
    if cty.upper() != "JWT":
        raise JWException(f"outer cty is {cty!r}, not JWT")
    checks = {"aud": audience, "exp": None}
    if _carries_nbf(outer.claims):
        checks["nbf"] = None
    inner = jwt.JWT(jwt=outer.claims, key=_key(sig_key), algs=[sig_alg], expected_type="JWS",
                    check_claims=checks)
    return json.loads(inner.claims)


def _carries_nbf(compact):
    """Whether a compact JWS's payload has ``nbf`` (read before verification)."""
    try:
        payload = compact.split(".")[1]
        claims = json.loads(jwk.base64url_decode(payload))
        return isinstance(claims, dict) and "nbf" in claims
    except (IndexError, ValueError):
        return False


def jwt_verify(alg, key, token, audience=None):
    checks = {"exp": None}
    if audience is not None:
        checks["aud"] = audience
    # Given check_claims, jwcrypto checks nbf only when it is named there (it
    # checks exp and nbf by itself only without check_claims): name it when
    # the token has one, as a careful user must.
    if _carries_nbf(token.strip()):
        checks["nbf"] = None
    verified = jwt.JWT(jwt=token.strip(), key=_key(key), algs=[alg], expected_type="JWS",
                       check_claims=checks)
    return json.loads(verified.claims)


def remote_verify(jwks_uri, issuer, audience, algorithms, token, typ=None, dec_key=None,
                  key_alg=None, enc=None):
    """The service's token, checked with the key set its JWKS endpoint serves.

    With ``dec_key``, the token is a JWE sealed to that key holding the signed JWT.
    """
    with urlopen(jwks_uri, timeout=10) as reply:
        keys = jwk.JWKSet.from_json(reply.read())
    compact = token.strip()
    if dec_key is not None:
        outer = jwe.JWE()
        outer.allowed_algs = [key_alg, enc]
        outer.deserialize(compact, key=_key(dec_key))
        compact = outer.payload.decode("utf-8")
    checks = {"iss": issuer, "aud": audience, "exp": None}
    if _carries_nbf(compact):
        checks["nbf"] = None
    verified = jwt.JWT(jwt=compact, key=keys, algs=list(algorithms), expected_type="JWS",
                       check_claims=checks)
    header = json.loads(verified.header)
    if typ is not None and header.get("typ") != typ:
        raise JWException(f"typ is {header.get('typ')!r}, not {typ!r}")
    return {"claims": json.loads(verified.claims), "header": header}


OPS = {
    "generate": generate,
    "export_pem": export_pem,
    "sign": sign,
    "verify": verify,
    "encrypt": encrypt,
    "decrypt": decrypt,
    "nested_sign": nested_sign,
    "nested_verify": nested_verify,
    "jwt_verify": jwt_verify,
    "remote_verify": remote_verify,
}


class Peer:
    """jwcrypto, answering the harness's requests in-process."""

    name = "jwcrypto"

    def __init__(self):
        self.version = version("jwcrypto")
        self.capabilities = CAPABILITIES

    def call(self, op, args):
        try:
            return {"ok": True, "result": OPS[op](**args)}
        except JWException as err:
            return {"ok": False, "refused": True, "error": f"{type(err).__name__}: {err}"}
        except Exception as err:  # noqa: BLE001 — reported as a harness fault
            return {"ok": False, "refused": False, "error": f"{type(err).__name__}: {err}"}

    def close(self):
        pass
