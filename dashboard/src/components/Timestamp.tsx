import { formatDateTime, formatRelative } from "@/lib/format";
import { cn } from "@/lib/utils";

/** A relative time ("3 min ago") whose absolute time, with its time zone, shows on hover. */
export function Timestamp({ iso, className, empty = "never" }: { iso: string | null | undefined; className?: string; empty?: string }) {
  if (!iso) return <span className={className}>{empty}</span>;
  const absolute = formatDateTime(iso);
  return (
    <time dateTime={iso} title={absolute} className={cn("whitespace-nowrap", className)}>
      {formatRelative(iso)}
    </time>
  );
}
