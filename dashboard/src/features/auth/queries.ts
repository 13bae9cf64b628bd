import { queryOptions, useMutation, useQueryClient } from "@tanstack/react-query";

import { apiClient } from "@/services/api-client";

export const sessionQuery = queryOptions({
  queryKey: ["session"],
  queryFn: () => apiClient.getSession(),
  staleTime: 60_000,
  retry: false,
});

export function useLogin() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (apiKey: string) => apiClient.login(apiKey),
    meta: { silent: true, login: true }, // the form shows its own message; a 401 is a wrong key
    onSuccess: (session) => {
      queryClient.clear();
      queryClient.setQueryData(sessionQuery.queryKey, session);
    },
  });
}

export function useLogout() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: () => apiClient.logout(),
    onSettled: () => queryClient.clear(),
  });
}
