// npm run bench:profile: runs the service under `node --cpu-prof`, drives
// F-rpc and then Hit through it (same generator and shape as `npm run bench`),
// and prints where each one's CPU time goes, from the samples taken inside
// each measured window only (startup and warm-up excluded).

import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withCleanup } from "./cleanup.js";
import { renderSummary, summarizeProfile, type CpuProfile, type Window } from "./cpuprofile-summary.js";
import { parseOptions } from "./options.js";
import { hit, rpcFloor } from "./scenarios/hit.js";
import { openBench } from "./setup.js";

const say = (message: string) => process.stderr.write(`${message}\n`);

async function main(): Promise<void> {
  // A small data set is enough: the hit path does not depend on the row count.
  const options = parseOptions(["--profiles", "10000", "--duration", "10", "--warmup", "3", ...process.argv.slice(2)]);
  await withCleanup(say, async (cleanup) => {
    const profileDir = await mkdtemp(join(tmpdir(), "profile-bench-cpuprof-"));
    cleanup.add("profile folder", () => rm(profileDir, { recursive: true, force: true }));
    const bench = await openBench(options, cleanup, say, { cpuProfileDir: profileDir });
    const measured = [await rpcFloor(bench.ctx), await hit(bench.ctx)];
    await bench.stopServiceAndPool(); // the profile is written as the process exits

    const file = (await readdir(profileDir)).find((f) => f.endsWith(".cpuprofile"));
    if (file === undefined) throw new Error("the service wrote no .cpuprofile");
    const profile = JSON.parse(await readFile(join(profileDir, file), "utf8")) as CpuProfile;
    await mkdir("bench/results", { recursive: true });
    await copyFile(join(profileDir, file), "bench/results/hit.cpuprofile");
    const summaries: Record<string, unknown> = {};
    for (const m of measured) {
      const summary = summarizeProfile(profile, 30, m.extra.windowUs as Window);
      const perCallUs = Math.round((summary.busyMs / (m.throughput * (options.durationMs / 1000))) * 1000);
      summaries[m.name] = { throughput: m.throughput, latency: m.latency, busyMicrosecondsPerCall: perCallUs, profile: summary };
      process.stdout.write(
        `\n=== ${m.name}: ${m.throughput} calls/s, p50 ${m.latency.p50} ms, p99 ${m.latency.p99} ms; ` +
          `service CPU ≈ ${perCallUs} µs per call\n${renderSummary(summary)}\n`,
      );
    }
    await writeFile("bench/results/hit-profile.json", `${JSON.stringify({ machine: bench.machine, summaries }, null, 2)}\n`);
    say("wrote bench/results/hit.cpuprofile (open in Chrome DevTools) and bench/results/hit-profile.json");
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:profile failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
