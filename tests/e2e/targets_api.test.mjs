//! The targets REST API served in-process by the gateway (`LIVEGATE_TARGETS_API=true`, the
//! embedded engine, the in-memory store): every endpoint of CONTRACT §6 with seed 001's
//! envelopes, every error, the live event each change publishes (CONTRACT §4, seed 000), and
//! concurrent PATCHes. The same API on Redis (`livegate-targets`) is in targets_redis.test.mjs.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  UUID_V4,
  closeAll,
  expectNothing,
  mintToken,
  nowSec,
  randomUUID,
  startGateway,
} from "./support/gateway.mjs";
import {
  TARGET_EVENTS,
  assertApiError,
  assertOk,
  newTarget,
  nextTargetEvent,
  targetsClient,
  targetsListener,
} from "./support/targets.mjs";

const KEY_PROJECT = randomUUID();
const API_KEY = "targets-e2e-api-key-0123456789";

let gw;

before(async () => {
  gw = await startGateway({
    LIVEGATE_TARGETS_API: "true",
    LIVEGATE_TARGETS_API_KEYS: `${KEY_PROJECT}=${API_KEY}`,
  }, { name: "targets-api" });
});

after(async () => {
  await gw?.stop();
});

/** A fresh project and a client with a user token for it. */
function project() {
  const id = randomUUID();
  return { id, api: targetsClient(gw.url, id, mintToken({ projects: [id] })) };
}

function assertTargetBroadcast(got, name, projectId, target) {
  assert.equal(got.name, name, JSON.stringify(got.payload));
  const { event_id, emitted_at, ...body } = got.payload;
  assert.match(event_id, UUID_V4);
  assert.ok(Number.isInteger(emitted_at));
  if (name === "target.removed") {
    assert.deepEqual(body, {
      channel: "targets",
      project_id: projectId,
      platform: target.platform,
      target_id: target.target_id,
      kind: target.kind,
      external_id: target.external_id,
    });
  } else {
    assert.deepEqual(body, { channel: "targets", project_id: projectId, platform: target.platform, target });
  }
}

describe("endpoints and envelopes (seed 001)", () => {
  test("POST creates: 201, defaults, a server-assigned target_id; a given target_id is kept", async () => {
    const { api } = project();
    const res = await api.create({ target_name: "  Acme  ", platform: "discord", kind: "guild", external_id: "42" });
    const t = assertOk(res, { method: "POST", path: api.path(), code: 201, message: "Target created" });
    assert.match(t.target_id, UUID_V4);
    assert.deepEqual(t, {
      target_id: t.target_id,
      target_name: "Acme",
      platform: "discord",
      kind: "guild",
      external_id: "42",
      is_enabled: true,
      parent_target_id: null,
      plan_count: 0,
      participant_count: 0,
    });
    const id = randomUUID();
    const child = assertOk(
      await api.create(newTarget({ target_id: id, kind: "role", parent_target_id: t.target_id, is_enabled: false, plan_count: null })),
      { code: 201, message: true },
    );
    assert.equal(child.target_id, id);
    assert.equal(child.parent_target_id, t.target_id);
    assert.equal(child.is_enabled, false);
    assert.equal("plan_count" in child, false, "an explicit null leaves the count out");
  });

  test("GET lists by name with total, limit (default 50, at most 200) and offset", async () => {
    const { api } = project();
    const names = Array.from({ length: 55 }, (_, i) => `t${String(i).padStart(2, "0")}`);
    for (const n of [...names].reverse()) await api.mustCreate({ target_name: n });
    let data = assertOk(await api.list(), { method: "GET", path: api.path(), total: 55 });
    assert.deepEqual(data.map((t) => t.target_name), names.slice(0, 50), "default limit 50, sorted by name");
    data = assertOk(await api.list("?limit=10&offset=50"), { path: api.path(), total: 55 });
    assert.deepEqual(data.map((t) => t.target_name), names.slice(50));
    data = assertOk(await api.list("?limit=200"), { total: 55 });
    assert.equal(data.length, 55);
    assert.deepEqual(assertOk(await api.list("?offset=100"), { total: 55 }), []);
    const empty = project();
    assert.deepEqual(assertOk(await empty.api.list(), { total: 0 }), [], "a project without targets");
  });

  test("GET /{target_id} answers the stored target", async () => {
    const { api } = project();
    const t = await api.mustCreate({ target_name: "One" });
    assert.deepEqual(assertOk(await api.get(t.target_id), { method: "GET", path: api.path(`/${t.target_id}`) }), t);
  });

  test("PATCH /{target_id} changes each patchable field and answers the new snapshot", async () => {
    const { api } = project();
    const parent = await api.mustCreate({ target_name: "Parent" });
    const t = await api.mustCreate({ target_name: "Child" });
    const changes = {
      target_name: "Renamed",
      is_enabled: false,
      kind: "channel",
      external_id: "-1001",
      parent_target_id: parent.target_id,
      plan_count: 3,
      participant_count: 142,
    };
    const after = assertOk(await api.patch(t.target_id, changes), {
      method: "PATCH",
      path: api.path(`/${t.target_id}`),
      message: "Target updated",
    });
    assert.deepEqual(after, { ...t, ...changes });
    assert.deepEqual(assertOk(await api.get(t.target_id)), after);
    const cleared = assertOk(await api.patch(t.target_id, { parent_target_id: null, plan_count: null }), { message: true });
    assert.equal(cleared.parent_target_id, null);
    assert.equal("plan_count" in cleared, false);
    assertOk(await api.patch(t.target_id, {}), { message: "No change" });
    assertOk(await api.patch(t.target_id, { target_id: t.target_id, is_enabled: false }), { message: "No change" });
  });

  test("bulk PATCH updates several targets at once", async () => {
    const { api } = project();
    const a = await api.mustCreate({ target_name: "A" });
    const b = await api.mustCreate({ target_name: "B", is_enabled: false });
    const data = assertOk(
      await api.bulk([
        { target_id: a.target_id, is_enabled: false },
        { target_id: b.target_id, is_enabled: true, target_name: "B2" },
      ]),
      { method: "PATCH", path: api.path(), total: 2, message: "Successfully updated 2 target(s)" },
    );
    assert.deepEqual(data, [
      { ...a, is_enabled: false },
      { ...b, is_enabled: true, target_name: "B2" },
    ]);
  });

  test("DELETE answers 204 without a body, then the target is gone", async () => {
    const { api } = project();
    const t = await api.mustCreate();
    const res = await api.remove(t.target_id);
    assert.equal(res.status, 204);
    assert.equal(res.text, "");
    assert.match(res.headers.get("x-request-id") ?? "", UUID_V4);
    assertApiError(await api.get(t.target_id), 404, "not_found");
    assertApiError(await api.remove(t.target_id), 404, "not_found", { method: "DELETE" });
  });

  test("a configured per-project API key is accepted for its project only", async () => {
    const api = targetsClient(gw.url, KEY_PROJECT, API_KEY);
    const t = await api.mustCreate({ target_name: "By key" });
    assertOk(await api.patch(t.target_id, { is_enabled: false }), { message: true });
    const other = randomUUID();
    assertApiError(await targetsClient(gw.url, other, API_KEY).list(), 403, "project_forbidden");
  });
});

describe("errors", () => {
  test("400 for a body that is not JSON", async () => {
    const { api } = project();
    const t = await api.mustCreate();
    for (const [method, rest] of [["POST", ""], ["PATCH", ""], ["PATCH", `/${t.target_id}`]]) {
      const res = await api.call(method, rest, undefined, { raw: '{"target_name": ' });
      assertApiError(res, 400, "invalid_json", { method, path: api.path(rest) });
    }
    assertApiError(await api.call("POST", "", undefined, { raw: "" }), 400, "invalid_json");
  });

  test("401 without a bearer, with a bad one, an expired one, a non-user token or a revoked session", async () => {
    const p = randomUUID();
    const cases = [
      [null, "auth_missing"],
      ["", "auth_missing"],
      ["not.a.token", "invalid_token"],
      [mintToken({ projects: [p] }, { key: "some-other-secret-0123456789" }), "invalid_token"],
      [mintToken({ projects: [p], exp: nowSec() - 3600 }), "token_expired"],
      [mintToken({ projects: [p], token_use: "api_key" }), "not_a_user_token"],
      [mintToken({ projects: [p], token_use: undefined }), "not_a_user_token"],
    ];
    for (const [auth, code] of cases) {
      const api = targetsClient(gw.url, p, auth === "" ? null : auth);
      const res = auth === "" ? await api.call("GET", "", undefined, { headers: { authorization: "Bearer " } }) : await api.list();
      assertApiError(res, 401, code, { method: "GET", path: api.path() });
      // Credentials come first: a bad body does not change the answer.
      assertApiError(await api.call("POST", "", undefined, { raw: "{" }), 401, code);
    }
    const sid = randomUUID();
    const api = targetsClient(gw.url, p, mintToken({ projects: [p], sid }));
    assertOk(await api.list(), { total: 0 });
    assert.equal((await gw.revoke(sid)).status, 202);
    assertApiError(await api.list(), 401, "session_revoked");
  });

  test("403 when the token's projects lack the path project", async () => {
    const mine = randomUUID();
    const theirs = randomUUID();
    const api = targetsClient(gw.url, theirs, mintToken({ projects: [mine] }));
    assertApiError(await api.list(), 403, "project_forbidden", { path: api.path() });
    assertApiError(await api.create(newTarget()), 403, "project_forbidden", { method: "POST" });
    assertApiError(await api.bulk([{ target_id: randomUUID(), is_enabled: true }]), 403, "project_forbidden");
    assertApiError(await api.remove(randomUUID()), 403, "project_forbidden");
  });

  test("404 for unknown targets and for a project id that is not a UUID", async () => {
    const { id, api } = project();
    const missing = randomUUID();
    assertApiError(await api.get(missing), 404, "not_found", { path: api.path(`/${missing}`) });
    assertApiError(await api.patch(missing, { is_enabled: true }), 404, "not_found", { method: "PATCH" });
    assertApiError(await api.get("not-a-uuid"), 404, "not_found");
    const token = mintToken({ projects: [id] });
    assertApiError(await targetsClient(gw.url, "not-a-uuid", token).list(), 404, "not_found");
  });

  test("bulk PATCH naming an unknown target is 404, lists it, and changes nothing", async () => {
    const { api } = project();
    const a = await api.mustCreate({ target_name: "A" });
    const missing = randomUUID();
    const res = await api.bulk([
      { target_id: a.target_id, target_name: "changed" },
      { target_id: missing, is_enabled: false },
    ]);
    assertApiError(res, 404, "not_found", { fields: ["/1/target_id"] });
    assert.match(res.body.error.errors[0].message, new RegExp(missing));
    assert.equal(assertOk(await api.get(a.target_id)).target_name, "A");
  });

  test("405 for a method the route does not have", async () => {
    const { api } = project();
    assertApiError(await api.call("PUT", ""), 405, "method_not_allowed", { method: "PUT" });
    assertApiError(await api.call("POST", `/${randomUUID()}`, {}), 405, "method_not_allowed");
  });

  test("409 for a target_id that exists", async () => {
    const { api } = project();
    const t = await api.mustCreate();
    assertApiError(await api.create(newTarget({ target_id: t.target_id })), 409, "target_exists");
  });

  test("413 for a body over 256 KiB", async () => {
    const { api } = project();
    const res = await api.call("POST", "", newTarget({ target_name: "x".repeat(300 * 1024) }));
    assertApiError(res, 413, "payload_too_large");
  });

  test("422 lists every bad field of a create", async () => {
    const { api } = project();
    const res = await api.create({
      target_id: "nope",
      target_name: "",
      platform: "irc",
      kind: "server",
      external_id: 123456789012345678,
      is_enabled: "yes",
      parent_target_id: "x",
      plan_count: -1,
      participant_count: 2.5,
      colour: "red",
    });
    const fields = assertApiError(res, 422, "validation_failed").errors.map((e) => e.field).sort();
    assert.deepEqual(fields, [
      "colour", "external_id", "is_enabled", "kind", "parent_target_id",
      "participant_count", "plan_count", "platform", "target_id", "target_name",
    ]);
    assertApiError(await api.create({}), 422, "validation_failed", {
      fields: ["target_name", "platform", "kind", "external_id"],
    });
    assertApiError(await api.create([]), 422, "validation_failed", { fields: [""] });
    assertApiError(await api.create(newTarget({ parent_target_id: randomUUID() })), 422, "validation_failed", {
      fields: ["parent_target_id"],
    });
    assertApiError(await api.create(newTarget({ target_name: "n".repeat(201) })), 422, "validation_failed", {
      fields: ["target_name"],
    });
  });

  test("422 for a bad PATCH: unknown fields, platform, nulls, wrong types, a foreign target_id", async () => {
    const { api } = project();
    const t = await api.mustCreate();
    const res = await api.patch(t.target_id, {
      platform: "telegram",
      target_name: null,
      is_enabled: 1,
      kind: "planet",
      target_id: randomUUID(),
      parent_target_id: t.target_id,
      nickname: "x",
    });
    const fields = assertApiError(res, 422, "validation_failed").errors.map((e) => e.field).sort();
    assert.deepEqual(fields, ["is_enabled", "kind", "nickname", "parent_target_id", "platform", "target_id", "target_name"]);
    assert.deepEqual(assertOk(await api.get(t.target_id)), t, "nothing changed");
  });

  test("422 for a bulk PATCH: the whole array is checked first; over 100 items is too_many_targets", async () => {
    const { api } = project();
    const a = await api.mustCreate({ target_name: "A" });
    const res = await api.bulk([
      { target_id: a.target_id, target_name: "would change" },
      { target_id: "x", is_enabled: "no" },
      { target_id: a.target_id, kind: "role" },
      42,
    ]);
    assertApiError(res, 422, "validation_failed", {
      fields: ["/1/target_id", "/1/is_enabled", "/2/kind", "/2/target_id", "/3"],
    });
    assert.equal(assertOk(await api.get(a.target_id)).target_name, "A", "nothing applied");
    assertApiError(await api.bulk([]), 422, "validation_failed", { fields: [""] });
    assertApiError(await api.bulk({ target_id: a.target_id }), 422, "validation_failed", { fields: [""] });
    const many = Array.from({ length: 101 }, () => ({ target_id: randomUUID(), is_enabled: true }));
    assertApiError(await api.bulk(many), 422, "too_many_targets");
    const hundred = Array.from({ length: 100 }, () => ({ target_id: randomUUID(), is_enabled: true }));
    assertApiError(await api.bulk(hundred), 404, "not_found", "100 is within the limit");
  });

  test("422 for a bad limit or offset", async () => {
    const { api } = project();
    for (const q of ["?limit=0", "?limit=201", "?limit=ten", "?offset=-1"]) {
      assertApiError(await api.list(q), 422, "validation_failed", { path: api.path() });
    }
  });
});

describe("live events (CONTRACT §4)", () => {
  test("each stored change publishes exactly its one event; no-ops and refusals publish nothing", async () => {
    const { id, api } = project();
    const socket = await targetsListener(gw, id);
    const stranger = await targetsListener(gw, randomUUID());
    try {
      const t = await api.mustCreate({ target_name: "Live", platform: "telegram", kind: "group", external_id: "-100" });
      assertTargetBroadcast(await nextTargetEvent(socket), "target.added", id, t);

      let after = assertOk(await api.patch(t.target_id, { target_name: "Live 2", participant_count: 9 }), { message: true });
      assertTargetBroadcast(await nextTargetEvent(socket), "target.updated", id, after);

      assertOk(await api.patch(t.target_id, { target_name: "Live 2", is_enabled: true }), { message: "No change" });
      await expectNothing(socket, "target.updated");
      await expectNothing(socket, "target.enabled");

      // Combined: the flip and new metadata are one target.disabled, not also target.updated.
      after = assertOk(await api.patch(t.target_id, { is_enabled: false, target_name: "Maintenance", plan_count: 7 }), { message: true });
      assertTargetBroadcast(await nextTargetEvent(socket), "target.disabled", id, after);
      await expectNothing(socket, "target.updated");

      after = assertOk(await api.patch(t.target_id, { is_enabled: true }), { message: true });
      assertTargetBroadcast(await nextTargetEvent(socket), "target.enabled", id, after);

      assertApiError(await api.patch(t.target_id, { kind: "planet" }), 422, "validation_failed");
      assertApiError(await api.bulk([{ target_id: t.target_id, is_enabled: false }, { target_id: randomUUID() }]), 404, "not_found");
      for (const name of TARGET_EVENTS) await expectNothing(socket, name, 50);

      assert.equal((await api.remove(t.target_id)).status, 204);
      assertTargetBroadcast(await nextTargetEvent(socket), "target.removed", id, after);

      for (const name of TARGET_EVENTS) await expectNothing(stranger, name, 20);
    } finally {
      closeAll(socket, stranger);
    }
  });

  test("a bulk PATCH publishes one event per changed target, in array order", async () => {
    const { id, api } = project();
    const a = await api.mustCreate({ target_name: "A" });
    const b = await api.mustCreate({ target_name: "B" });
    const c = await api.mustCreate({ target_name: "C", is_enabled: false });
    const socket = await targetsListener(gw, id);
    try {
      const data = assertOk(
        await api.bulk([
          { target_id: c.target_id, is_enabled: true },
          { target_id: a.target_id, is_enabled: true }, // already enabled: no event
          { target_id: b.target_id, target_name: "B2", is_enabled: false }, // combined: disabled only
        ]),
        { total: 3, message: true },
      );
      assertTargetBroadcast(await nextTargetEvent(socket), "target.enabled", id, data[0]);
      assertTargetBroadcast(await nextTargetEvent(socket), "target.disabled", id, data[2]);
      for (const name of TARGET_EVENTS) await expectNothing(socket, name, 100);
    } finally {
      closeAll(socket);
    }
  });
});

describe("concurrency", () => {
  test("50 parallel PATCHes of different fields and targets lose nothing, one event each", async () => {
    const { id, api } = project();
    const targets = [];
    for (let i = 0; i < 10; i++) targets.push(await api.mustCreate({ target_name: `t${i}` }));
    const socket = await targetsListener(gw, id);
    try {
      const fields = [
        () => ({ is_enabled: false }),
        (i) => ({ target_name: `renamed ${i}` }),
        (i) => ({ plan_count: 100 + i }),
        (i) => ({ participant_count: 200 + i }),
        (i) => ({ external_id: `ext-${i}` }),
      ];
      const results = await Promise.all(
        targets.flatMap((t, i) => fields.map((f) => api.patch(t.target_id, f(i)))),
      );
      for (const r of results) assert.equal(r.status, 200, r.text);
      const stored = assertOk(await api.list(), { total: 10 });
      for (const t of stored) {
        const i = Number(t.target_name.replace("renamed ", ""));
        assert.deepEqual(t, {
          ...targets[i],
          is_enabled: false,
          target_name: `renamed ${i}`,
          plan_count: 100 + i,
          participant_count: 200 + i,
          external_id: `ext-${i}`,
        });
      }
      // Every PATCH changed something: 50 events, and per target the last one is what is stored.
      const events = [];
      for (let n = 0; n < 50; n++) events.push(await nextTargetEvent(socket));
      await expectNothing(socket, "target.updated", 100);
      assert.equal(events.filter((e) => e.name === "target.disabled").length, 10);
      assert.equal(events.filter((e) => e.name === "target.updated").length, 40);
      for (const t of stored) {
        const last = events.filter((e) => e.payload.target.target_id === t.target_id).pop();
        assert.deepEqual(last.payload.target, t, "events left in the order they were stored");
      }
    } finally {
      closeAll(socket);
    }
  });
});
