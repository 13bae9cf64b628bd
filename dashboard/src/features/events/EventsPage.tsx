import { useInfiniteQuery, useQuery } from "@tanstack/react-query";
import { Activity, CheckCheck, Loader2, RotateCcw } from "lucide-react";
import { useEffect, useMemo, useRef, useState } from "react";
import { useNavigate, useParams, useSearchParams } from "react-router";

import { EmptyState } from "@/components/EmptyState";
import { ErrorState } from "@/components/ErrorState";
import { PageHeader } from "@/components/layout/PageHeader";
import { StatusBadge } from "@/components/StatusBadge";
import { Timestamp } from "@/components/Timestamp";
import { Button } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { Checkbox } from "@/components/ui/checkbox";
import { Skeleton } from "@/components/ui/skeleton";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { config } from "@/config";
import { shortId } from "@/lib/format";
import { toast } from "@/lib/toast";
import { cn } from "@/lib/utils";
import type { ApiEvent } from "@/services/types";

import { EventDetailPanel } from "./EventDetailPanel";
import { EventFiltersBar } from "./EventFiltersBar";
import { apiFilters, paramsFromView, viewFromParams } from "./filters";
import { LiveIndicator } from "./LiveIndicator";
import { apiPathsQuery, eventsListQuery, hasBulkReplay, useAcknowledgeMany, useReplayFailed } from "./queries";
import { ReplayFailedDialog } from "./ReplayFailedDialog";
import { useLiveEvents } from "./useLiveEvents";
import { SchemaWarning } from "@/features/event-types/SchemaWarning";

export function EventsPage() {
  const [params, setParams] = useSearchParams();
  const view = useMemo(() => viewFromParams(params), [params]);
  const { eventId } = useParams();
  const navigate = useNavigate();

  const live = useLiveEvents(view.eventType || undefined);
  const interval = live === "live" ? config.slowPollIntervalMs : config.pollIntervalMs;
  const events = useInfiniteQuery(eventsListQuery(view, interval));
  const paths = useQuery(apiPathsQuery);
  const ackMany = useAcknowledgeMany();
  const replayFailed = useReplayFailed();
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [replayOpen, setReplayOpen] = useState(false);

  const rows = useMemo(() => events.data?.pages.flatMap((p) => p.events) ?? [], [events.data]);
  const fresh = useFreshIds(rows);
  const selectable = rows.filter((e) => !e.acknowledged_at);
  const search = params.toString() ? `?${params.toString()}` : "";

  useEffect(() => {
    // Forget selections that left the list (acknowledged elsewhere, filtered out).
    setSelected((current) => {
      const ids = new Set(selectable.map((e) => e.event_id));
      const kept = new Set([...current].filter((id) => ids.has(id)));
      return kept.size === current.size ? current : kept;
    });
  }, [rows]);

  const open = (event: ApiEvent) => void navigate(`/events/${event.event_id}${search}`);
  const closeDetail = () => void navigate(`/events${search}`);

  const acknowledgeSelected = () => {
    const ids = [...selected];
    ackMany.mutate(ids, {
      onSuccess: (result) => {
        const done = result.results.filter((r) => r.result === "acknowledged").length;
        toast("success", `${done} event${done === 1 ? "" : "s"} acknowledged`);
        setSelected(new Set());
      },
    });
  };

  const replay = () => {
    const { event_type, from_timestamp, to_timestamp } = apiFilters(view);
    replayFailed.mutate(
      { event_type, from_timestamp, to_timestamp },
      {
        onSuccess: ({ replayed }) => {
          toast("success", `${replayed} failed event${replayed === 1 ? "" : "s"} sent back to delivery`);
          setReplayOpen(false);
        },
      },
    );
  };

  return (
    <>
      <PageHeader
        title="Events"
        description="Every event of your account, newest first. New events appear as they arrive."
        actions={
          <>
            <LiveIndicator mode={live} />
            {hasBulkReplay(paths.data) ? (
              <Button variant="outline" onClick={() => setReplayOpen(true)}>
                <RotateCcw /> Replay failed
              </Button>
            ) : null}
          </>
        }
      />
      <EventFiltersBar view={view} onChange={(next) => setParams(paramsFromView(next), { replace: true })} />

      <Card className="mt-4">
        {selected.size > 0 ? (
          <div className="flex items-center justify-between border-b bg-accent/60 px-4 py-2 text-sm">
            <span>
              {selected.size} selected
            </span>
            <div className="flex gap-2">
              <Button variant="ghost" size="sm" onClick={() => setSelected(new Set())}>
                Clear
              </Button>
              <Button size="sm" onClick={acknowledgeSelected} disabled={ackMany.isPending}>
                {ackMany.isPending ? <Loader2 className="animate-spin" /> : <CheckCheck />}
                Acknowledge selected
              </Button>
            </div>
          </div>
        ) : null}
        {events.isPending ? (
          <div className="flex flex-col gap-2 p-4">
            {Array.from({ length: 6 }, (_, i) => (
              <Skeleton key={i} className="h-10 w-full" />
            ))}
          </div>
        ) : events.isError ? (
          <div className="p-4">
            <ErrorState error={events.error} title="Events could not be loaded" onRetry={() => void events.refetch()} />
          </div>
        ) : rows.length === 0 ? (
          <EmptyState icon={Activity} title={params.toString() ? "No events match these filters" : "No events yet"}>
            {params.toString()
              ? "Try a wider time range or another status."
              : "Events you send to POST /v1/events show up here the moment they are stored."}
          </EmptyState>
        ) : (
          <>
            <Table aria-label="Events">
              <TableHeader>
                <TableRow>
                  <TableHead className="w-10">
                    <Checkbox
                      aria-label="Select all unacknowledged events"
                      checked={selectable.length > 0 && selected.size === selectable.length}
                      onChange={(e) =>
                        setSelected(e.target.checked ? new Set(selectable.map((ev) => ev.event_id)) : new Set())
                      }
                    />
                  </TableHead>
                  <TableHead>Event type</TableHead>
                  <TableHead className="hidden md:table-cell">Event ID</TableHead>
                  <TableHead>Status</TableHead>
                  <TableHead className="hidden text-right sm:table-cell">Retries</TableHead>
                  <TableHead>Received</TableHead>
                </TableRow>
              </TableHeader>
              <TableBody>
                {rows.map((event) => (
                  <TableRow
                    key={event.event_id}
                    data-event-id={event.event_id}
                    data-state={eventId === event.event_id ? "selected" : undefined}
                    className={cn("cursor-pointer", fresh.has(event.event_id) && "row-flash")}
                    onClick={() => open(event)}
                  >
                    <TableCell onClick={(e) => e.stopPropagation()}>
                      {event.acknowledged_at ? null : (
                        <Checkbox
                          aria-label={`Select ${event.event_type} ${event.event_id}`}
                          checked={selected.has(event.event_id)}
                          onChange={(e) =>
                            setSelected((current) => {
                              const next = new Set(current);
                              if (e.target.checked) next.add(event.event_id);
                              else next.delete(event.event_id);
                              return next;
                            })
                          }
                        />
                      )}
                    </TableCell>
                    <TableCell className="font-medium">
                      <button
                        type="button"
                        className="cursor-pointer text-left [overflow-wrap:anywhere] hover:underline"
                        onClick={(e) => {
                          e.stopPropagation();
                          open(event);
                        }}
                      >
                        {event.event_type}
                      </button>
                      <SchemaWarning metadata={event.metadata} />
                    </TableCell>
                    <TableCell className="hidden font-mono text-xs text-muted-foreground md:table-cell" title={event.event_id}>
                      {/* The full id where the table is wide enough, a short form otherwise. */}
                      <span className="xl:hidden">{shortId(event.event_id)}</span>
                      <span className="hidden xl:inline" data-testid="full-event-id">
                        {event.event_id}
                      </span>
                    </TableCell>
                    <TableCell>
                      <StatusBadge status={event.status} acknowledged={Boolean(event.acknowledged_at)} />
                    </TableCell>
                    <TableCell className="hidden text-right tabular-nums sm:table-cell">{event.retry_count}</TableCell>
                    <TableCell>
                      <Timestamp iso={event.timestamp} />
                    </TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </Table>
            <div className="flex items-center justify-between border-t px-4 py-3 text-sm text-muted-foreground">
              <span>
                {rows.length} event{rows.length === 1 ? "" : "s"} shown
              </span>
              {events.hasNextPage ? (
                <Button variant="outline" size="sm" onClick={() => void events.fetchNextPage()} disabled={events.isFetchingNextPage}>
                  {events.isFetchingNextPage ? <Loader2 className="animate-spin" /> : null}
                  Load more
                </Button>
              ) : (
                <span>End of the list</span>
              )}
            </div>
          </>
        )}
      </Card>

      <EventDetailPanel eventId={eventId ?? null} summary={rows.find((e) => e.event_id === eventId)} onClose={closeDetail} />
      <ReplayFailedDialog
        open={replayOpen}
        onOpenChange={setReplayOpen}
        view={view}
        pending={replayFailed.isPending}
        onConfirm={replay}
      />
    </>
  );
}

/** Ids that appeared since the previous render (not on first load), for a brief highlight. */
function useFreshIds(rows: ApiEvent[]): Set<string> {
  const seen = useRef<Set<string> | null>(null);
  const [fresh, setFresh] = useState<Set<string>>(new Set());
  useEffect(() => {
    if (rows.length === 0 && seen.current === null) return;
    const ids = rows.map((e) => e.event_id);
    if (seen.current !== null) {
      const previous = seen.current;
      const added = ids.filter((id) => !previous.has(id));
      if (added.length > 0) setFresh(new Set(added));
    }
    seen.current = new Set(ids);
  }, [rows]);
  return fresh;
}
