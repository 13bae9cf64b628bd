/**
 * Wire types of the Triggers API. Those the server declares come from the types generated from
 * its OpenAPI (packages/shared-types, `make types`), so they cannot drift from the contract; only
 * UI-side shapes (filters, the normalised metrics summary) are written here.
 */
import type { components } from "../../../packages/shared-types/api";

type Schemas = components["schemas"];

export type Scope = NonNullable<Schemas["KeyCreate"]["scopes"]>[number];
export const ALL_SCOPES: readonly Scope[] = [
  "events:write",
  "events:read",
  "keys:manage",
  "event_types:manage",
  "subscriptions:manage",
];
export const DEFAULT_SCOPES: readonly Scope[] = ["events:write", "events:read"];

export type EventStatus = Schemas["Event"]["status"];
export const EVENT_STATUSES: readonly EventStatus[] = ["received", "queued", "delivered", "failed"];

export type ApiErrorBody = Schemas["ErrorResponse"];
export type Session = Schemas["SessionInfo"];
export type ApiKey = Schemas["ApiKey"];
/** `api_key` (the plaintext) is in the create answer only. */
export type CreatedApiKey = Schemas["CreatedApiKey"];
export type KeyCreateInput = Schemas["KeyCreate"];
export type EventMetadata = Schemas["EventMetadata"];
/** An event as listed (payload null once acknowledged: payloads are deleted then). */
export type ApiEvent = Schemas["EventSummary"];
export type Pagination = Schemas["Pagination"];
export type EventPage = Schemas["EventList"];

export interface EventFilters {
  event_type?: string;
  status?: EventStatus;
  from_timestamp?: string;
  to_timestamp?: string;
}

export type EventStatusInfo = Schemas["EventStatusResponse"];
export type DeliveryAttempt = NonNullable<EventStatusInfo["attempts"]>[number];
/** One destination of an event ("workflow" or a subscription id) with its own attempts. */
export type DestinationDelivery = NonNullable<EventStatusInfo["deliveries"]>[number];
export type AckBatchResult = Schemas["AckBatchResponse"];
/** How many failed events were put back into delivery. */
export type ReplayResult = Schemas["ReplayCount"];
export type Health = Schemas["Health"];
export type MinuteCount = Schemas["MinuteCount"];

/** `GET /v1/metrics/summary`, normalised (see metrics.ts) so the page never guesses field names. */
export interface MetricsSummary {
  eventsPerMinute: MinuteCount[];
  /** 0..1, null when nothing was delivered or attempted yet. */
  deliverySuccessRate: number | null;
  queueDepth: number | null;
  deadLetterDepth: number | null;
  p95IngestLatencyMs: number | null;
  totalEventsLastHour: number;
  /** Push attempts and successes over the window (null when the server does not say). */
  deliveryAttempts: number | null;
  deliveredCount: number | null;
  /** The push worker's circuit breaker: "closed", "open" or "half_open"; null without a worker. */
  circuit: { state: string; reopensInSeconds: number | null } | null;
}
