// The suite's retry must not hide a flaky test: one that failed once and
// passed on its retry is named at the end of the run, with its first error.

import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);

describe("the flaky-test reporter", () => {
  it("names a test that passed only on its retry, with the first run's error, and no other", async () => {
    const { stdout } = await run("npx", ["vitest", "run", "--root", "test/fixtures/flaky"], {
      env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" },
      timeout: 60_000,
    });
    const report = stdout.slice(stdout.indexOf("FLAKY:"));
    expect(report).toMatch(/^FLAKY: 1 test\(s\) failed once and passed when run again:/);
    expect(report).toContain(
      "fails-once.fixture.ts > fails on its first run only: passed on retry 1; failed first with: the first run: expected 1 to be 2",
    );
    expect(report).not.toContain("always passes");
  }, 90_000);
});
