//! The application idle timeout (CONTRACT §1): with LIVEGATE_IDLE_TIMEOUT=2s a socket that
//! sends no packet is disconnected by the server at most max(1 s, timeout/4) late; any
//! action, valid or not, resets the timer; Engine.IO pongs and outbound traffic do not.
//! The tests run concurrently: each one is a few seconds of wall time.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  mustPublish,
  nextMessage,
  openSession,
  startGateway,
  subscribe,
  waitFor,
} from "./support/gateway.mjs";
import { targetEvent } from "./support/fixtures.mjs";

const TIMEOUT_MS = 2000;
const SWEEP_LATE_MS = 1000; // max(1 s, timeout / 4)
const SLACK_MS = 800;

let gw;
before(async () => {
  // A 1 s Engine.IO heartbeat: the client answers pings all along, and that must not count.
  gw = await startGateway({ LIVEGATE_IDLE_TIMEOUT: "2s", LIVEGATE_PING_INTERVAL: "1s" }, { name: "idle" });
});
after(async () => {
  await gw?.stop();
});

/** Await the server's disconnect; resolve ms since `since`. */
async function disconnectedAfter(socket, since, timeoutMs = TIMEOUT_MS + SWEEP_LATE_MS + SLACK_MS + 2000) {
  const reason = await waitFor(socket, "disconnect", () => true, timeoutMs, { what: "the idle disconnect" });
  assert.equal(reason, "io server disconnect", "the idle timeout must be a Socket.IO server-side disconnect");
  return Date.now() - since;
}

function assertIdleWindow(elapsed) {
  assert.ok(elapsed >= TIMEOUT_MS - 300, `disconnected after ${elapsed} ms: earlier than the ${TIMEOUT_MS} ms timeout`);
  assert.ok(elapsed <= TIMEOUT_MS + SWEEP_LATE_MS + SLACK_MS, `disconnected after ${elapsed} ms: later than ${TIMEOUT_MS} + ${SWEEP_LATE_MS} ms (+${SLACK_MS} slack)`);
}

describe("idle timeout", { concurrency: true }, () => {
  test("a silent client is disconnected by the server within timeout + max(1 s, timeout/4)", async () => {
    const { socket } = await openSession(gw);
    const since = Date.now();
    try {
      assertIdleWindow(await disconnectedAfter(socket, since));
      assert.equal(socket.connected, false);
    } finally {
      socket.close();
    }
  });

  test("a client sending ping every 700 ms stays connected past 4 s, then idles out once it stops", async () => {
    const { socket } = await openSession(gw);
    let n = 0;
    const timer = setInterval(() => socket.send({ action: "ping", timestamp: ++n }), 700);
    try {
      const until = Date.now() + 4500;
      while (Date.now() < until) {
        const pong = await nextMessage(socket, (m) => m?.event === "pong", 3000, "a pong");
        assert.ok(pong.received_timestamp >= 1);
      }
      assert.equal(socket.connected, true, "an active client must stay connected");
      clearInterval(timer);
      const since = Date.now();
      assertIdleWindow(await disconnectedAfter(socket, since));
    } finally {
      clearInterval(timer);
      socket.close();
    }
  });

  test("invalid frames count as activity too", async () => {
    const { socket } = await openSession(gw);
    const timer = setInterval(() => socket.send("not json at all"), 700);
    try {
      const until = Date.now() + 4500;
      while (Date.now() < until) {
        const m = await nextMessage(socket, () => true, 3000, "an invalid_payload reply");
        assert.equal(m.code, "invalid_payload");
      }
      assert.equal(socket.connected, true, "a client sending frames, even invalid ones, is not idle");
    } finally {
      clearInterval(timer);
      socket.close();
    }
  });

  test("broadcasts to the client do not keep it alive", async () => {
    const { socket, project_id } = await openSession(gw);
    await subscribe(socket, { channel: "targets" });
    const since = Date.now();
    let stop = false;
    const pump = (async () => {
      while (!stop && socket.connected) {
        await mustPublish(gw, targetEvent("target.updated", project_id));
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
    try {
      await waitFor(socket, "target.updated", () => true, 3000);
      assertIdleWindow(await disconnectedAfter(socket, since));
    } finally {
      stop = true;
      await pump.catch(() => {});
      socket.close();
    }
  });
});
