import { EVENT_STATUSES, type EventFilters, type EventStatus } from "@/services/types";

/** The filter bar's state, kept in the URL so a filtered view can be shared and survives reloads. */
export interface EventsView {
  eventType: string;
  status: EventStatus | "";
  range: TimeRange;
  from: string; // datetime-local value, for range "custom"
  to: string;
}

export const TIME_RANGES = [
  { value: "all", label: "Any time" },
  { value: "15m", label: "Last 15 minutes" },
  { value: "1h", label: "Last hour" },
  { value: "24h", label: "Last 24 hours" },
  { value: "7d", label: "Last 7 days" },
  { value: "custom", label: "Custom range…" },
] as const;

export type TimeRange = (typeof TIME_RANGES)[number]["value"];

const RANGE_MS: Record<Exclude<TimeRange, "all" | "custom">, number> = {
  "15m": 15 * 60_000,
  "1h": 3_600_000,
  "24h": 86_400_000,
  "7d": 7 * 86_400_000,
};

export const EVENT_TYPE_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

export function viewFromParams(params: URLSearchParams): EventsView {
  const status = params.get("status") ?? "";
  const range = params.get("range") ?? "all";
  return {
    eventType: params.get("type") ?? "",
    status: (EVENT_STATUSES as readonly string[]).includes(status) ? (status as EventStatus) : "",
    range: TIME_RANGES.some((r) => r.value === range) ? (range as TimeRange) : "all",
    from: params.get("from") ?? "",
    to: params.get("to") ?? "",
  };
}

export function paramsFromView(view: EventsView): URLSearchParams {
  const params = new URLSearchParams();
  if (view.eventType) params.set("type", view.eventType);
  if (view.status) params.set("status", view.status);
  if (view.range !== "all") params.set("range", view.range);
  if (view.range === "custom") {
    if (view.from) params.set("from", view.from);
    if (view.to) params.set("to", view.to);
  }
  return params;
}

function localToIso(value: string): string | undefined {
  if (!value) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** The API filters for a view, with relative ranges resolved against `now` (at fetch time). */
export function apiFilters(view: EventsView, now: number = Date.now()): EventFilters {
  const filters: EventFilters = {};
  if (view.eventType && EVENT_TYPE_PATTERN.test(view.eventType)) filters.event_type = view.eventType;
  if (view.status) filters.status = view.status;
  if (view.range === "custom") {
    filters.from_timestamp = localToIso(view.from);
    filters.to_timestamp = localToIso(view.to);
  } else if (view.range !== "all") {
    filters.from_timestamp = new Date(now - RANGE_MS[view.range]).toISOString();
  }
  return filters;
}
