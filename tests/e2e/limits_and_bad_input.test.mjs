//! Limits and hostile input: the 4 KB inbound cap (CONNECT and later packets), the
//! subscription limit, binary attachments, huge strings, wrong types, unknown events.
//! After every bad input the socket stays usable, or, when the connection was closed,
//! the node still serves a new client.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  closeAll,
  connect,
  connectPacketBytes,
  expectNothing,
  messagePacketBytes,
  mintToken,
  mustPublish,
  nextMessage,
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
import { ANY, assertAck, assertError } from "./support/assertions.mjs";
import { targetEvent } from "./support/fixtures.mjs";

const CAP = 4096;

let gw;
let limited;
before(async () => {
  [gw, limited] = await Promise.all([
    startGateway({}, { name: "limits" }),
    startGateway({ LIVEGATE_MAX_SUBSCRIPTIONS: "3" }, { name: "limits-3-subs" }),
  ]);
});
after(async () => {
  await Promise.all([gw?.stop(), limited?.stop()]);
});

/** A new client can still open a session and get a pong. */
async function nodeStillServes(g = gw) {
  const { socket } = await openSession(g);
  try {
    assert.equal((await request(socket, { action: "ping", timestamp: 9 })).received_timestamp, 9);
  } finally {
    socket.close();
  }
}

/** Auth whose CONNECT packet is as large as possible without exceeding `bytes` (padding inside the JWT). */
function authOfSize(bytes, project_id = randomUUID()) {
  const claims = userClaims({ projects: [project_id] });
  const make = (pad) => {
    const auth = { token: mintToken({ ...claims, pad: "x".repeat(pad) }), project_id };
    return { auth, bytes: connectPacketBytes(auth) };
  };
  // base64url turns 3 bytes into 4: start a little short, then step up one byte at a time
  let pad = Math.max(0, Math.floor(((bytes - make(0).bytes) * 3) / 4) - 12);
  let best = make(pad);
  for (;;) {
    const next = make(pad + 1);
    if (next.bytes > bytes) return best;
    best = next;
    pad += 1;
  }
}

/**
 * Resolve how a connection attempt ended: "ready", {event: "disconnect"|"connect_error", reason},
 * or "timeout" when neither happened (a silent hang is not "closed").
 */
function outcomeOf(socket, timeoutMs = 6000) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve("timeout"), timeoutMs + 100);
    const done = (v) => {
      clearTimeout(timer);
      resolve(v);
    };
    waitFor(socket, "message", (m) => m?.event === "ready", timeoutMs).then(() => done("ready"), () => {});
    waitClosed(socket, timeoutMs).then(done, () => {});
  });
}

describe("4 KB cap on the CONNECT packet", () => {
  test("a CONNECT just under the cap gets ready", async () => {
    const { auth, bytes } = authOfSize(CAP - 100);
    assert.ok(bytes > CAP - 200 && bytes <= CAP - 100, `built ${bytes} bytes`);
    const socket = connect(gw, auth);
    try {
      assert.equal(await outcomeOf(socket), "ready");
    } finally {
      socket.close();
    }
  });

  test("a CONNECT whose auth pads past 4096 bytes never gets ready: the connection is closed", async () => {
    const { auth } = authOfSize(CAP + 300);
    assert.ok(connectPacketBytes(auth) > CAP);
    const socket = connect(gw, auth);
    try {
      const outcome = await outcomeOf(socket);
      assert.notEqual(outcome, "ready", "an over-cap CONNECT must not be processed");
      assert.notEqual(outcome, "timeout", "an over-cap CONNECT must close the connection");
      await expectNothing(socket, "message", 200);
    } finally {
      socket.close();
    }
    await nodeStillServes();
  });

  test("a CONNECT padded by an unknown auth field past the cap is closed too", async () => {
    const p = randomUUID();
    const auth = { token: mintToken({ projects: [p] }), project_id: p, padding: "y".repeat(CAP) };
    const socket = connect(gw, auth);
    try {
      const outcome = await outcomeOf(socket);
      assert.notEqual(outcome, "ready");
      assert.notEqual(outcome, "timeout", "an over-cap CONNECT must close the connection");
    } finally {
      socket.close();
    }
    await nodeStillServes();
  });
});

describe("4 KB cap on later packets", () => {
  test("a message just under the cap is answered", async () => {
    const { socket } = await openSession(gw);
    try {
      const msg = paddedJsonMessage({ action: "ping", timestamp: 7 }, 4000);
      assert.equal(messagePacketBytes(msg), 4000);
      const pong = await request(socket, msg);
      assert.equal(pong.event, "pong");
      assert.equal(pong.received_timestamp, 7);
    } finally {
      socket.close();
    }
  });

  test("a message over 4096 bytes closes the connection, and is not processed", async () => {
    const project_id = randomUUID();
    const { socket } = await openSession(gw, { project_id });
    const witness = await openSession(gw, { project_id });
    try {
      await subscribe(witness.socket, { channel: "targets" });
      const msg = paddedJsonMessage({ action: "subscribe", channel: "targets" }, CAP + 200);
      socket.send(msg);
      const { event, reason } = await waitClosed(socket, 6000);
      assert.equal(event, "disconnect", `got ${event} ${reason}`);
      assert.ok(!received(socket).some((e) => e.event === "message" && e.args[0]?.event === "subscribed"), "the over-cap subscribe must not be answered");
    } finally {
      closeAll(socket, witness.socket);
    }
    await nodeStillServes();
  });

  test("an over-cap packet of another event name also closes", async () => {
    const { socket } = await openSession(gw);
    try {
      socket.emit("something-else", "z".repeat(CAP + 100));
      await waitClosed(socket, 6000);
    } finally {
      socket.close();
    }
    await nodeStillServes();
  });
});

/** The next system message ({message}) or, if the connection closes first, how it closed ({closed}). */
function replyOrClose(socket, timeoutMs = 5000) {
  const closed = waitClosed(socket, timeoutMs).then((c) => ({ closed: c }));
  const reply = nextMessage(socket, () => true, timeoutMs).then(
    (m) => ({ message: m }),
    () => closed, // nextMessage fails fast on a close: report the close
  );
  return Promise.race([reply, closed]);
}

describe("binary attachments are never processed", () => {
  test("socket.send({a: Buffer}) is answered invalid_payload or closes the connection", async () => {
    const { socket } = await openSession(gw);
    try {
      socket.send({ a: Buffer.alloc(10) });
      const outcome = await replyOrClose(socket);
      if (outcome.message) {
        assertError(outcome.message, "invalid_payload", { channel: ANY, action: ANY });
        assert.equal((await request(socket, { action: "ping" })).event, "pong", "the socket must stay usable");
      } else {
        await nodeStillServes();
      }
    } finally {
      socket.close();
    }
  });

  test("a subscribe carrying a binary attachment does not subscribe", async () => {
    const project_id = randomUUID();
    const { socket } = await openSession(gw, { project_id });
    const witness = await openSession(gw, { project_id });
    try {
      await subscribe(witness.socket, { channel: "targets" });
      socket.send({ action: "subscribe", channel: "targets", blob: Buffer.from([1, 2, 3]) });
      const outcome = await replyOrClose(socket);
      if (outcome.message) {
        assertError(outcome.message, "invalid_payload", { channel: ANY, action: ANY });
        await mustPublish(gw, targetEvent("target.added", project_id));
        await waitFor(witness.socket, "target.added");
        await expectNothing(socket, "target.added", 300);
      } else {
        await nodeStillServes();
      }
    } finally {
      closeAll(socket, witness.socket);
    }
  });

  test("a bare Buffer as the message is answered invalid_payload or closes", async () => {
    const { socket } = await openSession(gw);
    try {
      socket.send(Buffer.from('{"action":"ping"}'));
      const outcome = await replyOrClose(socket);
      if (outcome.message) {
        assertError(outcome.message, "invalid_payload", { channel: ANY, action: ANY });
        assert.equal((await request(socket, { action: "ping" })).event, "pong");
      } else {
        await nodeStillServes();
      }
    } finally {
      socket.close();
    }
  });
});

describe("bad input gets the documented error and the socket stays usable", () => {
  const cases = [
    ["a huge unknown action name", { action: "a".repeat(3500), channel: "targets" }, "unsupported_action", { action: ANY, channel: "targets" }],
    ["a huge unknown channel name", { action: "subscribe", channel: "c".repeat(3500) }, "unsupported_channel", { action: "subscribe", channel: ANY }],
    ["a huge provider_payment_id", { action: "subscribe", channel: "payment-requests", provider_payment_id: "p".repeat(3500) }, "invalid_payload", { action: "subscribe", channel: "payment-requests" }],
    ["a huge non-JSON string", "{".repeat(3800), "invalid_payload", {}],
    ["deeply nested JSON", JSON.stringify(JSON.parse("[".repeat(1000) + "]".repeat(1000))), "invalid_payload", {}],
    ["a deeply nested object under an unknown field", JSON.stringify({ action: "ping", x: JSON.parse("[".repeat(1000) + "]".repeat(1000)) }), null, {}],
    ["channel of the wrong type (array)", { action: "subscribe", channel: ["targets"] }, "invalid_payload", {}],
    ["payment_request_id of the wrong type (object)", { action: "subscribe", channel: "payment-requests", payment_request_id: { id: randomUUID() } }, "invalid_payload", { action: "subscribe", channel: "payment-requests" }],
    ["payment_request_id with surrounding spaces", { action: "subscribe", channel: "payment-requests", payment_request_id: ` ${randomUUID()} ` }, "invalid_payload", { action: "subscribe", channel: "payment-requests" }],
    ["action with a NUL byte", { action: "subscr\u0000ibe", channel: "targets" }, "unsupported_action", { action: ANY, channel: "targets" }],
    ["a lone surrogate in a string", '{"action":"ping","note":"\\ud800"}', null, {}],
  ];
  for (const [name, payload, code, meta] of cases) {
    test(name, async () => {
      const { socket } = await openSession(gw);
      try {
        const reply = await request(socket, payload);
        if (code === null) {
          // Either answered as a valid action or refused as invalid_payload: never silence.
          if (reply.event === "error") assertError(reply, "invalid_payload", { channel: ANY, action: ANY });
          else assert.equal(reply.event, "pong", JSON.stringify(reply));
        } else {
          assertError(reply, code, { channel: ANY, action: ANY });
          if (meta.channel && meta.channel !== ANY) assert.equal(reply.meta.channel, meta.channel);
          if (meta.action && meta.action !== ANY) assert.equal(reply.meta.action, meta.action);
          if (code === "invalid_payload" && meta.channel === undefined) {
            assert.ok(!("channel" in reply.meta), `no meta.channel before the channel is known: ${JSON.stringify(reply)}`);
          }
        }
        assert.equal((await request(socket, { action: "ping", timestamp: 1 })).event, "pong", "the socket must stay usable");
      } finally {
        socket.close();
      }
    });
  }

  test("an event other than `message` does not break the socket", async () => {
    const { socket } = await openSession(gw);
    try {
      socket.emit("subscribe", { action: "subscribe", channel: "targets" });
      socket.emit("ping", { action: "ping" });
      socket.emit("message", { action: "ping", timestamp: 5 }, "second argument");
      socket.send({ action: "ping", timestamp: 6 });
      await nextMessage(socket, (m) => m?.event === "pong" && m.received_timestamp === 6, 5000, "the pong to ping 6");
    } finally {
      socket.close();
    }
  });

  test("a message with an ack callback is still handled as an action", async () => {
    const { socket } = await openSession(gw);
    try {
      socket.emit("message", { action: "ping", timestamp: 77 }, () => {});
      const reply = await nextMessage(socket, () => true);
      if (reply.event === "error") assertError(reply, reply.code, { channel: ANY, action: ANY });
      else assert.equal(reply.received_timestamp, 77);
      socket.send({ action: "ping", timestamp: 6 });
      await nextMessage(socket, (m) => m?.event === "pong" && m.received_timestamp === 6, 5000, "the pong to ping 6");
    } finally {
      socket.close();
    }
  });

  test("224 bad frames, in bursts of 32: every one answered in order, the socket still usable", async () => {
    const { socket } = await openSession(gw);
    try {
      for (let burst = 0; burst < 7; burst++) {
        for (let i = 0; i < 32; i++) socket.send(i % 2 ? "not json" : { action: 1 });
        for (let i = 0; i < 32; i++) {
          const m = await nextMessage(socket);
          assert.equal(m.code, "invalid_payload", `burst ${burst} frame ${i}: ${JSON.stringify(m)}`);
          assert.equal(m.meta.errors[0].field, i % 2 ? "" : m.meta.errors[0].field);
        }
      }
      assert.equal((await request(socket, { action: "ping" })).event, "pong");
    } finally {
      socket.close();
    }
  });
});

describe("the subscription limit (LIVEGATE_MAX_SUBSCRIPTIONS=3)", () => {
  test("the 4th is subscription_failed; whole-project channels count", async () => {
    const { socket, project_id } = await openSession(limited);
    try {
      await subscribe(socket, { channel: "targets" });
      await subscribe(socket, { channel: "payment-methods" });
      const first = randomUUID();
      await subscribe(socket, { channel: "payment-requests", payment_request_id: first });
      const reply = await request(socket, { action: "subscribe", channel: "payment-requests", payment_request_id: randomUUID() });
      assertError(reply, "subscription_failed", { channel: "payment-requests", action: "subscribe" });
      assert.match(reply.message, /limit|max|too many|3/i, `the message must say it is the limit: ${reply.message}`);

      // re-subscribing to a held key is still `subscribed` (idempotent, not a 4th)
      assertAck(await request(socket, { action: "subscribe", channel: "targets" }), "subscribed", { channel: "targets", project_id });
      assertAck(await request(socket, { action: "subscribe", channel: "payment-requests", payment_request_id: first }), "subscribed", {
        channel: "payment-requests",
        project_id,
        payment_request_id: first,
      });

      // freeing one makes room
      await request(socket, { action: "unsubscribe", channel: "payment-methods" });
      const second = randomUUID();
      await subscribe(socket, { channel: "payment-requests", payment_request_id: second });
      assertError(await request(socket, { action: "subscribe", channel: "payment-methods" }), "subscription_failed", {
        channel: "payment-methods",
        action: "subscribe",
      });
    } finally {
      socket.close();
    }
  });

  test("the refused subscription delivers nothing; held ones still deliver", async () => {
    const { socket, project_id } = await openSession(limited);
    try {
      for (const id of [randomUUID(), randomUUID(), randomUUID()]) await subscribe(socket, { channel: "payment-requests", payment_request_id: id });
      assertError(await request(socket, { action: "subscribe", channel: "targets" }), "subscription_failed", { channel: "targets", action: "subscribe" });
      await mustPublish(limited, targetEvent("target.added", project_id));
      await expectNothing(socket, "target.added", 400);
    } finally {
      socket.close();
    }
  });

  test("the limit is per socket", async () => {
    const project_id = randomUUID();
    const a = await openSession(limited, { project_id });
    const b = await openSession(limited, { project_id });
    try {
      for (const s of [a.socket, b.socket]) {
        await subscribe(s, { channel: "targets" });
        await subscribe(s, { channel: "payment-methods" });
        await subscribe(s, { channel: "payment-requests", provider_payment_id: "pi_x" });
      }
    } finally {
      closeAll(a.socket, b.socket);
    }
  });

  test("a fresh connection starts from zero", async () => {
    const first = await openSession(limited);
    for (const ch of ["targets", "payment-methods"]) await subscribe(first.socket, { channel: ch });
    await subscribe(first.socket, { channel: "payment-requests", provider_payment_id: "pi_y" });
    first.socket.close();
    const second = await openSession(limited, { project_id: first.project_id });
    try {
      for (const ch of ["targets", "payment-methods"]) await subscribe(second.socket, { channel: ch });
      await subscribe(second.socket, { channel: "payment-requests", provider_payment_id: "pi_y" });
    } finally {
      second.socket.close();
    }
  });

  test("the default limit is 100 per socket", async () => {
    const { socket } = await openSession(gw);
    try {
      for (let i = 0; i < 100; i++) {
        const ack = await request(socket, { action: "subscribe", channel: "payment-requests", provider_payment_id: `pi_${i}` });
        assert.equal(ack.event, "subscribed", `subscription #${i + 1}: ${JSON.stringify(ack)}`);
      }
      assertError(await request(socket, { action: "subscribe", channel: "targets" }), "subscription_failed", { channel: "targets", action: "subscribe" });
    } finally {
      socket.close();
    }
  });

  // Seed 003 "Reconnection": after a reconnect the client resubscribes to everything it cares
  // about, i.e. up to the limit, typically all at once; each action is answered in order
  // (CONTRACT §2). Ten rounds, because a lagging server shows the problem only now and then.
  test("a reconnecting client may pipeline the limit's worth of subscribes at once (10 rounds)", async () => {
    for (let round = 0; round < 10; round++) {
      const { socket } = await openSession(gw);
      try {
        for (let i = 0; i < 100; i++) socket.send({ action: "subscribe", channel: "payment-requests", provider_payment_id: `pi_${i}` });
        for (let i = 0; i < 100; i++) {
          const ack = await nextMessage(socket, () => true, 5000, `the ack of pipelined subscribe #${i + 1} (round ${round + 1})`);
          assert.equal(ack.event, "subscribed", `round ${round + 1}, subscription #${i + 1}: ${JSON.stringify(ack)}`);
        }
      } finally {
        socket.close();
      }
    }
  });
});
