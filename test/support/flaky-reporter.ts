// The suite runs a failed test once more (vitest.config.ts: `retry`), because
// it drives real servers, processes and timers on a shared 2-core machine,
// where a rare scheduling stall can fail a timing bound. A test that only
// passed on its second run is not hidden: this reporter lists each one, with
// the first run's error, at the end of the run, so it can be fixed at the cause.

import { relative } from "node:path";
import type { Reporter, TestCase } from "vitest/node";

export default class FlakyReporter implements Reporter {
  private readonly flaky: string[] = [];

  onTestCaseResult(testCase: TestCase): void {
    const diagnostic = testCase.diagnostic();
    if (diagnostic === undefined || !diagnostic.flaky) return;
    const file = relative(process.cwd(), testCase.module.moduleId);
    const firstError = testCase.result().errors?.[0]?.message?.split("\n")[0] ?? "(no error recorded)";
    this.flaky.push(
      `${file} > ${testCase.fullName}: passed on retry ${diagnostic.retryCount}; failed first with: ${firstError}`,
    );
  }

  onTestRunEnd(): void {
    if (this.flaky.length === 0) return;
    const lines = [`FLAKY: ${this.flaky.length} test(s) failed once and passed when run again:`, ...this.flaky];
    process.stdout.write(`\n${lines.join("\n  ")}\n`);
  }
}
