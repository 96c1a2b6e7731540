import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Files run in parallel; each has its own database and key prefix.
    fileParallelism: true,
    // Tests wait on servers far more than on CPU; more workers than cores keeps the suite quick.
    maxWorkers: 4,
  },
});
