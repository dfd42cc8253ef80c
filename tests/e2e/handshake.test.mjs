//! The handshake on the default gateway (HS256 secret): every connect_error code of
//! CONTRACT §1, the claims, the leeway, `alg: none`, and the `ready` message.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { generateKeyPairSync } from "node:crypto";
import {
  CHANNELS,
  TEST_SECRET,
  UUID_V4,
  closeAll,
  connect,
  errorCode,
  expectConnectError,
  expectNothing,
  mintToken,
  nowSec,
  openSession,
  randomUUID,
  signJwt,
  startGateway,
  subscribe,
  userClaims,
  waitFor,
} from "./support/gateway.mjs";

let gw;
before(async () => {
  gw = await startGateway({}, { name: "handshake" });
});
after(async () => {
  await gw?.stop();
});

/** Connect with `auth` and resolve the code of the connect_error. */
async function rejectedWith(auth) {
  const socket = connect(gw, auth);
  try {
    const message = await expectConnectError(socket);
    return { code: errorCode(message), message, socket };
  } finally {
    socket.close();
  }
}

const token = (claims, opts) => mintToken(claims, opts);

describe("auth_missing", () => {
  test("no auth object at all", async () => {
    const { code, message } = await rejectedWith(undefined);
    assert.equal(code, "auth_missing", message);
  });
  test("no token", async () => {
    const { code, message } = await rejectedWith({ project_id: randomUUID() });
    assert.equal(code, "auth_missing", message);
  });
  test("empty token", async () => {
    const { code, message } = await rejectedWith({ token: "", project_id: randomUUID() });
    assert.equal(code, "auth_missing", message);
  });
  test("no project_id", async () => {
    const p = randomUUID();
    const { code, message } = await rejectedWith({ token: token({ projects: [p] }) });
    assert.equal(code, "auth_missing", message);
  });
  test("empty project_id", async () => {
    const p = randomUUID();
    const { code, message } = await rejectedWith({ token: token({ projects: [p] }), project_id: "" });
    assert.equal(code, "auth_missing", message);
  });
});

describe("invalid_project_id", () => {
  for (const bad of ["not-a-uuid", "1234", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", `${randomUUID()}x`]) {
    test(`project_id ${JSON.stringify(bad)}`, async () => {
      const { code, message } = await rejectedWith({ token: token({ projects: [bad] }), project_id: bad });
      assert.equal(code, "invalid_project_id", message);
    });
  }
});

describe("invalid_token", () => {
  const p = randomUUID();
  const cases = {
    "garbage string": () => "garbage",
    "three dots of garbage": () => "a.b.c",
    "two segments": () => token({ projects: [p] }).split(".").slice(0, 2).join("."),
    "signed with another secret": () => token({ projects: [p] }, { key: "not-the-secret-not-the-secret-xx" }),
    "tampered payload": () => {
      const [h, , s] = token({ projects: [p] }).split(".");
      const forged = Buffer.from(JSON.stringify(userClaims({ projects: [p], sub: "admin" }))).toString("base64url");
      return `${h}.${forged}.${s}`;
    },
    "payload not JSON": () => signJwt({ alg: "HS256", typ: "JWT" }, "this is not json", TEST_SECRET),
    "missing sub": () => token({ projects: [p], sub: undefined }),
    "missing sid": () => token({ projects: [p], sid: undefined }),
    "missing exp": () => token({ projects: [p], exp: undefined }),
    "sub not a string": () => signJwt({ alg: "HS256", typ: "JWT" }, userClaims({ projects: [p], sub: 12345 }), TEST_SECRET),
    "nbf in the future beyond leeway": () => token({ projects: [p], nbf: nowSec() + 600 }),
    "alg none": () => signJwt({ alg: "none", typ: "JWT" }, userClaims({ projects: [p] }), ""),
    "alg none with a valid HS256 signature appended": () => {
      const good = token({ projects: [p] });
      const [, payload, sig] = good.split(".");
      const header = Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url");
      return `${header}.${payload}.${sig}`;
    },
    "RS256 token on an HMAC-only node": () => {
      const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
      return token({ projects: [p] }, { alg: "RS256", key: privateKey });
    },
  };
  for (const [name, make] of Object.entries(cases)) {
    test(name, async () => {
      const { code, message } = await rejectedWith({ token: make(), project_id: p });
      assert.equal(code, "invalid_token", message);
    });
  }
});

describe("token_expired", () => {
  test("exp in the past beyond the 30 s leeway", async () => {
    const p = randomUUID();
    const { code, message } = await rejectedWith({ token: token({ projects: [p], exp: nowSec() - 120 }), project_id: p });
    assert.equal(code, "token_expired", message);
  });
  test("exp long ago", async () => {
    const p = randomUUID();
    const { code, message } = await rejectedWith({ token: token({ projects: [p], exp: nowSec() - 86400 * 30 }), project_id: p });
    assert.equal(code, "token_expired", message);
  });
});

describe("not_a_user_token", () => {
  for (const [name, value] of [
    ["token_use missing", undefined],
    ["token_use api_key", "api_key"],
    ["token_use project", "project"],
    ["token_use User (case differs)", "User"],
    ["token_use empty", ""],
  ]) {
    test(name, async () => {
      const p = randomUUID();
      const { code, message } = await rejectedWith({ token: token({ projects: [p], token_use: value }), project_id: p });
      assert.equal(code, "not_a_user_token", message);
    });
  }
});

describe("project_forbidden", () => {
  test("project not in projects", async () => {
    const p = randomUUID();
    const { code, message } = await rejectedWith({ token: token({ projects: [randomUUID(), randomUUID()] }), project_id: p });
    assert.equal(code, "project_forbidden", message);
  });
  test("empty projects", async () => {
    const p = randomUUID();
    const { code, message } = await rejectedWith({ token: token({ projects: [] }), project_id: p });
    assert.equal(code, "project_forbidden", message);
  });
});

describe("session_revoked", () => {
  test("a token whose sid was revoked is refused at the handshake", async () => {
    const p = randomUUID();
    const sid = randomUUID();
    const res = await gw.revoke(sid, "logout");
    assert.equal(res.status, 202, res.text);
    const { code, message } = await rejectedWith({ token: token({ projects: [p], sid }), project_id: p });
    assert.equal(code, "session_revoked", message);
  });
});

describe("a rejected handshake", () => {
  test("gets nothing but the connect_error", async () => {
    const p = randomUUID();
    const socket = connect(gw, { token: token({ projects: [p], exp: nowSec() - 3600 }), project_id: p });
    try {
      await expectConnectError(socket);
      await expectNothing(socket, "message", 300);
      assert.equal(socket.connected, false);
    } finally {
      socket.close();
    }
  });
  test("does not poison the node: a valid handshake right after succeeds", async () => {
    const p = randomUUID();
    await rejectedWith({ token: "garbage", project_id: p });
    const { socket, ready } = await openSession(gw, { project_id: p });
    assert.equal(ready.event, "ready");
    socket.close();
  });
});

describe("ready", () => {
  test("has exactly event, a UUID v4 connection_id and every enabled channel", async () => {
    const { socket, ready } = await openSession(gw);
    try {
      assert.deepEqual(Object.keys(ready).sort(), ["channels", "connection_id", "event"]);
      assert.equal(ready.event, "ready");
      assert.match(ready.connection_id, UUID_V4);
      assert.ok(Array.isArray(ready.channels));
      assert.deepEqual([...ready.channels].sort(), CHANNELS);
      assert.equal(socket.connected, true);
      await expectNothing(socket, "message", 200);
    } finally {
      socket.close();
    }
  });

  test("arrives once per connection, with a fresh connection_id each time", async () => {
    const p = randomUUID();
    const a = await openSession(gw, { project_id: p });
    const b = await openSession(gw, { project_id: p });
    try {
      assert.notEqual(a.ready.connection_id, b.ready.connection_id);
      await expectNothing(a.socket, "message", 200, (m) => m?.event === "ready");
    } finally {
      closeAll(a.socket, b.socket);
    }
  });

  test("a token with several projects opens a session for any of them", async () => {
    const p1 = randomUUID();
    const p2 = randomUUID();
    const s1 = await openSession(gw, { project_id: p1, claims: { projects: [p1, p2] } });
    const s2 = await openSession(gw, { project_id: p2, claims: { projects: [p1, p2] } });
    closeAll(s1.socket, s2.socket);
  });

  for (const alg of ["HS256", "HS384", "HS512"]) {
    test(`${alg} tokens are accepted by default`, async () => {
      const { ready, socket } = await openSession(gw, { tokenOpts: { alg } });
      assert.equal(ready.event, "ready");
      socket.close();
    });
  }

  test("exp just past, inside the 30 s leeway, is accepted", async () => {
    const { socket } = await openSession(gw, { claims: { exp: nowSec() - 10 } });
    socket.close();
  });

  test("nbf just ahead, inside the leeway, is accepted; nbf in the past is accepted", async () => {
    const a = await openSession(gw, { claims: { nbf: nowSec() + 10 } });
    const b = await openSession(gw, { claims: { nbf: nowSec() - 60 } });
    closeAll(a.socket, b.socket);
  });

  test("extra claims (iss, aud, iat, permissions) are tolerated when nothing is configured", async () => {
    const { socket } = await openSession(gw, {
      claims: { iss: "someone", aud: "something", iat: nowSec(), permissions: ["whatever"], name: "Ada" },
    });
    socket.close();
  });
});

describe("project ids are compared case-insensitively and sent in lower case", () => {
  test("handshake with an upper-case project_id, token listing it in lower case", async () => {
    const p = randomUUID();
    const { socket } = await openSession(gw, { project_id: p, authProjectId: p.toUpperCase() });
    try {
      const ack = await subscribe(socket, { channel: "targets" });
      assert.equal(ack.project_id, p);
    } finally {
      socket.close();
    }
  });
  test("token listing the project in upper case, handshake in lower case", async () => {
    const p = randomUUID();
    const { socket } = await openSession(gw, { project_id: p, claims: { projects: [p.toUpperCase()] } });
    try {
      const ack = await subscribe(socket, { channel: "targets" });
      assert.equal(ack.project_id, p);
    } finally {
      socket.close();
    }
  });
});

describe("connect events", () => {
  test("the client sees connect before ready, and the socket has an id", async () => {
    const p = randomUUID();
    const socket = connect(gw, { token: token({ projects: [p] }), project_id: p });
    try {
      await waitFor(socket, "connect");
      const ready = await waitFor(socket, "message", (m) => m?.event === "ready");
      assert.equal(ready.event, "ready");
      assert.ok(socket.id);
    } finally {
      socket.close();
    }
  });
});
