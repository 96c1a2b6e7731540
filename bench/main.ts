// npm run bench [-- --quick]: seeds a fresh database, starts the real service
// against real PostgreSQL and Redis, measures the floors and the scenarios of
// issue 5 in one run, prints a table and writes bench/results/latest.json.
// Everything it creates (database, key prefix, temp files, processes) is
// removed on the way out, also on failure and Ctrl-C.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withCleanup } from "./cleanup.js";
import { evaluateGoals } from "./goals.js";
import type { Measurement } from "./measurement.js";
import { parseOptions, type ScenarioGroup } from "./options.js";
import { renderTable, writeResult, type BenchResult } from "./report.js";
import { hitAndBatch } from "./scenarios/hit.js";
import { hitSpread } from "./scenarios/hit-spread.js";
import { missAndWrite } from "./scenarios/latency.js";
import { stampede } from "./scenarios/stampede.js";
import { zipfMix } from "./scenarios/zipf.js";
import { earlyRefresh } from "./scenarios/early-refresh.js";
import { attachServiceCpu } from "./service-profile.js";
import { SERVICE_ENTRY } from "./service.js";
import { openBench } from "./setup.js";

const PROFILE_COPY = "bench/results/service.cpuprofile";

const started = performance.now();
const startedAt = new Date();
const say = (message: string) =>
  process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}\n`);

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  await withCleanup(say, async (cleanup) => {
    let profileDir: string | undefined;
    if (options.cpuProfile) {
      const dir = await mkdtemp(join(tmpdir(), "profile-bench-cpuprof-"));
      cleanup.add("profile folder", () => rm(dir, { recursive: true, force: true }));
      profileDir = dir;
    }
    const { ctx, machine, seedSeconds, stopServiceAndPool } = await openBench(options, cleanup, say, {
      cpuProfileDir: profileDir,
    });
    const measurements: Measurement[] = [];
    const phase = async (group: ScenarioGroup, label: string, run: () => Promise<Measurement[]>) => {
      if (!options.only.has(group)) return;
      say(label);
      const ms = await run();
      for (const m of ms) say(`  ${m.name}: ${m.throughput} calls/s, p50 ${m.latency.p50} ms, p99 ${m.latency.p99} ms`);
      measurements.push(...ms);
    };
    await phase("hit", `F-rpc, Hit and Batch (${ctx.generator})`, () => hitAndBatch(ctx));
    await phase("spread", "F-rpc and Hit over many warm keys (node)", () => hitSpread(ctx));
    await phase("latency", "floors, Miss and Write (node)", () => missAndWrite(ctx));
    await phase("zipf", "Zipf (node)", () => zipfMix(ctx));
    await phase("xfetch", "Zipf with a short TTL, without and with early refresh (node, fresh instances)", () =>
      earlyRefresh(ctx),
    );
    // The stampede counts PostgreSQL's own statistics: nobody else may be connected.
    await stopServiceAndPool();
    let profileReport = "";
    if (profileDir !== undefined) {
      profileReport = await attachServiceCpu(profileDir, measurements, PROFILE_COPY);
      say(`service CPU profile: ${PROFILE_COPY} (open in Chrome DevTools or tsx bench/cpuprofile-summary.ts)`);
    }
    await phase("stampede", "Stampede (node, two fresh instances)", () => stampede(ctx));

    const result: BenchResult = {
      startedAt: startedAt.toISOString(),
      command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
      machine,
      settings: {
        profiles: options.profiles,
        seedSeconds: Math.round(seedSeconds * 10) / 10,
        durationSeconds: options.durationMs / 1000,
        warmupSeconds: options.warmupMs / 1000,
        zipfWarmupSeconds: options.zipfWarmupMs / 1000,
        zipfDurationSeconds: options.zipfDurationMs / 1000,
        connections: options.connections,
        streamsPerConnection: options.streamsPerConnection,
        latencyConcurrency: options.latencyConcurrency,
        dbPoolSize: options.dbPoolSize,
        serviceLogLevel: ctx.serviceEnv.LOG_LEVEL,
        serviceEnvOverrides: options.serviceEnv,
        service: `child process: node --import tsx ${SERVICE_ENTRY} (src/main.ts's createApp + listen, plus Health/Check), NODE_ENV=production`,
        fixedCallGenerator: ctx.generator,
        cpuProfiled: options.cpuProfile,
        totalSeconds: Math.round((performance.now() - started) / 1000),
      },
      measurements,
      goals: evaluateGoals(measurements, options.latencyConcurrency),
    };
    if (profileReport !== "") process.stdout.write(`\n${profileReport}\n`);
    process.stdout.write(`\n${renderTable(result)}\n\n`);
    await writeResult(options.output, result);
    say(`wrote ${options.output}`);
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
