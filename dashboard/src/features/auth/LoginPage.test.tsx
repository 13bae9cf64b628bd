import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";

import { apiError, fakeApi, json, session } from "@/test/fake-api";
import { renderPage } from "@/test/render";

import { LoginPage, safeNext } from "./LoginPage";

describe("LoginPage", () => {
  it("exchanges the key for a session, keeps it nowhere, and goes where the user was headed", async () => {
    const api = fakeApi({ "POST /v1/auth/session": () => json(200, session) });
    const { router } = renderPage(<LoginPage />, { route: "/login", path: "/login?next=%2Fkeys" });
    await userEvent.type(await screen.findByLabelText("API key"), "tk_secret_value");
    await userEvent.click(screen.getByRole("button", { name: /sign in/i }));
    await waitFor(() => expect(router.state.location.pathname).toBe("/keys"));
    expect(api.calls("POST", "/v1/auth/session")[0]?.body).toEqual({ api_key: "tk_secret_value" });
    expect(JSON.stringify({ ...localStorage })).not.toContain("tk_secret_value");
    expect(JSON.stringify({ ...sessionStorage })).not.toContain("tk_secret_value");
  });

  it("explains a wrong key and a key without keys:manage, with the request id", async () => {
    let answer = apiError(401, "UNAUTHORIZED", "Missing or invalid API key", "req-401");
    fakeApi({ "POST /v1/auth/session": () => answer });
    const { onUnauthorized } = renderPage(<LoginPage />, { route: "/login", path: "/login" });
    const input = await screen.findByLabelText("API key");
    await userEvent.type(input, "tk_wrong");
    await userEvent.click(screen.getByRole("button", { name: /sign in/i }));
    expect(await screen.findByText(/not valid/i)).toBeInTheDocument();
    expect(screen.getByText("Request ID: req-401")).toBeInTheDocument();
    expect(onUnauthorized).not.toHaveBeenCalled(); // a wrong key is not an expired session

    answer = apiError(403, "FORBIDDEN", "lacks scope", "req-403");
    await userEvent.click(screen.getByRole("button", { name: /sign in/i }));
    expect(await screen.findByText(/lacks the keys:manage scope/i)).toBeInTheDocument();
  });

  it("says the session expired when sent back by a 401", async () => {
    renderPage(<LoginPage />, { route: "/login", path: "/login?expired=1" });
    expect(await screen.findByText("Your session has expired. Please log in again.")).toBeInTheDocument();
  });

  it("only follows next= inside the app", () => {
    expect(safeNext("/events?type=a")).toBe("/events?type=a");
    expect(safeNext("//evil.example")).toBe("/");
    expect(safeNext("https://evil.example")).toBe("/");
    expect(safeNext(null)).toBe("/");
  });
});
