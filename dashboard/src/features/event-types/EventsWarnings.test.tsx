import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

import { EventsPage } from "@/features/events/EventsPage";
import { event, fakeApi, json, session } from "@/test/fake-api";
import { FakeEventSource } from "@/test/fake-event-source";
import { renderPage } from "@/test/render";

const violations = [
  { path: "/payload/amount", message: "-5 is less than the minimum of 0" },
  { path: "/payload/email", message: '"x" is not a "email"' },
];
const warned = event({
  event_id: "0190f3a0-0000-7000-8000-0000000000aa",
  event_type: "order.completed",
  metadata: { source_ip: "127.0.0.1", api_version: "v1", correlation_id: "c", schema_version: 3, schema_violations: violations },
});
const clean = event({
  event_id: "0190f3a0-0000-7000-8000-0000000000bb",
  event_type: "user.created",
  metadata: { source_ip: "127.0.0.1", api_version: "v1", correlation_id: "d", schema_version: 1 },
});

beforeEach(() => {
  FakeEventSource.instances = [];
  vi.stubGlobal("EventSource", FakeEventSource);
});

describe("events stored with schema warnings", () => {
  it("are marked in the events table and their violations shown in the detail panel", async () => {
    fakeApi({
      "GET /v1/auth/session": () => json(200, session),
      "GET /v1/events": () => json(200, { events: [warned, clean], pagination: { limit: 50, offset: null, has_more: false } }),
      [`GET /v1/events/${warned.event_id}`]: () => json(200, warned),
      [`GET /v1/events/${warned.event_id}/status`]: () =>
        json(200, { event_id: warned.event_id, status: "received", retry_count: 0, attempts: [] }),
      "GET /v1/openapi.json": () => json(200, { paths: {} }),
    });
    renderPage(<EventsPage />, { route: "/events/:eventId?", path: "/events" });
    const row = (await screen.findByText("order.completed")).closest("tr")!;
    expect(within(row).getByTestId("schema-warning")).toHaveAccessibleName("2 schema violations");
    expect(within(screen.getByText("user.created").closest("tr")!).queryByTestId("schema-warning")).toBeNull();

    await userEvent.click(screen.getByText("order.completed"));
    const panel = await screen.findByRole("dialog");
    const shown = await within(panel).findByTestId("schema-violations");
    expect(shown).toHaveTextContent("/payload/amount");
    expect(shown).toHaveTextContent("-5 is less than the minimum of 0");
    expect(within(panel).getByText("v3")).toBeInTheDocument();
  });
});
