// The benchmark peer: the subset of livegate that the load generator exercises, on the official
// Socket.IO v4 server, written to be as fast as Node allows.
//
// - namespace /v2/live-updates, path /v2/live-updates/socket.io/, websocket and polling;
// - HS256 handshake auth with livegate's connect_error codes, and the revocation check
//   (EXISTS {prefix}:revoked-session:{sid}) livegate makes on its Redis engine;
// - `ready`, then `subscribe` / `unsubscribe` / `ping` actions on `message`, answered in order,
//   for the whole-project channels `targets` and `payment-methods`;
// - per-project Redis publications ({prefix}:project:{id}) emitted to local rooms with
//   `nsp.local.to(room)`. A node subscribes to a project's channel while it holds a subscribed
//   socket of it (so two nodes behind one Redis each get what they need), like livegate.
//
// Speed choices: `ws` without perMessageDeflate (Socket.IO's default engine), no HTTP compression,
// HMAC verification with node:crypto instead of a JWT library, one plain Redis subscriber for
// the project channels, no per-connection logging. @socket.io/redis-adapter is installed as
// the issue asks (cluster-wide operations work), but deliveries bypass it (`.local`), as
// livegate's do; PEER_ADAPTER=0 runs on the in-memory adapter.
//
// Environment: PORT (8090), HOST (127.0.0.1), REDIS_URL (redis://127.0.0.1:6379),
// REDIS_PREFIX (livegate), JWT_SECRET (the livegate --dev secret), JWT_LEEWAY_S (30),
// PING_INTERVAL_MS (25000), PING_TIMEOUT_MS (30000), PEER_ADAPTER (1).

import http from "node:http";
import crypto from "node:crypto";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";

const env = process.env;
const PORT = Number(env.PORT ?? 8090);
const HOST = env.HOST ?? "127.0.0.1";
const REDIS_URL = env.REDIS_URL ?? "redis://127.0.0.1:6379";
const PREFIX = env.REDIS_PREFIX ?? "livegate";
const SECRET = Buffer.from(env.JWT_SECRET ?? "livegate-dev-secret-do-not-use-in-production");
const LEEWAY_S = Number(env.JWT_LEEWAY_S ?? 30);
const USE_ADAPTER = (env.PEER_ADAPTER ?? "1") !== "0";
const NAMESPACE = "/v2/live-updates";
const PATH = "/v2/live-updates/socket.io/";
const CHANNELS = ["targets", "payment-methods"];
const UNSUBSCRIBE_GRACE_MS = 2000;
const PROJECT_CHANNEL = `${PREFIX}:project:`;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HASHES = { HS256: "sha256", HS384: "sha384", HS512: "sha512" };
const EVENT_CHANNEL = {
  "target.added": "targets",
  "target.removed": "targets",
  "target.enabled": "targets",
  "target.disabled": "targets",
  "target.updated": "targets",
  "payment-method.added": "payment-methods",
  "payment-method.removed": "payment-methods",
};

// --- Redis: commands (revocation), the project subscriber, and the adapter's pair ---
const redis = createClient({ url: REDIS_URL });
redis.on("error", (e) => console.error("redis:", e.message));
await redis.connect();
const projectSub = redis.duplicate();
projectSub.on("error", (e) => console.error("redis subscriber:", e.message));
await projectSub.connect();

const httpServer = http.createServer((req, res) => {
  if (req.url === "/healthz" || req.url === "/readyz") {
    res.writeHead(200, { "content-type": "text/plain" }).end("ok");
  } else {
    res.writeHead(404).end();
  }
});
httpServer.on("connection", (s) => s.setNoDelay(true));

const io = new Server(httpServer, {
  path: PATH,
  serveClient: false,
  transports: ["polling", "websocket"],
  perMessageDeflate: false,
  httpCompression: false,
  maxHttpBufferSize: 4096,
  pingInterval: Number(env.PING_INTERVAL_MS ?? 25000),
  pingTimeout: Number(env.PING_TIMEOUT_MS ?? 30000),
  connectTimeout: 5000,
  cleanupEmptyChildNamespaces: true,
});
if (USE_ADAPTER) {
  const adapterPub = redis.duplicate();
  const adapterSub = redis.duplicate();
  await Promise.all([adapterPub.connect(), adapterSub.connect()]);
  io.adapter(createAdapter(adapterPub, adapterSub, { key: `${PREFIX}-peer` }));
}
const nsp = io.of(NAMESPACE);

// --- Handshake auth ---
class Refusal extends Error {}
const refuse = (code, why) => new Refusal(`${code}: ${why}`);

function b64json(part) {
  return JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
}

/** Verifies an HS256/384/512 user token; returns its claims or throws a Refusal. */
function verify(token) {
  const parts = token.split(".");
  if (parts.length !== 3) throw refuse("invalid_token", "malformed token");
  let header, claims;
  try {
    header = b64json(parts[0]);
  } catch {
    throw refuse("invalid_token", "malformed token");
  }
  const hash = HASHES[header?.alg];
  if (!hash) throw refuse("invalid_token", "algorithm not allowed");
  const expected = crypto.createHmac(hash, SECRET).update(`${parts[0]}.${parts[1]}`).digest();
  const given = Buffer.from(parts[2], "base64url");
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
    throw refuse("invalid_token", "bad signature");
  }
  try {
    claims = b64json(parts[1]);
  } catch {
    throw refuse("invalid_token", "malformed token");
  }
  const now = Date.now() / 1000;
  if (typeof claims.exp !== "number") throw refuse("invalid_token", "missing claim exp");
  if (typeof claims.sub !== "string" || !claims.sub || typeof claims.sid !== "string" || !claims.sid) {
    throw refuse("invalid_token", "missing or mistyped claims (sub, sid)");
  }
  if (typeof claims.nbf === "number" && claims.nbf > now + LEEWAY_S) {
    throw refuse("invalid_token", "the token is not valid yet");
  }
  if (claims.exp < now - LEEWAY_S) throw refuse("token_expired", "the token has expired");
  if (claims.token_use !== "user") throw refuse("not_a_user_token", 'token_use must be "user"');
  return claims;
}

nsp.use(async (socket, next) => {
  const auth = socket.handshake.auth ?? {};
  const { token, project_id: project } = auth;
  try {
    if (token == null || token === "" || project == null || project === "") {
      throw refuse("auth_missing", "auth must carry token and project_id");
    }
    if (typeof project !== "string" || !UUID_RE.test(project)) {
      throw refuse("invalid_project_id", "project_id must be a UUID");
    }
    if (typeof token !== "string") throw refuse("invalid_token", "token must be a string");
    const claims = verify(token);
    const wanted = project.toLowerCase();
    const projects = Array.isArray(claims.projects) ? claims.projects : [];
    if (!projects.some((p) => typeof p === "string" && p.toLowerCase() === wanted)) {
      throw refuse("project_forbidden", "the token does not grant this project");
    }
    let revoked;
    try {
      revoked = await redis.exists(`${PREFIX}:revoked-session:${claims.sid}`);
    } catch {
      throw refuse("unavailable", "cannot check the session right now; retry with backoff");
    }
    if (revoked) throw refuse("session_revoked", "the session was revoked");
    socket.data.project = wanted;
    next();
  } catch (e) {
    next(e instanceof Refusal ? e : refuse("unavailable", "internal error"));
  }
});

// --- Project subscriptions: subscribed while a socket of this node holds one of its channels ---
const projects = new Map(); // project -> { refs, ready: Promise, timer }

function acquireProject(project) {
  let entry = projects.get(project);
  if (!entry) {
    entry = { refs: 0, timer: null, ready: projectSub.subscribe(PROJECT_CHANNEL + project, onPublication) };
    entry.ready.catch(() => projects.delete(project));
    projects.set(project, entry);
  }
  if (entry.timer) {
    clearTimeout(entry.timer);
    entry.timer = null;
  }
  entry.refs += 1;
  return entry.ready;
}

function releaseProject(project) {
  const entry = projects.get(project);
  if (!entry) return;
  entry.refs -= 1;
  if (entry.refs > 0) return;
  entry.timer = setTimeout(() => {
    if (entry.refs > 0) return;
    projects.delete(project);
    projectSub.unsubscribe(PROJECT_CHANNEL + project).catch(() => {});
  }, UNSUBSCRIBE_GRACE_MS);
}

let dropped = 0;
function onPublication(message, channel) {
  let p;
  try {
    p = JSON.parse(message);
  } catch {
    dropped += 1;
    return;
  }
  const project = channel.slice(PROJECT_CHANNEL.length);
  const target = p && typeof p === "object" ? EVENT_CHANNEL[p.event] : undefined;
  if (!target || p.channel !== target || typeof p.project_id !== "string" || p.project_id.toLowerCase() !== project) {
    dropped += 1;
    return;
  }
  const event = p.event;
  delete p.event;
  if (typeof p.event_id !== "string") p.event_id = crypto.randomUUID();
  p.project_id = project;
  p.emitted_at = Date.now();
  nsp.local.to(`${project}:${target}`).emit(event, p);
}

// --- Sessions and actions ---
function channelError(code, message, action, channel) {
  return { event: "error", code, message, meta: { channel, action } };
}

async function handle(socket, state, frame) {
  let a = frame;
  if (typeof a === "string") {
    try {
      a = JSON.parse(a);
    } catch {
      return { event: "error", code: "invalid_payload", message: "not valid JSON", meta: { errors: [{ field: "", message: "not valid JSON" }] } };
    }
  }
  if (!a || typeof a !== "object" || Array.isArray(a)) {
    return { event: "error", code: "invalid_payload", message: "expected a JSON object", meta: { errors: [{ field: "", message: "expected a JSON object" }] } };
  }
  if (a.action === "ping") {
    return { event: "pong", timestamp: Date.now(), received_timestamp: Number.isInteger(a.timestamp) ? a.timestamp : null };
  }
  if (a.action !== "subscribe" && a.action !== "unsubscribe") {
    return { event: "error", code: "unsupported_action", message: `unsupported action ${JSON.stringify(a.action)}`, meta: { channel: a.channel, action: a.action } };
  }
  if (!CHANNELS.includes(a.channel)) {
    return channelError("unsupported_channel", `unsupported channel ${JSON.stringify(a.channel)}`, a.action, a.channel);
  }
  const room = `${state.project}:${a.channel}`;
  const reply = {
    event: a.action === "subscribe" ? "subscribed" : "unsubscribed",
    channel: a.channel,
    project_id: state.project,
    payment_request_id: null,
    provider_payment_id: null,
  };
  if (a.action === "subscribe") {
    if (!state.subs.has(a.channel)) {
      if (state.subs.size >= 100) {
        return channelError("subscription_failed", "subscription limit reached", a.action, a.channel);
      }
      state.subs.add(a.channel);
      socket.join(room);
      try {
        await acquireProject(state.project);
      } catch {
        state.subs.delete(a.channel);
        socket.leave(room);
        releaseProject(state.project);
        return channelError("subscription_failed", "cannot subscribe to the project right now", a.action, a.channel);
      }
    }
  } else if (state.subs.delete(a.channel)) {
    socket.leave(room);
    releaseProject(state.project);
  }
  return reply;
}

nsp.on("connection", (socket) => {
  const state = { project: socket.data.project, subs: new Set(), chain: Promise.resolve() };
  socket.emit("message", { event: "ready", connection_id: crypto.randomUUID(), channels: CHANNELS });
  socket.on("message", (frame) => {
    // Answered one at a time, in the order sent.
    state.chain = state.chain.then(async () => {
      const reply = await handle(socket, state, frame);
      if (socket.connected) socket.emit("message", reply);
    });
  });
  socket.on("disconnect", () => {
    for (let i = 0; i < state.subs.size; i++) releaseProject(state.project);
    state.subs.clear();
  });
});

httpServer.listen(PORT, HOST, () => {
  console.log(`node-socketio peer listening on http://${HOST}:${PORT}${NAMESPACE} (adapter: ${USE_ADAPTER ? "redis" : "in-memory"})`);
});

const stop = async () => {
  io.close();
  await Promise.allSettled([redis.quit(), projectSub.quit()]);
  if (dropped) console.error(`dropped ${dropped} invalid publications`);
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
