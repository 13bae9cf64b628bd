import { screen } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";

import { apiError, event, fakeApi, json, session } from "@/test/fake-api";
import { renderPage } from "@/test/render";

import { OverviewPage } from "./OverviewPage";

const health = { status: "healthy", timestamp: "", version: "0.1.0", checks: { database: "ok" } };

describe("OverviewPage", () => {
  it("shows the delivery figures from /v1/metrics/summary", async () => {
    vi.stubGlobal(
      "ResizeObserver",
      class {
        observe() {}
        unobserve() {}
        disconnect() {}
      },
    );
    const minute = new Date();
    minute.setSeconds(0, 0);
    fakeApi({
      "GET /v1/auth/session": () => json(200, session),
      "GET /v1/health": () => json(200, health),
      "GET /v1/events": () => json(200, { events: [event()], pagination: { limit: 8, offset: null, has_more: false } }),
      "GET /v1/metrics/summary": () =>
        json(200, {
          events_per_minute: [{ minute: minute.toISOString(), count: 12 }],
          delivery_success_rate: 0.875,
          queue_depth: 3,
          dead_letter_depth: 1,
          p95_ingest_latency_ms: 4.25,
        }),
    });
    renderPage(<OverviewPage />);
    expect(await screen.findByTestId("metric-success-rate")).toHaveTextContent("87.5%");
    expect(screen.getByTestId("metric-queue-depth")).toHaveTextContent("3");
    expect(screen.getByTestId("metric-dead-letters")).toHaveTextContent("1");
    expect(screen.getByTestId("metric-p95")).toHaveTextContent("4.25 ms");
    expect(screen.getByTestId("events-last-hour")).toHaveTextContent("12");
    expect(await screen.findByTestId("events-per-minute-chart")).toBeInTheDocument();
    expect(screen.getByText("Service healthy")).toBeInTheDocument();
    expect(await screen.findByText("order.completed")).toBeInTheDocument();
  });

  it("explains missing metrics instead of failing, and still lists recent events", async () => {
    fakeApi({
      "GET /v1/auth/session": () => json(200, session),
      "GET /v1/health": () => json(200, health),
      "GET /v1/events": () => json(200, { events: [], pagination: { limit: 8, offset: null, has_more: false } }),
      "GET /v1/metrics/summary": () => apiError(404, "NOT_FOUND", "No such route"),
    });
    renderPage(<OverviewPage />);
    expect(await screen.findByText("Delivery metrics are not available on this server")).toBeInTheDocument();
    expect(screen.getByTestId("metric-queue-depth")).toHaveTextContent("—");
    expect(await screen.findByText("No events yet")).toBeInTheDocument();
    expect(screen.queryByRole("alert", { name: /error/i })).toBeNull();
  });
});
