import { useQuery } from "@tanstack/react-query";
import { Activity, BookOpen, KeyRound, LayoutDashboard, LogOut, Webhook, Zap } from "lucide-react";
import { NavLink, Outlet, useNavigate } from "react-router";

import { Button } from "@/components/ui/button";
import { sessionQuery, useLogout } from "@/features/auth/queries";
import { toast } from "@/lib/toast";
import { cn } from "@/lib/utils";

const NAV = [
  { to: "/", label: "Overview", icon: LayoutDashboard, end: true },
  { to: "/events", label: "Events", icon: Activity, end: false },
  { to: "/keys", label: "API keys", icon: KeyRound, end: false },
  { to: "/subscriptions", label: "Subscriptions", icon: Webhook, end: false },
  { to: "/docs", label: "Docs", icon: BookOpen, end: false },
] as const;

export function AppShell() {
  const session = useQuery(sessionQuery);
  const logout = useLogout();
  const navigate = useNavigate();

  const signOut = () =>
    logout.mutate(undefined, {
      onSuccess: () => {
        toast("info", "You are logged out.");
        void navigate("/login", { replace: true });
      },
    });

  return (
    <div className="flex min-h-full">
      <aside className="sticky top-0 flex h-screen w-60 shrink-0 flex-col bg-sidebar text-sidebar-foreground">
        <div className="flex items-center gap-2 px-5 py-5 text-base font-semibold text-white">
          <span className="flex size-7 items-center justify-center rounded-md bg-primary">
            <Zap className="size-4" />
          </span>
          Triggers API
        </div>
        <nav className="flex flex-1 flex-col gap-1 px-3" aria-label="Main">
          {NAV.map(({ to, label, icon: Icon, end }) => (
            <NavLink
              key={to}
              to={to}
              end={end}
              className={({ isActive }) =>
                cn(
                  "flex items-center gap-3 rounded-md px-3 py-2 text-sm transition-colors hover:bg-white/10 hover:text-white",
                  isActive && "bg-white/12 font-medium text-white",
                )
              }
            >
              <Icon className="size-4" />
              {label}
            </NavLink>
          ))}
        </nav>
        <div className="border-t border-white/10 p-4">
          {session.data ? (
            <div className="mb-3 text-xs">
              <p className="text-white/50">Signed in as</p>
              <p className="truncate font-medium text-white" data-testid="session-user">
                {session.data.user_id}
              </p>
              <p className="truncate font-mono text-white/50">
                {session.data.key_name} · {session.data.key_prefix}…
              </p>
            </div>
          ) : null}
          <Button
            variant="ghost"
            size="sm"
            className="w-full justify-start text-sidebar-foreground hover:bg-white/10 hover:text-white"
            onClick={signOut}
            disabled={logout.isPending}
          >
            <LogOut /> Log out
          </Button>
        </div>
      </aside>
      <main className="min-w-0 flex-1">
        <div className="mx-auto max-w-6xl px-8 py-8">
          <Outlet />
        </div>
      </main>
    </div>
  );
}
