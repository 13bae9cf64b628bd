import { queryOptions } from "@tanstack/react-query";

import { config } from "@/config";
import { apiClient } from "@/services/api-client";

export const metricsQuery = queryOptions({
  queryKey: ["metrics", "summary"],
  queryFn: () => apiClient.getMetricsSummary(),
  refetchInterval: config.metricsRefreshMs,
  // A 404 means this server has no delivery worker metrics yet: the page explains that, no toast.
  meta: { silent: true },
});

export const healthQuery = queryOptions({
  queryKey: ["health"],
  queryFn: () => apiClient.getHealth(),
  refetchInterval: 30_000,
  meta: { silent: true },
});

export const recentEventsQuery = queryOptions({
  queryKey: ["events", "recent"],
  queryFn: () => apiClient.listEvents({}, null, 8),
  refetchInterval: config.pollIntervalMs * 2,
  meta: { silent: true },
});
