"""The jwcrypto peer of tessera's interoperability harness (interop/harness.py).

The same operations and answers as the panva/jose peer (interop/node/peer.mjs),
called in-process: ``Peer().call(op, args)`` returns ``{"ok": True, "result":
...}`` or ``{"ok": False, "refused": bool, "error": "..."}``. ``refused`` is true
only when the library itself rejected the input (jwcrypto's ``JWException``;
requests-oauth2client's ``InvalidDPoPProof``, or the OAuth error of a server it
relays, an ``EndpointError``); anything else is a fault of the harness and
never counts as a rejection.

The DPoP operations (``dpop_*``, ``oauth_*``) use requests-oauth2client: its
proof validation (``validate_dpop_proof``), its DPoP keys and proofs
(``DPoPKey``), and its client (``OAuth2Client``) at a live ``tessera serve``.
"""

import base64
import hashlib
import json
import os
from importlib.metadata import version
from urllib.request import urlopen

import jwskate  # requests-oauth2client's JOSE library
import requests
from jwcrypto import jwe, jwk, jws, jwt
from jwcrypto.common import JWException
from requests_oauth2client import EndpointError, OAuth2Client
from requests_oauth2client.dpop import DPoPKey, DPoPToken, InvalidDPoPProof, validate_dpop_proof

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


# ------------------------------------------------------------------ DPoP

def ath_of(access_token):
    """RFC 9449's ``ath``: base64url(SHA-256(the access token's ASCII))."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def dpop_validate(proof, htm, htu, alg, access_token=None):
    """A proof checked by requests-oauth2client's ``validate_dpop_proof``.

    ``algs=[alg]``, not ``alg=alg``: in 1.8.0 the function passes its default
    ``algs=()`` on to jwskate, which then ignores ``alg`` and, the proof's
    ``jwk`` having no ``alg`` member, raises ExpectedAlgRequired (see
    interop/README.md).
    """
    checked = validate_dpop_proof(proof.strip(), htm=htm, htu=htu, algs=[alg],
                                  ath=ath_of(access_token) if access_token else None)
    return {"header": dict(checked.headers), "claims": dict(checked.claims),
            "jkt": jwskate.Jwk(checked.headers["jwk"]).thumbprint()}


_DPOP_KEYS = {}


def dpop_keypair(alg):
    """A new ``DPoPKey`` (requests-oauth2client), kept here under a handle."""
    key = DPoPKey.generate(alg=alg)
    handle = f"requests-oauth2client-{len(_DPOP_KEYS) + 1}"
    _DPOP_KEYS[handle] = key
    return {"handle": handle, "jkt": key.dpop_jkt, "public_jwk": dict(key.public_jwk)}


def dpop_proof(handle, htm, htu, access_token=None, nonce=None):
    """``DPoPKey.proof``: ``ath`` from the access token when one is given."""
    proof = _DPOP_KEYS[handle].proof(htm=htm, htu=htu, nonce=nonce,
                                     ath=ath_of(access_token) if access_token else None)
    return str(proof)


def _client(token_endpoint, client_id, client_secret):
    # testing=True: the endpoint is http:// on loopback (it wants https otherwise).
    return OAuth2Client(token_endpoint=token_endpoint, client_id=client_id,
                        client_secret=client_secret, testing=True)


def _token_answer(token):
    return {"token_type": token.token_type, "access_token": token.access_token,
            "refresh_token": token.refresh_token, "class": type(token).__name__}


def oauth_token(token_endpoint, client_id, client_secret, handle, grant, parameters=None,
                refresh_token=None):
    """A token request by ``OAuth2Client`` with the DPoP key of ``handle``.

    client_credentials: ``client_credentials(dpop_key=…)``; refresh_token: the
    session's refresh token held as a ``DPoPToken`` of that key, which
    ``refresh_token()`` proofs with its key (RFC 9449 §5).
    """
    client = _client(token_endpoint, client_id, client_secret)
    key = _DPOP_KEYS[handle]
    if grant == "client_credentials":
        return _token_answer(client.client_credentials(dpop_key=key, **(parameters or {})))
    if grant == "refresh_token":
        held = DPoPToken(access_token="unused", refresh_token=refresh_token, _dpop_key=key)
        return _token_answer(client.refresh_token(held))
    raise ValueError(f"unknown grant {grant}")


def oauth_resource(handle, access_token, url, method="GET"):
    """The headers a ``DPoPToken`` (requests' auth) puts on a resource request.

    The request is prepared, not sent: preparing runs the auth handler, which
    adds ``Authorization: DPoP …`` and a fresh proof with ``ath``.
    """
    token = DPoPToken(access_token=access_token, _dpop_key=_DPOP_KEYS[handle])
    prepared = requests.Request(method, url, auth=token).prepare()
    return {"url": prepared.url, "method": prepared.method,
            "authorization": prepared.headers.get("Authorization"),
            "dpop": prepared.headers.get("DPoP")}


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
    "dpop_validate": dpop_validate,
    "dpop_keypair": dpop_keypair,
    "dpop_proof": dpop_proof,
    "oauth_token": oauth_token,
    "oauth_resource": oauth_resource,
}


class Peer:
    """jwcrypto, answering the harness's requests in-process."""

    name = "jwcrypto"

    def __init__(self):
        self.version = version("jwcrypto")
        # The other library this peer speaks for (the DPoP checks).
        self.libraries = {"requests-oauth2client": version("requests-oauth2client")}
        self.capabilities = CAPABILITIES

    def call(self, op, args):
        try:
            return {"ok": True, "result": OPS[op](**args)}
        except (JWException, InvalidDPoPProof) as err:
            return {"ok": False, "refused": True, "error": f"{type(err).__name__}: {err}"}
        except EndpointError as err:
            status = err.response.status_code
            return {"ok": False, "refused": True, "oauth_error": err.error, "status": status,
                    "error": f"{type(err).__name__}: {status} {err.error}: {err.description}"}
        except Exception as err:  # noqa: BLE001 — reported as a harness fault
            return {"ok": False, "refused": False, "error": f"{type(err).__name__}: {err}"}

    def close(self):
        pass
