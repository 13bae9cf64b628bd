import type { MinuteCount } from "@/services/types";

export interface ChartPoint {
  minute: number; // epoch ms, start of the minute
  label: string;
  count: number;
}

/** The last `minutes` minutes ending now, one point each, zero where the server reported none. */
export function fillMinutes(points: MinuteCount[], now: number = Date.now(), minutes = 60): ChartPoint[] {
  const byMinute = new Map<number, number>();
  for (const p of points) {
    const t = new Date(p.minute).getTime();
    if (Number.isNaN(t)) continue;
    const key = Math.floor(t / 60_000) * 60_000;
    byMinute.set(key, (byMinute.get(key) ?? 0) + p.count);
  }
  const last = Math.floor(now / 60_000) * 60_000;
  const out: ChartPoint[] = [];
  for (let i = minutes - 1; i >= 0; i--) {
    const minute = last - i * 60_000;
    const d = new Date(minute);
    out.push({
      minute,
      label: `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`,
      count: byMinute.get(minute) ?? 0,
    });
  }
  return out;
}
