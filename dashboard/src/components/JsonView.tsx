import { Fragment, type ReactNode } from "react";

/**
 * Pretty-printed JSON with light colouring, built from React elements (no innerHTML): a payload is
 * untrusted input and must never become markup.
 */
export function JsonView({ value, className, ...rest }: { value: unknown; className?: string; "data-testid"?: string }) {
  return (
    <pre {...rest} className={className ?? "overflow-auto rounded-md bg-sidebar p-4 font-mono text-xs leading-relaxed text-sidebar-foreground"}>
      <code>{render(value, 0)}</code>
    </pre>
  );
}

const INDENT = "  ";

function render(value: unknown, depth: number): ReactNode {
  if (value === null) return <span className="text-[oklch(0.75_0.12_300)]">null</span>;
  if (typeof value === "string") return <span className="text-[oklch(0.8_0.13_150)]">{JSON.stringify(value)}</span>;
  if (typeof value === "number" || typeof value === "boolean") {
    return <span className="text-[oklch(0.8_0.13_70)]">{String(value)}</span>;
  }
  const pad = INDENT.repeat(depth + 1);
  const end = INDENT.repeat(depth);
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    return (
      <>
        {"[\n"}
        {value.map((item, i) => (
          <Fragment key={i}>
            {pad}
            {render(item, depth + 1)}
            {i < value.length - 1 ? ",\n" : "\n"}
          </Fragment>
        ))}
        {end}]
      </>
    );
  }
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) return "{}";
    return (
      <>
        {"{\n"}
        {entries.map(([key, item], i) => (
          <Fragment key={key}>
            {pad}
            <span className="text-[oklch(0.78_0.1_240)]">{JSON.stringify(key)}</span>
            {": "}
            {render(item, depth + 1)}
            {i < entries.length - 1 ? ",\n" : "\n"}
          </Fragment>
        ))}
        {end}
        {"}"}
      </>
    );
  }
  return String(value);
}
