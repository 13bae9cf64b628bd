import { Check, Copy } from "lucide-react";
import { useEffect, useState } from "react";

import { Button, type ButtonProps } from "@/components/ui/button";
import { toast } from "@/lib/toast";

/** Copies `value` to the clipboard; says so for two seconds. */
export function CopyButton({
  value,
  label = "Copy",
  onCopied,
  ...props
}: { value: string; label?: string; onCopied?: () => void } & Omit<ButtonProps, "onClick" | "value">) {
  const [copied, setCopied] = useState(false);

  useEffect(() => {
    if (!copied) return;
    const timer = setTimeout(() => setCopied(false), 2000);
    return () => clearTimeout(timer);
  }, [copied]);

  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setCopied(true);
      onCopied?.();
    } catch {
      toast("error", "Could not copy to the clipboard. Select the text and copy it instead.");
    }
  };

  return (
    <Button variant="outline" size="sm" onClick={() => void copy()} aria-label={copied ? "Copied" : label} {...props}>
      {copied ? <Check className="text-success" /> : <Copy />}
      {copied ? "Copied" : label}
    </Button>
  );
}
