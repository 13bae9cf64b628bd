export interface Example {
  title: string;
  description: string;
  command: string;
}

/** Copy-paste examples against this server. The key is a shell variable, never written into the page. */
export function buildExamples(baseUrl: string): Example[] {
  return [
    {
      title: "Send an event",
      description: "201 once it is stored durably. Scope events:write.",
      command: [
        `curl -s -X POST ${baseUrl}/v1/events \\`,
        `  -H "X-API-Key: $TRIGGERS_API_KEY" \\`,
        `  -H "Content-Type: application/json" \\`,
        `  -H "Idempotency-Key: order-1042" \\`,
        `  -d '{"event_type":"order.completed","payload":{"order_id":1042,"total":99.5}}'`,
      ].join("\n"),
    },
    {
      title: "Read the inbox",
      description: "Undelivered events, oldest first; pass pagination.offset back as ?offset=. Scope events:read.",
      command: `curl -s "${baseUrl}/v1/inbox?event_type=order.completed&limit=50" \\\n  -H "X-API-Key: $TRIGGERS_API_KEY"`,
    },
    {
      title: "Acknowledge an event",
      description: "204; it leaves the inbox and its payload is deleted. Scope events:read.",
      command: `curl -s -X DELETE ${baseUrl}/v1/events/$EVENT_ID \\\n  -H "X-API-Key: $TRIGGERS_API_KEY"`,
    },
    {
      title: "Follow new events live",
      description:
        "A Server-Sent Events stream of every event ingested for you from the moment you connect (reconnect with Last-Event-ID to resume). Scope events:read.",
      command: `curl -N ${baseUrl}/v1/inbox/stream \\\n  -H "X-API-Key: $TRIGGERS_API_KEY"`,
    },
  ];
}
