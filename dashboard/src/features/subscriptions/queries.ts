import { queryOptions, useMutation, useQueryClient } from "@tanstack/react-query";

import { config } from "@/config";
import { apiClient } from "@/services/api-client";

import type { CreatedSubscription, Subscription, SubscriptionInput, SubscriptionStatus } from "./types";

const path = (id: string) => `/v1/subscriptions/${encodeURIComponent(id)}`;

export const subscriptionsQuery = queryOptions({
  queryKey: ["subscriptions"],
  queryFn: async () => (await apiClient.request<{ subscriptions: Subscription[] }>("GET", "/v1/subscriptions")).subscriptions,
  refetchInterval: config.slowPollIntervalMs, // health (last success, failure rate, circuit) moves on its own
});

function useInvalidating<TInput, TResult>(fn: (input: TInput) => Promise<TResult>, silent = false) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: fn,
    meta: silent ? { silent: true } : undefined,
    onSettled: () => queryClient.invalidateQueries({ queryKey: subscriptionsQuery.queryKey }),
  });
}

export const useCreateSubscription = () =>
  // the form shows every failure itself (a 401 still goes to login)
  useInvalidating((input: SubscriptionInput) => apiClient.request<CreatedSubscription>("POST", "/v1/subscriptions", { body: input }), true);

export const useSetStatus = () =>
  useInvalidating(({ id, status }: { id: string; status: Exclude<SubscriptionStatus, "disabled"> }) =>
    apiClient.request<Subscription>("PATCH", path(id), { body: { status } }),
  );

export const useRotateSecret = () =>
  useInvalidating((id: string) => apiClient.request<{ signing_secret: string }>("POST", `${path(id)}/rotate-secret`));

export const useSendTest = () =>
  useInvalidating((id: string) => apiClient.request<{ event_id: string }>("POST", `${path(id)}/test`));

export const useDeleteSubscription = () => useInvalidating((id: string) => apiClient.request<void>("DELETE", path(id)));
