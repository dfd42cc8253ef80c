//! Operating a node (docs/operations.md, docs/configuration.md): `GET /metrics` in the Prometheus
//! text format, counting handshakes by result, subscriptions by channel, deliveries, drops by
//! reason and publish→emit latency; process metrics; settings from a TOML file under the
//! environment (`LIVEGATE_CONFIG`), and a bad file refused with exit code 64.

import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  closeAll,
  connect,
  expectConnectError,
  mintToken,
  mustPublish,
  openSession,
  randomUUID,
  request,
  startGateway,
  subscribe,
  waitFor,
} from "./support/gateway.mjs";
import { newRequest, paymentRequestUpdated, targetEvent } from "./support/fixtures.mjs";
import { pollUntil, run } from "./support/redis.mjs";

const dir = mkdtempSync(join(tmpdir(), "livegate-ops-"));
let gw;
let fromFile;

before(async () => {
  const config = join(dir, "livegate.toml");
  // The environment (the harness sets LIVEGATE_PUBLISH_API_KEY) wins over the file; what the
  // environment does not set comes from the file.
  writeFileSync(config, 'max_subscriptions = 1\npublish_api_key = "from-the-file"\nchannels = ["targets", "payment-methods"]\n');
  [gw, fromFile] = await Promise.all([
    startGateway({}, { name: "operations" }),
    startGateway({ LIVEGATE_CONFIG: config }, { name: "operations-config-file" }),
  ]);
});

after(async () => {
  await Promise.all([gw?.stop(), fromFile?.stop()]);
});

/** The samples of /metrics as a map from `name{labels}` to value. */
async function scrape(node) {
  const res = await node.http("GET", "/metrics");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /^text\/plain; version=0\.0\.4/);
  const samples = new Map();
  for (const line of res.text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    samples.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return samples;
}

describe("GET /metrics", () => {
  test("counts handshakes, subscriptions, deliveries, drops and latency, with process metrics", async () => {
    const project_id = randomUUID();
    const before = await scrape(gw);
    const { socket } = await openSession(gw, { project_id });
    await subscribe(socket, { channel: "targets" });
    const expired = connect(gw, { token: mintToken({ projects: [project_id], exp: 1 }), project_id });
    await expectConnectError(expired);
    await mustPublish(gw, targetEvent("target.added", project_id));
    await waitFor(socket, "target.added");
    const bad = await gw.publish({ event: "target.added", channel: "targets", project_id: "nope" });
    assert.equal(bad.status, 422);

    const m = await scrape(gw);
    const delta = (k) => (m.get(k) ?? 0) - (before.get(k) ?? 0);
    assert.equal(delta('livegate_handshakes_total{result="accepted"}'), 1);
    assert.equal(delta('livegate_handshakes_total{result="token_expired"}'), 1);
    assert.equal(m.get('livegate_connected_sockets{namespace="/v2/live-updates"}'), 1);
    assert.equal(m.get('livegate_subscriptions{channel="targets"}'), 1);
    assert.equal(m.get('livegate_subscriptions{channel="payment-requests"}'), 0);
    assert.equal(delta("livegate_deliveries_total"), 1);
    assert.equal(delta("livegate_api_publications_total"), 2);
    const dropped = [...m.keys()].filter((k) => k.startsWith("livegate_publications_dropped_total{reason="));
    assert.equal(dropped.reduce((n, k) => n + delta(k), 0), 1, `one drop, under its reason: ${dropped}`);
    assert.equal(delta("livegate_publish_to_emit_seconds_count"), 1);
    assert.ok(delta("livegate_publish_to_emit_seconds_sum") < 1, "publish→emit on one node takes well under a second");
    assert.equal(m.get("livegate_ready"), 1);
    assert.equal(m.get("livegate_draining"), 0);
    assert.ok(m.get("livegate_open_connections") >= 1);
    for (const k of ["process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"]) {
      assert.ok(m.get(k) > 0, `${k} is exposed`);
    }
    assert.ok(m.has("process_cpu_seconds_total"));
    closeAll(socket, expired);
  });
});

describe("subscription counts", () => {
  test("the gauge follows unsubscribe and disconnect; a socket in both rooms of a request counts one delivery", async () => {
    const project_id = randomUUID();
    const req = newRequest();
    const gauge = (m, channel) => m.get(`livegate_subscriptions{channel="${channel}"}`) ?? 0;
    // The previous test's socket may still be leaving: start from a node that holds none.
    await pollUntil(
      async () => {
        const m = await scrape(gw);
        const connected = m.get('livegate_connected_sockets{namespace="/v2/live-updates"}') ?? 0;
        return connected + gauge(m, "targets") + gauge(m, "payment-requests") === 0;
      },
      { what: "the previous test's sockets and subscriptions to be gone" },
    );
    const base = await scrape(gw);
    const { socket } = await openSession(gw, { project_id });
    await subscribe(socket, { channel: "targets" });
    await subscribe(socket, { channel: "payment-requests", payment_request_id: req.payment_request_id });
    await subscribe(socket, { channel: "payment-requests", provider_payment_id: req.provider_payment_id });
    let m = await scrape(gw);
    assert.equal(gauge(m, "targets") - gauge(base, "targets"), 1);
    assert.equal(gauge(m, "payment-requests") - gauge(base, "payment-requests"), 2);

    // Routed by both ids: one copy to the socket, one delivery counted.
    await mustPublish(gw, paymentRequestUpdated(project_id, req, { status: "pending" }));
    await waitFor(socket, "payment-request.updated");
    const afterPublish = await scrape(gw);
    assert.equal(afterPublish.get("livegate_deliveries_total") - m.get("livegate_deliveries_total"), 1);

    assert.equal((await request(socket, { action: "unsubscribe", channel: "targets" })).event, "unsubscribed");
    m = await scrape(gw);
    assert.equal(gauge(m, "targets"), gauge(base, "targets"));

    socket.close();
    await pollUntil(async () => gauge(await scrape(gw), "payment-requests") === gauge(base, "payment-requests"), {
      what: "the payment-requests gauge to drop back once the socket is gone",
    });
  });
});

describe("a TOML configuration file (LIVEGATE_CONFIG)", () => {
  test("fills in what the environment does not set, under the environment", async () => {
    const { socket, ready } = await openSession(fromFile);
    assert.deepEqual([...ready.channels].sort(), ["payment-methods", "targets"], "channels come from the file");
    await subscribe(socket, { channel: "targets" });
    const reply = await request(socket, { action: "subscribe", channel: "payment-methods" });
    assert.equal(reply.event, "error");
    assert.equal(reply.code, "subscription_failed", "max_subscriptions = 1 comes from the file");
    // The harness's LIVEGATE_PUBLISH_API_KEY wins over the file's key.
    assert.equal((await fromFile.publish(targetEvent("target.added", randomUUID()))).status, 202);
    assert.equal((await fromFile.publish(targetEvent("target.added", randomUUID()), { key: "from-the-file" })).status, 401);
    closeAll(socket);
  });

  test("an unknown key or a bad value stops the node with exit code 64, every problem listed", async () => {
    const bad = join(dir, "bad.toml");
    writeFileSync(bad, 'no_such_setting = 1\nchannels = { a = 1 }\n');
    const env = { PATH: process.env.PATH, LIVEGATE_CONFIG: bad, LIVEGATE_DEV: "true" };
    const res = await run(process.env.LIVEGATE_BIN, ["serve"], { env });
    assert.equal(res.code, 64, res.stderr);
    assert.match(res.stderr, /unknown key "no_such_setting"/);
    assert.match(res.stderr, /channels must be/);
    const missing = await run(process.env.LIVEGATE_BIN, ["serve", "--config", join(dir, "absent.toml")], { env });
    assert.equal(missing.code, 64, missing.stderr);
    assert.match(missing.stderr, /cannot read/);
  });
});
