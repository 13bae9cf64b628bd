import { Search, X } from "lucide-react";
import { useEffect, useState } from "react";

import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { Select } from "@/components/ui/select";
import { EVENT_STATUSES } from "@/services/types";

import { EVENT_TYPE_PATTERN, type EventsView, TIME_RANGES, type TimeRange } from "./filters";

/** Type, status and time range; the type applies after a short pause in typing. */
export function EventFiltersBar({ view, onChange }: { view: EventsView; onChange: (view: EventsView) => void }) {
  const [typeText, setTypeText] = useState(view.eventType);
  const typeInvalid = typeText !== "" && !EVENT_TYPE_PATTERN.test(typeText);

  useEffect(() => setTypeText(view.eventType), [view.eventType]);

  useEffect(() => {
    if (typeText === view.eventType || typeInvalid) return;
    const timer = setTimeout(() => onChange({ ...view, eventType: typeText }), 350);
    return () => clearTimeout(timer);
  }, [typeText, typeInvalid, view, onChange]);

  const active = view.eventType || view.status || view.range !== "all";

  return (
    <div className="flex flex-wrap items-end gap-3 rounded-lg border bg-card p-4 shadow-sm" role="search">
      <div className="flex min-w-56 flex-1 flex-col gap-1.5">
        <Label htmlFor="filter-type">Event type</Label>
        <div className="relative">
          <Search className="pointer-events-none absolute top-2.5 left-2.5 size-4 text-muted-foreground" />
          <Input
            id="filter-type"
            className="pl-8"
            placeholder="e.g. order.completed"
            value={typeText}
            onChange={(e) => setTypeText(e.target.value.trim())}
            aria-invalid={typeInvalid ? true : undefined}
            aria-describedby={typeInvalid ? "filter-type-error" : undefined}
          />
        </div>
        {typeInvalid ? (
          <p id="filter-type-error" className="text-xs text-destructive">
            Letters, digits and . _ : - only
          </p>
        ) : null}
      </div>
      <div className="flex w-40 flex-col gap-1.5">
        <Label htmlFor="filter-status">Status</Label>
        <Select
          id="filter-status"
          value={view.status}
          onChange={(e) => onChange({ ...view, status: e.target.value as EventsView["status"] })}
        >
          <option value="">Any status</option>
          {EVENT_STATUSES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </Select>
      </div>
      <div className="flex w-48 flex-col gap-1.5">
        <Label htmlFor="filter-range">Time range</Label>
        <Select
          id="filter-range"
          value={view.range}
          onChange={(e) => onChange({ ...view, range: e.target.value as TimeRange })}
        >
          {TIME_RANGES.map((r) => (
            <option key={r.value} value={r.value}>
              {r.label}
            </option>
          ))}
        </Select>
      </div>
      {view.range === "custom" ? (
        <>
          <div className="flex flex-col gap-1.5">
            <Label htmlFor="filter-from">From</Label>
            <Input
              id="filter-from"
              type="datetime-local"
              value={view.from}
              onChange={(e) => onChange({ ...view, from: e.target.value })}
            />
          </div>
          <div className="flex flex-col gap-1.5">
            <Label htmlFor="filter-to">To</Label>
            <Input
              id="filter-to"
              type="datetime-local"
              value={view.to}
              onChange={(e) => onChange({ ...view, to: e.target.value })}
            />
          </div>
        </>
      ) : null}
      {active ? (
        <Button
          variant="ghost"
          onClick={() => {
            setTypeText("");
            onChange({ eventType: "", status: "", range: "all", from: "", to: "" });
          }}
        >
          <X /> Clear filters
        </Button>
      ) : null}
    </div>
  );
}
