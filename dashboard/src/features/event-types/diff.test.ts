import { describe, expect, it } from "vitest";

import { diffLines, stableJson } from "./diff";

describe("diffLines", () => {
  it("marks removed and added lines around the common ones", () => {
    const before = stableJson({ type: "object", required: ["a"] });
    const after = stableJson({ type: "object", required: ["a", "b"] });
    const diff = diffLines(before, after);
    expect(diff.filter((l) => l.kind === "added").map((l) => l.text.trim())).toEqual(['"a",', '"b"']);
    expect(diff.filter((l) => l.kind === "removed").map((l) => l.text.trim())).toEqual(['"a"']);
    expect(diff.filter((l) => l.kind === "same").map((l) => l.text)).toContain('  "type": "object"');
  });

  it("sorts keys so two spellings of one schema do not differ", () => {
    const diff = diffLines(stableJson({ b: 1, a: 2 }), stableJson({ a: 2, b: 1 }));
    expect(diff.every((l) => l.kind === "same")).toBe(true);
  });
});
