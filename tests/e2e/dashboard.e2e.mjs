// The dashboard in a real browser (Debian's Chromium through playwright-core) against a real
// running service. Started by tests/e2e/test_dashboard_browser.py, which starts the service and
// passes its address and bootstrap key:
//
//   E2E_BASE_URL, E2E_API_KEY, E2E_SCREENSHOT_DIR, E2E_CHROMIUM (default /usr/bin/chromium)
//
// A user's path through the app: log in with a key, create a key and see it listed, send events
// through the API and watch them appear without reloading, open one and see its payload,
// acknowledge it, revoke a key, log out. Every page is photographed on the way.
//
// When the service pushes events (the delivery worker, with TRIGGERS_WORKFLOW_URL pointing at the
// receiver the Python side runs), the receiver accepts most event types, refuses `payment.*` for
// good (422: dead letters) and answers `checkout.*` with 503 (retried later, so they stay in the
// inbox); the test then also checks the delivery figures, the attempt history and replay.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { after, before, test } from "node:test";

// playwright-core is a dev dependency of the dashboard (installed by `npm ci` there).
const require = createRequire(new URL("../../dashboard/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const BASE = mustEnv("E2E_BASE_URL");
const KEY = mustEnv("E2E_API_KEY");
const SHOTS = mustEnv("E2E_SCREENSHOT_DIR");
const CHROMIUM = process.env.E2E_CHROMIUM || "/usr/bin/chromium";
const RUN = Math.random().toString(36).slice(2, 8);

function mustEnv(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required (run through tests/e2e/test_dashboard_browser.py)`);
  return value;
}

/** The service's own API, with an API key: how a customer's systems talk to it. */
async function api(method, route, { key = KEY, body } = {}) {
  const response = await fetch(`${BASE}${route}`, {
    method,
    headers: { "X-API-Key": key, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function sendEvent(eventType, payload, key = KEY) {
  const res = await api("POST", "/v1/events", { key, body: { event_type: eventType, payload } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.event_id;
}

/** Which optional parts this server has (the delivery worker adds push, replay and the stream). */
async function capabilities() {
  const res = await fetch(`${BASE}/v1/openapi.json`);
  const paths = Object.keys((await res.json()).paths ?? {});
  return { replay: paths.includes("/v1/events/replay"), stream: paths.includes("/v1/inbox/stream") };
}

/** Poll the API until `check` holds (the worker pushes in the background). */
async function eventually(what, check, attempts = 100) {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.fail(`never happened: ${what}`);
}

async function countEvents(query) {
  const res = await api("GET", `/v1/events?limit=200&${query}`);
  assert.equal(res.status, 200);
  return res.body.events.length;
}

/** Counts the session checks and refreshes a page sends from now on. */
function watchAuthCalls(target) {
  const calls = { session: 0, refresh: 0 };
  const listener = (request) => {
    const { pathname } = new URL(request.url());
    if (request.method() === "GET" && pathname === "/v1/auth/session") calls.session++;
    if (request.method() === "POST" && pathname === "/v1/auth/refresh") calls.refresh++;
  };
  target.on("request", listener);
  Object.defineProperty(calls, "stop", { value: () => target.off("request", listener), enumerable: false });
  return calls;
}

/** Nothing scrolls sideways: the document is no wider than the window (tables scroll inside). */
async function assertNoSidewaysScroll(target, where) {
  const { scroll, client } = await target.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    client: document.documentElement.clientWidth,
  }));
  assert.ok(scroll <= client, `${where}: the page is ${scroll} px wide in a ${client} px window`);
}

/** The short name of the browser's time zone ("UTC", "CET"), as the dashboard prints it. */
async function localZone() {
  return page.evaluate(
    () => new Intl.DateTimeFormat(undefined, { timeZoneName: "short" }).formatToParts(new Date()).find((p) => p.type === "timeZoneName").value,
  );
}

/** Runs a docs page example as a user pastes it: bash, the key in $TRIGGERS_API_KEY. */
function sh(command, extraEnv = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-c", command], { env: { ...process.env, TRIGGERS_API_KEY: KEY, ...extraEnv } });
    let out = "";
    let err = "";
    child.stdout.on("data", (c) => (out += c));
    child.stderr.on("data", (c) => (err += c));
    child.on("close", (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`${command}\nexit ${code}: ${err}`))));
  });
}

/** Every entry of the navigation, at a phone's width and a desktop's: no sideways scroll, and the
 * parts each page must keep (the chart fills its card; the events keep type, status and time). */
async function checkEveryPageAtBothWidths(has) {
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.goto(`${BASE}/dashboard/`);
  const nav = page.locator("nav[aria-label='Main'] a[data-nav-entry]");
  await nav.first().waitFor();
  const entries = [];
  for (const link of await nav.all()) entries.push({ to: await link.getAttribute("data-nav-entry"), label: (await link.innerText()).trim() });
  assert.ok(entries.length >= 4, JSON.stringify(entries));
  // A reload with the session cookie: one session check, no refresh.
  const calls = watchAuthCalls(page);
  await page.reload();
  await page.locator("main h1").waitFor();
  await page.waitForLoadState("networkidle");
  assert.deepEqual({ ...calls }, { session: 1, refresh: 0 });
  calls.stop();

  for (const width of [390, 1440]) {
    await page.setViewportSize({ width, height: 844 });
    for (const entry of entries) {
      if (width < 768) {
        await page.getByRole("button", { name: "Open menu" }).click();
        await page.getByRole("link", { name: entry.label, exact: true }).click();
        await page.getByRole("button", { name: "Open menu" }).waitFor(); // it closed on choosing
      } else {
        await page.getByRole("link", { name: entry.label, exact: true }).click();
      }
      await page.waitForURL((url) => url.pathname.replace(/\/$/, "") === `/dashboard${entry.to}`.replace(/\/$/, ""));
      await page.locator("main h1").waitFor();
      await page.waitForFunction(() => !document.querySelector(".animate-pulse, .animate-spin"));
      await assertNoSidewaysScroll(page, `${entry.label} at ${width} px`);
      if (entry.to === "/" && has.replay) {
        const chart = page.getByTestId("events-per-minute-chart").locator("svg").first();
        await chart.waitFor();
        const box = await chart.boundingBox();
        const card = await page.getByTestId("events-per-minute-chart").boundingBox();
        assert.ok(box && card && box.width > 0.9 * card.width, `the chart fills its card at ${width} px`);
      }
      if (entry.to === "/events") {
        const row = page.locator("tbody tr").first();
        await row.waitFor();
        for (const part of [row.locator("td:nth-child(2) button"), row.locator("[data-status]"), row.locator("time")]) {
          const box = await part.boundingBox();
          assert.ok(box && box.x >= 0 && box.x + box.width <= width, `type, status and time visible at ${width} px`);
        }
        if (width < 768) {
          await row.locator("td:nth-child(2) button").click();
          const panel = page.getByRole("dialog");
          await panel.getByTestId("event-id").waitFor();
          await assertNoSidewaysScroll(page, `the event panel at ${width} px`);
          await shot("mobile-event-detail.png");
          await panel.getByRole("button", { name: "Close" }).click();
          await panel.waitFor({ state: "hidden" });
        }
      }
      if (width < 768) await shot(`mobile-${entry.to === "/" ? "overview" : entry.to.slice(1).replaceAll("/", "-")}.png`);
    }
  }
}

let browser;
let context;
let page;
const problems = []; // page errors and CSP violations: none may happen

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
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
  context = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
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

/** A screenshot once nothing is loading any more (no skeleton or spinner) and toasts are gone. */
async function shot(name, target = page) {
  await target.waitForFunction(() => !document.querySelector(".animate-pulse, .animate-spin"));
  const dismiss = target.getByRole("button", { name: "Dismiss" });
  for (let i = 0; i < 10 && (await dismiss.count()) > 0; i++) {
    await dismiss.first().click({ timeout: 2_000 }).catch(() => undefined); // it may expire meanwhile
  }
  await target.screenshot({ path: path.join(SHOTS, name) });
}

/** Some history so the pages look like an account in use (through the public API). */
async function seed() {
  for (const [name, scopes, rate_limit] of [
    ["billing-service", ["events:write"], 600],
    ["analytics (read-only)", ["events:read"], 1200],
  ]) {
    assert.equal((await api("POST", "/v1/keys", { body: { name, scopes, rate_limit } })).status, 201);
  }
  const types = ["user.created", "order.completed", "invoice.paid", "user.updated"];
  for (let i = 0; i < 12; i++) {
    await sendEvent(types[i % types.length], { seq: i, user_id: `usr_${1000 + i}`, amount: (i * 17.5) % 250 });
  }
  // Refused by the receiver for good: dead letters to replay.
  await sendEvent("payment.declined", { payment_id: "pay_3001", reason: "card_expired", amount: 42.0 });
  await sendEvent("payment.declined", { payment_id: "pay_3002", reason: "insufficient_funds", amount: 310.5 });
}

test("a developer manages keys and watches events in the dashboard", async (t) => {
  const has = await capabilities();
  await seed();
  if (has.replay) {
    // The worker delivers 12 and dead-letters 2 of the seeded events.
    await eventually("the seeded events are delivered", async () => (await countEvents("status=delivered")) >= 12);
    await eventually("the refused events are dead letters", async () => (await countEvents("status=failed")) >= 2);
  }
  let createdKey;
  let createdKeyId;

  await t.test("a load without a session asks once: one session check, at most one refresh", async () => {
    const fresh = await browser.newContext({ viewport: { width: 390, height: 800 } });
    const other = await fresh.newPage();
    const calls = watchAuthCalls(other);
    await other.goto(`${BASE}/dashboard`);
    await other.waitForURL(/\/dashboard\/login/);
    await other.getByLabel("API key").waitFor();
    await other.waitForLoadState("networkidle");
    assert.equal(calls.session, 1, `GET /v1/auth/session sent ${calls.session} times`);
    assert.ok(calls.refresh <= 1, `POST /v1/auth/refresh sent ${calls.refresh} times`);
    // The lost-key hint is a command that works from the repository (tests/integration/test_cli.py runs it).
    assert.equal(
      (await other.getByTestId("lost-key-command").innerText()).trim(),
      ".venv/bin/triggers-api keys create --user-id default --name dashboard --scope keys:manage",
    );
    await assertNoSidewaysScroll(other, "login at 390 px");
    await fresh.close();
  });

  await t.test("an unknown key is refused with a friendly message, a real one logs in", async () => {
    await page.goto(`${BASE}/dashboard/events`);
    await page.waitForURL(/\/dashboard\/login\?next=/);
    await page.getByLabel("API key").waitFor();
    await shot("01-login.png");
    await page.getByLabel("API key").fill("tk_this_key_does_not_exist_0000000000000000000000");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("That API key is not valid").waitFor();
    assert.match(await page.getByText(/^Request ID: /).innerText(), /Request ID: \w+/);

    await page.getByLabel("API key").fill(KEY);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${BASE}/dashboard/events`); // back where the user was headed
    await page.getByRole("heading", { name: "Events" }).waitFor();

    const cookies = await context.cookies(BASE);
    const session = cookies.find((c) => c.name === "triggers_session");
    assert.ok(session, "session cookie set");
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, "Strict");
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
    assert.ok(!stored.includes(KEY), "the API key is not kept in web storage");
    const readable = await page.evaluate(() => document.cookie);
    assert.ok(!readable.includes("triggers_session"), "the session cookie is not readable by scripts");
  });

  await t.test("the overview shows the account's figures", async () => {
    await page.getByRole("link", { name: "Overview" }).click();
    await page.getByRole("heading", { name: "Overview" }).waitFor();
    await page.locator("a[href^='/dashboard/events/']").first().waitFor();
    await page.getByTestId("metric-queue-depth").waitFor();
    if (has.replay) {
      await page.getByTestId("events-per-minute-chart").locator("svg").first().waitFor();
      await page.getByTestId("events-last-hour").filter({ hasText: /^14$/ }).waitFor();
      await page.getByTestId("metric-dead-letters").filter({ hasText: /^2$/ }).waitFor();
      assert.match(await page.getByTestId("metric-success-rate").innerText(), /^\d+(\.\d)?%$/);
    } else {
      await page.getByText("Delivery metrics are not available on this server").waitFor();
    }
    await shot("02-overview.png");
  });

  await t.test("a new key is created, shown once, works, and is listed", async () => {
    await page.getByRole("link", { name: "API keys" }).click();
    await page.getByRole("table", { name: "API keys" }).waitFor();
    await shot("03-keys.png");

    await page.getByRole("button", { name: "Create key" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("Name").fill(`e2e-ingest-${RUN}`);
    await dialog.getByRole("checkbox", { name: /events:read/ }).uncheck();
    await dialog.getByLabel(/Rate limit/).fill("300");
    await dialog.getByRole("button", { name: "Create key" }).click();
    const plaintext = dialog.getByTestId("new-key-plaintext");
    await plaintext.waitFor();
    createdKey = (await plaintext.innerText()).trim();
    assert.match(createdKey, /^tk_[A-Za-z0-9_-]{43}$/);
    await shot("04-key-created.png");

    // Escape, a second Escape (Chromium may then close a modal by itself) and a click outside all
    // ask first while the key was not copied; the key stays on screen.
    for (const dismiss of [
      async () => page.keyboard.press("Escape"),
      async () => {
        await page.keyboard.press("Escape");
        await page.keyboard.press("Escape");
      },
      async () => page.mouse.click(3, 3),
    ]) {
      await dismiss();
      await dialog.getByTestId("confirm-close").waitFor();
      assert.equal((await plaintext.innerText()).trim(), createdKey, "the key is still shown");
      await dialog.getByRole("button", { name: "Keep it open" }).click();
      await dialog.getByTestId("confirm-close").waitFor({ state: "detached" });
    }
    await dialog.getByRole("button", { name: "Copy key" }).click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), createdKey);

    // The key works at once, with exactly the scopes chosen.
    assert.equal((await api("POST", "/v1/events", { key: createdKey, body: { event_type: "e2e.ping", payload: {} } })).status, 201);
    assert.equal((await api("GET", "/v1/inbox", { key: createdKey })).status, 403);

    await dialog.getByRole("button", { name: "I have stored the key" }).click();
    const row = page.getByRole("row").filter({ hasText: `e2e-ingest-${RUN}` });
    await row.waitFor();
    assert.match(await row.innerText(), /300\/min/);
    assert.ok(!(await page.content()).includes(createdKey), "the plaintext is gone once the dialog closes");
    createdKeyId = await row.getAttribute("data-key-id");
    assert.ok(createdKeyId);
  });

  let watchedId;
  await t.test("events sent through the API appear without a reload", async () => {
    await page.getByRole("link", { name: "Events" }).click();
    await page.getByRole("table", { name: "Events" }).waitFor();
    await page.evaluate(() => {
      window.__sameDocument = true; // a reload would drop this
    });
    const type = `checkout.e2e-${RUN}`;
    const ids = [];
    for (let i = 0; i < 3; i++) {
      ids.push(await sendEvent(type, { cart: `c-${RUN}-${i}`, items: [{ sku: "SKU-1", qty: i + 1 }], total: 19.99 * (i + 1) }, createdKey));
    }
    for (const id of ids) await page.locator(`tr[data-event-id="${id}"]`).waitFor();
    assert.equal(await page.evaluate(() => window.__sameDocument), true, "the page was not reloaded");
    // Through the SSE stream when the server has one, by polling otherwise.
    await page.locator(`[data-live-mode="${has.stream ? "live" : "polling"}"]`).waitFor();
    watchedId = ids[2];
    // Full ids where the table has room, absolute times with their zone on hover.
    const row = page.locator(`tr[data-event-id="${watchedId}"]`);
    assert.equal((await row.getByTestId("full-event-id").innerText()).trim(), watchedId);
    const title = await row.locator("time").getAttribute("title");
    assert.ok(title && title.includes(await localZone()), `hover title names the zone: ${title}`);
    await shot("05-events.png");
  });

  await t.test("an event opens with its payload, and is acknowledged", async () => {
    await page.locator(`tr[data-event-id="${watchedId}"]`).getByRole("button").click();
    await page.waitForURL(new RegExp(`/dashboard/events/${watchedId}`));
    const panel = page.getByRole("dialog");
    const payload = panel.getByTestId("event-payload");
    await payload.waitFor();
    const text = await payload.innerText();
    assert.match(text, new RegExp(`"cart": "c-${RUN}-2"`));
    assert.match(text, /"sku": "SKU-1"/);
    await panel.getByText(/No delivery attempts yet|Attempt 1/).first().waitFor();
    await shot("06-event-detail.png");

    await panel.getByRole("button", { name: "Acknowledge" }).click();
    await page.getByText("Event acknowledged").waitFor();
    await panel.getByTestId("payload-deleted").waitFor();
    // The panel says what happened: acknowledged, with its time (and zone), not only "delivered".
    assert.equal((await panel.getByTestId("detail-status").innerText()).trim(), "acknowledged");
    const note = await panel.getByTestId("acknowledged-note").innerText();
    assert.match(note, /^Acknowledged .+/);
    assert.ok(note.includes(await localZone()), note);
    const status = await api("GET", `/v1/events/${watchedId}/status`);
    assert.equal(status.status, 200);
    assert.ok(status.body.acknowledged_at, "acknowledged on the server");
    assert.equal((await api("GET", `/v1/events/${watchedId}`)).status, 404);
    await panel.getByRole("button", { name: "Close" }).click();
    await page.locator(`tr[data-event-id="${watchedId}"]`).getByText("acknowledged").waitFor();
  });

  await t.test("a deep link opens the same event on a fresh load", async () => {
    const other = await context.newPage();
    await other.goto(`${BASE}/dashboard/events/${watchedId}`);
    await other.getByRole("dialog").getByTestId("payload-deleted").waitFor();
    await other.close();
  });

  await t.test("a dead letter shows its attempts and is replayed, one and all", { skip: !has.replay && "this server has no delivery worker" }, async () => {
    await page.getByLabel("Status").selectOption("failed");
    await page.waitForURL(/status=failed/);
    const failed = page.locator("tbody tr").filter({ hasText: "payment.declined" });
    await eventually("two dead letters listed", async () => (await failed.count()) === 2);
    const id = await failed.first().getAttribute("data-event-id");
    await failed.first().getByRole("button").click();
    const panel = page.getByRole("dialog");
    await panel.getByText("HTTP 422").first().waitFor();
    const reason = panel.getByTestId("dead-letter-reason");
    assert.equal(await reason.getAttribute("data-reason"), "refused");
    const said = await reason.innerText();
    assert.match(said, /Refused by the engine \(HTTP 422\) on attempt 1/);
    assert.match(said, /press Replay/);
    await panel.getByText("card processor refused the event").first().waitFor();
    await reason.scrollIntoViewIfNeeded(); // the screenshot shows why, and the way out (Replay)
    await shot("08-dead-letter.png");

    await panel.getByRole("button", { name: "Replay" }).click();
    await page.getByText("Event sent back to delivery").waitFor();
    // Pushed again at once, refused again: a second attempt in its history.
    await eventually("a second attempt", async () => (await api("GET", `/v1/events/${id}/status`)).body.attempts.length >= 2);
    await panel.getByText("Attempt 2", { exact: true }).waitFor({ timeout: 15_000 });
    await panel.getByRole("button", { name: "Close" }).click();

    await eventually("failed again", async () => (await api("GET", `/v1/events/${id}/status`)).body.status === "failed");
    await page.getByRole("button", { name: "Replay failed" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Replay failed events" }).click();
    await page.getByText(/^2 failed events sent back to delivery$/).waitFor();
    await page.getByRole("button", { name: "Clear filters" }).click();
  });

  await t.test("the docs page gives a curl example with this server's address", async () => {
    await page.getByRole("link", { name: "Docs" }).click();
    await page.getByRole("heading", { name: "Docs" }).waitFor();
    assert.ok((await page.locator("pre").first().innerText()).includes(`${BASE}/v1/events`));
    assert.ok(!(await page.content()).includes(KEY), "no key is written into the page");
    assert.ok(!/delivery worker/i.test(await page.locator("main").innerText()), "no claim the stream needs the worker");
    await shot("07-docs.png");
  });

  await t.test("every curl example on the docs page works against this server as shown", async () => {
    const example = async (title) => {
      const card = page.locator("[data-example]").filter({ has: page.getByText(title, { exact: true }) });
      return (await card.locator("pre").innerText()).trim();
    };
    const sent = JSON.parse(await sh(await example("Send an event")));
    assert.match(sent.event_id, /^[0-9a-f-]{36}$/, JSON.stringify(sent));
    assert.equal((await api("GET", `/v1/events/${sent.event_id}/status`)).status, 200);
    assert.ok(Array.isArray(JSON.parse(await sh(await example("Read the inbox"))).events));
    assert.equal(await sh(await example("Acknowledge an event"), { EVENT_ID: sent.event_id }), "");
    assert.ok((await api("GET", `/v1/events/${sent.event_id}/status`)).body.acknowledged_at, "acknowledged by the example");
    // The live stream, with the delivery worker or without: a new event arrives on it.
    const stream = spawn("bash", ["-c", await example("Follow new events live")], {
      env: { ...process.env, TRIGGERS_API_KEY: KEY },
      detached: true,
    });
    let output = "";
    stream.stdout.on("data", (chunk) => (output += chunk));
    try {
      let streamed = null;
      await eventually("the stream answers and carries a new event", async () => {
        if (!streamed && output.length > 0) streamed = await sendEvent(`docs.stream-${RUN}`, { n: 1 });
        return streamed !== null && output.includes(streamed);
      });
    } finally {
      process.kill(-stream.pid, "SIGTERM");
    }
  });

  await t.test("every page fits a 390 px phone and a 1440 px screen, the navigation included", async () => {
    try {
      await checkEveryPageAtBothWidths(has);
    } finally {
      await page.setViewportSize({ width: 1280, height: 800 });
    }
  });

  await t.test("a key is revoked after confirmation and stops working", async () => {
    await page.getByRole("link", { name: "API keys" }).click();
    await page.getByRole("button", { name: `Revoke e2e-ingest-${RUN}` }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByText(/cannot be undone/).waitFor();
    await dialog.getByRole("button", { name: "Revoke key" }).click();
    await page.getByText(`Key “e2e-ingest-${RUN}” revoked`).waitFor();
    await page.getByRole("button", { name: `Revoke e2e-ingest-${RUN}` }).waitFor({ state: "detached" });
    let status = 0;
    for (let i = 0; i < 20 && status !== 401; i++) {
      status = (await api("POST", "/v1/events", { key: createdKey, body: { event_type: "e2e.after", payload: {} } })).status;
      if (status !== 401) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(status, 401, "a revoked key is refused");
  });

  await t.test("logging out ends the session", async () => {
    const before = await context.cookies(BASE);
    const sessionCookie = before.find((c) => c.name === "triggers_session");
    await page.getByRole("button", { name: "Log out" }).click();
    await page.waitForURL(/\/dashboard\/login/);
    await page.getByLabel("API key").waitFor();
    assert.ok(!(await context.cookies(BASE)).some((c) => c.name === "triggers_session"), "cookie cleared");
    // The old cookie, replayed by hand, is refused too.
    const replay = await fetch(`${BASE}/v1/keys`, { headers: { Cookie: `triggers_session=${sessionCookie.value}` } });
    assert.equal(replay.status, 401);
    await page.goto(`${BASE}/dashboard/keys`);
    await page.waitForURL(/\/dashboard\/login\?next=%2Fkeys/);
  });

  assert.deepEqual(problems, [], "no page errors and no CSP violations");
});
