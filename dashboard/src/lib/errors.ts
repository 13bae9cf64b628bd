import { ApiError } from "@/services/api-client";

/** Friendly messages by error code (architecture document, section 17.3), plus this API's own codes. */
const FRIENDLY: Record<string, string> = {
  VALIDATION_ERROR: "Please check your input and try again.",
  RATE_LIMIT_EXCEEDED: "Too many requests. Please wait a moment.",
  UNAUTHORIZED: "Your session has expired. Please log in again.",
  NOT_FOUND: "The requested resource was not found.",
  INTERNAL_ERROR: "An error occurred on our end. Please try again later.",
  FORBIDDEN: "This API key is not allowed to do that.",
  EVENT_GONE: "This event was already acknowledged.",
  PAYLOAD_TOO_LARGE: "That request is too large.",
  SERVICE_UNAVAILABLE: "The service is temporarily unavailable. Please try again shortly.",
  NETWORK_ERROR: "Cannot reach the server. Check your connection and try again.",
};

export const FALLBACK_MESSAGE = "An error occurred. Please try again.";
export const UNEXPECTED_MESSAGE = "An unexpected error occurred. Please try again.";

export function friendlyMessage(code: string): string {
  return FRIENDLY[code] ?? FALLBACK_MESSAGE;
}

export interface DescribedError {
  message: string;
  code?: string;
  requestId?: string;
  detail?: string;
}

/** What to show a person for any thrown value: the friendly text, and the request id for support. */
export function describeError(error: unknown): DescribedError {
  if (error instanceof ApiError) {
    const detail = error.status === 403 || error.status === 400 || error.status === 409 ? error.message : undefined;
    return {
      message: friendlyMessage(error.code),
      code: error.code,
      requestId: error.requestId || undefined,
      detail,
    };
  }
  return { message: UNEXPECTED_MESSAGE };
}

export function isApiError(error: unknown, status?: number): error is ApiError {
  return error instanceof ApiError && (status === undefined || error.status === status);
}
