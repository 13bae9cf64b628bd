import { useQuery } from "@tanstack/react-query";
import { Activity, ArrowRight, BarChart3, CheckCircle2, CircleAlert, Gauge, Inbox, Skull, Timer } from "lucide-react";
import { lazy, type ReactNode, Suspense } from "react";
import { Link } from "react-router";

import { EmptyState } from "@/components/EmptyState";
import { ErrorState } from "@/components/ErrorState";
import { PageHeader } from "@/components/layout/PageHeader";
import { StatusBadge } from "@/components/StatusBadge";
import { Timestamp } from "@/components/Timestamp";
import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
import { Badge } from "@/components/ui/badge";
import { buttonVariants } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Skeleton } from "@/components/ui/skeleton";
import { isApiError } from "@/lib/errors";
import { formatMs, formatNumber, formatPercent } from "@/lib/format";
import { cn } from "@/lib/utils";

import { healthQuery, metricsQuery, recentEventsQuery } from "./queries";
import { fillMinutes } from "./series";

// Recharts is most of the app's JavaScript: it loads in its own chunk, after the figures show.
const EventsPerMinuteChart = lazy(async () => ({ default: (await import("./EventsPerMinuteChart")).EventsPerMinuteChart }));

export function OverviewPage() {
  const metrics = useQuery(metricsQuery);
  const health = useQuery(healthQuery);
  const unavailable = isApiError(metrics.error, 404);
  const m = metrics.data;

  return (
    <>
      <PageHeader
        title="Overview"
        description="Ingestion and delivery over the last hour. Refreshes every few seconds."
        actions={<HealthBadge status={health.data?.status} loading={health.isPending} />}
      />

      {unavailable ? (
        <Alert variant="info" className="mb-6">
          <BarChart3 />
          <AlertTitle>Delivery metrics are not available on this server</AlertTitle>
          <AlertDescription>
            This service does not serve <code className="font-mono text-xs">/v1/metrics/summary</code> yet (it comes with
            the delivery worker). Your events are still ingested and listed on the Events page.
          </AlertDescription>
        </Alert>
      ) : m?.circuit && m.circuit.state !== "closed" ? (
        <Alert variant="warning" className="mb-6">
          <CircleAlert />
          <AlertTitle>Delivery is paused: the workflow engine keeps failing</AlertTitle>
          <AlertDescription>
            The circuit breaker is {m.circuit.state.replace("_", "-")}
            {m.circuit.reopensInSeconds !== null ? `; the next probe is in ${Math.ceil(m.circuit.reopensInSeconds)} s` : ""}.
            Events wait in the queue without spending their retries.
          </AlertDescription>
        </Alert>
      ) : metrics.isError ? (
        <ErrorState className="mb-6" error={metrics.error} title="Metrics could not be loaded" onRetry={() => void metrics.refetch()} />
      ) : null}

      <div className="grid gap-4 sm:grid-cols-2 lg:grid-cols-4">
        <MetricCard
          label="Delivery success rate"
          icon={CheckCircle2}
          loading={metrics.isPending}
          value={formatPercent(m?.deliverySuccessRate)}
          hint={
            m?.deliveryAttempts
              ? `${formatNumber(m.deliveredCount)} of ${formatNumber(m.deliveryAttempts)} push attempts, last hour`
              : "No push attempts in the last hour"
          }
          testId="metric-success-rate"
        />
        <MetricCard
          label="Queue depth"
          icon={Inbox}
          loading={metrics.isPending}
          value={formatNumber(m?.queueDepth)}
          hint="Waiting for delivery"
          testId="metric-queue-depth"
        />
        <MetricCard
          label="Dead letters"
          icon={Skull}
          loading={metrics.isPending}
          value={formatNumber(m?.deadLetterDepth)}
          hint="Failed after every retry"
          tone={m?.deadLetterDepth ? "bad" : undefined}
          testId="metric-dead-letters"
        />
        <MetricCard
          label="p95 ingest latency"
          icon={Timer}
          loading={metrics.isPending}
          value={formatMs(m?.p95IngestLatencyMs)}
          hint="Request to durable commit"
          testId="metric-p95"
        />
      </div>

      <Card className="mt-6">
        <CardHeader className="flex-row items-start justify-between">
          <div className="flex flex-col gap-1.5">
            <CardTitle>Events per minute</CardTitle>
            <CardDescription>Ingested in the last 60 minutes</CardDescription>
          </div>
          {m ? (
            <div className="text-right">
              <p className="text-2xl font-semibold tabular-nums" data-testid="events-last-hour">
                {formatNumber(m.totalEventsLastHour)}
              </p>
              <p className="text-xs text-muted-foreground">events this hour</p>
            </div>
          ) : null}
        </CardHeader>
        <CardContent>
          {metrics.isPending ? (
            <Skeleton className="h-64 w-full" />
          ) : m ? (
            <Suspense fallback={<Skeleton className="h-64 w-full" />}>
              <EventsPerMinuteChart data={fillMinutes(m.eventsPerMinute)} />
            </Suspense>
          ) : (
            <EmptyState icon={Gauge} title="No chart without metrics" className="h-64">
              The chart appears once the server reports per-minute counts.
            </EmptyState>
          )}
        </CardContent>
      </Card>

      <RecentEvents />
    </>
  );
}

function HealthBadge({ status, loading }: { status?: string; loading: boolean }) {
  if (loading) return <Skeleton className="h-6 w-24" />;
  if (status === "healthy") {
    return (
      <Badge variant="success" className="px-3 py-1">
        <span className="size-2 rounded-full bg-current" /> Service healthy
      </Badge>
    );
  }
  return (
    <Badge variant="destructive" className="px-3 py-1">
      <span className="size-2 rounded-full bg-current" /> {status ? "Service unhealthy" : "Health unknown"}
    </Badge>
  );
}

function MetricCard({
  label,
  value,
  hint,
  icon: Icon,
  loading,
  tone,
  testId,
}: {
  label: string;
  value: string;
  hint: string;
  icon: typeof Activity;
  loading: boolean;
  tone?: "bad";
  testId: string;
}) {
  return (
    <Card>
      <CardContent className="p-5">
        <div className="flex items-center justify-between text-sm text-muted-foreground">
          {label}
          <Icon className="size-4" />
        </div>
        {loading ? (
          <Skeleton className="mt-3 h-8 w-20" />
        ) : (
          <p className={cn("mt-2 text-3xl font-semibold tabular-nums", tone === "bad" && "text-destructive")} data-testid={testId}>
            {value}
          </p>
        )}
        <p className="mt-1 text-xs text-muted-foreground">{hint}</p>
      </CardContent>
    </Card>
  );
}

function RecentEvents() {
  const recent = useQuery(recentEventsQuery);
  let body: ReactNode;
  if (recent.isPending) {
    body = (
      <div className="flex flex-col gap-2">
        {Array.from({ length: 4 }, (_, i) => (
          <Skeleton key={i} className="h-9 w-full" />
        ))}
      </div>
    );
  } else if (recent.isError) {
    body = <ErrorState error={recent.error} title="Recent events could not be loaded" onRetry={() => void recent.refetch()} />;
  } else if (recent.data.events.length === 0) {
    body = (
      <EmptyState icon={Activity} title="No events yet">
        Send one with <code className="font-mono text-xs">POST /v1/events</code>; the Docs page has a ready-to-paste example.
      </EmptyState>
    );
  } else {
    body = (
      <ul className="divide-y">
        {recent.data.events.map((event) => (
          <li key={event.event_id}>
            <Link
              to={`/events/${event.event_id}`}
              className="flex items-center justify-between gap-4 px-1 py-2.5 text-sm hover:bg-muted/40"
            >
              <span className="truncate font-medium">{event.event_type}</span>
              <span className="flex shrink-0 items-center gap-3">
                <StatusBadge status={event.status} acknowledged={Boolean(event.acknowledged_at)} />
                <Timestamp iso={event.timestamp} className="inline-block w-20 text-right text-xs text-muted-foreground" />
              </span>
            </Link>
          </li>
        ))}
      </ul>
    );
  }
  return (
    <Card className="mt-6">
      <CardHeader className="flex-row items-center justify-between">
        <div className="flex flex-col gap-1.5">
          <CardTitle>Recent events</CardTitle>
          <CardDescription>The newest events of your account</CardDescription>
        </div>
        <Link to="/events" className={buttonVariants({ variant: "outline", size: "sm" })}>
          All events <ArrowRight />
        </Link>
      </CardHeader>
      <CardContent>{body}</CardContent>
    </Card>
  );
}
