//! Redis for the scale-out tests: a throwaway `redis-server` (or a 3-master Redis Cluster) on
//! free ports, a `redis-cli` wrapper, and publishing through the real publisher CLI
//! (`livegate-publish`, from `LIVEGATE_PUBLISH_BIN`, else the sibling of `LIVEGATE_BIN`) or
//! through a raw `PUBLISH`/`SPUBLISH` for payloads the CLI would refuse.
//!
//! Every wait has a deadline; nothing sleeps a fixed time except the short poll interval.

import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const E2E_DIR = resolve(HERE, "..");
const REPO_ROOT = resolve(E2E_DIR, "..", "..");

const REDIS_SERVER = process.env.REDIS_SERVER_BIN ?? "redis-server";
const REDIS_CLI = process.env.REDIS_CLI_BIN ?? "redis-cli";
const START_DEADLINE_MS = 10000;
const STOP_DEADLINE_MS = 5000;
const CLUSTER_DEADLINE_MS = 20000;

const running = new Set();
process.on("exit", () => {
  for (const child of running) {
    try {
      child.kill("SIGKILL");
    } catch {
      /* gone */
    }
  }
});

// === small utilities ===

/** Run a program; resolves {code, stdout, stderr} (never rejects on a non-zero exit). */
export function run(file, args, { input, env, timeoutMs = 10000 } = {}) {
  return new Promise((res, rej) => {
    const child = execFile(file, args, { env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== "number" && !err.killed) return rej(err);
      res({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
    if (input !== undefined) child.stdin.end(input);
  });
}

/** Poll `fn` (async, returns truthy when done) every `intervalMs` until `deadlineMs`; resolves its value. `what` may be a function (evaluated on timeout). */
export async function pollUntil(fn, { deadlineMs = 5000, intervalMs = 50, what = "a condition" } = {}) {
  const end = Date.now() + deadlineMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= end) {
      const shown = last instanceof Error ? last.message : JSON.stringify(last);
      const label = typeof what === "function" ? what() : what;
      throw new Error(`timed out after ${deadlineMs} ms waiting for ${label} (last result: ${shown})`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function portFree(port) {
  return new Promise((res) => {
    const srv = createServer();
    srv.once("error", () => res(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => res(true)));
  });
}

/**
 * A free TCP port on 127.0.0.1 whose +10000 sibling (the cluster bus port) is free too.
 * Random in 20000–45000 so that parallel test files rarely collide.
 */
export async function freePort({ withBus = false } = {}) {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 25000);
    if (!(await portFree(port))) continue;
    if (withBus && !(await portFree(port + 10000))) continue;
    return port;
  }
  throw new Error("no free port found");
}

/** `redis-cli -p port args…` → trimmed stdout; throws on a non-zero exit or an `ERR` reply. */
export async function cliAt(port, args, { input, cluster = false } = {}) {
  const full = ["-h", "127.0.0.1", "-p", String(port), ...(cluster ? ["-c"] : []), ...(input !== undefined ? ["-x"] : []), ...args];
  const { code, stdout, stderr } = await run(REDIS_CLI, full, { input });
  if (code !== 0) throw new Error(`redis-cli ${args.join(" ")} exited ${code}: ${stderr}${stdout}`);
  const out = stdout.replace(/\n$/, "");
  if (/^(ERR|WRONGTYPE|MOVED|CROSSSLOT|CLUSTERDOWN|NOPERM|Could not connect)/m.test(out)) {
    throw new Error(`redis-cli ${args.join(" ")} answered: ${out}`);
  }
  return out;
}

async function pingOk(port) {
  try {
    return (await run(REDIS_CLI, ["-h", "127.0.0.1", "-p", String(port), "ping"], { timeoutMs: 2000 })).stdout.trim() === "PONG";
  } catch {
    return false;
  }
}

// === one redis-server ===

function spawnServer(port, dir, extraArgs = []) {
  const logfile = join(dir, `redis-${port}.log`);
  const args = [
    "--port", String(port),
    "--bind", "127.0.0.1",
    "--save", "",
    "--appendonly", "no",
    "--dir", dir,
    "--logfile", logfile,
    "--daemonize", "no",
    ...extraArgs,
  ];
  const child = spawn(REDIS_SERVER, args, { stdio: ["ignore", "ignore", "pipe"] });
  running.add(child);
  let stderr = "";
  child.stderr.on("data", (c) => (stderr += c));
  const exited = new Promise((res) => child.once("exit", (code, signal) => res({ code, signal })));
  exited.then(() => running.delete(child));
  child.once("error", () => {});
  return { child, exited, logfile, stderr: () => stderr };
}

async function waitPong(port, proc) {
  let gone = false;
  proc.exited.then(() => (gone = true));
  const end = Date.now() + START_DEADLINE_MS;
  while (Date.now() < end) {
    if (gone) break;
    if (await pingOk(port)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  let log = "";
  try {
    log = readFileSync(proc.logfile, "utf8").split("\n").slice(-20).join("\n");
  } catch {
    /* none */
  }
  throw new Error(`redis-server on port ${port} did not answer PONG (exited: ${gone})\n${proc.stderr()}\n${log}`);
}

async function stopProc(proc, signal = "SIGTERM") {
  if (!proc) return;
  const { child, exited } = proc;
  if (child.exitCode === null && child.signalCode === null) {
    child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_DEADLINE_MS);
    await exited;
    clearTimeout(timer);
  }
}

/**
 * Start `redis-server` on a free port (or `port`). Resolves
 * `{port, url, dir, cli(...args) -> stdout, stop(), restart(), publish(...), revoke(...)}`.
 * `stop()` kills it (SIGKILL: a crash, no graceful goodbye to the clients); `restart()` kills it
 * and starts a fresh, empty one on the same port, waiting for PONG.
 */
export async function startRedis({ port, cluster = false } = {}) {
  if (cluster) return startRedisCluster();
  port ??= await freePort();
  const dir = mkdtempSync(join(tmpdir(), "livegate-redis-"));
  let proc = spawnServer(port, dir);
  await waitPong(port, proc);
  const url = `redis://127.0.0.1:${port}`;
  const r = {
    port,
    url,
    dir,
    sharded: false,
    cli: (...args) => cliAt(port, args),
    /** `redis-cli -x args…` with the last argument read from stdin, byte for byte. */
    cliInput: (input, ...args) => cliAt(port, args, { input }),
    async stop() {
      await stopProc(proc, "SIGKILL");
      proc = null;
    },
    async start() {
      if (proc) return;
      proc = spawnServer(port, dir);
      await waitPong(port, proc);
    },
    async restart() {
      await r.stop();
      await r.start();
    },
    publish: (prefix, projectId, obj, opts = {}) => publish(r, prefix, projectId, obj, opts),
    revoke: (prefix, sid, reason = "logout") => revoke(r, prefix, sid, reason),
  };
  return r;
}

// === a 3-master Redis Cluster ===

/** Parse `CLUSTER NODES` into [{id, port, master, slots: [[lo, hi], ...]}]. */
export function parseClusterNodes(text) {
  return text
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => {
      const f = l.trim().split(/\s+/);
      const port = Number(f[1].split("@")[0].split(":").pop());
      const slots = f
        .slice(8)
        .filter((s) => /^\d+(-\d+)?$/.test(s))
        .map((s) => {
          const [lo, hi] = s.split("-").map(Number);
          return [lo, hi ?? lo];
        });
      return { id: f[0], port, master: f[2].includes("master"), slots };
    });
}

/**
 * Three masters (no replicas) on free ports, `redis-cli --cluster create`, then wait until
 * every node says `cluster_state:ok` and agrees on the slot map. Resolves
 * `{ports, url: "redis-cluster://127.0.0.1:p1", cli(port, ...args), ownerOf(key) -> port, stop(), publish, revoke}`.
 */
export async function startRedisCluster() {
  const dir = mkdtempSync(join(tmpdir(), "livegate-redis-cluster-"));
  const ports = [];
  while (ports.length < 3) {
    const p = await freePort({ withBus: true });
    if (!ports.includes(p)) ports.push(p);
  }
  const clusterArgs = (p) => ["--cluster-enabled", "yes", "--cluster-config-file", join(dir, `nodes-${p}.conf`), "--cluster-node-timeout", "2000"];
  const procs = ports.map((p) => spawnServer(p, dir, clusterArgs(p)));
  const stop = async () => {
    await Promise.all(procs.map((p) => stopProc(p, "SIGKILL")));
  };
  async function clusterOk() {
    await pollUntil(
      async () => {
        for (const p of ports) {
          const info = await cliAt(p, ["cluster", "info"]);
          if (!/cluster_state:ok/.test(info)) return false;
          if (!/cluster_slots_ok:16384/.test(info)) return false;
          if (!/cluster_known_nodes:3/.test(info)) return false;
        }
        return true;
      },
      { deadlineMs: CLUSTER_DEADLINE_MS, intervalMs: 100, what: "cluster_state:ok on all three nodes" },
    );
  }
  try {
    await Promise.all(ports.map((p, i) => waitPong(p, procs[i])));
    const create = await run(
      REDIS_CLI,
      ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "0", "--cluster-yes"],
      { timeoutMs: CLUSTER_DEADLINE_MS },
    );
    if (create.code !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    await clusterOk();
  } catch (e) {
    await stop();
    throw e;
  }
  const c = {
    ports,
    dir,
    url: `redis-cluster://127.0.0.1:${ports[0]}`,
    sharded: true,
    /** redis-cli on one node of the cluster (no redirection following). */
    cli: (port, ...args) => cliAt(port, args),
    /** redis-cli -c (follows MOVED) starting at the first node. */
    clusterCli: (...args) => cliAt(ports[0], args, { cluster: true }),
    clusterCliInput: (input, ...args) => cliAt(ports[0], args, { input, cluster: true }),
    /** The port of the master that owns the slot of `key` (a key or a sharded channel name). */
    async ownerOf(key) {
      const slot = Number(await cliAt(ports[0], ["cluster", "keyslot", key]));
      const nodes = parseClusterNodes(await cliAt(ports[0], ["cluster", "nodes"]));
      const owner = nodes.find((n) => n.master && n.slots.some(([lo, hi]) => slot >= lo && slot <= hi));
      if (!owner) throw new Error(`no master owns slot ${slot} of ${key}`);
      return owner.port;
    },
    stop,
    /** Kill one master (SIGKILL) and leave it down. */
    async stopNode(port) {
      await stopProc(procs[ports.indexOf(port)], "SIGKILL");
    },
    /** Start a killed master again with its cluster config (same id, same slots; data lost), wait for cluster_state:ok. */
    async startNode(port) {
      const i = ports.indexOf(port);
      procs[i] = spawnServer(port, dir, clusterArgs(port));
      await waitPong(port, procs[i]);
      await clusterOk();
    },
    publish: (prefix, projectId, obj, opts = {}) => publish(c, prefix, projectId, obj, { sharded: true, ...opts }),
    revoke: (prefix, sid, reason = "logout") => revoke(c, prefix, sid, reason, { sharded: true }),
  };
  return c;
}

// === publishing ===

export function publisherBinary() {
  let bin = process.env.LIVEGATE_PUBLISH_BIN;
  if (!bin) {
    const gw = process.env.LIVEGATE_BIN;
    if (!gw) throw new Error("set LIVEGATE_PUBLISH_BIN or LIVEGATE_BIN (the publisher CLI is its sibling livegate-publish)");
    bin = join(dirname(gw), "livegate-publish");
  }
  const candidates = isAbsolute(bin) ? [bin] : [resolve(process.cwd(), bin), resolve(REPO_ROOT, bin)];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`the publisher CLI ${bin} does not exist (looked at ${candidates.join(", ")})`);
  return found;
}

/** Run the publisher CLI against `redis` (a startRedis / startRedisCluster handle); inherited LIVEGATE_* are dropped. */
export async function runPublisher(redis, prefix, args, { sharded = redis.sharded } = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("LIVEGATE_")) env[k] = v;
  const full = ["--redis-url", redis.url, "--prefix", prefix, ...(sharded ? ["--sharded"] : []), ...args];
  const res = await run(publisherBinary(), full, { env, timeoutMs: 15000 });
  if (res.code !== 0) {
    throw new Error(`livegate-publish ${full.join(" ").slice(0, 300)} exited ${res.code}:\n${res.stderr}${res.stdout}`);
  }
  return res.stdout.trim();
}

/**
 * Publish `obj` for `projectId`. An object goes through the publisher CLI (registries, then
 * PUBLISH/SPUBLISH) and resolves the event_id it printed. A string, or `{raw: true}`, is sent
 * byte for byte with `redis-cli PUBLISH` (`SPUBLISH` when sharded) on `{prefix}:project:{projectId}`
 * and resolves the number of receivers Redis reported.
 */
export async function publish(redis, prefix, projectId, obj, { sharded = redis.sharded, raw = typeof obj === "string" } = {}) {
  if (!raw) {
    if (obj?.project_id !== undefined && String(obj.project_id).toLowerCase() !== String(projectId).toLowerCase()) {
      throw new Error(`publish: project ${projectId} but the publication says ${obj.project_id}; use {raw: true}`);
    }
    const out = await runPublisher(redis, prefix, ["publish", JSON.stringify(obj)], { sharded });
    return out.split("\n").pop().trim();
  }
  const payload = typeof obj === "string" ? obj : JSON.stringify(obj);
  const channel = `${prefix}:project:${projectId}`;
  const cmd = sharded ? "SPUBLISH" : "PUBLISH";
  const out = redis.sharded ? await redis.clusterCliInput(payload, cmd, channel) : await redis.cliInput(payload, cmd, channel);
  return Number(out.trim());
}

/** `livegate-publish revoke --sid S --reason R`. */
export function revoke(redis, prefix, sid, reason = "logout", { sharded = redis.sharded } = {}) {
  return runPublisher(redis, prefix, ["revoke", "--sid", sid, "--reason", reason], { sharded });
}
