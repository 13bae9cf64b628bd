import { describe, expect, it } from "vitest";

import { deadLetterReason } from "./dead-letter";

describe("deadLetterReason", () => {
  it("names a refusal with its status", () => {
    const reason = deadLetterReason([{ outcome: "failed", response_status: 422, error: "http_422" }]);
    expect(reason).toEqual({ kind: "refused", summary: "Refused by the engine (HTTP 422) on attempt 1: a refusal is not retried." });
  });

  it("counts the attempts when the schedule ran out", () => {
    const attempts = [
      { outcome: "retry", response_status: 503 },
      { outcome: "retry", response_status: null, error: "timeout" },
      { outcome: "failed", response_status: 429 },
    ];
    expect(deadLetterReason(attempts)).toEqual({
      kind: "exhausted",
      summary: "Retries exhausted after 3 attempts (last answer: HTTP 429).",
    });
    expect(deadLetterReason([{ outcome: "failed", response_status: null, error: "connect_error" }]).summary).toBe(
      "Retries exhausted after 1 attempt (last answer: connect_error).",
    );
  });
});
