import { useQuery } from "@tanstack/react-query";
import { Outlet } from "react-router";

import { ErrorState } from "@/components/ErrorState";
import { FullPageSpinner } from "@/components/FullPageSpinner";
import { isApiError } from "@/lib/errors";

import { sessionQuery } from "./queries";

/**
 * Routes below render only with a live session. A 401 is not handled here: the query cache's
 * `onError` (lib/query-client.ts) is the one place that sends the user to the login page.
 */
export function RequireAuth() {
  const session = useQuery(sessionQuery);

  if (session.isPending || isApiError(session.error, 401)) {
    return <FullPageSpinner label="Checking your session…" />;
  }
  if (session.isError) {
    return (
      <div className="p-8">
        <ErrorState error={session.error} onRetry={() => void session.refetch()} title="Cannot check your session" />
      </div>
    );
  }
  return <Outlet />;
}
