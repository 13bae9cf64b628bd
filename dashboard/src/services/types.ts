/** Wire types of the Triggers API (document sections 3 and 4; the served /v1/openapi.json). */

export type Scope = "events:write" | "events:read" | "keys:manage" | "subscriptions:manage";
export const ALL_SCOPES: readonly Scope[] = ["events:write", "events:read", "keys:manage", "subscriptions:manage"];
export const DEFAULT_SCOPES: readonly Scope[] = ["events:write", "events:read"];

export type EventStatus = "received" | "queued" | "delivered" | "failed";
export const EVENT_STATUSES: readonly EventStatus[] = ["received", "queued", "delivered", "failed"];

export interface ApiErrorBody {
  error: {
    code: string;
    message: string;
    details?: Record<string, unknown>;
    timestamp: string;
    request_id: string;
  };
}

export interface Session {
  user_id: string;
  key_id: string;
  key_name: string;
  key_prefix: string;
  scopes: string[];
  expires_at: string;
  refresh_expires_at: string;
  csrf_token: string;
}

export interface ApiKey {
  key_id: string;
  user_id: string;
  name: string;
  key_prefix: string;
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
  rate_limit: number;
  is_active: boolean;
  scopes: string[];
  revoked_at: string | null;
}

export interface CreatedApiKey extends ApiKey {
  /** The plaintext key: in this response only. */
  api_key: string;
}

export interface KeyCreateInput {
  name: string;
  scopes: Scope[];
  rate_limit?: number;
  expires_at?: string;
}

export interface EventMetadata {
  source_ip?: string | null;
  api_version: string;
  correlation_id: string;
  user_agent?: string | null;
}

export interface ApiEvent {
  event_id: string;
  user_id: string;
  event_type: string;
  /** Null once acknowledged: payloads are deleted then. */
  payload: Record<string, unknown> | null;
  status: EventStatus;
  timestamp: string;
  ttl: number;
  retry_count: number;
  last_retry_at?: string | null;
  delivered_at?: string | null;
  acknowledged_at?: string | null;
  metadata: EventMetadata;
}

export interface Pagination {
  limit: number;
  offset: string | null;
  has_more: boolean;
}

export interface EventPage {
  events: ApiEvent[];
  pagination: Pagination;
}

export interface EventFilters {
  event_type?: string;
  status?: EventStatus;
  from_timestamp?: string;
  to_timestamp?: string;
}

export interface DeliveryAttempt {
  [field: string]: unknown;
}

export interface EventStatusInfo {
  event_id: string;
  status: EventStatus;
  retry_count: number;
  last_retry_at: string | null;
  delivered_at: string | null;
  acknowledged_at: string | null;
  attempts: DeliveryAttempt[];
  /** One entry per destination ("workflow" or a subscription id), each with its own attempts. */
  deliveries?: DestinationDelivery[];
}

export interface DestinationDelivery {
  destination: string;
  status: "pending" | "delivered" | "failed" | "cancelled";
  retry_count: number;
  delivered_at: string | null;
  attempts: DeliveryAttempt[];
}

export interface AckBatchResult {
  results: { event_id: string; result: "acknowledged" | "already_acknowledged" | "not_found" }[];
}

export interface ReplayResult {
  /** How many failed events were put back into delivery. */
  replayed: number;
}

export interface Health {
  status: "healthy" | "unhealthy";
  timestamp: string;
  version: string;
  checks: Record<string, unknown>;
}

export interface MinuteCount {
  /** ISO 8601 start of the minute. */
  minute: string;
  count: number;
}

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
