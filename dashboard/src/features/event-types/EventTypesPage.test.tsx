import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it } from "vitest";

import { fakeApi, json, session } from "@/test/fake-api";
import { renderPage } from "@/test/render";

import { EventTypesPage } from "./EventTypesPage";

const schema = { type: "object", properties: { amount: { type: "number", minimum: 0 } }, required: ["amount"] };
const registered = {
  event_type: "order.completed",
  version: 2,
  schema,
  mode: "enforce",
  description: null,
  created_at: "2026-12-01T00:00:00.000000Z",
  updated_at: "2026-12-01T01:00:00.000000Z",
  events_last_24h: 1234,
  last_seen_at: new Date().toISOString(),
};
const seen = {
  event_type: "user.signed_up",
  version: null,
  schema: null,
  mode: null,
  description: null,
  created_at: null,
  updated_at: null,
  events_last_24h: 7,
  last_seen_at: new Date().toISOString(),
};
const versions = [
  { version: 1, schema: { type: "object" }, mode: "warn", created_at: "2026-12-01T00:00:00.000000Z" },
  { version: 2, schema, mode: "enforce", created_at: "2026-12-01T01:00:00.000000Z" },
];

/** Replace a field's text as a paste would (userEvent.type reads brackets as key names). */
async function replaceText(field: HTMLElement, text: string) {
  await userEvent.clear(field);
  await userEvent.click(field);
  await userEvent.paste(text);
}

beforeEach(() => {
  document.cookie = "triggers_csrf=csrf-123";
});

describe("EventTypesPage", () => {
  it("lists registered and seen-only types with mode, version and volume", async () => {
    fakeApi({
      "GET /v1/auth/session": () => json(200, session),
      "GET /v1/event-types": () => json(200, { event_types: [registered, seen] }),
    });
    renderPage(<EventTypesPage />);
    const table = await screen.findByRole("table", { name: "Event types" });
    const order = within(table).getByText("order.completed").closest("tr")!;
    expect(order).toHaveTextContent("enforce");
    expect(order).toHaveTextContent("v2");
    expect(order).toHaveTextContent("1,234");
    const signup = within(table).getByText("user.signed_up").closest("tr")!;
    expect(signup).toHaveTextContent("no schema");
    expect(within(signup).getByRole("button", { name: "Add schema" })).toBeInTheDocument();
  });

  it("validates the schema as you type, then saves it with the chosen mode", async () => {
    const api = fakeApi({
      "GET /v1/event-types": () => json(200, { event_types: [seen] }),
      "POST /v1/event-types/user.signed_up/validate": (request) => {
        const draft = (request.body as { schema: Record<string, unknown> }).schema;
        return typeof draft.type === "string" && draft.type !== "object"
          ? json(400, {
              error: {
                code: "VALIDATION_ERROR",
                message: "Invalid JSON Schema",
                details: { "/schema/type": '"bogus" is not valid under any of the schemas' },
                timestamp: "",
                request_id: "r",
              },
            })
          : json(200, { valid: true, errors: [], version: null });
      },
      "PUT /v1/event-types/user.signed_up": (request) =>
        json(201, { ...seen, version: 1, ...(request.body as object), created_at: "", updated_at: "" }),
    });
    renderPage(<EventTypesPage />);
    await userEvent.click(await screen.findByRole("button", { name: "Add schema" }));
    const editor = screen.getByLabelText("JSON Schema");
    expect(await screen.findByText("Valid JSON Schema")).toBeInTheDocument();

    await replaceText(editor, "{");
    expect(await screen.findByText(/Not JSON/)).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Save schema" })).toBeDisabled();

    await replaceText(editor, '{"type": "bogus"}');
    expect(await screen.findByText("Not a valid JSON Schema")).toBeInTheDocument();
    expect(screen.getByText("/schema/type")).toBeInTheDocument();

    await replaceText(editor, '{"type": "object", "required": ["email"]}');
    expect(await screen.findByText("Valid JSON Schema")).toBeInTheDocument();
    await userEvent.selectOptions(screen.getByLabelText("Mode"), "warn");
    await userEvent.click(screen.getByRole("button", { name: "Save schema" }));
    await waitFor(() => expect(api.calls("PUT", "/v1/event-types/user.signed_up")).toHaveLength(1));
    expect(api.calls("PUT", "/v1/event-types/user.signed_up")[0]?.body).toEqual({
      schema: { type: "object", required: ["email"] },
      mode: "warn",
      description: null,
    });
    expect(api.calls("PUT", "/v1/event-types/user.signed_up")[0]?.headers.get("X-CSRF-Token")).toBe("csrf-123");
  });

  it("infers a schema into the editor and tests a payload against it", async () => {
    const inferred = { type: "object", properties: { email: { type: "string" } }, required: ["email"] };
    fakeApi({
      "GET /v1/event-types": () => json(200, { event_types: [seen] }),
      "POST /v1/event-types/user.signed_up/infer": () => json(200, { schema: inferred, sample_size: 7 }),
      "POST /v1/event-types/user.signed_up/validate": (request) => {
        const { payload } = request.body as { payload: Record<string, unknown> };
        return "email" in payload || Object.keys(payload).length === 0
          ? json(200, { valid: true, errors: [], version: null })
          : json(200, {
              valid: false,
              errors: [{ path: "/payload", message: '"email" is a required property' }],
              version: null,
            });
      },
    });
    renderPage(<EventTypesPage />);
    await userEvent.click(await screen.findByRole("button", { name: "Add schema" }));
    await userEvent.click(screen.getByRole("button", { name: "Infer from recent events" }));
    await waitFor(() => expect((screen.getByLabelText("JSON Schema") as HTMLTextAreaElement).value).toContain('"email"'));
    expect(await screen.findByText(/Inferred from 7 recent events/)).toBeInTheDocument();

    const payload = screen.getByLabelText("Test payload");
    await replaceText(payload, '{"name": "x"}');
    await userEvent.click(screen.getByRole("button", { name: "Test payload" }));
    const violations = await screen.findByTestId("schema-violations");
    expect(violations).toHaveTextContent("/payload");
    expect(violations).toHaveTextContent('"email" is a required property');
  });

  it("shows the version history with a diff against the previous version", async () => {
    fakeApi({
      "GET /v1/event-types": () => json(200, { event_types: [registered] }),
      "GET /v1/event-types/order.completed/versions": () => json(200, { versions }),
      "POST /v1/event-types/order.completed/validate": () => json(200, { valid: true, errors: [], version: null }),
    });
    renderPage(<EventTypesPage />);
    await userEvent.click(await screen.findByRole("button", { name: "Edit" }));
    const diff = await screen.findByTestId("version-diff");
    expect(screen.getByText(/v2 compared with v1/)).toBeInTheDocument();
    const added = [...diff.querySelectorAll('[data-kind="added"]')].map((n) => n.textContent);
    expect(added.some((t) => t?.includes('"required"'))).toBe(true);
    await userEvent.click(screen.getByRole("button", { name: /^v1/ }));
    expect(await screen.findByText(/v1: the first version/)).toBeInTheDocument();
  });
});
