import { act, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

import { apiError, event, fakeApi, json, session } from "@/test/fake-api";
import { FakeEventSource } from "@/test/fake-event-source";
import { renderPage } from "@/test/render";

import { EventsPage } from "./EventsPage";

const page = (events: unknown[]) => json(200, { events, pagination: { limit: 50, offset: null, has_more: false } });
const openapi = (paths: string[]) => json(200, { paths: Object.fromEntries(paths.map((p) => [p, {}])) });

beforeEach(() => {
  FakeEventSource.instances = [];
  vi.stubGlobal("EventSource", FakeEventSource);
  document.cookie = "triggers_csrf=csrf-123";
});

describe("EventsPage", () => {
  it("shows a new event as soon as the live stream announces it, without a reload", async () => {
    let events = [event({ event_id: "e-1", event_type: "user.created" })];
    const api = fakeApi({
      "GET /v1/auth/session": () => json(200, session),
      "GET /v1/events": () => page(events),
      "GET /v1/openapi.json": () => openapi([]),
    });
    renderPage(<EventsPage />, { route: "/events/:eventId?", path: "/events" });
    expect(await screen.findByText("user.created")).toBeInTheDocument();
    expect(screen.getByText("Connecting…")).toBeInTheDocument();

    const stream = FakeEventSource.latest();
    expect(stream.url).toBe("/v1/inbox/stream");
    act(() => stream.open());
    expect(await screen.findByText("Live")).toBeInTheDocument();

    const fresh = event({ event_id: "e-2", event_type: "order.completed" });
    events = [fresh, ...events];
    act(() => stream.push(fresh));
    expect(await screen.findByText("order.completed")).toBeInTheDocument();
    expect(api.calls("GET", "/v1/events").length).toBeGreaterThanOrEqual(2);
  });

  it("falls back to polling when the server has no stream", async () => {
    fakeApi({
      "GET /v1/auth/session": () => json(200, session),
      "GET /v1/events": () => page([]),
      "GET /v1/openapi.json": () => openapi([]),
    });
    renderPage(<EventsPage />, { route: "/events/:eventId?", path: "/events" });
    expect(await screen.findByText("No events yet")).toBeInTheDocument();
    act(() => FakeEventSource.latest().fail());
    expect(await screen.findByText("Auto-refresh")).toBeInTheDocument();
    expect(FakeEventSource.latest().closed).toBe(true);
  });

  it("filters by type, status and time through the URL and the API query", async () => {
    const api = fakeApi({
      "GET /v1/auth/session": () => json(200, session),
      "GET /v1/events": () => page([]),
      "GET /v1/openapi.json": () => openapi([]),
    });
    const { router } = renderPage(<EventsPage />, { route: "/events/:eventId?", path: "/events" });
    await screen.findByText("No events yet");
    await userEvent.selectOptions(screen.getByLabelText("Status"), "delivered");
    await userEvent.selectOptions(screen.getByLabelText("Time range"), "1h");
    await userEvent.type(screen.getByLabelText("Event type"), "order.completed");
    await waitFor(() => expect(router.state.location.search).toBe("?type=order.completed&status=delivered&range=1h"));
    await waitFor(() => {
      const q = api.calls("GET", "/v1/events").at(-1)!.query;
      expect(q.get("event_type")).toBe("order.completed");
      expect(q.get("status")).toBe("delivered");
      expect(Date.now() - Date.parse(q.get("from_timestamp")!)).toBeLessThan(3_700_000);
    });
    expect(await screen.findByText("No events match these filters")).toBeInTheDocument();
  });

  it("loads the next page with the cursor", async () => {
    const api = fakeApi({
      "GET /v1/auth/session": () => json(200, session),
      "GET /v1/events": (req) =>
        req.query.get("offset") === "cursor-2"
          ? page([event({ event_id: "e-old", event_type: "old.event" })])
          : json(200, { events: [event({ event_id: "e-new", event_type: "new.event" })], pagination: { limit: 50, offset: "cursor-2", has_more: true } }),
      "GET /v1/openapi.json": () => openapi([]),
    });
    renderPage(<EventsPage />, { route: "/events/:eventId?", path: "/events" });
    await userEvent.click(await screen.findByRole("button", { name: "Load more" }));
    expect(await screen.findByText("old.event")).toBeInTheDocument();
    expect(screen.getByText("new.event")).toBeInTheDocument();
    expect(api.calls("GET", "/v1/events").some((r) => r.query.get("offset") === "cursor-2")).toBe(true);
  });

  it("opens an event's payload and acknowledges it", async () => {
    const id = "0190f3a0-0000-7000-8000-00000000abcd";
    let acked = false;
    const api = fakeApi({
      "GET /v1/auth/session": () => json(200, session),
      "GET /v1/events": () => page([event({ event_id: id, acknowledged_at: acked ? new Date().toISOString() : null, status: acked ? "delivered" : "received", payload: acked ? null : { order_id: 42 } })]),
      "GET /v1/openapi.json": () => openapi([]),
      [`GET /v1/events/${id}`]: () => (acked ? apiError(404, "NOT_FOUND", "Event not found") : json(200, event({ event_id: id, payload: { order_id: 42, note: "<script>x</script>" } }))),
      [`GET /v1/events/${id}/status`]: () =>
        json(200, { event_id: id, status: acked ? "delivered" : "received", retry_count: 0, last_retry_at: null, delivered_at: null, acknowledged_at: acked ? new Date().toISOString() : null, attempts: [] }),
      [`DELETE /v1/events/${id}`]: () => {
        acked = true;
        return json(204, null);
      },
    });
    renderPage(<EventsPage />, { route: "/events/:eventId?", path: "/events" });
    await userEvent.click(await screen.findByRole("button", { name: "order.completed" }));
    const panel = within(await screen.findByRole("dialog"));
    const payload = await panel.findByTestId("event-payload");
    expect(payload).toHaveTextContent('"order_id": 42');
    expect(payload).toHaveTextContent('"<script>x</script>"'); // shown as text, never as markup
    expect(document.querySelector("script")).toBeNull();
    expect(panel.getByText("curl/8")).toBeInTheDocument();
    expect(panel.getByText(/no delivery attempts yet/i)).toBeInTheDocument();

    await userEvent.click(panel.getByRole("button", { name: "Acknowledge" }));
    expect(await panel.findByTestId("payload-deleted")).toBeInTheDocument();
    expect(api.calls("DELETE", `/v1/events/${id}`)[0]?.headers.get("X-CSRF-Token")).toBe("csrf-123");
    expect(await screen.findByText("Event acknowledged")).toBeInTheDocument();
    await waitFor(() => expect(panel.queryByRole("button", { name: "Acknowledge" })).not.toBeInTheDocument());
  });

  it("acknowledges a selection in one batch", async () => {
    const api = fakeApi({
      "GET /v1/auth/session": () => json(200, session),
      "GET /v1/events": () => page([event({ event_id: "a-1", event_type: "x.one" }), event({ event_id: "a-2", event_type: "x.two" })]),
      "GET /v1/openapi.json": () => openapi([]),
      "POST /v1/events/acknowledge/batch": (req) =>
        json(200, { results: (req.body as { event_ids: string[] }).event_ids.map((event_id) => ({ event_id, result: "acknowledged" })) }),
    });
    renderPage(<EventsPage />, { route: "/events/:eventId?", path: "/events" });
    await userEvent.click(await screen.findByRole("checkbox", { name: "Select all unacknowledged events" }));
    await userEvent.click(screen.getByRole("button", { name: "Acknowledge selected" }));
    expect(await screen.findByText("2 events acknowledged")).toBeInTheDocument();
    expect(api.calls("POST", "/v1/events/acknowledge/batch")[0]?.body).toEqual({ event_ids: ["a-1", "a-2"] });
  });

  it("offers replay only where the server has it, and replays failed events", async () => {
    const id = "0190f3a0-0000-7000-8000-00000000fail";
    const api = fakeApi({
      "GET /v1/auth/session": () => json(200, session),
      "GET /v1/events": () => page([event({ event_id: id, status: "failed", retry_count: 3 })]),
      "GET /v1/openapi.json": () => openapi(["/v1/events/{event_id}/replay", "/v1/events/replay"]),
      [`GET /v1/events/${id}`]: () => json(200, event({ event_id: id, status: "failed" })),
      [`GET /v1/events/${id}/status`]: () =>
        json(200, {
          event_id: id, status: "failed", retry_count: 3, last_retry_at: null, delivered_at: null, acknowledged_at: null,
          attempts: [{ started_at: new Date().toISOString(), duration_ms: 12, response_status: 503, error: null, response_body: "busy" }],
        }),
      [`POST /v1/events/${id}/replay`]: () => json(202, { event_id: id, status: "queued" }),
      "POST /v1/events/replay": () => json(202, { replayed: 4 }),
    });
    renderPage(<EventsPage />, { route: "/events/:eventId?", path: `/events/${id}` });
    const panel = within(await screen.findByRole("dialog"));
    expect(await panel.findByText("HTTP 503")).toBeInTheDocument();
    await userEvent.click(await panel.findByRole("button", { name: "Replay" }));
    expect(await screen.findByText("Event sent back to delivery")).toBeInTheDocument();
    expect(api.calls("POST", `/v1/events/${id}/replay`)).toHaveLength(1);

    await userEvent.click(panel.getByRole("button", { name: "Close" }));
    await userEvent.click(screen.getByRole("button", { name: "Replay failed" }));
    await userEvent.click(within(screen.getByRole("dialog")).getByRole("button", { name: "Replay failed events" }));
    expect(await screen.findByText("4 failed events sent back to delivery")).toBeInTheDocument();
  });

  it("shows one row per destination, each with its own attempts", async () => {
    const id = "0190f3a0-0000-7000-8000-0000000fan01";
    const sub = "0190f3a0-0000-7000-8000-00000000aaaa";
    const started = new Date().toISOString();
    fakeApi({
      "GET /v1/auth/session": () => json(200, session),
      "GET /v1/events": () => page([event({ event_id: id, status: "queued" })]),
      "GET /v1/openapi.json": () => openapi([]),
      [`GET /v1/events/${id}`]: () => json(200, event({ event_id: id, status: "queued" })),
      [`GET /v1/events/${id}/status`]: () =>
        json(200, {
          event_id: id, status: "queued", retry_count: 1, last_retry_at: null, delivered_at: null, acknowledged_at: null,
          attempts: [],
          deliveries: [
            { destination: "workflow", status: "delivered", retry_count: 0, delivered_at: started,
              attempts: [{ started_at: started, duration_ms: 3, response_status: 200, error: null, response_body: "", destination: "workflow" }] },
            { destination: sub, status: "pending", retry_count: 1, delivered_at: null,
              attempts: [
                { started_at: started, duration_ms: 5, response_status: 503, error: "http_503", response_body: "busy", destination: sub },
                { started_at: started, duration_ms: 5, response_status: 502, error: "http_502", response_body: "", destination: sub },
              ] },
          ],
        }),
    });
    renderPage(<EventsPage />, { route: "/events/:eventId?", path: `/events/${id}` });
    const panel = within(await screen.findByRole("dialog"));
    const rows = within(await panel.findByRole("list", { name: "Deliveries" }));
    const workflow = rows.getByText("Workflow URL").closest("li")!;
    expect(within(workflow).getByText("HTTP 200")).toBeInTheDocument();
    const subscriptionRow = rows.getByText(sub).closest("li")!;
    expect(within(subscriptionRow).getByText("pending")).toBeInTheDocument();
    expect(within(subscriptionRow).getByText("HTTP 503")).toBeInTheDocument();
    expect(within(subscriptionRow).getByText("HTTP 502")).toBeInTheDocument();
    expect(within(subscriptionRow).getByText("1 retries")).toBeInTheDocument();
  });
});
