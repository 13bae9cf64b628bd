import { apiClient } from "@/services/api-client";

import type { EventType, EventTypePut, EventTypeVersion, InferResult, JsonSchema, ValidateResult } from "./types";

const path = (name: string) => `/v1/event-types/${encodeURIComponent(name)}`;

/** The catalog's calls, through the app's one API client (cookies, CSRF, refresh on 401). */
export const eventTypesApi = {
  async list(): Promise<EventType[]> {
    return (await apiClient.request<{ event_types: EventType[] }>("GET", "/v1/event-types")).event_types;
  },
  get: (name: string) => apiClient.request<EventType>("GET", path(name)),
  put: (name: string, body: EventTypePut) => apiClient.request<EventType>("PUT", path(name), { body }),
  remove: (name: string) => apiClient.request<void>("DELETE", path(name)),
  async versions(name: string): Promise<EventTypeVersion[]> {
    return (await apiClient.request<{ versions: EventTypeVersion[] }>("GET", `${path(name)}/versions`)).versions;
  },
  infer: (name: string) => apiClient.request<InferResult>("POST", `${path(name)}/infer`),
  /** A dry run: against `schema` when given (a draft in the editor), else the registered one. */
  validate: (name: string, payload: unknown, schema?: JsonSchema) =>
    apiClient.request<ValidateResult>("POST", `${path(name)}/validate`, {
      body: schema === undefined ? { payload } : { payload, schema },
    }),
};
