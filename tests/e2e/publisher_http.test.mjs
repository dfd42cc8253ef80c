//! The publisher CLI's HTTP backend (`livegate-publish --http`), the way publishers reach a
//! gateway on the embedded engine: a publication from an argument and from stdin reaches a
//! subscribed client with the event_id the CLI printed; a bad key is refused with the
//! gateway's 401; a revocation disconnects the session.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { TEST_PUBLISH_KEY, closeAll, openSession, randomUUID, startGateway, subscribe, waitFor } from "./support/gateway.mjs";
import { publisherBinary, run } from "./support/redis.mjs";
import { targetEvent } from "./support/fixtures.mjs";

let gw;
before(async () => {
  gw = await startGateway({}, { name: "publisher-http" });
});
after(async () => {
  await gw?.stop();
});

const cli = (args, opts) => run(publisherBinary(), ["--http", gw.url, ...args], opts);

test("publish from an argument and from stdin over HTTP", async () => {
  const project_id = randomUUID();
  const { socket } = await openSession(gw, { project_id });
  try {
    await subscribe(socket, { channel: "targets" });
    const fromArg = await cli(["--key", TEST_PUBLISH_KEY, "publish", JSON.stringify(targetEvent("target.added", project_id))]);
    assert.equal(fromArg.code, 0, fromArg.stderr);
    const id1 = fromArg.stdout.trim();
    const got1 = await waitFor(socket, "target.added", (e) => e.event_id === id1);
    assert.equal(got1.project_id, project_id);

    const fromStdin = await cli(["--key", TEST_PUBLISH_KEY, "publish", "-"], {
      input: JSON.stringify(targetEvent("target.updated", project_id)),
    });
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    await waitFor(socket, "target.updated", (e) => e.event_id === fromStdin.stdout.trim());
  } finally {
    closeAll(socket);
  }
});

test("a wrong key is refused and an invalid publication never leaves the CLI", async () => {
  const project_id = randomUUID();
  const refused = await cli(["--key", "wrong", "publish", JSON.stringify(targetEvent("target.added", project_id))]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /401/);
  const invalid = await cli(["--key", TEST_PUBLISH_KEY, "publish", JSON.stringify({ event: "target.added", project_id })]);
  assert.notEqual(invalid.code, 0);
  assert.match(invalid.stderr, /invalid publication/);
});

test("revoke over HTTP disconnects the session", async () => {
  const { socket, sid } = await openSession(gw);
  try {
    const revoked = await cli(["--key", TEST_PUBLISH_KEY, "revoke", "--sid", sid, "--reason", "logout"]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.deepEqual(await waitFor(socket, "session.revoked"), { reason: "logout" });
    assert.equal(await waitFor(socket, "disconnect"), "io server disconnect");
  } finally {
    closeAll(socket);
  }
});
