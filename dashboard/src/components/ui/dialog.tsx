import { X } from "lucide-react";
import * as React from "react";

import { cn } from "@/lib/utils";

import { registerToastLayer } from "./toaster";

interface DialogProps {
  open: boolean;
  onOpenChange: (open: boolean) => void;
  children: React.ReactNode;
  className?: string;
  /** "center" for a modal dialog, "right" for a side sheet. */
  side?: "center" | "right";
  "aria-labelledby"?: string;
}

/**
 * A modal built on the native <dialog>: the browser provides the focus trap, Escape, inert
 * background and top layer, so no portal library (and no injected <style>, which the strict CSP
 * would refuse) is needed. Children mount only while open, so forms start fresh each time.
 */
export function Dialog({ open, onOpenChange, children, className, side = "center", ...aria }: DialogProps) {
  const ref = React.useRef<HTMLDialogElement>(null);
  const openRef = React.useRef(open);
  openRef.current = open;

  React.useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) {
      if (typeof dialog.showModal === "function") dialog.showModal();
      else dialog.setAttribute("open", "");
    } else if (!open && dialog.open) {
      if (typeof dialog.close === "function") dialog.close();
      else dialog.removeAttribute("open");
    }
  }, [open]);

  React.useEffect(() => {
    const dialog = ref.current;
    return open && dialog ? registerToastLayer(dialog) : undefined;
  }, [open]);

  return (
    <dialog
      ref={ref}
      aria-labelledby={aria["aria-labelledby"]}
      onCancel={(e) => {
        e.preventDefault();
        onOpenChange(false);
      }}
      onClose={() => {
        onOpenChange(false);
        // The browser may close a modal by itself (Chromium does on a repeated Escape even when
        // `cancel` is prevented): if the owner kept it open (to ask first), show it again.
        setTimeout(() => {
          const dialog = ref.current;
          if (openRef.current && dialog && !dialog.open && typeof dialog.showModal === "function") dialog.showModal();
        }, 0);
      }}
      onMouseDown={(e) => {
        // A press on the backdrop (the dialog element itself, outside its content) closes it.
        if (e.target === ref.current) onOpenChange(false);
      }}
      className={cn(
        "m-auto max-h-[90vh] w-full max-w-lg rounded-lg border bg-card p-0 text-card-foreground shadow-xl",
        side === "right" && "my-0 mr-0 ml-auto h-full max-h-screen max-w-2xl rounded-none rounded-l-lg",
        className,
      )}
    >
      {open ? <div className="flex max-h-[inherit] flex-col">{children}</div> : null}
    </dialog>
  );
}

export function DialogHeader({
  className,
  children,
  onClose,
}: {
  className?: string;
  children: React.ReactNode;
  onClose?: () => void;
}) {
  return (
    <div className={cn("flex items-start justify-between gap-4 border-b px-6 py-4", className)}>
      <div className="flex flex-col gap-1">{children}</div>
      {onClose ? (
        <button
          type="button"
          onClick={onClose}
          className="rounded-sm p-1 text-muted-foreground hover:bg-muted hover:text-foreground cursor-pointer"
          aria-label="Close"
        >
          <X className="size-4" />
        </button>
      ) : null}
    </div>
  );
}

export const DialogTitle = ({ className, ...props }: React.HTMLAttributes<HTMLHeadingElement>) => (
  <h2 className={cn("text-lg font-semibold leading-none tracking-tight", className)} {...props} />
);

export const DialogDescription = ({ className, ...props }: React.HTMLAttributes<HTMLParagraphElement>) => (
  <p className={cn("text-sm text-muted-foreground", className)} {...props} />
);

export const DialogBody = ({ className, ...props }: React.HTMLAttributes<HTMLDivElement>) => (
  <div className={cn("overflow-y-auto px-6 py-4", className)} {...props} />
);

export const DialogFooter = ({ className, ...props }: React.HTMLAttributes<HTMLDivElement>) => (
  <div className={cn("flex justify-end gap-2 border-t bg-muted/30 px-6 py-3", className)} {...props} />
);
