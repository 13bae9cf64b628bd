import type { DeliveryAttempt } from "@/services/types";

export interface DeadLetterReason {
  kind: "refused" | "exhausted";
  /** One sentence: why the event is a dead letter. */
  summary: string;
}

/** Answers the engine gives that are retried (the README's table): anything else 4xx is a refusal. */
const RETRIED_4XX = new Set([408, 429]);

/**
 * Why a failed event stopped being delivered, from its attempt history (oldest first): the last
 * attempt either got a 4xx the engine means for good ("refused"), or it was the last one the
 * retry schedule allowed ("exhausted").
 */
export function deadLetterReason(attempts: DeliveryAttempt[]): DeadLetterReason {
  const n = attempts.length;
  const last = attempts.at(-1);
  const code = typeof last?.response_status === "number" ? last.response_status : null;
  if (code !== null && code >= 400 && code < 500 && !RETRIED_4XX.has(code)) {
    return {
      kind: "refused",
      summary: `Refused by the engine (HTTP ${code}) on attempt ${n}: a refusal is not retried.`,
    };
  }
  const lastAnswer = code !== null ? `HTTP ${code}` : typeof last?.error === "string" && last.error ? last.error : null;
  return {
    kind: "exhausted",
    summary:
      n === 0
        ? "Delivery failed before any attempt was recorded."
        : `Retries exhausted after ${n} attempt${n === 1 ? "" : "s"}${lastAnswer ? ` (last answer: ${lastAnswer})` : ""}.`,
  };
}
