import { Loader2 } from "lucide-react";

export function FullPageSpinner({ label }: { label: string }) {
  return (
    <div className="flex min-h-full items-center justify-center p-12 text-muted-foreground" role="status">
      <Loader2 className="mr-2 size-5 animate-spin" />
      <span className="text-sm">{label}</span>
    </div>
  );
}
