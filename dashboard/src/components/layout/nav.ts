import { Activity, BookOpen, FileJson, KeyRound, LayoutDashboard, type LucideIcon, Webhook } from "lucide-react";

export interface NavEntry {
  to: string;
  label: string;
  icon: LucideIcon;
  /** Active only on exactly this path (the Overview at "/"), not on paths below it. */
  end?: boolean;
}

/**
 * The app's pages, in menu order: the one list the sidebar, the phone menu and the browser test
 * (which visits every entry at 390 px and 1440 px) read. A new page adds its entry here.
 */
export const NAV: NavEntry[] = [
  { to: "/", label: "Overview", icon: LayoutDashboard, end: true },
  { to: "/events", label: "Events", icon: Activity },
  { to: "/event-types", label: "Event types", icon: FileJson },
  { to: "/keys", label: "API keys", icon: KeyRound },
  { to: "/subscriptions", label: "Subscriptions", icon: Webhook },
  { to: "/docs", label: "Docs", icon: BookOpen },
];
