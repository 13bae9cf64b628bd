import { CheckCircle2, CircleAlert, Info, X } from "lucide-react";
import { useSyncExternalStore } from "react";
import { createPortal } from "react-dom";

import { dismissToast, type Toast, useToasts } from "@/lib/toast";
import { cn } from "@/lib/utils";

const ICONS = { success: CheckCircle2, error: CircleAlert, info: Info } as const;

// Open modal dialogs, innermost last. A modal <dialog> makes the rest of the page inert and sits in
// the top layer, so toasts render inside the innermost open one: a message about the action just
// taken in a dialog is seen, and can be dismissed, instead of hiding behind the backdrop.
let layers: HTMLElement[] = [];
const layerListeners = new Set<() => void>();

export function registerToastLayer(element: HTMLElement): () => void {
  layers = [...layers, element];
  layerListeners.forEach((l) => l());
  return () => {
    layers = layers.filter((e) => e !== element);
    layerListeners.forEach((l) => l());
  };
}

function subscribeLayers(listener: () => void) {
  layerListeners.add(listener);
  return () => layerListeners.delete(listener);
}

const topLayer = () => layers.at(-1) ?? null;

/** Renders the toast queue (see lib/toast.ts); polite for info, assertive for errors. */
export function Toaster() {
  const toasts = useToasts();
  const layer = useSyncExternalStore(subscribeLayers, topLayer, topLayer);
  const list = (
    <div className="pointer-events-none fixed right-4 bottom-4 z-50 flex w-full max-w-sm flex-col gap-2 text-left">
      {toasts.map((toast) => (
        <ToastItem key={toast.id} toast={toast} />
      ))}
    </div>
  );
  return layer ? createPortal(list, layer) : list;
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
