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

/** After a 401: forget everything cached and go to login, returning here afterwards. */
export function sendToLogin(router: AppRouter, queryClient: QueryClient): void {
  const hadSession = queryClient.getQueryData(sessionQuery.queryKey) !== undefined;
  queryClient.clear();
  const { search } = router.state.location;
  // The router's location includes the basename; navigate() adds it back.
  const full = router.state.location.pathname;
  const pathname = full.startsWith(config.basename) ? full.slice(config.basename.length) || "/" : full;
  if (pathname === "/login") return;
  const next = encodeURIComponent(pathname + search);
  void router.navigate(`/login?next=${next}${hadSession ? "&expired=1" : ""}`, { replace: true });
}
