import { useSyncExternalStore } from "react";

export type ToastKind = "success" | "error" | "info";

export interface Toast {
  id: number;
  kind: ToastKind;
  title: string;
  description?: string;
  requestId?: string;
}

type Listener = () => void;

let toasts: Toast[] = [];
let nextId = 1;
const listeners = new Set<Listener>();
const DURATION_MS = { success: 4000, info: 5000, error: 9000 } as const;

function emit() {
  for (const listener of listeners) listener();
}

/** A tiny toast queue: outside React so the query cache's error handler can use it too. */
export function toast(kind: ToastKind, title: string, extra: Omit<Toast, "id" | "kind" | "title"> = {}): number {
  const id = nextId++;
  toasts = [...toasts.slice(-4), { id, kind, title, ...extra }];
  emit();
  setTimeout(() => dismissToast(id), DURATION_MS[kind]);
  return id;
}

export function dismissToast(id: number): void {
  const next = toasts.filter((t) => t.id !== id);
  if (next.length !== toasts.length) {
    toasts = next;
    emit();
  }
}

export function clearToasts(): void {
  toasts = [];
  emit();
}

export function currentToasts(): readonly Toast[] {
  return toasts;
}

function subscribe(listener: Listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function useToasts(): Toast[] {
  return useSyncExternalStore(subscribe, currentToasts, currentToasts) as Toast[];
}
