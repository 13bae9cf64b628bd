import { describe, expect, it } from "vitest";

import { apiFilters, paramsFromView, viewFromParams } from "./filters";

describe("event filters", () => {
  it("round-trips through the URL", () => {
    const view = viewFromParams(new URLSearchParams("type=order.completed&status=delivered&range=1h"));
    expect(view).toEqual({ eventType: "order.completed", status: "delivered", range: "1h", from: "", to: "" });
    expect(paramsFromView(view).toString()).toBe("type=order.completed&status=delivered&range=1h");
  });

  it("ignores unknown statuses and ranges from a hand-edited URL", () => {
    expect(viewFromParams(new URLSearchParams("status=exploded&range=forever"))).toMatchObject({ status: "", range: "all" });
  });

  it("resolves relative ranges at fetch time and drops an invalid type", () => {
    const now = Date.parse("2026-03-01T12:00:00Z");
    const filters = apiFilters({ eventType: "bad type!", status: "failed", range: "15m", from: "", to: "" }, now);
    expect(filters).toEqual({ status: "failed", from_timestamp: "2026-03-01T11:45:00.000Z" });
  });

  it("sends a custom range as ISO timestamps", () => {
    const f = apiFilters({ eventType: "", status: "", range: "custom", from: "2026-03-01T10:00", to: "" });
    expect(f.from_timestamp).toBe(new Date("2026-03-01T10:00").toISOString());
    expect(f.to_timestamp).toBeUndefined();
  });
});
