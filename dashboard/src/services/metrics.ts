import type { MetricsSummary, MinuteCount } from "./types";

/**
 * Parse `GET /v1/metrics/summary` where it enters the app. The delivery worker owns that endpoint;
 * this accepts its documented figures (events per minute over the last hour, delivery success
 * rate, queue depth, dead-letter depth, p95 ingest latency) under the usual spellings, so a
 * renamed field shows as "—" instead of breaking the page.
 */
export function parseMetricsSummary(raw: unknown): MetricsSummary {
  const root = asRecord(raw);
  const perMinuteRaw = pick(root, ["events_per_minute", "eventsPerMinute", "per_minute", "ingest_per_minute"]);
  const eventsPerMinute = parseSeries(perMinuteRaw);
  const total =
    num(pick(root, ["events_last_hour", "total_events_last_hour", "events_total"])) ??
    eventsPerMinute.reduce((sum, p) => sum + p.count, 0);
  const delivery = asRecord(pick(root, ["delivery"]));
  let rate = num(pick(root, ["delivery_success_rate", "success_rate", "deliverySuccessRate"])) ?? num(pick(delivery, ["success_rate"]));
  if (rate !== null && rate > 1) rate = rate / 100; // a percentage
  const latency = pick(root, ["p95_ingest_latency_ms", "ingest_latency_p95_ms", "p95_latency_ms"]);
  let p95 = num(latency);
  if (p95 === null) {
    const seconds = num(pick(root, ["p95_ingest_latency_seconds", "p95_ingest_latency_s", "p95_ingest_latency"]));
    p95 = seconds === null ? null : seconds * 1000;
  }
  return {
    eventsPerMinute,
    deliverySuccessRate: rate,
    queueDepth: num(pick(root, ["queue_depth", "queueDepth", "pending"])),
    deadLetterDepth: num(pick(root, ["dead_letter_depth", "deadLetterDepth", "dead_letters", "failed"])),
    p95IngestLatencyMs: p95,
    totalEventsLastHour: total,
    deliveryAttempts: num(pick(delivery, ["attempts"])),
    deliveredCount: num(pick(delivery, ["delivered"])),
    circuit: parseCircuit(pick(root, ["circuit"])),
  };
}

function parseCircuit(value: unknown): MetricsSummary["circuit"] {
  const rec = asRecord(value);
  const state = pick(rec, ["state"]);
  if (typeof state !== "string") return null;
  return { state, reopensInSeconds: num(pick(rec, ["reopens_in_seconds"])) };
}

function parseSeries(value: unknown): MinuteCount[] {
  if (Array.isArray(value)) {
    return value.flatMap((item, index): MinuteCount[] => {
      if (typeof item === "number") {
        return [{ minute: minuteAgo(value.length - 1 - index), count: item }];
      }
      const rec = asRecord(item);
      const when = pick(rec, ["minute", "timestamp", "time", "start", "t", "bucket"]);
      const count = num(pick(rec, ["count", "events", "value", "n"]));
      if (count === null) return [];
      const minute = typeof when === "string" ? when : typeof when === "number" ? toIso(when) : minuteAgo(value.length - 1 - index);
      return [{ minute, count }];
    });
  }
  const rec = asRecord(value);
  const series = pick(rec, ["series", "points", "data", "buckets"]);
  return series === undefined ? [] : parseSeries(series);
}

function toIso(epoch: number): string {
  return new Date(epoch > 1e12 ? epoch : epoch * 1000).toISOString();
}

function minuteAgo(n: number): string {
  const now = new Date();
  now.setSeconds(0, 0);
  return new Date(now.getTime() - n * 60_000).toISOString();
}

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function pick(record: Record<string, unknown>, names: string[]): unknown {
  for (const name of names) {
    if (name in record) return record[name];
  }
  return undefined;
}

function num(value: unknown): number | null {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if (typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value))) return Number(value);
  return null;
}
