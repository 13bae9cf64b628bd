import { useQuery } from "@tanstack/react-query";
import { LogOut, Menu, X, Zap } from "lucide-react";
import { useEffect, useId, useState } from "react";
import { NavLink, Outlet, useLocation, useNavigate } from "react-router";

import { Button } from "@/components/ui/button";
import { sessionQuery, useLogout } from "@/features/auth/queries";
import { toast } from "@/lib/toast";
import { cn } from "@/lib/utils";

import { NAV } from "./nav";

/**
 * The frame of every signed-in page. From 768 px (Tailwind's `md`) the navigation is a sidebar;
 * narrower, it collapses into a top bar whose menu button opens the same entries, so pages get
 * the whole width of a phone (360 px and up).
 */
export function AppShell() {
  const [menuOpen, setMenuOpen] = useState(false);
  const menuId = useId();
  const location = useLocation();

  useEffect(() => setMenuOpen(false), [location.pathname]); // a chosen page closes the menu

  return (
    <div className="flex min-h-full flex-col md:flex-row">
      <aside className="sticky top-0 hidden h-screen w-60 shrink-0 flex-col bg-sidebar text-sidebar-foreground md:flex">
        <Brand className="px-5 py-5" />
        <NavLinks className="flex-1 px-3" />
        <Account className="border-t border-white/10 p-4" />
      </aside>

      <header className="sticky top-0 z-30 bg-sidebar text-sidebar-foreground md:hidden">
        <div className="flex items-center justify-between px-4 py-3">
          <Brand />
          <Button
            variant="ghost"
            size="sm"
            className="text-sidebar-foreground hover:bg-white/10 hover:text-white"
            aria-label={menuOpen ? "Close menu" : "Open menu"}
            aria-expanded={menuOpen}
            aria-controls={menuId}
            onClick={() => setMenuOpen((open) => !open)}
          >
            {menuOpen ? <X /> : <Menu />} Menu
          </Button>
        </div>
        {menuOpen ? (
          <div id={menuId} className="border-t border-white/10 px-3 pt-2 pb-3">
            <NavLinks onNavigate={() => setMenuOpen(false)} />
            <Account className="mt-3 border-t border-white/10 px-1 pt-3" />
          </div>
        ) : null}
      </header>

      <main className="min-w-0 flex-1">
        <div className="mx-auto max-w-6xl px-4 py-6 md:px-8 md:py-8">
          <Outlet />
        </div>
      </main>
    </div>
  );
}

function Brand({ className }: { className?: string }) {
  return (
    <div className={cn("flex items-center gap-2 text-base font-semibold text-white", className)}>
      <span className="flex size-7 items-center justify-center rounded-md bg-primary">
        <Zap className="size-4" />
      </span>
      Triggers API
    </div>
  );
}

function NavLinks({ className, onNavigate }: { className?: string; onNavigate?: () => void }) {
  return (
    <nav className={cn("flex flex-col gap-1", className)} aria-label="Main">
      {NAV.map(({ to, label, icon: Icon, end }) => (
        <NavLink
          key={to}
          to={to}
          end={end ?? false}
          data-nav-entry={to}
          onClick={onNavigate}
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
  );
}

function Account({ className }: { className?: string }) {
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
    <div className={className}>
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
  );
}
