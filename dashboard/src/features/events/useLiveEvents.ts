import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";

import { apiClient, type StreamState } from "@/services/api-client";

import { eventKeys } from "./queries";

export type LiveMode = "live" | "connecting" | "polling";

const RETRY_STREAM_MS = 30_000;
const COALESCE_MS = 250;

/**
 * Keeps event lists current: through `GET /v1/inbox/stream` (SSE) when the server has it, each
 * new event refreshing the lists at once; otherwise (404 before the delivery worker is deployed,
 * a proxy that drops streams, an expired session) the caller polls, and the stream is retried
 * every 30 s.
 */
export function useLiveEvents(eventType: string | undefined): LiveMode {
  const queryClient = useQueryClient();
  const [state, setState] = useState<StreamState>("connecting");
  const pending = useRef<ReturnType<typeof setTimeout> | null>(null);

  useEffect(() => {
    let close: () => void = () => undefined;
    let retry: ReturnType<typeof setTimeout> | null = null;
    let stopped = false;

    const refresh = () => {
      if (pending.current) return;
      pending.current = setTimeout(() => {
        pending.current = null;
        void queryClient.invalidateQueries({ queryKey: eventKeys.all });
      }, COALESCE_MS);
    };

    const connect = () => {
      close = apiClient.openEventStream({
        eventType,
        onEvent: refresh,
        onState: (next) => {
          if (stopped) return;
          setState(next);
          if (next === "unavailable") {
            close();
            retry = setTimeout(connect, RETRY_STREAM_MS);
          } else if (next === "open") {
            refresh(); // catch up with anything that arrived while disconnected
          }
        },
      });
    };
    connect();

    return () => {
      stopped = true;
      close();
      if (retry) clearTimeout(retry);
      if (pending.current) {
        clearTimeout(pending.current);
        pending.current = null;
      }
    };
  }, [eventType, queryClient]);

  return state === "open" ? "live" : state === "connecting" ? "connecting" : "polling";
}
