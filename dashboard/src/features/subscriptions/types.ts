/** Wire types of /v1/subscriptions (kept with the feature; see the served /v1/openapi.json). */

export type SubscriptionStatus = "active" | "paused" | "disabled";

export interface SubscriptionHealth {
  attempts_24h: number;
  failures_24h: number;
  failure_rate_24h: number | null;
  circuit: { state: string; consecutive_failures: number } | null;
}

export interface Subscription {
  subscription_id: string;
  target_url: string;
  event_types: string[];
  filter: Record<string, unknown> | null;
  description: string;
  metadata: Record<string, unknown>;
  status: SubscriptionStatus;
  disabled_reason: string | null;
  created_at: string;
  updated_at: string;
  last_success_at: string | null;
  failing_since: string | null;
  health?: SubscriptionHealth | null;
}

export interface CreatedSubscription extends Subscription {
  signing_secret: string;
}

export interface SubscriptionInput {
  target_url: string;
  event_types: string[];
  filter: Record<string, unknown> | null;
  description: string;
}
