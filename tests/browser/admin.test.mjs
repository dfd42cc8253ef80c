//! The admin page in a real browser: Debian's `chromium`, driven by `playwright-core`.
//!
//! One gateway in development mode (embedded engine, the targets REST API in-process, the page's
//! `/admin/dev-session`), started by the e2e harness from `LIVEGATE_BIN`. The test opens the page,
//! changes targets through the REST API and through the page's own controls, and checks that
//! the table follows; then it restarts the gateway on the same port and checks that the page
//! reconnects, resubscribes, reconciles with a fresh REST fetch and follows live events again.
//! Screenshots go to `artifacts/` (git-ignored).

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { mintToken, startGateway } from "../e2e/support/gateway.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = join(HERE, "artifacts");
const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
// The project `--dev` mints its tokens for (crates/gateway/src/config.rs DEV_PROJECT_ID).
const DEV_PROJECT = "11111111-1111-4111-8111-111111111111";
const UI_TIMEOUT_MS = 10_000;

let gw;
let context;
let page;
let userDataDir;
const pageErrors = [];
const token = mintToken({ projects: [DEV_PROJECT] });

function gatewayEnv(extra = {}) {
  return { LIVEGATE_DEV: "true", LIVEGATE_TARGETS_API: "true", ...extra };
}

/** A targets API call with a user token for the dev project; resolves the parsed envelope. */
async function rest(method, rest = "", body) {
  const res = await fetch(`${gw.url}/v2/projects/${DEV_PROJECT}/targets${rest}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

async function create(fields) {
  const res = await rest("POST", "", {
    platform: "discord",
    kind: "role",
    external_id: String(Math.floor(Math.random() * 1e15)),
    ...fields,
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.data;
}

async function stored() {
  const res = await rest("GET", "?limit=200");
  assert.equal(res.status, 200);
  return new Map(res.body.data.map((t) => [t.target_name, t]));
}

const rows = () => page.locator('[data-testid="target-row"]');
const rowOf = (name) => rows().filter({ has: page.locator('[data-testid="target-name"]', { hasText: name }) });
const rowById = (id) => page.locator(`[data-testid="target-row"][data-target-id="${id}"]`);

/** The visible names, in table order. */
const tableNames = () => page.locator('[data-testid="target-name"]').allTextContents();

async function expectNames(names) {
  await waitUntil(async () => JSON.stringify(await tableNames()) === JSON.stringify(names), () =>
    tableNames().then((got) => `table ${JSON.stringify(names)}, got ${JSON.stringify(got)}`),
  );
}

async function waitLive() {
  await page.locator('[data-testid="status"][data-state="live"]').waitFor({ timeout: UI_TIMEOUT_MS });
}

/** Polls `check` until it is true, with a deadline; `what` describes the wait on failure. */
async function waitUntil(check, what, timeoutMs = UI_TIMEOUT_MS) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${await what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function lastEvent() {
  return page.locator("#last-event-text").getAttribute("data-event");
}

before(async () => {
  gw = await startGateway(gatewayEnv(), { name: "browser" });
  userDataDir = mkdtempSync(join(tmpdir(), "livegate-chromium-"));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1440, height: 860 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (e) => pageErrors.push(e.message));
  page.on("dialog", (d) => d.accept());
  mkdirSync(ARTIFACTS, { recursive: true });
});

after(async () => {
  await context?.close();
  await gw?.stop();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

test("the page connects with the dev session and shows the live table", async () => {
  await page.goto(gw.url);
  await waitLive();
  assert.equal(await page.locator("#project-id").textContent(), DEV_PROJECT);
  assert.equal(await rows().count(), 0);
  assert.equal(await page.locator("#empty").isVisible(), true);
});

test("changes made through the REST API reach the table", async () => {
  const guild = await create({ target_name: "Acme Community", kind: "guild", plan_count: 3, participant_count: 1842 });
  await expectNames(["Acme Community"]);
  assert.equal(await lastEvent(), "target.added");

  const role = await create({ target_name: "Premium Members", parent_target_id: guild.target_id, participant_count: 150 });
  await expectNames(["Acme Community", "Premium Members"]);
  assert.match(await rowById(role.target_id).textContent(), /Acme Community/, "the parent by name");

  let res = await rest("PATCH", `/${role.target_id}`, { target_name: "Gold Members", plan_count: 2 });
  assert.equal(res.status, 200);
  await expectNames(["Acme Community", "Gold Members"]);
  assert.equal(await lastEvent(), "target.updated");

  res = await rest("PATCH", `/${role.target_id}`, { is_enabled: false });
  await rowById(role.target_id).and(page.locator('[data-enabled="false"]')).waitFor({ timeout: UI_TIMEOUT_MS });
  assert.equal(await lastEvent(), "target.disabled");

  const extra = await create({ target_name: "Temporary", platform: "telegram", kind: "channel" });
  await expectNames(["Acme Community", "Gold Members", "Temporary"]);
  res = await rest("DELETE", `/${extra.target_id}`);
  assert.equal(res.status, 204);
  await expectNames(["Acme Community", "Gold Members"]);
  assert.equal(await lastEvent(), "target.removed");

  res = await rest("PATCH", "", [
    { target_id: guild.target_id, is_enabled: false },
    { target_id: role.target_id, is_enabled: true },
  ]);
  assert.equal(res.status, 200);
  await rowById(guild.target_id).and(page.locator('[data-enabled="false"]')).waitFor({ timeout: UI_TIMEOUT_MS });
  await rowById(role.target_id).and(page.locator('[data-enabled="true"]')).waitFor({ timeout: UI_TIMEOUT_MS });
  assert.equal(await page.locator('[data-testid="count"]').textContent(), "2");
});

test("the page's own controls change targets through the REST API", async () => {
  // Create.
  await page.getByTestId("new-target").click();
  const form = page.getByTestId("create-form");
  await form.locator('input[name="target_name"]').fill("Signals Channel");
  await form.locator('select[name="platform"]').selectOption("telegram");
  await form.locator('select[name="kind"]').selectOption("channel");
  await form.locator('input[name="external_id"]').fill("-1001234567890");
  await page.getByTestId("create-submit").click();
  await expectNames(["Acme Community", "Gold Members", "Signals Channel"]);
  let s = await stored();
  assert.equal(s.get("Signals Channel")?.platform, "telegram");
  assert.equal(s.get("Signals Channel")?.is_enabled, true);
  const signals = s.get("Signals Channel").target_id;

  // Disable with the row's switch.
  await rowById(signals).getByTestId("enabled-toggle").click({ force: true });
  await rowById(signals).and(page.locator('[data-enabled="false"]')).waitFor({ timeout: UI_TIMEOUT_MS });
  assert.equal((await stored()).get("Signals Channel")?.is_enabled, false);

  // Rename inline.
  await rowById(signals).getByTestId("rename").click();
  const input = page.getByTestId("rename-input");
  await input.fill("Market Signals");
  await input.press("Enter");
  await expectNames(["Acme Community", "Gold Members", "Market Signals"]);
  s = await stored();
  assert.equal(s.get("Market Signals")?.target_id, signals);

  // Bulk enable: select two rows, press Enable.
  const guild = s.get("Acme Community").target_id;
  await rowById(guild).getByTestId("row-select").check();
  await rowById(signals).getByTestId("row-select").check();
  assert.equal(await page.locator("#bulk-count").textContent(), "2 selected");
  await page.getByTestId("bulk-enable").click();
  await rowById(guild).and(page.locator('[data-enabled="true"]')).waitFor({ timeout: UI_TIMEOUT_MS });
  await rowById(signals).and(page.locator('[data-enabled="true"]')).waitFor({ timeout: UI_TIMEOUT_MS });
  s = await stored();
  assert.equal(s.get("Acme Community").is_enabled, true);
  assert.equal(s.get("Market Signals").is_enabled, true);
  assert.equal(await page.getByTestId("bulk-bar").isVisible(), false, "selection cleared");

  // Bulk disable through select-all, then re-enable one by its switch.
  await page.locator("#select-all").check();
  await page.getByTestId("bulk-disable").click();
  await waitUntil(
    async () => (await page.locator('[data-testid="target-row"][data-enabled="true"]').count()) === 0,
    () => "every row disabled",
  );
  assert.ok([...(await stored()).values()].every((t) => !t.is_enabled));

  await page.screenshot({ path: join(ARTIFACTS, "admin.png") });

  // Delete (the page asks for confirmation; the test accepts it).
  await rowById(signals).getByTestId("delete").click();
  await expectNames(["Acme Community", "Gold Members"]);
  assert.equal((await rest("GET", `/${signals}`)).status, 404);
  assert.equal(await lastEvent(), "target.removed");
});

test("after a gateway restart the page reconnects, resubscribes and reconciles", async () => {
  const port = gw.port;
  await gw.stop();
  await page.locator('[data-testid="status"]:not([data-state="live"])').waitFor({ timeout: UI_TIMEOUT_MS });

  // A new process on the same port: its in-memory store starts empty.
  gw = await startGateway(gatewayEnv({ LIVEGATE_LISTEN: `127.0.0.1:${port}` }), { name: "browser-restarted" });
  await waitLive();
  // The refetch after `subscribed` replaced the old rows: the new node has none.
  await expectNames([]);

  // Live events flow again: the page resubscribed.
  const fresh = await create({ target_name: "After Restart", kind: "guild" });
  await expectNames(["After Restart"]);
  await rest("PATCH", `/${fresh.target_id}`, { target_name: "After Restart (renamed)" });
  await expectNames(["After Restart (renamed)"]);
  assert.equal(await lastEvent(), "target.updated");
  await page.screenshot({ path: join(ARTIFACTS, "admin-after-restart.png") });
  assert.deepEqual(pageErrors, [], "no script errors on the page");
});
