import { queryOptions, useMutation, useQueryClient } from "@tanstack/react-query";

import { eventTypesApi } from "./api";
import type { EventTypePut } from "./types";

export const eventTypesQuery = queryOptions({
  queryKey: ["event-types"],
  queryFn: () => eventTypesApi.list(),
  refetchInterval: 30_000,
});

export const versionsQuery = (name: string) =>
  queryOptions({
    queryKey: ["event-types", name, "versions"],
    queryFn: () => eventTypesApi.versions(name),
    retry: false,
  });

export function useSaveEventType() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: ({ name, body }: { name: string; body: EventTypePut }) => eventTypesApi.put(name, body),
    meta: { silent: true }, // the editor shows every failure itself (with the details)
    onSettled: () => queryClient.invalidateQueries({ queryKey: eventTypesQuery.queryKey }),
  });
}

export function useDeleteEventType() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (name: string) => eventTypesApi.remove(name),
    onSettled: () => queryClient.invalidateQueries({ queryKey: eventTypesQuery.queryKey }),
  });
}

export function useInferSchema() {
  return useMutation({ mutationFn: (name: string) => eventTypesApi.infer(name), meta: { silent: true } });
}

export function useTestPayload() {
  return useMutation({
    mutationFn: ({ name, payload, schema }: { name: string; payload: unknown; schema?: Record<string, unknown> }) =>
      eventTypesApi.validate(name, payload, schema),
    meta: { silent: true },
  });
}
