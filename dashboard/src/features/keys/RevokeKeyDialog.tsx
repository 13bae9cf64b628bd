import { Loader2 } from "lucide-react";
import { useId } from "react";

import { Alert, AlertDescription } from "@/components/ui/alert";
import { Button } from "@/components/ui/button";
import { Dialog, DialogBody, DialogDescription, DialogFooter, DialogHeader, DialogTitle } from "@/components/ui/dialog";
import { toast } from "@/lib/toast";
import type { ApiKey } from "@/services/types";

import { useRevokeKey } from "./queries";

export function RevokeKeyDialog({
  apiKey,
  isCurrentSession,
  onClose,
}: {
  apiKey: ApiKey | null;
  isCurrentSession: boolean;
  onClose: () => void;
}) {
  const titleId = useId();
  const revoke = useRevokeKey();
  const confirm = () => {
    if (!apiKey) return;
    revoke.mutate(apiKey.key_id, {
      onSuccess: () => {
        toast("success", `Key “${apiKey.name}” revoked`);
        onClose();
      },
    });
  };
  return (
    <Dialog open={apiKey !== null} onOpenChange={(open) => !open && onClose()} aria-labelledby={titleId}>
      {apiKey ? (
        <>
          <DialogHeader onClose={onClose}>
            <DialogTitle id={titleId}>Revoke “{apiKey.name}”?</DialogTitle>
            <DialogDescription>
              Requests with <span className="font-mono">{apiKey.key_prefix}…</span> will be refused (401) within a second.
              This cannot be undone.
            </DialogDescription>
          </DialogHeader>
          {isCurrentSession ? (
            <DialogBody>
              <Alert variant="warning">
                <AlertDescription>You are signed in with this key: revoking it ends this session too.</AlertDescription>
              </Alert>
            </DialogBody>
          ) : null}
          <DialogFooter>
            <Button variant="outline" onClick={onClose}>
              Cancel
            </Button>
            <Button variant="destructive" onClick={confirm} disabled={revoke.isPending}>
              {revoke.isPending ? <Loader2 className="animate-spin" /> : null}
              Revoke key
            </Button>
          </DialogFooter>
        </>
      ) : null}
    </Dialog>
  );
}
