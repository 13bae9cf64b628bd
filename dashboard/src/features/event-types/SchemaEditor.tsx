import { CheckCircle2, Loader2, Save, Sparkles, Trash2, XCircle } from "lucide-react";
import { useEffect, useState } from "react";

import { Button } from "@/components/ui/button";
import { Label } from "@/components/ui/label";
import { Select } from "@/components/ui/select";
import { isApiError } from "@/lib/errors";
import { toast } from "@/lib/toast";
import { cn } from "@/lib/utils";
import { ApiError } from "@/services/api-client";

import { eventTypesApi } from "./api";
import { stableJson } from "./diff";
import { useDeleteEventType, useInferSchema, useSaveEventType, useTestPayload } from "./queries";
import { SchemaViolations } from "./SchemaViolations";
import type { EventType, JsonSchema, SchemaMode } from "./types";
import { VersionHistory } from "./VersionHistory";

const STARTER = { type: "object", properties: {}, required: [] };
const textarea =
  "min-h-48 w-full rounded-md border border-input bg-card p-3 font-mono text-xs shadow-sm focus-visible:outline-none focus-visible:ring-2 focus-visible:ring-ring";

type Check =
  | { state: "idle" }
  | { state: "json-error"; message: string }
  | { state: "checking" }
  | { state: "valid" }
  | { state: "invalid"; details: Record<string, unknown> };

/** Parse the editor's text: a JSON object, or the parser's message. */
export function parseSchema(text: string): { schema: JsonSchema } | { error: string } {
  try {
    const value: unknown = JSON.parse(text);
    if (value === null || typeof value !== "object" || Array.isArray(value)) return { error: "A schema is a JSON object" };
    return { schema: value as JsonSchema };
  } catch (e) {
    return { error: e instanceof Error ? e.message : "Invalid JSON" };
  }
}

/** Edit one type's schema: validated as you type (JSON here, JSON Schema by the server's dry run). */
export function SchemaEditor({ type, onDeleted }: { type: EventType; onDeleted: () => void }) {
  const name = type.event_type;
  const [text, setText] = useState(() => stableJson(type.schema ?? STARTER));
  const [mode, setMode] = useState<SchemaMode>(type.mode ?? "enforce");
  const [check, setCheck] = useState<Check>({ state: "idle" });
  const [payload, setPayload] = useState("{}");
  const save = useSaveEventType();
  const infer = useInferSchema();
  const test = useTestPayload();
  const remove = useDeleteEventType();

  useEffect(() => {
    const parsed = parseSchema(text);
    if ("error" in parsed) {
      setCheck({ state: "json-error", message: parsed.error });
      return;
    }
    setCheck({ state: "checking" });
    let live = true;
    const timer = setTimeout(() => {
      eventTypesApi.validate(name, {}, parsed.schema).then(
        () => live && setCheck({ state: "valid" }),
        (error: unknown) =>
          live &&
          setCheck(
            error instanceof ApiError && error.status === 400
              ? { state: "invalid", details: error.details }
              : { state: "idle" },
          ),
      );
    }, 400);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [text, name]);

  const parsed = parseSchema(text);
  const canSave = "schema" in parsed && check.state !== "invalid" && !save.isPending;

  const onSave = () => {
    if (!("schema" in parsed)) return;
    save.mutate(
      { name, body: { schema: parsed.schema, mode, description: type.description } },
      {
        onSuccess: (stored) => toast("success", `Saved ${name}`, { description: `Version ${stored.version}, mode ${stored.mode}` }),
        onError: (error) => toast("error", "The schema was not saved", { description: error.message }),
      },
    );
  };
  const onInfer = () =>
    infer.mutate(name, {
      onSuccess: (result) => {
        setText(stableJson(result.schema));
        toast("info", `Inferred from ${result.sample_size} recent event${result.sample_size === 1 ? "" : "s"}`, {
          description: "Review it, then save.",
        });
      },
      onError: (error) =>
        toast("error", isApiError(error, 404) ? "No stored events of this type yet" : "Inference failed", {
          description: error.message,
        }),
    });
  const onTest = () => {
    let value: unknown;
    try {
      value = JSON.parse(payload);
    } catch (e) {
      toast("error", "The test payload is not JSON", { description: e instanceof Error ? e.message : "" });
      return;
    }
    test.mutate({ name, payload: value, schema: "schema" in parsed ? parsed.schema : undefined });
  };
  const onDelete = () =>
    remove.mutate(name, {
      onSuccess: () => {
        toast("success", `${name} no longer has a schema`, { description: "Its history stays in the audit log." });
        onDeleted();
      },
    });

  return (
    <div className="flex flex-col gap-6" data-testid="schema-editor">
      <div className="grid gap-4 lg:grid-cols-[1fr_16rem]">
        <div className="flex flex-col gap-2">
          <Label htmlFor="schema-text">JSON Schema (draft 2020-12)</Label>
          <textarea
            id="schema-text"
            aria-label="JSON Schema"
            className={textarea}
            spellCheck={false}
            value={text}
            onChange={(e) => setText(e.target.value)}
          />
          <SchemaCheck check={check} />
        </div>
        <div className="flex flex-col gap-3">
          <Label htmlFor="schema-mode">Mode</Label>
          <Select id="schema-mode" value={mode} onChange={(e) => setMode(e.target.value as SchemaMode)}>
            <option value="enforce">enforce: refuse bad payloads (400)</option>
            <option value="warn">warn: store them, flagged</option>
            <option value="off">off: no validation</option>
          </Select>
          <Button onClick={onSave} disabled={!canSave}>
            {save.isPending ? <Loader2 className="animate-spin" /> : <Save />} Save schema
          </Button>
          <Button variant="outline" onClick={onInfer} disabled={infer.isPending}>
            {infer.isPending ? <Loader2 className="animate-spin" /> : <Sparkles />} Infer from recent events
          </Button>
          {type.version !== null ? (
            <Button variant="outline" onClick={onDelete} disabled={remove.isPending}>
              <Trash2 /> Remove schema
            </Button>
          ) : null}
        </div>
      </div>

      <section className="flex flex-col gap-2">
        <h3 className="text-sm font-semibold">Test a payload</h3>
        <textarea
          aria-label="Test payload"
          className={cn(textarea, "min-h-24")}
          spellCheck={false}
          value={payload}
          onChange={(e) => setPayload(e.target.value)}
        />
        <div>
          <Button variant="outline" size="sm" onClick={onTest} disabled={test.isPending}>
            Test payload
          </Button>
        </div>
        {test.data ? (
          test.data.valid ? (
            <p className="flex items-center gap-2 text-sm" data-testid="test-result">
              <CheckCircle2 className="size-4 text-[oklch(0.42_0.12_155)]" /> The payload matches the schema.
            </p>
          ) : (
            <SchemaViolations violations={test.data.errors} />
          )
        ) : test.error ? (
          <p className="text-sm text-destructive">{test.error.message}</p>
        ) : null}
      </section>

      {type.version !== null ? (
        <section className="flex flex-col gap-2">
          <h3 className="text-sm font-semibold">Version history</h3>
          <VersionHistory name={name} />
        </section>
      ) : null}
    </div>
  );
}

function SchemaCheck({ check }: { check: Check }) {
  if (check.state === "json-error")
    return (
      <p className="flex items-center gap-2 text-xs text-destructive" data-testid="schema-check">
        <XCircle className="size-3.5" /> Not JSON: {check.message}
      </p>
    );
  if (check.state === "invalid")
    return (
      <div className="text-xs text-destructive" data-testid="schema-check">
        <p className="flex items-center gap-2">
          <XCircle className="size-3.5" /> Not a valid JSON Schema
        </p>
        <ul className="ml-5 list-disc">
          {Object.entries(check.details).map(([k, v]) => (
            <li key={k}>
              <code>{k}</code>: {String(v)}
            </li>
          ))}
        </ul>
      </div>
    );
  if (check.state === "valid")
    return (
      <p className="flex items-center gap-2 text-xs text-muted-foreground" data-testid="schema-check">
        <CheckCircle2 className="size-3.5" /> Valid JSON Schema
      </p>
    );
  return (
    <p className="text-xs text-muted-foreground" data-testid="schema-check">
      {check.state === "checking" ? "Checking…" : " "}
    </p>
  );
}
