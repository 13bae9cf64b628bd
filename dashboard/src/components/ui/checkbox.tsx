import * as React from "react";

import { cn } from "@/lib/utils";

export const Checkbox = React.forwardRef<HTMLInputElement, Omit<React.InputHTMLAttributes<HTMLInputElement>, "type">>(
  ({ className, ...props }, ref) => (
    <input
      ref={ref}
      type="checkbox"
      className={cn("size-4 shrink-0 rounded border-input accent-[var(--color-primary)] cursor-pointer", className)}
      {...props}
    />
  ),
);
Checkbox.displayName = "Checkbox";
