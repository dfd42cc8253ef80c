//! Slow consumers: a socket that stops reading must not delay delivery to the other sockets,
//! and the node closes it within a bounded time (its outbound queue is bounded; a socket still
//! full, or silent, at the next heartbeat is closed). With a 1 s heartbeat here, "bounded" is a
//! few seconds.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { closeAll, mustPublish, openSession, randomUUID, startGateway, subscribe, waitFor } from "./support/gateway.mjs";
import { targetEvent, targetSnapshot } from "./support/fixtures.mjs";

const EVENTS = 300;
let gw;

before(async () => {
  gw = await startGateway(
    { LIVEGATE_PING_INTERVAL: "1s", LIVEGATE_PING_TIMEOUT: "1s", LIVEGATE_SOCKET_BUFFER: "16" },
    { name: "slow-consumer" },
  );
});
after(async () => {
  await gw?.stop();
});

test("a client that stops reading does not delay the others and is disconnected", async () => {
  const project_id = randomUUID();
  const slow = await openSession(gw, { project_id });
  const fast = await openSession(gw, { project_id });
  await subscribe(slow.socket, { channel: "targets" });
  await subscribe(fast.socket, { channel: "targets" });

  // Stop reading the slow client's TCP socket: the kernel buffers fill, then the node's queue.
  const tcp = slow.socket.io.engine.transport.ws?._socket;
  assert.ok(tcp, "the websocket transport exposes its TCP socket");
  tcp.pause();

  const got = new Set();
  const allArrived = new Promise((resolve) => {
    fast.socket.on("target.updated", (e) => {
      got.add(e.event_id);
      if (got.size === EVENTS) resolve();
    });
  });
  const padding = "x".repeat(3000);
  const started = Date.now();
  for (let i = 0; i < EVENTS; i++) {
    await mustPublish(
      gw,
      targetEvent("target.updated", project_id, {
        event_id: `slow-${i}-${randomUUID()}`,
        target: targetSnapshot({ target_name: `t${i}` }),
        padding,
      }),
    );
  }
  await Promise.race([
    allArrived,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`fast client got ${got.size}/${EVENTS}`)), 10000)),
  ]);
  const elapsed = Date.now() - started;
  assert.equal(got.size, EVENTS, "the reading client received every publication");

  // The node closes the slow socket: its connection id shows up disconnected in the log.
  const id = slow.ready.connection_id;
  const deadline = Date.now() + 8000;
  while (!new RegExp(`connection_id=${id}[^\\n]*disconnected`).test(gw.logs())) {
    assert.ok(Date.now() < deadline, `the slow socket ${id} was not disconnected within 8 s\n${gw.logs()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  tcp.resume();
  await waitFor(slow.socket, "disconnect", () => true, 5000, { what: "the slow client's disconnect" });
  assert.ok(elapsed < 10000, `delivery to the reading client took ${elapsed} ms`);
  closeAll(slow.socket, fast.socket);
});
