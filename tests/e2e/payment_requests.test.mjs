//! The payment-requests channel: payment-request.updated and subscription.closed, routing by
//! either id, one copy per socket, the ownership registry (forbidden, terminal requests,
//! filling a missing id) and the end of subscriptions.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  UUID_V4,
  closeAll,
  expectNothing,
  mustPublish,
  openSession,
  randomUUID,
  received,
  request,
  startGateway,
  subscribe,
  waitFor,
} from "./support/gateway.mjs";
import { assertAck, assertError } from "./support/assertions.mjs";
import { assertBroadcast, newRequest, paymentRequestUpdated, subscriptionClosed } from "./support/fixtures.mjs";

const channel = "payment-requests";
let gw;
before(async () => {
  gw = await startGateway({}, { name: "payment-requests" });
});
after(async () => {
  await gw?.stop();
});

const byPr = (req) => ({ channel, payment_request_id: req.payment_request_id });
const byProvider = (req) => ({ channel, provider_payment_id: req.provider_payment_id });
const forReq = (req) => (p) => p?.payment_request_id === req.payment_request_id || p?.payment_request?.payment_request_id === req.payment_request_id;

/** Make `req` known to the registry in `project_id` with `status` (publishes its update). */
async function makeKnown(project_id, req, status = "pending") {
  return mustPublish(gw, paymentRequestUpdated(project_id, req, { status }));
}

describe("payment-request.updated", () => {
  for (const [name, key] of [["payment_request_id", byPr], ["provider_payment_id", byProvider]]) {
    test(`created reaches a subscriber by ${name}, with its envelope`, async () => {
      const req = newRequest();
      const { socket, project_id } = await openSession(gw);
      try {
        await subscribe(socket, key(req));
        const pub = paymentRequestUpdated(project_id, req, { status: "pending" });
        const since = Date.now();
        const answeredId = await mustPublish(gw, pub);
        assertBroadcast(await waitFor(socket, "payment-request.updated"), pub, { since, answeredId });
      } finally {
        socket.close();
      }
    });
  }

  test("completed, with its own event_id, gross_amount and extra fields", async () => {
    const req = newRequest();
    const { socket, project_id } = await openSession(gw);
    try {
      await subscribe(socket, byPr(req));
      const pub = paymentRequestUpdated(project_id, req, { status: "completed", event_id: randomUUID(), correlation_id: "c-1" });
      pub.payment_request.gross_amount = "21.50";
      pub.payment_request.request_type = "balance";
      const since = Date.now();
      assert.equal(await mustPublish(gw, pub), pub.event_id);
      assertBroadcast(await waitFor(socket, "payment-request.updated"), pub, { since });
    } finally {
      socket.close();
    }
  });

  test("only the subscribed request is delivered", async () => {
    const req = newRequest();
    const other = newRequest();
    const { socket, project_id } = await openSession(gw);
    try {
      await subscribe(socket, byPr(req));
      await mustPublish(gw, paymentRequestUpdated(project_id, other));
      await mustPublish(gw, paymentRequestUpdated(project_id, req));
      const got = await waitFor(socket, "payment-request.updated");
      assert.equal(got.payment_request.payment_request_id, req.payment_request_id);
      await expectNothing(socket, "payment-request.updated", 300);
    } finally {
      socket.close();
    }
  });

  test("one copy per socket when subscribed by both ids of the same request", async () => {
    const req = newRequest();
    const { socket, project_id } = await openSession(gw);
    try {
      await subscribe(socket, byPr(req));
      await subscribe(socket, byProvider(req));
      await mustPublish(gw, paymentRequestUpdated(project_id, req));
      await waitFor(socket, "payment-request.updated");
      await expectNothing(socket, "payment-request.updated", 400);
      await mustPublish(gw, subscriptionClosed(project_id, { ...req, status: "completed" }));
      await waitFor(socket, "subscription.closed");
      await expectNothing(socket, "subscription.closed", 400);
    } finally {
      socket.close();
    }
  });

  test("a request the registry does not know can be subscribed to; its created event arrives", async () => {
    const req = newRequest();
    const { socket, project_id } = await openSession(gw);
    try {
      assertAck(await request(socket, { action: "subscribe", ...byPr(req) }), "subscribed", { channel, project_id, payment_request_id: req.payment_request_id });
      await makeKnown(project_id, req);
      const got = await waitFor(socket, "payment-request.updated");
      assert.equal(got.update_type, "created");
    } finally {
      socket.close();
    }
  });

  test("a subscriber of the same unknown id in another project gets nothing", async () => {
    const req = newRequest();
    const a = await openSession(gw);
    const b = await openSession(gw);
    try {
      await subscribe(a.socket, byPr(req));
      await subscribe(b.socket, byPr(req));
      await subscribe(b.socket, byProvider(req));
      await makeKnown(a.project_id, req);
      await waitFor(a.socket, "payment-request.updated");
      await expectNothing(b.socket, "payment-request.updated", 300);
    } finally {
      closeAll(a.socket, b.socket);
    }
  });

  test("the ack echoes what was sent: by provider_payment_id of a known request, payment_request_id is null", async () => {
    const req = newRequest();
    const { socket, project_id } = await openSession(gw);
    try {
      await makeKnown(project_id, req);
      assertAck(await request(socket, { action: "subscribe", ...byProvider(req) }), "subscribed", {
        channel,
        project_id,
        provider_payment_id: req.provider_payment_id,
      });
    } finally {
      socket.close();
    }
  });

  test("a terminal payment-request.updated alone does not end the subscription", async () => {
    const req = newRequest();
    const { socket, project_id } = await openSession(gw);
    try {
      await subscribe(socket, byPr(req));
      await mustPublish(gw, paymentRequestUpdated(project_id, req, { status: "completed" }));
      assert.equal((await waitFor(socket, "payment-request.updated")).payment_request.status, "completed");
      await mustPublish(gw, paymentRequestUpdated(project_id, req, { status: "completed", update_type: "completed", late_fix: true }));
      const again = await waitFor(socket, "payment-request.updated");
      assert.equal(again.late_fix, true);
      await expectNothing(socket, "subscription.closed", 0);
    } finally {
      socket.close();
    }
  });
});

describe("forbidden: the registry says the request belongs to another project", () => {
  for (const [name, key] of [["payment_request_id", byPr], ["provider_payment_id", byProvider]]) {
    test(`by ${name}`, async () => {
      const req = newRequest();
      const owner = randomUUID();
      await makeKnown(owner, req);
      const { socket } = await openSession(gw);
      const mine = await openSession(gw, { project_id: owner });
      try {
        assertError(await request(socket, { action: "subscribe", ...key(req) }), "forbidden", { channel, action: "subscribe" });
        await subscribe(mine.socket, key(req));
        // and nothing leaks to the refused socket
        await mustPublish(gw, paymentRequestUpdated(owner, req, { status: "pending" }));
        await waitFor(mine.socket, "payment-request.updated");
        await expectNothing(socket, "payment-request.updated", 300);
      } finally {
        closeAll(socket, mine.socket);
      }
    });
  }

  test("the project comparison ignores case", async () => {
    const req = newRequest();
    const owner = randomUUID();
    await makeKnown(owner.toUpperCase(), req);
    const { socket } = await openSession(gw, { project_id: owner });
    try {
      await subscribe(socket, byPr(req));
    } finally {
      socket.close();
    }
  });
});

describe("subscription.closed", () => {
  test("after completion: updated then closed, with its envelope; the subscription is dropped", async () => {
    const req = newRequest();
    const other = newRequest();
    const { socket, project_id } = await openSession(gw);
    try {
      await subscribe(socket, byPr(req));
      await subscribe(socket, byPr(other));
      await mustPublish(gw, paymentRequestUpdated(project_id, req, { status: "completed" }));
      const closed = subscriptionClosed(project_id, { ...req, status: "completed" });
      const since = Date.now();
      const answeredId = await mustPublish(gw, closed);
      const updated = await waitFor(socket, "payment-request.updated", forReq(req));
      const gotClosed = await waitFor(socket, "subscription.closed");
      assert.equal(updated.payment_request.status, "completed");
      assertBroadcast(gotClosed, closed, { since, answeredId });
      const entries = received(socket);
      const iUpdated = entries.findIndex((e) => e.event === "payment-request.updated");
      const iClosed = entries.findIndex((e) => e.event === "subscription.closed");
      assert.ok(iUpdated < iClosed, "payment-request.updated must come before subscription.closed");

      // dropped: a later update of req is not delivered, while other (still held) is
      await mustPublish(gw, paymentRequestUpdated(project_id, req, { status: "completed", update_type: "completed" }));
      await mustPublish(gw, paymentRequestUpdated(project_id, other));
      await waitFor(socket, "payment-request.updated", forReq(other));
      await expectNothing(socket, "payment-request.updated", 400, forReq(req));
    } finally {
      socket.close();
    }
  });

  for (const status of ["failed", "cancelled", "expired"]) {
    test(`status ${status}: delivered and ends the subscription`, async () => {
      const req = newRequest();
      const other = newRequest();
      const { socket, project_id } = await openSession(gw);
      try {
        await subscribe(socket, byProvider(req));
        await subscribe(socket, byProvider(other));
        const closed = { ...subscriptionClosed(project_id, { ...req, status }), event_id: randomUUID() };
        await mustPublish(gw, closed);
        assertBroadcast(await waitFor(socket, "subscription.closed"), closed, {});
        await mustPublish(gw, paymentRequestUpdated(project_id, req));
        await mustPublish(gw, paymentRequestUpdated(project_id, other));
        await waitFor(socket, "payment-request.updated", forReq(other));
        await expectNothing(socket, "payment-request.updated", 400, forReq(req));
      } finally {
        socket.close();
      }
    });
  }

  test("ends both subscriptions of a socket that held the request by both ids", async () => {
    const req = newRequest();
    const other = newRequest();
    const { socket, project_id } = await openSession(gw);
    try {
      await subscribe(socket, byPr(req));
      await subscribe(socket, byProvider(req));
      await subscribe(socket, byPr(other));
      await mustPublish(gw, subscriptionClosed(project_id, { ...req, status: "cancelled" }));
      await waitFor(socket, "subscription.closed");
      await mustPublish(gw, paymentRequestUpdated(project_id, req));
      await mustPublish(gw, paymentRequestUpdated(project_id, other));
      await waitFor(socket, "payment-request.updated", forReq(other));
      await expectNothing(socket, "payment-request.updated", 400, forReq(req));
    } finally {
      socket.close();
    }
  });

  test("the socket can subscribe again after a close (an unknown-terminal request stays subscribable)", async () => {
    const req = newRequest();
    const { socket, project_id } = await openSession(gw);
    try {
      await subscribe(socket, byPr(req));
      await mustPublish(gw, subscriptionClosed(project_id, { ...req, status: "expired" }));
      await waitFor(socket, "subscription.closed");
      assert.equal((await request(socket, { action: "unsubscribe", ...byPr(req) })).event, "unsubscribed");
    } finally {
      socket.close();
    }
  });

  test("published with only payment_request_id: reaches subscribers by provider_payment_id, id filled from the registry", async () => {
    const req = newRequest();
    const other = newRequest();
    const { socket, project_id } = await openSession(gw);
    try {
      await makeKnown(project_id, req);
      await subscribe(socket, byProvider(req));
      await subscribe(socket, byPr(other));
      await mustPublish(gw, subscriptionClosed(project_id, { payment_request_id: req.payment_request_id, status: "completed" }));
      const got = await waitFor(socket, "subscription.closed");
      assert.equal(got.payment_request_id, req.payment_request_id);
      assert.equal(got.provider_payment_id, req.provider_payment_id, "the missing provider_payment_id must be filled from the registry");
      assert.equal(got.status, "completed");
      assert.match(got.event_id, UUID_V4);
      // and the provider-keyed subscription is gone
      await mustPublish(gw, paymentRequestUpdated(project_id, req));
      await mustPublish(gw, paymentRequestUpdated(project_id, other));
      await waitFor(socket, "payment-request.updated", forReq(other));
      await expectNothing(socket, "payment-request.updated", 400, forReq(req));
    } finally {
      socket.close();
    }
  });

  test("published with only provider_payment_id: reaches subscribers by payment_request_id, id filled", async () => {
    const req = newRequest();
    const { socket, project_id } = await openSession(gw);
    try {
      await makeKnown(project_id, req);
      await subscribe(socket, byPr(req));
      await mustPublish(gw, subscriptionClosed(project_id, { provider_payment_id: req.provider_payment_id, status: "failed" }));
      const got = await waitFor(socket, "subscription.closed");
      assert.equal(got.payment_request_id, req.payment_request_id, "the missing payment_request_id must be filled from the registry");
      assert.equal(got.provider_payment_id, req.provider_payment_id);
      assert.equal(got.status, "failed");
    } finally {
      socket.close();
    }
  });

  test("reaches every socket of the project subscribed to it, and only those", async () => {
    const req = newRequest();
    const project_id = randomUUID();
    const a = await openSession(gw, { project_id });
    const b = await openSession(gw, { project_id });
    const c = await openSession(gw, { project_id });
    try {
      await subscribe(a.socket, byPr(req));
      await subscribe(b.socket, byProvider(req));
      await subscribe(c.socket, { channel: "targets" });
      await mustPublish(gw, subscriptionClosed(project_id, { ...req, status: "completed" }));
      const [x, y] = await Promise.all([waitFor(a.socket, "subscription.closed"), waitFor(b.socket, "subscription.closed")]);
      assert.equal(x.event_id, y.event_id);
      await expectNothing(c.socket, "subscription.closed", 300);
    } finally {
      closeAll(a.socket, b.socket, c.socket);
    }
  });
});

describe("subscribing to a request the registry knows as terminal", () => {
  for (const [name, key] of [["payment_request_id", byPr], ["provider_payment_id", byProvider]]) {
    test(`by ${name}: subscribed, then subscription.closed to that socket alone`, async () => {
      const req = newRequest();
      const project_id = randomUUID();
      const early = await openSession(gw, { project_id });
      const late = await openSession(gw, { project_id });
      try {
        await subscribe(early.socket, byPr(req));
        await makeKnown(project_id, req, "pending");
        await waitFor(early.socket, "payment-request.updated");
        await makeKnown(project_id, req, "completed");
        await waitFor(early.socket, "payment-request.updated");

        const ack = await request(late.socket, { action: "subscribe", ...key(req) });
        assertAck(ack, "subscribed", { channel, project_id, ...(name === "payment_request_id" ? { payment_request_id: req.payment_request_id } : { provider_payment_id: req.provider_payment_id }) });
        const closed = await waitFor(late.socket, "subscription.closed");
        const { event_id, emitted_at, ...body } = closed;
        assert.match(String(event_id), UUID_V4);
        assert.ok(Number.isInteger(emitted_at));
        assert.deepEqual(body, { channel, project_id, payment_request_id: req.payment_request_id, provider_payment_id: req.provider_payment_id, status: "completed" });
        const entries = received(late.socket);
        const iAck = entries.findIndex((e) => e.event === "message" && e.args[0]?.event === "subscribed");
        const iClosed = entries.findIndex((e) => e.event === "subscription.closed");
        assert.ok(iAck < iClosed, "subscribed must come before subscription.closed");

        await expectNothing(early.socket, "subscription.closed", 300);
        // the late socket's subscription is over; the early one still holds its own
        await mustPublish(gw, paymentRequestUpdated(project_id, req, { status: "completed", update_type: "completed" }));
        await waitFor(early.socket, "payment-request.updated");
        await expectNothing(late.socket, "payment-request.updated", 300);
      } finally {
        closeAll(early.socket, late.socket);
      }
    });
  }
});
