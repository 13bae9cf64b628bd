import { describe, expect, it, vi } from "vitest";

import { ApiError } from "@/services/api-client";

import { createQueryClient } from "./query-client";
import { clearToasts, currentToasts } from "./toast";

describe("createQueryClient", () => {
  it("sends every 401 to one onUnauthorized call per burst", async () => {
    const onUnauthorized = vi.fn();
    const client = createQueryClient({ onUnauthorized });
    const fail = () => Promise.reject(new ApiError(401, "UNAUTHORIZED", "expired", "r1"));
    await Promise.allSettled([
      client.fetchQuery({ queryKey: ["a"], queryFn: fail }),
      client.fetchQuery({ queryKey: ["b"], queryFn: fail }),
    ]);
    await Promise.resolve();
    await Promise.resolve();
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
  });

  it("ignores further 401s until the redirect to login has finished", async () => {
    let finish: () => void = () => undefined;
    const onUnauthorized = vi.fn(() => new Promise<void>((resolve) => (finish = resolve)));
    const client = createQueryClient({ onUnauthorized });
    const fail = () => Promise.reject(new ApiError(401, "UNAUTHORIZED", "expired", "r1"));
    const settle = async () => {
      for (let i = 0; i < 5; i++) await Promise.resolve();
    };
    await client.fetchQuery({ queryKey: ["a"], queryFn: fail }).catch(() => undefined);
    await settle();
    // A page still mounted during the navigation refetches: not a second redirect.
    await client.fetchQuery({ queryKey: ["b"], queryFn: fail }).catch(() => undefined);
    await settle();
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
    finish();
    await settle();
    await client.fetchQuery({ queryKey: ["c"], queryFn: fail }).catch(() => undefined);
    await settle();
    expect(onUnauthorized).toHaveBeenCalledTimes(2);
  });

  it("does not retry client errors", async () => {
    const client = createQueryClient({ onUnauthorized: vi.fn() });
    const queryFn = vi.fn(() => Promise.reject(new ApiError(404, "NOT_FOUND", "gone")));
    await client.fetchQuery({ queryKey: ["x"], queryFn }).catch(() => undefined);
    expect(queryFn).toHaveBeenCalledTimes(1);
  });

  it("toasts a failed mutation with the friendly message and the request id", async () => {
    clearToasts();
    const client = createQueryClient({ onUnauthorized: vi.fn() });
    const mutation = client.getMutationCache().build(client, {
      mutationFn: () => Promise.reject(new ApiError(500, "INTERNAL_ERROR", "boom", "req-500")),
    });
    await mutation.execute(undefined).catch(() => undefined);
    expect(currentToasts().at(-1)).toMatchObject({
      kind: "error",
      title: "An error occurred on our end. Please try again later.",
      requestId: "req-500",
    });
  });
});
