// Issue 9, item 1: the guard behind the root fix. A process that has
// installed it and then leaves a rejection unhandled logs it at error level,
// counts it in unhandled_rejections_total and keeps running; without the
// guard, Node exits with 1.

import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { sample } from "./support/prometheus.js";

async function run(env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", "test/fixtures/unhandled-rejection.ts"], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stdout += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { code, stdout };
}

describe("an unhandled rejection", () => {
  it("is logged at error level and counted, and the process keeps running", async () => {
    const { code, stdout } = await run();
    expect(code, stdout).toBe(0);
    expect(stdout).toContain("still running");
    const lines = stdout
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l));
    expect(lines).toEqual([
      expect.objectContaining({
        level: 50,
        msg: "unhandled promise rejection; the process keeps running",
        err: "Error: a bug: a promise nobody handled",
      }),
    ]);
    // Name and message only: no stack trace.
    expect(stdout).not.toContain("unhandled-rejection.ts:");
    expect(sample(stdout, "unhandled_rejections_total")).toBe(1);
  });

  it("takes the process down without the guard (what the guard prevents)", async () => {
    const { code, stdout } = await run({ NO_GUARDS: "1" });
    expect(code).toBe(1);
    expect(stdout).not.toContain("still running");
  });
});
