// The panva/jose peer of tessera's interoperability harness (interop/harness.py),
// with panva's DPoP (RFC 9449) clients: npm `dpop` and `oauth4webapi`.
//
// One JSON request per line on stdin, one JSON answer per line on stdout:
//   {"id": 7, "op": "sign", "args": {...}}  ->  {"id": 7, "ok": true, "result": ...}
//                                           or  {"id": 7, "ok": false, "error": "..."}
// "ok: false" means the library refused (a rejection is an answer, not a crash);
// the harness decides whether a refusal was expected. The operations and their
// arguments are the same for every peer: see interop/README.md.

import * as readline from 'node:readline';
import * as http from 'node:http';
import { randomBytes } from 'node:crypto';
import * as jose from 'jose';
import * as dpop from 'dpop';
import * as oauth from 'oauth4webapi';

export const PEER = {
  name: 'jose',
  version: await packageVersion('jose'),
  // The other libraries this peer speaks for (the DPoP checks).
  libraries: {
    dpop: await packageVersion('dpop'),
    oauth4webapi: await packageVersion('oauth4webapi'),
  },
};

async function packageVersion(name) {
  const { readFile } = await import('node:fs/promises');
  const url = new URL(`./node_modules/${name}/package.json`, import.meta.url);
  return JSON.parse(await readFile(url, 'utf8')).version;
}

const text = new TextEncoder();
const untext = new TextDecoder('utf-8', { fatal: true });

// What this peer can do; the harness tests the intersection with tessera.
const CAPABILITIES = {
  jws: ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512',
    'ES256', 'ES384', 'ES512', 'EdDSA'],
  jwe_alg: ['RSA-OAEP', 'RSA-OAEP-256', 'RSA-OAEP-384', 'RSA-OAEP-512', 'A128KW', 'A192KW',
    'A256KW', 'dir', 'ECDH-ES', 'ECDH-ES+A128KW', 'ECDH-ES+A192KW', 'ECDH-ES+A256KW',
    'A128GCMKW', 'A192GCMKW', 'A256GCMKW', 'PBES2-HS256+A128KW', 'PBES2-HS384+A192KW',
    'PBES2-HS512+A256KW'],
  jwe_enc: ['A128CBC-HS256', 'A192CBC-HS384', 'A256CBC-HS512', 'A128GCM', 'A192GCM', 'A256GCM'],
  ecdh_curves: ['P-256', 'P-384', 'P-521', 'X25519'],
  // Serializations this peer writes (it reads all three).
  jws_serializations: ['compact', 'flattened', 'general'],
  jwe_serializations: ['compact', 'flattened', 'general'],
};

const ENC_BITS = {
  'A128CBC-HS256': 256, 'A192CBC-HS384': 384, 'A256CBC-HS512': 512,
  A128GCM: 128, A192GCM: 192, A256GCM: 256,
};

function b64u(bytes) {
  return Buffer.from(bytes).toString('base64url');
}

function octJwk(bytes) {
  return { kty: 'oct', k: b64u(bytes) };
}

function publicOf(jwk) {
  if (jwk.kty === 'oct') return jwk;
  const { d, p, q, dp, dq, qi, ...pub } = jwk;
  return pub;
}

// A new key for `alg` (a JWS alg, or a JWE alg with `enc` for dir and `crv` for ECDH-ES).
async function generate({ use, alg, enc, crv }) {
  let jwk;
  if (use === 'sig' && alg.startsWith('HS')) {
    jwk = octJwk(randomBytes(Number(alg.slice(2)) / 8));
  } else if (use === 'enc' && alg === 'dir') {
    jwk = octJwk(randomBytes(ENC_BITS[enc] / 8));
  } else if (use === 'enc' && alg.startsWith('PBES2')) {
    jwk = octJwk(randomBytes(24)); // the password
  } else if (use === 'enc' && /^A\d+(GCM)?KW$/.test(alg)) {
    jwk = octJwk(randomBytes(Number(alg.slice(1, 4)) / 8));
  } else {
    const options = { extractable: true };
    if (alg.startsWith('ECDH-ES')) options.crv = crv ?? 'P-256';
    if (alg === 'EdDSA') options.crv = 'Ed25519';
    const { privateKey } = await jose.generateKeyPair(alg, options);
    jwk = await jose.exportJWK(privateKey);
  }
  return { private: jwk, public: publicOf(jwk) };
}

// A key given as {jwk} or {pem} (SPKI for public, PKCS#8 for private keys).
async function importKey(key, alg) {
  if (key.pem !== undefined) {
    return key.pem.includes('PRIVATE KEY')
      ? jose.importPKCS8(key.pem, alg)
      : jose.importSPKI(key.pem, alg);
  }
  return jose.importJWK(key.jwk, alg);
}

async function exportPem({ jwk, alg }) {
  const key = await jose.importJWK(jwk, alg, { extractable: true });
  return jwk.d !== undefined ? jose.exportPKCS8(key) : jose.exportSPKI(key);
}

function isJson(token) {
  return token.trimStart().startsWith('{');
}

async function sign({ alg, key, payload, serialization }) {
  const k = await importKey(key, alg);
  const bytes = text.encode(payload);
  switch (serialization) {
    case 'compact':
      return new jose.CompactSign(bytes).setProtectedHeader({ alg }).sign(k);
    case 'flattened':
      return JSON.stringify(await new jose.FlattenedSign(bytes).setProtectedHeader({ alg }).sign(k));
    case 'general': {
      const signer = new jose.GeneralSign(bytes);
      signer.addSignature(k).setProtectedHeader({ alg });
      return JSON.stringify(await signer.sign());
    }
    default:
      throw new Error(`unknown serialization ${serialization}`);
  }
}

async function verify({ alg, key, token }) {
  const k = await importKey(key, alg);
  const options = { algorithms: [alg] };
  let result;
  if (!isJson(token)) {
    result = await jose.compactVerify(token.trim(), k, options);
  } else {
    const json = JSON.parse(token);
    result = json.signatures !== undefined
      ? await jose.generalVerify(json, k, options)
      : await jose.flattenedVerify(json, k, options);
  }
  return untext.decode(result.payload);
}

async function encrypt({ alg, enc, key, plaintext, serialization, cty }) {
  const k = await importKey(key, alg);
  const bytes = text.encode(plaintext);
  const header = { alg, enc };
  if (cty !== undefined && cty !== null) header.cty = cty;
  switch (serialization) {
    case 'compact':
      return new jose.CompactEncrypt(bytes).setProtectedHeader(header).encrypt(k);
    case 'flattened':
      return JSON.stringify(
        await new jose.FlattenedEncrypt(bytes).setProtectedHeader(header).encrypt(k),
      );
    case 'general': {
      // alg per recipient (unprotected), enc shared and protected, as RFC 7516 §7.2.1 shows.
      const { alg: _, ...shared } = header;
      const e = new jose.GeneralEncrypt(bytes).setProtectedHeader(shared);
      e.addRecipient(k).setUnprotectedHeader({ alg });
      return JSON.stringify(await e.encrypt());
    }
    default:
      throw new Error(`unknown serialization ${serialization}`);
  }
}

async function decrypt({ alg, enc, key, token }) {
  const k = await importKey(key, alg);
  const options = { keyManagementAlgorithms: [alg], contentEncryptionAlgorithms: [enc] };
  let result;
  if (!isJson(token)) {
    result = await jose.compactDecrypt(token.trim(), k, options);
  } else {
    const json = JSON.parse(token);
    result = json.recipients !== undefined
      ? await jose.generalDecrypt(json, k, options)
      : await jose.flattenedDecrypt(json, k, options);
  }
  return untext.decode(result.plaintext);
}

// A JWT signed with `sig_key`, then sealed (cty JWT) to `enc_key`: compact.
async function nestedSign({ sig_alg, sig_key, key_alg, enc, enc_key, claims }) {
  const inner = await new jose.SignJWT(claims)
    .setProtectedHeader({ alg: sig_alg, typ: 'JWT' })
    .sign(await importKey(sig_key, sig_alg));
  return new jose.CompactEncrypt(text.encode(inner))
    .setProtectedHeader({ alg: key_alg, enc, cty: 'JWT' })
    .encrypt(await importKey(enc_key, key_alg));
}

async function nestedVerify({ sig_alg, sig_key, key_alg, enc, dec_key, token, audience }) {
  const { plaintext, protectedHeader } = await jose.compactDecrypt(
    token.trim(),
    await importKey(dec_key, key_alg),
    { keyManagementAlgorithms: [key_alg], contentEncryptionAlgorithms: [enc] },
  );
  if (protectedHeader.cty?.toUpperCase() !== 'JWT') {
    throw new Error(`outer cty is ${protectedHeader.cty}, not JWT`);
  }
  const { payload } = await jose.jwtVerify(
    untext.decode(plaintext),
    await importKey(sig_key, sig_alg),
    { algorithms: [sig_alg], audience },
  );
  return payload;
}

async function jwtVerify({ alg, key, token, audience }) {
  const options = { algorithms: [alg] };
  if (audience !== undefined && audience !== null) options.audience = audience;
  const { payload } = await jose.jwtVerify(token.trim(), await importKey(key, alg), options);
  return payload;
}

// A token of the live service, verified with the keys its JWKS endpoint publishes.
// With `dec_key`, the token is a JWE sealed to that key, holding the signed JWT.
async function remoteVerify({ jwks_uri, issuer, audience, algorithms, typ, token, dec_key, key_alg, enc }) {
  const jwks = jose.createRemoteJWKSet(new URL(jwks_uri));
  let jwt = token.trim();
  if (dec_key !== undefined && dec_key !== null) {
    const { plaintext } = await jose.compactDecrypt(jwt, await importKey(dec_key, key_alg), {
      keyManagementAlgorithms: [key_alg],
      contentEncryptionAlgorithms: [enc],
    });
    jwt = untext.decode(plaintext);
  }
  const { payload, protectedHeader } = await jose.jwtVerify(jwt, jwks, {
    issuer, audience, algorithms, typ,
  });
  return { claims: payload, header: protectedHeader };
}

// ------------------------------------------------------------------ DPoP
//
// Key pairs stay in this process (non-extractable private keys, as an app
// keeps them); the harness names them by handle. `lib` says whose
// generateKeyPair made the pair and whose code makes its proofs: panva's
// `dpop` (generateProof: the harness sends the request) or `oauth4webapi`
// (its DPoP handle inside its own token and resource requests).

const dpopKeys = new Map();
let nextDpopKey = 0;

function dpopKey(handle) {
  const entry = dpopKeys.get(handle);
  if (entry === undefined) throw new Error(`no DPoP key ${handle}`);
  return entry;
}

async function dpopKeypair({ lib, alg }) {
  let keyPair;
  let jkt;
  if (lib === 'dpop') {
    keyPair = await dpop.generateKeyPair(alg);
    jkt = await dpop.calculateThumbprint(keyPair.publicKey);
  } else if (lib === 'oauth4webapi') {
    keyPair = await oauth.generateKeyPair(alg);
    jkt = await oauth.DPoP({ client_id: 'thumbprint' }, keyPair).calculateThumbprint();
  } else {
    throw new Error(`unknown DPoP library ${lib}`);
  }
  nextDpopKey += 1;
  const handle = `${lib}-${nextDpopKey}`;
  dpopKeys.set(handle, { lib, keyPair });
  const publicJwk = await crypto.subtle.exportKey('jwk', keyPair.publicKey);
  return { handle, jkt, public_jwk: publicJwk };
}

// panva/dpop: generateProof(keypair, htu, htm, nonce?, accessToken?).
async function dpopProof({ handle, htu, htm, nonce, access_token }) {
  const { lib, keyPair } = dpopKey(handle);
  if (lib !== 'dpop') throw new Error(`${handle} is not a key of panva/dpop`);
  return dpop.generateProof(keyPair, htu, htm, nonce ?? undefined, access_token ?? undefined);
}

// oauth4webapi: the authorization server, discovered from its RFC 8414
// metadata (an http:// issuer on loopback, hence allowInsecureRequests).
const servers = new Map();

async function authorizationServer(issuer) {
  if (!servers.has(issuer)) {
    const url = new URL(issuer);
    const response = await oauth.discoveryRequest(url, {
      algorithm: 'oauth2', [oauth.allowInsecureRequests]: true,
    });
    servers.set(issuer, await oauth.processDiscoveryResponse(url, response));
  }
  return servers.get(issuer);
}

// One request at the token endpoint through oauth4webapi's client:
// client_credentials or refresh_token, with a DPoP handle for the key. With
// a secret the client authenticates with HTTP Basic (ClientSecretBasic),
// without one it is a public client (None: client_id in the form). With
// `tamper`, the proof's htu is changed by oauth4webapi's modifyAssertion
// hook (a negative control); with `header_alg`, the proof header's alg is.
// Answers what the server sent and what oauth4webapi made of it.
async function oauthToken({
  issuer, handle, grant, client_id, client_secret, parameters, refresh_token, tamper, header_alg,
}) {
  const as = await authorizationServer(issuer);
  const { lib, keyPair } = dpopKey(handle);
  if (lib !== 'oauth4webapi') throw new Error(`${handle} is not a key of oauth4webapi`);
  const client = { client_id };
  const auth = client_secret ? oauth.ClientSecretBasic(client_secret) : oauth.None();
  const dpopOptions = {};
  if (tamper || header_alg) {
    dpopOptions[oauth.modifyAssertion] = (header, payload) => {
      if (tamper) payload.htu = tamper;
      if (header_alg) header.alg = header_alg;
    };
  }
  const DPoP = oauth.DPoP(client, keyPair, dpopOptions);
  let sent;
  const options = {
    DPoP,
    [oauth.allowInsecureRequests]: true,
    [oauth.customFetch]: (url, init) => {
      sent = { url, dpop: init.headers.dpop, authorization: init.headers.authorization };
      return fetch(url, init);
    },
  };
  try {
    let response;
    let result;
    if (grant === 'client_credentials') {
      response = await oauth.clientCredentialsGrantRequest(
        as, client, auth, new URLSearchParams(parameters ?? {}), options,
      );
      const raw = await response.clone().json().catch(() => null);
      result = await oauth.processClientCredentialsResponse(as, client, response);
      return { raw, result, jkt: await DPoP.calculateThumbprint(), sent };
    }
    if (grant === 'refresh_token') {
      response = await oauth.refreshTokenGrantRequest(as, client, auth, refresh_token, options);
      const raw = await response.clone().json().catch(() => null);
      result = await oauth.processRefreshTokenResponse(as, client, response);
      return { raw, result, jkt: await DPoP.calculateThumbprint(), sent };
    }
    throw new Error(`unknown grant ${grant}`);
  } catch (err) {
    err.sent = sent; // the refused request's headers, for the harness
    throw err;
  }
}

// A tiny resource server on loopback that records what a client sent.
let captureServer;
let captured = [];

async function captureBase() {
  if (captureServer === undefined) {
    captureServer = http.createServer((req, res) => {
      captured.push({
        method: req.method, path: req.url, dpop: req.headers.dpop,
        authorization: req.headers.authorization,
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
    await new Promise((resolve) => captureServer.listen(0, '127.0.0.1', resolve));
    captureServer.unref();
  }
  return `http://127.0.0.1:${captureServer.address().port}`;
}

// oauth4webapi's protectedResourceRequest with a DPoP handle, sent to the
// capture server: answers the headers it sent (Authorization, DPoP).
async function oauthResource({ handle, access_token, path, method }) {
  const { lib, keyPair } = dpopKey(handle);
  if (lib !== 'oauth4webapi') throw new Error(`${handle} is not a key of oauth4webapi`);
  const url = new URL(path, await captureBase());
  captured = [];
  const DPoP = oauth.DPoP({ client_id: 'resource' }, keyPair);
  const response = await oauth.protectedResourceRequest(
    access_token, method ?? 'GET', url, undefined, undefined,
    { DPoP, [oauth.allowInsecureRequests]: true },
  );
  if (response.status !== 200) throw new Error(`the capture server answered ${response.status}`);
  if (captured.length !== 1) throw new Error(`the capture server saw ${captured.length} requests`);
  return { url: url.href, ...captured[0] };
}

// oauth4webapi as a resource server: validateJwtAccessToken checks the access
// token (JWT, typ at+jwt, against the issuer's JWKS, iss, aud) and, the token
// carrying cnf.jkt, the request's DPoP proof (typ, alg, signature, htm, htu,
// ath, iat, the key's thumbprint against cnf.jkt).
async function oauthValidate({ issuer, audience, method, url, access_token, proof }) {
  const as = await authorizationServer(issuer);
  const request = new Request(url, {
    method, headers: { authorization: `DPoP ${access_token}`, dpop: proof },
  });
  return oauth.validateJwtAccessToken(as, request, audience, {
    [oauth.allowInsecureRequests]: true,
  });
}

const OPS = {
  hello: async () => ({ ...PEER, capabilities: CAPABILITIES }),
  generate,
  export_pem: exportPem,
  sign,
  verify,
  encrypt,
  decrypt,
  nested_sign: nestedSign,
  nested_verify: nestedVerify,
  jwt_verify: jwtVerify,
  remote_verify: remoteVerify,
  dpop_keypair: dpopKeypair,
  dpop_proof: dpopProof,
  oauth_token: oauthToken,
  oauth_resource: oauthResource,
  oauth_validate: oauthValidate,
};

// A refusal by a library rather than a fault of the harness: jose's errors
// (ERR_JWS_…, ERR_JWT_…), and oauth4webapi's — the server's OAuth error it
// relays (ResponseBodyError: error, status) and its own checks of a token or
// proof (OperationProcessingError, but not its refusal of an http:// URL).
function refusal(err) {
  if (typeof err.code === 'string' && err.code.startsWith('ERR_J')) return {};
  if (err instanceof oauth.ResponseBodyError) {
    return { oauth_error: err.error, status: err.status };
  }
  if (err instanceof oauth.OperationProcessingError
      && err.code !== oauth.HTTP_REQUEST_FORBIDDEN
      && err.code !== oauth.REQUEST_PROTOCOL_FORBIDDEN) return {};
  return undefined;
}

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (line.trim() === '') continue;
  let id = null;
  let answer;
  try {
    const request = JSON.parse(line);
    id = request.id;
    const op = OPS[request.op];
    if (op === undefined) throw new Error(`unknown op ${request.op}`);
    answer = { id, ok: true, result: await op(request.args ?? {}) };
  } catch (err) {
    // The libraries' own refusals (see refusal()); anything else (a TypeError,
    // say) is a fault of the harness, and the harness never counts it as a
    // rejection.
    const library = refusal(err);
    let error = `${err.code ?? err.name}: ${err.message}`;
    if (library?.oauth_error !== undefined) {
      error += ` (${library.status} ${library.oauth_error}: ${err.error_description ?? ''})`;
    }
    answer = { id, ok: false, refused: library !== undefined, error, ...library };
    if (err.sent !== undefined) answer.sent = err.sent;
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
