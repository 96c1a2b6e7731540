// Command-line options. --quick is the CI smoke test: a small data set,
// sub-second windows and a few hundred watchers, so the whole run stays well
// under a minute. It checks every reply; its ratios mean nothing.

import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { SCENARIO_GROUPS, type ScenarioGroup } from "./measurement.js";

export type BenchOptions = ReturnType<typeof parseOptions>;

const USAGE = `usage: npm run bench -- [--quick] [--profiles N] [--duration S] [--warmup S]
  [--zipf-warmup S] [--zipf-duration S] [--rounds N] [--watchers N] [--no-h2load]
  [--only ${SCENARIO_GROUPS.join(",")}] [--service-env KEY=VALUE]... [--cpu-prof] [--output FILE]
  [--baseline DIR]   (tracing group: also the Hit of the checkout in DIR, e.g. the commit before a change)
Environment: BENCH_DATABASE_URL (admin connection, default postgres://postgres@127.0.0.1:5432/postgres),
             BENCH_REDIS_URL (default redis://127.0.0.1:6379)`;

export function parseOptions(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean", default: false },
      profiles: { type: "string" },
      duration: { type: "string" },
      warmup: { type: "string" },
      "zipf-warmup": { type: "string" },
      "zipf-duration": { type: "string" },
      rounds: { type: "string" },
      watchers: { type: "string" },
      "no-h2load": { type: "boolean", default: false },
      "cpu-prof": { type: "boolean", default: false },
      only: { type: "string" },
      "service-env": { type: "string", multiple: true, default: [] },
      output: { type: "string", default: "bench/results/latest.json" },
      baseline: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const quick = values.quick;
  const fail = (message: string) => new Error(`${message}\n${USAGE}`);
  const seconds = (raw: string | undefined, fallback: number, name: string) => {
    const s = raw === undefined ? fallback : Number(raw);
    if (!(s > 0)) throw fail(`--${name} must be a positive number of seconds`);
    return Math.round(s * 1000);
  };
  const count = (raw: string | undefined, fallback: number, min: number, name: string) => {
    const n = raw === undefined ? fallback : Number(raw);
    if (!Number.isSafeInteger(n) || n < min) throw fail(`--${name} must be an integer of at least ${min}`);
    return n;
  };
  const profiles = count(values.profiles, quick ? 2_000 : 1_000_000, 1_000, "profiles");
  const only = new Set((values.only ?? SCENARIO_GROUPS.join(",")).split(",")) as Set<ScenarioGroup>;
  for (const g of only) if (!SCENARIO_GROUPS.includes(g)) throw fail(`--only: unknown group "${g}"`);
  const serviceEnv: Record<string, string> = {};
  for (const kv of values["service-env"]) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw fail(`--service-env expects KEY=VALUE, got "${kv}"`);
    serviceEnv[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return {
    quick,
    /** Scenario groups to run (default all). */
    only: only as ReadonlySet<ScenarioGroup>,
    /** Extra environment for every service instance (--service-env KEY=VALUE), e.g. to try a setting. */
    serviceEnv: serviceEnv as Readonly<Record<string, string>>,
    profiles,
    /** Measured window and warm-up of each floor and scenario. */
    durationMs: seconds(values.duration, quick ? 1 : 15, "duration"),
    warmupMs: seconds(values.warmup, quick ? 0.3 : 3, "warmup"),
    zipfWarmupMs: seconds(values["zipf-warmup"], quick ? 1 : 60, "zipf-warmup"),
    zipfDurationMs: seconds(values["zipf-duration"], quick ? 1 : 60, "zipf-duration"),
    /** In flight for the fixed calls and Zipf: 4 connections × 16 streams. */
    connections: 4,
    streamsPerConnection: 16,
    /** In flight for the latency goals (Hit, Miss, Write and their floors): unloaded round trips. */
    latencyConcurrency: 1,
    /** Alternating rounds of each floor and its scenarios: drift on a shared box hits both alike. */
    rounds: count(values.rounds, quick ? 1 : 3, 1, "rounds"),
    watchers: count(values.watchers, quick ? 200 : 10_000, 1, "watchers"),
    watchWrites: quick ? 3 : 20,
    stampedeRequests: 1_000,
    /** Hits each stampede instance serves first, so it runs warm code like a production replica. */
    stampedeWarmupCalls: quick ? 1_000 : 5_000,
    useH2load: !values["no-h2load"],
    /** Run the main instance under node --cpu-prof and keep its profile (slows it a little). */
    cpuProfile: values["cpu-prof"],
    adminDatabaseUrl: process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
    redisUrl: process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379",
    dbPoolSize: 20,
    output: values.output,
    /** src/main.ts of another checkout (with its own node_modules), measured beside tracing off. */
    baselineEntry: values.baseline === undefined ? undefined : resolve(values.baseline, "src/main.ts"),
  };
}
