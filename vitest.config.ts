import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Picks (or starts) the PostgreSQL and Redis the suite uses; see the file.
    globalSetup: ["test/support/global-setup.ts"],
    pool: "forks",
    testTimeout: 30_000,
    // Real servers, processes and timers on a shared 2-core machine: a rare
    // scheduling stall can fail a timing bound, so a failed test runs once
    // more. The flaky reporter names every test that needed it, with its first
    // error, so a flake is seen and fixed at its cause rather than hidden.
    retry: 1,
    // expect.poll waits for a condition; its 1 s default was shorter than a
    // loaded run needs for a child process's first call to reach PostgreSQL.
    expect: { poll: { timeout: 10_000 } },
    reporters: ["default", "./test/support/flaky-reporter.ts"],
    hookTimeout: 60_000,
    // Files run in parallel; each has its own database and key prefix.
    fileParallelism: true,
    // Tests wait on servers far more than on CPU; more workers than cores keeps the suite quick.
    maxWorkers: 4,
  },
});
