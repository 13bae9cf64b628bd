// The Subscriptions page in a real browser (Debian's Chromium through playwright-core) against a
// real running service; started by tests/e2e/test_subscriptions_browser.py, which also runs the
// loopback receiver the subscription targets:
//
//   E2E_BASE_URL, E2E_API_KEY, E2E_TARGET_URL, E2E_SCREENSHOT_DIR, E2E_CHROMIUM
//
// Log in, add a subscription with a filter (an invalid one is refused first), see the secret once,
// send an event that matches and see it delivered (health, event detail row per destination),
// pause and resume, send a test event, rotate the secret, delete with confirmation.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { after, before, test } from "node:test";

const require = createRequire(new URL("../../dashboard/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const BASE = mustEnv("E2E_BASE_URL");
const KEY = mustEnv("E2E_API_KEY");
const TARGET = mustEnv("E2E_TARGET_URL");
const SHOTS = mustEnv("E2E_SCREENSHOT_DIR");
const CHROMIUM = process.env.E2E_CHROMIUM || "/usr/bin/chromium";

function mustEnv(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required (run through tests/e2e/test_subscriptions_browser.py)`);
  return value;
}

async function api(method, route, body) {
  const response = await fetch(`${BASE}${route}`, {
    method,
    headers: { "X-API-Key": KEY, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function eventually(what, check, attempts = 150) {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.fail(`never happened: ${what}`);
}

let browser;
let page;
const problems = [];

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(20_000);
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
  page = await context.newPage();
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(`CSP: ${message.text()}`);
  });
});

after(async () => {
  await browser?.close();
});

test("a developer routes events to a subscription from the dashboard", async () => {
  await page.goto(`${BASE}/dashboard/login`);
  await page.getByLabel("API key").fill(KEY);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("link", { name: "Subscriptions" }).click();
  await page.getByRole("heading", { name: "Subscriptions" }).waitFor();
  await page.getByText("No subscriptions yet").waitFor();

  // -- create, with a filter refused first ------------------------------------------------------
  await page.getByRole("button", { name: "Add subscription" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.getByLabel("Target URL").fill(TARGET);
  await dialog.getByLabel(/Event types/).fill("order.*");
  await dialog.getByLabel(/Filter/).fill('{"payload.amount": {"$between": [1, 2]}}');
  await dialog.getByRole("button", { name: "Create subscription" }).click();
  await dialog.getByText(/\$between: unknown operator/).waitFor();
  await dialog.getByLabel(/Filter/).fill('{"payload.amount": {"$gte": 100}}');
  await dialog.getByRole("button", { name: "Create subscription" }).click();
  const secret = (await page.getByTestId("signing-secret").innerText()).trim();
  assert.match(secret, /^whsec_/);
  await page.screenshot({ path: path.join(SHOTS, "subscription-created.png") });
  await page.getByRole("button", { name: "Copy secret" }).click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
  await page.getByRole("button", { name: /I have stored the secret/ }).click();
  const row = page.locator("tr", { hasText: TARGET });
  await row.waitFor();
  assert.ok(!(await page.content()).includes(secret), "the secret is gone once the dialog closes");

  // -- a matching event is delivered; the event panel shows a row per destination ---------------
  const small = await api("POST", "/v1/events", { event_type: "order.created", payload: { amount: 5 } });
  const big = await api("POST", "/v1/events", { event_type: "order.created", payload: { amount: 500 } });
  assert.equal(big.status, 201);
  const id = big.body.event_id;
  await eventually("the matching event is delivered", async () => (await api("GET", `/v1/events/${id}/status`)).body.status === "delivered");
  const smallStatus = await api("GET", `/v1/events/${small.body.event_id}/status`);
  assert.deepEqual(
    smallStatus.body.deliveries.map((d) => d.destination),
    ["workflow"],
    "the filter kept the small order away from the subscription",
  );
  await page.goto(`${BASE}/dashboard/events/${id}`);
  const deliveries = page.getByRole("list", { name: "Deliveries" });
  await deliveries.waitFor();
  await deliveries.getByText("Workflow URL").waitFor();
  await deliveries.getByText("Subscription").waitFor();
  assert.equal(await deliveries.getByText("HTTP 200").count(), 2);
  await page.screenshot({ path: path.join(SHOTS, "event-deliveries.png") });

  // -- pause, resume, test, rotate, delete -------------------------------------------------------
  await page.goto(`${BASE}/dashboard/subscriptions`);
  await row.getByText("closed").waitFor(); // circuit state from the in-process worker
  await row.getByRole("button", { name: "Pause" }).click();
  await row.getByText("paused").waitFor();
  await row.getByRole("button", { name: "Resume" }).click();
  await row.getByText("active").waitFor();
  await row.getByRole("button", { name: "Send test" }).click();
  await page.getByText("Test event sent").waitFor();
  await row.getByRole("button", { name: "Rotate secret" }).click();
  const rotated = (await page.getByTestId("signing-secret").innerText()).trim();
  assert.notEqual(rotated, secret);
  await page.getByRole("button", { name: /I have stored the secret/ }).click();
  await page.screenshot({ path: path.join(SHOTS, "subscriptions.png") });
  await row.getByRole("button", { name: /^Delete / }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Delete subscription" }).click();
  await page.getByText("No subscriptions yet").waitFor();
  assert.deepEqual(problems, []);
});
