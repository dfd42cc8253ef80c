//! The harness of the end-to-end suite: start the real `livegate` binary, mint tokens,
//! open Socket.IO clients and await what they receive.
//!
//! The binary comes from `LIVEGATE_BIN` (never guessed). Each gateway listens on
//! `127.0.0.1:0` and we read its address from its single `listening addr=…` log line.
//! Every socket made by `connect` records all it receives from the moment it is created
//! (named events, `message`, `connect`, `connect_error`, `disconnect`), so an await
//! started late still sees what arrived before it. Awaits have deadlines; the only
//! fixed wait is `expectNothing`, which asserts absence.

import { spawn } from "node:child_process";
import { createHmac, randomUUID, sign as cryptoSign } from "node:crypto";
import { existsSync, mkdirSync, createWriteStream } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import jwt from "jsonwebtoken";
import { io } from "socket.io-client";

export { randomUUID };

const HERE = dirname(fileURLToPath(import.meta.url));
const E2E_DIR = resolve(HERE, "..");
const REPO_ROOT = resolve(E2E_DIR, "..", "..");

export const NAMESPACE = "/v2/live-updates";
export const SOCKET_PATH = "/v2/live-updates/socket.io/";
export const TEST_SECRET = "livegate-e2e-test-secret-0123456789abcdef";
export const TEST_PUBLISH_KEY = "livegate-e2e-publish-key-fedcba9876543210";
export const DEFAULT_TIMEOUT_MS = 5000;
export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
export const CHANNELS = ["payment-methods", "payment-requests", "targets"];

const STARTUP_DEADLINE_MS = 15000;
const STOP_DEADLINE_MS = 5000;
const LOG_TAIL_LINES = 60;

// === gateway processes ===

const running = new Set();
process.on("exit", () => {
  for (const child of running) {
    try {
      child.kill("SIGKILL");
    } catch {
      /* already gone */
    }
  }
});

function gatewayBinary() {
  const bin = process.env.LIVEGATE_BIN;
  if (!bin) {
    throw new Error(
      "LIVEGATE_BIN is not set. Build the gateway (cargo build) and run e.g. " +
        "`LIVEGATE_BIN=$PWD/target/debug/livegate npm test` from tests/e2e.",
    );
  }
  const candidates = isAbsolute(bin) ? [bin] : [resolve(process.cwd(), bin), resolve(REPO_ROOT, bin)];
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(`LIVEGATE_BIN=${bin} does not exist (looked at ${candidates.join(", ")})`);
  }
  return found;
}

const ANSI = /\x1b\[[0-9;]*m/g;

/**
 * Start `$LIVEGATE_BIN serve` on 127.0.0.1:0 with the test secret and publish key.
 * `env` overrides or adds LIVEGATE_* variables; a value of `undefined` removes one.
 * Inherited LIVEGATE_* variables are never passed on, so the caller's shell cannot
 * change what a test runs against.
 */
export async function startGateway(env = {}, { name = "gateway" } = {}) {
  const bin = gatewayBinary();
  const childEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("LIVEGATE_")) childEnv[k] = v;
  }
  Object.assign(childEnv, {
    NO_COLOR: "1",
    RUST_BACKTRACE: "1",
    LIVEGATE_LISTEN: "127.0.0.1:0",
    LIVEGATE_JWT_HMAC_SECRET: TEST_SECRET,
    LIVEGATE_PUBLISH_API_KEY: TEST_PUBLISH_KEY,
    LIVEGATE_LOG: "info",
  });
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k];
    else childEnv[k] = String(v);
  }

  const logDir = join(E2E_DIR, ".logs");
  mkdirSync(logDir, { recursive: true });
  const logPath = join(logDir, `${name}-${Date.now()}-${Math.floor(Math.random() * 1e6)}.log`);
  const logFile = createWriteStream(logPath);

  const child = spawn(bin, ["serve"], { env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  const lines = [];
  let partial = "";
  let onLine = () => {};
  const collect = (chunk) => {
    const text = partial + chunk.toString("utf8");
    const parts = text.split("\n");
    partial = parts.pop();
    for (const raw of parts) {
      const line = raw.replace(ANSI, "");
      lines.push(line);
      logFile.write(line + "\n");
      onLine(line);
    }
  };
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);
  const exited = new Promise((res) => child.once("exit", (code, signal) => res({ code, signal })));
  exited.then(() => running.delete(child));
  const tail = () => lines.slice(-LOG_TAIL_LINES).join("\n");

  let addr;
  try {
    addr = await new Promise((res, rej) => {
      const timer = setTimeout(
        () => rej(new Error(`gateway did not log "listening addr=" within ${STARTUP_DEADLINE_MS} ms`)),
        STARTUP_DEADLINE_MS,
      );
      const check = (line) => {
        const m = /listening addr=(\S+)/.exec(line);
        if (m) {
          clearTimeout(timer);
          res(m[1].replace(/^"|"$/g, ""));
        }
      };
      lines.forEach(check);
      onLine = check;
      child.once("error", (e) => {
        clearTimeout(timer);
        rej(new Error(`cannot spawn ${bin}: ${e.message}`));
      });
      exited.then(({ code, signal }) => {
        clearTimeout(timer);
        rej(new Error(`gateway exited before listening (code ${code}, signal ${signal})`));
      });
    });
  } catch (e) {
    child.kill("SIGKILL");
    await exited;
    logFile.end();
    throw new Error(
      `${e.message}\nenv overrides: ${JSON.stringify(env)}\n--- gateway log tail (${logPath}) ---\n${tail()}`,
    );
  }
  onLine = () => {};

  const port = Number(addr.split(":").pop());
  const url = `http://127.0.0.1:${port}`;
  const sockets = new Set();

  const gw = {
    name,
    url,
    port,
    secret: TEST_SECRET,
    publishKey: TEST_PUBLISH_KEY,
    logPath,
    sockets,
    exited,
    logs: () => lines.join("\n"),
    logTail: tail,
    /** Any HTTP request to the gateway; the body is parsed as JSON when it is. */
    async http(method, path, { body, headers = {}, json } = {}) {
      const h = { ...headers };
      let payload = body;
      if (json !== undefined) {
        payload = JSON.stringify(json);
        h["content-type"] ??= "application/json";
      }
      const res = await fetch(url + path, { method, headers: h, body: payload });
      const text = await res.text();
      let parsed;
      try {
        parsed = text === "" ? undefined : JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      return { status: res.status, body: parsed, text, headers: res.headers };
    },
    /** POST /api/v1/publish with the test key; resolves {status, body}. Never throws on 4xx. */
    publish(obj, { key = TEST_PUBLISH_KEY } = {}) {
      return gw.http("POST", "/api/v1/publish", {
        json: obj,
        headers: key === null ? {} : { authorization: `Bearer ${key}` },
      });
    },
    /** POST /api/v1/revoke {sid, reason} with the test key. */
    revoke(sid, reason = "logout", { key = TEST_PUBLISH_KEY } = {}) {
      return gw.http("POST", "/api/v1/revoke", {
        json: { sid, reason },
        headers: key === null ? {} : { authorization: `Bearer ${key}` },
      });
    },
    /** Send a signal (SIGTERM starts the graceful drain); `exited` resolves {code, signal}. */
    kill(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    async stop() {
      for (const s of sockets) s.close();
      sockets.clear();
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), STOP_DEADLINE_MS);
        await exited;
        clearTimeout(timer);
      }
      await new Promise((res) => logFile.end(res));
      if (process.env.LIVEGATE_E2E_LOGS) {
        process.stderr.write(`--- ${name} log (${logPath}) ---\n${gw.logs()}\n`);
      }
    },
  };
  return gw;
}

/** Publish and require 202; resolves the event_id the gateway answered. */
export async function mustPublish(gw, obj) {
  const res = await gw.publish(obj);
  if (res.status !== 202) {
    throw new Error(
      `publish of ${obj?.event} answered ${res.status} ${res.text} (expected 202)\npublication: ${JSON.stringify(obj)}`,
    );
  }
  return res.body?.event_id;
}

// === tokens ===

const b64url = (v) => Buffer.from(v).toString("base64url");
const SHA = { 256: "sha256", 384: "sha384", 512: "sha512" };

/**
 * Sign any header and payload by hand (for shapes jsonwebtoken refuses to make:
 * `alg: none`, EdDSA, HMAC keyed with a public key, claims of the wrong type).
 * `payload` may be a string, sent as is.
 */
export function signJwt(header, payload, key) {
  const data = `${b64url(JSON.stringify(header))}.${b64url(typeof payload === "string" ? payload : JSON.stringify(payload))}`;
  const alg = header.alg;
  let sig;
  if (alg === "none") sig = Buffer.alloc(0);
  else if (/^HS(256|384|512)$/.test(alg)) sig = createHmac(SHA[alg.slice(2)], key).update(data).digest();
  else if (/^RS(256|384|512)$/.test(alg)) sig = cryptoSign(SHA[alg.slice(2)], Buffer.from(data), key);
  else if (alg === "ES256") sig = cryptoSign("sha256", Buffer.from(data), { key, dsaEncoding: "ieee-p1363" });
  else if (alg === "EdDSA") sig = cryptoSign(null, Buffer.from(data), key);
  else throw new Error(`signJwt: unsupported alg ${alg}`);
  return `${data}.${b64url(sig)}`;
}

export const nowSec = () => Math.floor(Date.now() / 1000);

/** The default claims of a user token, with `overrides` applied; an override of `undefined` removes the claim. */
export function userClaims(overrides = {}) {
  const claims = {
    sub: `user-${randomUUID().slice(0, 8)}`,
    sid: randomUUID(),
    projects: [],
    token_use: "user",
    exp: nowSec() + 3600,
    ...overrides,
  };
  for (const k of Object.keys(claims)) if (claims[k] === undefined) delete claims[k];
  return claims;
}

/**
 * A user JWT. Defaults: HS256 with the test secret, token_use "user", exp now+1h, random sid.
 * `alg`: HS256/384/512, RS256, ES256 (via jsonwebtoken) or EdDSA/none (signed by hand);
 * `key`: private key (KeyObject or PEM) or HMAC secret; `kid`: header kid.
 */
export function mintToken(claims = {}, { alg = "HS256", key, kid, header = {} } = {}) {
  const payload = userClaims(claims);
  const signingKey = key ?? TEST_SECRET;
  if (alg === "EdDSA" || alg === "none" || Object.keys(header).length > 0) {
    return signJwt({ alg, typ: "JWT", ...(kid ? { kid } : {}), ...header }, payload, signingKey);
  }
  return jwt.sign(payload, signingKey, { algorithm: alg, ...(kid ? { keyid: kid } : {}), noTimestamp: true });
}

// === sockets ===

const STATE = Symbol("livegate-e2e-state");

function stateOf(socket) {
  const st = socket[STATE];
  if (!st) throw new Error("this socket was not made by connect(); its events were not recorded");
  return st;
}

function record(socket, event, args) {
  const st = socket[STATE];
  st.entries.push({ event, args, at: Date.now(), seq: st.entries.length, consumed: false });
  for (const w of [...st.waiters]) w();
}

/**
 * A socket.io-client socket to `${gw.url}/v2/live-updates` (websocket only, no reconnection,
 * a new Manager each time), recording everything it receives from now on.
 * `auth` is sent as is; pass `undefined` for no auth object at all.
 */
export function connect(gw, auth, opts = {}) {
  const socket = io(`${gw.url}${NAMESPACE}`, {
    path: SOCKET_PATH,
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
    timeout: 10000,
    ...(auth === undefined ? {} : { auth }),
    ...opts,
  });
  socket[STATE] = { entries: [], waiters: new Set() };
  socket.onAny((event, ...args) => record(socket, event, args));
  socket.on("connect", () => record(socket, "connect", []));
  socket.on("connect_error", (err) => record(socket, "connect_error", [err]));
  socket.on("disconnect", (reason, description) => record(socket, "disconnect", [reason, description]));
  gw.sockets?.add(socket);
  return socket;
}

/** Everything a socket recorded so far: [{event, args, at, seq, consumed}]. */
export const received = (socket) => stateOf(socket).entries;

function describeEntry(e) {
  let first = e.args[0];
  if (first instanceof Error) first = `Error(${first.message})`;
  let text;
  try {
    text = typeof first === "string" ? first : JSON.stringify(first);
  } catch {
    text = String(first);
  }
  if (text && text.length > 300) text = text.slice(0, 300) + "…";
  return `${e.event}${e.consumed ? "(consumed)" : ""}: ${text}`;
}

function describeReceived(socket) {
  const entries = stateOf(socket).entries;
  if (entries.length === 0) return "nothing";
  return entries.slice(-12).map(describeEntry).join("\n    ");
}

const TERMINAL = new Set(["disconnect", "connect_error"]);

/**
 * Resolve with the first payload of `event` not yet consumed that satisfies `predicate`
 * (which gets the payload and the whole entry), and consume it. Rejects after `timeoutMs`,
 * or at once when the socket disconnects / fails to connect while waiting for something else,
 * or when an event listed in `failOn` arrives.
 */
export function waitFor(socket, event, predicate = () => true, timeoutMs = DEFAULT_TIMEOUT_MS, { failOn = [], what } = {}) {
  const st = stateOf(socket);
  const label = what ?? `"${event}"`;
  const failFastOnClose = !TERMINAL.has(event);
  return new Promise((resolve, reject) => {
    let timer;
    const finish = (fn, value) => {
      clearTimeout(timer);
      st.waiters.delete(check);
      fn(value);
    };
    function check() {
      for (const e of st.entries) {
        if (e.consumed || e.event !== event) continue;
        let ok = false;
        try {
          ok = predicate(e.args[0], e);
        } catch {
          ok = false;
        }
        if (ok) {
          e.consumed = true;
          return finish(resolve, e.args[0]);
        }
      }
      const bad = st.entries.find(
        (e) => (failFastOnClose && TERMINAL.has(e.event)) || (failOn.includes(e.event) && !e.consumed),
      );
      if (bad) {
        finish(reject, new Error(`while waiting for ${label}, got ${describeEntry(bad)}\n  received:\n    ${describeReceived(socket)}`));
      }
    }
    timer = setTimeout(() => {
      st.waiters.delete(check);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${label}\n  received:\n    ${describeReceived(socket)}`));
    }, timeoutMs);
    st.waiters.add(check);
    check();
  });
}

/** The first unconsumed `message` (system message) satisfying `pred`. */
export function nextMessage(socket, pred = () => true, timeoutMs = DEFAULT_TIMEOUT_MS, what = "a message") {
  return waitFor(socket, "message", pred, timeoutMs, { what });
}

/** Send an action (object or string) and resolve with the next system message: its reply. */
export function request(socket, action, timeoutMs = DEFAULT_TIMEOUT_MS) {
  socket.send(action);
  const shown = typeof action === "string" ? action : JSON.stringify(action);
  return nextMessage(socket, () => true, timeoutMs, `the reply to ${shown?.slice(0, 200)}`);
}

/** Resolve with the `connect_error` message; reject if the socket connects or gets `ready` instead. */
export async function expectConnectError(socket, timeoutMs = DEFAULT_TIMEOUT_MS) {
  const err = await waitFor(socket, "connect_error", () => true, timeoutMs, {
    failOn: ["connect", "message", "disconnect"],
    what: "connect_error",
  });
  return err.message;
}

/** The code of a connect_error message: what comes before the first ':'. */
export const errorCode = (message) => String(message).split(":")[0].trim();

/** Assert that no unconsumed `event` matching `pred` is recorded during the next `ms` (nor before). */
export async function expectNothing(socket, event, ms = 300, pred = () => true) {
  await new Promise((r) => setTimeout(r, ms));
  const hit = stateOf(socket).entries.find((e) => {
    if (e.consumed || e.event !== event) return false;
    try {
      return pred(e.args[0], e);
    } catch {
      return false;
    }
  });
  if (hit) {
    throw new Error(`expected no "${event}" but got ${describeEntry(hit)}\n  received:\n    ${describeReceived(socket)}`);
  }
}

/** Wait until the socket is closed by any means: disconnect or connect_error. Resolves {event, reason}. */
export function waitClosed(socket, timeoutMs = DEFAULT_TIMEOUT_MS) {
  const st = stateOf(socket);
  return new Promise((resolve, reject) => {
    const check = () => {
      const e = st.entries.find((x) => TERMINAL.has(x.event));
      if (e) {
        clearTimeout(timer);
        st.waiters.delete(check);
        resolve({ event: e.event, reason: e.event === "disconnect" ? e.args[0] : e.args[0]?.message, entry: e });
      }
    };
    const timer = setTimeout(() => {
      st.waiters.delete(check);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for the connection to close\n  received:\n    ${describeReceived(socket)}`));
    }, timeoutMs);
    st.waiters.add(check);
    check();
  });
}

/**
 * Mint a token for `project_id` (projects = [project_id] unless claims say otherwise),
 * connect and await `ready`. Resolves {socket, ready, project_id, token, claims}.
 */
export async function openSession(gw, { project_id = randomUUID(), claims = {}, tokenOpts = {}, opts = {}, authProjectId } = {}) {
  const full = userClaims({ projects: [project_id], ...claims });
  const token = mintToken(full, tokenOpts);
  const socket = connect(gw, { token, project_id: authProjectId ?? project_id }, opts);
  const ready = await waitFor(socket, "message", (m) => m?.event === "ready", DEFAULT_TIMEOUT_MS, {
    what: "the ready message",
  });
  return { socket, ready, project_id, token, claims: full, sid: full.sid };
}

/** Subscribe and require the `subscribed` ack; resolves the ack. */
export async function subscribe(socket, body) {
  const reply = await request(socket, { action: "subscribe", ...body });
  if (reply?.event !== "subscribed") {
    throw new Error(`subscribe ${JSON.stringify(body)} answered ${JSON.stringify(reply)}`);
  }
  return reply;
}

/** Close sockets quietly. */
export function closeAll(...sockets) {
  for (const s of sockets.flat()) s?.close();
}

/** Byte length of the Engine.IO packet that `socket.send(value)` produces for our namespace. */
export function messagePacketBytes(value) {
  return Buffer.byteLength(`42${NAMESPACE},${JSON.stringify(["message", value])}`);
}

/** Byte length of the Engine.IO packet of a CONNECT carrying `auth`. */
export function connectPacketBytes(auth) {
  return Buffer.byteLength(`40${NAMESPACE},${JSON.stringify(auth)}`);
}

/** A string holding `obj` as JSON, padded with trailing whitespace so that its packet is exactly `bytes` long. */
export function paddedJsonMessage(obj, bytes) {
  const json = JSON.stringify(obj);
  const n = bytes - messagePacketBytes(json);
  if (n < 0) throw new Error(`cannot pad ${json} to ${bytes} bytes`);
  const s = json + " ".repeat(n);
  if (messagePacketBytes(s) !== bytes) throw new Error("padding arithmetic is wrong");
  return s;
}
