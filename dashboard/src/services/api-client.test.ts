import { describe, expect, it, vi } from "vitest";

import { apiError, fakeApi, json, session } from "@/test/fake-api";

import { ApiClient, ApiError } from "./api-client";

function client(extra: ConstructorParameters<typeof ApiClient>[0] = {}) {
  return new ApiClient({ baseUrl: "", readCookie: (name) => (name === "triggers_csrf" ? "csrf-123" : null), ...extra });
}

describe("ApiClient", () => {
  it("turns the API's error body into an ApiError carrying code, message and request id", async () => {
    fakeApi({ "GET /v1/keys": () => apiError(429, "RATE_LIMIT_EXCEEDED", "Rate limit of 10 exceeded", "req-abc") });
    const error = await client().listKeys().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 429, code: "RATE_LIMIT_EXCEEDED", requestId: "req-abc" });
  });

  it("sends the CSRF cookie's value on mutations only, and JSON bodies", async () => {
    const api = fakeApi({
      "GET /v1/keys": () => json(200, { keys: [] }),
      "POST /v1/keys": () => json(201, { key_id: "k", api_key: "tk_x" }),
      "DELETE /v1/keys/k%201": () => json(204, null),
    });
    const c = client();
    await c.listKeys();
    await c.createKey({ name: "ci", scopes: ["events:write"] });
    await c.revokeKey("k 1");
    const [get, post, del] = api.requests;
    expect(get?.headers.get("X-CSRF-Token")).toBeNull();
    expect(post?.headers.get("X-CSRF-Token")).toBe("csrf-123");
    expect(post?.headers.get("Content-Type")).toBe("application/json");
    expect(post?.body).toEqual({ name: "ci", scopes: ["events:write"] });
    expect(del?.headers.get("X-CSRF-Token")).toBe("csrf-123");
    expect(del?.path).toBe("/v1/keys/k%201");
  });

  it("refreshes the session once on 401 and retries, sharing one refresh between callers", async () => {
    let refreshed = false;
    const api = fakeApi({
      "GET /v1/keys": () => (refreshed ? json(200, { keys: [] }) : apiError(401, "UNAUTHORIZED", "expired")),
      "GET /v1/events": () =>
        refreshed ? json(200, { events: [], pagination: { limit: 50, offset: null, has_more: false } }) : apiError(401, "UNAUTHORIZED", "expired"),
      "POST /v1/auth/refresh": () => {
        refreshed = true;
        return json(200, session);
      },
    });
    const c = client();
    await Promise.all([c.listKeys(), c.listEvents({})]);
    expect(api.calls("POST", "/v1/auth/refresh")).toHaveLength(1);
    expect(api.calls("GET", "/v1/keys")).toHaveLength(2);
  });

  it("gives up with the original 401 when the refresh fails too", async () => {
    const api = fakeApi({
      "GET /v1/keys": () => apiError(401, "UNAUTHORIZED", "expired", "req-401"),
      "POST /v1/auth/refresh": () => apiError(401, "UNAUTHORIZED", "Session expired", "req-r"),
    });
    await expect(client().listKeys()).rejects.toMatchObject({ status: 401, requestId: "req-401" });
    expect(api.calls("GET", "/v1/keys")).toHaveLength(1);
  });

  it("never tries a refresh for a failed login", async () => {
    const api = fakeApi({ "POST /v1/auth/session": () => apiError(401, "UNAUTHORIZED", "bad key") });
    await expect(client().login("tk_wrong")).rejects.toMatchObject({ status: 401 });
    expect(api.calls("POST", "/v1/auth/refresh")).toHaveLength(0);
  });

  it("reports a network failure as NETWORK_ERROR", async () => {
    vi.stubGlobal("fetch", vi.fn().mockRejectedValue(new TypeError("Failed to fetch")));
    await expect(client().getHealth()).rejects.toMatchObject({ status: 0, code: "NETWORK_ERROR" });
  });

  it("passes filters and the cursor as query parameters, skipping empty ones", async () => {
    const api = fakeApi({ "GET /v1/events": () => json(200, { events: [], pagination: { limit: 50, offset: null, has_more: false } }) });
    await client().listEvents({ event_type: "order.completed", status: undefined }, "cursor-1", 20);
    const q = api.requests[0]?.query;
    expect(q?.get("event_type")).toBe("order.completed");
    expect(q?.get("offset")).toBe("cursor-1");
    expect(q?.get("limit")).toBe("20");
    expect(q?.has("status")).toBe(false);
  });

  it("reads the replay count whatever the worker calls it", async () => {
    fakeApi({ "POST /v1/events/replay": () => json(202, { replayed_count: 3 }) });
    await expect(client().replayFailedEvents({ event_type: "a.b", from_timestamp: undefined })).resolves.toEqual({ replayed: 3 });
  });

  it("opens the event stream with the filter and reports when it is unavailable", () => {
    const instances: FakeSource[] = [];
    class FakeSource {
      onopen: (() => void) | null = null;
      onerror: (() => void) | null = null;
      onmessage: ((m: MessageEvent<string>) => void) | null = null;
      closed = false;
      constructor(readonly url: string) {
        instances.push(this);
      }
      close() {
        this.closed = true;
      }
    }
    const states: string[] = [];
    const events: string[] = [];
    const close = client({ EventSource: FakeSource as unknown as typeof EventSource }).openEventStream({
      eventType: "user.created",
      onEvent: (e) => events.push(e.event_id),
      onState: (s) => states.push(s),
    });
    const source = instances[0]!;
    expect(source.url).toBe("/v1/inbox/stream?event_type=user.created");
    source.onopen?.();
    source.onmessage?.({ data: JSON.stringify({ event_id: "e1" }) } as MessageEvent<string>);
    source.onmessage?.({ data: "not json" } as MessageEvent<string>);
    source.onerror?.();
    expect(states).toEqual(["connecting", "open", "unavailable"]);
    expect(events).toEqual(["e1"]);
    close();
    expect(source.closed).toBe(true);
  });
});
