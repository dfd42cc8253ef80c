//! Smoke test of `make cluster` (deploy/local/cluster.sh): start the local cluster (redis-server,
//! three livegate nodes, nginx) on free ports, connect one client through nginx over HTTP
//! long-polling and one over websocket, publish through nginx, both receive, stop everything.
//!
//! Run by `make cluster-smoke` (not part of `npm test`: it needs nginx).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { Agent } from "node:http";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { io } from "socket.io-client";
import { NAMESPACE, SOCKET_PATH, mintToken, randomUUID, userClaims } from "../support/gateway.mjs";
import { targetEvent } from "../support/fixtures.mjs";
import { freePort } from "../support/redis.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const DEV_SECRET = "livegate-dev-secret-do-not-use-in-production";
const DEV_PUBLISH_KEY = "livegate-dev-publish-key";
const START_DEADLINE_MS = 45000;
const STOP_DEADLINE_MS = 20000;

let cluster;
let clusterDir;
let output = "";
let lb;
let nodePorts;
const sockets = [];

/** Three consecutive free ports for the nodes (the script numbers them from NODE_PORT). */
async function freeRun() {
  for (let i = 0; i < 50; i++) {
    const p = await freePort();
    if ((await isFree(p + 1)) && (await isFree(p + 2))) return p;
  }
  throw new Error("no three consecutive free ports");
}

async function isFree(port) {
  const net = await import("node:net");
  return new Promise((res) => {
    const s = net.createServer();
    s.once("error", () => res(false));
    s.listen(port, "127.0.0.1", () => s.close(() => res(true)));
  });
}

before(async () => {
  const [lbPort, redisPort, nodePort] = [await freePort(), await freePort(), await freeRun()];
  nodePorts = [nodePort, nodePort + 1, nodePort + 2];
  lb = `http://127.0.0.1:${lbPort}`;
  const env = {
    ...process.env,
    LB_PORT: String(lbPort),
    NODE_PORT: String(nodePort),
    REDIS_PORT: String(redisPort),
    CLUSTER_DIR: (clusterDir = resolve(ROOT, "target", `cluster-smoke-${process.pid}`)),
    CLUSTER_PREFIX: `lg-smoke-${randomUUID().slice(0, 8)}`,
  };
  cluster = spawn("bash", [resolve(ROOT, "deploy/local/cluster.sh")], { env, stdio: ["ignore", "pipe", "pipe"] });
  cluster.exited = new Promise((res) => cluster.once("exit", (code, signal) => res({ code, signal })));
  await new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`the cluster was not ready within ${START_DEADLINE_MS} ms:\n${output}`)), START_DEADLINE_MS);
    const onData = (chunk) => {
      output += chunk;
      if (output.includes("cluster ready")) {
        clearTimeout(timer);
        res();
      }
    };
    cluster.stdout.on("data", onData);
    cluster.stderr.on("data", onData);
    cluster.exited.then(({ code }) => {
      clearTimeout(timer);
      rej(new Error(`the cluster script exited (${code}) before it was ready:\n${output}`));
    });
  });
});

after(async () => {
  for (const s of sockets) s.close();
  if (cluster && cluster.exitCode === null) {
    cluster.kill("SIGKILL");
  }
  if (clusterDir && !process.env.LIVEGATE_E2E_LOGS) rmSync(clusterDir, { recursive: true, force: true });
});

/** A client through the load balancer, from its own loopback source address. */
function client(transports, localAddress, project_id) {
  const token = mintToken(userClaims({ projects: [project_id] }), { key: DEV_SECRET });
  const socket = io(`${lb}${NAMESPACE}`, {
    path: SOCKET_PATH,
    transports,
    upgrade: false,
    forceNew: true,
    reconnection: false,
    agent: new Agent({ keepAlive: true, localAddress }),
    localAddress,
    auth: { token, project_id },
  });
  sockets.push(socket);
  const events = [];
  socket.on("target.added", (e) => events.push(e));
  const subscribed = new Promise((res, rej) => {
    socket.on("connect_error", (e) => rej(new Error(`${transports} client: connect_error ${e.message}`)));
    socket.on("message", (m) => {
      if (m?.event === "ready") socket.send({ action: "subscribe", channel: "targets" });
      if (m?.event === "subscribed") res();
      if (m?.event === "error") rej(new Error(`${transports} client: ${JSON.stringify(m)}`));
    });
  });
  return { socket, events, subscribed };
}

async function until(pred, ms, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function connectedOn(port) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`livegate_connected_sockets{namespace="${NAMESPACE}"}`));
  return Number(line?.split(" ").pop() ?? 0);
}

describe("make cluster", () => {
  test("a polling and a websocket client through nginx both receive a publication; the cluster stops cleanly", async () => {
    const project_id = randomUUID();
    const polling = client(["polling"], "127.0.0.2", project_id);
    const websocket = client(["websocket"], "127.0.0.3", project_id);
    await Promise.all([polling.subscribed, websocket.subscribed]);
    assert.equal(polling.socket.io.engine.transport.name, "polling");
    assert.equal(websocket.socket.io.engine.transport.name, "websocket");
    const counts = await Promise.all(nodePorts.map(connectedOn));
    assert.equal(counts.reduce((a, b) => a + b, 0), 2, `sockets per node: ${counts}`);

    const event_id = randomUUID();
    const res = await fetch(`${lb}/api/v1/publish`, {
      method: "POST",
      headers: { authorization: `Bearer ${DEV_PUBLISH_KEY}`, "content-type": "application/json" },
      body: JSON.stringify(targetEvent("target.added", project_id, { event_id })),
    });
    assert.equal(res.status, 202, await res.text());
    await until(() => polling.events.some((e) => e.event_id === event_id), 5000, "the event on the polling client");
    await until(() => websocket.events.some((e) => e.event_id === event_id), 5000, "the event on the websocket client");
    // Several long polls later, the polling session is still on its node (no "Session ID unknown").
    assert.ok(polling.socket.connected);

    for (const s of sockets) s.close();
    const started = Date.now();
    cluster.kill("SIGTERM");
    const timer = setTimeout(() => cluster.kill("SIGKILL"), STOP_DEADLINE_MS);
    const exit = await cluster.exited;
    clearTimeout(timer);
    assert.equal(exit.code, 0, output);
    assert.match(output, /cluster: stopped/);
    for (const port of nodePorts) {
      await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`), `node on ${port} is gone`);
    }
    await assert.rejects(fetch(`${lb}/healthz`), "nginx is gone");
    console.log(`# cluster smoke: sockets per node ${counts}; stopped in ${Date.now() - started} ms`);
  });
});
