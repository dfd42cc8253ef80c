//! The client `typing` action on /chat (issue 7): a member's typing is broadcast as
//! `user_typing` to the channel's other subscribers (never echoed to the sender, never to
//! non-subscribers or other projects), with no reply on success; a non-member is refused
//! `forbidden`; bad payloads are `invalid_payload`; and the per-socket rate limit (a bucket of
//! 2 refilled at 2/s) drops the excess silently.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { UUID_V4, closeAll, mustPublish, randomUUID, received, request, startGateway, waitFor } from "./support/gateway.mjs";
import { ANY, assertError } from "./support/assertions.mjs";
import { assertChatEvent, chatEvent, chatUser, expectNone, expectOnlyPong, openChat, sendTyping } from "./support/chat.mjs";

let gw;
before(async () => {
  gw = await startGateway({}, { name: "chat-typing" });
});
after(async () => {
  await gw?.stop();
});

/**
 * Project P, channels C and D:
 * - `sender`: member of C (token with a `name` claim unless `name: null`), subscribed to channel:C
 * - `peer`: member of C, subscribed to channel:C
 * - `idle`: member of C, not subscribed to anything
 * - `g`: subscribed to global and its own user:
 * - `d`: member of D, subscribed to channel:D
 * - `q`: project Q, member of C there, subscribed to channel:C
 */
async function room({ name = "Alice Example" } = {}) {
  const P = randomUUID();
  const Q = randomUUID();
  const C = randomUUID();
  const D = randomUUID();
  const sender = await chatUser(gw, { project_id: P, ...(name === null ? {} : { name }), member: [C], channels: [`channel:${C}`] });
  const [peer, idle, g, d, q] = await Promise.all([
    chatUser(gw, { project_id: P, member: [C], channels: [`channel:${C}`] }),
    chatUser(gw, { project_id: P, member: [C] }),
    chatUser(gw, { project_id: P, channels: ["global"] }),
    chatUser(gw, { project_id: P, member: [D], channels: [`channel:${D}`] }),
    chatUser(gw, { project_id: Q, member: [C], channels: [`channel:${C}`] }),
  ]);
  const all = [sender, peer, idle, g, d, q];
  return { P, Q, C, D, sender, peer, idle, g, d, q, all, close: () => closeAll(all.map((s) => s.socket)) };
}

describe("typing fan-out", { concurrency: true }, () => {
  test("the channel's other subscribers get user_typing {channel_id, user_id, username (the name claim), is_typing}; no one else does", async () => {
    const r = await room();
    try {
      const since = Date.now();
      sendTyping(r.sender.socket, r.C, true);
      const got = await waitFor(r.peer.socket, "user_typing");
      assertChatEvent(got, {
        type: "user_typing",
        data: { channel_id: r.C, user_id: r.sender.sub, username: "Alice Example", is_typing: true },
        since,
      });
      assert.match(got.event_id, UUID_V4);
      // no reply on success: the next system message is the pong of a later ping
      await expectOnlyPong(r.sender.socket, "after a typing action,");
      await expectNone(
        [r.sender, r.idle, r.g, r.d, r.q].map((s) => s.socket),
        "user_typing",
        300,
      );
      await expectNone(r.peer.socket, "user_typing", 0);
    } finally {
      r.close();
    }
  });

  test("is_typing false is delivered as false; without a name claim, username is the sub", async () => {
    const r = await room({ name: null });
    try {
      const since = Date.now();
      sendTyping(r.sender.socket, r.C, false);
      assertChatEvent(await waitFor(r.peer.socket, "user_typing"), {
        type: "user_typing",
        data: { channel_id: r.C, user_id: r.sender.sub, username: r.sender.sub, is_typing: false },
        since,
      });
    } finally {
      r.close();
    }
  });

  test("a channel_id in upper case is the same channel", async () => {
    const r = await room();
    try {
      sendTyping(r.sender.socket, r.C.toUpperCase(), true);
      const got = await waitFor(r.peer.socket, "user_typing");
      assert.equal(String(got.data.channel_id).toLowerCase(), r.C, JSON.stringify(got));
    } finally {
      r.close();
    }
  });

  test("a member who is not subscribed may type; the subscribers get it", async () => {
    const r = await room();
    try {
      sendTyping(r.idle.socket, r.C, true);
      for (const s of [r.sender, r.peer]) {
        const got = await waitFor(s.socket, "user_typing");
        assert.deepEqual(got.data, { channel_id: r.C, user_id: r.idle.sub, username: r.idle.sub, is_typing: true });
      }
      await expectOnlyPong(r.idle.socket);
      await expectNone([r.idle, r.g, r.d, r.q].map((s) => s.socket), "user_typing", 300);
    } finally {
      r.close();
    }
  });

  test("another socket of the same user, subscribed to the channel, is another subscriber", async () => {
    const r = await room();
    const twin = await chatUser(gw, { project_id: r.P, sub: r.sender.sub, channels: [`channel:${r.C}`] });
    try {
      sendTyping(r.sender.socket, r.C, true);
      const got = await waitFor(twin.socket, "user_typing");
      assert.equal(got.data.user_id, r.sender.sub);
      await waitFor(r.peer.socket, "user_typing");
      await expectNone(r.sender.socket, "user_typing", 300);
    } finally {
      twin.socket.close();
      r.close();
    }
  });

  test("typing is never stored: a subscriber who arrives later gets nothing", async () => {
    const r = await room();
    try {
      sendTyping(r.sender.socket, r.C, true);
      await waitFor(r.peer.socket, "user_typing");
      const late = await chatUser(gw, { project_id: r.P, member: [r.C], channels: [`channel:${r.C}`] });
      try {
        await expectNone(late.socket, "user_typing", 300);
      } finally {
        late.socket.close();
      }
    } finally {
      r.close();
    }
  });

  test("a user_typing publication (from a publisher) reaches every subscriber, sender's peers included", async () => {
    const r = await room();
    try {
      const pub = chatEvent("user_typing", r.P, { channel_id: r.C, user_id: "server-side", username: "Bot", is_typing: true });
      const since = Date.now();
      const event_id = await mustPublish(gw, pub);
      for (const s of [r.sender, r.peer]) assertChatEvent(await waitFor(s.socket, "user_typing"), { pub, since, answeredId: event_id });
      await expectNone([r.idle, r.g, r.d, r.q].map((s) => s.socket), "user_typing", 300);
    } finally {
      r.close();
    }
  });
});

describe("typing refused", { concurrency: true }, () => {
  test("a non-member: forbidden with meta.channel channel:<id> and meta.action typing; nothing is broadcast", async () => {
    const r = await room();
    try {
      const reply = await request(r.g.socket, { action: "typing", channel_id: r.C, is_typing: true });
      assertError(reply, "forbidden", { channel: `channel:${r.C}`, action: "typing" });
      // a member of another channel is a non-member too
      assertError(await request(r.d.socket, { action: "typing", channel_id: r.C, is_typing: true }), "forbidden", {
        channel: `channel:${r.C}`,
        action: "typing",
      });
      await expectNone([r.sender, r.peer].map((s) => s.socket), "user_typing", 300);
    } finally {
      r.close();
    }
  });

  test("a member of the same channel id in another project is a non-member here", async () => {
    const r = await room();
    const sub = `user-${randomUUID().slice(0, 8)}`;
    const claims = { projects: [r.P, r.Q] };
    const inQ = await chatUser(gw, { project_id: r.Q, sub, claims, member: [r.C] });
    const inP = await openChat(gw, { project_id: r.P, sub, claims });
    try {
      assertError(await request(inP.socket, { action: "typing", channel_id: r.C, is_typing: true }), "forbidden", {
        channel: `channel:${r.C}`,
        action: "typing",
      });
      sendTyping(inQ.socket, r.C, true);
      const got = await waitFor(r.q.socket, "user_typing");
      assert.equal(got.data.user_id, sub);
      await expectNone([r.sender, r.peer].map((s) => s.socket), "user_typing", 300);
    } finally {
      closeAll(inQ.socket, inP.socket);
      r.close();
    }
  });

  for (const type of ["member_left", "user_kicked", "user_banned"]) {
    test(`after ${type}, the user's typing is forbidden`, async () => {
      const r = await room();
      try {
        await mustPublish(gw, chatEvent(type, r.P, { channel_id: r.C, user_id: r.idle.sub }));
        assertError(await request(r.idle.socket, { action: "typing", channel_id: r.C, is_typing: true }), "forbidden", {
          channel: `channel:${r.C}`,
          action: "typing",
        });
        await expectNone(r.peer.socket, "user_typing", 200);
      } finally {
        r.close();
      }
    });
  }

  const bad = [
    ["no channel_id", { is_typing: true }, "channel_id"],
    ["channel_id not a UUID", { channel_id: "general", is_typing: true }, "channel_id"],
    ["channel_id a number", { channel_id: 5, is_typing: true }, "channel_id"],
    ["no is_typing", { channel_id: "C" }, "is_typing"],
    ["is_typing a string", { channel_id: "C", is_typing: "yes" }, "is_typing"],
    ["is_typing a number", { channel_id: "C", is_typing: 1 }, "is_typing"],
    ["is_typing null", { channel_id: "C", is_typing: null }, "is_typing"],
  ];
  for (const [name, body, field] of bad) {
    test(`invalid_payload: ${name}`, async () => {
      const r = await room();
      try {
        const frame = { action: "typing", ...body };
        if (frame.channel_id === "C") frame.channel_id = r.C;
        const reply = await request(r.sender.socket, frame);
        assertError(reply, "invalid_payload", { channel: ANY, action: ANY });
        assert.ok(reply.meta.errors.some((e) => e.field === field), `an error must name ${field}: ${JSON.stringify(reply)}`);
        await expectNone(r.peer.socket, "user_typing", 200);
      } finally {
        r.close();
      }
    });
  }
});

describe("the typing rate limit (a bucket of 2 per socket, refilled at 2/s)", () => {
  test("10 typing actions at once: the others get the first 2 within the next second, the rest are dropped silently; after ~1 s typing is accepted again", async () => {
    const r = await room();
    const other = await chatUser(gw, { project_id: r.P, member: [r.C] });
    try {
      const t0 = Date.now();
      for (let i = 0; i < 10; i++) sendTyping(r.sender.socket, r.C, i % 2 === 0);
      // another socket's bucket is its own
      sendTyping(other.socket, r.C, true);
      const fromOther = await waitFor(r.peer.socket, "user_typing", (e) => e?.data?.user_id === other.sub);
      assert.equal(fromOther.data.is_typing, true);
      await waitFor(r.sender.socket, "user_typing", (e) => e?.data?.user_id === other.sub);

      // the absence window: exactly what arrives from the sender within one second
      await new Promise((res) => setTimeout(res, Math.max(0, 1000 - (Date.now() - t0))));
      const fromSender = received(r.peer.socket).filter((e) => e.event === "user_typing" && e.args[0]?.data?.user_id === r.sender.sub);
      assert.ok(fromSender.length <= 2, `at most 2 typing broadcasts per second, got ${fromSender.length}: ${JSON.stringify(fromSender.map((e) => e.args[0]))}`);
      assert.equal(fromSender.length, 2, "a full bucket lets the first 2 through");
      assert.deepEqual(
        fromSender.map((e) => e.args[0].data.is_typing),
        [true, false],
        "the first two actions are the ones broadcast",
      );
      for (const e of fromSender) e.consumed = true;
      // dropped silently: no error, no reply; the next system message is a pong
      await expectOnlyPong(r.sender.socket, "after 10 typing actions,");
      await expectNone(r.sender.socket, "user_typing", 0);

      // a second later the bucket has refilled
      sendTyping(r.sender.socket, r.C, true);
      const again = await waitFor(r.peer.socket, "user_typing", (e) => e?.data?.user_id === r.sender.sub, 2000);
      assert.equal(again.data.is_typing, true);
      await expectOnlyPong(r.sender.socket, "after the refill,");
    } finally {
      other.socket.close();
      r.close();
    }
  });
});
