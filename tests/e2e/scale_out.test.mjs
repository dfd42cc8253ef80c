//! Scale-out on classic pub/sub (CONTRACT §3, §5; docs/architecture.md): three gateway nodes
//! on one redis-server. Fan-out to every node exactly once and only to the right project,
//! per-project interest (PUBSUB NUMSUB), revocation over `{prefix}:control`, Redis lost and
//! back, Redis absent at start, invalid publications, and payment requests across nodes.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  UUID_V4,
  closeAll,
  connect,
  errorCode,
  expectConnectError,
  expectNothing,
  mintToken,
  mustPublish,
  openSession,
  randomUUID,
  received,
  request,
  startGateway,
  subscribe,
  waitFor,
} from "./support/gateway.mjs";
import { ANY, assertAck, assertError } from "./support/assertions.mjs";
import {
  assertBroadcast,
  newRequest,
  paymentMethodAdded,
  paymentRequestUpdated,
  subscriptionClosed,
  targetEvent,
  targetRemoved,
} from "./support/fixtures.mjs";
import { freePort, pollUntil, startRedis } from "./support/redis.mjs";

const PREFIX = `lg-scale-${randomUUID().slice(0, 8)}`;
const GRACE_MS = 500;
const ABSENCE_MS = 300; // window in which a duplicate / stray copy would have shown up
const RECOVERY_DEADLINE_MS = 15000;

let redis;
let nodes = [];

function nodeEnv(url, extra = {}) {
  return {
    LIVEGATE_ENGINE: "redis",
    LIVEGATE_REDIS_URL: url,
    LIVEGATE_REDIS_PREFIX: PREFIX,
    LIVEGATE_UNSUBSCRIBE_GRACE: `${GRACE_MS}ms`,
    ...extra,
  };
}

before(async () => {
  redis = await startRedis();
  nodes = await Promise.all([1, 2, 3].map((i) => startGateway(nodeEnv(redis.url), { name: `scale-out-${i}` })));
  await Promise.all(nodes.map((gw) => waitReady(gw, 200)));
});

after(async () => {
  await Promise.all(nodes.map((gw) => gw.stop()));
  await redis?.stop();
});

const channelOf = (project_id) => `${PREFIX}:project:${project_id}`;

async function readyz(gw) {
  try {
    return (await gw.http("GET", "/readyz")).status;
  } catch (e) {
    return `error: ${e.message}`;
  }
}

async function waitReady(gw, status, deadlineMs = RECOVERY_DEADLINE_MS) {
  let last;
  await pollUntil(async () => (last = await readyz(gw)) === status, {
    deadlineMs,
    intervalMs: 100,
    what: () => `${gw.name} /readyz to answer ${status} (last: ${last})`,
  });
}

async function numsub(channel) {
  const out = (await redis.cli("PUBSUB", "NUMSUB", channel)).split("\n");
  assert.equal(out[0], channel, `PUBSUB NUMSUB answered ${out.join(" ")}`);
  return Number(out[1]);
}

async function projectChannels() {
  const out = await redis.cli("PUBSUB", "CHANNELS", `${PREFIX}:project:*`);
  return out === "" ? [] : out.split("\n");
}

/** Wait for one copy of `event` on every socket, then assert no second copy arrives. Resolves the payloads. */
async function expectOnceEach(sockets, event, pred = () => true) {
  const got = await Promise.all(sockets.map((s) => waitFor(s, event, pred, 5000)));
  await Promise.all(sockets.map((s) => expectNothing(s, event, ABSENCE_MS, pred)));
  return got;
}

async function expectNoneEach(sockets, event, ms = ABSENCE_MS) {
  await Promise.all(sockets.map((s) => expectNothing(s, event, ms)));
}

const droppedLines = (gw) => gw.logs().split("\n").filter((l) => l.includes("dropped an invalid publication"));

describe("fan-out across three nodes", () => {
  test("one publication reaches every subscribed socket of its project on every node exactly once, and no other project", async () => {
    const A = randomUUID();
    const B = randomUUID();
    const aTargets = []; // every A socket: subscribed to targets
    const aMethods = []; // the A sockets also subscribed to payment-methods
    const bSockets = [];
    const all = [];
    try {
      for (const gw of nodes) {
        const a1 = await openSession(gw, { project_id: A });
        const a2 = await openSession(gw, { project_id: A });
        const b1 = await openSession(gw, { project_id: B });
        all.push(a1.socket, a2.socket, b1.socket);
        await subscribe(a1.socket, { channel: "targets" });
        await subscribe(a2.socket, { channel: "targets" });
        await subscribe(a2.socket, { channel: "payment-methods" });
        await subscribe(b1.socket, { channel: "targets" });
        await subscribe(b1.socket, { channel: "payment-methods" });
        aTargets.push(a1.socket, a2.socket);
        aMethods.push(a2.socket);
        bSockets.push(b1.socket);
      }
      assert.equal(await numsub(channelOf(A)), 3, "every node holds a subscribed socket of A");
      assert.equal(await numsub(channelOf(B)), 3, "every node holds a subscribed socket of B");

      // targets, through the publisher CLI
      const pub = targetEvent("target.updated", A);
      const since = Date.now();
      const eventId = await redis.publish(PREFIX, A, pub);
      assert.match(eventId, UUID_V4, `the CLI prints the event_id, got ${JSON.stringify(eventId)}`);
      const got = await expectOnceEach(aTargets, "target.updated");
      for (const p of got) assertBroadcast(p, pub, { since, answeredId: eventId });
      await expectNoneEach(bSockets, "target.updated", 0);

      // payment-methods: only the sockets that hold that channel
      const pm = paymentMethodAdded(A);
      const pmId = await redis.publish(PREFIX, A, pm);
      for (const p of await expectOnceEach(aMethods, "payment-method.added")) assertBroadcast(p, pm, { answeredId: pmId });
      await expectNoneEach(aTargets.filter((s) => !aMethods.includes(s)), "payment-method.added", 0);
      await expectNoneEach(bSockets, "payment-method.added", 0);

      // a plain PUBLISH (any Redis client), with the publication's own event_id: the same on every node
      const raw = targetRemoved(B, { event_id: randomUUID() });
      assert.equal(await redis.publish(PREFIX, B, raw, { raw: true }), 3, "PUBLISH reaches the three nodes");
      for (const p of await expectOnceEach(bSockets, "target.removed")) assertBroadcast(p, raw);
      await expectNoneEach(aTargets, "target.removed", 0);
    } finally {
      closeAll(all);
    }
  });

  test("POST /api/v1/publish on one node is delivered by every node, once", async () => {
    const A = randomUUID();
    const sockets = [];
    try {
      for (const gw of nodes) {
        const s = await openSession(gw, { project_id: A });
        sockets.push(s.socket);
        await subscribe(s.socket, { channel: "targets" });
      }
      const pub = targetEvent("target.added", A);
      const since = Date.now();
      const answeredId = await mustPublish(nodes[0], pub);
      for (const p of await expectOnceEach(sockets, "target.added")) assertBroadcast(p, pub, { since, answeredId });
    } finally {
      closeAll(sockets);
    }
  });
});

describe("per-project interest", () => {
  test("only the nodes holding subscribed sockets of a project subscribe its channel; the last one leaving unsubscribes after the grace", async () => {
    const C = randomUUID();
    const D = randomUUID();
    const [n1, n2, n3] = nodes;
    const c1 = await openSession(n1, { project_id: C });
    const c2a = await openSession(n2, { project_id: C });
    const c2b = await openSession(n2, { project_id: C });
    const c3idle = await openSession(n3, { project_id: C }); // connected, never subscribes
    const d3 = await openSession(n3, { project_id: D });
    const all = [c1.socket, c2a.socket, c2b.socket, c3idle.socket, d3.socket];
    try {
      assert.equal(await numsub(channelOf(C)), 0, "a connected socket alone does not subscribe its project");
      await subscribe(c1.socket, { channel: "targets" });
      await subscribe(c2a.socket, { channel: "targets" });
      await subscribe(c2b.socket, { channel: "payment-methods" });
      await subscribe(d3.socket, { channel: "targets" });

      const chans = await projectChannels();
      assert.ok(chans.includes(channelOf(C)), `PUBSUB CHANNELS lists ${channelOf(C)}: ${chans.join(", ")}`);
      assert.ok(chans.includes(channelOf(D)), `PUBSUB CHANNELS lists ${channelOf(D)}: ${chans.join(", ")}`);
      assert.equal(await numsub(channelOf(C)), 2, "C is held on nodes 1 and 2 only");
      assert.equal(await numsub(channelOf(D)), 1, "D is held on node 3 only");
      assert.equal(await numsub(`${PREFIX}:control`), 3, "every node holds the control channel");

      // node 3 gets none of C's traffic: Redis delivers C's publication to two nodes
      const pub = targetEvent("target.updated", C, { event_id: randomUUID() });
      assert.equal(await redis.publish(PREFIX, C, pub, { raw: true }), 2);
      await expectOnceEach([c1.socket, c2a.socket], "target.updated");
      await expectNothing(c3idle.socket, "target.updated", 0);
      await expectNothing(d3.socket, "target.updated", 0);

      // node 2 keeps the channel while one of its sockets of C still holds a subscription
      c2a.socket.close();
      await new Promise((r) => setTimeout(r, GRACE_MS + 500)); // absence: it must NOT drop
      assert.equal(await numsub(channelOf(C)), 2, "node 2 still holds c2b's subscription");

      // its last subscribed socket of C leaves: node 2 unsubscribes within the grace (+ slack)
      const t0 = Date.now();
      c2b.socket.close();
      await pollUntil(async () => (await numsub(channelOf(C))) === 1, {
        deadlineMs: GRACE_MS + 2500,
        what: `NUMSUB ${channelOf(C)} to drop to 1`,
      });
      const dropped = Date.now() - t0;
      assert.ok(dropped < 5000, `the contract allows 5 s, took ${dropped} ms`);

      // an unsubscribe action releases it too: node 1 leaves, the channel disappears
      assert.equal((await request(c1.socket, { action: "unsubscribe", channel: "targets" })).event, "unsubscribed");
      await pollUntil(async () => !(await projectChannels()).includes(channelOf(C)), {
        deadlineMs: GRACE_MS + 2500,
        what: `${channelOf(C)} to leave PUBSUB CHANNELS`,
      });
      assert.equal(await numsub(channelOf(C)), 0);
      assert.equal(await numsub(channelOf(D)), 1, "D is untouched");

      // and subscribing again after the grace re-subscribes at once (subscribed means confirmed)
      await subscribe(c1.socket, { channel: "targets" });
      assert.equal(await numsub(channelOf(C)), 1, "subscribed is sent only once Redis confirmed");
      const again = targetEvent("target.enabled", C);
      await redis.publish(PREFIX, C, again);
      await waitFor(c1.socket, "target.enabled");
    } finally {
      closeAll(all);
    }
  });
});

describe("the unsubscribe grace", () => {
  test("a subscription taken again within the grace keeps the channel after the grace ends", async () => {
    const C = randomUUID();
    const s = await openSession(nodes[0], { project_id: C });
    try {
      await subscribe(s.socket, { channel: "targets" });
      assert.equal((await request(s.socket, { action: "unsubscribe", channel: "targets" })).event, "unsubscribed");
      await subscribe(s.socket, { channel: "targets" });
      await new Promise((r) => setTimeout(r, GRACE_MS + 500)); // absence: the pending release must not fire
      assert.equal(await numsub(channelOf(C)), 1, "the re-taken channel must still be subscribed after the grace");
      const pub = targetEvent("target.updated", C, { event_id: randomUUID() });
      await redis.publish(PREFIX, C, pub, { raw: true });
      assertBroadcast(await waitFor(s.socket, "target.updated"), pub);
    } finally {
      s.socket.close();
    }
  });

  test("re-subscribing right around the moment the grace expires: subscribed always means receiving", async () => {
    const C = randomUUID();
    const s = await openSession(nodes[1], { project_id: C });
    try {
      for (const delay of [GRACE_MS - 40, GRACE_MS - 10, GRACE_MS, GRACE_MS + 10, GRACE_MS + 40]) {
        await subscribe(s.socket, { channel: "targets" });
        assert.equal((await request(s.socket, { action: "unsubscribe", channel: "targets" })).event, "unsubscribed");
        await new Promise((r) => setTimeout(r, delay)); // deliberate: aim at the release racing the next subscribe
        await subscribe(s.socket, { channel: "targets" });
        const pub = targetEvent("target.updated", C, { event_id: randomUUID(), delay });
        await redis.publish(PREFIX, C, pub, { raw: true });
        assertBroadcast(await waitFor(s.socket, "target.updated", (p) => p?.event_id === pub.event_id, 3000), pub);
        await new Promise((r) => setTimeout(r, GRACE_MS + 300)); // absence: no late release after subscribed
        assert.equal(await numsub(channelOf(C)), 1, `after re-subscribing ${delay} ms into the grace, the channel must stay subscribed`);
        assert.equal((await request(s.socket, { action: "unsubscribe", channel: "targets" })).event, "unsubscribed");
      }
    } finally {
      s.socket.close();
    }
  });
});

describe("revocation over the control channel", () => {
  test("revoked once with the CLI: that sid's sockets on all three nodes get session.revoked then a server disconnect; others stay", async () => {
    const sid = randomUUID();
    const A = randomUUID();
    const B = randomUUID();
    const claims = { sid, sub: "user-scale-rev", projects: [A, B] };
    const revoked = [];
    const others = [];
    try {
      for (const gw of nodes) {
        const s = await openSession(gw, { project_id: A, claims });
        await subscribe(s.socket, { channel: "targets" });
        revoked.push(s);
        others.push(await openSession(gw, { project_id: A, claims: { sub: "user-scale-rev", projects: [A] } }));
      }
      revoked.push(await openSession(nodes[1], { project_id: B, claims })); // same sid, another project, not subscribed

      await redis.revoke(PREFIX, sid, "logout");
      const ttl = Number(await redis.cli("TTL", `${PREFIX}:revoked-session:${sid}`));
      assert.ok(ttl >= 3600, `the CLI sets the revoked-session key with a TTL of at least the token lifetime (TTL ${ttl})`);

      for (const s of revoked) {
        assert.deepEqual(await waitFor(s.socket, "session.revoked", () => true, 5000), { reason: "logout" });
        assert.equal(await waitFor(s.socket, "disconnect", () => true, 5000), "io server disconnect");
        const entries = received(s.socket);
        assert.equal(entries.filter((e) => e.event === "session.revoked").length, 1, "exactly one session.revoked");
      }
      await Promise.all(others.map((o) => expectNothing(o.socket, "session.revoked", ABSENCE_MS)));
      for (const o of others) {
        assert.equal(o.socket.connected, true);
        assert.equal((await request(o.socket, { action: "ping", timestamp: 1 })).event, "pong");
      }

      // later handshakes with that sid fail on every node, the old token and a fresh one alike
      for (const gw of nodes) {
        for (const token of [revoked[0].token, mintToken({ sid, sub: "user-scale-rev", projects: [A] })]) {
          const again = connect(gw, { token, project_id: A });
          try {
            const msg = await expectConnectError(again);
            assert.equal(errorCode(msg), "session_revoked", msg);
          } finally {
            again.close();
          }
        }
      }
    } finally {
      closeAll(revoked.map((s) => s.socket), others.map((o) => o.socket));
    }
  });
});

describe("invalid publications", () => {
  test("dropped by every node that receives them and logged with a reason; a valid one after them arrives", async () => {
    const A = randomUUID();
    const B = randomUUID();
    const [n1, n2, n3] = nodes;
    const a1 = await openSession(n1, { project_id: A });
    const a2 = await openSession(n2, { project_id: A });
    const b3 = await openSession(n3, { project_id: B });
    const sockets = [a1.socket, a2.socket, b3.socket];
    try {
      await subscribe(a1.socket, { channel: "targets" });
      await subscribe(a1.socket, { channel: "payment-methods" });
      await subscribe(a2.socket, { channel: "targets" });
      await subscribe(b3.socket, { channel: "targets" });
      const before1 = droppedLines(n1).length;
      const before2 = droppedLines(n2).length;

      const valid = targetEvent("target.updated", A, { event_id: randomUUID() });
      const invalid = {
        not_json: '{"event":"target.updated", this is not json',
        unknown_event: JSON.stringify({ ...valid, event: "target.exploded", event_id: randomUUID() }),
        project_mismatch: JSON.stringify(targetEvent("target.updated", B, { event_id: randomUUID() })),
        missing_field: JSON.stringify((({ target: _t, ...rest }) => ({ ...rest, event_id: randomUUID() }))(valid)),
        mistyped_field: JSON.stringify({ ...valid, event_id: randomUUID(), target: "not-a-snapshot" }),
        mistyped_method: JSON.stringify({ ...paymentMethodAdded(A), event_id: randomUUID(), payment_method: 42 }),
        oversized: JSON.stringify({ ...valid, event_id: randomUUID(), padding: "x".repeat(70000) }),
      };
      assert.ok(Buffer.byteLength(invalid.oversized) > 65536);
      for (const [name, payload] of Object.entries(invalid)) {
        assert.equal(await redis.publish(PREFIX, A, payload, { raw: true }), 2, `${name}: PUBLISH reaches nodes 1 and 2`);
      }
      assert.equal(await redis.publish(PREFIX, A, valid, { raw: true }), 2);

      for (const s of [a1.socket, a2.socket]) {
        assertBroadcast(await waitFor(s, "target.updated"), valid);
      }
      await Promise.all(sockets.map((s) => expectNothing(s, "target.updated", ABSENCE_MS)));
      for (const s of sockets) {
        const stray = received(s).filter((e) => /^(target|payment-method)\./.test(e.event) && e.args[0]?.event_id !== valid.event_id);
        assert.deepEqual(stray.map((e) => e.event), [], "no invalid publication is delivered");
      }

      // each receiving node logged one drop per invalid publication, with its reason
      const n = Object.keys(invalid).length;
      for (const [gw, base] of [[n1, before1], [n2, before2]]) {
        const lines = await pollUntil(() => (droppedLines(gw).length - base >= n ? droppedLines(gw).slice(base) : false), {
          deadlineMs: 3000,
          what: `${gw.name} to log ${n} dropped publications (has ${droppedLines(gw).length - base})`,
        });
        assert.equal(lines.length, n, `${gw.name}: one log line per invalid publication\n${lines.join("\n")}`);
        const reasons = lines.map((l) => /reason=("?)([\w-]+)\1/.exec(l)?.[2]);
        for (const want of ["not_json", "project_mismatch", "oversized", "invalid_fields"]) {
          assert.ok(reasons.includes(want), `${gw.name}: a drop with reason=${want}; got ${reasons.join(", ")}\n${lines.join("\n")}`);
        }
        assert.ok(reasons.every((r) => r), `every drop carries reason=…\n${lines.join("\n")}`);
      }
      assert.equal(droppedLines(n3).filter((l) => l.includes(A)).length, 0, "node 3 does not receive A's channel at all");
    } finally {
      closeAll(sockets);
    }
  });
});

/** `pub` with a `padding` field sized so that its JSON is exactly `bytes` bytes. */
function paddedTo(pub, bytes) {
  const base = Buffer.byteLength(JSON.stringify({ ...pub, padding: "" }));
  const out = { ...pub, padding: "x".repeat(bytes - base) };
  assert.equal(Buffer.byteLength(JSON.stringify(out)), bytes);
  return out;
}

describe("publication edge cases across nodes", () => {
  test("size limit: exactly 65536 bytes is delivered by every node, 65537 is dropped as oversized", async () => {
    const A = randomUUID();
    const sockets = [];
    try {
      for (const gw of nodes.slice(0, 2)) {
        const s = await openSession(gw, { project_id: A });
        sockets.push(s.socket);
        await subscribe(s.socket, { channel: "targets" });
      }
      const base = nodes.map((gw) => droppedLines(gw).length);
      const over = paddedTo(targetEvent("target.updated", A, { event_id: randomUUID() }), 65537);
      const atLimit = paddedTo(targetEvent("target.updated", A, { event_id: randomUUID() }), 65536);
      await redis.publish(PREFIX, A, over, { raw: true });
      await redis.publish(PREFIX, A, atLimit, { raw: true });
      for (const s of sockets) assertBroadcast(await waitFor(s, "target.updated"), atLimit);
      await Promise.all(sockets.map((s) => expectNothing(s, "target.updated", ABSENCE_MS)));
      for (const [i, gw] of nodes.slice(0, 2).entries()) {
        const lines = await pollUntil(() => (droppedLines(gw).length > base[i] ? droppedLines(gw).slice(base[i]) : false), { deadlineMs: 3000, what: `${gw.name} to log the oversized drop` });
        assert.ok(lines.every((l) => /reason="?oversized/.test(l)), lines.join("\n"));
      }
    } finally {
      closeAll(sockets);
    }
  });

  test("a project_id in upper case in the payload matches its channel and is delivered in lower case", async () => {
    const A = randomUUID();
    const sockets = [];
    try {
      for (const gw of nodes) {
        const s = await openSession(gw, { project_id: A });
        sockets.push(s.socket);
        await subscribe(s.socket, { channel: "targets" });
      }
      const pub = targetEvent("target.updated", A.toUpperCase(), { event_id: randomUUID() });
      await redis.publish(PREFIX, A, pub, { raw: true });
      for (const p of await expectOnceEach(sockets, "target.updated")) {
        const { event: _e, ...body } = pub;
        assertBroadcast(p, pub, { expectedBody: { ...body, project_id: A } });
      }
    } finally {
      closeAll(sockets);
    }
  });
});

describe("payment requests across nodes", () => {
  test("updated then closed (by provider id only) reach node 2; node 3 subscribing later is closed at once; another project is forbidden", async () => {
    const P = randomUUID();
    const req = newRequest();
    const channel = "payment-requests";
    const [n1, n2, n3] = nodes;
    const s2 = await openSession(n2, { project_id: P });
    const s1 = await openSession(n1, { project_id: P });
    const sockets = [s2.socket, s1.socket];
    try {
      assertAck(await subscribe(s2.socket, { channel, payment_request_id: req.payment_request_id }), "subscribed", {
        channel,
        project_id: P,
        payment_request_id: req.payment_request_id,
      });
      await subscribe(s1.socket, { channel, provider_payment_id: req.provider_payment_id });

      const updated = paymentRequestUpdated(P, req, { status: "pending" });
      const since = Date.now();
      const updatedId = await redis.publish(PREFIX, P, updated);
      for (const p of await expectOnceEach([s2.socket, s1.socket], "payment-request.updated")) {
        assertBroadcast(p, updated, { since, answeredId: updatedId });
      }
      const reg = JSON.parse(await redis.cli("GET", `${PREFIX}:payment-request:${req.payment_request_id}`));
      assert.equal(reg.project_id, P, `registry written by the publisher: ${JSON.stringify(reg)}`);
      assert.equal(reg.provider_payment_id, req.provider_payment_id);

      const closed = subscriptionClosed(P, { provider_payment_id: req.provider_payment_id, status: "completed" });
      const closedId = await redis.publish(PREFIX, P, closed);
      for (const got of await expectOnceEach([s2.socket, s1.socket], "subscription.closed")) {
        const { event_id, emitted_at, ...body } = got;
        assert.equal(event_id, closedId);
        assert.ok(Number.isInteger(emitted_at));
        assert.deepEqual(body, { channel, project_id: P, payment_request_id: req.payment_request_id, provider_payment_id: req.provider_payment_id, status: "completed" }, "both ids, the missing one filled from the registry");
      }

      // node 3, afterwards: subscribed, then subscription.closed to that socket alone
      const s3 = await openSession(n3, { project_id: P });
      sockets.push(s3.socket);
      const ack = await request(s3.socket, { action: "subscribe", channel, payment_request_id: req.payment_request_id });
      assertAck(ack, "subscribed", { channel, project_id: P, payment_request_id: req.payment_request_id });
      const late = await waitFor(s3.socket, "subscription.closed");
      const { event_id: _e, emitted_at: _t, ...lateBody } = late;
      assert.deepEqual(lateBody, { channel, project_id: P, payment_request_id: req.payment_request_id, provider_payment_id: req.provider_payment_id, status: "completed" });
      await expectNothing(s2.socket, "subscription.closed", ABSENCE_MS);
      await expectNothing(s1.socket, "subscription.closed", 0);

      // another project, on any node: forbidden, by either id
      for (const gw of nodes) {
        const stranger = await openSession(gw);
        sockets.push(stranger.socket);
        assertError(await request(stranger.socket, { action: "subscribe", channel, payment_request_id: req.payment_request_id }), "forbidden", { channel, action: "subscribe" });
        assertError(await request(stranger.socket, { action: "subscribe", channel, provider_payment_id: req.provider_payment_id }), "forbidden", { channel, action: "subscribe" });
      }

      // the closed subscriptions are gone on every node
      await redis.publish(PREFIX, P, paymentRequestUpdated(P, req, { status: "completed", update_type: "completed" }));
      await Promise.all([s2.socket, s1.socket, s3.socket].map((s) => expectNothing(s, "payment-request.updated", ABSENCE_MS, (p) => p?.payment_request?.status === "completed")));
    } finally {
      closeAll(sockets);
    }
  });
});

describe("Redis lost and back", () => {
  test("Redis killed and restarted: nodes stay up, /readyz 503 then 200, delivery resumes on the same sockets", async () => {
    const A = randomUUID();
    const Q = randomUUID();
    const subscribed = [];
    let fresh;
    const all = [];
    try {
      for (const gw of nodes) {
        const s = await openSession(gw, { project_id: A });
        all.push(s.socket);
        await subscribe(s.socket, { channel: "targets" });
        subscribed.push(s.socket);
      }
      // a socket of a project node 1 is not subscribed to (handshakes need Redis, so open it now)
      fresh = await openSession(nodes[0], { project_id: Q });
      all.push(fresh.socket);
      // a project held only by node 3, whose socket leaves while Redis is down
      const R = randomUUID();
      const leaver = await openSession(nodes[2], { project_id: R });
      all.push(leaver.socket);
      await subscribe(leaver.socket, { channel: "targets" });
      assert.equal(await numsub(channelOf(R)), 1);
      await Promise.all(nodes.map((gw) => waitReady(gw, 200, 2000)));

      await redis.stop();
      await Promise.all(nodes.map((gw) => waitReady(gw, 503)));
      leaver.socket.close();

      // while Redis is down: a subscribe that needs a new Redis subscription fails
      assertError(await request(fresh.socket, { action: "subscribe", channel: "targets" }, 5000), "subscription_failed", { channel: "targets", action: "subscribe" });
      // so does one that needs a registry read, even on a project the node holds
      assertError(
        await request(subscribed[0], { action: "subscribe", channel: "payment-requests", payment_request_id: randomUUID() }, 5000),
        "subscription_failed",
        { channel: "payment-requests", action: "subscribe" },
      );
      // and a handshake cannot check revocation: unavailable (fail closed)
      const refused = connect(nodes[2], { token: mintToken({ projects: [A] }), project_id: A });
      all.push(refused);
      const msg = await expectConnectError(refused, 8000);
      assert.equal(errorCode(msg), "unavailable", msg);
      // the existing sockets are still served (ping, a subscription whose channel the node holds)
      for (const s of subscribed) assert.equal((await request(s, { action: "ping", timestamp: 7 })).event, "pong");
      assert.equal((await request(subscribed[1], { action: "subscribe", channel: "payment-methods" })).event, "subscribed");

      await redis.start();
      await Promise.all(nodes.map((gw) => waitReady(gw, 200)));
      assert.equal(await numsub(channelOf(A)), 3, "every node re-subscribed A");

      const pub = targetEvent("target.updated", A);
      const since = Date.now();
      const id = await redis.publish(PREFIX, A, pub);
      for (const p of await expectOnceEach(subscribed, "target.updated")) assertBroadcast(p, pub, { since, answeredId: id });
      for (const s of [...subscribed, fresh.socket]) {
        assert.equal(s.connected, true);
        assert.equal(received(s).filter((e) => e.event === "connect").length, 1, "the client did not reconnect");
      }
      // the control channel is back on every node: a revocation reaches them all
      assert.equal(Number((await redis.cli("PUBSUB", "NUMSUB", `${PREFIX}:control`)).split("\n")[1]), 3, "every node re-subscribed the control channel");
      // the project whose last socket left during the outage is not re-subscribed (or is released after the grace)
      await pollUntil(async () => (await numsub(channelOf(R))) === 0, { deadlineMs: GRACE_MS + 2500, what: `NUMSUB ${channelOf(R)} to be 0` });

      // and node 1 can now take the subscription it refused
      assertAck(await subscribe(fresh.socket, { channel: "targets" }), "subscribed", { channel: "targets", project_id: Q });
      const q = targetEvent("target.added", Q);
      await redis.publish(PREFIX, Q, q);
      assertBroadcast(await waitFor(fresh.socket, "target.added"), q);

      // revocation after the restart reaches every node
      const victims = [];
      const sid = randomUUID();
      for (const gw of nodes) {
        const v = await openSession(gw, { project_id: A, claims: { sid } });
        all.push(v.socket);
        victims.push(v.socket);
      }
      await redis.revoke(PREFIX, sid, "logout");
      for (const v of victims) {
        assert.deepEqual(await waitFor(v, "session.revoked"), { reason: "logout" });
        assert.equal(await waitFor(v, "disconnect"), "io server disconnect");
      }
    } finally {
      closeAll(all);
    }
  });

  test("Redis down when a node starts: it listens, is unready, then recovers and delivers", async () => {
    const port = await freePort();
    const gw = await startGateway(nodeEnv(`redis://127.0.0.1:${port}`), { name: "scale-out-late-redis" });
    let late;
    const sockets = [];
    try {
      assert.match(gw.logs(), /listening addr=/);
      assert.equal(await readyz(gw), 503, "no Redis: unready");
      late = await startRedis({ port });
      await waitReady(gw, 200);
      const A = randomUUID();
      const s = await openSession(gw, { project_id: A });
      sockets.push(s.socket);
      await subscribe(s.socket, { channel: "targets" });
      const pub = targetEvent("target.added", A);
      const id = await late.publish(PREFIX, A, pub);
      assertBroadcast(await waitFor(s.socket, "target.added"), pub, { answeredId: id });
      // and revocation reaches it (it subscribed the control channel on recovery)
      await late.revoke(PREFIX, s.sid, "logout");
      assert.deepEqual(await waitFor(s.socket, "session.revoked"), { reason: "logout" });
      assert.equal(await waitFor(s.socket, "disconnect"), "io server disconnect");
    } finally {
      closeAll(sockets);
      await gw.stop();
      await late?.stop();
    }
  });
});
