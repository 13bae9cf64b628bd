import { KeyRound, Loader2, Zap } from "lucide-react";
import { type FormEvent, useState } from "react";
import { useNavigate, useSearchParams } from "react-router";

import { CopyButton } from "@/components/CopyButton";
import { Alert, AlertDescription } from "@/components/ui/alert";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { describeError } from "@/lib/errors";
import { ApiError } from "@/services/api-client";

import { LOST_KEY_COMMAND } from "./lost-key";
import { useLogin } from "./queries";

/** Only paths inside the app: `?next=https://evil.example` must not become an open redirect. */
export function safeNext(next: string | null): string {
  return next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

function loginMessage(error: unknown): { text: string; requestId?: string } {
  if (error instanceof ApiError && error.status === 401) {
    return { text: "That API key is not valid. It may have been revoked or may have expired.", requestId: error.requestId };
  }
  if (error instanceof ApiError && error.status === 403) {
    return { text: "This key lacks the keys:manage scope. Log in with a key that has it (the bootstrap key does).", requestId: error.requestId };
  }
  const described = describeError(error);
  return { text: described.message, requestId: described.requestId };
}

export function LoginPage() {
  const [apiKey, setApiKey] = useState("");
  const login = useLogin();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const expired = params.get("expired") === "1";

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const key = apiKey.trim();
    if (!key) return;
    login.mutate(key, {
      onSuccess: () => {
        setApiKey(""); // the key lives only in this input, and only until it is exchanged
        void navigate(safeNext(params.get("next")), { replace: true });
      },
    });
  };

  const error = login.error ? loginMessage(login.error) : null;

  return (
    <div className="flex min-h-full items-center justify-center bg-gradient-to-b from-background to-muted px-4 py-12">
      <div className="w-full max-w-md">
        <div className="mb-6 flex items-center justify-center gap-2 text-lg font-semibold">
          <span className="flex size-8 items-center justify-center rounded-lg bg-primary text-primary-foreground">
            <Zap className="size-4" />
          </span>
          Triggers API
        </div>
        <Card>
          <CardHeader>
            <CardTitle className="text-xl">Sign in to the dashboard</CardTitle>
            <CardDescription>
              Paste an API key with the <code className="font-mono text-xs">keys:manage</code> scope, for example the
              bootstrap key printed when the service first started. It is exchanged for a session cookie and never
              stored in the browser.
            </CardDescription>
          </CardHeader>
          <CardContent>
            <form onSubmit={submit} className="flex flex-col gap-4" noValidate>
              {expired && !error ? (
                <Alert variant="info">
                  <AlertDescription>Your session has expired. Please log in again.</AlertDescription>
                </Alert>
              ) : null}
              <div className="flex flex-col gap-2">
                <Label htmlFor="api-key">API key</Label>
                <Input
                  id="api-key"
                  name="api-key"
                  type="password"
                  autoComplete="off"
                  spellCheck={false}
                  placeholder="tk_…"
                  value={apiKey}
                  onChange={(e) => setApiKey(e.target.value)}
                  aria-invalid={error ? true : undefined}
                  aria-describedby={error ? "login-error" : undefined}
                  autoFocus
                />
              </div>
              {error ? (
                <Alert variant="destructive" id="login-error">
                  <AlertDescription>
                    <p>{error.text}</p>
                    {error.requestId ? <p className="mt-1 font-mono text-xs opacity-80">Request ID: {error.requestId}</p> : null}
                  </AlertDescription>
                </Alert>
              ) : null}
              <Button type="submit" disabled={login.isPending || !apiKey.trim()} className="w-full">
                {login.isPending ? <Loader2 className="animate-spin" /> : <KeyRound />}
                Sign in
              </Button>
            </form>
          </CardContent>
        </Card>
        <div className="mt-4 text-center text-xs text-muted-foreground" data-testid="lost-key-hint">
          <p>Lost the key? In the repository where the service runs, create one with:</p>
          <div className="mt-2 flex items-start gap-2 text-left">
            <code className="flex-1 rounded-md border bg-card px-2 py-1.5 font-mono break-all text-foreground" data-testid="lost-key-command">
              {LOST_KEY_COMMAND}
            </code>
            <CopyButton value={LOST_KEY_COMMAND} label="Copy" className="h-7 px-2 text-[11px]" />
          </div>
          <p className="mt-2">It prints the new key once. Use the same TRIGGERS_DATABASE_URL as the service if you set one.</p>
        </div>
      </div>
    </div>
  );
}

export default LoginPage;
