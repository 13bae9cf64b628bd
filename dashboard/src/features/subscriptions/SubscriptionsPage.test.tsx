import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";

import { fakeApi, json, session } from "@/test/fake-api";
import { renderPage } from "@/test/render";

import { SubscriptionsPage } from "./SubscriptionsPage";

function subscription(overrides: Record<string, unknown> = {}) {
  return {
    subscription_id: "0190f3a0-0000-7000-8000-00000000aaaa",
    target_url: "https://hooks.example.com/billing",
    event_types: ["order.*"],
    filter: null,
    description: "billing",
    metadata: {},
    status: "active",
    disabled_reason: null,
    created_at: "2026-01-01T00:00:00.000000Z",
    updated_at: "2026-01-01T00:00:00.000000Z",
    last_success_at: null,
    failing_since: null,
    health: { attempts_24h: 4, failures_24h: 1, failure_rate_24h: 0.25, circuit: { state: "closed", consecutive_failures: 0 } },
    ...overrides,
  };
}

describe("SubscriptionsPage", () => {
  it("lists subscriptions with their health and disabled reason", async () => {
    fakeApi({
      "GET /v1/auth/session": () => json(200, session),
      "GET /v1/subscriptions": () =>
        json(200, {
          subscriptions: [
            subscription(),
            subscription({
              subscription_id: "0190f3a0-0000-7000-8000-00000000bbbb",
              target_url: "https://gone.example.com/",
              event_types: [],
              status: "disabled",
              disabled_reason: "target answered 410 Gone",
              health: null,
            }),
          ],
        }),
    });
    renderPage(<SubscriptionsPage />);
    const table = await screen.findByRole("table", { name: "Subscriptions" });
    const billing = within(table).getByText("https://hooks.example.com/billing").closest("tr")!;
    expect(within(billing).getByText("order.*")).toBeInTheDocument();
    expect(within(billing).getByText("closed")).toBeInTheDocument();
    expect(within(billing).getByText(/25.*of 4/)).toBeInTheDocument();
    const gone = within(table).getByText("https://gone.example.com/").closest("tr")!;
    expect(within(gone).getByText("target answered 410 Gone")).toBeInTheDocument();
    expect(within(gone).getByText("all types")).toBeInTheDocument();
    expect(within(gone).getByRole("button", { name: "Resume" })).toBeInTheDocument();
  });

  it("validates the filter, creates, and shows the secret once with a copy button", async () => {
    let subs: unknown[] = [];
    const api = fakeApi({
      "GET /v1/auth/session": () => json(200, session),
      "GET /v1/subscriptions": () => json(200, { subscriptions: subs }),
      "POST /v1/subscriptions": () => {
        subs = [subscription()];
        return json(201, { ...subscription(), signing_secret: "whsec_ONLY_ONCE" });
      },
    });
    const writeText = vi.fn().mockResolvedValue(undefined);
    Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
    renderPage(<SubscriptionsPage />);
    await userEvent.click(await screen.findByRole("button", { name: "Add subscription" }));
    const dialog = within(screen.getByRole("dialog"));
    await userEvent.type(dialog.getByLabelText("Target URL"), "https://hooks.example.com/billing");
    await userEvent.type(dialog.getByLabelText(/event types/i), "order.*");
    await userEvent.click(dialog.getByLabelText(/filter/i));
    await userEvent.paste('{"payload.amount": {"$between": [1, 2]}}');
    await userEvent.click(dialog.getByRole("button", { name: "Create subscription" }));
    expect(await dialog.findByText(/\$between: unknown operator/)).toBeInTheDocument();
    expect(api.calls("POST", "/v1/subscriptions")).toHaveLength(0);

    await userEvent.clear(dialog.getByLabelText(/filter/i));
    await userEvent.click(dialog.getByLabelText(/filter/i));
    await userEvent.paste('{"payload.amount": {"$gte": 100}}');
    await userEvent.click(dialog.getByRole("button", { name: "Create subscription" }));
    expect(await screen.findByTestId("signing-secret")).toHaveTextContent("whsec_ONLY_ONCE");
    expect(api.calls("POST", "/v1/subscriptions")[0]?.body).toEqual({
      target_url: "https://hooks.example.com/billing",
      event_types: ["order.*"],
      filter: { "payload.amount": { $gte: 100 } },
      description: "",
    });
    await userEvent.click(screen.getByRole("button", { name: "Copy secret" }));
    expect(writeText).toHaveBeenCalledWith("whsec_ONLY_ONCE");
    await userEvent.click(screen.getByRole("button", { name: /i have stored the secret/i }));
    await waitFor(() => expect(screen.queryByText("whsec_ONLY_ONCE")).not.toBeInTheDocument());
    expect(await screen.findByText("https://hooks.example.com/billing")).toBeInTheDocument();
  });

  it("shows a refused target as the target field's error", async () => {
    fakeApi({
      "GET /v1/auth/session": () => json(200, session),
      "GET /v1/subscriptions": () => json(200, { subscriptions: [] }),
      "POST /v1/subscriptions": () =>
        json(400, {
          error: { code: "DESTINATION_NOT_ALLOWED", message: "target host '10.0.0.1' resolves to a non-public address", details: {}, timestamp: "", request_id: "r" },
        }),
    });
    renderPage(<SubscriptionsPage />);
    await userEvent.click(await screen.findByRole("button", { name: "Add subscription" }));
    const dialog = within(screen.getByRole("dialog"));
    await userEvent.type(dialog.getByLabelText("Target URL"), "http://10.0.0.1/hook");
    await userEvent.click(dialog.getByRole("button", { name: "Create subscription" }));
    expect(await dialog.findByText(/non-public address/)).toBeInTheDocument();
  });

  it("pauses, sends a test, rotates the secret and deletes after confirmation", async () => {
    document.cookie = "triggers_csrf=csrf-123";
    let status = "active";
    let gone = false;
    const id = "0190f3a0-0000-7000-8000-00000000aaaa";
    const api = fakeApi({
      "GET /v1/auth/session": () => json(200, session),
      "GET /v1/subscriptions": () => json(200, { subscriptions: gone ? [] : [subscription({ status })] }),
      [`PATCH /v1/subscriptions/${id}`]: (request) => {
        status = (request.body as { status: string }).status;
        return json(200, subscription({ status }));
      },
      [`POST /v1/subscriptions/${id}/test`]: () => json(202, { event_id: "e1", message: "queued" }),
      [`POST /v1/subscriptions/${id}/rotate-secret`]: () => json(200, { signing_secret: "whsec_ROTATED" }),
      [`DELETE /v1/subscriptions/${id}`]: () => {
        gone = true;
        return json(204, null);
      },
    });
    renderPage(<SubscriptionsPage />);
    await userEvent.click(await screen.findByRole("button", { name: "Pause" }));
    expect(await screen.findByRole("button", { name: "Resume" })).toBeInTheDocument();
    expect(api.calls("PATCH", `/v1/subscriptions/${id}`)[0]?.body).toEqual({ status: "paused" });

    await userEvent.click(screen.getByRole("button", { name: "Send test" }));
    expect(await screen.findByText("Test event sent")).toBeInTheDocument();

    await userEvent.click(screen.getByRole("button", { name: "Rotate secret" }));
    expect(await screen.findByTestId("signing-secret")).toHaveTextContent("whsec_ROTATED");
    await userEvent.click(screen.getByRole("button", { name: /i have stored the secret/i }));

    await userEvent.click(screen.getByRole("button", { name: /^Delete https/ }));
    const confirm = within(await screen.findByRole("dialog"));
    expect(api.calls("DELETE", `/v1/subscriptions/${id}`)).toHaveLength(0);
    await userEvent.click(confirm.getByRole("button", { name: "Delete subscription" }));
    expect(await screen.findByText("No subscriptions yet")).toBeInTheDocument();
    expect(api.calls("DELETE", `/v1/subscriptions/${id}`)[0]?.headers.get("X-CSRF-Token")).toBe("csrf-123");
  });
});
