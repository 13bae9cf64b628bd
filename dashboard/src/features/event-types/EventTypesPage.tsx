import { useQuery } from "@tanstack/react-query";
import { FileJson, Plus } from "lucide-react";
import { useState } from "react";

import { EmptyState } from "@/components/EmptyState";
import { ErrorState } from "@/components/ErrorState";
import { PageHeader } from "@/components/layout/PageHeader";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { Input } from "@/components/ui/input";
import { Skeleton } from "@/components/ui/skeleton";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { formatNumber, formatRelative } from "@/lib/format";
import { cn } from "@/lib/utils";

import { eventTypesQuery } from "./queries";
import { SchemaEditor } from "./SchemaEditor";
import type { EventType, SchemaMode } from "./types";

const NAME = /^[A-Za-z0-9._:-]{1,128}$/;
const MODE_VARIANT: Record<SchemaMode, "success" | "warning" | "muted"> = { enforce: "success", warn: "warning", off: "muted" };

function blank(name: string): EventType {
  return {
    event_type: name,
    version: null,
    schema: null,
    mode: null,
    description: null,
    created_at: null,
    updated_at: null,
    events_last_24h: 0,
    last_seen_at: null,
  };
}

/** The catalog: registered types and types seen without a schema; pick one to edit its schema. */
export function EventTypesPage() {
  const types = useQuery(eventTypesQuery);
  const [selected, setSelected] = useState<string | null>(null);
  const [draftName, setDraftName] = useState("");
  const all = types.data ?? [];
  const current = selected === null ? undefined : (all.find((t) => t.event_type === selected) ?? blank(selected));

  const addType = () => {
    if (NAME.test(draftName)) {
      setSelected(draftName);
      setDraftName("");
    }
  };

  return (
    <>
      <PageHeader
        title="Event types"
        description="Register a JSON Schema per type: bad payloads are refused (enforce) or stored with a warning (warn)."
        actions={
          <form
            className="flex items-center gap-2"
            onSubmit={(e) => {
              e.preventDefault();
              addType();
            }}
          >
            <Input
              aria-label="New event type"
              placeholder="order.completed"
              value={draftName}
              onChange={(e) => setDraftName(e.target.value)}
              className="w-52"
            />
            <Button type="submit" disabled={!NAME.test(draftName)}>
              <Plus /> Add type
            </Button>
          </form>
        }
      />
      <Card className="mb-6">
        {types.isPending ? (
          <div className="flex flex-col gap-2 p-4">
            {Array.from({ length: 3 }, (_, i) => (
              <Skeleton key={i} className="h-10 w-full" />
            ))}
          </div>
        ) : types.isError ? (
          <div className="p-4">
            <ErrorState error={types.error} title="Event types could not be loaded" onRetry={() => void types.refetch()} />
          </div>
        ) : all.length === 0 ? (
          <EmptyState icon={FileJson} title="No event types yet">
            Types appear here as soon as you send events; add a schema to validate them at ingest.
          </EmptyState>
        ) : (
          <Table aria-label="Event types">
            <TableHeader>
              <TableRow>
                <TableHead>Type</TableHead>
                <TableHead>Schema</TableHead>
                <TableHead className="text-right">Events, last 24 h</TableHead>
                <TableHead>Last seen</TableHead>
                <TableHead className="sr-only">Actions</TableHead>
              </TableRow>
            </TableHeader>
            <TableBody>
              {all.map((t) => (
                <TableRow
                  key={t.event_type}
                  data-event-type={t.event_type}
                  className={cn("cursor-pointer", selected === t.event_type && "bg-muted/60")}
                  onClick={() => setSelected(t.event_type)}
                >
                  <TableCell className="font-mono text-sm">{t.event_type}</TableCell>
                  <TableCell>
                    {t.mode ? (
                      <span className="flex items-center gap-2">
                        <Badge variant={MODE_VARIANT[t.mode]}>{t.mode}</Badge>
                        <span className="text-xs text-muted-foreground">v{t.version}</span>
                      </span>
                    ) : (
                      <Badge variant="outline">no schema</Badge>
                    )}
                  </TableCell>
                  <TableCell className="text-right tabular-nums">{formatNumber(t.events_last_24h)}</TableCell>
                  <TableCell className="text-muted-foreground">{t.last_seen_at ? formatRelative(t.last_seen_at) : "—"}</TableCell>
                  <TableCell className="text-right">
                    <Button variant="ghost" size="sm" onClick={() => setSelected(t.event_type)}>
                      {t.version === null ? "Add schema" : "Edit"}
                    </Button>
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        )}
      </Card>
      {current ? (
        <Card className="p-4">
          <h2 className="mb-4 font-mono text-lg font-semibold" data-testid="editing-type">
            {current.event_type}
          </h2>
          <SchemaEditor key={`${current.event_type}:${current.version ?? 0}`} type={current} onDeleted={() => setSelected(null)} />
        </Card>
      ) : null}
    </>
  );
}
