//! The chat namespace on the Redis engine (issue 7): two nodes on one redis-server. The
//! membership registry is the Redis set `{prefix}:chat-members:{project_id}:{channel_id}`,
//! written by the publisher library (the `livegate-publish` CLI, or a node's publish API) before
//! it publishes; chat publications fan out to every node once; client typing crosses nodes;
//! a ban ends the user's channel subscription on every node.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { closeAll, expectNothing, mustPublish, randomUUID, request, startGateway, waitFor } from "./support/gateway.mjs";
import { pollUntil, publish, startRedis } from "./support/redis.mjs";
import {
  assertChatEvent,
  chatEvent,
  chatSubscribe,
  chatUser,
  expectForbidden,
  expectNone,
  openChat,
  sendTyping,
  withoutUserId,
} from "./support/chat.mjs";

const PREFIX = `lg-chat-${randomUUID().slice(0, 8)}`;
let redis;
let n1;
let n2;

before(async () => {
  redis = await startRedis();
  const env = { LIVEGATE_ENGINE: "redis", LIVEGATE_REDIS_URL: redis.url, LIVEGATE_REDIS_PREFIX: PREFIX, LIVEGATE_UNSUBSCRIBE_GRACE: "500ms" };
  [n1, n2] = await Promise.all([startGateway(env, { name: "chat-redis-1" }), startGateway(env, { name: "chat-redis-2" })]);
  for (const gw of [n1, n2]) {
    await pollUntil(async () => (await gw.http("GET", "/readyz")).status === 200, { deadlineMs: 10000, intervalMs: 100, what: `${gw.name} ready` });
  }
});
after(async () => {
  await Promise.all([n1?.stop(), n2?.stop()]);
  await redis?.stop();
});

const membersKey = (project_id, channel_id) => `${PREFIX}:chat-members:${project_id}:${channel_id}`;
const isMember = async (project_id, channel_id, user) => (await redis.cli("SISMEMBER", membersKey(project_id, channel_id), user)) === "1";
/** Publish through the publisher CLI (registry first, then PUBLISH); resolves the event_id. */
const cliPublish = (pub) => publish(redis, PREFIX, pub.project_id, pub);

describe("the membership registry in Redis", () => {
  test("the publisher CLI keeps {prefix}:chat-members:{project_id}:{channel_id} from member_joined / member_left / user_kicked / user_banned / channel_deleted", async () => {
    const P = randomUUID();
    const C = randomUUID();
    const [u1, u2, u3] = ["u-1", "u-2", "auth0|u:3"];
    for (const u of [u1, u2, u3]) await cliPublish(chatEvent("member_joined", P, { channel_id: C, user_id: u }));
    assert.deepEqual((await redis.cli("SMEMBERS", membersKey(P, C))).split("\n").sort(), [u1, u2, u3].sort());
    await cliPublish(chatEvent("member_left", P, { channel_id: C, user_id: u1 }));
    assert.equal(await isMember(P, C, u1), false);
    await cliPublish(chatEvent("user_kicked", P, { channel_id: C, user_id: u2 }));
    assert.equal(await isMember(P, C, u2), false);
    await cliPublish(chatEvent("user_unbanned", P, { channel_id: C, user_id: u2 }));
    assert.equal(await isMember(P, C, u2), false, "user_unbanned does not re-add");
    await cliPublish(chatEvent("user_banned", P, { channel_id: C, user_id: u3 }));
    assert.equal(await isMember(P, C, u3), false);
    await cliPublish(chatEvent("member_joined", P, { channel_id: C, user_id: u1 }));
    await cliPublish(chatEvent("channel_deleted", P, { channel_id: C }));
    assert.equal(await redis.cli("EXISTS", membersKey(P, C)), "0", "channel_deleted removes the set");
  });

  test("a node's publish API writes the same set; either node then authorizes from it", async () => {
    const P = randomUUID();
    const C = randomUUID();
    const a = await openChat(n1, { project_id: P });
    const b = await openChat(n2, { project_id: P });
    try {
      await expectForbidden(a.socket, `channel:${C}`);
      await mustPublish(n2, chatEvent("member_joined", P, { channel_id: C, user_id: a.sub }));
      assert.equal(await isMember(P, C, a.sub), true);
      await chatSubscribe(a.socket, `channel:${C}`, P);
      await expectForbidden(b.socket, `channel:${C}`);
    } finally {
      closeAll(a.socket, b.socket);
    }
  });

  test("a set written by hand (SADD) grants; a raw PUBLISH of member_joined is delivered but grants nothing", async () => {
    const P = randomUUID();
    const C = randomUUID();
    const a = await openChat(n1, { project_id: P });
    const b = await openChat(n2, { project_id: P });
    try {
      await redis.cli("SADD", membersKey(P, C), a.sub);
      await chatSubscribe(a.socket, `channel:${C}`, P);
      const raw = chatEvent("member_joined", P, { channel_id: C, user_id: b.sub }, { event_id: randomUUID() });
      const since = Date.now();
      await publish(redis, PREFIX, P, raw, { raw: true });
      assertChatEvent(await waitFor(a.socket, "member_joined"), { pub: raw, since });
      assert.equal(await isMember(P, C, b.sub), false);
      await expectForbidden(b.socket, `channel:${C}`);
    } finally {
      closeAll(a.socket, b.socket);
    }
  });
});

describe("project isolation on the bus", () => {
  test("a chat publication on another project's Redis channel is dropped, not delivered to either project", async () => {
    const P = randomUUID();
    const Q = randomUUID();
    const C = randomUUID();
    const inP = await chatUser(n1, { project_id: P, member: [C], channels: [`channel:${C}`, "global"] });
    const inQ = await chatUser(n2, { project_id: Q, member: [C], channels: [`channel:${C}`, "global"] });
    try {
      // Q's publication sent on P's channel
      await publish(redis, PREFIX, P, chatEvent("channel_message", Q, { channel_id: C }), { raw: true });
      await publish(redis, PREFIX, P, chatEvent("channel_created", Q), { raw: true });
      // a valid one after it, on P's channel, is delivered
      const ok = chatEvent("channel_message", P, { channel_id: C, content: "valid" });
      await cliPublish(ok);
      const got = await waitFor(inP.socket, "channel_message");
      assert.equal(got.data.content, "valid", JSON.stringify(got));
      await expectNone([inP.socket, inQ.socket], ["channel_message", "channel_created"], 300);
    } finally {
      closeAll(inP.socket, inQ.socket);
    }
  });
});

describe("fan-out across nodes", () => {
  test("publications reach subscribers on both nodes once, with one event_id; typing crosses nodes", async () => {
    const P = randomUUID();
    const C = randomUUID();
    const X = `user-x-${randomUUID().slice(0, 8)}`;
    const on1 = await chatUser(n1, { project_id: P, member: [C], channels: [`channel:${C}`, "global"] });
    const on2 = await chatUser(n2, { project_id: P, member: [C], channels: [`channel:${C}`, "global"] });
    const x2 = await chatUser(n2, { project_id: P, sub: X, channels: [`user:${X}`] });
    const sockets = [on1.socket, on2.socket, x2.socket];
    try {
      const msg = chatEvent("channel_message", P, { channel_id: C });
      const since = Date.now();
      const event_id = await cliPublish(msg);
      for (const s of [on1, on2]) assertChatEvent(await waitFor(s.socket, "channel_message"), { pub: msg, since, answeredId: event_id });

      const created = chatEvent("channel_created", P);
      const createdId = await cliPublish(created);
      for (const s of [on1, on2]) assertChatEvent(await waitFor(s.socket, "channel_created"), { pub: created, answeredId: createdId });

      const unban = chatEvent("user_unbanned", P, { channel_id: C, user_id: X });
      const unbanId = await mustPublish(n1, unban);
      assertChatEvent(await waitFor(x2.socket, "user_unbanned"), { pub: unban, data: withoutUserId(unban.data), answeredId: unbanId });
      for (const s of [on1, on2]) assertChatEvent(await waitFor(s.socket, "user_unbanned"), { pub: unban, answeredId: unbanId });

      // typing on node 1 reaches node 2, not the sender
      sendTyping(on1.socket, C, true);
      const typing = await waitFor(on2.socket, "user_typing");
      assert.deepEqual(typing.data, { channel_id: C, user_id: on1.sub, username: on1.sub, is_typing: true });
      await expectNone(sockets, ["channel_message", "channel_created", "user_unbanned", "user_typing"], 300);
    } finally {
      closeAll(sockets);
    }
  });

  test("a ban ends the user's channel subscription on every node", async () => {
    const P = randomUUID();
    const C = randomUUID();
    const X = `user-x-${randomUUID().slice(0, 8)}`;
    const x1 = await chatUser(n1, { project_id: P, sub: X, member: [C], channels: [`channel:${C}`] });
    const x2 = await openChat(n2, { project_id: P, sub: X });
    await chatSubscribe(x2.socket, `channel:${C}`, P);
    const w = await chatUser(n2, { project_id: P, member: [C], channels: [`channel:${C}`] });
    const sockets = [x1.socket, x2.socket, w.socket];
    try {
      await cliPublish(chatEvent("user_banned", P, { channel_id: C, user_id: X }));
      for (const s of sockets) await waitFor(s, "user_banned");
      await cliPublish(chatEvent("channel_message", P, { channel_id: C }));
      await waitFor(w.socket, "channel_message");
      await expectNone([x1.socket, x2.socket], "channel_message", 300);
      await expectForbidden(x1.socket, `channel:${C}`);
      assert.equal((await request(x2.socket, { action: "ping" })).event, "pong");
      await expectNothing(x2.socket, "message", 0);
    } finally {
      closeAll(sockets);
    }
  });
});
