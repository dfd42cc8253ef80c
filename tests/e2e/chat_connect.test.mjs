//! The chat namespace (issue 7): its handshake (same auth and connect_error codes as
//! CONTRACT §1), its `ready`, `ping`, and the live-updates namespace working alongside it
//! with the same token (separate connections and one multiplexed connection).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  UUID_V4,
  closeAll,
  connect,
  errorCode,
  expectConnectError,
  expectNothing,
  mintToken,
  mustPublish,
  nowSec,
  randomUUID,
  request,
  startGateway,
  subscribe,
  userClaims,
  waitClosed,
  waitFor,
} from "./support/gateway.mjs";
import { ABSENT, assertError } from "./support/assertions.mjs";
import { targetEvent } from "./support/fixtures.mjs";
import {
  assertChatEvent,
  chatEvent,
  chatSubscribe,
  connectChat,
  expectNone,
  join,
  openChat,
  publishChat,
  readyChannels,
} from "./support/chat.mjs";

let gw;
before(async () => {
  gw = await startGateway({}, { name: "chat-connect" });
});
after(async () => {
  await gw?.stop();
});

async function chatRejected(auth) {
  const socket = connectChat(gw, auth);
  try {
    const message = await expectConnectError(socket);
    return { code: errorCode(message), message };
  } finally {
    socket.close();
  }
}

describe("handshake on /chat", { concurrency: true }, () => {
  test("auth_missing: no token", async () => {
    const { code, message } = await chatRejected({ project_id: randomUUID() });
    assert.equal(code, "auth_missing", message);
  });
  test("auth_missing: no auth at all", async () => {
    const { code, message } = await chatRejected(undefined);
    assert.equal(code, "auth_missing", message);
  });
  test("invalid_project_id", async () => {
    const { code, message } = await chatRejected({ token: mintToken({ projects: [randomUUID()] }), project_id: "acme" });
    assert.equal(code, "invalid_project_id", message);
  });
  test("invalid_token: bad signature", async () => {
    const project_id = randomUUID();
    const { code, message } = await chatRejected({ token: mintToken({ projects: [project_id] }, { key: "another-secret-0123456789abcdef" }), project_id });
    assert.equal(code, "invalid_token", message);
  });
  test("token_expired", async () => {
    const project_id = randomUUID();
    const { code, message } = await chatRejected({ token: mintToken({ projects: [project_id], exp: nowSec() - 3600 }), project_id });
    assert.equal(code, "token_expired", message);
  });
  test("not_a_user_token", async () => {
    const project_id = randomUUID();
    const { code, message } = await chatRejected({ token: mintToken({ projects: [project_id], token_use: "api_key" }), project_id });
    assert.equal(code, "not_a_user_token", message);
  });
  test("project_forbidden", async () => {
    const { code, message } = await chatRejected({ token: mintToken({ projects: [randomUUID()] }), project_id: randomUUID() });
    assert.equal(code, "project_forbidden", message);
  });
  test("session_revoked", async () => {
    const project_id = randomUUID();
    const claims = userClaims({ projects: [project_id] });
    assert.equal((await gw.revoke(claims.sid, "logout")).status, 202);
    const { code, message } = await chatRejected({ token: mintToken(claims), project_id });
    assert.equal(code, "session_revoked", message);
  });
});

describe("ready on /chat", { concurrency: true }, () => {
  test("ready is exactly {event, connection_id (UUID v4), channels: [global, channel:{channel_id}, user:<sub>]}", async () => {
    const { socket, ready, sub } = await openChat(gw, { sub: "user_42" });
    try {
      assert.deepEqual(Object.keys(ready).sort(), ["channels", "connection_id", "event"], JSON.stringify(ready));
      assert.equal(ready.event, "ready");
      assert.match(ready.connection_id, UUID_V4);
      assert.deepEqual(ready.channels, readyChannels(sub));
      await expectNothing(socket, "message", 200, (m) => m?.event === "ready");
    } finally {
      socket.close();
    }
  });

  test("the user pattern names the token's own sub, whatever characters it holds", async () => {
    const sub = "auth0|5f:7c 9e";
    const { socket, ready } = await openChat(gw, { sub });
    try {
      assert.deepEqual(ready.channels, readyChannels(sub));
    } finally {
      socket.close();
    }
  });

  test("each connection gets its own connection_id", async () => {
    const a = await openChat(gw);
    const b = await openChat(gw, { project_id: a.project_id });
    try {
      assert.notEqual(a.ready.connection_id, b.ready.connection_id);
    } finally {
      closeAll(a.socket, b.socket);
    }
  });

  test("a project_id in upper case is accepted; acks carry it in lower case", async () => {
    const project_id = randomUUID();
    const { socket } = await openChat(gw, { project_id, authProjectId: project_id.toUpperCase() });
    try {
      assert.deepEqual(await request(socket, { action: "subscribe", channel: "global" }), {
        event: "subscribed",
        channel: "global",
        project_id,
      });
    } finally {
      socket.close();
    }
  });

  test("long-polling works on /chat too", async () => {
    const { socket, ready, project_id } = await openChat(gw, { opts: { transports: ["polling"] } });
    try {
      assert.equal(ready.event, "ready");
      await chatSubscribe(socket, "global", project_id);
      const { pub, event_id, since } = await publishChat(gw, chatEvent("channel_created", project_id));
      assertChatEvent(await waitFor(socket, "channel_created"), { pub, since, answeredId: event_id });
    } finally {
      socket.close();
    }
  });
});

describe("ping on /chat", { concurrency: true }, () => {
  test("pong echoes the timestamp and stamps the server time", async () => {
    const { socket } = await openChat(gw);
    try {
      const t0 = Date.now();
      const pong = await request(socket, { action: "ping", timestamp: 1700000000000 });
      assert.deepEqual(Object.keys(pong).sort(), ["event", "received_timestamp", "timestamp"]);
      assert.equal(pong.event, "pong");
      assert.equal(pong.received_timestamp, 1700000000000);
      assert.ok(Number.isInteger(pong.timestamp) && pong.timestamp >= t0 - 1000 && pong.timestamp <= Date.now() + 1000, JSON.stringify(pong));
    } finally {
      socket.close();
    }
  });
  test("without a timestamp: received_timestamp null", async () => {
    const { socket } = await openChat(gw);
    try {
      const pong = await request(socket, JSON.stringify({ action: "ping" }));
      assert.equal(pong.event, "pong");
      assert.equal(pong.received_timestamp, null);
    } finally {
      socket.close();
    }
  });
  test("a timestamp that is not an integer: invalid_payload without meta.channel", async () => {
    const { socket } = await openChat(gw);
    try {
      assertError(await request(socket, { action: "ping", timestamp: "soon" }), "invalid_payload", { channel: ABSENT, action: ABSENT });
    } finally {
      socket.close();
    }
  });
});

describe("the live-updates namespace works alongside /chat", () => {
  test("same token: a /v2/live-updates socket and a /chat socket each get their own events only", async () => {
    const project_id = randomUUID();
    const channel_id = randomUUID();
    const claims = userClaims({ projects: [project_id] });
    const token = mintToken(claims);
    const live = connect(gw, { token, project_id });
    const chat = connectChat(gw, { token, project_id });
    try {
      const liveReady = await waitFor(live, "message", (m) => m?.event === "ready");
      const chatReady = await waitFor(chat, "message", (m) => m?.event === "ready");
      assert.ok(liveReady.channels.includes("targets"), JSON.stringify(liveReady));
      assert.ok(!liveReady.channels.includes("global"), `the live ready must not list chat channels: ${JSON.stringify(liveReady)}`);
      assert.deepEqual(chatReady.channels, readyChannels(claims.sub));
      assert.notEqual(liveReady.connection_id, chatReady.connection_id);

      await subscribe(live, { channel: "targets" });
      await chatSubscribe(chat, "global", project_id);
      await join(gw, project_id, channel_id, claims.sub);
      await chatSubscribe(chat, `channel:${channel_id}`, project_id);

      // each namespace refuses the other's channels
      assertError(await request(chat, { action: "subscribe", channel: "targets" }), "unsupported_channel", { channel: "targets", action: "subscribe" });
      assertError(await request(live, { action: "subscribe", channel: "global" }), "unsupported_channel", { channel: "global", action: "subscribe" });

      const target = targetEvent("target.added", project_id);
      await mustPublish(gw, target);
      const created = await publishChat(gw, chatEvent("channel_created", project_id));
      const message = await publishChat(gw, chatEvent("channel_message", project_id, { channel_id, user_id: claims.sub }));

      const got = await waitFor(live, "target.added");
      assert.equal(got.target.target_id, target.target.target_id);
      assertChatEvent(await waitFor(chat, "channel_created"), { pub: created.pub, since: created.since, answeredId: created.event_id });
      assertChatEvent(await waitFor(chat, "channel_message"), { pub: message.pub, since: message.since, answeredId: message.event_id });
      await Promise.all([expectNone(live, ["channel_created", "channel_message"]), expectNone(chat, ["target.added"])]);
    } finally {
      closeAll(live, chat);
    }
  });

  test("both namespaces multiplexed on one Engine.IO connection (one Manager)", async () => {
    const project_id = randomUUID();
    const claims = userClaims({ projects: [project_id] });
    const token = mintToken(claims);
    // forceNew: false lets socket.io-client reuse one Manager for both namespaces.
    const live = connect(gw, { token, project_id }, { forceNew: false });
    const chat = connectChat(gw, { token, project_id }, { forceNew: false });
    try {
      assert.equal(live.io, chat.io, "both sockets must share one Manager");
      await waitFor(live, "message", (m) => m?.event === "ready");
      await waitFor(chat, "message", (m) => m?.event === "ready");
      await subscribe(live, { channel: "targets" });
      await chatSubscribe(chat, "global", project_id);
      await mustPublish(gw, targetEvent("target.updated", project_id));
      const created = await publishChat(gw, chatEvent("channel_created", project_id));
      await waitFor(live, "target.updated");
      assertChatEvent(await waitFor(chat, "channel_created"), { pub: created.pub, since: created.since, answeredId: created.event_id });
      // closing one namespace leaves the other working
      chat.close();
      const pong = await request(live, { action: "ping", timestamp: 7 });
      assert.equal(pong.received_timestamp, 7);
      await expectNone(live, ["channel_created"], 100);
    } finally {
      closeAll(live, chat);
      live.io.engine?.close();
    }
  });

  test("a revoked session loses its /chat socket as well as its live one", async () => {
    const project_id = randomUUID();
    const claims = userClaims({ projects: [project_id] });
    const token = mintToken(claims);
    const live = connect(gw, { token, project_id });
    const chat = connectChat(gw, { token, project_id });
    try {
      await waitFor(live, "message", (m) => m?.event === "ready");
      await waitFor(chat, "message", (m) => m?.event === "ready");
      assert.equal((await gw.revoke(claims.sid, "logout")).status, 202);
      assert.deepEqual(await waitFor(live, "session.revoked"), { reason: "logout" });
      assert.deepEqual(await waitFor(chat, "session.revoked"), { reason: "logout" });
      assert.equal((await waitClosed(chat)).reason, "io server disconnect");
      assert.equal((await waitClosed(live)).reason, "io server disconnect");
    } finally {
      closeAll(live, chat);
    }
  });
});
