//! Assertions on system messages (seed 003, CONTRACT §2).

import assert from "node:assert/strict";

export const ABSENT = Symbol("absent");
export const ANY = Symbol("any");

/**
 * Assert `reply` is `{event:"error", code, message, meta}` with `meta.channel` / `meta.action`
 * equal to the given values (`ABSENT`: the key must not be there; `ANY`: not checked) and,
 * for invalid_payload, at least one `{field, message}` in `meta.errors`.
 */
export function assertError(reply, code, { channel = ABSENT, action = ABSENT, errors } = {}) {
  const shown = JSON.stringify(reply);
  assert.equal(reply?.event, "error", `expected an error, got ${shown}`);
  assert.equal(reply.code, code, `expected code ${code}, got ${shown}`);
  assert.equal(typeof reply.message, "string", `error.message must be a string: ${shown}`);
  assert.ok(reply.message.length > 0, `error.message must not be empty: ${shown}`);
  assert.equal(typeof reply.meta, "object", `error.meta must be an object: ${shown}`);
  assert.ok(reply.meta !== null, `error.meta must not be null: ${shown}`);
  for (const [key, want] of [["channel", channel], ["action", action]]) {
    if (want === ANY) continue;
    if (want === ABSENT) {
      assert.ok(!(key in reply.meta), `meta.${key} must be absent: ${shown}`);
    } else {
      assert.equal(reply.meta[key], want, `meta.${key}: ${shown}`);
    }
  }
  if (code === "invalid_payload") {
    assert.ok(Array.isArray(reply.meta.errors), `invalid_payload needs meta.errors: ${shown}`);
    assert.ok(reply.meta.errors.length >= 1, `meta.errors must not be empty: ${shown}`);
    for (const e of reply.meta.errors) {
      assert.equal(typeof e.field, "string", `meta.errors[].field must be a string: ${shown}`);
      assert.equal(typeof e.message, "string", `meta.errors[].message must be a string: ${shown}`);
    }
  }
  if (errors !== undefined) assert.deepEqual(reply.meta.errors, errors);
  return reply;
}

/** Assert an ack is exactly {event, channel, project_id, payment_request_id, provider_payment_id}. */
export function assertAck(reply, event, { channel, project_id, payment_request_id = null, provider_payment_id = null }) {
  assert.deepEqual(reply, { event, channel, project_id, payment_request_id, provider_payment_id });
}
