import { BookOpen, ExternalLink, FileJson } from "lucide-react";

import { CopyButton } from "@/components/CopyButton";
import { PageHeader } from "@/components/layout/PageHeader";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";

import { buildExamples } from "./examples";

export function DocsPage() {
  const baseUrl = window.location.origin;
  const examples = buildExamples(baseUrl);
  return (
    <>
      <PageHeader
        title="Docs"
        description={
          <>
            Your API base URL is <code className="font-mono text-foreground">{baseUrl}</code>. Put a key with the needed
            scope in <code className="font-mono">TRIGGERS_API_KEY</code> and paste.
          </>
        }
      />
      <div className="grid gap-4 md:grid-cols-2">
        <a
          href="/docs"
          target="_blank"
          rel="noreferrer"
          className="group rounded-lg border bg-card p-5 shadow-sm transition-colors hover:border-primary/50"
        >
          <div className="flex items-center gap-3">
            <BookOpen className="size-5 text-primary" />
            <span className="font-medium">Interactive API reference</span>
            <ExternalLink className="ml-auto size-4 text-muted-foreground group-hover:text-primary" />
          </div>
          <p className="mt-2 text-sm text-muted-foreground">Every endpoint, with a form to try it: /docs</p>
        </a>
        <a
          href="/v1/openapi.json"
          target="_blank"
          rel="noreferrer"
          className="group rounded-lg border bg-card p-5 shadow-sm transition-colors hover:border-primary/50"
        >
          <div className="flex items-center gap-3">
            <FileJson className="size-5 text-primary" />
            <span className="font-medium">OpenAPI document</span>
            <ExternalLink className="ml-auto size-4 text-muted-foreground group-hover:text-primary" />
          </div>
          <p className="mt-2 text-sm text-muted-foreground">Generate a client in any language: /v1/openapi.json</p>
        </a>
      </div>
      <div className="mt-6 flex flex-col gap-4">
        {examples.map((example) => (
          <Card key={example.title} data-example={example.title}>
            <CardHeader className="flex-row items-start justify-between gap-4">
              <div className="flex flex-col gap-1.5">
                <CardTitle>{example.title}</CardTitle>
                <CardDescription>{example.description}</CardDescription>
              </div>
              <CopyButton value={example.command} label="Copy" />
            </CardHeader>
            <CardContent>
              <pre className="overflow-auto rounded-md bg-sidebar p-4 font-mono text-xs leading-relaxed text-sidebar-foreground">
                <code>{example.command}</code>
              </pre>
            </CardContent>
          </Card>
        ))}
      </div>
    </>
  );
}
