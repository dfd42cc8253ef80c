//! Publications of every event (CONTRACT §3, §5; seed 000), and the assertion that a
//! delivered broadcast is exactly its publication plus the envelope.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { UUID_V4 } from "./gateway.mjs";

export function targetSnapshot(overrides = {}) {
  return {
    target_id: randomUUID(),
    target_name: "My Server",
    platform: "discord",
    kind: "guild",
    external_id: "123456789012345678",
    is_enabled: true,
    parent_target_id: null,
    plan_count: 0,
    participant_count: 0,
    ...overrides,
  };
}

/** target.added / target.enabled / target.disabled / target.updated */
export function targetEvent(event, project_id, { target = targetSnapshot(), ...extra } = {}) {
  return { event, channel: "targets", project_id, platform: target.platform, target, ...extra };
}

export function targetRemoved(project_id, extra = {}) {
  return {
    event: "target.removed",
    channel: "targets",
    project_id,
    platform: "telegram",
    target_id: randomUUID(),
    kind: "channel",
    external_id: "-1001234567890",
    ...extra,
  };
}

export function paymentMethod(overrides = {}) {
  return {
    payment_method_id: randomUUID(),
    merchant_account_id: randomUUID(),
    label: "Visa •••• 4242",
    metadata: { last4: "4242", brand: "visa", exp_month: 12, exp_year: 2030, country: "US", type: "card", billing_country: "US" },
    user_id: `user-${randomUUID().slice(0, 8)}`,
    ...overrides,
  };
}

export function paymentMethodAdded(project_id, { payment_method = paymentMethod(), ...extra } = {}) {
  return { event: "payment-method.added", channel: "payment-methods", project_id, payment_method, ...extra };
}

export function paymentMethodRemoved(project_id, extra = {}) {
  return {
    event: "payment-method.removed",
    channel: "payment-methods",
    project_id,
    payment_method_id: randomUUID(),
    user_id: "user-42",
    ...extra,
  };
}

const TERMINAL = new Set(["completed", "failed", "cancelled", "expired"]);

export function paymentRequestSnapshot({ payment_request_id = randomUUID(), provider_payment_id = `pi_${randomUUID().replaceAll("-", "")}`, status = "pending", ...overrides } = {}) {
  const now = new Date().toISOString();
  return {
    payment_request_id,
    provider_payment_id,
    status,
    request_type: "invoice",
    amount: "19.99",
    currency: "USD",
    merchant_account_id: "6f1c2d3e-4b5a-4978-8a1b-2c3d4e5f6a7b",
    user_id: "user-42",
    provider: "stripe",
    created_at: now,
    updated_at: now,
    settled_at: status === "completed" ? now : null,
    ...overrides,
  };
}

/** payment-request.updated for one request (ids fixed by `req`). */
export function paymentRequestUpdated(project_id, req, { update_type, status = "pending", ...extra } = {}) {
  return {
    event: "payment-request.updated",
    update_type: update_type ?? (status === "completed" ? "completed" : "created"),
    channel: "payment-requests",
    project_id,
    payment_request: paymentRequestSnapshot({ ...req, status }),
    ...extra,
  };
}

export function subscriptionClosed(project_id, { payment_request_id, provider_payment_id, status = "completed", ...extra } = {}) {
  const pub = { event: "subscription.closed", channel: "payment-requests", project_id, status, ...extra };
  if (payment_request_id !== undefined) pub.payment_request_id = payment_request_id;
  if (provider_payment_id !== undefined) pub.provider_payment_id = provider_payment_id;
  return pub;
}

/** A fresh payment request identity: {payment_request_id, provider_payment_id}. */
export function newRequest() {
  return { payment_request_id: randomUUID(), provider_payment_id: `pi_${randomUUID().replaceAll("-", "")}` };
}

export const isTerminal = (s) => TERMINAL.has(s);

/**
 * Assert a delivered broadcast is exactly `publication` without `event`, plus `event_id`
 * (the publication's own, else a UUID v4 equal to `answeredId` when given) and an integer
 * `emitted_at` stamped between `since` and now. `expectedBody` replaces the body when the
 * gateway must transform it (payment-method allow-list, lower-cased project ids).
 */
export function assertBroadcast(payload, publication, { since, answeredId, expectedBody } = {}) {
  assert.equal(typeof payload, "object", "broadcast payload must be an object");
  const { event: _event, ...body } = publication;
  const { emitted_at, ...rest } = payload;
  assert.ok(Number.isInteger(emitted_at), `emitted_at must be an integer, got ${JSON.stringify(emitted_at)}`);
  if (since !== undefined) {
    assert.ok(emitted_at >= since - 1000 && emitted_at <= Date.now() + 1000, `emitted_at ${emitted_at} is not the time of emission (since ${since}, now ${Date.now()})`);
  }
  if (publication.event_id !== undefined) {
    assert.equal(rest.event_id, publication.event_id, "the publication's event_id must be kept");
  } else {
    assert.match(String(rest.event_id), UUID_V4, "a fresh event_id must be a UUID v4");
    if (answeredId !== undefined) assert.equal(rest.event_id, answeredId, "the delivered event_id must be the one the publish API answered");
  }
  const want = { ...(expectedBody ?? body), event_id: rest.event_id };
  assert.deepEqual(rest, want);
}
