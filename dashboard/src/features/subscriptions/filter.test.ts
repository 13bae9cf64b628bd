import { describe, expect, it } from "vitest";

import { checkFilterText, parseTypes } from "./filter";

describe("checkFilterText", () => {
  it("accepts no filter and valid filters", () => {
    expect(checkFilterText("  ")).toEqual({ ok: true, filter: null });
    const text = '{"payload.amount": {"$gte": 100}, "$or": [{"event_type": "a"}, {"metadata.source_ip": {"$prefix": "10."}}]}';
    expect(checkFilterText(text)).toEqual({ ok: true, filter: JSON.parse(text) });
  });

  it("lists every problem, located", () => {
    const result = checkFilterText('{"body.x": 1, "payload.n": {"$between": [1, 2], "$in": "x"}, "$or": []}');
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toEqual([
      "filter.body.x: a path starts with one of event_id, user_id, event_type, payload, metadata, timestamp, ttl",
      "filter.payload.n.$between: unknown operator",
      "filter.payload.n.$in: must be a list",
      "filter.$or: must be a non-empty list of filters",
    ]);
    expect(checkFilterText("{not json")).toEqual({ ok: false, problems: ["Not valid JSON."] });
    expect(checkFilterText("[1]")).toEqual({ ok: false, problems: ["filter: must be an object of paths to conditions"] });
  });
});

describe("parseTypes", () => {
  it("splits on commas and spaces and checks each pattern", () => {
    expect(parseTypes("order.*, user.created")).toEqual({ ok: true, types: ["order.*", "user.created"] });
    expect(parseTypes("")).toEqual({ ok: true, types: [] });
    expect(parseTypes("bad type!")).toEqual({ ok: false, problem: "“type!” is not an event type or a prefix ending in *" });
  });
});
