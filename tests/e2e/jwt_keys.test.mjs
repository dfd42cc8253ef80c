//! Asymmetric keys (RS256, ES256, EdDSA PEM files; a JWKS file selected by kid; the JWKS URL is
//! in jwks_url.test.mjs), algorithm confusion, and issuer / audience / leeway when configured.
//! One gateway per key setup.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  TEST_SECRET,
  connect,
  errorCode,
  expectConnectError,
  mintToken,
  nextMessage,
  nowSec,
  openSession,
  randomUUID,
  signJwt,
  startGateway,
  userClaims,
  waitFor,
} from "./support/gateway.mjs";

const dir = mkdtempSync(join(tmpdir(), "livegate-e2e-keys-"));
const pem = (k) => k.export({ type: "spki", format: "pem" });

const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const rsaOther = generateKeyPairSync("rsa", { modulusLength: 2048 });
const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const ecOther = generateKeyPairSync("ec", { namedCurve: "P-256" });
const ed = generateKeyPairSync("ed25519");
const edOther = generateKeyPairSync("ed25519");

// JWKS: two RSA keys and one EC key, chosen by kid.
const jwksKeys = {
  k1: generateKeyPairSync("rsa", { modulusLength: 2048 }),
  k2: generateKeyPairSync("rsa", { modulusLength: 2048 }),
  e1: generateKeyPairSync("ec", { namedCurve: "P-256" }),
};
const jwks = {
  keys: [
    { ...jwksKeys.k1.publicKey.export({ format: "jwk" }), kid: "k1", use: "sig", alg: "RS256" },
    { ...jwksKeys.k2.publicKey.export({ format: "jwk" }), kid: "k2", use: "sig", alg: "RS256" },
    { ...jwksKeys.e1.publicKey.export({ format: "jwk" }), kid: "e1", use: "sig", alg: "ES256" },
  ],
};

const files = {
  rsa: join(dir, "rsa.pem"),
  ec: join(dir, "ec.pem"),
  ed: join(dir, "ed25519.pem"),
  jwks: join(dir, "jwks.json"),
};
writeFileSync(files.rsa, pem(rsa.publicKey));
writeFileSync(files.ec, pem(ec.publicKey));
writeFileSync(files.ed, pem(ed.publicKey));
writeFileSync(files.jwks, JSON.stringify(jwks));

const ISSUER = "https://auth.livegate.test/";
const AUDIENCE = "livegate-e2e";

const gws = {};
before(async () => {
  const noHmac = { LIVEGATE_JWT_HMAC_SECRET: undefined };
  const [rs, es, eddsa, jw, jwRs, claims] = await Promise.all([
    startGateway({ ...noHmac, LIVEGATE_JWT_PUBLIC_KEY_FILE: files.rsa, LIVEGATE_JWT_ALGORITHMS: "RS256" }, { name: "rs256" }),
    startGateway({ ...noHmac, LIVEGATE_JWT_PUBLIC_KEY_FILE: files.ec, LIVEGATE_JWT_ALGORITHMS: "ES256" }, { name: "es256" }),
    startGateway({ ...noHmac, LIVEGATE_JWT_PUBLIC_KEY_FILE: files.ed, LIVEGATE_JWT_ALGORITHMS: "EdDSA" }, { name: "eddsa" }),
    startGateway({ ...noHmac, LIVEGATE_JWKS_FILE: files.jwks, LIVEGATE_JWT_ALGORITHMS: "RS256,ES256" }, { name: "jwks" }),
    startGateway({ ...noHmac, LIVEGATE_JWKS_FILE: files.jwks, LIVEGATE_JWT_ALGORITHMS: "RS256" }, { name: "jwks-rs256" }),
    startGateway({ LIVEGATE_JWT_ISSUER: ISSUER, LIVEGATE_JWT_AUDIENCE: AUDIENCE, LIVEGATE_JWT_LEEWAY: "0s" }, { name: "iss-aud" }),
  ]);
  Object.assign(gws, { rs, es, eddsa, jw, jwRs, claims });
});
after(async () => {
  await Promise.all(Object.values(gws).map((g) => g.stop()));
  rmSync(dir, { recursive: true, force: true });
});

async function codeOf(gw, tok, project_id) {
  const socket = connect(gw, { token: tok, project_id });
  try {
    const message = await expectConnectError(socket);
    return { code: errorCode(message), message };
  } finally {
    socket.close();
  }
}

async function accepted(gw, tok, project_id) {
  const socket = connect(gw, { token: tok, project_id });
  try {
    const ready = await waitFor(socket, "message", (m) => m?.event === "ready", 5000, { what: "ready" });
    assert.equal(ready.event, "ready");
  } finally {
    socket.close();
  }
}

describe("RS256 with a PEM public key", () => {
  const p = randomUUID();
  test("a token signed by the private key is accepted", async () => {
    await accepted(gws.rs, mintToken({ projects: [p] }, { alg: "RS256", key: rsa.privateKey }), p);
  });
  test("a token signed by another RSA key is invalid_token", async () => {
    const { code, message } = await codeOf(gws.rs, mintToken({ projects: [p] }, { alg: "RS256", key: rsaOther.privateKey }), p);
    assert.equal(code, "invalid_token", message);
  });
  test("algorithm confusion: HS256 keyed with the PEM public key is invalid_token", async () => {
    const tok = signJwt({ alg: "HS256", typ: "JWT" }, userClaims({ projects: [p] }), pem(rsa.publicKey));
    const { code, message } = await codeOf(gws.rs, tok, p);
    assert.equal(code, "invalid_token", message);
  });
  test("algorithm confusion: HS256 keyed with the public key's DER is invalid_token", async () => {
    const der = rsa.publicKey.export({ type: "spki", format: "der" });
    const tok = signJwt({ alg: "HS256", typ: "JWT" }, userClaims({ projects: [p] }), der);
    const { code, message } = await codeOf(gws.rs, tok, p);
    assert.equal(code, "invalid_token", message);
  });
  test("alg none is invalid_token", async () => {
    const tok = signJwt({ alg: "none", typ: "JWT" }, userClaims({ projects: [p] }), "");
    const { code, message } = await codeOf(gws.rs, tok, p);
    assert.equal(code, "invalid_token", message);
  });
  test("an HS256 token made with the usual test secret is invalid_token (no HMAC configured)", async () => {
    const { code, message } = await codeOf(gws.rs, mintToken({ projects: [p] }, { alg: "HS256", key: TEST_SECRET }), p);
    assert.equal(code, "invalid_token", message);
  });
  test("RS384 (not in the allow-list) is invalid_token even with the right key", async () => {
    const { code, message } = await codeOf(gws.rs, mintToken({ projects: [p] }, { alg: "RS384", key: rsa.privateKey }), p);
    assert.equal(code, "invalid_token", message);
  });
  test("claims are still checked: expired is token_expired, api_key is not_a_user_token", async () => {
    const expired = await codeOf(gws.rs, mintToken({ projects: [p], exp: nowSec() - 300 }, { alg: "RS256", key: rsa.privateKey }), p);
    assert.equal(expired.code, "token_expired", expired.message);
    const apiKey = await codeOf(gws.rs, mintToken({ projects: [p], token_use: "api_key" }, { alg: "RS256", key: rsa.privateKey }), p);
    assert.equal(apiKey.code, "not_a_user_token", apiKey.message);
  });
});

describe("ES256 with a PEM public key", () => {
  const p = randomUUID();
  test("a token signed by the private key is accepted", async () => {
    await accepted(gws.es, mintToken({ projects: [p] }, { alg: "ES256", key: ec.privateKey }), p);
  });
  test("a token signed by another P-256 key is invalid_token", async () => {
    const { code, message } = await codeOf(gws.es, mintToken({ projects: [p] }, { alg: "ES256", key: ecOther.privateKey }), p);
    assert.equal(code, "invalid_token", message);
  });
  test("HS256 keyed with the PEM public key is invalid_token", async () => {
    const tok = signJwt({ alg: "HS256", typ: "JWT" }, userClaims({ projects: [p] }), pem(ec.publicKey));
    const { code, message } = await codeOf(gws.es, tok, p);
    assert.equal(code, "invalid_token", message);
  });
  test("alg none is invalid_token", async () => {
    const tok = signJwt({ alg: "none", typ: "JWT" }, userClaims({ projects: [p] }), "");
    const { code, message } = await codeOf(gws.es, tok, p);
    assert.equal(code, "invalid_token", message);
  });
});

describe("EdDSA with a PEM public key", () => {
  const p = randomUUID();
  test("a token signed by the Ed25519 private key is accepted", async () => {
    await accepted(gws.eddsa, mintToken({ projects: [p] }, { alg: "EdDSA", key: ed.privateKey }), p);
  });
  test("a token signed by another Ed25519 key is invalid_token", async () => {
    const { code, message } = await codeOf(gws.eddsa, mintToken({ projects: [p] }, { alg: "EdDSA", key: edOther.privateKey }), p);
    assert.equal(code, "invalid_token", message);
  });
  test("HS256 keyed with the PEM public key is invalid_token", async () => {
    const tok = signJwt({ alg: "HS256", typ: "JWT" }, userClaims({ projects: [p] }), pem(ed.publicKey));
    const { code, message } = await codeOf(gws.eddsa, tok, p);
    assert.equal(code, "invalid_token", message);
  });
});

describe("JWKS file with a single-family allow-list (RS256)", () => {
  const p = randomUUID();
  test("RS256 signed by k1 with kid k1 is accepted", async () => {
    await accepted(gws.jwRs, mintToken({ projects: [p] }, { alg: "RS256", key: jwksKeys.k1.privateKey, kid: "k1" }), p);
  });
  test("RS256 signed by k2 with kid k2 is accepted", async () => {
    await accepted(gws.jwRs, mintToken({ projects: [p] }, { alg: "RS256", key: jwksKeys.k2.privateKey, kid: "k2" }), p);
  });
  test("ES256 by the JWKS's EC key is invalid_token: not in this allow-list", async () => {
    const { code, message } = await codeOf(gws.jwRs, mintToken({ projects: [p] }, { alg: "ES256", key: jwksKeys.e1.privateKey, kid: "e1" }), p);
    assert.equal(code, "invalid_token", message);
  });
  test("signed by k2 but naming kid k1 is invalid_token", async () => {
    const { code, message } = await codeOf(gws.jwRs, mintToken({ projects: [p] }, { alg: "RS256", key: jwksKeys.k2.privateKey, kid: "k1" }), p);
    assert.equal(code, "invalid_token", message);
  });
});

describe("JWKS file with a mixed allow-list (RS256,ES256), key selected by kid", () => {
  const p = randomUUID();
  test("RS256 signed by k1 with kid k1 is accepted", async () => {
    await accepted(gws.jw, mintToken({ projects: [p] }, { alg: "RS256", key: jwksKeys.k1.privateKey, kid: "k1" }), p);
  });
  test("RS256 signed by k2 with kid k2 is accepted", async () => {
    await accepted(gws.jw, mintToken({ projects: [p] }, { alg: "RS256", key: jwksKeys.k2.privateKey, kid: "k2" }), p);
  });
  test("ES256 signed by e1 with kid e1 is accepted", async () => {
    await accepted(gws.jw, mintToken({ projects: [p] }, { alg: "ES256", key: jwksKeys.e1.privateKey, kid: "e1" }), p);
  });
  test("signed by k2 but naming kid k1 is invalid_token", async () => {
    const { code, message } = await codeOf(gws.jw, mintToken({ projects: [p] }, { alg: "RS256", key: jwksKeys.k2.privateKey, kid: "k1" }), p);
    assert.equal(code, "invalid_token", message);
  });
  test("an unknown kid is invalid_token", async () => {
    const { code, message } = await codeOf(gws.jw, mintToken({ projects: [p] }, { alg: "RS256", key: jwksKeys.k1.privateKey, kid: "nope" }), p);
    assert.equal(code, "invalid_token", message);
  });
  test("a key outside the JWKS is invalid_token", async () => {
    const { code, message } = await codeOf(gws.jw, mintToken({ projects: [p] }, { alg: "RS256", key: rsaOther.privateKey, kid: "k1" }), p);
    assert.equal(code, "invalid_token", message);
  });
  test("HS256 keyed with a JWKS member's PEM, naming its kid, is invalid_token", async () => {
    const tok = signJwt({ alg: "HS256", typ: "JWT", kid: "k1" }, userClaims({ projects: [p] }), pem(jwksKeys.k1.publicKey));
    const { code, message } = await codeOf(gws.jw, tok, p);
    assert.equal(code, "invalid_token", message);
  });
  test("alg none naming a kid is invalid_token", async () => {
    const tok = signJwt({ alg: "none", typ: "JWT", kid: "k1" }, userClaims({ projects: [p] }), "");
    const { code, message } = await codeOf(gws.jw, tok, p);
    assert.equal(code, "invalid_token", message);
  });
});

describe("issuer, audience and leeway when configured", () => {
  const good = (claims = {}) => mintToken({ iss: ISSUER, aud: AUDIENCE, ...claims });
  test("the right iss and aud are accepted", async () => {
    const p = randomUUID();
    await accepted(gws.claims, good({ projects: [p] }), p);
  });
  test("aud as an array that contains the audience is accepted", async () => {
    const p = randomUUID();
    await accepted(gws.claims, good({ projects: [p], aud: ["other", AUDIENCE] }), p);
  });
  for (const [name, claims] of [
    ["a wrong iss", { iss: "https://evil.test/" }],
    ["a missing iss", { iss: undefined }],
    ["a wrong aud", { aud: "someone-else" }],
    ["a missing aud", { aud: undefined }],
  ]) {
    test(`${name} is invalid_token`, async () => {
      const p = randomUUID();
      const { code, message } = await codeOf(gws.claims, good({ projects: [p], ...claims }), p);
      assert.equal(code, "invalid_token", message);
    });
  }
  test("with LIVEGATE_JWT_LEEWAY=0s an exp 5 s ago is token_expired", async () => {
    const p = randomUUID();
    const { code, message } = await codeOf(gws.claims, good({ projects: [p], exp: nowSec() - 5 }), p);
    assert.equal(code, "token_expired", message);
  });
  test("with LIVEGATE_JWT_LEEWAY=0s an nbf 20 s ahead is invalid_token", async () => {
    const p = randomUUID();
    const { code, message } = await codeOf(gws.claims, good({ projects: [p], nbf: nowSec() + 20 }), p);
    assert.equal(code, "invalid_token", message);
  });
});

describe("sessions on an asymmetric node work end to end", () => {
  test("RS256 session gets ready with every channel and answers ping", async () => {
    const { socket, ready } = await openSession(gws.rs, { tokenOpts: { alg: "RS256", key: rsa.privateKey } });
    try {
      assert.equal(ready.channels.length, 3);
      socket.send({ action: "ping", timestamp: 1 });
      const pong = await nextMessage(socket, (m) => m?.event === "pong");
      assert.equal(pong.received_timestamp, 1);
    } finally {
      socket.close();
    }
  });
});
