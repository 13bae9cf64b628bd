// The Event types page in a real browser (Debian's Chromium through playwright-core) against a
// real running service, started by tests/e2e/test_event_types_browser.py (E2E_BASE_URL,
// E2E_API_KEY, E2E_SCREENSHOT_DIR, E2E_CHROMIUM).
//
// A developer's path: events of two types arrive without schemas; the catalog shows them; the
// developer infers a schema from the recent events, tightens it in the editor (validated as they
// type), tests a payload, saves it in warn mode; a bad event is then stored with a warning that
// the events table marks and the detail panel explains; switching to enforce refuses it.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { after, before, test } from "node:test";

const require = createRequire(new URL("../../dashboard/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const BASE = mustEnv("E2E_BASE_URL");
const KEY = mustEnv("E2E_API_KEY");
const SHOTS = mustEnv("E2E_SCREENSHOT_DIR");
const CHROMIUM = process.env.E2E_CHROMIUM || "/usr/bin/chromium";

function mustEnv(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required (run through tests/e2e/test_event_types_browser.py)`);
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

let browser;
let page;
const problems = [];

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  context.setDefaultTimeout(20_000);
  page = await context.newPage();
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(`CSP: ${message.text()}`);
  });
});

after(async () => {
  await browser?.close();
});

test("a developer gives an event type a schema and sees bad events flagged", async () => {
  for (let i = 0; i < 3; i++) {
    const sent = await api("POST", "/v1/events", {
      event_type: "order.completed",
      payload: { order_id: `ord_${i}`, amount: 10 + i, email: `buyer${i}@example.com` },
    });
    assert.equal(sent.status, 201);
  }
  assert.equal((await api("POST", "/v1/events", { event_type: "user.signed_up", payload: { id: 1 } })).status, 201);

  await page.goto(`${BASE}/dashboard/login`);
  await page.getByLabel("API key").fill(KEY);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("link", { name: "Event types" }).click();
  await page.getByRole("heading", { name: "Event types" }).waitFor();

  const table = page.getByRole("table", { name: "Event types" });
  const order = table.locator("tr", { hasText: "order.completed" });
  await order.getByText("no schema").waitFor();
  assert.match(await order.innerText(), /\b3\b/); // events in the last 24 hours
  await table.locator("tr", { hasText: "user.signed_up" }).waitFor();

  await order.getByRole("button", { name: "Add schema" }).click();
  await page.getByRole("button", { name: "Infer from recent events" }).click();
  await page.getByText(/Inferred from 3 recent events/).waitFor();
  const editor = page.getByLabel("JSON Schema");
  const inferred = JSON.parse(await editor.inputValue());
  assert.deepEqual([...inferred.required].sort(), ["amount", "email", "order_id"]);

  // Validation as you type: a broken schema is caught before saving.
  await editor.fill('{"type": "bogus"}');
  await page.getByText("Not a valid JSON Schema").waitFor();
  assert.equal(await page.getByRole("button", { name: "Save schema" }).isDisabled(), true);

  inferred.properties.amount = { type: "number", minimum: 0 };
  inferred.properties.email = { type: "string", format: "email" };
  await editor.fill(JSON.stringify(inferred, null, 2));
  await page.getByText("Valid JSON Schema").waitFor();

  await page.getByLabel("Test payload").fill('{"order_id": "x", "amount": -5, "email": "nope"}');
  await page.getByRole("button", { name: "Test payload" }).click();
  const violations = page.getByTestId("schema-violations");
  await violations.getByText("/payload/amount").waitFor();
  await violations.getByText("/payload/email").waitFor();

  await page.getByLabel("Mode").selectOption("warn");
  await page.getByRole("button", { name: "Save schema" }).click();
  await order.getByText("warn").waitFor();
  await page.getByRole("button", { name: "v1" }).waitFor(); // the version history
  await page.screenshot({ path: path.join(SHOTS, "event-types.png") });

  const registered = await api("GET", "/v1/event-types/order.completed");
  assert.equal(registered.body.version, 1);
  assert.equal(registered.body.mode, "warn");

  // A bad event within the next second of the change is stored with a warning...
  const bad = await api("POST", "/v1/events", {
    event_type: "order.completed",
    payload: { order_id: "ord_bad", amount: -5, email: "buyer@example.com" },
  });
  assert.equal(bad.status, 201);
  await page.getByRole("link", { name: "Events" }).click();
  const row = page.locator(`tr[data-event-id="${bad.body.event_id}"]`);
  await row.getByTestId("schema-warning").waitFor();
  assert.equal(await page.getByTestId("schema-warning").count(), 1); // only the bad one is marked
  await row.getByRole("button", { name: "order.completed" }).click();
  const panel = page.getByRole("dialog");
  await panel.getByTestId("schema-violations").getByText("-5 is less than the minimum of 0").waitFor();
  await page.screenshot({ path: path.join(SHOTS, "event-with-warning.png") });

  // ...and refused once the type is enforced.
  assert.equal((await api("PUT", "/v1/event-types/order.completed", { schema: inferred, mode: "enforce" })).status, 200);
  const refused = await api("POST", "/v1/events", {
    event_type: "order.completed",
    payload: { order_id: "ord_bad", amount: -5, email: "buyer@example.com" },
  });
  assert.equal(refused.status, 400);
  assert.equal(refused.body.error.details["/payload/amount"], "-5 is less than the minimum of 0");

  assert.deepEqual(problems, []);
});
