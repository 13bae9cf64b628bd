import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";

import { apiError, apiKey, fakeApi, json, session } from "@/test/fake-api";
import { renderPage } from "@/test/render";

import { KeysPage } from "./KeysPage";

describe("KeysPage", () => {
  it("lists keys with their fields and marks the session's own key", async () => {
    fakeApi({
      "GET /v1/auth/session": () => json(200, session),
      "GET /v1/keys": () =>
        json(200, {
          keys: [
            apiKey({ key_id: session.key_id, name: "bootstrap", scopes: ["events:write", "events:read", "keys:manage"] }),
            apiKey({ name: "billing", rate_limit: 600, expires_at: "2030-05-01T00:00:00Z" }),
          ],
        }),
    });
    renderPage(<KeysPage />);
    const table = await screen.findByRole("table", { name: "API keys" });
    const billing = within(table).getByText("billing").closest("tr")!;
    expect(within(billing).getByText("600/min")).toBeInTheDocument();
    expect(within(billing).getByText("tk_zyxwvut…")).toBeInTheDocument();
    expect(within(billing).getByText("Active")).toBeInTheDocument();
    expect(within(billing).getByText("never")).toBeInTheDocument(); // last used
    expect(within(table).getByText("bootstrap").closest("tr")).toHaveTextContent("this session");
  });

  it("creates a key, shows the plaintext exactly once with a copy button, then forgets it", async () => {
    const created = { ...apiKey({ name: "ci" }), api_key: "tk_PLAINTEXT_ONCE" };
    let keys = [apiKey({ name: "billing" })];
    const api = fakeApi({
      "GET /v1/auth/session": () => json(200, session),
      "GET /v1/keys": () => json(200, { keys }),
      "POST /v1/keys": () => {
        keys = [...keys, apiKey({ key_id: "33333333-3333-4333-8333-333333333333", name: "ci" })];
        return json(201, created);
      },
    });
    const writeText = vi.fn().mockResolvedValue(undefined);
    Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
    renderPage(<KeysPage />);
    await userEvent.click(await screen.findByRole("button", { name: "Create key" }));
    const dialog = within(screen.getByRole("dialog"));
    await userEvent.click(dialog.getByRole("button", { name: "Create key" }));
    expect(await screen.findByText(/give the key a name/i)).toBeInTheDocument();
    expect(api.calls("POST", "/v1/keys")).toHaveLength(0);

    await userEvent.type(dialog.getByLabelText("Name"), "ci");
    await userEvent.click(dialog.getByRole("checkbox", { name: /keys:manage/ }));
    await userEvent.type(dialog.getByLabelText(/rate limit/i), "600");
    await userEvent.click(dialog.getByRole("button", { name: "Create key" }));
    expect(await screen.findByTestId("new-key-plaintext")).toHaveTextContent("tk_PLAINTEXT_ONCE");
    expect(api.calls("POST", "/v1/keys")[0]?.body).toEqual({
      name: "ci",
      scopes: ["events:write", "events:read", "keys:manage"],
      rate_limit: 600,
    });
    await userEvent.click(screen.getByRole("button", { name: "Copy key" }));
    expect(writeText).toHaveBeenCalledWith("tk_PLAINTEXT_ONCE");

    await userEvent.click(screen.getByRole("button", { name: /i have stored the key/i }));
    await waitFor(() => expect(screen.queryByText("tk_PLAINTEXT_ONCE")).not.toBeInTheDocument());
    expect(await screen.findByText("ci")).toBeInTheDocument();
    expect(document.body.innerHTML).not.toContain("tk_PLAINTEXT_ONCE");
  });

  it("shows the server's field errors for a refused key", async () => {
    fakeApi({
      "GET /v1/auth/session": () => json(200, session),
      "GET /v1/keys": () => json(200, { keys: [] }),
      "POST /v1/keys": () =>
        json(400, {
          error: { code: "VALIDATION_ERROR", message: "bad", details: { name: "control characters are not allowed" }, timestamp: "", request_id: "r" },
        }),
    });
    renderPage(<KeysPage />);
    expect(await screen.findByText("No keys yet")).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Create key" }));
    const dialog = within(screen.getByRole("dialog"));
    await userEvent.type(dialog.getByLabelText("Name"), "x");
    await userEvent.click(dialog.getByRole("button", { name: "Create key" }));
    expect(await screen.findByText("control characters are not allowed")).toBeInTheDocument();
  });

  it("revokes only after confirmation", async () => {
    let keys = [apiKey({ name: "billing" })];
    const api = fakeApi({
      "GET /v1/auth/session": () => json(200, session),
      "GET /v1/keys": () => json(200, { keys }),
      [`DELETE /v1/keys/${keys[0]!.key_id}`]: () => {
        keys = [apiKey({ name: "billing", is_active: false, revoked_at: new Date().toISOString() })];
        return json(204, null);
      },
    });
    renderPage(<KeysPage />);
    await userEvent.click(await screen.findByRole("button", { name: "Revoke billing" }));
    const dialog = screen.getByRole("dialog");
    expect(within(dialog).getByText(/revoke “billing”\?/i)).toBeInTheDocument();
    await userEvent.click(within(dialog).getByRole("button", { name: "Cancel" }));
    expect(api.calls("DELETE", `/v1/keys/${keys[0]!.key_id}`)).toHaveLength(0);

    await userEvent.click(screen.getByRole("button", { name: "Revoke billing" }));
    await userEvent.click(within(screen.getByRole("dialog")).getByRole("button", { name: "Revoke key" }));
    expect(await screen.findByText("No active keys")).toBeInTheDocument();
    expect(await screen.findByText("Key “billing” revoked")).toBeInTheDocument();
  });

  it("shows a load failure with the friendly message and request id, and retries", async () => {
    let fail = true;
    fakeApi({
      "GET /v1/auth/session": () => json(200, session),
      "GET /v1/keys": () => (fail ? apiError(500, "INTERNAL_ERROR", "boom", "req-boom") : json(200, { keys: [] })),
    });
    renderPage(<KeysPage />);
    expect(await screen.findByText("An error occurred on our end. Please try again later.")).toBeInTheDocument();
    expect(screen.getByText("Request ID: req-boom")).toBeInTheDocument();
    fail = false;
    await userEvent.click(screen.getByRole("button", { name: /try again/i }));
    expect(await screen.findByText("No keys yet")).toBeInTheDocument();
  });

  it("sends a 401 to the single onUnauthorized handler", async () => {
    fakeApi({
      "GET /v1/auth/session": () => json(200, session),
      "GET /v1/keys": () => apiError(401, "UNAUTHORIZED", "expired"),
      "POST /v1/auth/refresh": () => apiError(401, "UNAUTHORIZED", "expired"),
    });
    const { onUnauthorized } = renderPage(<KeysPage />);
    await waitFor(() => expect(onUnauthorized).toHaveBeenCalledTimes(1));
  });
});
