// The consistency checker as a test oracle: one round over the users a test
// touched, once no write to them is in flight any more (events are marked
// done in batches, 200 ms apart), and once at least `minChecked` of their
// keys hold something to compare (fills land just after their answer).

import { expect } from "vitest";
import type { CheckReport, ConsistencyChecker } from "../../src/consistency/consistency-checker.js";

export async function settledCheck(
  checker: Pick<ConsistencyChecker, "runOnce">,
  userIds: readonly string[],
  label: string,
  minChecked = 1,
): Promise<CheckReport> {
  let report: CheckReport | undefined;
  // Every round counts: an inconsistency seen by a round before the last is not dropped (each key once).
  const inconsistencies: CheckReport["inconsistencies"] = [];
  let rounds = 0;
  await expect
    .poll(
      async () => {
        report = await checker.runOnce({ userIds });
        rounds++;
        for (const found of report.inconsistencies) {
          const seen = inconsistencies.some((i) => i.userId === found.userId && i.cacheType === found.cacheType);
          if (!seen) inconsistencies.push(found);
        }
        return report.inFlight === 0 && report.checked >= minChecked;
      },
      { timeout: 10_000, interval: 100 },
    )
    .toBe(true);
  const { users, checked, inFlight } = report!;
  console.log(`Consistency check (${label}): ${JSON.stringify({ rounds, users, checked, inFlight, inconsistencies })}`);
  return { users, checked, inFlight, inconsistencies };
}
