import { useQuery } from "@tanstack/react-query";
import { Loader2, Plus, Webhook } from "lucide-react";
import { useId, useState } from "react";

import { EmptyState } from "@/components/EmptyState";
import { ErrorState } from "@/components/ErrorState";
import { PageHeader } from "@/components/layout/PageHeader";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { Dialog, DialogBody, DialogDescription, DialogFooter, DialogHeader, DialogTitle } from "@/components/ui/dialog";
import { Skeleton } from "@/components/ui/skeleton";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { formatDateTime, formatPercent, formatRelative } from "@/lib/format";
import { toast } from "@/lib/toast";

import { CreateSubscriptionDialog, SecretOnce } from "./CreateSubscriptionDialog";
import { subscriptionsQuery, useDeleteSubscription, useRotateSecret, useSendTest, useSetStatus } from "./queries";
import type { Subscription } from "./types";

const STATUS_VARIANT = { active: "success", paused: "muted", disabled: "destructive" } as const;

export function SubscriptionsPage() {
  const subscriptions = useQuery(subscriptionsQuery);
  const [creating, setCreating] = useState(false);
  const [deleting, setDeleting] = useState<Subscription | null>(null);
  const [rotated, setRotated] = useState<string | null>(null);
  const setStatus = useSetStatus();
  const rotate = useRotateSecret();
  const sendTest = useSendTest();
  const all = subscriptions.data ?? [];

  return (
    <>
      <PageHeader
        title="Subscriptions"
        description="Each subscription receives the events that match its types and filter, with its own retries and signing secret."
        actions={
          <Button onClick={() => setCreating(true)}>
            <Plus /> Add subscription
          </Button>
        }
      />
      <Card>
        {subscriptions.isPending ? (
          <div className="flex flex-col gap-2 p-4">
            {Array.from({ length: 3 }, (_, i) => (
              <Skeleton key={i} className="h-10 w-full" />
            ))}
          </div>
        ) : subscriptions.isError ? (
          <div className="p-4">
            <ErrorState error={subscriptions.error} title="Subscriptions could not be loaded" onRetry={() => void subscriptions.refetch()} />
          </div>
        ) : all.length === 0 ? (
          <EmptyState
            icon={Webhook}
            title="No subscriptions yet"
            action={
              <Button variant="outline" onClick={() => setCreating(true)}>
                <Plus /> Add a subscription
              </Button>
            }
          >
            Route events to your workflows: “order.*” to billing, everything to analytics.
          </EmptyState>
        ) : (
          <Table aria-label="Subscriptions">
            <TableHeader>
              <TableRow>
                <TableHead>Target</TableHead>
                <TableHead>Types</TableHead>
                <TableHead>Status</TableHead>
                <TableHead>Last success</TableHead>
                <TableHead className="text-right">Failures (24 h)</TableHead>
                <TableHead>Circuit</TableHead>
                <TableHead className="sr-only">Actions</TableHead>
              </TableRow>
            </TableHeader>
            <TableBody>
              {all.map((s) => (
                <TableRow key={s.subscription_id} data-subscription-id={s.subscription_id}>
                  <TableCell className="max-w-72">
                    <span className="block truncate font-mono text-xs" title={s.target_url}>
                      {s.target_url}
                    </span>
                    {s.description ? <span className="block text-xs text-muted-foreground">{s.description}</span> : null}
                    {s.filter ? <span className="block text-xs text-muted-foreground">filtered</span> : null}
                  </TableCell>
                  <TableCell>
                    <div className="flex flex-wrap gap-1">
                      {(s.event_types.length ? s.event_types : ["all types"]).map((t) => (
                        <Badge key={t} variant="secondary" className="font-mono">
                          {t}
                        </Badge>
                      ))}
                    </div>
                  </TableCell>
                  <TableCell>
                    <Badge variant={STATUS_VARIANT[s.status]}>{s.status}</Badge>
                    {s.disabled_reason ? <span className="mt-1 block text-xs text-destructive">{s.disabled_reason}</span> : null}
                  </TableCell>
                  <TableCell className="whitespace-nowrap" title={formatDateTime(s.last_success_at)}>
                    {formatRelative(s.last_success_at)}
                  </TableCell>
                  <TableCell className="text-right tabular-nums">
                    {s.health && s.health.attempts_24h > 0
                      ? `${formatPercent(s.health.failure_rate_24h)} of ${s.health.attempts_24h}`
                      : "—"}
                  </TableCell>
                  <TableCell>{s.health?.circuit?.state ?? "—"}</TableCell>
                  <TableCell className="whitespace-nowrap text-right">
                    {s.status === "active" ? (
                      <Button variant="ghost" size="sm" onClick={() => setStatus.mutate({ id: s.subscription_id, status: "paused" })}>
                        Pause
                      </Button>
                    ) : (
                      <Button variant="ghost" size="sm" onClick={() => setStatus.mutate({ id: s.subscription_id, status: "active" })}>
                        Resume
                      </Button>
                    )}
                    <Button
                      variant="ghost"
                      size="sm"
                      onClick={() =>
                        sendTest.mutate(s.subscription_id, { onSuccess: () => toast("success", "Test event sent") })
                      }
                    >
                      Send test
                    </Button>
                    <Button
                      variant="ghost"
                      size="sm"
                      onClick={() => rotate.mutate(s.subscription_id, { onSuccess: (r) => setRotated(r.signing_secret) })}
                    >
                      Rotate secret
                    </Button>
                    <Button
                      variant="ghost"
                      size="sm"
                      className="text-destructive hover:bg-destructive/10 hover:text-destructive"
                      onClick={() => setDeleting(s)}
                      aria-label={`Delete ${s.target_url}`}
                    >
                      Delete
                    </Button>
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        )}
      </Card>
      <CreateSubscriptionDialog open={creating} onOpenChange={setCreating} />
      <DeleteDialog subscription={deleting} onClose={() => setDeleting(null)} />
      <RotatedDialog secret={rotated} onClose={() => setRotated(null)} />
    </>
  );
}

function DeleteDialog({ subscription, onClose }: { subscription: Subscription | null; onClose: () => void }) {
  const titleId = useId();
  const remove = useDeleteSubscription();
  return (
    <Dialog open={subscription !== null} onOpenChange={(open) => !open && onClose()} aria-labelledby={titleId}>
      {subscription ? (
        <>
          <DialogHeader onClose={onClose}>
            <DialogTitle id={titleId}>Delete this subscription?</DialogTitle>
            <DialogDescription className="break-all">
              {subscription.target_url} stops receiving events; its pending deliveries are cancelled. This cannot be undone.
            </DialogDescription>
          </DialogHeader>
          <DialogFooter>
            <Button variant="outline" onClick={onClose}>
              Cancel
            </Button>
            <Button
              variant="destructive"
              disabled={remove.isPending}
              onClick={() =>
                remove.mutate(subscription.subscription_id, {
                  onSuccess: () => {
                    toast("success", "Subscription deleted");
                    onClose();
                  },
                })
              }
            >
              {remove.isPending ? <Loader2 className="animate-spin" /> : null}
              Delete subscription
            </Button>
          </DialogFooter>
        </>
      ) : null}
    </Dialog>
  );
}

function RotatedDialog({ secret, onClose }: { secret: string | null; onClose: () => void }) {
  const titleId = useId();
  return (
    <Dialog open={secret !== null} onOpenChange={(open) => !open && onClose()} aria-labelledby={titleId}>
      {secret ? (
        <>
          <DialogHeader onClose={onClose}>
            <DialogTitle id={titleId}>New signing secret</DialogTitle>
            <DialogDescription>The old secret keeps signing beside this one for 24 hours.</DialogDescription>
          </DialogHeader>
          <DialogBody>
            <SecretOnce secret={secret} />
          </DialogBody>
          <DialogFooter>
            <Button onClick={onClose}>I have stored the secret</Button>
          </DialogFooter>
        </>
      ) : null}
    </Dialog>
  );
}
