import { vi } from "vitest";

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Headers;
  body: unknown;
}

type Handler = (request: RecordedRequest) => Response | Promise<Response>;

/** JSON response with the API's headers (every answer carries X-Request-ID). */
export function json(status: number, body: unknown, requestId = "req-test-1"): Response {
  return new Response(status === 204 ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", "X-Request-ID": requestId },
  });
}

export function apiError(status: number, code: string, message: string, requestId = "req-err-42"): Response {
  return json(
    status,
    { error: { code, message, details: {}, timestamp: new Date().toISOString(), request_id: requestId } },
    requestId,
  );
}

/**
 * Replaces `fetch` for one test with a routing table ("GET /v1/keys" -> handler): the app's real
 * client, hooks and components run, only the network is scripted. Unrouted calls answer 404 the
 * way the service does, so a missing route shows up as a visible failure rather than a hang.
 */
export function fakeApi(routes: Record<string, Handler>) {
  const requests: RecordedRequest[] = [];
  const fetchMock = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(String(input), "http://dashboard.test");
    const request: RecordedRequest = {
      method: (init?.method ?? "GET").toUpperCase(),
      path: url.pathname,
      query: url.searchParams,
      headers: new Headers(init?.headers),
      body: typeof init?.body === "string" ? JSON.parse(init.body) : undefined,
    };
    requests.push(request);
    const handler = routes[`${request.method} ${request.path}`];
    return handler ? handler(request) : apiError(404, "NOT_FOUND", "No such route");
  });
  vi.stubGlobal("fetch", fetchMock);
  return { requests, fetchMock, calls: (method: string, path: string) => requests.filter((r) => r.method === method && r.path === path) };
}

export const session = {
  user_id: "alice",
  key_id: "11111111-1111-4111-8111-111111111111",
  key_name: "bootstrap",
  key_prefix: "tk_abcdefg",
  scopes: ["events:write", "events:read", "keys:manage"],
  expires_at: "2030-01-01T00:00:00Z",
  refresh_expires_at: "2030-01-07T00:00:00Z",
  csrf_token: "csrf-123",
};

export function apiKey(overrides: Record<string, unknown> = {}) {
  return {
    key_id: "22222222-2222-4222-8222-222222222222",
    user_id: "alice",
    name: "billing",
    key_prefix: "tk_zyxwvut",
    created_at: "2026-01-01T00:00:00.000000Z",
    last_used_at: null,
    expires_at: null,
    rate_limit: 1000,
    is_active: true,
    scopes: ["events:write"],
    revoked_at: null,
    ...overrides,
  };
}

export function event(overrides: Record<string, unknown> = {}) {
  return {
    event_id: "0190f3a0-0000-7000-8000-000000000001",
    user_id: "alice",
    event_type: "order.completed",
    payload: { order_id: 42, total: 99.5 },
    status: "received",
    timestamp: new Date().toISOString(),
    ttl: Math.floor(Date.now() / 1000) + 86400,
    retry_count: 0,
    last_retry_at: null,
    delivered_at: null,
    acknowledged_at: null,
    metadata: { source_ip: "127.0.0.1", api_version: "v1", correlation_id: "corr-1", user_agent: "curl/8" },
    ...overrides,
  };
}
