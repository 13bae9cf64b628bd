import { useQuery } from "@tanstack/react-query";
import { KeyRound, Plus } from "lucide-react";
import { useState } from "react";

import { EmptyState } from "@/components/EmptyState";
import { Timestamp } from "@/components/Timestamp";
import { ErrorState } from "@/components/ErrorState";
import { PageHeader } from "@/components/layout/PageHeader";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { Checkbox } from "@/components/ui/checkbox";
import { Skeleton } from "@/components/ui/skeleton";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { sessionQuery } from "@/features/auth/queries";
import { formatDateTime } from "@/lib/format";
import { cn } from "@/lib/utils";
import type { ApiKey } from "@/services/types";

import { CreateKeyDialog } from "./CreateKeyDialog";
import { keysQuery } from "./queries";
import { RevokeKeyDialog } from "./RevokeKeyDialog";

function keyState(key: ApiKey, now = Date.now()): { label: string; variant: "success" | "muted" | "warning" } {
  if (!key.is_active) return { label: "Revoked", variant: "muted" };
  if (key.expires_at && new Date(key.expires_at).getTime() <= now) return { label: "Expired", variant: "warning" };
  return { label: "Active", variant: "success" };
}

export function KeysPage() {
  const keys = useQuery(keysQuery);
  const session = useQuery(sessionQuery);
  const [creating, setCreating] = useState(false);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const [showRevoked, setShowRevoked] = useState(false);

  const all = keys.data ?? [];
  const visible = showRevoked ? all : all.filter((k) => k.is_active);
  const revokedCount = all.length - all.filter((k) => k.is_active).length;

  return (
    <>
      <PageHeader
        title="API keys"
        description="Keys authenticate your systems. Each has its own scopes, rate limit and optional expiry."
        actions={
          <Button onClick={() => setCreating(true)}>
            <Plus /> Create key
          </Button>
        }
      />
      <Card>
        <div className="flex items-center justify-between border-b px-4 py-3 text-sm">
          <span className="text-muted-foreground">
            {keys.data ? `${all.length - revokedCount} active${revokedCount ? `, ${revokedCount} revoked` : ""}` : " "}
          </span>
          <label className="flex cursor-pointer items-center gap-2 text-muted-foreground">
            <Checkbox checked={showRevoked} onChange={(e) => setShowRevoked(e.target.checked)} />
            Show revoked keys
          </label>
        </div>
        {keys.isPending ? (
          <div className="flex flex-col gap-2 p-4">
            {Array.from({ length: 3 }, (_, i) => (
              <Skeleton key={i} className="h-10 w-full" />
            ))}
          </div>
        ) : keys.isError ? (
          <div className="p-4">
            <ErrorState error={keys.error} title="Keys could not be loaded" onRetry={() => void keys.refetch()} />
          </div>
        ) : visible.length === 0 ? (
          <EmptyState
            icon={KeyRound}
            title={all.length === 0 ? "No keys yet" : "No active keys"}
            action={
              <Button variant="outline" onClick={() => setCreating(true)}>
                <Plus /> Create a key
              </Button>
            }
          >
            Create a key for each system that sends or reads events, so you can revoke one without touching the others.
          </EmptyState>
        ) : (
          <Table aria-label="API keys">
            <TableHeader>
              <TableRow>
                <TableHead>Name</TableHead>
                <TableHead>Key</TableHead>
                <TableHead>Scopes</TableHead>
                <TableHead className="text-right">Rate limit</TableHead>
                <TableHead>Created</TableHead>
                <TableHead title="Written every TRIGGERS_LAST_USED_FLUSH_INTERVAL seconds (30 by default): it may lag a moment">
                  Last used
                </TableHead>
                <TableHead>Expires</TableHead>
                <TableHead>Status</TableHead>
                <TableHead className="sr-only">Actions</TableHead>
              </TableRow>
            </TableHeader>
            <TableBody>
              {visible.map((key) => {
                const state = keyState(key);
                const current = session.data?.key_id === key.key_id;
                return (
                  <TableRow key={key.key_id} data-key-id={key.key_id} className={cn(!key.is_active && "opacity-60")}>
                    <TableCell className="font-medium">
                      {key.name}
                      {current ? (
                        <Badge variant="outline" className="ml-2">
                          this session
                        </Badge>
                      ) : null}
                    </TableCell>
                    <TableCell className="font-mono text-xs">{key.key_prefix}…</TableCell>
                    <TableCell className="min-w-52">
                      <div className="flex flex-wrap gap-1">
                        {key.scopes.map((s) => (
                          <Badge key={s} variant="secondary" className="font-mono">
                            {s}
                          </Badge>
                        ))}
                      </div>
                    </TableCell>
                    <TableCell className="text-right tabular-nums">{key.rate_limit.toLocaleString()}/min</TableCell>
                    <TableCell>
                      <Timestamp iso={key.created_at} />
                    </TableCell>
                    <TableCell>
                      <Timestamp iso={key.last_used_at} />
                    </TableCell>
                    <TableCell>{key.expires_at ? formatDateTime(key.expires_at) : "Never"}</TableCell>
                    <TableCell>
                      <Badge variant={state.variant}>{state.label}</Badge>
                    </TableCell>
                    <TableCell className="text-right">
                      {key.is_active ? (
                        <Button
                          variant="ghost"
                          size="sm"
                          className="text-destructive hover:bg-destructive/10 hover:text-destructive"
                          onClick={() => setRevoking(key)}
                          aria-label={`Revoke ${key.name}`}
                        >
                          Revoke
                        </Button>
                      ) : null}
                    </TableCell>
                  </TableRow>
                );
              })}
            </TableBody>
          </Table>
        )}
      </Card>
      <CreateKeyDialog open={creating} onOpenChange={setCreating} />
      <RevokeKeyDialog
        apiKey={revoking}
        isCurrentSession={revoking !== null && session.data?.key_id === revoking.key_id}
        onClose={() => setRevoking(null)}
      />
    </>
  );
}
