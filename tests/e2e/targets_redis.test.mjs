//! The targets REST API on Redis: two `livegate-targets` processes and one gateway node
//! (`LIVEGATE_ENGINE=redis`) on a throwaway `redis-server`. Targets live in one hash per
//! project, both processes serve the same data, concurrent PATCHes through both lose nothing,
//! each change reaches subscribed sockets through Redis as exactly its one event, and a session
//! revoked in Redis is refused. The contract details are in targets_api.test.mjs.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  TEST_SECRET,
  closeAll,
  expectNothing,
  mintToken,
  randomUUID,
  startGateway,
} from "./support/gateway.mjs";
import { run, startRedis } from "./support/redis.mjs";
import {
  assertApiError,
  assertOk,
  nextTargetEvent,
  startTargets,
  targetsBinary,
  targetsClient,
  targetsListener,
} from "./support/targets.mjs";

const PREFIX = `lg-targets-${randomUUID().slice(0, 8)}`;
const API_PROJECT = randomUUID();
const API_KEY = "targets-redis-api-key-0123456789";

let redis;
let gw;
let services = [];

before(async () => {
  redis = await startRedis();
  gw = await startGateway(
    { LIVEGATE_ENGINE: "redis", LIVEGATE_REDIS_URL: redis.url, LIVEGATE_REDIS_PREFIX: PREFIX },
    { name: "targets-redis" },
  );
  const env = {
    LIVEGATE_TARGETS_REDIS_URL: redis.url,
    LIVEGATE_TARGETS_REDIS_PREFIX: PREFIX,
    LIVEGATE_TARGETS_API_KEYS: `${API_PROJECT}=${API_KEY}`,
  };
  services = await Promise.all([startTargets(env), startTargets(env)]);
});

after(async () => {
  await Promise.all(services.map((s) => s.stop()));
  await gw?.stop();
  await redis?.stop();
});

function project() {
  const id = randomUUID();
  const token = mintToken({ projects: [id] });
  return { id, token, apis: services.map((s) => targetsClient(s.url, id, token)) };
}

describe("livegate-targets on Redis", () => {
  test("one hash per project, field = target_id, value = the target's JSON; both processes see it", async () => {
    const { id, apis } = project();
    const t = await apis[0].mustCreate({ target_name: "Stored" });
    assert.deepEqual(assertOk(await apis[1].get(t.target_id)), t);
    const key = `${PREFIX}:targets:${id}`;
    assert.equal((await redis.cli("HLEN", key)).trim(), "1");
    assert.deepEqual(JSON.parse(await redis.cli("HGET", key, t.target_id)), t);
    assert.equal(assertOk(await apis[1].list(), { total: 1 })[0].target_id, t.target_id);
    assert.equal((await apis[1].remove(t.target_id)).status, 204);
    assert.equal((await redis.cli("EXISTS", key)).trim(), "0");
  });

  test("each change reaches the gateway's sockets through Redis as exactly its one event", async () => {
    const { id, apis } = project();
    const socket = await targetsListener(gw, id);
    try {
      const t = await apis[0].mustCreate({ target_name: "Live" });
      let e = await nextTargetEvent(socket);
      assert.equal(e.name, "target.added");
      assert.deepEqual(e.payload.target, t);

      assertOk(await apis[1].patch(t.target_id, { target_name: "Live" }), { message: "No change" });
      await expectNothing(socket, "target.updated");

      const off = assertOk(await apis[1].patch(t.target_id, { is_enabled: false, plan_count: 4 }), { message: true });
      e = await nextTargetEvent(socket);
      assert.equal(e.name, "target.disabled");
      assert.deepEqual(e.payload.target, off);
      await expectNothing(socket, "target.updated");

      const other = await apis[0].mustCreate({ target_name: "Other" });
      await nextTargetEvent(socket);
      const bulk = assertOk(
        await apis[0].bulk([
          { target_id: t.target_id, is_enabled: true },
          { target_id: other.target_id, is_enabled: true },
        ]),
        { total: 2, message: true },
      );
      e = await nextTargetEvent(socket);
      assert.equal(e.name, "target.enabled");
      assert.deepEqual(e.payload.target, bulk[0]);
      await expectNothing(socket, "target.enabled", 200);

      assert.equal((await apis[1].remove(other.target_id)).status, 204);
      e = await nextTargetEvent(socket);
      assert.equal(e.name, "target.removed");
      assert.equal(e.payload.target_id, other.target_id);
    } finally {
      closeAll(socket);
    }
  });

  test("50 parallel PATCHes through two processes lose nothing, and publish one event each", async () => {
    const { id, apis } = project();
    const targets = [];
    for (let i = 0; i < 10; i++) targets.push(await apis[i % 2].mustCreate({ target_name: `t${i}` }));
    const socket = await targetsListener(gw, id);
    try {
      const fields = [
        () => ({ is_enabled: false }),
        (i) => ({ target_name: `renamed ${i}` }),
        (i) => ({ plan_count: 100 + i }),
        (i) => ({ participant_count: 200 + i }),
        (i) => ({ external_id: `ext-${i}` }),
      ];
      let n = 0;
      const results = await Promise.all(
        targets.flatMap((t, i) => fields.map((f) => apis[n++ % 2].patch(t.target_id, f(i)))),
      );
      for (const r of results) assert.equal(r.status, 200, r.text);
      const stored = assertOk(await apis[0].list(), { total: 10 });
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
      const events = [];
      for (let k = 0; k < 50; k++) events.push(await nextTargetEvent(socket));
      await expectNothing(socket, "target.updated", 200);
      assert.equal(events.filter((e) => e.name === "target.disabled").length, 10);
      assert.equal(events.filter((e) => e.name === "target.updated").length, 40);
    } finally {
      closeAll(socket);
    }
  });

  test("a bulk PATCH with an unknown target changes nothing in Redis", async () => {
    const { id, apis } = project();
    const t = await apis[0].mustCreate({ target_name: "Kept" });
    const before = await redis.cli("HGET", `${PREFIX}:targets:${id}`, t.target_id);
    const res = await apis[1].bulk([{ target_id: t.target_id, target_name: "Lost" }, { target_id: randomUUID(), is_enabled: true }]);
    assertApiError(res, 404, "not_found", { fields: ["/1/target_id"] });
    assert.equal(await redis.cli("HGET", `${PREFIX}:targets:${id}`, t.target_id), before);
  });

  test("API keys, 403 for another project, and a session revoked in Redis", async () => {
    const byKey = targetsClient(services[0].url, API_PROJECT, API_KEY);
    await byKey.mustCreate({ target_name: "By key" });
    assertApiError(await targetsClient(services[0].url, randomUUID(), API_KEY).list(), 403, "project_forbidden");
    const id = randomUUID();
    const sid = randomUUID();
    const api = targetsClient(services[1].url, id, mintToken({ projects: [id], sid }));
    assertOk(await api.list(), { total: 0 });
    await redis.revoke(PREFIX, sid);
    assertApiError(await api.list(), 401, "session_revoked");
    assertApiError(await targetsClient(services[1].url, id, "wrong").list(), 401, "invalid_token");
  });

  test("health and readiness; bad configuration exits with 64", async () => {
    const health = await fetch(`${services[0].url}/healthz`);
    assert.equal(health.status, 200);
    const ready = await fetch(`${services[0].url}/readyz`);
    assert.equal(ready.status, 200);
    const env = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("LIVEGATE_")) env[k] = v;
    const res = await run(targetsBinary(), [], { env: { ...env, LIVEGATE_TARGETS_LISTEN: "127.0.0.1:0" } });
    assert.equal(res.code, 64, res.stderr);
    assert.match(res.stderr, /no credentials/);
    const bad = await run(targetsBinary(), [], {
      env: { ...env, LIVEGATE_TARGETS_JWT_HMAC_SECRET: TEST_SECRET, LIVEGATE_TARGETS_API_KEYS: "nope" },
    });
    assert.equal(bad.code, 64, bad.stderr);
  });
});
