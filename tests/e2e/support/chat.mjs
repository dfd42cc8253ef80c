//! Helpers for the chat namespace (`/chat`, issue 7, seed 002): connect and open chat
//! sessions, build the fourteen chat publications, assert their envelope, manage membership
//! through `member_joined` publications, and assert absence on several sockets at once.
//!
//! Everything here is built on `support/gateway.mjs`; that file is not modified. Its
//! `connect(gw, auth, opts)` opens `${gw.url}/v2/live-updates` and records everything the
//! socket receives. To get the same recording for the `/chat` namespace we hand `connect` a
//! view of `gw` whose `url` is `http://host:port/chat#`: the namespace `connect` appends then
//! lands in the URL fragment, which socket.io-client ignores (the Engine.IO connection is
//! made to host:port with the `path` option; the namespace is the URL's pathname, `/chat`).
//! So `waitFor`, `nextMessage`, `request`, `expectNothing`, `expectConnectError`,
//! `waitClosed` and `received` all work on chat sockets.

import assert from "node:assert/strict";
import {
  DEFAULT_TIMEOUT_MS,
  UUID_V4,
  connect,
  expectNothing,
  mintToken,
  mustPublish,
  randomUUID,
  request,
  userClaims,
  waitFor,
} from "./gateway.mjs";
import { ABSENT, assertError } from "./assertions.mjs";

export const CHAT_NAMESPACE = "/chat";

/** The fourteen event types of seed 002, in the seed's order. */
export const CHAT_TYPES = [
  "channel_message",
  "message_updated",
  "message_deleted",
  "message_reply",
  "member_joined",
  "member_left",
  "member_role_updated",
  "user_banned",
  "user_unbanned",
  "user_kicked",
  "channel_created",
  "channel_updated",
  "channel_deleted",
  "user_typing",
];

export const MODERATION_TYPES = ["user_banned", "user_unbanned", "user_kicked"];

/** Where a publication of each type goes: `channel` (channel:{channel_id}), `global`, or `moderation` (both channel:{id} and user:{user_id}). */
export function routeOf(type) {
  if (type === "channel_created") return "global";
  if (MODERATION_TYPES.includes(type)) return "moderation";
  return "channel";
}

/** ISO 8601 UTC with milliseconds, e.g. 2025-01-15T10:30:00.000Z. */
export const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

// === sockets ===

/** A recorded socket.io-client socket to `${gw.url}/chat` (see the header for how). Same options as `connect`. */
export function connectChat(gw, auth, opts = {}) {
  return connect({ url: `${gw.url}${CHAT_NAMESPACE}#`, sockets: gw.sockets }, auth, opts);
}

/**
 * Mint a user token for `project_id` (and `projects` = [project_id] unless `claims` say
 * otherwise; `sub` and `name` are shortcuts for those claims), connect to `/chat` and await
 * `ready`. Resolves {socket, ready, project_id, token, claims, sub, sid}.
 */
export async function openChat(gw, { project_id = randomUUID(), sub, name, claims = {}, tokenOpts = {}, opts = {}, authProjectId, token } = {}) {
  const full = userClaims({
    projects: [project_id],
    ...(sub !== undefined ? { sub } : {}),
    ...(name !== undefined ? { name } : {}),
    ...claims,
  });
  token ??= mintToken(full, tokenOpts);
  const socket = connectChat(gw, { token, project_id: authProjectId ?? project_id }, opts);
  const ready = await waitFor(socket, "message", (m) => m?.event === "ready", DEFAULT_TIMEOUT_MS, {
    what: "the chat ready message",
  });
  return { socket, ready, project_id, token, claims: full, sub: full.sub, sid: full.sid };
}

/** The `channels` a chat `ready` must list for a token whose sub is `sub`. */
export const readyChannels = (sub) => ["global", "channel:{channel_id}", `user:${sub}`];

/** Assert an ack is exactly {event, channel, project_id}. */
export function assertChatAck(reply, event, channel, project_id) {
  assert.deepEqual(reply, { event, channel, project_id: String(project_id).toLowerCase() }, `ack to ${channel}`);
}

/** Subscribe to `channel` and require exactly the `subscribed` ack; resolves it. */
export async function chatSubscribe(socket, channel, project_id) {
  const reply = await request(socket, { action: "subscribe", channel });
  if (reply?.event !== "subscribed") throw new Error(`subscribe ${channel} answered ${JSON.stringify(reply)}`);
  if (project_id !== undefined) assertChatAck(reply, "subscribed", channel, project_id);
  return reply;
}

/** Subscribe to several channels in turn. */
export async function chatSubscribeAll(socket, channels, project_id) {
  for (const c of channels) await chatSubscribe(socket, c, project_id);
}

/** Send a subscribe that must be refused with `forbidden` (meta.channel / meta.action set). */
export async function expectForbidden(socket, channel, action = "subscribe") {
  const reply = await request(socket, { action, channel });
  assertError(reply, "forbidden", { channel, action });
  return reply;
}

/** A `typing` action (sent without waiting: success has no reply). */
export function sendTyping(socket, channel_id, is_typing = true, extra = {}) {
  socket.send({ action: "typing", channel_id, is_typing, ...extra });
}

/** Send a ping and require that the very next system message is its pong (nothing in between). */
export async function expectOnlyPong(socket, what = "") {
  const ts = Math.floor(Math.random() * 1e9);
  const reply = await request(socket, { action: "ping", timestamp: ts });
  assert.equal(reply?.event, "pong", `${what} the next system message must be the pong, got ${JSON.stringify(reply)}`);
  assert.equal(reply.received_timestamp, ts, `${what} the pong must be for our ping: ${JSON.stringify(reply)}`);
}

// === publications ===

/** Default `data` of each type, for one channel and one subject user; `overrides` are merged last. */
export function chatData(type, { channel_id = randomUUID(), user_id = `user-${randomUUID().slice(0, 8)}`, ...overrides } = {}) {
  const base = {
    channel_message: { channel_id, message_id: randomUUID(), user_id, username: "alice", content: "hello, world" },
    message_updated: { channel_id, message_id: randomUUID(), content: "hello, edited" },
    message_deleted: { channel_id, message_id: randomUUID() },
    message_reply: { channel_id, message_id: randomUUID(), parent_message_id: randomUUID(), user_id, username: null, content: "a reply" },
    member_joined: { channel_id, user_id, username: "alice" },
    member_left: { channel_id, user_id, username: null },
    member_role_updated: { channel_id, user_id, username: "alice", new_role: "moderator" },
    user_banned: { channel_id, user_id, motive: "spam" },
    user_unbanned: { channel_id, user_id, motive: "appeal accepted" },
    user_kicked: { channel_id, user_id },
    channel_created: { channel_id, channel_name: "general" },
    channel_updated: { channel_id, channel_name: "general-renamed", topic: "news", settings: { slow_mode_seconds: 5 } },
    channel_deleted: { channel_id },
    user_typing: { channel_id, user_id, username: "alice", is_typing: true },
  }[type];
  if (!base) throw new Error(`chatData: unknown type ${type}`);
  return { ...base, ...overrides };
}

/** A publication `{event, project_id, data}` (+ `extra`, e.g. event_id). */
export function chatPub(type, project_id, data, extra = {}) {
  return { event: type, project_id, data, ...extra };
}

/** Build a publication of `type` from `chatData` defaults. */
export const chatEvent = (type, project_id, dataOpts = {}, extra = {}) => chatPub(type, project_id, chatData(type, dataOpts), extra);

/** Publish (202 required) and resolve {pub, event_id, since}. */
export async function publishChat(gw, pub) {
  const since = Date.now();
  const event_id = await mustPublish(gw, pub);
  return { pub, event_id, since };
}

/** Make `user_id` a member of `channel_id` in `project_id` (a `member_joined` publication). */
export function join(gw, project_id, channel_id, user_id) {
  return mustPublish(gw, chatEvent("member_joined", project_id, { channel_id, user_id }));
}

/** Open a chat session whose user is a member of every channel in `member` and subscribed to every key in `channels`. */
export async function chatUser(gw, { project_id, member = [], channels = [], ...rest } = {}) {
  const s = await openChat(gw, { project_id, ...rest });
  for (const c of member) await join(gw, s.project_id, c, s.sub);
  await chatSubscribeAll(s.socket, channels, s.project_id);
  return s;
}

/**
 * Assert a delivered chat event is exactly `{type, timestamp, data, event_id}`: `type` the
 * publication's event, `data` the publication's data (or `data` when given, e.g. the copy on
 * `user:` without `user_id`), `timestamp` ISO 8601 UTC with ms near now, `event_id` the
 * publication's own else `answeredId` (or any UUID v4 when neither).
 */
export function assertChatEvent(payload, { type, pub, data, since, answeredId, eventId }) {
  const shown = JSON.stringify(payload);
  assert.equal(typeof payload, "object", `a chat event must be an object: ${shown}`);
  assert.ok(payload !== null, "a chat event must not be null");
  assert.deepEqual(Object.keys(payload).sort(), ["data", "event_id", "timestamp", "type"], `envelope keys: ${shown}`);
  assert.equal(payload.type, type ?? pub?.event, `type: ${shown}`);
  assert.match(String(payload.timestamp), ISO_MS, `timestamp must be ISO 8601 UTC with ms: ${shown}`);
  const at = Date.parse(payload.timestamp);
  if (since !== undefined) {
    assert.ok(at >= since - 1000 && at <= Date.now() + 1000, `timestamp ${payload.timestamp} is not the time of emission (since ${new Date(since).toISOString()})`);
  }
  const wantId = eventId ?? pub?.event_id ?? answeredId;
  if (wantId !== undefined) assert.equal(payload.event_id, wantId, `event_id: ${shown}`);
  else assert.match(String(payload.event_id), UUID_V4, `event_id must be a UUID v4: ${shown}`);
  assert.deepEqual(payload.data, data ?? pub.data, `data of ${payload.type}`);
  return payload;
}

/** `data` without `user_id`: the copy a moderation event has on `user:{id}`. */
export function withoutUserId(data) {
  const { user_id: _u, ...rest } = data;
  return rest;
}

/** Await one `type` event on `socket` (optionally matching `pred`). */
export const nextEvent = (socket, type, pred = () => true, timeoutMs = DEFAULT_TIMEOUT_MS) => waitFor(socket, type, pred, timeoutMs);

/** Assert that none of `sockets` records (unconsumed) any of `types` during one window of `ms`. */
export async function expectNone(sockets, types, ms = 300) {
  const list = [sockets].flat().filter(Boolean);
  const names = [types].flat();
  await new Promise((r) => setTimeout(r, ms));
  await Promise.all(list.flatMap((s) => names.map((t) => expectNothing(s, t, 0))));
}

export { ABSENT };
