import { Loader2 } from "lucide-react";
import { useId } from "react";

import { Button } from "@/components/ui/button";
import { Dialog, DialogBody, DialogDescription, DialogFooter, DialogHeader, DialogTitle } from "@/components/ui/dialog";

import { type EventsView, TIME_RANGES } from "./filters";

export function ReplayFailedDialog({
  open,
  onOpenChange,
  view,
  pending,
  onConfirm,
}: {
  open: boolean;
  onOpenChange: (open: boolean) => void;
  view: EventsView;
  pending: boolean;
  onConfirm: () => void;
}) {
  const titleId = useId();
  const range = TIME_RANGES.find((r) => r.value === view.range)?.label ?? "Any time";
  return (
    <Dialog open={open} onOpenChange={onOpenChange} aria-labelledby={titleId}>
      <DialogHeader onClose={() => onOpenChange(false)}>
        <DialogTitle id={titleId}>Replay failed events?</DialogTitle>
        <DialogDescription>Every failed (dead-lettered) event matching the filters goes back into delivery with a fresh retry schedule.</DialogDescription>
      </DialogHeader>
      <DialogBody>
        <dl className="grid grid-cols-[8rem_1fr] gap-y-2 text-sm">
          <dt className="text-muted-foreground">Event type</dt>
          <dd className="font-mono">{view.eventType || "any"}</dd>
          <dt className="text-muted-foreground">Time range</dt>
          <dd>{range}</dd>
        </dl>
      </DialogBody>
      <DialogFooter>
        <Button variant="outline" onClick={() => onOpenChange(false)}>
          Cancel
        </Button>
        <Button onClick={onConfirm} disabled={pending}>
          {pending ? <Loader2 className="animate-spin" /> : null}
          Replay failed events
        </Button>
      </DialogFooter>
    </Dialog>
  );
}
