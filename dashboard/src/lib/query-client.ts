import { MutationCache, QueryCache, QueryClient } from "@tanstack/react-query";

import { ApiError } from "@/services/api-client";

import { describeError } from "./errors";
import { toast } from "./toast";

export interface QueryClientHooks {
  /** Called once per burst of 401s: the app shows the login page and clears its state. Further
   * 401s are ignored until the promise it returns settles (the redirect is under way). */
  onUnauthorized: () => void | Promise<void>;
}

/**
 * The one place that reacts to failed requests (the shape of full-stack-fastapi-template):
 * a 401 anywhere sends the user to login; a failed mutation, or a failed background refresh of
 * data already on screen, shows the friendly message with the request id. A first load that
 * fails is shown by the page itself (error state with retry), not by a toast.
 */
export function createQueryClient({ onUnauthorized }: QueryClientHooks): QueryClient {
  let redirecting = false;

  const handle = (error: unknown, announce: boolean, isLogin = false) => {
    if (error instanceof ApiError && error.status === 401 && !isLogin) {
      if (!redirecting) {
        redirecting = true;
        queueMicrotask(() => {
          void Promise.resolve()
            .then(onUnauthorized)
            .catch(() => undefined)
            .finally(() => {
              redirecting = false;
            });
        });
      }
      return;
    }
    if (announce) {
      const described = describeError(error);
      toast("error", described.message, { description: described.detail, requestId: described.requestId });
    }
  };

  return new QueryClient({
    queryCache: new QueryCache({
      onError: (error, query) => handle(error, query.state.data !== undefined && query.meta?.silent !== true),
    }),
    mutationCache: new MutationCache({
      onError: (error, _variables, _context, mutation) =>
        handle(error, mutation.meta?.silent !== true, mutation.meta?.login === true),
    }),
    defaultOptions: {
      queries: {
        staleTime: 5_000,
        gcTime: 5 * 60_000,
        refetchOnWindowFocus: true,
        retry: (failureCount, error) =>
          !(error instanceof ApiError && error.status >= 400 && error.status < 500) && failureCount < 2,
      },
      mutations: { retry: false },
    },
  });
}

declare module "@tanstack/react-query" {
  interface Register {
    queryMeta: { silent?: boolean };
    /** `login`: a 401 means a wrong key, not an expired session. */
    mutationMeta: { silent?: boolean; login?: boolean };
  }
}
