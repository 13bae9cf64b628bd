import { AlertTriangle, Loader2 } from "lucide-react";
import { type FormEvent, type ReactNode, useId, useState } from "react";

import { CopyButton } from "@/components/CopyButton";
import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
import { Button } from "@/components/ui/button";
import { Dialog, DialogBody, DialogDescription, DialogFooter, DialogHeader, DialogTitle } from "@/components/ui/dialog";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { describeError } from "@/lib/errors";
import { toast } from "@/lib/toast";
import { ApiError } from "@/services/api-client";

import { checkFilterText, parseTypes } from "./filter";
import { useCreateSubscription } from "./queries";
import type { CreatedSubscription } from "./types";

export function CreateSubscriptionDialog({ open, onOpenChange }: { open: boolean; onOpenChange: (open: boolean) => void }) {
  const titleId = useId();
  return (
    <Dialog open={open} onOpenChange={onOpenChange} aria-labelledby={titleId}>
      <CreateSubscriptionForm titleId={titleId} onDone={() => onOpenChange(false)} />
    </Dialog>
  );
}

/** Shows a signing secret once, with a copy button (after creation and after a rotation). */
export function SecretOnce({ secret }: { secret: string }) {
  return (
    <div className="flex flex-col gap-3">
      <Alert variant="warning">
        <AlertTriangle />
        <AlertTitle>Copy the signing secret now</AlertTitle>
        <AlertDescription>It is shown only once. Your receiver verifies each request with it (Standard Webhooks).</AlertDescription>
      </Alert>
      <div className="flex items-center gap-2">
        <code className="flex-1 select-all break-all rounded-md border bg-muted px-3 py-2 font-mono text-sm" data-testid="signing-secret">
          {secret}
        </code>
        <CopyButton value={secret} label="Copy secret" />
      </div>
    </div>
  );
}

/** Mounted only while the dialog is open: the secret disappears with it. */
function CreateSubscriptionForm({ titleId, onDone }: { titleId: string; onDone: () => void }) {
  const create = useCreateSubscription();
  const [target, setTarget] = useState("");
  const [types, setTypes] = useState("");
  const [filterText, setFilterText] = useState("");
  const [description, setDescription] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [created, setCreated] = useState<CreatedSubscription | null>(null);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const found: Record<string, string> = {};
    if (!/^https?:\/\/\S+$/.test(target.trim())) found.target_url = "An http:// or https:// URL.";
    const parsedTypes = parseTypes(types);
    if (!parsedTypes.ok) found.event_types = parsedTypes.problem;
    const parsedFilter = checkFilterText(filterText);
    if (!parsedFilter.ok) found.filter = parsedFilter.problems.join("\n");
    setErrors(found);
    if (Object.keys(found).length > 0 || !parsedTypes.ok || !parsedFilter.ok) return;
    create.mutate(
      { target_url: target.trim(), event_types: parsedTypes.types, filter: parsedFilter.filter, description: description.trim() },
      {
        onSuccess: (subscription) => {
          setCreated(subscription);
          create.reset(); // the secret lives in this form only
        },
        onError: (error) => {
          if (error instanceof ApiError && error.status === 400) {
            const details = Object.entries(error.details).map(([k, v]) => `${k}: ${String(v)}`);
            if (error.code === "DESTINATION_NOT_ALLOWED") setErrors({ target_url: error.message });
            else if (details.some((d) => d.startsWith("filter"))) setErrors({ filter: details.join("\n") });
            else setErrors({ form: [error.message, ...details].join("\n") });
          }
        },
      },
    );
  };

  if (created) {
    return (
      <>
        <DialogHeader>
          <DialogTitle id={titleId}>Subscription created</DialogTitle>
          <DialogDescription className="break-all">{created.target_url}</DialogDescription>
        </DialogHeader>
        <DialogBody>
          <SecretOnce secret={created.signing_secret} />
        </DialogBody>
        <DialogFooter>
          <Button
            onClick={() => {
              toast("success", "Subscription created");
              onDone();
            }}
          >
            I have stored the secret
          </Button>
        </DialogFooter>
      </>
    );
  }

  const serverError = create.error && !(create.error instanceof ApiError && create.error.status === 400) ? describeError(create.error) : null;
  return (
    <form onSubmit={submit} noValidate className="contents">
      <DialogHeader onClose={onDone}>
        <DialogTitle id={titleId}>Add a subscription</DialogTitle>
        <DialogDescription>Matching events are POSTed to the target, signed with its own secret.</DialogDescription>
      </DialogHeader>
      <DialogBody className="flex flex-col gap-5">
        <Field id="sub-target" label="Target URL" error={errors.target_url}>
          <Input
            id="sub-target"
            value={target}
            onChange={(e) => setTarget(e.target.value)}
            placeholder="https://hooks.example.com/triggers"
            aria-invalid={errors.target_url ? true : undefined}
            autoFocus
          />
        </Field>
        <Field id="sub-types" label="Event types (empty: all)" error={errors.event_types}>
          <Input id="sub-types" value={types} onChange={(e) => setTypes(e.target.value)} placeholder="order.*, user.created" />
        </Field>
        <Field id="sub-filter" label="Filter (JSON, optional)" error={errors.filter}>
          <textarea
            id="sub-filter"
            className="min-h-24 w-full rounded-md border bg-background px-3 py-2 font-mono text-sm"
            value={filterText}
            onChange={(e) => setFilterText(e.target.value)}
            placeholder='{"payload.amount": {"$gte": 100}}'
            aria-invalid={errors.filter ? true : undefined}
          />
        </Field>
        <Field id="sub-description" label="Description" error={errors.description}>
          <Input id="sub-description" value={description} onChange={(e) => setDescription(e.target.value)} maxLength={500} />
        </Field>
        {errors.form || serverError ? (
          <Alert variant="destructive">
            <AlertDescription className="whitespace-pre-line">{errors.form ?? serverError?.message}</AlertDescription>
          </Alert>
        ) : null}
      </DialogBody>
      <DialogFooter>
        <Button variant="outline" onClick={onDone}>
          Cancel
        </Button>
        <Button type="submit" disabled={create.isPending}>
          {create.isPending ? <Loader2 className="animate-spin" /> : null}
          Create subscription
        </Button>
      </DialogFooter>
    </form>
  );
}

function Field({ id, label, error, children }: { id: string; label: string; error?: string; children: ReactNode }) {
  return (
    <div className="flex flex-col gap-2">
      <Label htmlFor={id}>{label}</Label>
      {children}
      {error ? <p className="whitespace-pre-line text-xs text-destructive">{error}</p> : null}
    </div>
  );
}
