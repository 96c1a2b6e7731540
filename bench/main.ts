// npm run bench [-- --quick]: seeds a fresh database, starts the real service
// against real PostgreSQL and Redis and the bare floor servers next to it,
// measures the floors and the scenarios in one run, prints a table with the
// goals and the machine, and writes bench/results/latest.json. Everything it
// creates (database, key prefix, temp files, processes) is removed on the way
// out, also on failure and Ctrl-C. A missed goal is reported, never a failure:
// only wrong replies and broken scenarios fail the run.

import { copyFile, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withCleanup } from "./cleanup.js";
import { evaluateGoals } from "./goals.js";
import { loadAverage } from "./machine.js";
import type { Measurement, ScenarioGroup } from "./measurement.js";
import { parseOptions } from "./options.js";
import { renderTable, writeResult, type BenchResult } from "./report.js";
import { fixedCalls } from "./scenarios/hit.js";
import { latency } from "./scenarios/latency.js";
import { stampede } from "./scenarios/stampede.js";
import { tracingCost } from "./scenarios/tracing.js";
import { watchFanout } from "./scenarios/watch.js";
import { zipfMix } from "./scenarios/zipf.js";
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
    const { ctx, machine, seedSeconds, stopServiceAndPool } = await openBench(options, cleanup, say, profileDir);
    const measurements: Measurement[] = [];
    const phase = async (group: ScenarioGroup, label: string, run: () => Promise<Measurement[]>) => {
      if (!options.only.has(group)) return;
      say(label);
      const ms = await run();
      for (const m of ms) say(`  ${m.name}: ${m.throughput} calls/s, p50 ${m.latency.p50} ms, p99 ${m.latency.p99} ms`);
      measurements.push(...ms);
    };
    const o = options;
    await phase("hit", `bare floors, Hit over gRPC and Connect, Batch (${ctx.generator}, 64)`, () => fixedCalls(ctx));
    await phase("latency", `floors, Hit, Miss and Write at ${o.latencyConcurrency} in flight (node)`, () =>
      latency(ctx),
    );
    await phase("zipf", "Zipf (node, 64)", () => zipfMix(ctx));
    await phase("tracing", `Hit with tracing off and on (two fresh instances, ${ctx.generator}, 64)`, () =>
      tracingCost(ctx),
    );
    await phase("watch", `Watch fan-out, ${o.watchers} watchers (fresh instance)`, () => watchFanout(ctx));
    // The stampede counts PostgreSQL's own statistics: nobody else may be connected.
    await phase("stampede", "Stampede (node, two fresh instances)", () => stampede(ctx, stopServiceAndPool));
    await stopServiceAndPool();
    if (profileDir !== undefined) {
      const file = (await readdir(profileDir)).find((f) => f.endsWith(".cpuprofile"));
      if (file === undefined) throw new Error("the service wrote no .cpuprofile");
      await mkdir("bench/results", { recursive: true });
      await copyFile(join(profileDir, file), PROFILE_COPY);
      say(`service CPU profile: ${PROFILE_COPY} (open it in Chrome DevTools or speedscope)`);
    }

    machine.loadAverageAtEnd = loadAverage();
    const result: BenchResult = {
      startedAt: startedAt.toISOString(),
      command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
      machine,
      settings: {
        profiles: o.profiles,
        seedSeconds: Math.round(seedSeconds * 10) / 10,
        durationSeconds: o.durationMs / 1000,
        warmupSeconds: o.warmupMs / 1000,
        rounds: o.rounds,
        zipfWarmupSeconds: o.zipfWarmupMs / 1000,
        zipfDurationSeconds: o.zipfDurationMs / 1000,
        connections: o.connections,
        streamsPerConnection: o.streamsPerConnection,
        latencyConcurrency: o.latencyConcurrency,
        watchers: o.watchers,
        dbPoolSize: o.dbPoolSize,
        serviceLogLevel: ctx.serviceEnv.LOG_LEVEL,
        serviceEnvOverrides: o.serviceEnv,
        service: `child process: node --import tsx ${SERVICE_ENTRY}, NODE_ENV=production`,
        fixedCallGenerator: ctx.generator,
        cpuProfiled: o.cpuProfile,
        totalSeconds: Math.round((performance.now() - started) / 1000),
      },
      measurements,
      goals: evaluateGoals(measurements, o.only),
    };
    process.stdout.write(`\n${renderTable(result)}\n\n`);
    await writeResult(o.output, result);
    say(`wrote ${o.output}`);
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
