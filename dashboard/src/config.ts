/** Where the app is mounted and where it finds the API: the only place such values live. */
export const config = {
  /** The service serves the build at /dashboard (vite.config.ts `base`). */
  basename: "/dashboard",
  /** The API is same-origin (session cookies are SameSite=Strict): requests use absolute paths. */
  apiBase: "",
  /** Polling cadence when the live stream is unavailable, and for status changes it does not carry. */
  pollIntervalMs: 3000,
  slowPollIntervalMs: 15000,
  metricsRefreshMs: 10000,
} as const;
