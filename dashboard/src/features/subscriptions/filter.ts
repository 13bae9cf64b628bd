/**
 * The filter language, checked in the browser before sending (the server checks again and its
 * 400 details are shown the same way): an object of paths to conditions; $and/$or take lists,
 * $not one filter; operators $eq $ne $gt $gte $lt $lte $in $nin $exists $prefix.
 */

export const FILTER_ROOTS = ["event_id", "user_id", "event_type", "payload", "metadata", "timestamp", "ttl"] as const;
const COMPARISONS = new Set(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$prefix"]);

export type FilterCheck = { ok: true; filter: Record<string, unknown> | null } | { ok: false; problems: string[] };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Parse the text of the filter box: empty means no filter. */
export function checkFilterText(text: string): FilterCheck {
  if (!text.trim()) return { ok: true, filter: null };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, problems: ["Not valid JSON."] };
  }
  const problems: string[] = [];
  checkFilter(value, "filter", problems, 0);
  return problems.length ? { ok: false, problems } : { ok: true, filter: value as Record<string, unknown> };
}

function checkFilter(spec: unknown, loc: string, problems: string[], depth: number): void {
  if (depth > 16) {
    problems.push(`${loc}: nested too deep`);
    return;
  }
  if (!isObject(spec)) {
    problems.push(`${loc}: must be an object of paths to conditions`);
    return;
  }
  for (const [key, value] of Object.entries(spec)) {
    const here = `${loc}.${key}`;
    if (key === "$and" || key === "$or") {
      if (!Array.isArray(value) || value.length === 0) problems.push(`${here}: must be a non-empty list of filters`);
      else value.forEach((item, i) => checkFilter(item, `${here}[${i}]`, problems, depth + 1));
    } else if (key === "$not") {
      checkFilter(value, here, problems, depth + 1);
    } else if (key.startsWith("$")) {
      problems.push(`${here}: unknown operator here (use $and, $or, $not or a path)`);
    } else if (!(FILTER_ROOTS as readonly string[]).includes(key.split(".")[0] ?? "") || key.split(".").some((p) => !p)) {
      problems.push(`${here}: a path starts with one of ${FILTER_ROOTS.join(", ")}`);
    } else {
      checkCondition(value, here, problems);
    }
  }
}

function checkCondition(cond: unknown, loc: string, problems: string[]): void {
  if (!isObject(cond) || Object.keys(cond).length === 0 || !Object.keys(cond).every((k) => k.startsWith("$"))) return;
  for (const [op, arg] of Object.entries(cond)) {
    const here = `${loc}.${op}`;
    if (!COMPARISONS.has(op)) problems.push(`${here}: unknown operator`);
    else if ((op === "$in" || op === "$nin") && !Array.isArray(arg)) problems.push(`${here}: must be a list`);
    else if (op === "$exists" && typeof arg !== "boolean") problems.push(`${here}: must be true or false`);
    else if (op === "$prefix" && typeof arg !== "string") problems.push(`${here}: must be a string`);
    else if (["$gt", "$gte", "$lt", "$lte"].includes(op) && typeof arg !== "number" && typeof arg !== "string")
      problems.push(`${here}: must be a number or a string`);
  }
}

/** "order.*, user.created" -> ["order.*", "user.created"]; empty means every type. */
export function parseTypes(text: string): { ok: true; types: string[] } | { ok: false; problem: string } {
  const types = text
    .split(/[\s,]+/)
    .map((t) => t.trim())
    .filter(Boolean);
  const bad = types.find((t) => !/^(\*|[A-Za-z0-9_][A-Za-z0-9_.:-]*\*?)$/.test(t));
  return bad ? { ok: false, problem: `“${bad}” is not an event type or a prefix ending in *` } : { ok: true, types };
}
