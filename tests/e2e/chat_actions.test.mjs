//! Actions on /chat (issue 7, CONTRACT §2 reused): acks, bad frames and their error shapes,
//! idempotence and order, the subscription limit, and every authorization rule: `global` for
//! all, `user:` only for the token's own sub, `channel:` only for members, with membership
//! kept from member_joined / member_left / user_kicked / user_banned / channel_deleted
//! publications (user_unbanned does not re-grant), per channel and per project.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { closeAll, expectNothing, mustPublish, nextMessage, randomUUID, request, startGateway, waitFor } from "./support/gateway.mjs";
import { ABSENT, assertError } from "./support/assertions.mjs";
import {
  assertChatAck,
  assertChatEvent,
  chatEvent,
  chatSubscribe,
  chatUser,
  expectForbidden,
  join,
  openChat,
  publishChat,
} from "./support/chat.mjs";

let gw;
let limited;
const LIMIT = 2;
before(async () => {
  [gw, limited] = await Promise.all([
    startGateway({}, { name: "chat-actions" }),
    startGateway({ LIVEGATE_MAX_SUBSCRIPTIONS: String(LIMIT) }, { name: "chat-actions-limit" }),
  ]);
});
after(async () => {
  await Promise.all([gw?.stop(), limited?.stop()]);
});

/** Run `fn(session)` with a fresh chat session on `gw`, closing it afterwards. */
async function withChat(fn, opts = {}) {
  const s = await openChat(opts.gateway ?? gw, opts);
  try {
    return await fn(s);
  } finally {
    s.socket.close();
  }
}

describe("acks", { concurrency: true }, () => {
  test("global: subscribed / unsubscribed are exactly {event, channel, project_id}", () =>
    withChat(async ({ socket, project_id }) => {
      assertChatAck(await request(socket, { action: "subscribe", channel: "global" }), "subscribed", "global", project_id);
      assertChatAck(await request(socket, { action: "unsubscribe", channel: "global" }), "unsubscribed", "global", project_id);
    }));

  test("an action sent as a string holding JSON", () =>
    withChat(async ({ socket, project_id }) => {
      assertChatAck(await request(socket, JSON.stringify({ action: "subscribe", channel: "global" })), "subscribed", "global", project_id);
    }));

  test("unknown extra fields are ignored", () =>
    withChat(async ({ socket, project_id }) => {
      assertChatAck(await request(socket, { action: "subscribe", channel: "global", request_id: "r-1" }), "subscribed", "global", project_id);
    }));

  test("a channel id in upper case is the member's channel, echoed exactly as sent", () =>
    withChat(async ({ socket, project_id, sub }) => {
      const channel_id = randomUUID();
      await join(gw, project_id, channel_id, sub);
      const channel = `channel:${channel_id.toUpperCase()}`;
      assertChatAck(await request(socket, { action: "subscribe", channel }), "subscribed", channel, project_id);
      const { pub, since, event_id } = await publishChat(gw, chatEvent("channel_message", project_id, { channel_id }));
      assertChatEvent(await waitFor(socket, "channel_message"), { pub, since, answeredId: event_id });
    }));
});

describe("bad frames before the channel is known: invalid_payload without meta.channel / meta.action", { concurrency: true }, () => {
  const cases = [
    ["a frame that is not JSON", "this is {not json", [{ field: "", message: "not valid JSON" }]],
    ["a number", 42],
    ["null", null],
    ["an array", [{ action: "subscribe", channel: "global" }]],
    ["a string holding a JSON array", JSON.stringify([1, 2])],
    ["an empty object", {}, undefined, "action"],
    ["action missing", { channel: "global" }, undefined, "action"],
    ["action a number", { action: 5, channel: "global" }, undefined, "action"],
    ["action null", { action: null, channel: "global" }, undefined, "action"],
    ["subscribe without channel", { action: "subscribe" }, undefined, "channel"],
    ["unsubscribe without channel", { action: "unsubscribe" }, undefined, "channel"],
    ["subscribe with a numeric channel", { action: "subscribe", channel: 7 }, undefined, "channel"],
    ["subscribe with an object channel", { action: "subscribe", channel: { id: "global" } }, undefined, "channel"],
  ];
  for (const [name, frame, errors, field] of cases) {
    test(name, () =>
      withChat(async ({ socket }) => {
        const reply = await request(socket, frame);
        assertError(reply, "invalid_payload", { channel: ABSENT, action: ABSENT, errors });
        if (field) assert.ok(reply.meta.errors.some((e) => e.field.includes(field)), `an error must name ${field}: ${JSON.stringify(reply)}`);
        assert.equal((await request(socket, { action: "ping" })).event, "pong", "the socket must stay usable");
      }));
  }
});

describe("malformed channel keys: invalid_payload with meta.channel, meta.action and an error on `channel`", { concurrency: true }, () => {
  for (const action of ["subscribe", "unsubscribe"]) {
    for (const channel of ["channel:not-a-uuid", "channel:", "channel:12345", "user:"]) {
      test(`${action} ${JSON.stringify(channel)}`, () =>
        withChat(async ({ socket }) => {
          const reply = await request(socket, { action, channel });
          assertError(reply, "invalid_payload", { channel, action });
          assert.ok(reply.meta.errors.some((e) => e.field === "channel"), `an error must name the channel field: ${JSON.stringify(reply)}`);
        }));
    }
  }
});

describe("unsupported_channel and unsupported_action", { concurrency: true }, () => {
  for (const action of ["subscribe", "unsubscribe"]) {
    for (const channel of ["room:1", "targets", "payment-requests", "chat"]) {
      test(`${action} ${channel}: unsupported_channel`, () =>
        withChat(async ({ socket }) => {
          assertError(await request(socket, { action, channel }), "unsupported_channel", { channel, action });
        }));
    }
  }
  test("an unknown action: unsupported_action with meta.channel and meta.action", () =>
    withChat(async ({ socket }) => {
      assertError(await request(socket, { action: "dance", channel: "global" }), "unsupported_action", { channel: "global", action: "dance" });
    }));
  test("publish is not a client action", () =>
    withChat(async ({ socket }) => {
      assertError(await request(socket, { action: "publish", channel: "global" }), "unsupported_action", { channel: "global", action: "publish" });
    }));
});

describe("idempotence and order", { concurrency: true }, () => {
  test("subscribing twice answers subscribed twice and delivers one copy", () =>
    withChat(async ({ socket, project_id }) => {
      for (let i = 0; i < 2; i++) assertChatAck(await request(socket, { action: "subscribe", channel: "global" }), "subscribed", "global", project_id);
      const { pub, since, event_id } = await publishChat(gw, chatEvent("channel_created", project_id));
      assertChatEvent(await waitFor(socket, "channel_created"), { pub, since, answeredId: event_id });
      await expectNothing(socket, "channel_created", 300);
    }));

  test("unsubscribing a key never held answers unsubscribed (global, own user, a channel)", () =>
    withChat(async ({ socket, project_id, sub }) => {
      for (const channel of ["global", `user:${sub}`, `channel:${randomUUID()}`]) {
        assertChatAck(await request(socket, { action: "unsubscribe", channel }), "unsubscribed", channel, project_id);
      }
    }));

  test("unsubscribing twice answers unsubscribed twice; delivery stops", () =>
    withChat(async ({ socket, project_id, sub }) => {
      const channel_id = randomUUID();
      await join(gw, project_id, channel_id, sub);
      const channel = `channel:${channel_id}`;
      await chatSubscribe(socket, channel, project_id);
      const witness = await chatUser(gw, { project_id, member: [channel_id], channels: [channel] });
      try {
        for (let i = 0; i < 2; i++) assertChatAck(await request(socket, { action: "unsubscribe", channel }), "unsubscribed", channel, project_id);
        await publishChat(gw, chatEvent("channel_message", project_id, { channel_id }));
        await waitFor(witness.socket, "channel_message");
        await expectNothing(socket, "channel_message", 300);
      } finally {
        witness.socket.close();
      }
    }));

  test("subscribe and unsubscribe back to back: answered in order, ends unsubscribed", () =>
    withChat(async ({ socket, project_id }) => {
      const witness = await chatUser(gw, { project_id, channels: ["global"] });
      try {
        socket.send({ action: "subscribe", channel: "global" });
        socket.send({ action: "unsubscribe", channel: "global" });
        assertChatAck(await nextMessage(socket), "subscribed", "global", project_id);
        assertChatAck(await nextMessage(socket), "unsubscribed", "global", project_id);
        await publishChat(gw, chatEvent("channel_created", project_id));
        await waitFor(witness.socket, "channel_created");
        await expectNothing(socket, "channel_created", 300);
      } finally {
        witness.socket.close();
      }
    }));

  test("replies to mixed valid and invalid actions keep their order", () =>
    withChat(async ({ socket, sub }) => {
      const frames = [
        { action: "ping", timestamp: 1 },
        "nope",
        { action: "subscribe", channel: "global" },
        { action: "subscribe", channel: `user:${sub}-someone-else` },
        { action: "subscribe", channel: "room:1" },
        { action: "dance", channel: "global" },
        { action: "subscribe", channel: `channel:${randomUUID()}` },
        { action: "subscribe", channel: `user:${sub}` },
        { action: "ping", timestamp: 2 },
      ];
      for (const f of frames) socket.send(f);
      const got = [];
      for (let i = 0; i < frames.length; i++) {
        const m = await nextMessage(socket);
        got.push(m.event === "error" ? `error:${m.code}` : m.event);
      }
      assert.deepEqual(got, [
        "pong",
        "error:invalid_payload",
        "subscribed",
        "error:forbidden",
        "error:unsupported_channel",
        "error:unsupported_action",
        "error:forbidden",
        "subscribed",
        "pong",
      ]);
    }));
});

describe(`the subscription limit (LIVEGATE_MAX_SUBSCRIPTIONS=${LIMIT}) is shared by the chat namespace`, () => {
  test("one more is subscription_failed; re-subscribing a held key is still subscribed; unsubscribing frees a place", async () => {
    const project_id = randomUUID();
    const channel_id = randomUUID();
    const s = await openChat(limited, { project_id });
    try {
      await join(limited, project_id, channel_id, s.sub);
      const channel = `channel:${channel_id}`;
      await chatSubscribe(s.socket, "global", project_id);
      await chatSubscribe(s.socket, `user:${s.sub}`, project_id);
      const reply = await request(s.socket, { action: "subscribe", channel });
      assertError(reply, "subscription_failed", { channel, action: "subscribe" });
      assert.match(reply.message, /limit|max|too many|2/i, `the message must say it is the limit: ${reply.message}`);

      assertChatAck(await request(s.socket, { action: "subscribe", channel: "global" }), "subscribed", "global", project_id);

      // the refused channel delivers nothing
      await mustPublish(limited, chatEvent("channel_message", project_id, { channel_id }));
      await expectNothing(s.socket, "channel_message", 200);

      assertChatAck(await request(s.socket, { action: "unsubscribe", channel: `user:${s.sub}` }), "unsubscribed", `user:${s.sub}`, project_id);
      assertChatAck(await request(s.socket, { action: "subscribe", channel }), "subscribed", channel, project_id);
      const { pub, since, event_id } = await publishChat(limited, chatEvent("channel_message", project_id, { channel_id }));
      assertChatEvent(await waitFor(s.socket, "channel_message"), { pub, since, answeredId: event_id });
    } finally {
      s.socket.close();
    }
  });
});

describe("authorization", { concurrency: true }, () => {
  test("global: any connection may subscribe", () =>
    withChat(async ({ socket, project_id }) => {
      await chatSubscribe(socket, "global", project_id);
    }));

  test("user:<own sub>: allowed, echoed as sent", () =>
    withChat(async ({ socket, project_id, sub }) => {
      assertChatAck(await request(socket, { action: "subscribe", channel: `user:${sub}` }), "subscribed", `user:${sub}`, project_id);
      assertChatAck(await request(socket, { action: "unsubscribe", channel: `user:${sub}` }), "unsubscribed", `user:${sub}`, project_id);
    }));

  test("user:<own sub> for a sub holding ':' '|' and a space", () =>
    withChat(
      async ({ socket, project_id, sub }) => {
        await chatSubscribe(socket, `user:${sub}`, project_id);
      },
      { sub: "auth0|5f:7c 9e" },
    ));

  test("user:<own sub> for a long sub (300 characters), as ready advertises it", () =>
    withChat(
      async ({ socket, project_id, sub, ready }) => {
        assert.ok(ready.channels.includes(`user:${sub}`));
        assertChatAck(await request(socket, { action: "subscribe", channel: `user:${sub}` }), "subscribed", `user:${sub}`, project_id);
      },
      { sub: "u".repeat(300) },
    ));

  test("user:<someone else>: forbidden with meta.channel and meta.action", () =>
    withChat(async ({ socket, sub }) => {
      await expectForbidden(socket, `user:${sub}x`);
      await expectForbidden(socket, `user:${sub.toUpperCase()}`);
      await expectForbidden(socket, "user:admin");
    }));

  test("channel:<id> without membership: forbidden", () =>
    withChat(async ({ socket }) => {
      await expectForbidden(socket, `channel:${randomUUID()}`);
    }));

  test("member_joined grants channel:<id> to that user only", () =>
    withChat(async ({ socket, project_id, sub }) => {
      const channel_id = randomUUID();
      const other = await openChat(gw, { project_id });
      try {
        await join(gw, project_id, channel_id, sub);
        await chatSubscribe(socket, `channel:${channel_id}`, project_id);
        await expectForbidden(other.socket, `channel:${channel_id}`);
      } finally {
        other.socket.close();
      }
    }));

  test("membership is per channel: a member of one channel is refused another", () =>
    withChat(async ({ socket, project_id, sub }) => {
      const c = randomUUID();
      await join(gw, project_id, c, sub);
      await chatSubscribe(socket, `channel:${c}`, project_id);
      await expectForbidden(socket, `channel:${randomUUID()}`);
    }));

  test("membership is per project: joining a channel in project A grants nothing in project B", async () => {
    const A = randomUUID();
    const B = randomUUID();
    const channel_id = randomUUID();
    const sub = `user-${randomUUID().slice(0, 8)}`;
    const inA = await openChat(gw, { project_id: A, sub, claims: { projects: [A, B] } });
    const inB = await openChat(gw, { project_id: B, sub, claims: { projects: [A, B] } });
    try {
      await join(gw, A, channel_id, sub);
      await chatSubscribe(inA.socket, `channel:${channel_id}`, A);
      await expectForbidden(inB.socket, `channel:${channel_id}`);
    } finally {
      closeAll(inA.socket, inB.socket);
    }
  });

  for (const [type, dataOpts] of [
    ["member_left", {}],
    ["user_kicked", {}],
    ["user_banned", {}],
    ["channel_deleted", null],
  ]) {
    test(`${type} removes the membership: a later subscribe is forbidden`, async () => {
      const project_id = randomUUID();
      const channel_id = randomUUID();
      const s = await openChat(gw, { project_id });
      const fresh = await openChat(gw, { project_id, sub: s.sub });
      try {
        await join(gw, project_id, channel_id, s.sub);
        await chatSubscribe(s.socket, `channel:${channel_id}`, project_id);
        const data = dataOpts === null ? { channel_id } : { channel_id, user_id: s.sub, ...dataOpts };
        await mustPublish(gw, chatEvent(type, project_id, data));
        await expectForbidden(fresh.socket, `channel:${channel_id}`);
        // and on the socket that held it (its subscription is gone or given up first)
        assertChatAck(await request(s.socket, { action: "unsubscribe", channel: `channel:${channel_id}` }), "unsubscribed", `channel:${channel_id}`, project_id);
        await expectForbidden(s.socket, `channel:${channel_id}`);
      } finally {
        closeAll(s.socket, fresh.socket);
      }
    });
  }

  test("channel_deleted clears every member of the channel, and only of that channel", async () => {
    const project_id = randomUUID();
    const [c, d] = [randomUUID(), randomUUID()];
    const a = await openChat(gw, { project_id });
    const b = await openChat(gw, { project_id });
    try {
      for (const s of [a, b]) {
        await join(gw, project_id, c, s.sub);
        await join(gw, project_id, d, s.sub);
      }
      await mustPublish(gw, chatEvent("channel_deleted", project_id, { channel_id: c }));
      await expectForbidden(a.socket, `channel:${c}`);
      await expectForbidden(b.socket, `channel:${c}`);
      await chatSubscribe(a.socket, `channel:${d}`, project_id);
      await chatSubscribe(b.socket, `channel:${d}`, project_id);
    } finally {
      closeAll(a.socket, b.socket);
    }
  });

  test("member_left of one member leaves the others members", async () => {
    const project_id = randomUUID();
    const channel_id = randomUUID();
    const a = await openChat(gw, { project_id });
    const b = await openChat(gw, { project_id });
    try {
      await join(gw, project_id, channel_id, a.sub);
      await join(gw, project_id, channel_id, b.sub);
      await mustPublish(gw, chatEvent("member_left", project_id, { channel_id, user_id: a.sub }));
      await expectForbidden(a.socket, `channel:${channel_id}`);
      await chatSubscribe(b.socket, `channel:${channel_id}`, project_id);
    } finally {
      closeAll(a.socket, b.socket);
    }
  });

  test("user_unbanned does not re-grant; a new member_joined does", () =>
    withChat(async ({ socket, project_id, sub }) => {
      const channel_id = randomUUID();
      await join(gw, project_id, channel_id, sub);
      await mustPublish(gw, chatEvent("user_banned", project_id, { channel_id, user_id: sub }));
      await mustPublish(gw, chatEvent("user_unbanned", project_id, { channel_id, user_id: sub }));
      await expectForbidden(socket, `channel:${channel_id}`);
      await join(gw, project_id, channel_id, sub);
      await chatSubscribe(socket, `channel:${channel_id}`, project_id);
    }));

  test("events that are not membership changes grant nothing (member_role_updated, channel_message, user_typing, channel_created, channel_updated)", () =>
    withChat(async ({ socket, project_id, sub }) => {
      const channel_id = randomUUID();
      for (const type of ["member_role_updated", "channel_message", "message_reply", "user_typing", "channel_created", "channel_updated", "user_unbanned"]) {
        await mustPublish(gw, chatEvent(type, project_id, { channel_id, user_id: sub }));
      }
      await expectForbidden(socket, `channel:${channel_id}`);
    }));

  test("member_joined twice then member_left once: no longer a member", () =>
    withChat(async ({ socket, project_id, sub }) => {
      const channel_id = randomUUID();
      await join(gw, project_id, channel_id, sub);
      await join(gw, project_id, channel_id, sub);
      await mustPublish(gw, chatEvent("member_left", project_id, { channel_id, user_id: sub }));
      await expectForbidden(socket, `channel:${channel_id}`);
    }));

  test("a forbidden subscription delivers nothing", () =>
    withChat(async ({ socket, project_id }) => {
      const channel_id = randomUUID();
      const member = await chatUser(gw, { project_id, member: [channel_id], channels: [`channel:${channel_id}`] });
      try {
        await expectForbidden(socket, `channel:${channel_id}`);
        await mustPublish(gw, chatEvent("channel_message", project_id, { channel_id }));
        await waitFor(member.socket, "channel_message");
        await expectNothing(socket, "channel_message", 300);
      } finally {
        member.socket.close();
      }
    }));
});

