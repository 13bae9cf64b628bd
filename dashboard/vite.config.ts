/// <reference types="vitest/config" />
import path from "node:path";
import { fileURLToPath } from "node:url";

import tailwindcss from "@tailwindcss/vite";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const here = path.dirname(fileURLToPath(import.meta.url));

// The service serves the build at /dashboard from inside the Python package (git-ignored).
export default defineConfig({
  base: "/dashboard/",
  plugins: [react(), tailwindcss()],
  resolve: { alias: { "@": path.resolve(here, "src") } },
  build: {
    outDir: path.resolve(here, "../src/triggers_api/dashboard/static"),
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    // Strict CSP (script-src 'self'): never inline a module preload polyfill or asset.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
  server: {
    // `npm run dev` against `make run` on :8000; same-origin through the proxy, so cookies work.
    proxy: { "/v1": "http://127.0.0.1:8000", "/docs": "http://127.0.0.1:8000" },
  },
  test: {
    environment: "jsdom",
    globals: true,
    setupFiles: ["./src/test/setup.ts"],
    css: false,
    restoreMocks: true,
    unstubGlobals: true,
    // Generous limits: the suite shares two cores with the Python tests and the browser in CI.
    testTimeout: 30_000,
  },
});
