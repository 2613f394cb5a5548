/*
 * tessera console: the token inspector.
 *
 * THE RULE: the pasted token never leaves this browser. Nothing here sends it,
 * or any part of it, anywhere: no fetch, XMLHttpRequest, WebSocket, beacon,
 * form, image or link carries it, and it is never written to the URL, the
 * hash, localStorage or sessionStorage. Parsing is local (base64url → bytes →
 * UTF-8 → JSON.parse). The page makes ONE request, at load, before anything is
 * pasted: GET /console/api/keys, to learn this service's key ids.
 *
 * Everything is rendered with createElement/textContent (the CSP forbids
 * inline script and style; token data never goes through innerHTML).
 * window.tesseraInspect(token, keysOrNull, nowSeconds) is the pure part the
 * page uses, exported so that a test can call it directly.
 */
(() => {
  'use strict';

  const root = typeof window !== 'undefined' ? window : globalThis;
  const LIMIT = 64 * 1024;
  const JWS_BANNER = 'This is a signed token (JWS): anyone who holds it can read every claim below. ' +
    'Signing protects integrity, not confidentiality.';
  const JWE_BANNER = "This is an encrypted token (JWE): only the holder of the recipient's private key " +
    'reads its contents.';
  const NESTED_NOTE = 'Nested token: a signed JWT is sealed inside (sign, then encrypt). ' +
    'The claims and the inner signature are only visible to the recipient.';
  const NOT_VERIFIED = 'not verified here (the inspector never verifies: it only shows what the token discloses)';
  /* The typ values tessera issues (crates/server/src/tokens.rs), compared without
   * case and with an optional "application/" prefix (RFC 7515 §4.1.9). */
  const TYPS = ['at+jwt', 'step-up+jwt', 'session+jwt', 'jwt'];
  const REGISTERED = {
    iss: 'issuer', sub: 'subject', aud: 'audience', exp: 'expires',
    nbf: 'not before', iat: 'issued at', jti: 'token id',
  };
  const DATES = ['exp', 'nbf', 'iat'];

  const own = (o, k) => Object.prototype.hasOwnProperty.call(o, k);
  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && !isRaw(v);
  const isRaw = (v) => typeof JSON.isRawJSON === 'function' && JSON.isRawJSON(v);
  const show = (v) => (typeof v === 'string' ? v : JSON.stringify(v));
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

  /* ---------------------------------------------------------------------------
   * Personal-data detectors: a faithful port of crates/server/src/pii.rs
   * (text_kind, looks_like_email/card/national_id/iban/phone, looks_like_ip,
   * SENSITIVE_NAMES, sensitive_name) and of the claim walk `scan` in
   * crates/cli/src/jwt_cmd.rs (`tessera jwt inspect`). Keep them in step.
   * ------------------------------------------------------------------------ */

  // Rust's str::trim and char::is_whitespace use the Unicode White_Space property.
  const rustTrim = (s) => s.replace(/^\p{White_Space}+|\p{White_Space}+$/gu, '');
  const isDigit = (c) => c >= '0' && c <= '9';
  const isUpper = (c) => c >= 'A' && c <= 'Z';
  const isAlnum = (c) => isDigit(c) || isUpper(c) || (c >= 'a' && c <= 'z');

  function textKind(input) {
    const s = rustTrim(input);
    if (looksLikeEmail(s)) return 'an e-mail address';
    if (looksLikeCard(s)) return 'a payment card number';
    if (looksLikeNationalId(s)) return 'a national identification number';
    if (looksLikePhone(s)) return 'a phone number';
    return null;
  }

  function looksLikeEmail(s) {
    const at = s.lastIndexOf('@');
    if (at < 0) return false;
    const local = s.slice(0, at);
    const domain = s.slice(at + 1);
    return local !== '' && !/\p{White_Space}/u.test(s) && domain.includes('.') &&
      !domain.startsWith('.') && !domain.endsWith('.');
  }

  /** 13–19 digits (spaces or dashes allowed) passing the Luhn check. */
  function looksLikeCard(s) {
    const chars = [...s].filter((c) => c !== ' ' && c !== '-');
    if (!chars.every(isDigit)) return false;
    if (chars.length < 13 || chars.length > 19) return false;
    let sum = 0;
    chars.reverse().forEach((c, i) => {
      const x = Number(c);
      if (i % 2 === 1) sum += x * 2 > 9 ? x * 2 - 9 : x * 2;
      else sum += x;
    });
    return sum % 10 === 0;
  }

  /** A US SSN (123-45-6789) or an IBAN. */
  function looksLikeNationalId(s) {
    const ssn = s.length === 11 &&
      [...s].every((c, i) => (i === 3 || i === 6 ? c === '-' : isDigit(c)));
    return ssn || looksLikeIban(s);
  }

  /** Two letters, two check digits, then letters and digits (15–34 in all), mod 97 == 1. */
  function looksLikeIban(s) {
    const b = [...s].filter((c) => c !== ' ');
    if (b.length < 15 || b.length > 34 || !b.slice(0, 2).every(isUpper) ||
        !b.slice(2, 4).every(isDigit) || !b.every(isAlnum)) {
      return false;
    }
    let rem = 0;
    for (const c of b.slice(4).concat(b.slice(0, 4))) {
      const v = isDigit(c) ? Number(c) : c.toUpperCase().charCodeAt(0) - 65 + 10;
      rem = v >= 10 ? (rem * 100 + v) % 97 : (rem * 10 + v) % 97;
    }
    return rem === 1;
  }

  /** `+` then 8–15 digits, or 10–15 digits written with separators. */
  function looksLikePhone(s) {
    const plus = s.startsWith('+');
    const text = plus ? s.slice(1) : s;
    if (text === '' || ![...text].every((c) => isDigit(c) || ' -.()'.includes(c))) return false;
    const n = [...text].filter(isDigit).length;
    const separated = [...text].some((c) => !isDigit(c));
    return plus ? n >= 8 && n <= 15 : separated && n >= 10 && n <= 15;
  }

  /* looks_like_ip: Rust's `IpAddr::from_str` (core::net::parser), ported. Each
   * reader takes (string, index) and returns the index after what it read, or -1. */
  function readNumber(s, i, radix, maxDigits, allowZeroPrefix) {
    const digit = radix === 16 ? /[0-9a-fA-F]/ : /[0-9]/;
    let j = i;
    while (j < s.length && digit.test(s[j])) j += 1;
    const count = j - i;
    if (count === 0 || count > maxDigits) return [-1, 0];
    if (!allowZeroPrefix && s[i] === '0' && count > 1) return [-1, 0];
    return [j, parseInt(s.slice(i, j), radix)];
  }
  function readIpv4(s, i) {
    for (let g = 0; g < 4; g += 1) {
      if (g > 0) {
        if (s[i] !== '.') return -1;
        i += 1;
      }
      const [j, value] = readNumber(s, i, 10, 3, false);
      if (j < 0 || value > 255) return -1;
      i = j;
    }
    return i;
  }
  const readHexGroup = (s, i) => readNumber(s, i, 16, 4, true)[0];
  const afterColon = (s, i, g, read) => (g === 0 ? read(s, i) : s[i] === ':' ? read(s, i + 1) : -1);
  function readGroups(s, i, limit) {
    for (let g = 0; g < limit; g += 1) {
      if (g < limit - 1) { // a trailing embedded IPv4 address takes two groups
        const j = afterColon(s, i, g, readIpv4);
        if (j >= 0) return { pos: j, n: g + 2, v4: true };
      }
      const j = afterColon(s, i, g, readHexGroup);
      if (j < 0) return { pos: i, n: g, v4: false };
      i = j;
    }
    return { pos: i, n: limit, v4: false };
  }
  function readIpv6(s) {
    const head = readGroups(s, 0, 8);
    if (head.n === 8) return head.pos;
    if (head.v4 || s.slice(head.pos, head.pos + 2) !== '::') return -1;
    return readGroups(s, head.pos + 2, 8 - (head.n + 1)).pos; // `::` stands for ≥ 1 group
  }
  function looksLikeIp(input) {
    const s = rustTrim(input);
    return readIpv4(s, 0) === s.length || readIpv6(s) === s.length;
  }

  /** Claim names that usually carry personal data, compared without case, `_` or `-`. */
  const SENSITIVE_NAMES = [
    ['email', 'an e-mail address'], ['mail', 'an e-mail address'],
    ['emailaddress', 'an e-mail address'],
    ['phone', 'a phone number'], ['phonenumber', 'a phone number'],
    ['mobile', 'a phone number'], ['tel', 'a phone number'],
    ['ssn', 'a national identification number'], ['nin', 'a national identification number'],
    ['nationalid', 'a national identification number'], ['taxid', 'a national identification number'],
    ['passport', 'a passport number'], ['passportnumber', 'a passport number'],
    ['dob', 'a date of birth'], ['birthdate', 'a date of birth'],
    ['dateofbirth', 'a date of birth'], ['birthday', 'a date of birth'],
    ['address', 'a postal address'], ['streetaddress', 'a postal address'],
    ['postalcode', 'a postal address'],
    ['name', "a person's name"], ['fullname', "a person's name"], ['givenname', "a person's name"],
    ['familyname', "a person's name"], ['firstname', "a person's name"],
    ['lastname', "a person's name"], ['middlename', "a person's name"],
    ['creditcard', 'a payment card number'], ['cardnumber', 'a payment card number'],
    ['iban', 'a bank account number'], ['accountnumber', 'a bank account number'],
    ['ip', 'an IP address'], ['ipaddress', 'an IP address'],
    ['gender', 'a personal attribute'],
  ];
  function sensitiveName(name) {
    const folded = name.replace(/[_-]/g, '').toLowerCase();
    const hit = SENSITIVE_NAMES.find(([n]) => n === folded);
    return hit ? hit[1] : null;
  }

  /** A number's text as serde_json prints it (the source digits for big integers). */
  const numberText = (v) => (isRaw(v) ? v.rawJSON : String(v));

  /** pii::value_kind. */
  function valueKind(v) {
    if (typeof v === 'string') return textKind(v);
    if (typeof v === 'number' || isRaw(v)) return textKind(numberText(v));
    if (Array.isArray(v)) return v.map(valueKind).find(Boolean) || null;
    if (isObject(v)) return Object.values(v).map(valueKind).find(Boolean) || null;
    return null;
  }

  /** jwt_cmd.rs `scan`: walks the claims; `top` is the claim a finding belongs to. */
  function scan(value, path, top, depth, out) {
    if (depth > 32 || out.length >= 100) return;
    if (isObject(value)) {
      for (const [name, v] of Object.entries(value)) {
        const here = path === '' ? name : `${path}.${name}`;
        const claim = top === null ? name : top;
        const kind = sensitiveName(name);
        if (kind && v !== null && typeof v !== 'boolean') {
          out.push({ flag: 'sensitive-name', text: `${here}: is named like a claim that holds ${kind}`, claim });
          continue;
        }
        scan(v, here, claim, depth + 1, out);
      }
    } else if (Array.isArray(value)) {
      value.forEach((v, i) => scan(v, `${path}[${i}]`, top, depth + 1, out));
    } else {
      const kind = typeof value === 'string'
        ? textKind(value) || (looksLikeIp(value) ? 'an IP address' : null)
        : valueKind(value); // numbers; null and booleans give none
      if (kind) out.push({ flag: 'pii', text: `${path}: looks like ${kind}`, claim: top });
    }
  }

  /* --- Decoding. --- */

  class Refusal extends Error {}

  /** The decoded size of an unpadded base64url segment, or -1 if it is not one. */
  function b64Size(s) {
    if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) return -1;
    return Math.floor((s.length * 3) / 4);
  }

  function b64Bytes(s) {
    if (b64Size(s) < 0) return null;
    const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4);
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i += 1) bytes[i] = bin.charCodeAt(i);
    return bytes;
  }

  /* Integers past 2^53 keep their exact digits where the browser can (JSON.parse
   * source text + JSON.rawJSON); elsewhere they are rounded like any JS number. */
  const exactNumbers = typeof JSON.rawJSON === 'function';
  function parseJson(text) {
    if (!exactNumbers) return JSON.parse(text);
    return JSON.parse(text, (key, value, context) => {
      if (typeof value === 'number' && !Number.isSafeInteger(value) && context &&
          typeof context.source === 'string' && /^-?\d+$/.test(context.source)) {
        return JSON.rawJSON(context.source);
      }
      return value;
    });
  }

  function attempt(f, why) {
    try {
      return f();
    } catch (e) {
      throw new Refusal(why(e));
    }
  }

  /** base64url → bytes → UTF-8 → a JSON object, or a Refusal naming what failed. */
  function decodeObject(segment, what) {
    const bytes = b64Bytes(segment);
    if (bytes === null) throw new Refusal(`the ${what} is not base64url`);
    if (bytes.length === 0) throw new Refusal(`the ${what} is empty`);
    const text = attempt(() => new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes),
      () => `the ${what} is not UTF-8`);
    const value = attempt(() => parseJson(text), (e) => `the ${what} is not JSON (${e.message})`);
    if (!isObject(value)) throw new Refusal(`the ${what} is JSON but not an object`);
    return value;
  }

  function size(segment, what) {
    const n = b64Size(segment);
    if (n < 0) throw new Refusal(`the ${what} is not base64url`);
    return n;
  }

  /* --- Times. --- */

  function numeric(v) {
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if (isRaw(v)) return Number(v.rawJSON);
    return null;
  }

  function isoDate(seconds) {
    const d = new Date(seconds * 1000);
    return Number.isNaN(d.getTime()) ? 'out of range' : d.toISOString().replace('.000Z', 'Z');
  }

  /** "in 5 min", "3 h ago", "just now" for a difference in seconds. */
  function relative(delta) {
    const a = Math.abs(Math.round(delta));
    if (a === 0) return 'just now';
    let text;
    if (a < 120) text = `${a} s`;
    else if (a < 7200) text = `${Math.round(a / 60)} min`;
    else if (a < 2 * 86400) text = `${Math.round(a / 3600)} h`;
    else text = `${Math.round(a / 86400)} days`;
    return delta > 0 ? `in ${text}` : `${text} ago`;
  }

  /* --- The pure inspection. --- */

  function keyList(keys) {
    if (Array.isArray(keys)) return keys;
    if (keys && Array.isArray(keys.keys)) return keys.keys;
    return null;
  }

  function jwsHeaderFindings(header, keys, keysWhy, add) {
    const result = { key: null };
    if (typeof header.alg === 'string' && header.alg.toLowerCase() === 'none') {
      add('alg-none', 'alg: none — an unsigned token; tessera never accepts it');
    }
    if (!own(header, 'kid')) {
      add('no-kid', 'no kid: the header does not say which key signed it');
    } else {
      const kid = show(header.kid);
      const list = keyList(keys);
      const key = list && typeof header.kid === 'string' ? list.find((k) => k && k.kid === header.kid) : null;
      if (typeof header.kid !== 'string') {
        add('unknown-kid', `kid ${kid} is not one of this service's keys`);
      } else if (!list) {
        add('kid-unchecked', `kid ${kid} cannot be checked: ${keysWhy || "this service's keys are not available"}`);
      } else if (!key) {
        add('unknown-kid', `kid ${kid} is not one of this service's keys`);
      } else {
        result.key = { kid: key.kid, alg: key.alg, state: key.state };
        if (key.state === 'retired') {
          add('kid-retired', `kid ${kid} is one of this service's keys, in state retired: ` +
            'it no longer signs and has left the JWKS');
        } else if (key.state === 'compromised') {
          add('kid-compromised', `kid ${kid} is one of this service's keys, in state compromised: ` +
            'it leaked, and nothing it signed may be trusted');
        }
        if (typeof key.alg === 'string' && typeof header.alg === 'string' && key.alg !== header.alg) {
          add('alg-mismatch', `alg ${header.alg} is not the alg of key ${kid} (${key.alg})`);
        }
      }
    }
    if (!own(header, 'typ')) {
      add('no-typ', 'no typ: every token tessera issues names its type');
    } else {
      const typ = typeof header.typ === 'string' ? header.typ.toLowerCase().replace(/^application\//, '') : null;
      if (!TYPS.includes(typ)) add('typ', `typ ${show(header.typ)} is not one tessera issues`);
    }
    if (['jku', 'x5u', 'jwk'].some((k) => own(header, k))) {
      add('header-key', 'the header names a key (jku/x5u/jwk): verifiers must ignore it');
    }
    return result;
  }

  function claimFindings(claims, now, add) {
    for (const name of DATES) {
      if (own(claims, name) && numeric(claims[name]) === null) {
        add('bad-date', `${name} is not a NumericDate (seconds since 1970)`, name);
      }
    }
    const exp = numeric(claims.exp);
    if (!own(claims, 'exp')) add('no-exp', 'no exp: the token never expires (tessera refuses such tokens)');
    else if (exp !== null && exp <= now) add('expired', `expired ${relative(exp - now)}`, 'exp');
    const nbf = numeric(claims.nbf);
    if (own(claims, 'nbf') && nbf !== null && nbf > now) {
      add('not-yet', `not yet valid: nbf is ${relative(nbf - now)}`, 'nbf');
    }
    const found = [];
    scan(claims, '', null, 0, found);
    for (const f of found) add(f.flag, f.text, f.claim);
  }

  function inspectJws([h, p, s], keys, now, keysWhy) {
    const header = decodeObject(h, 'header');
    const detached = p === '';
    const claims = detached ? null : decodeObject(p, 'payload');
    const signature = { bytes: size(s, 'signature') };
    const findings = [];
    const add = (flag, text, claim) => findings.push(claim === undefined ? { flag, text } : { flag, text, claim });
    const { key } = jwsHeaderFindings(header, keys, keysWhy, add);
    if (claims) claimFindings(claims, now, add);
    const out = { kind: 'jws', header, claims, findings, signature, key };
    if (detached) out.detached = true;
    return out;
  }

  function inspectJwe([h, k, iv, c, t]) {
    const header = decodeObject(h, 'protected header');
    const sealed = {
      contents: ['the claims', 'the inner signed token (if nested)'],
      encryptedKey: size(k, 'encrypted key'),
      iv: size(iv, 'IV'),
      ciphertext: size(c, 'ciphertext'),
      tag: size(t, 'authentication tag'),
    };
    const findings = [];
    const nested = typeof header.cty === 'string' && header.cty.toLowerCase() === 'jwt';
    if (nested) findings.push({ flag: 'nested', text: 'nested: a signed JWT is sealed inside' });
    if (own(header, 'zip')) {
      findings.push({ flag: 'zip', text: `zip ${show(header.zip)}: compressed before encryption` });
    }
    return { kind: 'jwe', header, findings, sealed, nested };
  }

  /**
   * Inspects a compact token without verifying it and without any network.
   * keysOrNull: the service's keys ([{kid, alg, state}] or {keys: [...]}), or
   * null when they could not be loaded (keysWhy then says why).
   */
  function tesseraInspect(tokenString, keysOrNull, nowSeconds, keysWhy) {
    const fail = (error) => ({ kind: 'error', error, findings: [] });
    if (typeof tokenString !== 'string') return fail('no token');
    if (tokenString.length > LIMIT || new TextEncoder().encode(tokenString).length > LIMIT) {
      return fail('the input is over 64 KiB: refused');
    }
    const now = Number.isFinite(nowSeconds) ? nowSeconds : Math.floor(Date.now() / 1000);
    const token = tokenString.trim().replace(/^(?:bearer|dpop)\s+/i, '').trim();
    if (token === '') return fail('no token');
    const parts = token.split('.');
    try {
      if (parts.length === 3) return inspectJws(parts, keysOrNull, now, keysWhy);
      if (parts.length === 5) return inspectJwe(parts);
    } catch (e) {
      if (e instanceof Refusal) return fail(e.message);
      return fail(`cannot inspect this token (${e && e.message})`);
    }
    return fail(`not a compact JWS (3 parts) or JWE (5 parts): this has ${plural(parts.length, 'part', 'parts')}`);
  }

  root.tesseraInspect = tesseraInspect;

  /* --- The page. --- */

  /** An element; never sets style, URL-bearing or event attributes. */
  function el(tag, attrs, ...kids) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (/^(style|src|href|action|formaction|srcset|on)/i.test(name)) throw new Error(`el: ${name}`);
      if (value === undefined || value === null || value === false) continue;
      node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const kid of kids.flat()) {
      if (kid === undefined || kid === null || kid === false) continue;
      node.append(typeof kid === 'string' ? document.createTextNode(kid) : kid);
    }
    return node;
  }

  const flag = (f) => el('span', { class: 'flag', 'data-flag': f.flag }, f.text);
  const pretty = (v) => JSON.stringify(v, null, 2);

  /** The summary list; findings without a row of their own carry their .flag here. */
  function findingsBlock(findings, rows) {
    const list = el('ul', { id: 'findings' });
    for (const f of findings) {
      const inRow = f.claim !== undefined && rows.has(f.claim);
      list.append(el('li', { 'data-finding': f.flag }, inRow ? f.text : flag(f)));
    }
    return [
      el('h2', {}, 'Findings'),
      list,
      findings.length === 0 ? el('p', { id: 'no-findings' }, 'Nothing flagged.') : null,
    ];
  }

  function valueNode(v) {
    if (v !== null && typeof v === 'object' && !isRaw(v)) return el('pre', { class: 'json value' }, pretty(v));
    return el('code', { class: 'json value' }, JSON.stringify(v));
  }

  function claimsTable(claims, now, rows) {
    const names = Object.keys(REGISTERED).filter((n) => own(claims, n))
      .concat(Object.keys(claims).filter((n) => !own(REGISTERED, n)));
    const body = el('tbody');
    for (const name of names) {
      const value = claims[name];
      const when = DATES.includes(name) && numeric(value) !== null
        ? el('span', { class: 'date' }, `${isoDate(numeric(value))} (${relative(numeric(value) - now)})`)
        : null;
      const flags = el('td', { class: 'flags' });
      rows.set(name, flags);
      body.append(el('tr', { 'data-claim': name, class: own(REGISTERED, name) ? 'registered' : null },
        el('th', { scope: 'row' }, el('code', {}, name),
          own(REGISTERED, name) ? el('span', { class: 'claim-desc' }, ` (${REGISTERED[name]})`) : null),
        el('td', {}, valueNode(value), when ? ' ' : null, when),
        flags));
    }
    return el('table', { class: 'claims', id: 'claims' },
      el('caption', {}, `Claims (${names.length})`),
      el('thead', {}, el('tr', {},
        el('th', { scope: 'col' }, 'Claim'), el('th', { scope: 'col' }, 'Value'),
        el('th', { scope: 'col' }, 'Flags'))),
      body);
  }

  function renderJws(r, now) {
    const rows = new Map();
    const table = r.claims ? claimsTable(r.claims, now, rows) : null;
    for (const f of r.findings) {
      if (f.claim !== undefined && rows.has(f.claim)) rows.get(f.claim).append(flag(f), ' ');
    }
    const personal = r.findings.some((f) => f.flag === 'pii' || f.flag === 'sensitive-name');
    let kidNote = null;
    if (r.key) {
      kidNote = el('p', { id: 'kid-note' },
        `kid ${r.key.kid} is one of this service's keys: state ${r.key.state}, alg ${r.key.alg}.`);
    }
    return [
      el('p', { class: 'banner danger', id: 'jws-banner' }, JWS_BANNER),
      findingsBlock(r.findings, rows),
      el('h2', {}, 'Header'),
      el('pre', { class: 'json', id: 'jws-header' }, pretty(r.header)),
      kidNote,
      el('h2', {}, 'Claims'),
      table || el('p', { id: 'detached' }, 'The payload is detached: there are no claims to show.'),
      personal ? el('p', { id: 'pii-note' }, 'Personal data in a signed token leaks to every browser, ' +
        'proxy and log it passes: seal it in a JWE instead.') : null,
      el('h2', {}, 'Signature'),
      el('p', { id: 'signature' }, `${plural(r.signature.bytes, 'byte', 'bytes')}: ${NOT_VERIFIED}.`),
    ];
  }

  function renderJwe(r) {
    const h = r.header;
    const s = r.sealed;
    const kidNote = own(h, 'kid')
      ? `kid ${show(h.kid)} names the recipient's key (whoever can decrypt this token), ` +
        "not one of this service's signing keys: it is not checked against them."
      : "No kid: the header does not name the recipient's key.";
    const keyNote = s.encryptedKey === 0 ? ` (none is sent with alg ${show(h.alg)})` : '';
    return [
      el('p', { class: 'banner', id: 'jwe-banner' }, JWE_BANNER),
      findingsBlock(r.findings, new Map()),
      el('h2', {}, 'Protected header'),
      el('pre', { class: 'json', id: 'jwe-header' }, pretty(h)),
      el('p', { id: 'jwe-algs' }, `alg ${show(h.alg)} (how the content key reaches the recipient), ` +
        `enc ${show(h.enc)} (how the content is encrypted).`),
      el('p', { id: 'jwe-kid-note' }, kidNote),
      el('h2', {}, 'Sealed'),
      el('div', { class: 'sealed', id: 'sealed' },
        el('p', {}, 'What stays sealed (only the recipient reads it):'),
        el('ul', {}, s.contents.map((c) => el('li', {}, c)), [
          ['encrypted-key', 'the encrypted key', s.encryptedKey, keyNote], ['iv', 'the IV', s.iv, ''],
          ['ciphertext', 'the ciphertext', s.ciphertext, ''], ['tag', 'the authentication tag', s.tag, ''],
        ].map(([part, what, n, more]) => el('li', { 'data-part': part }, `${what}: ${plural(n, 'byte', 'bytes')}${more}`)))),
      r.nested ? el('p', { id: 'nested-note' }, NESTED_NOTE) : null,
    ];
  }

  function start() {
    if (!document.body || document.body.dataset.page !== 'inspector') return;
    const content = document.getElementById('content');
    const status = document.getElementById('status');
    if (!content || !status) return;

    const input = el('textarea', {
      id: 'token-input', rows: 6, autocomplete: 'off', spellcheck: 'false',
      autocapitalize: 'off', autocorrect: 'off', 'aria-describedby': 'inspector-promise',
    });
    const button = el('button', { type: 'button', id: 'inspect' }, 'Inspect');
    const keysNote = el('p', { id: 'keys-note' }, "Loading this service's key ids…");
    const section = el('section', { id: 'inspection', 'aria-label': 'Inspection' });
    content.replaceChildren(
      el('p', { id: 'inspector-promise' }, 'Parsed in this browser only: the token is never sent anywhere.'),
      el('label', { for: 'token-input' }, 'Token'),
      input,
      el('p', {}, button),
      keysNote,
      section);

    // Leaving the page forgets the pasted token: no form restore, no
    // back/forward cache brings it back.
    window.addEventListener('pagehide', () => {
      input.value = '';
      section.replaceChildren();
    });

    let keys = null;
    let keysWhy = "this service's keys are still loading";

    const say = (text, error) => {
      status.textContent = text;
      status.classList.toggle('error', Boolean(error));
    };

    const run = () => {
      const raw = input.value;
      if (raw.trim() === '') {
        section.replaceChildren();
        say('', false);
        return;
      }
      const now = Math.floor(Date.now() / 1000);
      const r = tesseraInspect(raw, keys, now, keysWhy);
      if (r.kind === 'error') {
        section.replaceChildren();
        say(r.error, true);
      } else if (r.kind === 'jws') {
        section.replaceChildren(...renderJws(r, now).flat().filter(Boolean));
        say(`Signed token (JWS), parsed here: ${plural(r.findings.length, 'finding', 'findings')}.`, false);
      } else {
        section.replaceChildren(...renderJwe(r).flat().filter(Boolean));
        say('Encrypted token (JWE): its header is parsed here; the rest is sealed.', false);
      }
    };

    let timer = 0;
    input.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(run, 250);
    });
    button.addEventListener('click', () => {
      clearTimeout(timer);
      run();
    });

    // The one request: the key ids, asked for before anything is pasted. It
    // carries nothing of the token (there is none yet, and it never will).
    // The console's API wants the page's CSRF token on every call.
    const csrfMeta = document.querySelector('meta[name="csrf-token"]');
    const csrf = csrfMeta ? csrfMeta.getAttribute('content') || '' : '';
    fetch('/console/api/keys', {
      credentials: 'same-origin',
      headers: { accept: 'application/json', 'x-csrf-token': csrf },
    })
      .then((res) => {
        if (res.status === 403) throw new Refusal('this admin token lacks keys:read');
        if (!res.ok) throw new Refusal(`this service's keys could not be loaded (HTTP ${res.status})`);
        return res.json();
      })
      .then((body) => {
        if (!body || !Array.isArray(body.keys)) throw new Refusal("this service's keys came back in an unknown shape");
        keys = body.keys.filter((k) => k && typeof k.kid === 'string');
        keysWhy = null;
        keysNote.textContent = `A token's kid is checked against this service's ${plural(keys.length, 'key', 'keys')}.`;
      })
      .catch((e) => {
        keys = null;
        keysWhy = e instanceof Refusal ? e.message : "this service's keys could not be loaded";
        keysNote.textContent = `The kid cannot be checked: ${keysWhy}.`;
      })
      .then(() => {
        if (input.value.trim() !== '') run();
      });
  }

  if (typeof document !== 'undefined') {
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
    else start();
  }
})();
