//! The whole-project channels (targets, payment-methods): every event with its envelope,
//! the payment-method allow-list, project isolation, and which channels a connection may
//! use (LIVEGATE_CHANNELS, LIVEGATE_CHANNEL_PERMISSIONS, the permission `all`).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  CHANNELS,
  closeAll,
  expectNothing,
  mustPublish,
  openSession,
  randomUUID,
  request,
  startGateway,
  subscribe,
  waitFor,
} from "./support/gateway.mjs";
import { ANY, assertAck, assertError } from "./support/assertions.mjs";
import {
  assertBroadcast,
  paymentMethod,
  paymentMethodAdded,
  paymentMethodRemoved,
  paymentRequestUpdated,
  targetEvent,
  targetRemoved,
  targetSnapshot,
} from "./support/fixtures.mjs";

let gw;
let restricted;
before(async () => {
  [gw, restricted] = await Promise.all([
    startGateway({}, { name: "channels" }),
    startGateway(
      { LIVEGATE_CHANNELS: "targets,payment-requests", LIVEGATE_CHANNEL_PERMISSIONS: "payment-requests=payments:read" },
      { name: "channels-restricted" },
    ),
  ]);
});
after(async () => {
  await Promise.all([gw?.stop(), restricted?.stop()]);
});

async function subscribedSession(channel, project_id = randomUUID()) {
  const s = await openSession(gw, { project_id });
  await subscribe(s.socket, { channel });
  return s;
}

describe("targets: every event, with its envelope", () => {
  const cases = [
    ["target.added", (p) => targetEvent("target.added", p)],
    ["target.removed", (p) => targetRemoved(p)],
    ["target.enabled", (p) => targetEvent("target.enabled", p, { target: targetSnapshot({ is_enabled: true }) })],
    ["target.disabled", (p) => targetEvent("target.disabled", p, { target: targetSnapshot({ is_enabled: false, plan_count: undefined, participant_count: undefined }) })],
    ["target.updated", (p) => targetEvent("target.updated", p, { target: targetSnapshot({ target_name: "Renamed", plan_count: 3, participant_count: 142, platform: "telegram", kind: "channel", parent_target_id: randomUUID() }) })],
  ];
  for (const [event, make] of cases) {
    test(`${event} without event_id: a fresh UUID v4, the one the API answered`, async () => {
      const { socket, project_id } = await subscribedSession("targets");
      try {
        const pub = make(project_id);
        for (const k of Object.keys(pub.target ?? {})) if (pub.target[k] === undefined) delete pub.target[k];
        const since = Date.now();
        const answeredId = await mustPublish(gw, pub);
        const got = await waitFor(socket, event);
        assertBroadcast(got, pub, { since, answeredId });
      } finally {
        socket.close();
      }
    });
    test(`${event} with its own event_id keeps it`, async () => {
      const { socket, project_id } = await subscribedSession("targets");
      try {
        const pub = { ...make(project_id), event_id: randomUUID() };
        for (const k of Object.keys(pub.target ?? {})) if (pub.target[k] === undefined) delete pub.target[k];
        const since = Date.now();
        const answeredId = await mustPublish(gw, pub);
        assert.equal(answeredId, pub.event_id, "the publish API must answer the publication's own event_id");
        assertBroadcast(await waitFor(socket, event), pub, { since });
      } finally {
        socket.close();
      }
    });
  }

  test("a publication's extra fields are forwarded as they are", async () => {
    const { socket, project_id } = await subscribedSession("targets");
    try {
      const pub = targetEvent("target.updated", project_id, { schema_version: 2, actor: { kind: "api", id: "k-1" } });
      pub.target.icon_url = "https://cdn.example/icon.png";
      const since = Date.now();
      await mustPublish(gw, pub);
      assertBroadcast(await waitFor(socket, "target.updated"), pub, { since });
    } finally {
      socket.close();
    }
  });

  test("each publication gets its own fresh event_id", async () => {
    const { socket, project_id } = await subscribedSession("targets");
    try {
      await mustPublish(gw, targetEvent("target.added", project_id));
      await mustPublish(gw, targetEvent("target.added", project_id));
      const a = await waitFor(socket, "target.added");
      const b = await waitFor(socket, "target.added");
      assert.notEqual(a.event_id, b.event_id);
    } finally {
      socket.close();
    }
  });

  test("every subscriber of the project gets it, with the same event_id", async () => {
    const project_id = randomUUID();
    const a = await subscribedSession("targets", project_id);
    const b = await subscribedSession("targets", project_id);
    try {
      await mustPublish(gw, targetEvent("target.added", project_id));
      const [x, y] = await Promise.all([waitFor(a.socket, "target.added"), waitFor(b.socket, "target.added")]);
      assert.equal(x.event_id, y.event_id);
    } finally {
      closeAll(a.socket, b.socket);
    }
  });

  test("a project id published in upper case reaches the project and is sent in lower case", async () => {
    const { socket, project_id } = await subscribedSession("targets");
    try {
      const pub = targetEvent("target.added", project_id.toUpperCase());
      await mustPublish(gw, pub);
      const got = await waitFor(socket, "target.added");
      assert.equal(got.project_id, project_id);
    } finally {
      socket.close();
    }
  });

  test("a socket subscribed to targets does not get payment-methods events", async () => {
    const { socket, project_id } = await subscribedSession("targets");
    try {
      await mustPublish(gw, paymentMethodAdded(project_id));
      await mustPublish(gw, targetEvent("target.added", project_id));
      await waitFor(socket, "target.added");
      await expectNothing(socket, "payment-method.added", 300);
    } finally {
      socket.close();
    }
  });

  test("a socket that did not subscribe gets nothing", async () => {
    const project_id = randomUUID();
    const idle = await openSession(gw, { project_id });
    const witness = await subscribedSession("targets", project_id);
    try {
      await mustPublish(gw, targetEvent("target.added", project_id));
      await waitFor(witness.socket, "target.added");
      await expectNothing(idle.socket, "target.added", 300);
    } finally {
      closeAll(idle.socket, witness.socket);
    }
  });
});

describe("cross-project isolation", () => {
  test("a socket of project B never gets project A's events", async () => {
    const A = randomUUID();
    const B = randomUUID();
    const a = await openSession(gw, { project_id: A });
    // B's user may also open A: isolation is by the connection's project, not the user.
    const b = await openSession(gw, { project_id: B, claims: { projects: [B, A] } });
    try {
      for (const s of [a, b]) {
        await subscribe(s.socket, { channel: "targets" });
        await subscribe(s.socket, { channel: "payment-methods" });
      }
      await mustPublish(gw, targetEvent("target.added", A));
      await mustPublish(gw, paymentMethodAdded(A));
      await mustPublish(gw, paymentMethodRemoved(A));
      await waitFor(a.socket, "target.added");
      await waitFor(a.socket, "payment-method.added");
      await waitFor(a.socket, "payment-method.removed");
      await expectNothing(b.socket, "target.added", 300);
      await expectNothing(b.socket, "payment-method.added", 0);
      await expectNothing(b.socket, "payment-method.removed", 0);
    } finally {
      closeAll(a.socket, b.socket);
    }
  });
});

describe("payment-methods", () => {
  test("payment-method.added with its envelope", async () => {
    const { socket, project_id } = await subscribedSession("payment-methods");
    try {
      const pub = paymentMethodAdded(project_id);
      const since = Date.now();
      const answeredId = await mustPublish(gw, pub);
      assertBroadcast(await waitFor(socket, "payment-method.added"), pub, { since, answeredId });
    } finally {
      socket.close();
    }
  });

  test("payment-method.removed with and without user_id, event_id kept", async () => {
    const { socket, project_id } = await subscribedSession("payment-methods");
    try {
      const withUser = { ...paymentMethodRemoved(project_id), event_id: randomUUID() };
      const withoutUser = paymentMethodRemoved(project_id);
      delete withoutUser.user_id;
      let since = Date.now();
      await mustPublish(gw, withUser);
      assertBroadcast(await waitFor(socket, "payment-method.removed"), withUser, { since });
      since = Date.now();
      const answeredId = await mustPublish(gw, withoutUser);
      assertBroadcast(await waitFor(socket, "payment-method.removed"), withoutUser, { since, answeredId });
    } finally {
      socket.close();
    }
  });

  test("payment_method is reduced to its allow-list: tokens and unknown keys dropped", async () => {
    const { socket, project_id } = await subscribedSession("payment-methods");
    try {
      const allowedMetadata = {
        last4: "4242",
        brand: "visa",
        exp_month: 12,
        exp_year: 2030,
        country: "US",
        type: "card",
        billing_country: "DE",
        paypal_email: "buyer@example.com",
        paypal_payer_id: "PAYER123",
        paystack_email: "buyer@paystack.example",
      };
      const pm = paymentMethod({
        metadata: {
          ...allowedMetadata,
          stripe_payment_method: "pm_RAW_SECRET_TOKEN",
          card_fingerprint: "fp_SECRET",
          raw: { token: "tok_SECRET" },
        },
        provider_token: "tok_RAW_SECRET",
        authorization_code: "AUTH_SECRET",
        card_number: "4242424242424242",
      });
      const pub = paymentMethodAdded(project_id, { payment_method: pm });
      const since = Date.now();
      await mustPublish(gw, pub);
      const got = await waitFor(socket, "payment-method.added");
      const expectedPm = {
        payment_method_id: pm.payment_method_id,
        merchant_account_id: pm.merchant_account_id,
        label: pm.label,
        metadata: allowedMetadata,
        user_id: pm.user_id,
      };
      const { event: _e, ...body } = pub;
      assertBroadcast(got, pub, { since, expectedBody: { ...body, payment_method: expectedPm } });
      assert.doesNotMatch(JSON.stringify(got), /SECRET|4242424242424242/, "no provider secret may reach a client");
    } finally {
      socket.close();
    }
  });

  test("a card-only method keeps exactly its card fields", async () => {
    const { socket, project_id } = await subscribedSession("payment-methods");
    try {
      const pm = paymentMethod();
      const pub = paymentMethodAdded(project_id, { payment_method: { ...pm, metadata: { ...pm.metadata, gateway_customer: "cus_SECRET" } } });
      await mustPublish(gw, pub);
      const got = await waitFor(socket, "payment-method.added");
      assert.deepEqual(got.payment_method, pm);
    } finally {
      socket.close();
    }
  });

  test("a PayPal / Paystack method keeps its display fields", async () => {
    const { socket, project_id } = await subscribedSession("payment-methods");
    try {
      const paypal = paymentMethod({ label: "PayPal", metadata: { paypal_email: "a@b.example", paypal_payer_id: "P1", billing_agreement_id: "B-SECRET" } });
      const paystack = paymentMethod({ label: "Paystack", metadata: { paystack_email: "c@d.example", authorization_code: "AUTH_SECRET" } });
      await mustPublish(gw, paymentMethodAdded(project_id, { payment_method: paypal }));
      await mustPublish(gw, paymentMethodAdded(project_id, { payment_method: paystack }));
      const byId = {};
      for (let i = 0; i < 2; i++) {
        const got = await waitFor(socket, "payment-method.added");
        byId[got.payment_method.payment_method_id] = got.payment_method;
      }
      assert.deepEqual(byId[paypal.payment_method_id].metadata, { paypal_email: "a@b.example", paypal_payer_id: "P1" });
      assert.deepEqual(byId[paystack.payment_method_id].metadata, { paystack_email: "c@d.example" });
    } finally {
      socket.close();
    }
  });

  test("extra top-level fields of the publication are forwarded, the method is still filtered", async () => {
    const { socket, project_id } = await subscribedSession("payment-methods");
    try {
      const pm = paymentMethod();
      const pub = paymentMethodAdded(project_id, { payment_method: { ...pm, fingerprint: "fp_SECRET" }, source: "checkout" });
      await mustPublish(gw, pub);
      const got = await waitFor(socket, "payment-method.added");
      assert.equal(got.source, "checkout");
      assert.deepEqual(got.payment_method, pm);
    } finally {
      socket.close();
    }
  });
});

describe("channels a connection may use", () => {
  test("default node: every channel, and `ready` lists them", async () => {
    const { socket, ready } = await openSession(gw);
    try {
      assert.deepEqual([...ready.channels].sort(), CHANNELS);
    } finally {
      socket.close();
    }
  });

  test("LIVEGATE_CHANNELS + a permission rule: no permissions -> only targets", async () => {
    const { socket, ready, project_id } = await openSession(restricted);
    try {
      assert.deepEqual([...ready.channels].sort(), ["targets"]);
      assertAck(await request(socket, { action: "subscribe", channel: "targets" }), "subscribed", { channel: "targets", project_id });
      const reply = await request(socket, { action: "subscribe", channel: "payment-requests", payment_request_id: randomUUID() });
      assertError(reply, "forbidden", { channel: "payment-requests", action: "subscribe" });
    } finally {
      socket.close();
    }
  });

  test("the required permission opens its channel", async () => {
    const { socket, ready, project_id } = await openSession(restricted, { claims: { permissions: ["payments:read"] } });
    try {
      assert.deepEqual([...ready.channels].sort(), ["payment-requests", "targets"]);
      const id = randomUUID();
      assertAck(await request(socket, { action: "subscribe", channel: "payment-requests", payment_request_id: id }), "subscribed", {
        channel: "payment-requests",
        project_id,
        payment_request_id: id,
      });
    } finally {
      socket.close();
    }
  });

  test("other permissions do not open it", async () => {
    const { socket, ready } = await openSession(restricted, { claims: { permissions: ["payments:write", "targets:read", "payments"] } });
    try {
      assert.deepEqual([...ready.channels].sort(), ["targets"]);
      assertError(await request(socket, { action: "subscribe", channel: "payment-requests", provider_payment_id: "pi_1" }), "forbidden", {
        channel: "payment-requests",
        action: "subscribe",
      });
    } finally {
      socket.close();
    }
  });

  test("the permission `all` grants every enabled channel, not a disabled one", async () => {
    const { socket, ready } = await openSession(restricted, { claims: { permissions: ["all"] } });
    try {
      assert.deepEqual([...ready.channels].sort(), ["payment-requests", "targets"]);
      await subscribe(socket, { channel: "payment-requests", payment_request_id: randomUUID() });
      // payment-methods is disabled on this node: it must be refused (the contract does not say
      // whether as unsupported_channel or forbidden), with meta.channel / meta.action.
      const reply = await request(socket, { action: "subscribe", channel: "payment-methods" });
      assert.ok(["unsupported_channel", "forbidden"].includes(reply.code), `a disabled channel must be refused: ${JSON.stringify(reply)}`);
      assertError(reply, reply.code, { channel: "payment-methods", action: "subscribe" });
    } finally {
      socket.close();
    }
  });

  test("a forbidden subscribe delivers nothing of that channel", async () => {
    const project_id = randomUUID();
    const denied = await openSession(restricted, { project_id });
    const allowed = await openSession(restricted, { project_id, claims: { permissions: ["all"] } });
    try {
      const payment_request_id = randomUUID();
      assertError(await request(denied.socket, { action: "subscribe", channel: "payment-requests", payment_request_id }), "forbidden", { channel: "payment-requests", action: ANY });
      await subscribe(allowed.socket, { channel: "payment-requests", payment_request_id });
      await mustPublish(restricted, paymentRequestUpdated(project_id, { payment_request_id, provider_payment_id: `pi_${randomUUID()}` }));
      await waitFor(allowed.socket, "payment-request.updated");
      await expectNothing(denied.socket, "payment-request.updated", 300);
    } finally {
      closeAll(denied.socket, allowed.socket);
    }
  });
});
