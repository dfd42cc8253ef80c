//! The HTTP side (CONTRACT §5): POST /api/v1/publish answers 202 {event_id} or a JSON error
//! (401 unauthorized, 400 invalid_json, 422 invalid_publication with errors[]); a refused
//! publication is never delivered, a valid one after it is. /healthz and /readyz answer 200.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  UUID_V4,
  closeAll,
  expectNothing,
  mintToken,
  openSession,
  randomUUID,
  startGateway,
  subscribe,
  waitFor,
} from "./support/gateway.mjs";
import {
  newRequest,
  paymentMethodAdded,
  paymentRequestUpdated,
  subscriptionClosed,
  targetEvent,
  targetRemoved,
} from "./support/fixtures.mjs";

let gw;
before(async () => {
  gw = await startGateway({}, { name: "publish-api" });
});
after(async () => {
  await gw?.stop();
});

const bearer = () => ({ authorization: `Bearer ${gw.publishKey}` });

function assertApiError(res, status, code) {
  assert.equal(res.status, status, `expected ${status}, got ${res.status} ${res.text}`);
  assert.equal(typeof res.body, "object", `the error body must be JSON: ${res.text}`);
  assert.equal(res.body?.error?.code, code, res.text);
  assert.equal(typeof res.body.error.message, "string", res.text);
  assert.ok(res.body.error.message.length > 0, res.text);
  if (code === "invalid_publication") {
    assert.ok(Array.isArray(res.body.error.errors) && res.body.error.errors.length >= 1, `errors[] required: ${res.text}`);
    for (const e of res.body.error.errors) {
      assert.equal(typeof e.field, "string", res.text);
      assert.equal(typeof e.message, "string", res.text);
    }
  }
  return res.body.error;
}

describe("health", () => {
  test("GET /healthz is 200", async () => {
    assert.equal((await gw.http("GET", "/healthz")).status, 200);
  });
  test("GET /readyz is 200", async () => {
    assert.equal((await gw.http("GET", "/readyz")).status, 200);
  });
});

describe("POST /api/v1/publish", () => {
  test("a valid publication: 202 {event_id}", async () => {
    const res = await gw.publish(targetEvent("target.added", randomUUID()));
    assert.equal(res.status, 202, res.text);
    assert.match(res.body?.event_id ?? "", UUID_V4);
  });

  test("a publication's own event_id is answered back", async () => {
    const event_id = randomUUID();
    const res = await gw.publish({ ...targetRemoved(randomUUID()), event_id });
    assert.equal(res.status, 202, res.text);
    assert.deepEqual(res.body, { event_id });
  });

  test("no Authorization header: 401 unauthorized", async () => {
    assertApiError(await gw.publish(targetEvent("target.added", randomUUID()), { key: null }), 401, "unauthorized");
  });
  test("a wrong bearer: 401 unauthorized", async () => {
    assertApiError(await gw.publish(targetEvent("target.added", randomUUID()), { key: "not-the-key" }), 401, "unauthorized");
  });
  test("the key with another scheme: 401 unauthorized", async () => {
    const res = await gw.http("POST", "/api/v1/publish", {
      json: targetEvent("target.added", randomUUID()),
      headers: { authorization: `Basic ${gw.publishKey}` },
    });
    assertApiError(res, 401, "unauthorized");
  });
  test("the key as a prefix of a longer bearer: 401", async () => {
    assertApiError(await gw.publish(targetEvent("target.added", randomUUID()), { key: `${gw.publishKey}x` }), 401, "unauthorized");
  });
  test("a user JWT is not a publish key: 401", async () => {
    assertApiError(await gw.publish(targetEvent("target.added", randomUUID()), { key: mintToken({}) }), 401, "unauthorized");
  });

  test("a body that is not JSON: 400 invalid_json", async () => {
    const res = await gw.http("POST", "/api/v1/publish", {
      body: '{"event": "target.added", ',
      headers: { ...bearer(), "content-type": "application/json" },
    });
    assertApiError(res, 400, "invalid_json");
  });

  test("an empty body: 400 invalid_json", async () => {
    const res = await gw.http("POST", "/api/v1/publish", { body: "", headers: { ...bearer(), "content-type": "application/json" } });
    assertApiError(res, 400, "invalid_json");
  });

  const P = randomUUID();
  const invalid = {
    "an unknown event": () => ({ ...targetEvent("target.added", P), event: "target.exploded" }),
    "no event field": () => {
      const { event: _e, ...rest } = targetEvent("target.added", P);
      return rest;
    },
    "event not a string": () => ({ ...targetEvent("target.added", P), event: 42 }),
    "a missing field (target)": () => {
      const { target: _t, ...rest } = targetEvent("target.added", P);
      return rest;
    },
    "a missing field (project_id)": () => {
      const { project_id: _p, ...rest } = targetEvent("target.added", P);
      return rest;
    },
    "a missing nested field (target.target_id)": () => {
      const pub = targetEvent("target.updated", P);
      delete pub.target.target_id;
      return pub;
    },
    "a mistyped field (target.is_enabled a string)": () => {
      const pub = targetEvent("target.enabled", P);
      pub.target.is_enabled = "yes";
      return pub;
    },
    "a mistyped field (payment_method a string)": () => ({ ...paymentMethodAdded(P), payment_method: "pm_123" }),
    "a mistyped event_id (a number)": () => ({ ...targetEvent("target.added", P), event_id: 12345 }),
    "a project_id that is not a UUID": () => targetEvent("target.added", "project-one"),
    "a channel not matching the event": () => ({ ...targetEvent("target.added", P), channel: "payment-methods" }),
    "an unknown channel": () => ({ ...targetEvent("target.added", P), channel: "chat" }),
    "a payment-request.updated without payment_request": () => {
      const { payment_request: _r, ...rest } = paymentRequestUpdated(P, newRequest());
      return rest;
    },
    "a payment-request.updated with a number amount": () => {
      const pub = paymentRequestUpdated(P, newRequest());
      pub.payment_request.amount = 19.99;
      return pub;
    },
    "a subscription.closed without status": () => {
      const { status: _s, ...rest } = subscriptionClosed(P, newRequest());
      return rest;
    },
    "a subscription.closed with neither id": () => subscriptionClosed(P, { status: "completed" }),
  };
  for (const [name, make] of Object.entries(invalid)) {
    test(`${name}: 422 invalid_publication`, async () => {
      assertApiError(await gw.publish(make()), 422, "invalid_publication");
    });
  }

  test("a JSON value that is not an object: 400 or 422", async () => {
    for (const json of [[targetEvent("target.added", P)], "target.added", 5, null]) {
      const res = await gw.http("POST", "/api/v1/publish", { json, headers: bearer() });
      assert.ok([400, 422].includes(res.status), `${JSON.stringify(json)} -> ${res.status} ${res.text}`);
      assertApiError(res, res.status, res.status === 400 ? "invalid_json" : "invalid_publication");
    }
  });
});

describe("refused publications are never delivered; a valid one after them is", () => {
  test("targets, payment-methods and payment-requests subscribers get only the valid ones", async () => {
    const project_id = randomUUID();
    const req = newRequest();
    const s = await openSession(gw, { project_id });
    try {
      await subscribe(s.socket, { channel: "targets" });
      await subscribe(s.socket, { channel: "payment-methods" });
      await subscribe(s.socket, { channel: "payment-requests", payment_request_id: req.payment_request_id });

      const bad = [];
      const p1 = targetEvent("target.added", project_id);
      p1.target.is_enabled = "yes";
      bad.push(p1);
      bad.push({ ...targetEvent("target.added", project_id), channel: "payment-methods" });
      bad.push({ ...paymentMethodAdded(project_id), payment_method: 7 });
      const p4 = paymentRequestUpdated(project_id, req);
      delete p4.payment_request.status;
      bad.push(p4);
      bad.push({ ...subscriptionClosed(project_id, { ...req }), status: 3 });
      for (const pub of bad) {
        const res = await gw.publish(pub);
        assert.equal(res.status, 422, `${JSON.stringify(pub)} -> ${res.status} ${res.text}`);
      }
      const unauth = await gw.publish(targetEvent("target.removed", project_id), { key: "nope" });
      assert.equal(unauth.status, 401);

      const good = targetEvent("target.updated", project_id);
      assert.equal((await gw.publish(good)).status, 202);
      const got = await waitFor(s.socket, "target.updated");
      assert.equal(got.target.target_id, good.target.target_id);
      await expectNothing(s.socket, "target.added", 300);
      await expectNothing(s.socket, "target.removed", 0);
      await expectNothing(s.socket, "payment-method.added", 0);
      await expectNothing(s.socket, "payment-request.updated", 0);
      await expectNothing(s.socket, "subscription.closed", 0);
      // the refused subscription.closed did not end the subscription
      const pr = paymentRequestUpdated(project_id, req);
      assert.equal((await gw.publish(pr)).status, 202);
      await waitFor(s.socket, "payment-request.updated");
    } finally {
      closeAll(s.socket);
    }
  });

  test("a refused publication does not record anything in the registry", async () => {
    const req = newRequest();
    const owner = randomUUID();
    const bad = paymentRequestUpdated(owner, req);
    bad.payment_request.amount = 5; // mistyped
    assert.equal((await gw.publish(bad)).status, 422);
    // Were it recorded, another project would now be forbidden.
    const s = await openSession(gw);
    try {
      await subscribe(s.socket, { channel: "payment-requests", payment_request_id: req.payment_request_id });
    } finally {
      s.socket.close();
    }
  });
});
