import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["**/*.test.ts"],
    exclude: ["node_modules/**", ".kubelab/**"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration suites start real processes (etcd, apiserver, kubectl); keep the 2-core CI machine sane.
    maxWorkers: 2,
  },
});
