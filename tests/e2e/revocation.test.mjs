//! Session revocation (CONTRACT §1, §3): POST /api/v1/revoke sends `session.revoked {reason}`
//! to every socket of the sid, then a server-side disconnect; later handshakes with that
//! sid fail `session_revoked`; other sessions are untouched.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  closeAll,
  connect,
  errorCode,
  expectConnectError,
  expectNothing,
  mintToken,
  openSession,
  randomUUID,
  received,
  request,
  startGateway,
  subscribe,
  waitFor,
} from "./support/gateway.mjs";

let gw;
before(async () => {
  gw = await startGateway({}, { name: "revocation" });
});
after(async () => {
  await gw?.stop();
});

describe("live revocation", () => {
  test("every socket of the sid, in any project, gets session.revoked {reason} then a server disconnect", async () => {
    const sid = randomUUID();
    const A = randomUUID();
    const B = randomUUID();
    const claims = { sid, sub: "user-rev", projects: [A, B] };
    const a1 = await openSession(gw, { project_id: A, claims });
    const a2 = await openSession(gw, { project_id: A, claims });
    const b1 = await openSession(gw, { project_id: B, claims });
    const other = await openSession(gw, { project_id: A, claims: { sub: "user-rev", projects: [A] } }); // same user, another sid
    try {
      await subscribe(a1.socket, { channel: "targets" });
      const res = await gw.revoke(sid, "logout");
      assert.equal(res.status, 202, res.text);
      for (const s of [a1, a2, b1]) {
        const payload = await waitFor(s.socket, "session.revoked", () => true, 5000);
        assert.deepEqual(payload, { reason: "logout" });
        const reason = await waitFor(s.socket, "disconnect", () => true, 5000);
        assert.equal(reason, "io server disconnect");
        const entries = received(s.socket);
        const iRevoked = entries.findIndex((e) => e.event === "session.revoked");
        const iDisc = entries.findIndex((e) => e.event === "disconnect");
        assert.ok(iRevoked < iDisc, "session.revoked must arrive before the disconnect");
        assert.equal(entries.filter((e) => e.event === "session.revoked").length, 1, "exactly one session.revoked");
      }
      await expectNothing(other.socket, "session.revoked", 300);
      assert.equal((await request(other.socket, { action: "ping", timestamp: 1 })).event, "pong");
    } finally {
      closeAll(a1.socket, a2.socket, b1.socket, other.socket);
    }
  });

  test("the reason is passed through as given", async () => {
    const s = await openSession(gw);
    try {
      assert.equal((await gw.revoke(s.sid, "password_changed")).status, 202);
      assert.deepEqual(await waitFor(s.socket, "session.revoked"), { reason: "password_changed" });
      assert.equal(await waitFor(s.socket, "disconnect"), "io server disconnect");
    } finally {
      s.socket.close();
    }
  });

  test("a polling socket is revoked the same way", async () => {
    const s = await openSession(gw, { opts: { transports: ["polling"] } });
    try {
      assert.equal((await gw.revoke(s.sid, "logout")).status, 202);
      assert.deepEqual(await waitFor(s.socket, "session.revoked"), { reason: "logout" });
      assert.equal(await waitFor(s.socket, "disconnect"), "io server disconnect");
    } finally {
      s.socket.close();
    }
  });

  test("after a live revocation the same token cannot reconnect", async () => {
    const s = await openSession(gw);
    try {
      await gw.revoke(s.sid, "logout");
      await waitFor(s.socket, "disconnect");
      const again = connect(gw, { token: s.token, project_id: s.project_id });
      try {
        const msg = await expectConnectError(again);
        assert.equal(errorCode(msg), "session_revoked", msg);
      } finally {
        again.close();
      }
    } finally {
      s.socket.close();
    }
  });

  test("a new token with the same sid is refused; another sid of the same user is fine", async () => {
    const sid = randomUUID();
    const p = randomUUID();
    assert.equal((await gw.revoke(sid, "logout")).status, 202);
    const refused = connect(gw, { token: mintToken({ sid, sub: "u-1", projects: [p] }), project_id: p });
    try {
      assert.equal(errorCode(await expectConnectError(refused)), "session_revoked");
    } finally {
      refused.close();
    }
    const fine = await openSession(gw, { project_id: p, claims: { sub: "u-1" } });
    fine.socket.close();
  });

  test("revoking a sid with no socket answers 202", async () => {
    assert.equal((await gw.revoke(randomUUID(), "logout")).status, 202);
  });
});

describe("the revoke API itself", () => {
  test("without a bearer: 401 unauthorized, and nothing is revoked", async () => {
    const s = await openSession(gw);
    try {
      const res = await gw.revoke(s.sid, "logout", { key: null });
      assert.equal(res.status, 401, res.text);
      assert.equal(res.body?.error?.code, "unauthorized", res.text);
      const wrong = await gw.revoke(s.sid, "logout", { key: "wrong-key" });
      assert.equal(wrong.status, 401, wrong.text);
      await expectNothing(s.socket, "session.revoked", 300);
      assert.equal(s.socket.connected, true);
    } finally {
      s.socket.close();
    }
  });

  test("a body without sid is a 4xx", async () => {
    const res = await gw.http("POST", "/api/v1/revoke", {
      json: { reason: "logout" },
      headers: { authorization: `Bearer ${gw.publishKey}` },
    });
    assert.ok(res.status >= 400 && res.status < 500, `${res.status} ${res.text}`);
  });
});
