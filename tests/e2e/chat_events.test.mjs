//! Chat publications and their delivery (issue 7, seed 002): each of the fourteen types reaches
//! exactly the subscribers its routing names, with the `{type, timestamp, data, event_id}`
//! envelope; moderation events go to both `channel:` (with user_id) and `user:` (without), once
//! each; a ban or kick ends the user's channel subscription; channel_deleted ends every
//! subscription to the channel; nothing crosses projects; bad publications are refused (422)
//! and never delivered.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { closeAll, expectNothing, mustPublish, randomUUID, received, request, startGateway, waitFor } from "./support/gateway.mjs";
import {
  CHAT_TYPES,
  MODERATION_TYPES,
  assertChatAck,
  assertChatEvent,
  chatData,
  chatEvent,
  chatPub,
  chatSubscribe,
  chatSubscribeAll,
  chatUser,
  expectForbidden,
  expectNone,
  openChat,
  publishChat,
  routeOf,
  withoutUserId,
} from "./support/chat.mjs";

let gw;
before(async () => {
  gw = await startGateway({}, { name: "chat-events" });
});
after(async () => {
  await gw?.stop();
});

/**
 * A cast for one project P with channels C and D and a subject user X:
 * - `a`: member of C, subscribed to channel:C
 * - `d`: member of D, subscribed to channel:D and global
 * - `g`: subscribed to global only
 * - `x`: user X, subscribed to user:X only (not a member of anything)
 * - `q`: in another project Q, also user X, member of C there, subscribed to channel:C, global and user:X
 */
async function cast() {
  const P = randomUUID();
  const Q = randomUUID();
  const C = randomUUID();
  const D = randomUUID();
  const X = `user-x-${randomUUID().slice(0, 8)}`;
  const [a, d, g, x, q] = await Promise.all([
    chatUser(gw, { project_id: P, member: [C], channels: [`channel:${C}`] }),
    chatUser(gw, { project_id: P, member: [D], channels: [`channel:${D}`, "global"] }),
    chatUser(gw, { project_id: P, channels: ["global"] }),
    chatUser(gw, { project_id: P, sub: X, channels: [`user:${X}`] }),
    chatUser(gw, { project_id: Q, sub: X, member: [C], channels: [`channel:${C}`, "global", `user:${X}`] }),
  ]);
  const all = [a, d, g, x, q];
  return { P, Q, C, D, X, a, d, g, x, q, all, close: () => closeAll(all.map((s) => s.socket)) };
}

describe("each of the fourteen types reaches exactly its subscribers, with the envelope", { concurrency: true }, () => {
  for (const type of CHAT_TYPES) {
    const route = routeOf(type);
    test(`${type} (${route === "global" ? "global" : route === "moderation" ? "channel:{id} and user:{id}" : "channel:{id}"})`, async () => {
      const t = await cast();
      try {
        const channel_id = type === "channel_created" ? randomUUID() : t.C;
        const pub = chatEvent(type, t.P, { channel_id, user_id: t.X });
        const { since, event_id } = await publishChat(gw, pub);
        const expectations = [];
        if (route === "channel" || route === "moderation") expectations.push([t.a, pub.data]);
        if (route === "global") expectations.push([t.d, pub.data], [t.g, pub.data]);
        if (route === "moderation") expectations.push([t.x, withoutUserId(pub.data)]);
        for (const [s, data] of expectations) {
          assertChatEvent(await waitFor(s.socket, type), { pub, data, since, answeredId: event_id });
        }
        // no one else, and no second copy for anyone
        await expectNone(
          t.all.map((s) => s.socket),
          type,
          300,
        );
      } finally {
        t.close();
      }
    });
  }
});

describe("envelope details", { concurrency: true }, () => {
  test("the publication's own event_id is kept; the publish API answers it", async () => {
    const t = await cast();
    try {
      const event_id = randomUUID();
      const pub = chatEvent("channel_message", t.P, { channel_id: t.C }, { event_id });
      const res = await gw.publish(pub);
      assert.equal(res.status, 202, res.text);
      assert.deepEqual(res.body, { event_id });
      assertChatEvent(await waitFor(t.a.socket, "channel_message"), { pub });
    } finally {
      t.close();
    }
  });

  test("without an event_id, the delivered one is the UUID v4 the publish API answered", async () => {
    const t = await cast();
    try {
      const pub = chatEvent("message_updated", t.P, { channel_id: t.C });
      const { since, event_id } = await publishChat(gw, pub);
      const got = assertChatEvent(await waitFor(t.a.socket, "message_updated"), { pub, since, answeredId: event_id });
      assert.match(got.event_id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    } finally {
      t.close();
    }
  });

  test("username may be null or absent; data is forwarded as published", async () => {
    const t = await cast();
    try {
      const withNull = chatEvent("channel_message", t.P, { channel_id: t.C, username: null });
      const absent = chatPub("channel_message", t.P, (({ username: _u, ...rest }) => rest)(chatData("channel_message", { channel_id: t.C })));
      const joinedAbsent = chatPub("member_joined", t.P, { channel_id: t.C, user_id: "u-without-name" });
      for (const pub of [withNull, absent, joinedAbsent]) {
        const { since, event_id } = await publishChat(gw, pub);
        assertChatEvent(await waitFor(t.a.socket, pub.event, (e) => e?.event_id === event_id), { pub, since, answeredId: event_id });
      }
    } finally {
      t.close();
    }
  });

  test("fields beyond the listed ones are forwarded (channel_updated's updated fields, extras on a message)", async () => {
    const t = await cast();
    try {
      const updated = chatPub("channel_updated", t.P, {
        channel_id: t.C,
        channel_name: "renamed",
        description: null,
        is_private: true,
        member_limit: 50,
        tags: ["a", "b"],
        settings: { slow_mode_seconds: 10, nested: { deep: [1, { x: "y" }] } },
      });
      const message = chatPub("channel_message", t.P, { ...chatData("channel_message", { channel_id: t.C }), attachments: [{ url: "https://x/y.png" }], edited: false });
      for (const pub of [updated, message]) {
        const { since, event_id } = await publishChat(gw, pub);
        assertChatEvent(await waitFor(t.a.socket, pub.event), { pub, since, answeredId: event_id });
      }
    } finally {
      t.close();
    }
  });

  test("plain strings may be empty (only ids must be non-empty): content \"\", motive \"\"; channel_updated with only channel_id", async () => {
    const t = await cast();
    try {
      const pubs = [
        chatEvent("channel_message", t.P, { channel_id: t.C, content: "" }),
        chatEvent("message_updated", t.P, { channel_id: t.C, content: "" }),
        chatEvent("user_banned", t.P, { channel_id: t.C, user_id: "someone", motive: "" }),
        chatPub("channel_updated", t.P, { channel_id: t.C }),
      ];
      for (const pub of pubs) {
        const res = await gw.publish(pub);
        assert.equal(res.status, 202, `${JSON.stringify(pub.data)} -> ${res.status} ${res.text}`);
        assertChatEvent(await waitFor(t.a.socket, pub.event), { pub, answeredId: res.body.event_id });
      }
    } finally {
      t.close();
    }
  });

  test("a user id need not be a UUID: any non-empty string (user_id and the user: room)", async () => {
    const P = randomUUID();
    const C = randomUUID();
    const sub = "auth0|abc:123";
    const s = await chatUser(gw, { project_id: P, sub, member: [C], channels: [`channel:${C}`, `user:${sub}`] });
    try {
      const pub = chatEvent("user_kicked", P, { channel_id: C, user_id: sub });
      const { since, event_id } = await publishChat(gw, pub);
      const copies = [await waitFor(s.socket, "user_kicked"), await waitFor(s.socket, "user_kicked")];
      const full = copies.find((c) => c?.data && "user_id" in c.data);
      const partial = copies.find((c) => c?.data && !("user_id" in c.data));
      assert.ok(full && partial, `one copy with user_id and one without: ${JSON.stringify(copies)}`);
      assertChatEvent(full, { pub, since, answeredId: event_id });
      assertChatEvent(partial, { pub, data: withoutUserId(pub.data), since, answeredId: event_id });
    } finally {
      s.socket.close();
    }
  });

  test("publications of one publisher reach a subscriber in publish order", async () => {
    const t = await cast();
    try {
      const ids = [];
      for (let i = 0; i < 10; i++) ids.push(await mustPublish(gw, chatEvent("channel_message", t.P, { channel_id: t.C, content: `m${i}` })));
      for (let i = 0; i < 10; i++) {
        const got = await waitFor(t.a.socket, "channel_message");
        assert.equal(got.event_id, ids[i], `message #${i} out of order`);
        assert.equal(got.data.content, `m${i}`);
      }
    } finally {
      t.close();
    }
  });
});

describe("moderation: delivered on channel:{id} with user_id and on user:{id} without", { concurrency: true }, () => {
  for (const type of MODERATION_TYPES) {
    test(`${type}: a socket holding both gets exactly two copies; others get theirs once`, async () => {
      const P = randomUUID();
      const C = randomUUID();
      const X = `user-x-${randomUUID().slice(0, 8)}`;
      const both = await chatUser(gw, { project_id: P, sub: X, member: [C], channels: [`channel:${C}`, `user:${X}`] });
      const onlyUser = await chatUser(gw, { project_id: P, sub: X, channels: [`user:${X}`] });
      const witness = await chatUser(gw, { project_id: P, member: [C], channels: [`channel:${C}`] });
      const stranger = await chatUser(gw, { project_id: P, channels: ["global"] });
      const sockets = [both, onlyUser, witness, stranger].map((s) => s.socket);
      try {
        await chatSubscribe(stranger.socket, `user:${stranger.sub}`, P);
        const event_id = randomUUID();
        const pub = chatEvent(type, P, { channel_id: C, user_id: X }, { event_id });
        const { since } = await publishChat(gw, pub);

        const copies = [await waitFor(both.socket, type), await waitFor(both.socket, type)];
        const full = copies.filter((c) => c?.data && "user_id" in c.data);
        const partial = copies.filter((c) => c?.data && !("user_id" in c.data));
        assert.equal(full.length, 1, `exactly one channel copy (with user_id): ${JSON.stringify(copies)}`);
        assert.equal(partial.length, 1, `exactly one user copy (without user_id): ${JSON.stringify(copies)}`);
        assertChatEvent(full[0], { pub, since });
        assertChatEvent(partial[0], { pub, data: withoutUserId(pub.data), since });

        assertChatEvent(await waitFor(onlyUser.socket, type), { pub, data: withoutUserId(pub.data), since });
        assertChatEvent(await waitFor(witness.socket, type), { pub, since });
        await expectNone(sockets, type, 300);
      } finally {
        closeAll(sockets);
      }
    });
  }
});

describe("a ban or a kick ends the user's channel:{id} subscription", { concurrency: true }, () => {
  for (const type of ["user_banned", "user_kicked"]) {
    test(`${type}: every socket of the user loses channel:C (and only that); others keep it`, async () => {
      const P = randomUUID();
      const [C, D] = [randomUUID(), randomUUID()];
      const X = `user-x-${randomUUID().slice(0, 8)}`;
      const x1 = await chatUser(gw, { project_id: P, sub: X, member: [C, D], channels: [`channel:${C}`, `channel:${D}`, `user:${X}`] });
      const x2 = await openChat(gw, { project_id: P, sub: X });
      await chatSubscribe(x2.socket, `channel:${C}`, P);
      const witness = await chatUser(gw, { project_id: P, member: [C], channels: [`channel:${C}`] });
      const sockets = [x1.socket, x2.socket, witness.socket];
      try {
        const mod = chatEvent(type, P, { channel_id: C, user_id: X });
        const { since, event_id } = await publishChat(gw, mod);
        // the event itself is delivered to the user before the subscription ends
        assertChatEvent(await waitFor(x2.socket, type), { pub: mod, since, answeredId: event_id });
        assertChatEvent(await waitFor(witness.socket, type), { pub: mod, since, answeredId: event_id });
        await waitFor(x1.socket, type);
        await waitFor(x1.socket, type);

        const later = await publishChat(gw, chatEvent("channel_message", P, { channel_id: C }));
        assertChatEvent(await waitFor(witness.socket, "channel_message"), { pub: later.pub, since: later.since, answeredId: later.event_id });
        const onD = await publishChat(gw, chatEvent("channel_message", P, { channel_id: D }));
        assertChatEvent(await waitFor(x1.socket, "channel_message"), { pub: onD.pub, since: onD.since, answeredId: onD.event_id });
        await expectNone([x1.socket, x2.socket], "channel_message", 300);

        // user:X is kept: a later moderation event still reaches x1 once (user copy only)
        const unban = await publishChat(gw, chatEvent("user_unbanned", P, { channel_id: C, user_id: X }));
        assertChatEvent(await waitFor(x1.socket, "user_unbanned"), { pub: unban.pub, data: withoutUserId(unban.pub.data), since: unban.since, answeredId: unban.event_id });
        assertChatEvent(await waitFor(witness.socket, "user_unbanned"), { pub: unban.pub, since: unban.since, answeredId: unban.event_id });
        await expectNone(sockets, "user_unbanned", 200);

        // the dropped key: unsubscribe answers unsubscribed, subscribe is forbidden
        assertChatAck(await request(x2.socket, { action: "unsubscribe", channel: `channel:${C}` }), "unsubscribed", `channel:${C}`, P);
        await expectForbidden(x2.socket, `channel:${C}`);
      } finally {
        closeAll(sockets);
      }
    });
  }

  test("user_unbanned and member_role_updated do not end a held subscription", async () => {
    const P = randomUUID();
    const C = randomUUID();
    const s = await chatUser(gw, { project_id: P, member: [C], channels: [`channel:${C}`] });
    try {
      for (const type of ["user_unbanned", "member_role_updated"]) {
        await mustPublish(gw, chatEvent(type, P, { channel_id: C, user_id: s.sub }));
        await waitFor(s.socket, type);
      }
      const later = await publishChat(gw, chatEvent("channel_message", P, { channel_id: C }));
      assertChatEvent(await waitFor(s.socket, "channel_message"), { pub: later.pub, since: later.since, answeredId: later.event_id });
    } finally {
      s.socket.close();
    }
  });

  test("a kick of one user leaves another member's subscription alone", async () => {
    const P = randomUUID();
    const C = randomUUID();
    const a = await chatUser(gw, { project_id: P, member: [C], channels: [`channel:${C}`] });
    const b = await chatUser(gw, { project_id: P, member: [C], channels: [`channel:${C}`] });
    try {
      await mustPublish(gw, chatEvent("user_kicked", P, { channel_id: C, user_id: a.sub }));
      await waitFor(b.socket, "user_kicked");
      await mustPublish(gw, chatEvent("channel_message", P, { channel_id: C }));
      await waitFor(b.socket, "channel_message");
      await expectNothing(a.socket, "channel_message", 300);
    } finally {
      closeAll(a.socket, b.socket);
    }
  });
});

describe("channel_deleted ends every subscription to the channel", () => {
  test("subscribers get channel_deleted, then nothing more from that channel; other channels and projects are untouched", async () => {
    const P = randomUUID();
    const Q = randomUUID();
    const [C, D] = [randomUUID(), randomUUID()];
    // every membership first, then the subscriptions, so no setup member_joined is delivered
    const a = await chatUser(gw, { project_id: P, member: [C, D] });
    const b = await chatUser(gw, { project_id: P, member: [C] });
    const q = await chatUser(gw, { project_id: Q, member: [C] });
    const sockets = [a.socket, b.socket, q.socket];
    try {
      await chatSubscribeAll(a.socket, [`channel:${C}`, `channel:${D}`], P);
      await chatSubscribe(b.socket, `channel:${C}`, P);
      await chatSubscribe(q.socket, `channel:${C}`, Q);
      const del = await publishChat(gw, chatEvent("channel_deleted", P, { channel_id: C }));
      for (const s of [a, b]) assertChatEvent(await waitFor(s.socket, "channel_deleted"), { pub: del.pub, since: del.since, answeredId: del.event_id });

      const types = ["channel_message", "message_updated", "member_joined", "user_typing", "channel_updated"];
      for (const type of types) await mustPublish(gw, chatEvent(type, P, { channel_id: C }));
      const onD = await publishChat(gw, chatEvent("channel_message", P, { channel_id: D }));
      assertChatEvent(await waitFor(a.socket, "channel_message"), { pub: onD.pub, since: onD.since, answeredId: onD.event_id });
      const inQ = await publishChat(gw, chatEvent("channel_message", Q, { channel_id: C }));
      assertChatEvent(await waitFor(q.socket, "channel_message"), { pub: inQ.pub, since: inQ.since, answeredId: inQ.event_id });
      await expectNone(sockets, [...types, "channel_deleted"], 300);

      // the key is gone: unsubscribe is idempotent, a new subscribe needs a new membership
      assertChatAck(await request(b.socket, { action: "unsubscribe", channel: `channel:${C}` }), "unsubscribed", `channel:${C}`, P);
      await expectForbidden(b.socket, `channel:${C}`);
    } finally {
      closeAll(sockets);
    }
  });
});

describe("isolation across projects", { concurrency: true }, () => {
  test("a global subscriber of project B never sees project A's channel_created", async () => {
    const A = randomUUID();
    const B = randomUUID();
    const inA = await chatUser(gw, { project_id: A, channels: ["global"] });
    const inB = await chatUser(gw, { project_id: B, channels: ["global"] });
    try {
      const created = await publishChat(gw, chatEvent("channel_created", A));
      assertChatEvent(await waitFor(inA.socket, "channel_created"), { pub: created.pub, since: created.since, answeredId: created.event_id });
      await expectNothing(inB.socket, "channel_created", 300);
    } finally {
      closeAll(inA.socket, inB.socket);
    }
  });

  test("channel rooms and user rooms are per project (same channel id, same user id)", async () => {
    const A = randomUUID();
    const B = randomUUID();
    const C = randomUUID();
    const X = `user-x-${randomUUID().slice(0, 8)}`;
    const claims = { projects: [A, B] };
    const inA = await chatUser(gw, { project_id: A, sub: X, claims, member: [C], channels: [`channel:${C}`, `user:${X}`, "global"] });
    const inB = await chatUser(gw, { project_id: B, sub: X, claims, member: [C], channels: [`channel:${C}`, `user:${X}`, "global"] });
    try {
      // every type once in project A; the ones that end inA's channel:C subscription come last
      // (channel_deleted, then the moderation events, which still reach inA on user:X)
      const last = ["channel_deleted", "user_unbanned", "user_banned", "user_kicked"];
      const types = [...CHAT_TYPES.filter((t) => !last.includes(t)), ...last];
      assert.equal(types.length, 14);
      for (const type of types) {
        const user_id = MODERATION_TYPES.includes(type) ? X : `user-${randomUUID().slice(0, 8)}`;
        const id = await mustPublish(gw, chatEvent(type, A, { channel_id: C, user_id }));
        await waitFor(inA.socket, type, (e) => e?.event_id === id);
      }
      await expectNone(inB.socket, types, 300);
    } finally {
      closeAll(inA.socket, inB.socket);
    }
  });

  test("a project id in upper case in the publication reaches the lower-case project's subscribers", async () => {
    const P = randomUUID();
    const C = randomUUID();
    const s = await chatUser(gw, { project_id: P, member: [C], channels: [`channel:${C}`] });
    try {
      const pub = chatEvent("channel_message", P.toUpperCase(), { channel_id: C });
      const { since, event_id } = await publishChat(gw, pub);
      assertChatEvent(await waitFor(s.socket, "channel_message"), { pub, since, answeredId: event_id });
    } finally {
      s.socket.close();
    }
  });
});

describe("bad publications: 422 invalid_publication naming the field, never delivered", { concurrency: true }, () => {
  const P = randomUUID();
  const C = randomUUID();
  const data = (type, over = {}) => chatData(type, { channel_id: C, ...over });
  const drop = (obj, key) => {
    const { [key]: _k, ...rest } = obj;
    return rest;
  };
  const cases = [
    ["channel_message without content", chatPub("channel_message", P, drop(data("channel_message"), "content")), "/data/content"],
    ["channel_message without message_id", chatPub("channel_message", P, drop(data("channel_message"), "message_id")), "/data/message_id"],
    ["channel_message with a channel_id that is not a UUID", chatPub("channel_message", P, data("channel_message", { channel_id: "general" })), "/data/channel_id"],
    ["channel_message with a message_id that is not a UUID", chatPub("channel_message", P, data("channel_message", { message_id: "m-1" })), "/data/message_id"],
    ["channel_message with a numeric user_id", chatPub("channel_message", P, data("channel_message", { user_id: 42 })), "/data/user_id"],
    ["channel_message with an empty user_id", chatPub("channel_message", P, data("channel_message", { user_id: "" })), "/data/user_id"],
    ["channel_message with a numeric username", chatPub("channel_message", P, data("channel_message", { username: 7 })), "/data/username"],
    ["channel_message with a numeric content", chatPub("channel_message", P, data("channel_message", { content: 7 })), "/data/content"],
    ["message_updated without content", chatPub("message_updated", P, drop(data("message_updated"), "content")), "/data/content"],
    ["message_deleted without message_id", chatPub("message_deleted", P, drop(data("message_deleted"), "message_id")), "/data/message_id"],
    ["message_reply without parent_message_id", chatPub("message_reply", P, drop(data("message_reply"), "parent_message_id")), "/data/parent_message_id"],
    ["member_joined without user_id", chatPub("member_joined", P, drop(data("member_joined"), "user_id")), "/data/user_id"],
    ["member_left without channel_id", chatPub("member_left", P, drop(data("member_left"), "channel_id")), "/data/channel_id"],
    ["member_role_updated without new_role", chatPub("member_role_updated", P, drop(data("member_role_updated"), "new_role")), "/data/new_role"],
    ["user_banned without motive", chatPub("user_banned", P, drop(data("user_banned"), "motive")), "/data/motive"],
    ["user_unbanned with a numeric motive", chatPub("user_unbanned", P, data("user_unbanned", { motive: 1 })), "/data/motive"],
    ["user_kicked without user_id", chatPub("user_kicked", P, drop(data("user_kicked"), "user_id")), "/data/user_id"],
    ["channel_created without channel_name", chatPub("channel_created", P, drop(data("channel_created"), "channel_name")), "/data/channel_name"],
    ["channel_updated without channel_id", chatPub("channel_updated", P, drop(data("channel_updated"), "channel_id")), "/data/channel_id"],
    ["channel_deleted with a channel_id that is not a UUID", chatPub("channel_deleted", P, { channel_id: "nope" }), "/data/channel_id"],
    ["user_typing with is_typing a string", chatPub("user_typing", P, data("user_typing", { is_typing: "yes" })), "/data/is_typing"],
    ["user_typing without is_typing", chatPub("user_typing", P, drop(data("user_typing"), "is_typing")), "/data/is_typing"],
    ["no data", drop(chatEvent("channel_message", P, { channel_id: C }), "data"), /data/],
    ["data not an object", chatPub("channel_message", P, "hello"), /data/],
    ["no project_id", drop(chatEvent("channel_message", P, { channel_id: C }), "project_id"), /project_id/],
    ["a project_id that is not a UUID", chatEvent("channel_message", "project-one", { channel_id: C }), /project_id/],
    ["an event_id that is a number", chatEvent("channel_message", P, { channel_id: C }, { event_id: 5 }), /event_id/],
    ["an unknown chat-like event", chatPub("message_exploded", P, data("channel_message")), /event/],
  ];
  for (const [name, pub, field] of cases) {
    test(name, async () => {
      const res = await gw.publish(pub);
      assert.equal(res.status, 422, `${JSON.stringify(pub)} -> ${res.status} ${res.text}`);
      assert.equal(res.body?.error?.code, "invalid_publication", res.text);
      const errors = res.body.error.errors;
      assert.ok(Array.isArray(errors) && errors.length >= 1, `errors[] required: ${res.text}`);
      const hit = errors.some((e) => (typeof field === "string" ? e.field === field : field.test(e.field)));
      assert.ok(hit, `an error must name ${field}: ${res.text}`);
    });
  }

  test("refused publications reach no one; a valid one after them does", async () => {
    const Pr = randomUUID();
    const Cr = randomUUID();
    const s = await chatUser(gw, { project_id: Pr, member: [Cr], channels: [`channel:${Cr}`, "global"] });
    try {
      const bad = [
        chatPub("channel_message", Pr, drop(chatData("channel_message", { channel_id: Cr }), "content")),
        chatPub("channel_created", Pr, { channel_id: Cr }),
        chatPub("user_typing", Pr, chatData("user_typing", { channel_id: Cr, is_typing: "no" })),
      ];
      for (const pub of bad) assert.equal((await gw.publish(pub)).status, 422);
      const good = await publishChat(gw, chatEvent("channel_message", Pr, { channel_id: Cr }));
      assertChatEvent(await waitFor(s.socket, "channel_message"), { pub: good.pub, since: good.since, answeredId: good.event_id });
      await expectNone(s.socket, ["channel_message", "channel_created", "user_typing"], 200);
      assert.equal(received(s.socket).filter((e) => e.event === "channel_message").length, 1);
    } finally {
      s.socket.close();
    }
  });

  test("a refused member_joined grants nothing", async () => {
    const Pr = randomUUID();
    const Cr = randomUUID();
    const s = await openChat(gw, { project_id: Pr });
    try {
      const res = await gw.publish(chatPub("member_joined", Pr, { channel_id: "not-a-uuid", user_id: s.sub }));
      assert.equal(res.status, 422);
      const res2 = await gw.publish(chatPub("member_joined", Pr, { channel_id: Cr, user_id: 12 }));
      assert.equal(res2.status, 422);
      await expectForbidden(s.socket, `channel:${Cr}`);
    } finally {
      s.socket.close();
    }
  });
});
