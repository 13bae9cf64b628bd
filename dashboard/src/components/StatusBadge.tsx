import { Badge } from "@/components/ui/badge";
import type { EventStatus } from "@/services/types";

const VARIANTS = {
  received: "secondary",
  queued: "warning",
  delivered: "success",
  failed: "destructive",
} as const;

export function StatusBadge({ status, acknowledged }: { status: EventStatus; acknowledged?: boolean }) {
  return (
    <Badge variant={VARIANTS[status] ?? "muted"} data-status={status}>
      <span className="size-1.5 rounded-full bg-current" aria-hidden />
      {acknowledged && status === "delivered" ? "acknowledged" : status}
    </Badge>
  );
}
