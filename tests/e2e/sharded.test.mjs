//! Scale-out on Redis Cluster with sharded pub/sub (CONTRACT §5): a 3-master cluster, two
//! gateway nodes with LIVEGATE_REDIS_SHARDED=true, projects whose channels live on different
//! masters. SPUBLISH (the CLI with --sharded) reaches every matching socket on both nodes
//! exactly once and never another project; the owning master lists the shard channel.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  UUID_V4,
  closeAll,
  connect,
  errorCode,
  expectConnectError,
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
import { assertBroadcast, newRequest, paymentRequestUpdated, subscriptionClosed, targetEvent } from "./support/fixtures.mjs";
import { pollUntil, startRedisCluster } from "./support/redis.mjs";

const PREFIX = `lg-shard-${randomUUID().slice(0, 8)}`;
const GRACE_MS = 500;
const ABSENCE_MS = 300;

let cluster;
let nodes = [];

const channelOf = (project_id) => `${PREFIX}:project:${project_id}`;

before(async () => {
  cluster = await startRedisCluster();
  const env = {
    LIVEGATE_ENGINE: "redis",
    LIVEGATE_REDIS_URL: cluster.url,
    LIVEGATE_REDIS_PREFIX: PREFIX,
    LIVEGATE_REDIS_SHARDED: "true",
    LIVEGATE_UNSUBSCRIBE_GRACE: `${GRACE_MS}ms`,
  };
  nodes = await Promise.all([1, 2].map((i) => startGateway(env, { name: `sharded-${i}` })));
  for (const gw of nodes) {
    let last;
    await pollUntil(async () => (last = (await gw.http("GET", "/readyz")).status) === 200, {
      deadlineMs: 15000,
      intervalMs: 100,
      what: () => `${gw.name} /readyz 200 (last ${last})`,
    });
  }
});

after(async () => {
  await Promise.all(nodes.map((gw) => gw.stop()));
  await cluster?.stop();
});

/** Fresh project ids whose channels are owned by `count` distinct masters: [{project_id, owner}]. */
async function projectsOnDistinctMasters(count) {
  const picked = [];
  for (let i = 0; i < 200 && picked.length < count; i++) {
    const project_id = randomUUID();
    const owner = await cluster.ownerOf(channelOf(project_id));
    if (!picked.some((p) => p.owner === owner)) picked.push({ project_id, owner });
  }
  assert.equal(picked.length, count, "could not find projects on distinct masters");
  return picked;
}

async function shardNumsub(port, channel) {
  const out = (await cluster.cli(port, "PUBSUB", "SHARDNUMSUB", channel)).split("\n");
  assert.equal(out[0], channel, `SHARDNUMSUB answered ${out.join(" ")}`);
  return Number(out[1]);
}

async function shardChannels(port) {
  const out = await cluster.cli(port, "PUBSUB", "SHARDCHANNELS", `${PREFIX}:project:*`);
  return out === "" ? [] : out.split("\n");
}

async function expectOnceEach(sockets, event, pred = () => true) {
  const got = await Promise.all(sockets.map((s) => waitFor(s, event, pred, 5000)));
  await Promise.all(sockets.map((s) => expectNothing(s, event, ABSENCE_MS, pred)));
  return got;
}

describe("sharded pub/sub on a 3-master cluster", () => {
  test("SPUBLISH reaches every socket of the project on both nodes exactly once, and not the other project", async () => {
    const [X, Y] = await projectsOnDistinctMasters(2);
    const socketsOf = { [X.project_id]: [], [Y.project_id]: [] };
    const all = [];
    try {
      for (const gw of nodes) {
        for (const { project_id } of [X, Y]) {
          for (let i = 0; i < 2; i++) {
            const s = await openSession(gw, { project_id });
            all.push(s.socket);
            await subscribe(s.socket, { channel: "targets" });
            socketsOf[project_id].push(s.socket);
          }
        }
      }
      for (const { project_id, owner } of [X, Y]) {
        const listed = await shardChannels(owner);
        assert.ok(listed.includes(channelOf(project_id)), `PUBSUB SHARDCHANNELS on master ${owner} lists ${channelOf(project_id)}: ${listed.join(", ")}`);
        assert.equal(await shardNumsub(owner, channelOf(project_id)), 2, `both nodes SSUBSCRIBEd ${channelOf(project_id)} on its master ${owner}`);
        for (const other of cluster.ports.filter((p) => p !== owner)) {
          assert.ok(!(await shardChannels(other)).includes(channelOf(project_id)), `master ${other} does not own ${channelOf(project_id)}`);
        }
      }

      for (const [mine, theirs] of [[X, Y], [Y, X]]) {
        const pub = targetEvent("target.updated", mine.project_id);
        const since = Date.now();
        const id = await cluster.publish(PREFIX, mine.project_id, pub);
        assert.match(id, UUID_V4, `the CLI prints the event_id, got ${JSON.stringify(id)}`);
        for (const p of await expectOnceEach(socketsOf[mine.project_id], "target.updated")) assertBroadcast(p, pub, { since, answeredId: id });
        await Promise.all(socketsOf[theirs.project_id].map((s) => expectNothing(s, "target.updated", 0)));
      }

      // a raw SPUBLISH from any client: Redis reports both nodes, each socket gets one copy
      const raw = targetEvent("target.disabled", X.project_id, { event_id: randomUUID() });
      assert.equal(await cluster.publish(PREFIX, X.project_id, raw, { raw: true }), 2);
      for (const p of await expectOnceEach(socketsOf[X.project_id], "target.disabled")) assertBroadcast(p, raw);
      await Promise.all(socketsOf[Y.project_id].map((s) => expectNothing(s, "target.disabled", 0)));
    } finally {
      closeAll(all);
    }
  });

  test("POST /api/v1/publish on one node is delivered by both", async () => {
    const [X] = await projectsOnDistinctMasters(1);
    const sockets = [];
    try {
      for (const gw of nodes) {
        const s = await openSession(gw, { project_id: X.project_id });
        sockets.push(s.socket);
        await subscribe(s.socket, { channel: "targets" });
      }
      const pub = targetEvent("target.added", X.project_id);
      const answeredId = await mustPublish(nodes[1], pub);
      for (const p of await expectOnceEach(sockets, "target.added")) assertBroadcast(p, pub, { answeredId });
    } finally {
      closeAll(sockets);
    }
  });

  test("a node whose last socket of a project leaves releases the shard channel after the grace", async () => {
    const [X] = await projectsOnDistinctMasters(1);
    const a = await openSession(nodes[0], { project_id: X.project_id });
    const b = await openSession(nodes[1], { project_id: X.project_id });
    try {
      await subscribe(a.socket, { channel: "targets" });
      await subscribe(b.socket, { channel: "targets" });
      assert.equal(await shardNumsub(X.owner, channelOf(X.project_id)), 2);
      b.socket.close();
      await pollUntil(async () => (await shardNumsub(X.owner, channelOf(X.project_id))) === 1, {
        deadlineMs: GRACE_MS + 2500,
        what: "SHARDNUMSUB to drop to 1",
      });
      const pub = targetEvent("target.updated", X.project_id, { event_id: randomUUID() });
      assert.equal(await cluster.publish(PREFIX, X.project_id, pub, { raw: true }), 1, "only node 1 still receives the project");
      assertBroadcast(await waitFor(a.socket, "target.updated"), pub);
    } finally {
      closeAll(a.socket, b.socket);
    }
  });

  test("invalid sharded publications are dropped and logged; a valid one after them arrives", async () => {
    const [X] = await projectsOnDistinctMasters(1);
    const sockets = [];
    try {
      for (const gw of nodes) {
        const s = await openSession(gw, { project_id: X.project_id });
        sockets.push(s.socket);
        await subscribe(s.socket, { channel: "targets" });
      }
      const base = nodes.map((gw) => gw.logs().split("\n").filter((l) => l.includes("dropped an invalid publication")).length);
      await cluster.publish(PREFIX, X.project_id, "{not json", { raw: true });
      await cluster.publish(PREFIX, X.project_id, targetEvent("target.updated", randomUUID(), { event_id: randomUUID() }), { raw: true });
      const valid = targetEvent("target.updated", X.project_id, { event_id: randomUUID() });
      await cluster.publish(PREFIX, X.project_id, valid, { raw: true });
      for (const p of await expectOnceEach(sockets, "target.updated")) assertBroadcast(p, valid);
      for (const [i, gw] of nodes.entries()) {
        const lines = await pollUntil(() => {
          const l = gw.logs().split("\n").filter((x) => x.includes("dropped an invalid publication")).slice(base[i]);
          return l.length >= 2 ? l : false;
        }, { deadlineMs: 3000, what: `${gw.name} to log two drops` });
        assert.ok(lines.some((l) => /reason="?not_json/.test(l)), lines.join("\n"));
        assert.ok(lines.some((l) => /reason="?project_mismatch/.test(l)), lines.join("\n"));
      }
    } finally {
      closeAll(sockets);
    }
  });

  test("payment requests: the CLI --sharded writes the registries on the cluster; ids filled, terminal and forbidden work on both nodes", async () => {
    const [X] = await projectsOnDistinctMasters(1);
    const P = X.project_id;
    const req = newRequest();
    const channel = "payment-requests";
    const s1 = await openSession(nodes[0], { project_id: P });
    const s2 = await openSession(nodes[1], { project_id: P });
    const sockets = [s1.socket, s2.socket];
    try {
      await subscribe(s1.socket, { channel, payment_request_id: req.payment_request_id });
      await subscribe(s2.socket, { channel, provider_payment_id: req.provider_payment_id });
      const updated = paymentRequestUpdated(P, req, { status: "pending" });
      const id = await cluster.publish(PREFIX, P, updated);
      for (const p of await expectOnceEach(sockets, "payment-request.updated")) assertBroadcast(p, updated, { answeredId: id });
      const reg = JSON.parse(await cluster.clusterCli("GET", `${PREFIX}:payment-request:${req.payment_request_id}`));
      assert.equal(reg.project_id, P);

      const closedId = await cluster.publish(PREFIX, P, subscriptionClosed(P, { provider_payment_id: req.provider_payment_id, status: "cancelled" }));
      for (const got of await expectOnceEach(sockets, "subscription.closed")) {
        const { event_id, emitted_at, ...body } = got;
        assert.equal(event_id, closedId);
        assert.ok(Number.isInteger(emitted_at));
        assert.deepEqual(body, { channel, project_id: P, payment_request_id: req.payment_request_id, provider_payment_id: req.provider_payment_id, status: "cancelled" });
      }

      for (const gw of nodes) {
        const late = await openSession(gw, { project_id: P });
        sockets.push(late.socket);
        assertAck(await request(late.socket, { action: "subscribe", channel, payment_request_id: req.payment_request_id }), "subscribed", { channel, project_id: P, payment_request_id: req.payment_request_id });
        assert.equal((await waitFor(late.socket, "subscription.closed")).status, "cancelled");
        const stranger = await openSession(gw);
        sockets.push(stranger.socket);
        assertError(await request(stranger.socket, { action: "subscribe", channel, provider_payment_id: req.provider_payment_id }), "forbidden", { channel, action: "subscribe" });
      }
    } finally {
      closeAll(sockets);
    }
  });

  test("revocation with the CLI --sharded reaches both nodes", async () => {
    const [X] = await projectsOnDistinctMasters(1);
    const sid = randomUUID();
    const victims = [];
    const others = [];
    try {
      for (const gw of nodes) {
        const v = await openSession(gw, { project_id: X.project_id, claims: { sid } });
        await subscribe(v.socket, { channel: "targets" });
        victims.push(v);
        others.push(await openSession(gw, { project_id: X.project_id }));
      }
      await cluster.revoke(PREFIX, sid, "logout");
      for (const v of victims) {
        assert.deepEqual(await waitFor(v.socket, "session.revoked"), { reason: "logout" });
        assert.equal(await waitFor(v.socket, "disconnect"), "io server disconnect");
        assert.equal(received(v.socket).filter((e) => e.event === "session.revoked").length, 1);
      }
      await Promise.all(others.map((o) => expectNothing(o.socket, "session.revoked", ABSENCE_MS)));
      for (const gw of nodes) {
        const again = connect(gw, { token: victims[0].token, project_id: X.project_id });
        try {
          assert.equal(errorCode(await expectConnectError(again)), "session_revoked");
        } finally {
          again.close();
        }
      }
    } finally {
      closeAll(victims.map((v) => v.socket), others.map((o) => o.socket));
    }
  });

  test("a master killed and restarted: the nodes re-SSUBSCRIBE its channels and deliver again", async () => {
    const [X, Y] = await projectsOnDistinctMasters(2);
    const socketsOf = { [X.project_id]: [], [Y.project_id]: [] };
    const all = [];
    try {
      for (const gw of nodes) {
        for (const { project_id } of [X, Y]) {
          const s = await openSession(gw, { project_id });
          all.push(s.socket);
          await subscribe(s.socket, { channel: "targets" });
          socketsOf[project_id].push(s.socket);
        }
      }
      await cluster.stopNode(X.owner);
      try {
        for (const gw of nodes) {
          let last;
          await pollUntil(async () => (last = (await gw.http("GET", "/readyz")).status) === 503, {
            deadlineMs: 10000,
            intervalMs: 100,
            what: () => `${gw.name} /readyz 503 while the master of ${channelOf(X.project_id)} is down (last ${last})`,
          });
        }
      } finally {
        await cluster.startNode(X.owner);
      }
      for (const gw of nodes) {
        let last;
        await pollUntil(async () => (last = (await gw.http("GET", "/readyz")).status) === 200, {
          deadlineMs: 15000,
          intervalMs: 100,
          what: () => `${gw.name} /readyz 200 after the master came back (last ${last})`,
        });
      }
      assert.equal(await shardNumsub(X.owner, channelOf(X.project_id)), 2, "both nodes SSUBSCRIBEd again on the restarted master");
      assert.equal(await shardNumsub(Y.owner, channelOf(Y.project_id)), 2, "the other master's channel is still held");
      for (const { project_id } of [X, Y]) {
        const pub = targetEvent("target.updated", project_id);
        const id = await cluster.publish(PREFIX, project_id, pub);
        for (const p of await expectOnceEach(socketsOf[project_id], "target.updated")) assertBroadcast(p, pub, { answeredId: id });
      }
      for (const s of all) assert.equal(s.connected, true, "the clients were not disconnected");
    } finally {
      closeAll(all);
    }
  });
});
