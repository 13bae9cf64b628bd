import { queryOptions, useMutation, useQueryClient } from "@tanstack/react-query";

import { apiClient } from "@/services/api-client";
import type { KeyCreateInput } from "@/services/types";

export const keysQuery = queryOptions({
  queryKey: ["keys"],
  queryFn: () => apiClient.listKeys(),
});

export function useCreateKey() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (input: KeyCreateInput) => apiClient.createKey(input),
    meta: { silent: true }, // the form shows every failure itself (a 401 still goes to login)
    onSettled: () => queryClient.invalidateQueries({ queryKey: keysQuery.queryKey }),
  });
}

export function useRevokeKey() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (keyId: string) => apiClient.revokeKey(keyId),
    onSettled: () => queryClient.invalidateQueries({ queryKey: keysQuery.queryKey }),
  });
}
