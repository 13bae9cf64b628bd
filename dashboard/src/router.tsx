import type { QueryClient } from "@tanstack/react-query";
import { createBrowserRouter, type RouteObject } from "react-router";

import { FullPageSpinner } from "@/components/FullPageSpinner";
import { AppShell } from "@/components/layout/AppShell";
import { RouteError } from "@/components/RouteError";
import { config } from "@/config";
import { sessionQuery } from "@/features/auth/queries";
import { RequireAuth } from "@/features/auth/RequireAuth";

/** Every page is its own chunk (architecture document, section 14.2): only the visited ones load. */
export const routes: RouteObject[] = [
  {
    // Shown while the first page's chunk loads.
    HydrateFallback: () => <FullPageSpinner label="Loading…" />,
    errorElement: <RouteError />,
    children: [
      {
        path: "/login",
        lazy: async () => ({ Component: (await import("@/features/auth/LoginPage")).LoginPage }),
      },
      {
        element: <RequireAuth />,
        children: [
          {
            element: <AppShell />,
            errorElement: <RouteError />,
            children: [
              {
                index: true,
                lazy: async () => ({ Component: (await import("@/features/overview/OverviewPage")).OverviewPage }),
              },
              {
                // The optional id deep-links the detail panel: /dashboard/events/<event_id>.
                path: "events/:eventId?",
                lazy: async () => ({ Component: (await import("@/features/events/EventsPage")).EventsPage }),
              },
              {
                path: "event-types",
                lazy: async () => ({ Component: (await import("@/features/event-types/EventTypesPage")).EventTypesPage }),
              },
              { path: "keys", lazy: async () => ({ Component: (await import("@/features/keys/KeysPage")).KeysPage }) },
              {
                path: "subscriptions",
                lazy: async () => ({
                  Component: (await import("@/features/subscriptions/SubscriptionsPage")).SubscriptionsPage,
                }),
              },
              { path: "docs", lazy: async () => ({ Component: (await import("@/features/docs/DocsPage")).DocsPage }) },
              { path: "*", lazy: async () => ({ Component: (await import("@/components/NotFound")).NotFound }) },
            ],
          },
        ],
      },
    ],
  },
];

export function createAppRouter() {
  return createBrowserRouter(routes, { basename: config.basename });
}

export type AppRouter = ReturnType<typeof createAppRouter>;

/**
 * After a 401: go to login (returning here afterwards), then forget everything cached.
 *
 * The order matters. Clearing the cache while the pages that read it are still mounted makes
 * every one of their queries fetch again, each a new 401 and a new refresh, until the login
 * page's chunk has loaded: the burst of session checks a cookieless load used to send. Navigating
 * first unmounts them; the cache is cleared once nothing is left to refetch.
 */
export async function sendToLogin(router: AppRouter, queryClient: QueryClient): Promise<void> {
  const hadSession = queryClient.getQueryData(sessionQuery.queryKey) !== undefined;
  const { search } = router.state.location;
  // The router's location includes the basename; navigate() adds it back.
  const full = router.state.location.pathname;
  const pathname = full.startsWith(config.basename) ? full.slice(config.basename.length) || "/" : full;
  if (pathname !== "/login") {
    const next = encodeURIComponent(pathname + search);
    await router.navigate(`/login?next=${next}${hadSession ? "&expired=1" : ""}`, { replace: true });
  }
  queryClient.clear();
}
