/** Expiry choices of the create form; "custom" reads a date input. */
export const EXPIRY_CHOICES = [
  { value: "never", label: "Never" },
  { value: "7", label: "In 7 days" },
  { value: "30", label: "In 30 days" },
  { value: "90", label: "In 90 days" },
  { value: "365", label: "In 1 year" },
  { value: "custom", label: "On a date…" },
] as const;

export type ExpiryChoice = (typeof EXPIRY_CHOICES)[number]["value"];

/** The ISO 8601 expiry for a choice, or undefined for "never"; null when a custom date is invalid or past. */
export function expiryFrom(choice: ExpiryChoice, customDate: string, now: Date = new Date()): string | undefined | null {
  if (choice === "never") return undefined;
  if (choice === "custom") {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(customDate)) return null;
    const end = new Date(`${customDate}T23:59:59`);
    return Number.isNaN(end.getTime()) || end <= now ? null : end.toISOString();
  }
  return new Date(now.getTime() + Number(choice) * 86_400_000).toISOString();
}
