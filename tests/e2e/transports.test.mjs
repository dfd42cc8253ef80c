//! Transports (CONTRACT §1): HTTP long-polling alone, the default client's upgrade from
//! polling to websocket, the 4 KB inbound cap on the polling transport, and browser-sized request
//! headers (the node keeps only the transport's own headers per socket).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  closeAll,
  connect,
  connectPacketBytes,
  errorCode,
  expectConnectError,
  mintToken,
  mustPublish,
  openSession,
  paddedJsonMessage,
  randomUUID,
  received,
  request,
  startGateway,
  subscribe,
  userClaims,
  waitClosed,
  waitFor,
} from "./support/gateway.mjs";
import { assertBroadcast, newRequest, paymentMethodRemoved, paymentRequestUpdated, targetEvent } from "./support/fixtures.mjs";

let gw;
before(async () => {
  gw = await startGateway({}, { name: "transports" });
});
after(async () => {
  await gw?.stop();
});

const polling = { transports: ["polling"] };

describe("HTTP long-polling only", () => {
  test("gets ready, subscribes, receives an event and answers ping", async () => {
    const { socket, project_id, ready } = await openSession(gw, { opts: polling });
    try {
      assert.equal(socket.io.engine.transport.name, "polling");
      assert.equal(ready.channels.length, 3);
      await subscribe(socket, { channel: "targets" });
      const pub = targetEvent("target.added", project_id);
      const since = Date.now();
      const answeredId = await mustPublish(gw, pub);
      assertBroadcast(await waitFor(socket, "target.added"), pub, { since, answeredId });
      assert.equal((await request(socket, { action: "ping", timestamp: 11 })).received_timestamp, 11);
    } finally {
      socket.close();
    }
  });

  test("a polling and a websocket client of the same project both get the event", async () => {
    const project_id = randomUUID();
    const req = newRequest();
    const p = await openSession(gw, { project_id, opts: polling });
    const w = await openSession(gw, { project_id });
    try {
      await subscribe(p.socket, { channel: "payment-requests", payment_request_id: req.payment_request_id });
      await subscribe(w.socket, { channel: "payment-requests", provider_payment_id: req.provider_payment_id });
      await mustPublish(gw, paymentRequestUpdated(project_id, req));
      const [a, b] = await Promise.all([waitFor(p.socket, "payment-request.updated"), waitFor(w.socket, "payment-request.updated")]);
      assert.equal(a.event_id, b.event_id);
    } finally {
      closeAll(p.socket, w.socket);
    }
  });

  test("several events in a row all arrive, in order", async () => {
    const { socket, project_id } = await openSession(gw, { opts: polling });
    try {
      await subscribe(socket, { channel: "targets" });
      const pubs = Array.from({ length: 10 }, (_, i) => targetEvent("target.updated", project_id, { seq: i }));
      for (const pub of pubs) await mustPublish(gw, pub);
      for (let i = 0; i < pubs.length; i++) {
        const got = await waitFor(socket, "target.updated");
        assert.equal(got.seq, i);
      }
    } finally {
      socket.close();
    }
  });

  test("a handshake error reaches a polling client as connect_error", async () => {
    const p = randomUUID();
    const socket = connect(gw, { token: mintToken({ projects: [randomUUID()] }), project_id: p }, polling);
    try {
      assert.equal(errorCode(await expectConnectError(socket)), "project_forbidden");
    } finally {
      socket.close();
    }
  });
});

describe("upgrade from polling to websocket", () => {
  test("the default client (polling first) upgrades, then still gets events and replies", async () => {
    const project_id = randomUUID();
    const token = mintToken({ projects: [project_id] });
    const socket = connect(gw, { token, project_id }, { transports: ["polling", "websocket"], upgrade: true });
    const upgraded = new Promise((resolve) => socket.io.engine.once("upgrade", (t) => resolve(t.name)));
    try {
      await waitFor(socket, "message", (m) => m?.event === "ready");
      const name = await Promise.race([upgraded, new Promise((_, rej) => setTimeout(() => rej(new Error("no upgrade within 5 s")), 5000))]);
      assert.equal(name, "websocket");
      assert.equal(socket.io.engine.transport.name, "websocket");
      await subscribe(socket, { channel: "targets" });
      await mustPublish(gw, targetEvent("target.disabled", project_id));
      await waitFor(socket, "target.disabled");
      assert.equal((await request(socket, { action: "ping", timestamp: 12 })).received_timestamp, 12);
    } finally {
      socket.close();
    }
  });

  test("subscriptions made before the upgrade survive it", async () => {
    const project_id = randomUUID();
    const token = mintToken({ projects: [project_id] });
    const socket = connect(gw, { token, project_id }, { transports: ["polling", "websocket"] });
    const upgraded = new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
    try {
      await waitFor(socket, "message", (m) => m?.event === "ready");
      socket.send({ action: "subscribe", channel: "payment-methods" });
      await Promise.race([upgraded, new Promise((_, rej) => setTimeout(() => rej(new Error("no upgrade within 5 s")), 5000))]);
      await waitFor(socket, "message", (m) => m?.event === "subscribed");
      await mustPublish(gw, paymentMethodRemoved(project_id));
      await waitFor(socket, "payment-method.removed");
    } finally {
      socket.close();
    }
  });
});

describe("4 KB cap on polling", () => {
  test("a message just under the cap is answered", async () => {
    const { socket } = await openSession(gw, { opts: polling });
    try {
      const pong = await request(socket, paddedJsonMessage({ action: "ping", timestamp: 8 }, 4000));
      assert.equal(pong.received_timestamp, 8);
    } finally {
      socket.close();
    }
  });

  test("a message over the cap closes the connection; the node still serves", async () => {
    const { socket } = await openSession(gw, { opts: polling });
    try {
      socket.send(paddedJsonMessage({ action: "ping", timestamp: 8 }, 4096 + 300));
      const closed = await waitClosed(socket, 8000);
      assert.equal(closed.event, "disconnect");
      assert.ok(!socket.connected);
    } finally {
      socket.close();
    }
    const again = await openSession(gw, { opts: polling });
    again.socket.close();
  });

  test("a CONNECT over the cap never gets ready", async () => {
    const project_id = randomUUID();
    const auth = { token: mintToken(userClaims({ projects: [project_id], pad: "x".repeat(4096) })), project_id };
    assert.ok(connectPacketBytes(auth) > 4096);
    const socket = connect(gw, auth, polling);
    try {
      const closed = await waitClosed(socket, 8000);
      assert.ok(["disconnect", "connect_error"].includes(closed.event));
      assert.ok(!socket.connected);
      assert.ok(!received(socket).some((e) => e.event === "message" && e.args[0]?.event === "ready"), "no ready may be sent");
    } finally {
      socket.close();
    }
  });
});

describe("browser-sized request headers", () => {
  // A browser sends its cookies, user agent and languages with every Socket.IO request; the node
  // drops them before the transport keeps the request (server.rs, own_request_parts). Nothing a
  // client relies on may change.
  const headers = {
    cookie: `analytics=${"a".repeat(2500)}; session=${"s".repeat(500)}`,
    "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36",
    "accept-language": "en-GB,en;q=0.9,fr;q=0.8",
  };
  for (const transports of [["websocket"], ["polling"], ["polling", "websocket"]]) {
    test(`${transports.join(" then ")}: ready, subscribed, an event`, async () => {
      const { socket, project_id } = await openSession(gw, { opts: { transports, extraHeaders: headers } });
      try {
        await subscribe(socket, { channel: "targets" });
        const pub = targetEvent("target.added", project_id);
        const since = Date.now();
        const answeredId = await mustPublish(gw, pub);
        assertBroadcast(await waitFor(socket, "target.added"), pub, { since, answeredId });
      } finally {
        socket.close();
      }
    });
  }
});
