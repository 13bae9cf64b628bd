import { CheckCircle2, CircleAlert, Info, X } from "lucide-react";

import { dismissToast, type Toast, useToasts } from "@/lib/toast";
import { cn } from "@/lib/utils";

const ICONS = { success: CheckCircle2, error: CircleAlert, info: Info } as const;

/** Renders the toast queue (see lib/toast.ts); polite for info, assertive for errors. */
export function Toaster() {
  const toasts = useToasts();
  return (
    <div className="pointer-events-none fixed right-4 bottom-4 z-50 flex w-full max-w-sm flex-col gap-2">
      {toasts.map((toast) => (
        <ToastItem key={toast.id} toast={toast} />
      ))}
    </div>
  );
}

function ToastItem({ toast }: { toast: Toast }) {
  const Icon = ICONS[toast.kind];
  return (
    <div
      role={toast.kind === "error" ? "alert" : "status"}
      className={cn(
        "pointer-events-auto flex items-start gap-3 rounded-lg border bg-card p-4 shadow-lg",
        toast.kind === "error" && "border-destructive/40",
      )}
    >
      <Icon
        className={cn(
          "mt-0.5 size-4 shrink-0",
          toast.kind === "success" && "text-success",
          toast.kind === "error" && "text-destructive",
          toast.kind === "info" && "text-primary",
        )}
      />
      <div className="flex-1 text-sm">
        <p className="font-medium">{toast.title}</p>
        {toast.description ? <p className="mt-0.5 text-muted-foreground">{toast.description}</p> : null}
        {toast.requestId ? (
          <p className="mt-1 font-mono text-xs text-muted-foreground">Request ID: {toast.requestId}</p>
        ) : null}
      </div>
      <button
        type="button"
        aria-label="Dismiss"
        onClick={() => dismissToast(toast.id)}
        className="rounded-sm p-0.5 text-muted-foreground hover:text-foreground cursor-pointer"
      >
        <X className="size-4" />
      </button>
    </div>
  );
}
