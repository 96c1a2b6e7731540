import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Picks (or starts) the PostgreSQL and Redis the suite uses; see the file.
    globalSetup: ["test/support/global-setup.ts"],
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Files run in parallel; each has its own database and key prefix.
    fileParallelism: true,
    // Tests wait on servers far more than on CPU; more workers than cores keeps the suite quick.
    maxWorkers: 4,
  },
});
