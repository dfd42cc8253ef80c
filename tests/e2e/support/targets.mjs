//! The targets REST API in the end-to-end suite: a small client for
//! `/v2/projects/{project_id}/targets`, the envelope assertions of CONTRACT §6 / seed 001, and
//! `startTargets`, which runs the `livegate-targets` binary (Redis store) on 127.0.0.1:0.
//!
//! The binary comes from `LIVEGATE_TARGETS_BIN`, else it is the sibling `livegate-targets` of
//! `LIVEGATE_BIN` (never guessed further). Its address is read from its `listening addr=` log line.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { TEST_SECRET, UUID_V4, openSession, received, subscribe } from "./gateway.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(HERE, "..", "..", "..");
const STARTUP_DEADLINE_MS = 15000;

// === the REST client ===

/**
 * A client of one project's targets. `auth` is the bearer credential (a user token or an API
 * key); `null` sends no Authorization header. Every call resolves `{status, body, text}` and never
 * throws on an HTTP error.
 */
export function targetsClient(baseUrl, projectId, auth) {
  const base = `${baseUrl}/v2/projects/${projectId}/targets`;
  async function call(method, rest = "", body, { raw, headers = {} } = {}) {
    const h = { ...headers };
    if (auth !== null) h.authorization = `Bearer ${auth}`;
    let payload;
    if (raw !== undefined) payload = raw;
    else if (body !== undefined) payload = JSON.stringify(body);
    if (payload !== undefined) h["content-type"] ??= "application/json";
    const res = await fetch(base + rest, { method, headers: h, body: payload });
    const text = await res.text();
    let parsed;
    try {
      parsed = text === "" ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: parsed, text, headers: res.headers };
  }
  return {
    base,
    path: (rest = "") => new URL(base + rest).pathname,
    call,
    list: (query = "") => call("GET", query),
    get: (id) => call("GET", `/${id}`),
    create: (body) => call("POST", "", body),
    patch: (id, body) => call("PATCH", `/${id}`, body),
    bulk: (items) => call("PATCH", "", items),
    remove: (id) => call("DELETE", `/${id}`),
    /** Create and require 201; resolves the stored target. */
    async mustCreate(fields = {}) {
      const res = await call("POST", "", newTarget(fields));
      assert.equal(res.status, 201, `create answered ${res.status} ${res.text}`);
      return res.body.data;
    },
  };
}

/** A valid create body, `overrides` applied. */
export function newTarget(overrides = {}) {
  return {
    target_name: "My Server",
    platform: "discord",
    kind: "guild",
    external_id: String(100000000000000000n + BigInt(Math.floor(Math.random() * 1e12))),
    ...overrides,
  };
}

/** A success envelope: exactly seed 001's keys, in its order. */
export function assertOk(res, { method, path, code = 200, total, message } = {}) {
  assert.equal(res.status, code, `expected ${code}, got ${res.status} ${res.text}`);
  const keys = ["ok", "request_id", "method", "path", "code"];
  if (total !== undefined) keys.push("total");
  if (message !== undefined) keys.push("message");
  keys.push("data");
  assert.deepEqual(Object.keys(res.body), keys, res.text);
  assert.equal(res.body.ok, true);
  assert.match(res.body.request_id, UUID_V4);
  assert.equal(res.headers.get("x-request-id"), res.body.request_id);
  if (method) assert.equal(res.body.method, method);
  if (path) assert.equal(res.body.path, path);
  assert.equal(res.body.code, code);
  if (total !== undefined && total !== true) assert.equal(res.body.total, total);
  if (typeof message === "string") assert.equal(res.body.message, message);
  return res.body.data;
}

/**
 * An error envelope `{ok:false, request_id, method, path, code, error:{code, message, errors?}}`.
 * `fields`, when given, is the exact list of `error.errors[].field`.
 */
export function assertApiError(res, status, code, { method, path, fields } = {}) {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status} ${res.text}`);
  assert.deepEqual(Object.keys(res.body), ["ok", "request_id", "method", "path", "code", "error"], res.text);
  assert.equal(res.body.ok, false);
  assert.match(res.body.request_id, UUID_V4);
  assert.equal(res.body.code, status);
  if (method) assert.equal(res.body.method, method);
  if (path) assert.equal(res.body.path, path);
  assert.equal(res.body.error.code, code, res.text);
  assert.equal(typeof res.body.error.message, "string");
  assert.ok(res.body.error.message.length > 0);
  if (fields) {
    assert.deepEqual((res.body.error.errors ?? []).map((e) => e.field), fields, res.text);
    for (const e of res.body.error.errors ?? []) assert.equal(typeof e.message, "string");
  }
  return res.body.error;
}

// === live events ===

export const TARGET_EVENTS = ["target.added", "target.removed", "target.enabled", "target.disabled", "target.updated"];

/** A socket of `projectId` on `gw`, subscribed to `targets`. */
export async function targetsListener(gw, projectId) {
  const { socket } = await openSession(gw, { project_id: projectId });
  await subscribe(socket, { channel: "targets" });
  return socket;
}

/**
 * The first target event `socket` received that no one consumed yet, whatever its name, in
 * arrival order: `{name, payload}`. Consumes it. (`waitFor` takes one event name; a change's
 * event is one of five.)
 */
export async function nextTargetEvent(socket, timeoutMs = 5000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const e = received(socket).find((x) => !x.consumed && TARGET_EVENTS.includes(x.event));
    if (e) {
      e.consumed = true;
      return { name: e.event, payload: e.args[0] };
    }
    if (Date.now() > end) throw new Error(`no target event within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// === the livegate-targets binary ===

/** The path of the `livegate-targets` binary. */
export function targetsBinary() {
  let bin = process.env.LIVEGATE_TARGETS_BIN;
  if (!bin) {
    const gw = process.env.LIVEGATE_BIN;
    if (!gw) throw new Error("set LIVEGATE_TARGETS_BIN or LIVEGATE_BIN (livegate-targets is its sibling)");
    bin = join(dirname(gw), "livegate-targets");
  }
  const candidates = isAbsolute(bin) ? [bin] : [resolve(process.cwd(), bin), resolve(REPO_ROOT, bin)];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`${bin} does not exist (looked at ${candidates.join(", ")}); cargo build first`);
  return found;
}

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

/**
 * Start `livegate-targets` on 127.0.0.1:0 with the test secret; `env` adds or overrides
 * `LIVEGATE_TARGETS_*` (inherited `LIVEGATE_*` are dropped). Resolves `{url, logs(), stop()}`.
 */
export async function startTargets(env = {}) {
  const childEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("LIVEGATE_")) childEnv[k] = v;
  Object.assign(childEnv, {
    NO_COLOR: "1",
    LIVEGATE_TARGETS_LISTEN: "127.0.0.1:0",
    LIVEGATE_TARGETS_JWT_HMAC_SECRET: TEST_SECRET,
    LIVEGATE_TARGETS_LOG: "info",
    ...env,
  });
  const child = spawn(targetsBinary(), [], { env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  const lines = [];
  const exited = new Promise((res) => child.once("exit", (code) => res(code)));
  exited.then(() => running.delete(child));
  const url = await new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`livegate-targets did not listen:\n${lines.join("\n")}`)), STARTUP_DEADLINE_MS);
    const onData = (chunk) => {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (!line) continue;
        lines.push(line);
        const m = /listening addr=(\S+)/.exec(line);
        if (m) {
          clearTimeout(timer);
          res(`http://${m[1]}`);
        }
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    exited.then((code) => {
      clearTimeout(timer);
      rej(new Error(`livegate-targets exited with ${code} before listening:\n${lines.join("\n")}`));
    });
  });
  return {
    url,
    logs: () => lines.join("\n"),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}
