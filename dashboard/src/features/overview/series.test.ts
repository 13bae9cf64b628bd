import { describe, expect, it } from "vitest";

import { fillMinutes } from "./series";

describe("fillMinutes", () => {
  it("gives one point per minute for the last hour, zero where nothing was reported", () => {
    const now = Date.parse("2026-03-01T12:30:40Z");
    const points = fillMinutes(
      [
        { minute: "2026-03-01T12:30:00Z", count: 4 },
        { minute: "2026-03-01T12:29:10Z", count: 1 },
        { minute: "2026-03-01T10:00:00Z", count: 99 }, // older than the window
      ],
      now,
    );
    expect(points).toHaveLength(60);
    expect(points.at(-1)).toMatchObject({ minute: Date.parse("2026-03-01T12:30:00Z"), count: 4 });
    expect(points.at(-2)?.count).toBe(1);
    expect(points.reduce((t, p) => t + p.count, 0)).toBe(5);
  });
});
