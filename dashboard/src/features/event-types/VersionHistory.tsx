import { useQuery } from "@tanstack/react-query";
import { useState } from "react";

import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Skeleton } from "@/components/ui/skeleton";
import { formatDateTime } from "@/lib/format";
import { cn } from "@/lib/utils";

import { diffLines, stableJson } from "./diff";
import { versionsQuery } from "./queries";

/** Every version of a type, and the diff of the chosen one against the version before it. */
export function VersionHistory({ name }: { name: string }) {
  const versions = useQuery(versionsQuery(name));
  const [chosen, setChosen] = useState<number | null>(null);
  if (versions.isPending) return <Skeleton className="h-16 w-full" />;
  if (!versions.data?.length) return <p className="text-sm text-muted-foreground">No versions yet.</p>;
  const list = versions.data;
  const index = chosen === null ? list.length - 1 : list.findIndex((v) => v.version === chosen);
  const current = list[index] ?? list[list.length - 1];
  const previous = index > 0 ? list[index - 1] : undefined;
  if (!current) return null;
  const diff = diffLines(previous ? stableJson(previous.schema) : "", stableJson(current.schema));
  return (
    <div className="flex flex-col gap-3">
      <div className="flex flex-wrap gap-2" aria-label="Versions">
        {list.map((v) => (
          <Button
            key={v.version}
            size="sm"
            variant={v.version === current.version ? "default" : "outline"}
            onClick={() => setChosen(v.version)}
            title={formatDateTime(v.created_at)}
          >
            v{v.version}
            <Badge variant="muted" className="ml-1">
              {v.mode}
            </Badge>
          </Button>
        ))}
      </div>
      <p className="text-xs text-muted-foreground">
        {previous ? `v${current.version} compared with v${previous.version}` : `v${current.version}: the first version`} ·{" "}
        {formatDateTime(current.created_at)}
      </p>
      <pre className="max-h-72 overflow-auto rounded-md border bg-muted/40 p-3 font-mono text-xs" data-testid="version-diff">
        {diff.map((line, i) => (
          <div
            key={i}
            data-kind={line.kind}
            className={cn(
              line.kind === "added" && "bg-success/15 text-[oklch(0.42_0.12_155)]",
              line.kind === "removed" && "bg-destructive/12 text-destructive",
            )}
          >
            {line.kind === "added" ? "+ " : line.kind === "removed" ? "- " : "  "}
            {line.text}
          </div>
        ))}
      </pre>
    </div>
  );
}
