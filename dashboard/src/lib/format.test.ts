import { describe, expect, it } from "vitest";

import { formatDateTime } from "./format";

describe("formatDateTime", () => {
  it("names the time zone and uses a 24-hour clock", () => {
    const text = formatDateTime("2026-03-04T15:06:07Z");
    const zone = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" })
      .formatToParts(new Date("2026-03-04T15:06:07Z"))
      .find((p) => p.type === "timeZoneName")?.value;
    expect(zone).toBeTruthy();
    expect(text).toContain(zone as string);
    expect(text).not.toMatch(/\b(AM|PM)\b/i);
  });

  it("says — for a missing or invalid time", () => {
    expect(formatDateTime(null)).toBe("—");
    expect(formatDateTime("nonsense")).toBe("—");
  });
});
