import { CircleAlert, RotateCw } from "lucide-react";

import { Button } from "@/components/ui/button";
import { describeError } from "@/lib/errors";
import { cn } from "@/lib/utils";

/** A failed load: the friendly message (section 17.3), the request id for support, and a retry. */
export function ErrorState({
  error,
  onRetry,
  title = "Something went wrong",
  className,
}: {
  error: unknown;
  onRetry?: () => void;
  title?: string;
  className?: string;
}) {
  const described = describeError(error);
  return (
    <div
      role="alert"
      className={cn(
        "flex flex-col items-center justify-center gap-3 rounded-lg border border-dashed border-destructive/40 bg-destructive/5 px-6 py-10 text-center",
        className,
      )}
    >
      <CircleAlert className="size-6 text-destructive" />
      <div>
        <p className="font-medium">{title}</p>
        <p className="mt-1 text-sm text-muted-foreground">{described.message}</p>
        {described.detail ? <p className="mt-1 text-xs text-muted-foreground">{described.detail}</p> : null}
        {described.requestId ? (
          <p className="mt-2 font-mono text-xs text-muted-foreground">Request ID: {described.requestId}</p>
        ) : null}
      </div>
      {onRetry ? (
        <Button variant="outline" size="sm" onClick={onRetry}>
          <RotateCw /> Try again
        </Button>
      ) : null}
    </div>
  );
}
