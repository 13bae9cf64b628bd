import { config } from "@/config";

import { parseMetricsSummary } from "./metrics";
import type {
  AckBatchResult,
  ApiErrorBody,
  ApiEvent,
  ApiKey,
  CreatedApiKey,
  EventFilters,
  EventPage,
  EventStatusInfo,
  Health,
  KeyCreateInput,
  MetricsSummary,
  ReplayResult,
  Session,
} from "./types";

/**
 * The one door from the app to the Triggers API (architecture document, section 16.1): components
 * and hooks call these methods, never `fetch` or `EventSource` themselves.
 *
 * Authentication is the session cookie set by `POST /v1/auth/session` (`HttpOnly`, so no script
 * ever holds a credential). Mutating requests echo the `triggers_csrf` cookie in `X-CSRF-Token`.
 * A 401 triggers one refresh (`POST /v1/auth/refresh`, shared by concurrent callers) and one retry;
 * if that fails too the `ApiError` reaches the query cache, whose `onError` sends the user to login.
 */

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown>;
  readonly requestId: string;

  constructor(status: number, code: string, message: string, requestId = "", details: Record<string, unknown> = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.details = details;
  }
}

type QueryValue = string | number | boolean | null | undefined;
type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

interface RequestOptions {
  query?: Record<string, QueryValue>;
  body?: unknown;
  /** Try a session refresh on 401 (not for the auth routes themselves). */
  refreshOn401?: boolean;
}

export type StreamState = "connecting" | "open" | "unavailable";

export interface StreamHandlers {
  eventType?: string;
  onEvent: (event: ApiEvent) => void;
  onState: (state: StreamState) => void;
}

export interface ApiClientOptions {
  baseUrl?: string;
  fetch?: typeof fetch;
  EventSource?: typeof EventSource;
  readCookie?: (name: string) => string | null;
}

const CSRF_COOKIE = "triggers_csrf";

function documentCookie(name: string): string | null {
  if (typeof document === "undefined") return null;
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

function queryString(query: Record<string, QueryValue> | undefined): string {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

export class ApiClient {
  private readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;
  private readonly EventSourceImpl: typeof EventSource | undefined;
  private readonly readCookie: (name: string) => string | null;
  private refreshing: Promise<boolean> | null = null;

  constructor(options: ApiClientOptions = {}) {
    this.baseUrl = options.baseUrl ?? config.apiBase;
    this.fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
    this.EventSourceImpl = options.EventSource;
    this.readCookie = options.readCookie ?? documentCookie;
  }

  // -- transport ------------------------------------------------------------------------------

  async request<T>(method: HttpMethod, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.send(method, path, options);
    if (response.status === 401 && (options.refreshOn401 ?? true) && (await this.refreshSession())) {
      return this.parse<T>(await this.send(method, path, options));
    }
    return this.parse<T>(response);
  }

  private async send(method: HttpMethod, path: string, options: RequestOptions): Promise<Response> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") {
      const csrf = this.readCookie(CSRF_COOKIE);
      if (csrf) headers["X-CSRF-Token"] = csrf;
    }
    try {
      return await this.fetchImpl(`${this.baseUrl}${path}${queryString(options.query)}`, {
        method,
        headers,
        credentials: "same-origin",
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
      });
    } catch (cause) {
      throw new ApiError(0, "NETWORK_ERROR", cause instanceof Error ? cause.message : "Network error");
    }
  }

  private async parse<T>(response: Response): Promise<T> {
    const requestId = response.headers.get("x-request-id") ?? "";
    if (response.ok) {
      if (response.status === 204) return undefined as T;
      const text = await response.text();
      return (text ? JSON.parse(text) : undefined) as T;
    }
    let body: Partial<ApiErrorBody> | null = null;
    try {
      body = (await response.json()) as Partial<ApiErrorBody>;
    } catch {
      body = null;
    }
    const error = body?.error;
    throw new ApiError(
      response.status,
      error?.code ?? (response.status >= 500 ? "INTERNAL_ERROR" : `HTTP_${response.status}`),
      error?.message ?? response.statusText ?? "Request failed",
      error?.request_id ?? requestId,
      error?.details ?? {},
    );
  }

  /** One refresh at a time; every 401 waiting on it retries once if it worked. */
  private refreshSession(): Promise<boolean> {
    if (!this.refreshing) {
      this.refreshing = this.request<Session>("POST", "/v1/auth/refresh", { refreshOn401: false })
        .then(() => true)
        .catch(() => false)
        .finally(() => {
          this.refreshing = null;
        });
    }
    return this.refreshing;
  }

  // -- session --------------------------------------------------------------------------------

  login(apiKey: string): Promise<Session> {
    return this.request("POST", "/v1/auth/session", { body: { api_key: apiKey }, refreshOn401: false });
  }

  getSession(): Promise<Session> {
    return this.request("GET", "/v1/auth/session");
  }

  logout(): Promise<void> {
    return this.request("POST", "/v1/auth/logout", { refreshOn401: false });
  }

  // -- keys -----------------------------------------------------------------------------------

  async listKeys(): Promise<ApiKey[]> {
    const body = await this.request<{ keys: ApiKey[] }>("GET", "/v1/keys");
    return body.keys;
  }

  createKey(input: KeyCreateInput): Promise<CreatedApiKey> {
    return this.request("POST", "/v1/keys", { body: input });
  }

  revokeKey(keyId: string): Promise<void> {
    return this.request("DELETE", `/v1/keys/${encodeURIComponent(keyId)}`);
  }

  // -- events ---------------------------------------------------------------------------------

  listEvents(filters: EventFilters, cursor?: string | null, limit = 50): Promise<EventPage> {
    return this.request("GET", "/v1/events", { query: { ...filters, limit, offset: cursor ?? undefined } });
  }

  getEvent(eventId: string): Promise<ApiEvent> {
    return this.request("GET", `/v1/events/${encodeURIComponent(eventId)}`);
  }

  getEventStatus(eventId: string): Promise<EventStatusInfo> {
    return this.request("GET", `/v1/events/${encodeURIComponent(eventId)}/status`);
  }

  acknowledgeEvent(eventId: string): Promise<void> {
    return this.request("DELETE", `/v1/events/${encodeURIComponent(eventId)}`);
  }

  acknowledgeEvents(eventIds: string[]): Promise<AckBatchResult> {
    return this.request("POST", "/v1/events/acknowledge/batch", { body: { event_ids: eventIds } });
  }

  replayEvent(eventId: string): Promise<unknown> {
    return this.request("POST", `/v1/events/${encodeURIComponent(eventId)}/replay`);
  }

  async replayFailedEvents(filters: Omit<EventFilters, "status">): Promise<ReplayResult> {
    const body = await this.request<Record<string, unknown>>("POST", "/v1/events/replay", {
      body: Object.fromEntries(Object.entries(filters).filter(([, v]) => v !== undefined && v !== "")),
    });
    const count = body.replayed ?? body.replayed_count ?? body.count;
    return { replayed: typeof count === "number" ? count : 0 };
  }

  // -- metrics, health, capabilities ----------------------------------------------------------

  async getMetricsSummary(): Promise<MetricsSummary> {
    return parseMetricsSummary(await this.request<unknown>("GET", "/v1/metrics/summary"));
  }

  getHealth(): Promise<Health> {
    return this.request("GET", "/v1/health");
  }

  /** The API's paths from its OpenAPI document: which optional parts (replay, stream) are served. */
  async listApiPaths(): Promise<string[]> {
    const body = await this.request<{ paths?: Record<string, unknown> }>("GET", "/v1/openapi.json");
    return Object.keys(body.paths ?? {});
  }

  // -- live stream ----------------------------------------------------------------------------

  /**
   * Subscribe to `GET /v1/inbox/stream` (Server-Sent Events; the cookie authenticates it).
   * Reports "unavailable" when the server refuses or lacks the stream, so callers fall back to
   * polling. Returns a function that closes the stream.
   */
  openEventStream({ eventType, onEvent, onState }: StreamHandlers): () => void {
    const Impl = this.EventSourceImpl ?? globalThis.EventSource;
    if (!Impl) {
      onState("unavailable");
      return () => undefined;
    }
    const source = new Impl(
      `${this.baseUrl}/v1/inbox/stream${queryString({ event_type: eventType })}`,
      { withCredentials: true },
    );
    onState("connecting");
    source.onopen = () => onState("open");
    source.onerror = () => {
      // CLOSED: the server answered with an error (404 while the stream is not deployed, 401);
      // CONNECTING: the browser is retrying by itself. Either way, poll until it is open again.
      onState("unavailable");
    };
    source.onmessage = (message: MessageEvent<string>) => {
      try {
        const parsed = JSON.parse(message.data) as ApiEvent;
        if (parsed && typeof parsed.event_id === "string") onEvent(parsed);
      } catch {
        // A heartbeat or an unexpected frame: nothing to show.
      }
    };
    return () => source.close();
  }
}

export const apiClient = new ApiClient();
