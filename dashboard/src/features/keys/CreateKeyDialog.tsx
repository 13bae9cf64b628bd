import { AlertTriangle, Loader2 } from "lucide-react";
import { type FormEvent, type ReactNode, useId, useState } from "react";

import { CopyButton } from "@/components/CopyButton";
import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
import { Button } from "@/components/ui/button";
import { Checkbox } from "@/components/ui/checkbox";
import { Dialog, DialogBody, DialogDescription, DialogFooter, DialogHeader, DialogTitle } from "@/components/ui/dialog";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { Select } from "@/components/ui/select";
import { describeError } from "@/lib/errors";
import { toast } from "@/lib/toast";
import { ApiError } from "@/services/api-client";
import { ALL_SCOPES, type CreatedApiKey, DEFAULT_SCOPES, type Scope } from "@/services/types";

import { EXPIRY_CHOICES, type ExpiryChoice, expiryFrom } from "./expiry";
import { useCreateKey } from "./queries";

const SCOPE_HELP: Record<Scope, string> = {
  "events:write": "Send events",
  "events:read": "Read the inbox and events, acknowledge",
  "keys:manage": "Manage keys, read the audit log, use this dashboard",
  "event_types:manage": "Register, change and remove event-type schemas",
  "subscriptions:manage": "Create, change and delete subscriptions (REST Hooks)",
};

export function CreateKeyDialog({ open, onOpenChange }: { open: boolean; onOpenChange: (open: boolean) => void }) {
  const titleId = useId();
  // The once-shown key is on screen and was not copied: Escape, a click outside or the close
  // button ask first instead of losing it without a word.
  const [keyAtRisk, setKeyAtRisk] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const close = () => {
    setKeyAtRisk(false);
    setConfirming(false);
    onOpenChange(false);
  };
  const requestChange = (next: boolean) => {
    if (next) onOpenChange(true);
    else if (keyAtRisk) setConfirming(true);
    else close();
  };
  return (
    <Dialog open={open} onOpenChange={requestChange} aria-labelledby={titleId}>
      <CreateKeyForm
        titleId={titleId}
        onDone={close}
        onKeyAtRisk={setKeyAtRisk}
        confirmingClose={confirming}
        onKeepOpen={() => setConfirming(false)}
      />
    </Dialog>
  );
}

/** Mounted only while the dialog is open: the plaintext key disappears with it. */
function CreateKeyForm({
  titleId,
  onDone,
  onKeyAtRisk,
  confirmingClose,
  onKeepOpen,
}: {
  titleId: string;
  onDone: () => void;
  onKeyAtRisk: (atRisk: boolean) => void;
  confirmingClose: boolean;
  onKeepOpen: () => void;
}) {
  const create = useCreateKey();
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<Scope[]>([...DEFAULT_SCOPES]);
  const [rateLimit, setRateLimit] = useState("");
  const [expiry, setExpiry] = useState<ExpiryChoice>("never");
  const [customDate, setCustomDate] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [created, setCreated] = useState<CreatedApiKey | null>(null);

  const validate = (): Record<string, string> => {
    const found: Record<string, string> = {};
    if (!name.trim()) found.name = "Give the key a name, e.g. the system that will use it.";
    else if (name.trim().length > 100) found.name = "At most 100 characters.";
    if (scopes.length === 0) found.scopes = "Choose at least one scope.";
    if (rateLimit.trim() !== "") {
      const n = Number(rateLimit);
      if (!Number.isInteger(n) || n < 1 || n > 1_000_000) found.rate_limit = "A whole number from 1 to 1,000,000.";
    }
    if (expiryFrom(expiry, customDate) === null) found.expires_at = "Pick a date in the future.";
    return found;
  };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const found = validate();
    setErrors(found);
    if (Object.keys(found).length > 0) return;
    create.mutate(
      {
        name: name.trim(),
        scopes,
        rate_limit: rateLimit.trim() === "" ? undefined : Number(rateLimit),
        expires_at: expiryFrom(expiry, customDate) ?? undefined,
      },
      {
        onSuccess: (key) => {
          setCreated(key);
          onKeyAtRisk(true);
          create.reset(); // drop the plaintext from the mutation cache; it lives in this form only
        },
        onError: (error) => {
          if (error instanceof ApiError && error.status === 400) {
            setErrors(Object.fromEntries(Object.entries(error.details).map(([k, v]) => [k, String(v)])));
          }
        },
      },
    );
  };

  if (created) {
    return (
      <>
        <DialogHeader>
          <DialogTitle id={titleId}>Key created: {created.name}</DialogTitle>
          <DialogDescription>Copy the key now. It is shown only once and cannot be recovered.</DialogDescription>
        </DialogHeader>
        <DialogBody className="flex flex-col gap-4">
          <Alert variant="warning">
            <AlertTriangle />
            <AlertTitle>Store it somewhere safe</AlertTitle>
            <AlertDescription>Anyone holding this key can act with its scopes until you revoke it.</AlertDescription>
          </Alert>
          <div className="flex items-center gap-2">
            <code
              className="flex-1 select-all break-all rounded-md border bg-muted px-3 py-2 font-mono text-sm"
              data-testid="new-key-plaintext"
            >
              {created.api_key}
            </code>
            <CopyButton value={created.api_key} label="Copy key" onCopied={() => onKeyAtRisk(false)} />
          </div>
          <p className="text-xs text-muted-foreground">
            Scopes: {created.scopes.join(", ")} · {created.rate_limit.toLocaleString()} requests/min
          </p>
        </DialogBody>
        {confirmingClose ? (
          <div className="flex flex-col gap-3 border-t bg-destructive/5 px-6 py-3 sm:flex-row sm:items-center" data-testid="confirm-close">
            <p className="flex-1 text-sm">
              You have not copied the key. Once this dialog closes it cannot be shown again: close anyway?
            </p>
            <div className="flex justify-end gap-2">
              <Button variant="outline" onClick={onKeepOpen} autoFocus>
                Keep it open
              </Button>
              <Button variant="destructive" onClick={onDone}>
                Close without copying
              </Button>
            </div>
          </div>
        ) : (
          <DialogFooter>
            <Button
              onClick={() => {
                toast("success", `Key “${created.name}” created`);
                onDone();
              }}
            >
              I have stored the key
            </Button>
          </DialogFooter>
        )}
      </>
    );
  }

  const serverError = create.error && !(create.error instanceof ApiError && create.error.status === 400) ? describeError(create.error) : null;

  return (
    <form onSubmit={submit} noValidate className="contents">
      <DialogHeader onClose={onDone}>
        <DialogTitle id={titleId}>Create an API key</DialogTitle>
        <DialogDescription>The key is shown once, right after it is created.</DialogDescription>
      </DialogHeader>
      <DialogBody className="flex flex-col gap-5">
        <Field id="key-name" label="Name" error={errors.name}>
          <Input
            id="key-name"
            value={name}
            onChange={(e) => setName(e.target.value)}
            placeholder="e.g. billing-service production"
            maxLength={100}
            aria-invalid={errors.name ? true : undefined}
            autoFocus
          />
        </Field>
        <fieldset className="flex flex-col gap-2">
          <legend className="mb-2 text-sm font-medium">Scopes</legend>
          {ALL_SCOPES.map((scope) => (
            <label key={scope} className="flex cursor-pointer items-start gap-3 rounded-md border p-3 hover:bg-muted/40">
              <Checkbox
                className="mt-0.5"
                name="scopes"
                value={scope}
                checked={scopes.includes(scope)}
                onChange={(e) =>
                  setScopes((current) =>
                    e.target.checked ? [...current, scope] : current.filter((s) => s !== scope),
                  )
                }
              />
              <span>
                <span className="block font-mono text-sm">{scope}</span>
                <span className="block text-xs text-muted-foreground">{SCOPE_HELP[scope]}</span>
              </span>
            </label>
          ))}
          {errors.scopes ? <p className="text-xs text-destructive">{errors.scopes}</p> : null}
        </fieldset>
        <div className="grid gap-4 sm:grid-cols-2">
          <Field id="key-rate-limit" label="Rate limit (requests/min)" error={errors.rate_limit}>
            <Input
              id="key-rate-limit"
              inputMode="numeric"
              value={rateLimit}
              onChange={(e) => setRateLimit(e.target.value)}
              placeholder="Server default"
              aria-invalid={errors.rate_limit ? true : undefined}
            />
          </Field>
          <Field id="key-expiry" label="Expires" error={errors.expires_at}>
            <Select id="key-expiry" value={expiry} onChange={(e) => setExpiry(e.target.value as ExpiryChoice)}>
              {EXPIRY_CHOICES.map((c) => (
                <option key={c.value} value={c.value}>
                  {c.label}
                </option>
              ))}
            </Select>
            {expiry === "custom" ? (
              <Input
                type="date"
                aria-label="Expiry date"
                className="mt-2"
                value={customDate}
                onChange={(e) => setCustomDate(e.target.value)}
              />
            ) : null}
          </Field>
        </div>
        {serverError ? (
          <Alert variant="destructive">
            <AlertDescription>
              {serverError.message}
              {serverError.requestId ? <span className="mt-1 block font-mono text-xs">Request ID: {serverError.requestId}</span> : null}
            </AlertDescription>
          </Alert>
        ) : null}
      </DialogBody>
      <DialogFooter>
        <Button variant="outline" onClick={onDone}>
          Cancel
        </Button>
        <Button type="submit" disabled={create.isPending}>
          {create.isPending ? <Loader2 className="animate-spin" /> : null}
          Create key
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
      {error ? <p className="text-xs text-destructive">{error}</p> : null}
    </div>
  );
}
