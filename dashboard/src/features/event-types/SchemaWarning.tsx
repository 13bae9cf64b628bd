import { AlertTriangle } from "lucide-react";

import type { EventMetadata } from "@/services/types";

/** The events table's mark on an event stored in warn mode although its payload broke the schema. */
export function SchemaWarning({ metadata }: { metadata: EventMetadata | undefined }) {
  const count = metadata?.schema_violations?.length ?? 0;
  if (!count) return null;
  const label = `${count} schema violation${count === 1 ? "" : "s"}`;
  return (
    <span
      className="ml-2 inline-flex items-center gap-1 rounded-md bg-warning/20 px-1.5 py-0.5 text-xs text-[oklch(0.45_0.1_60)]"
      title={label}
      aria-label={label}
      data-testid="schema-warning"
    >
      <AlertTriangle className="size-3" />
      {count}
    </span>
  );
}
