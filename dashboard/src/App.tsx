import { QueryClientProvider } from "@tanstack/react-query";
import { RouterProvider } from "react-router";

import { Toaster } from "@/components/ui/toaster";
import { createQueryClient } from "@/lib/query-client";
import { createAppRouter, sendToLogin } from "@/router";

const router = createAppRouter();
const queryClient = createQueryClient({ onUnauthorized: () => sendToLogin(router, queryClient) });

export function App() {
  return (
    <QueryClientProvider client={queryClient}>
      <RouterProvider router={router} />
      <Toaster />
    </QueryClientProvider>
  );
}
