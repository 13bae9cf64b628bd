import { AlertTriangle } from "lucide-react";

import type { Violation } from "./types";

/** A payload's schema violations (JSON Pointer + message): the events detail panel and the dry run. */
export function SchemaViolations({ violations, title }: { violations: Violation[]; title?: string }) {
  return (
    <div className="rounded-md border border-warning/40 bg-warning/10 p-3 text-sm" data-testid="schema-violations">
      <p className="mb-2 flex items-center gap-2 font-medium">
        <AlertTriangle className="size-4" />
        {title ?? `${violations.length} schema violation${violations.length === 1 ? "" : "s"}`}
      </p>
      <ul className="flex flex-col gap-1">
        {violations.map((v, i) => (
          <li key={`${v.path}-${i}`}>
            <code className="font-mono text-xs">{v.path}</code> <span className="text-muted-foreground">{v.message}</span>
          </li>
        ))}
      </ul>
    </div>
  );
}
