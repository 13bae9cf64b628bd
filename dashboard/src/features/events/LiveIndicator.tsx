import { cn } from "@/lib/utils";

import type { LiveMode } from "./useLiveEvents";

const TEXT: Record<LiveMode, { label: string; title: string }> = {
  live: { label: "Live", title: "Connected to the event stream: new events appear at once" },
  connecting: { label: "Connecting…", title: "Opening the event stream" },
  polling: { label: "Auto-refresh", title: "The live stream is unavailable: refreshing every few seconds" },
};

export function LiveIndicator({ mode }: { mode: LiveMode }) {
  return (
    <span
      className="inline-flex items-center gap-2 rounded-full border bg-card px-3 py-1 text-xs font-medium"
      title={TEXT[mode].title}
      data-live-mode={mode}
    >
      <span className="relative flex size-2">
        {mode === "live" ? <span className="absolute inline-flex size-full animate-ping rounded-full bg-success opacity-60" /> : null}
        <span
          className={cn(
            "relative inline-flex size-2 rounded-full",
            mode === "live" ? "bg-success" : mode === "connecting" ? "bg-muted-foreground" : "bg-warning",
          )}
        />
      </span>
      {TEXT[mode].label}
    </span>
  );
}
