import { useQuery } from "@tanstack/react-query";
import { CheckCheck, CircleAlert, Loader2, RotateCcw } from "lucide-react";
import { type ReactNode, useId } from "react";

import { CopyButton } from "@/components/CopyButton";
import { ErrorState } from "@/components/ErrorState";
import { JsonView } from "@/components/JsonView";
import { StatusBadge } from "@/components/StatusBadge";
import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
import { Button } from "@/components/ui/button";
import { Dialog, DialogBody, DialogHeader, DialogTitle } from "@/components/ui/dialog";
import { Skeleton } from "@/components/ui/skeleton";
import { isApiError } from "@/lib/errors";
import { formatDateTime, formatMs, formatRelative } from "@/lib/format";
import { toast } from "@/lib/toast";
import type { ApiEvent, DeliveryAttempt, DestinationDelivery, EventStatusInfo } from "@/services/types";
import { SchemaViolations } from "@/features/event-types/SchemaViolations";

import { deadLetterReason } from "./dead-letter";
import { apiPathsQuery, eventQuery, eventStatusQuery, hasSingleReplay, useAcknowledge, useReplay } from "./queries";

/** The side panel of one event: payload, metadata, status and delivery attempts; acknowledge, replay. */
export function EventDetailPanel({
  eventId,
  summary,
  onClose,
}: {
  eventId: string | null;
  summary: ApiEvent | undefined;
  onClose: () => void;
}) {
  const titleId = useId();
  return (
    <Dialog open={eventId !== null} onOpenChange={(open) => !open && onClose()} side="right" aria-labelledby={titleId}>
      {eventId ? <EventDetail eventId={eventId} summary={summary} onClose={onClose} titleId={titleId} /> : null}
    </Dialog>
  );
}

function EventDetail({
  eventId,
  summary,
  onClose,
  titleId,
}: {
  eventId: string;
  summary: ApiEvent | undefined;
  onClose: () => void;
  titleId: string;
}) {
  const event = useQuery(eventQuery(eventId));
  const status = useQuery(eventStatusQuery(eventId));
  const paths = useQuery(apiPathsQuery);
  const acknowledge = useAcknowledge();
  const replay = useReplay();

  // GET /v1/events/{id} answers 404 once the event is acknowledged (its payload is deleted then);
  // its status stays readable until the TTL. Both 404: no such event (or another user's).
  const gone = isApiError(event.error, 404);
  const missing = gone && isApiError(status.error, 404);
  const known: ApiEvent | undefined = event.data ?? summary;
  const info = status.data;
  const acknowledged = Boolean(info?.acknowledged_at ?? known?.acknowledged_at);
  const currentStatus = info?.status ?? known?.status;
  const deliveredAt = info?.delivered_at ?? known?.delivered_at ?? null;
  const acknowledgedAt = info?.acknowledged_at ?? known?.acknowledged_at ?? null;

  const ack = () =>
    acknowledge.mutate(eventId, {
      onSuccess: () => toast("success", "Event acknowledged", { description: "It left the inbox and its payload was deleted." }),
    });
  const doReplay = () =>
    replay.mutate(eventId, { onSuccess: () => toast("success", "Event sent back to delivery") });

  return (
    <>
      <DialogHeader onClose={onClose}>
        <DialogTitle id={titleId} className="break-all">
          {known?.event_type ?? (missing ? "Event not found" : "Event")}
        </DialogTitle>
        <div className="flex flex-wrap items-center gap-2 font-mono text-xs break-all text-muted-foreground">
          <span data-testid="event-id">{eventId}</span>
          <CopyButton value={eventId} label="Copy ID" className="h-6 px-2 text-[11px]" />
        </div>
      </DialogHeader>
      <DialogBody className="flex flex-col gap-6">
        {missing ? (
          <ErrorState error={status.error} title="This event does not exist (or has expired)" />
        ) : (
          <>
            <div className="flex flex-wrap items-center gap-2">
              {currentStatus ? <StatusBadge status={currentStatus} acknowledged={acknowledged} /> : <Skeleton className="h-5 w-20" />}
              <div className="ml-auto flex gap-2">
                {currentStatus === "failed" && hasSingleReplay(paths.data) ? (
                  <Button variant="outline" size="sm" onClick={doReplay} disabled={replay.isPending}>
                    {replay.isPending ? <Loader2 className="animate-spin" /> : <RotateCcw />}
                    Replay
                  </Button>
                ) : null}
                {!acknowledged && currentStatus ? (
                  <Button size="sm" onClick={ack} disabled={acknowledge.isPending}>
                    {acknowledge.isPending ? <Loader2 className="animate-spin" /> : <CheckCheck />}
                    Acknowledge
                  </Button>
                ) : null}
              </div>
            </div>

            {currentStatus === "failed" && info ? (
              <DeadLetterNotice info={info} canReplay={hasSingleReplay(paths.data)} />
            ) : null}

            {acknowledged ? (
              <p className="rounded-md border bg-muted/40 p-3 text-sm" data-testid="acknowledged-note">
                <span className="font-medium">Acknowledged</span>{" "}
                <AbsoluteTime iso={info?.acknowledged_at ?? known?.acknowledged_at} />. An acknowledgement is a delivery to
                the pull consumer: the API reports status <code className="font-mono text-xs">delivered</code>, the payload is
                deleted (<code className="font-mono text-xs">GET</code> answers 404) and a second acknowledgement answers 410.
              </p>
            ) : null}

            <Section title="Payload">
              {gone ? (
                <p className="rounded-md border border-dashed p-4 text-sm text-muted-foreground" data-testid="payload-deleted">
                  The payload was deleted when the event was acknowledged. Its status and history remain below.
                </p>
              ) : event.isPending ? (
                <Skeleton className="h-32 w-full" />
              ) : event.data ? (
                <div className="relative">
                  <JsonView value={event.data.payload} data-testid="event-payload" />
                  <CopyButton
                    value={JSON.stringify(event.data.payload, null, 2)}
                    label="Copy JSON"
                    className="absolute top-2 right-2 h-7 border-white/20 bg-white/10 text-white hover:bg-white/20 hover:text-white"
                  />
                </div>
              ) : (
                <ErrorState error={event.error} title="The payload could not be loaded" onRetry={() => void event.refetch()} />
              )}
            </Section>

            <Section title="Details">
              <dl className="grid grid-cols-[7.5rem_1fr] gap-x-4 gap-y-2 text-sm sm:grid-cols-[10rem_1fr]">
                <Row label="Received">
                  <AbsoluteTime iso={known?.timestamp} />
                </Row>
                <Row label="Status">
                  {acknowledged ? <span data-testid="detail-status">acknowledged</span> : (currentStatus ?? "—")}
                </Row>
                <Row label="Retries">{info?.retry_count ?? known?.retry_count ?? "—"}</Row>
                <Row label="Last retry">
                  <AbsoluteTime iso={info?.last_retry_at ?? known?.last_retry_at} />
                </Row>
                <Row label="Delivered">
                  {acknowledged && deliveredAt && deliveredAt === acknowledgedAt ? (
                    "by the acknowledgement"
                  ) : (
                    <AbsoluteTime iso={deliveredAt} />
                  )}
                </Row>
                <Row label="Acknowledged">
                  <AbsoluteTime iso={acknowledgedAt} />
                </Row>
                <Row label="Expires">
                  <AbsoluteTime iso={known ? new Date(known.ttl * 1000).toISOString() : null} />
                </Row>
              </dl>
            </Section>

            {known ? (
              <Section title="Metadata">
                <dl className="grid grid-cols-[7.5rem_1fr] gap-x-4 gap-y-2 text-sm sm:grid-cols-[10rem_1fr]">
                  <Row label="Source IP">{known.metadata.source_ip ?? "—"}</Row>
                  <Row label="User agent">{known.metadata.user_agent ?? "—"}</Row>
                  <Row label="API version">{known.metadata.api_version}</Row>
                  <Row label="Correlation ID" mono>
                    {known.metadata.correlation_id}
                  </Row>
                  {known.metadata.schema_version != null ? (
                    <Row label="Schema version">v{known.metadata.schema_version}</Row>
                  ) : null}
                </dl>
                {known.metadata.schema_violations?.length ? (
                  <div className="mt-3">
                    <SchemaViolations
                      violations={known.metadata.schema_violations}
                      title="Stored with a warning: the payload broke its type's schema"
                    />
                  </div>
                ) : null}
              </Section>
            ) : null}

            {info?.deliveries && info.deliveries.length > 1 ? (
              <Section title="Deliveries">
                <Deliveries deliveries={info.deliveries} />
              </Section>
            ) : (
              <Section title="Delivery attempts">
                <Attempts info={info} loading={status.isPending} error={status.isError ? status.error : null} />
              </Section>
            )}
          </>
        )}
      </DialogBody>
    </>
  );
}

/** An absolute time with its zone, and how long ago it was. */
function AbsoluteTime({ iso }: { iso: string | null | undefined }) {
  if (!iso) return <>—</>;
  return (
    <time dateTime={iso}>
      {formatDateTime(iso)} <span className="text-muted-foreground">({formatRelative(iso)})</span>
    </time>
  );
}

/** Why a dead letter stopped, and what to do about it. */
function DeadLetterNotice({ info, canReplay }: { info: EventStatusInfo; canReplay: boolean }) {
  const reason = deadLetterReason(info.attempts ?? []);
  return (
    <Alert variant="destructive" data-testid="dead-letter-reason" data-reason={reason.kind}>
      <CircleAlert />
      <AlertTitle>Dead letter: delivery stopped</AlertTitle>
      <AlertDescription>
        <p>{reason.summary}</p>
        <p className="mt-1">
          {reason.kind === "refused"
            ? "Fix what the engine objected to (its answer is under the attempts below), then "
            : "Once the engine is reachable again, "}
          {canReplay
            ? "press Replay to send it again with a fresh retry schedule (or Replay failed on the list for all of them)."
            : "replay it through POST /v1/events/{id}/replay to send it again."}
        </p>
      </AlertDescription>
    </Alert>
  );
}

function Section({ title, children }: { title: string; children: ReactNode }) {
  return (
    <section>
      <h3 className="mb-2 text-xs font-semibold uppercase tracking-wide text-muted-foreground">{title}</h3>
      {children}
    </section>
  );
}

function Row({ label, children, mono }: { label: string; children: ReactNode; mono?: boolean }) {
  return (
    <>
      <dt className="text-muted-foreground">{label}</dt>
      <dd className={mono ? "break-all font-mono text-xs leading-5" : "break-words"}>{children}</dd>
    </>
  );
}

function Attempts({ info, loading, error }: { info: EventStatusInfo | undefined; loading: boolean; error: unknown }) {
  if (loading) return <Skeleton className="h-16 w-full" />;
  if (error) return <ErrorState error={error} title="Delivery history could not be loaded" />;
  const attempts = info?.attempts ?? [];
  if (attempts.length === 0) {
    return (
      <p className="rounded-md border border-dashed p-4 text-sm text-muted-foreground">
        No delivery attempts yet. Events are pushed when a workflow URL is configured; until then they wait in the inbox.
      </p>
    );
  }
  return (
    <ol className="flex flex-col gap-2">
      {attempts.map((attempt, i) => (
        <AttemptRow key={i} attempt={attempt} n={i + 1} />
      ))}
    </ol>
  );
}

/** One row per destination (the workflow URL, each subscription) with its own attempts. */
function Deliveries({ deliveries }: { deliveries: DestinationDelivery[] }) {
  return (
    <ul className="flex flex-col gap-3" aria-label="Deliveries">
      {deliveries.map((d) => (
        <li key={d.destination} className="rounded-md border p-3" data-destination={d.destination}>
          <div className="mb-2 flex flex-wrap items-center gap-2 text-sm">
            <span className="font-medium">{d.destination === "workflow" ? "Workflow URL" : "Subscription"}</span>
            {d.destination !== "workflow" ? <span className="font-mono text-xs text-muted-foreground">{d.destination}</span> : null}
            <span className={d.status === "delivered" ? "text-success" : d.status === "failed" ? "text-destructive" : "text-muted-foreground"}>
              {d.status}
            </span>
            {d.retry_count > 0 ? <span className="text-xs text-muted-foreground">{d.retry_count} retries</span> : null}
          </div>
          {(d.attempts ?? []).length ? (
            <ol className="flex flex-col gap-2">
              {(d.attempts ?? []).map((attempt, i) => (
                <AttemptRow key={i} attempt={attempt} n={i + 1} />
              ))}
            </ol>
          ) : (
            <p className="text-xs text-muted-foreground">No attempt yet.</p>
          )}
        </li>
      ))}
    </ul>
  );
}

function field(attempt: DeliveryAttempt, names: string[]): unknown {
  for (const name of names) if (attempt[name] !== undefined && attempt[name] !== null) return attempt[name];
  return undefined;
}

function AttemptRow({ attempt, n }: { attempt: DeliveryAttempt; n: number }) {
  const started = field(attempt, ["started_at", "attempted_at", "timestamp", "at"]);
  const duration = field(attempt, ["duration_ms", "latency_ms"]);
  const code = field(attempt, ["response_status", "status_code", "http_status"]);
  const error = field(attempt, ["error", "error_class", "reason"]);
  const outcome = field(attempt, ["outcome", "result", "status"]);
  const body = field(attempt, ["response_body", "body", "response_excerpt"]);
  const ok = typeof code === "number" ? code >= 200 && code < 300 : outcome === "delivered" || outcome === "success";
  return (
    <li className="rounded-md border p-3 text-sm">
      <div className="flex flex-wrap items-center gap-x-4 gap-y-1">
        <span className="font-medium">Attempt {n}</span>
        <span className={ok ? "text-success" : "text-destructive"}>
          {code !== undefined ? `HTTP ${String(code)}` : error !== undefined ? String(error) : String(outcome ?? "—")}
        </span>
        {typeof duration === "number" ? <span className="text-muted-foreground">{formatMs(duration)}</span> : null}
        {typeof started === "string" ? (
          <time dateTime={started} className="ml-auto text-xs text-muted-foreground">
            {formatDateTime(started)}
          </time>
        ) : null}
      </div>
      {code !== undefined && error !== undefined && error !== `http_${String(code)}` ? (
        <p className="mt-1 text-xs text-destructive">{String(error)}</p>
      ) : null}
      {typeof body === "string" && body ? (
        <pre className="mt-2 max-h-24 overflow-auto rounded bg-muted p-2 font-mono text-xs">{body}</pre>
      ) : null}
    </li>
  );
}
