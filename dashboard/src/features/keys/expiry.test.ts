import { describe, expect, it } from "vitest";

import { expiryFrom } from "./expiry";

describe("expiryFrom", () => {
  const now = new Date("2026-03-01T12:00:00Z");
  it("never expires by default", () => expect(expiryFrom("never", "", now)).toBeUndefined());
  it("adds whole days", () => expect(expiryFrom("30", "", now)).toBe("2026-03-31T12:00:00.000Z"));
  it("refuses a past or malformed custom date", () => {
    expect(expiryFrom("custom", "2020-01-01", now)).toBeNull();
    expect(expiryFrom("custom", "tomorrow", now)).toBeNull();
    expect(expiryFrom("custom", "2027-01-01", now)).toBe(new Date("2027-01-01T23:59:59").toISOString());
  });
});
