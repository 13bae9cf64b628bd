import { describe, expect, it } from "vitest";

import { parseMetricsSummary } from "./metrics";

describe("parseMetricsSummary", () => {
  it("reads the documented figures", () => {
    const m = parseMetricsSummary({
      events_per_minute: [
        { minute: "2026-01-01T10:00:00Z", count: 3 },
        { minute: "2026-01-01T10:01:00Z", count: 5 },
      ],
      delivery_success_rate: 0.98,
      queue_depth: 7,
      dead_letter_depth: 2,
      p95_ingest_latency_ms: 4.2,
    });
    expect(m).toEqual({
      eventsPerMinute: [
        { minute: "2026-01-01T10:00:00Z", count: 3 },
        { minute: "2026-01-01T10:01:00Z", count: 5 },
      ],
      deliverySuccessRate: 0.98,
      queueDepth: 7,
      deadLetterDepth: 2,
      p95IngestLatencyMs: 4.2,
      totalEventsLastHour: 8,
      deliveryAttempts: null,
      deliveredCount: null,
      circuit: null,
    });
  });

  it("reads the delivery worker's summary (GET /v1/metrics/summary as served)", () => {
    const m = parseMetricsSummary({
      window_seconds: 3600,
      generated_at: "2026-01-01T10:30:00.000000Z",
      events_per_minute: [{ minute: "2026-01-01T10:29:00.000000Z", count: 4 }],
      events_last_hour: 4,
      delivery: { attempts: 8, delivered: 6, success_rate: 0.75 },
      queue_depth: 2,
      dead_letter_depth: 1,
      ingest_latency_p95_ms: 3.5,
      circuit: { state: "open", consecutive_failures: 5, opened_count: 1, reopens_in_seconds: 12.5 },
    });
    expect(m).toMatchObject({
      deliverySuccessRate: 0.75,
      deliveryAttempts: 8,
      deliveredCount: 6,
      queueDepth: 2,
      deadLetterDepth: 1,
      p95IngestLatencyMs: 3.5,
      totalEventsLastHour: 4,
      circuit: { state: "open", reopensInSeconds: 12.5 },
    });
  });

  it("accepts percentages, seconds, epoch buckets and nested series", () => {
    const m = parseMetricsSummary({
      events_per_minute: { series: [{ timestamp: 1_767_261_600, events: 2 }] },
      success_rate: 95,
      p95_ingest_latency_seconds: 0.012,
      events_last_hour: 40,
    });
    expect(m.deliverySuccessRate).toBeCloseTo(0.95);
    expect(m.p95IngestLatencyMs).toBeCloseTo(12);
    expect(m.eventsPerMinute).toEqual([{ minute: new Date(1_767_261_600_000).toISOString(), count: 2 }]);
    expect(m.totalEventsLastHour).toBe(40);
  });

  it("shows unknown or missing figures as null rather than inventing them", () => {
    const m = parseMetricsSummary({ delivery_success_rate: null, queue_depth: "n/a" });
    expect(m.deliverySuccessRate).toBeNull();
    expect(m.queueDepth).toBeNull();
    expect(m.eventsPerMinute).toEqual([]);
    expect(parseMetricsSummary("garbage").totalEventsLastHour).toBe(0);
  });
});
