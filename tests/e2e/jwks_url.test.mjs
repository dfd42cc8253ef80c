//! LIVEGATE_JWKS_URL: the issuer's JWKS endpoint (a local HTTP server here, counting its
//! requests). Fetched at the first handshake that needs it, cached, fetched again for a `kid` it
//! lacks (a rotation) at most once every 5 s, last keys kept while the issuer fails, and a node
//! whose issuer is unreachable still starts and answers `invalid_token`.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { generateKeyPairSync } from "node:crypto";
import { createServer } from "node:http";
import { connect, errorCode, mintToken, randomUUID, startGateway } from "./support/gateway.mjs";

/** How long the node waits between two fetches for unknown kids (docs/configuration.md). */
const MIN_REFETCH_MS = 5000;
const pause = (ms) => new Promise((res) => setTimeout(res, ms));

const keys = {
  k1: generateKeyPairSync("rsa", { modulusLength: 2048 }),
  k2: generateKeyPairSync("rsa", { modulusLength: 2048 }),
};
const jwk = (name) => ({ ...keys[name].publicKey.export({ format: "jwk" }), kid: name, use: "sig", alg: "RS256" });

/** The issuer: serves `state.body` with `state.status` and counts requests. */
const issuer = { status: 200, body: JSON.stringify({ keys: [jwk("k1")] }), requests: 0 };
const server = createServer((req, res) => {
  issuer.requests += 1;
  res.writeHead(issuer.status, { "content-type": "application/json" });
  res.end(issuer.body);
});

const gws = {};
before(async () => {
  await new Promise((res) => server.listen(0, "127.0.0.1", res));
  const url = `http://127.0.0.1:${server.address().port}/.well-known/jwks.json`;
  // A port that refuses connections: bound, then closed.
  const closed = createServer();
  await new Promise((res) => closed.listen(0, "127.0.0.1", res));
  const deadUrl = `http://127.0.0.1:${closed.address().port}/jwks.json`;
  await new Promise((res) => closed.close(res));
  const noHmac = { LIVEGATE_JWT_HMAC_SECRET: undefined, LIVEGATE_JWT_ALGORITHMS: "RS256" };
  [gws.live, gws.dead] = await Promise.all([
    startGateway({ ...noHmac, LIVEGATE_JWKS_URL: url }, { name: "jwks-url" }),
    startGateway({ ...noHmac, LIVEGATE_JWKS_URL: deadUrl }, { name: "jwks-url-dead" }),
  ]);
});
after(async () => {
  await Promise.all(Object.values(gws).map((g) => g.stop()));
  await new Promise((res) => server.close(res));
});

/** Resolves "ready" or the connect_error code of one handshake. */
async function handshake(gw, kid, key = keys[kid]?.privateKey ?? keys.k1.privateKey) {
  const project_id = randomUUID();
  const token = mintToken({ projects: [project_id] }, { alg: "RS256", key, kid });
  const socket = connect(gw, { token, project_id });
  try {
    return await new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`no ready and no connect_error for kid ${kid}`)), 8000);
      socket.on("message", (m) => {
        if (m?.event === "ready") {
          clearTimeout(timer);
          res("ready");
        }
      });
      socket.on("connect_error", (e) => {
        clearTimeout(timer);
        res(errorCode(e.message));
      });
    });
  } finally {
    socket.close();
  }
}

describe("a JWKS URL", () => {
  test("is not fetched at startup nor for a token without kid, but at the first handshake, then cached", async () => {
    assert.equal(issuer.requests, 0, "the node asked the issuer before any handshake");
    // A token that names no kid cannot be verified with a JWKS, and does not make the node ask.
    assert.equal(await handshake(gws.live, undefined, keys.k1.privateKey), "invalid_token");
    assert.equal(issuer.requests, 0, "a token without a kid made the node fetch");
    assert.equal(await handshake(gws.live, "k1"), "ready");
    assert.equal(issuer.requests, 1);
    assert.equal(await handshake(gws.live, "k1"), "ready");
    assert.equal(issuer.requests, 1, "a known kid made another request");
  });

  test("a token signed by another key under a known kid is invalid_token", async () => {
    assert.equal(await handshake(gws.live, "k1", keys.k2.privateKey), "invalid_token");
  });

  test("after a rotation the new kid is fetched, and made-up kids cost at most one fetch per interval", async () => {
    issuer.body = JSON.stringify({ keys: [jwk("k1"), jwk("k2")] });
    const before = issuer.requests;
    const started = Date.now();
    let outcome;
    // The first fetch was moments ago: the new kid is refused until the interval has passed.
    while ((outcome = await handshake(gws.live, "k2")) !== "ready") {
      assert.equal(outcome, "invalid_token");
      assert.ok(Date.now() - started < MIN_REFETCH_MS + 4000, "the rotated key was never fetched");
      await pause(250);
    }
    assert.equal(issuer.requests, before + 1, "one rotation, one fetch");

    const burstStart = issuer.requests;
    const burst = await Promise.all(
      Array.from({ length: 20 }, (_, i) => handshake(gws.live, `made-up-${i}`, keys.k1.privateKey)),
    );
    assert.deepEqual(new Set(burst), new Set(["invalid_token"]));
    assert.ok(issuer.requests - burstStart <= 1, `${issuer.requests - burstStart} fetches for one burst`);
    assert.equal(await handshake(gws.live, "k1"), "ready", "known keys still work");
  });

  test("while the issuer fails, the last keys stay in use", async () => {
    issuer.status = 500;
    issuer.body = "{}";
    const before = issuer.requests;
    // An unknown kid makes the node try (once the interval allows) and fail.
    const started = Date.now();
    while (issuer.requests === before) {
      assert.equal(await handshake(gws.live, "k3", keys.k1.privateKey), "invalid_token");
      assert.ok(Date.now() - started < MIN_REFETCH_MS + 4000, "the node never asked again");
      await pause(250);
    }
    assert.equal(await handshake(gws.live, "k1"), "ready");
    assert.equal(await handshake(gws.live, "k2"), "ready");
    assert.match(gws.live.logs(), /cannot fetch the JWKS document/);
  });

  test("an unreachable issuer: the node starts, stays ready, and handshakes are invalid_token", async () => {
    assert.equal((await gws.dead.http("GET", "/healthz")).status, 200);
    assert.equal(await handshake(gws.dead, "k1"), "invalid_token");
    assert.equal((await gws.dead.http("GET", "/readyz")).status, 200);
  });
});
