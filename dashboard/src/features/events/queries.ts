import { infiniteQueryOptions, queryOptions, useMutation, useQueryClient } from "@tanstack/react-query";

import { apiClient } from "@/services/api-client";
import type { EventFilters } from "@/services/types";

import { apiFilters, type EventsView } from "./filters";

export const eventKeys = {
  all: ["events"] as const,
  list: (view: EventsView) => ["events", "list", view] as const,
  detail: (id: string) => ["events", "detail", id] as const,
  status: (id: string) => ["events", "status", id] as const,
};

export const PAGE_SIZE = 50;

export function eventsListQuery(view: EventsView, refetchInterval: number | false) {
  return infiniteQueryOptions({
    queryKey: eventKeys.list(view),
    // Relative ranges ("last hour") are resolved when fetching, so polling keeps the window moving.
    queryFn: ({ pageParam }) => apiClient.listEvents(apiFilters(view), pageParam, PAGE_SIZE),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => (last.pagination.has_more ? last.pagination.offset : null),
    refetchInterval,
  });
}

export function eventQuery(id: string) {
  return queryOptions({
    queryKey: eventKeys.detail(id),
    queryFn: () => apiClient.getEvent(id),
    meta: { silent: true },
  });
}

export function eventStatusQuery(id: string) {
  return queryOptions({
    queryKey: eventKeys.status(id),
    queryFn: () => apiClient.getEventStatus(id),
    refetchInterval: 5000,
    meta: { silent: true },
  });
}

/** Which optional endpoints this server has (the delivery worker adds replay and the stream). */
export const apiPathsQuery = queryOptions({
  queryKey: ["api-paths"],
  queryFn: () => apiClient.listApiPaths(),
  staleTime: Infinity,
  meta: { silent: true },
});

export function hasSingleReplay(paths: string[] | undefined): boolean {
  return (paths ?? []).some((p) => /^\/v1\/events\/\{[^}]+\}\/replay$/.test(p));
}

export function hasBulkReplay(paths: string[] | undefined): boolean {
  return (paths ?? []).includes("/v1/events/replay");
}

function useInvalidateEvents() {
  const queryClient = useQueryClient();
  return () => queryClient.invalidateQueries({ queryKey: eventKeys.all });
}

export function useAcknowledge() {
  const invalidate = useInvalidateEvents();
  return useMutation({ mutationFn: (id: string) => apiClient.acknowledgeEvent(id), onSettled: invalidate });
}

export function useAcknowledgeMany() {
  const invalidate = useInvalidateEvents();
  return useMutation({ mutationFn: (ids: string[]) => apiClient.acknowledgeEvents(ids), onSettled: invalidate });
}

export function useReplay() {
  const invalidate = useInvalidateEvents();
  return useMutation({ mutationFn: (id: string) => apiClient.replayEvent(id), onSettled: invalidate });
}

export function useReplayFailed() {
  const invalidate = useInvalidateEvents();
  return useMutation({
    mutationFn: (filters: Omit<EventFilters, "status">) => apiClient.replayFailedEvents(filters),
    onSettled: invalidate,
  });
}
