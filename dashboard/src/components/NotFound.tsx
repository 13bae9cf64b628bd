import { Compass } from "lucide-react";
import { Link } from "react-router";

import { EmptyState } from "@/components/EmptyState";
import { buttonVariants } from "@/components/ui/button";

export function NotFound() {
  return (
    <EmptyState
      icon={Compass}
      title="Page not found"
      action={
        <Link to="/" className={buttonVariants({ variant: "outline" })}>
          Back to the overview
        </Link>
      }
    >
      There is nothing at this address in the dashboard.
    </EmptyState>
  );
}
