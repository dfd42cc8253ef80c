//! Client actions and their replies (seed 003, CONTRACT §2): ping, subscribe, unsubscribe,
//! every error code and its meta, idempotence and ordering.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  closeAll,
  expectNothing,
  mustPublish,
  nextMessage,
  openSession,
  randomUUID,
  request,
  startGateway,
  subscribe,
  waitFor,
} from "./support/gateway.mjs";
import { ABSENT, assertAck, assertError } from "./support/assertions.mjs";
import { paymentMethodRemoved, paymentRequestUpdated, targetEvent } from "./support/fixtures.mjs";

let gw;
before(async () => {
  gw = await startGateway({}, { name: "actions" });
});
after(async () => {
  await gw?.stop();
});

/** One session for a describe block; closed by the caller. */
const session = (opts) => openSession(gw, opts);

describe("ping", () => {
  test("with a timestamp: pong echoes it and stamps the server time", async () => {
    const { socket } = await session();
    try {
      const before = Date.now();
      const pong = await request(socket, { action: "ping", timestamp: 1700000000000 });
      assert.deepEqual(Object.keys(pong).sort(), ["event", "received_timestamp", "timestamp"]);
      assert.equal(pong.event, "pong");
      assert.equal(pong.received_timestamp, 1700000000000);
      assert.ok(Number.isInteger(pong.timestamp), `pong.timestamp must be an integer: ${JSON.stringify(pong)}`);
      assert.ok(pong.timestamp >= before - 1000 && pong.timestamp <= Date.now() + 1000, `pong.timestamp ${pong.timestamp} is not now`);
    } finally {
      socket.close();
    }
  });

  test("without a timestamp: received_timestamp is null", async () => {
    const { socket } = await session();
    try {
      const pong = await request(socket, { action: "ping" });
      assert.equal(pong.event, "pong");
      assert.ok("received_timestamp" in pong, `received_timestamp must be present: ${JSON.stringify(pong)}`);
      assert.equal(pong.received_timestamp, null);
      assert.ok(Number.isInteger(pong.timestamp));
    } finally {
      socket.close();
    }
  });

  test("timestamp 0 and a negative integer are integers", async () => {
    const { socket } = await session();
    try {
      assert.equal((await request(socket, { action: "ping", timestamp: 0 })).received_timestamp, 0);
      assert.equal((await request(socket, { action: "ping", timestamp: -5 })).received_timestamp, -5);
    } finally {
      socket.close();
    }
  });

  for (const [name, ts] of [
    ["a string", "1700000000000"],
    ["a float", 1.5],
    ["a boolean", true],
    ["an object", { at: 1 }],
    ["an array", [1]],
  ]) {
    test(`with a timestamp that is ${name}: invalid_payload`, async () => {
      const { socket } = await session();
      try {
        const reply = await request(socket, { action: "ping", timestamp: ts });
        assertError(reply, "invalid_payload", { channel: ABSENT, action: reply.meta?.action === undefined ? ABSENT : "ping" });
        // the socket stays usable
        assert.equal((await request(socket, { action: "ping", timestamp: 3 })).event, "pong");
      } finally {
        socket.close();
      }
    });
  }

  test("sent as a string holding JSON", async () => {
    const { socket } = await session();
    try {
      const pong = await request(socket, JSON.stringify({ action: "ping", timestamp: 42 }));
      assert.equal(pong.event, "pong");
      assert.equal(pong.received_timestamp, 42);
    } finally {
      socket.close();
    }
  });

  test("sent with socket.emit('message', obj)", async () => {
    const { socket } = await session();
    try {
      socket.emit("message", { action: "ping", timestamp: 43 });
      const pong = await nextMessage(socket);
      assert.equal(pong.received_timestamp, 43);
    } finally {
      socket.close();
    }
  });

  test("replies come in the order the actions were sent", async () => {
    const { socket } = await session();
    try {
      for (let i = 1; i <= 20; i++) socket.send({ action: "ping", timestamp: i });
      for (let i = 1; i <= 20; i++) {
        const pong = await nextMessage(socket);
        assert.equal(pong.event, "pong");
        assert.equal(pong.received_timestamp, i, `pong #${i} out of order`);
      }
    } finally {
      socket.close();
    }
  });
});

describe("invalid_payload before the channel is known (no meta.channel / meta.action)", () => {
  test("a frame that is not JSON", async () => {
    const { socket } = await session();
    try {
      const reply = await request(socket, "this is {not json");
      assertError(reply, "invalid_payload", { errors: [{ field: "", message: "not valid JSON" }] });
    } finally {
      socket.close();
    }
  });

  for (const [name, value] of [
    ["a number", 42],
    ["a boolean", true],
    ["null", null],
    ["an array", [{ action: "ping" }]],
    ["a string holding a JSON number", "42"],
    ["a string holding a JSON string", JSON.stringify("ping")],
    ["a string holding a JSON array", JSON.stringify([{ action: "ping" }])],
    ["an empty string", ""],
  ]) {
    test(`a non-object payload: ${name}`, async () => {
      const { socket } = await session();
      try {
        const reply = await request(socket, value);
        assertError(reply, "invalid_payload");
        assert.equal((await request(socket, { action: "ping" })).event, "pong", "the socket must stay usable");
      } finally {
        socket.close();
      }
    });
  }

  test("an object without action", async () => {
    const { socket } = await session();
    try {
      const reply = await request(socket, { channel: "targets" });
      assertError(reply, "invalid_payload");
      assert.ok(reply.meta.errors.some((e) => /action/.test(e.field)), `an error must name the action field: ${JSON.stringify(reply)}`);
    } finally {
      socket.close();
    }
  });

  test("an empty object", async () => {
    const { socket } = await session();
    try {
      assertError(await request(socket, {}), "invalid_payload");
    } finally {
      socket.close();
    }
  });

  for (const [name, action] of [
    ["a number", 5],
    ["null", null],
    ["an object", { name: "subscribe" }],
  ]) {
    test(`action that is ${name}`, async () => {
      const { socket } = await session();
      try {
        assertError(await request(socket, { action, channel: "targets" }), "invalid_payload");
      } finally {
        socket.close();
      }
    });
  }

  for (const action of ["subscribe", "unsubscribe"]) {
    test(`${action} without channel`, async () => {
      const { socket } = await session();
      try {
        const reply = await request(socket, { action });
        assertError(reply, "invalid_payload");
        assert.ok(reply.meta.errors.some((e) => /channel/.test(e.field)), `an error must name the channel field: ${JSON.stringify(reply)}`);
      } finally {
        socket.close();
      }
    });
    test(`${action} with a channel that is not a string`, async () => {
      const { socket } = await session();
      try {
        assertError(await request(socket, { action, channel: 7 }), "invalid_payload");
      } finally {
        socket.close();
      }
    });
  }
});

describe("unsupported_action and unsupported_channel carry meta.channel and meta.action", () => {
  test("unsupported_action", async () => {
    const { socket } = await session();
    try {
      const reply = await request(socket, { action: "dance", channel: "targets" });
      assertError(reply, "unsupported_action", { channel: "targets", action: "dance" });
    } finally {
      socket.close();
    }
  });
  for (const action of ["subscribe", "unsubscribe"]) {
    test(`unsupported_channel on ${action}`, async () => {
      const { socket } = await session();
      try {
        const reply = await request(socket, { action, channel: "chat-messages" });
        assertError(reply, "unsupported_channel", { channel: "chat-messages", action });
      } finally {
        socket.close();
      }
    });
  }
  test("channel names are case-sensitive: Targets is unsupported", async () => {
    const { socket } = await session();
    try {
      assertError(await request(socket, { action: "subscribe", channel: "Targets" }), "unsupported_channel", { channel: "Targets", action: "subscribe" });
    } finally {
      socket.close();
    }
  });
});

describe("subscribe / unsubscribe acks", () => {
  for (const channel of ["targets", "payment-methods"]) {
    test(`${channel}: subscribed and unsubscribed with null ids`, async () => {
      const { socket, project_id } = await session();
      try {
        assertAck(await request(socket, { action: "subscribe", channel }), "subscribed", { channel, project_id });
        assertAck(await request(socket, { action: "unsubscribe", channel }), "unsubscribed", { channel, project_id });
      } finally {
        socket.close();
      }
    });
    test(`${channel}: a payment id sent along is ignored and acked as null`, async () => {
      const { socket, project_id } = await session();
      try {
        const reply = await request(socket, { action: "subscribe", channel, payment_request_id: randomUUID(), provider_payment_id: "pi_1" });
        assertAck(reply, "subscribed", { channel, project_id });
      } finally {
        socket.close();
      }
    });
  }

  test("payment-requests by payment_request_id echoes it, provider_payment_id null", async () => {
    const { socket, project_id } = await session();
    const id = randomUUID();
    try {
      const channel = "payment-requests";
      assertAck(await request(socket, { action: "subscribe", channel, payment_request_id: id }), "subscribed", { channel, project_id, payment_request_id: id });
      assertAck(await request(socket, { action: "unsubscribe", channel, payment_request_id: id }), "unsubscribed", { channel, project_id, payment_request_id: id });
    } finally {
      socket.close();
    }
  });

  test("payment-requests by provider_payment_id echoes it, payment_request_id null", async () => {
    const { socket, project_id } = await session();
    try {
      const channel = "payment-requests";
      assertAck(await request(socket, { action: "subscribe", channel, provider_payment_id: "pi_abc" }), "subscribed", { channel, project_id, provider_payment_id: "pi_abc" });
      assertAck(await request(socket, { action: "unsubscribe", channel, provider_payment_id: "pi_abc" }), "unsubscribed", { channel, project_id, provider_payment_id: "pi_abc" });
    } finally {
      socket.close();
    }
  });

  test("provider_payment_id of 1 and of 255 characters are accepted", async () => {
    const { socket, project_id } = await session();
    try {
      const channel = "payment-requests";
      for (const id of ["x", "p".repeat(255)]) {
        assertAck(await request(socket, { action: "subscribe", channel, provider_payment_id: id }), "subscribed", { channel, project_id, provider_payment_id: id });
      }
    } finally {
      socket.close();
    }
  });

  test("an action with unknown extra fields is still a valid action", async () => {
    const { socket, project_id } = await session();
    try {
      const reply = await request(socket, { action: "subscribe", channel: "targets", request_id: "r-1", extra: { a: 1 } });
      // Forward-compatible clients may add fields; the gateway either ignores them or says invalid_payload.
      if (reply.event === "error") assertError(reply, "invalid_payload");
      else assertAck(reply, "subscribed", { channel: "targets", project_id });
    } finally {
      socket.close();
    }
  });

  test("unsubscribe of a key not held answers unsubscribed", async () => {
    const { socket, project_id } = await session();
    try {
      assertAck(await request(socket, { action: "unsubscribe", channel: "targets" }), "unsubscribed", { channel: "targets", project_id });
      const id = randomUUID();
      assertAck(await request(socket, { action: "unsubscribe", channel: "payment-requests", payment_request_id: id }), "unsubscribed", {
        channel: "payment-requests",
        project_id,
        payment_request_id: id,
      });
    } finally {
      socket.close();
    }
  });
});

describe("payment-requests ids are validated after the channel is known (meta.channel and meta.action set)", () => {
  const channel = "payment-requests";
  const cases = [
    ["neither id", {}],
    ["both ids", { payment_request_id: randomUUID(), provider_payment_id: "pi_1" }],
    ["payment_request_id not a UUID", { payment_request_id: "not-a-uuid" }],
    ["payment_request_id a number", { payment_request_id: 12345 }],
    ["provider_payment_id empty", { provider_payment_id: "" }],
    ["provider_payment_id of 256 characters", { provider_payment_id: "p".repeat(256) }],
    ["provider_payment_id a number", { provider_payment_id: 12345 }],
  ];
  for (const action of ["subscribe", "unsubscribe"]) {
    for (const [name, ids] of cases) {
      test(`${action}: ${name}`, async () => {
        const { socket } = await session();
        try {
          const reply = await request(socket, { action, channel, ...ids });
          assertError(reply, "invalid_payload", { channel, action });
          assert.equal((await request(socket, { action: "ping" })).event, "pong", "the socket must stay usable");
        } finally {
          socket.close();
        }
      });
    }
  }
});

describe("idempotence and ordering", () => {
  test("subscribing twice answers subscribed twice and delivers one copy", async () => {
    const project_id = randomUUID();
    const { socket } = await session({ project_id });
    try {
      assertAck(await request(socket, { action: "subscribe", channel: "targets" }), "subscribed", { channel: "targets", project_id });
      assertAck(await request(socket, { action: "subscribe", channel: "targets" }), "subscribed", { channel: "targets", project_id });
      const pub = targetEvent("target.added", project_id);
      await mustPublish(gw, pub);
      const got = await waitFor(socket, "target.added");
      assert.equal(got.target.target_id, pub.target.target_id);
      await expectNothing(socket, "target.added", 400);
    } finally {
      socket.close();
    }
  });

  test("payment request subscribed twice: one copy", async () => {
    const project_id = randomUUID();
    const { socket } = await session({ project_id });
    const payment_request_id = randomUUID();
    try {
      await subscribe(socket, { channel: "payment-requests", payment_request_id });
      await subscribe(socket, { channel: "payment-requests", payment_request_id });
      await mustPublish(gw, paymentRequestUpdated(project_id, { payment_request_id, provider_payment_id: `pi_${randomUUID()}` }));
      await waitFor(socket, "payment-request.updated");
      await expectNothing(socket, "payment-request.updated", 400);
    } finally {
      socket.close();
    }
  });

  test("unsubscribe after subscribe stops delivery", async () => {
    const project_id = randomUUID();
    const a = await session({ project_id });
    const witness = await session({ project_id });
    try {
      await subscribe(a.socket, { channel: "targets" });
      await subscribe(witness.socket, { channel: "targets" });
      assert.equal((await request(a.socket, { action: "unsubscribe", channel: "targets" })).event, "unsubscribed");
      const pub = targetEvent("target.updated", project_id);
      await mustPublish(gw, pub);
      await waitFor(witness.socket, "target.updated");
      await expectNothing(a.socket, "target.updated", 400);
    } finally {
      closeAll(a.socket, witness.socket);
    }
  });

  test("subscribe and unsubscribe sent back to back: answered in order, ends unsubscribed", async () => {
    const project_id = randomUUID();
    const a = await session({ project_id });
    const witness = await session({ project_id });
    try {
      await subscribe(witness.socket, { channel: "targets" });
      a.socket.send({ action: "subscribe", channel: "targets" });
      a.socket.send({ action: "unsubscribe", channel: "targets" });
      const first = await nextMessage(a.socket);
      const second = await nextMessage(a.socket);
      assert.equal(first.event, "subscribed", `first reply: ${JSON.stringify(first)}`);
      assert.equal(second.event, "unsubscribed", `second reply: ${JSON.stringify(second)}`);
      await mustPublish(gw, targetEvent("target.added", project_id));
      await waitFor(witness.socket, "target.added");
      await expectNothing(a.socket, "target.added", 400);
    } finally {
      closeAll(a.socket, witness.socket);
    }
  });

  test("many subscribe/unsubscribe pairs back to back, then one subscribe: ends subscribed", async () => {
    const project_id = randomUUID();
    const { socket } = await session({ project_id });
    try {
      for (let i = 0; i < 10; i++) {
        socket.send({ action: "subscribe", channel: "payment-methods" });
        socket.send({ action: "unsubscribe", channel: "payment-methods" });
      }
      socket.send({ action: "subscribe", channel: "payment-methods" });
      for (let i = 0; i < 10; i++) {
        assert.equal((await nextMessage(socket)).event, "subscribed");
        assert.equal((await nextMessage(socket)).event, "unsubscribed");
      }
      assert.equal((await nextMessage(socket)).event, "subscribed");
      await mustPublish(gw, paymentMethodRemoved(project_id));
      await waitFor(socket, "payment-method.removed");
      await expectNothing(socket, "payment-method.removed", 300);
    } finally {
      socket.close();
    }
  });

  test("replies to mixed valid and invalid actions keep their order", async () => {
    const { socket } = await session();
    try {
      socket.send({ action: "ping", timestamp: 1 });
      socket.send("nope");
      socket.send({ action: "subscribe", channel: "targets" });
      socket.send({ action: "dance", channel: "targets" });
      socket.send({ action: "ping", timestamp: 2 });
      const events = [];
      for (let i = 0; i < 5; i++) {
        const m = await nextMessage(socket);
        events.push(m.event === "error" ? `error:${m.code}` : m.event);
      }
      assert.deepEqual(events, ["pong", "error:invalid_payload", "subscribed", "error:unsupported_action", "pong"]);
    } finally {
      socket.close();
    }
  });
});
