/** The event-type catalog's wire shapes (`/v1/event-types`, see the README). */
export type SchemaMode = "enforce" | "warn" | "off";

export type JsonSchema = Record<string, unknown>;

export interface EventType {
  event_type: string;
  /** null for a type seen in the last 30 days without a schema */
  version: number | null;
  schema: JsonSchema | null;
  mode: SchemaMode | null;
  description: string | null;
  created_at: string | null;
  updated_at: string | null;
  events_last_24h: number;
  last_seen_at: string | null;
}

export interface EventTypeVersion {
  version: number;
  schema: JsonSchema;
  mode: SchemaMode;
  created_at: string;
}

export interface Violation {
  path: string;
  message: string;
}

export interface ValidateResult {
  valid: boolean;
  errors: Violation[];
  version: number | null;
}

export interface InferResult {
  schema: JsonSchema;
  sample_size: number;
}

export interface EventTypePut {
  schema: JsonSchema;
  mode: SchemaMode;
  description?: string | null;
}
