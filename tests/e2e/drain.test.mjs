//! Graceful drain on SIGTERM (docs/operations.md "Upgrading"): two gateway nodes on one
//! redis-server, 200 stock socket.io-client sockets (reconnection on; every fourth one on HTTP
//! long-polling only, the others on websocket) that each know both nodes' URLs. SIGTERM one node: `/readyz` fails at once, a new handshake is refused, its
//! clients are closed at the transport level in batches over the drain window, reconnect to the
//! other node by themselves, subscribe again and receive the next publication; the drained
//! process exits 0. Also: /metrics of the surviving node counts them.
//!
//! The client-side failover is the smallest a real app would write: on each reconnection
//! attempt, point the Manager at the next URL of its list (behind a load balancer, the URL
//! would stay the same and the balancer would pick a ready node).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { io } from "socket.io-client";
import { NAMESPACE, SOCKET_PATH, mintToken, randomUUID, startGateway, userClaims } from "./support/gateway.mjs";
import { targetEvent } from "./support/fixtures.mjs";
import { pollUntil, startRedis } from "./support/redis.mjs";

const PREFIX = `lg-drain-${randomUUID().slice(0, 8)}`;
const CLIENTS = 200;
const WINDOW_MS = 4000;
const BATCHES = 4;
// After the last batch a client waits its reconnection delay (≤ 1 s here), then handshakes.
const RECONNECT_SLACK_MS = 3000;

let redis;
let nodes = [];

function nodeEnv() {
  return {
    LIVEGATE_ENGINE: "redis",
    LIVEGATE_REDIS_URL: redis.url,
    LIVEGATE_REDIS_PREFIX: PREFIX,
    LIVEGATE_UNSUBSCRIBE_GRACE: "500ms",
    LIVEGATE_DRAIN_WINDOW: `${WINDOW_MS}ms`,
    LIVEGATE_DRAIN_BATCHES: String(BATCHES),
    LIVEGATE_LOG: "info",
  };
}

async function readyz(gw) {
  try {
    return (await gw.http("GET", "/readyz")).status;
  } catch (e) {
    return `error: ${e.message}`;
  }
}

before(async () => {
  redis = await startRedis();
  nodes = await Promise.all([1, 2].map((i) => startGateway(nodeEnv(), { name: `drain-${i}` })));
  for (const gw of nodes) {
    await pollUntil(async () => (await readyz(gw)) === 200, { deadlineMs: 15000, what: `${gw.name} ready` });
  }
});

after(async () => {
  for (const c of clients) c.socket.close();
  await Promise.all(nodes.map((gw) => gw.stop()));
  await redis?.stop();
});

/**
 * One application client: connects to `urls[start]`, moves to the next URL on every
 * reconnection attempt, subscribes to `targets` after each `ready`, and records what happened.
 */
function appClient(urls, start, project_id, transports) {
  const token = mintToken(userClaims({ projects: [project_id] }));
  const c = {
    urls,
    at: start,
    subscribedOn: null, // the URL of the node that acknowledged the current subscription
    disconnects: [], // [{reason, at}]
    subscribedAt: [],
    events: [],
    waiters: new Set(),
  };
  const socket = io(`${urls[start]}${NAMESPACE}`, {
    path: SOCKET_PATH,
    transports,
    forceNew: true,
    reconnection: true,
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
    auth: { token, project_id },
  });
  c.socket = socket;
  const notify = () => c.waiters.forEach((w) => w());
  socket.io.on("reconnect_attempt", () => {
    c.at = (c.at + 1) % urls.length;
    socket.io.uri = urls[c.at];
  });
  socket.on("message", (m) => {
    if (m?.event === "ready") socket.send({ action: "subscribe", channel: "targets" });
    if (m?.event === "subscribed") {
      c.subscribedOn = urls[c.at];
      c.subscribedAt.push(Date.now());
      notify();
    }
  });
  socket.on("target.added", (e) => {
    c.events.push(e.event_id);
    notify();
  });
  socket.on("disconnect", (reason) => {
    c.subscribedOn = null;
    c.disconnects.push({ reason, at: Date.now() });
    notify();
  });
  return c;
}

/** Resolves when `pred(c)` holds for every client; rejects after `deadlineMs` naming the first laggard. */
function allOf(cs, pred, deadlineMs, what) {
  return Promise.all(
    cs.map(
      (c, i) =>
        new Promise((resolve, reject) => {
          const check = () => {
            if (pred(c)) {
              clearTimeout(timer);
              c.waiters.delete(check);
              resolve();
            }
          };
          const timer = setTimeout(() => {
            c.waiters.delete(check);
            reject(
              new Error(
                `client ${i}: timed out after ${deadlineMs} ms waiting for ${what}; ` +
                  `at ${c.urls[c.at]}, subscribed on ${c.subscribedOn}, disconnects ${JSON.stringify(c.disconnects)}, events ${c.events.length}`,
              ),
            );
          }, deadlineMs);
          c.waiters.add(check);
          check();
        }),
    ),
  );
}

let clients = [];

async function publishTarget(project_id) {
  const pub = targetEvent("target.added", project_id, { event_id: randomUUID() });
  await redis.publish(PREFIX, project_id, pub);
  return pub.event_id;
}

async function metric(gw, line) {
  const text = (await gw.http("GET", "/metrics")).text;
  const found = text.split("\n").find((l) => l.startsWith(line + " "));
  return found === undefined ? undefined : Number(found.split(" ").pop());
}

describe("graceful drain", () => {
  test("SIGTERM moves 200 clients of one node to the other within the drain window; the node exits 0", async () => {
    const [leaving, staying] = nodes;
    const urls = [leaving.url, staying.url];
    const project_id = randomUUID();
    const transportsOf = (i) => (i % 4 === 0 ? ["polling"] : ["websocket"]);
    clients = Array.from({ length: CLIENTS }, (_, i) => appClient(urls, i % 2, project_id, transportsOf(i)));
    const moving = clients.filter((_, i) => i % 2 === 0);
    const movingPolling = clients.filter((_, i) => i % 4 === 0);
    assert.equal(movingPolling.length, CLIENTS / 4);

    await allOf(clients, (c) => c.subscribedOn !== null, 30000, "the first subscription");
    assert.equal(await metric(leaving, `livegate_connected_sockets{namespace="${NAMESPACE}"}`), CLIENTS / 2);
    assert.equal(await metric(staying, `livegate_subscriptions{channel="targets"}`), CLIENTS / 2);
    const before = await publishTarget(project_id);
    await allOf(clients, (c) => c.events.includes(before), 10000, "the publication before the drain");

    const t0 = Date.now();
    leaving.kill("SIGTERM");

    // Readiness fails at once, and a new handshake is refused.
    let status;
    await pollUntil(async () => (status = await readyz(leaving)) === 503, {
      deadlineMs: 1000,
      intervalMs: 20,
      what: () => `/readyz of the draining node to answer 503 (last: ${status})`,
    });
    const readyzFailedMs = Date.now() - t0;
    const late = io(`${leaving.url}${NAMESPACE}`, {
      path: SOCKET_PATH,
      transports: ["websocket"],
      forceNew: true,
      reconnection: false,
      auth: { token: mintToken(userClaims({ projects: [project_id] })), project_id },
    });
    const refused = await new Promise((resolve) => {
      late.on("connect", () => resolve("connected"));
      late.on("connect_error", (e) => resolve(`connect_error: ${e.message}`));
    });
    late.close();
    assert.match(refused, /^connect_error/, "a new handshake on a draining node must fail");

    // Every client of the leaving node is closed at the transport level, and comes back on the other.
    await allOf(
      moving,
      (c) => c.disconnects.length > 0 && c.subscribedOn === staying.url,
      WINDOW_MS + RECONNECT_SLACK_MS,
      "a subscription on the other node",
    );
    const allBackMs = Date.now() - t0;
    // The long-polling clients moved too (each holds no websocket: only HTTP requests).
    assert.ok(movingPolling.every((c) => c.subscribedOn === staying.url && c.socket.io.engine.transport.name === "polling"));
    const reasons = new Set(moving.flatMap((c) => c.disconnects.map((d) => d.reason)));
    for (const r of reasons) {
      assert.ok(["transport close", "transport error"].includes(r), `disconnect reason ${r} is not a transport close`);
    }
    // Closed in batches: the disconnects are spread over the window, not all at once.
    const closedAt = moving.map((c) => c.disconnects[0].at - t0).sort((a, b) => a - b);
    const spreadMs = closedAt[closedAt.length - 1] - closedAt[0];
    assert.ok(spreadMs >= (WINDOW_MS * (BATCHES - 2)) / BATCHES, `disconnects spread over only ${spreadMs} ms`);
    const reconnectMs = moving.map((c) => c.subscribedAt[c.subscribedAt.length - 1] - c.disconnects[0].at).sort((a, b) => a - b);

    const afterDrain = await publishTarget(project_id);
    await allOf(clients, (c) => c.events.includes(afterDrain), 5000, "the publication after the drain");
    const receivedMs = Date.now() - t0;
    // The clients that stayed were never disturbed.
    assert.ok(clients.filter((_, i) => i % 2 === 1).every((c) => c.disconnects.length === 0));

    const exit = await leaving.exited;
    const exitMs = Date.now() - t0;
    assert.deepEqual(exit, { code: 0, signal: null }, "the drained node exits 0");
    assert.ok(exitMs <= WINDOW_MS + 2000, `the drain took ${exitMs} ms for a ${WINDOW_MS} ms window`);
    assert.equal(await metric(staying, `livegate_connected_sockets{namespace="${NAMESPACE}"}`), CLIENTS);
    assert.match(leaving.logs(), /drain finished/);

    const p = (xs, q) => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))];
    console.log(
      `# drain of ${moving.length} clients (${movingPolling.length} long-polling; window ${WINDOW_MS} ms, ${BATCHES} batches): readyz 503 after ${readyzFailedMs} ms; ` +
        `closes from ${closedAt[0]} to ${closedAt[closedAt.length - 1]} ms; ` +
        `reconnect+resubscribe p50 ${p(reconnectMs, 0.5)} ms, max ${reconnectMs[reconnectMs.length - 1]} ms; ` +
        `reasons ${[...reasons].join("/")}; all back after ${allBackMs} ms; event received by all ${CLIENTS} after ${receivedMs} ms; process exited 0 after ${exitMs} ms`,
    );
  });
});
