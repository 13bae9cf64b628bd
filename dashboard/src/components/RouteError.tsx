import { isRouteErrorResponse, useRouteError } from "react-router";

import { ErrorState } from "@/components/ErrorState";

/** A page that failed to load (a chunk missing after a deploy) or threw while rendering. */
export function RouteError() {
  const error = useRouteError();
  return (
    <div className="mx-auto max-w-xl p-8">
      <ErrorState
        error={isRouteErrorResponse(error) ? new Error(error.statusText) : error}
        title="This page could not be shown"
        onRetry={() => window.location.reload()}
      />
    </div>
  );
}
