// Command-line options. --quick is the CI smoke test: a small data set and
// sub-second windows, so the whole run stays well under a minute.

import { parseArgs } from "node:util";

export interface BenchOptions {
  quick: boolean;
  profiles: number;
  /** Measured window and warm-up of each floor and scenario. */
  durationMs: number;
  warmupMs: number;
  zipfWarmupMs: number;
  zipfDurationMs: number;
  /** In flight for Hit, Batch and Zipf (and their floors): 4 connections × 16 streams. */
  connections: number;
  streamsPerConnection: number;
  /** In flight for Miss and Write and their floors: latency goals are about unloaded round trips. */
  latencyConcurrency: number;
  /** Alternating rounds of each floor and its scenarios (Hit; Miss and Write): drift on a shared box hits both alike. */
  rounds: number;
  stampedeRequests: number;
  /** Hits each stampede instance serves first, so it runs warm code like a production replica. */
  stampedeWarmupCalls: number;
  /** Warm keys the Node hit scenario spreads its reads over. */
  warmKeys: number;
  useH2load: boolean;
  /** Run the main instance under node --cpu-prof and report its CPU per scenario (slows it a little). */
  cpuProfile: boolean;
  /** Scenario groups to run (default all): a development aid. */
  only: ReadonlySet<ScenarioGroup>;
  /** Extra environment for every service instance (KEY=VALUE), e.g. to try a setting. */
  serviceEnv: Readonly<Record<string, string>>;
  adminDatabaseUrl: string;
  redisUrl: string;
  dbPoolSize: number;
  output: string;
}

export const SCENARIO_GROUPS = ["hit", "spread", "latency", "zipf", "xfetch", "stampede"] as const;
export type ScenarioGroup = (typeof SCENARIO_GROUPS)[number];

const USAGE = `usage: npm run bench -- [--quick] [--profiles N] [--duration S] [--warmup S]
  [--zipf-warmup S] [--zipf-duration S] [--rounds N] [--no-h2load] [--only ${SCENARIO_GROUPS.join(",")}]
  [--service-env KEY=VALUE]... [--cpu-prof] [--output FILE]
Environment: BENCH_DATABASE_URL (admin connection, default postgres://postgres@127.0.0.1:5432/postgres),
             BENCH_REDIS_URL (default redis://127.0.0.1:6379)`;

export function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean", default: false },
      profiles: { type: "string" },
      duration: { type: "string" },
      warmup: { type: "string" },
      "zipf-warmup": { type: "string" },
      "zipf-duration": { type: "string" },
      "no-h2load": { type: "boolean", default: false },
      "cpu-prof": { type: "boolean", default: false },
      only: { type: "string" },
      rounds: { type: "string" },
      "service-env": { type: "string", multiple: true, default: [] },
      output: { type: "string", default: "bench/results/latest.json" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const quick = values.quick;
  const seconds = (raw: string | undefined, fallbackSeconds: number, name: string) => {
    const s = raw === undefined ? fallbackSeconds : Number(raw);
    if (!(s > 0)) throw new Error(`--${name} must be a positive number of seconds\n${USAGE}`);
    return Math.round(s * 1000);
  };
  const profiles = values.profiles === undefined ? (quick ? 2_000 : 1_000_000) : Number(values.profiles);
  if (!Number.isSafeInteger(profiles) || profiles < 1_000) throw new Error(`--profiles must be at least 1000\n${USAGE}`);
  const only = new Set((values.only ?? SCENARIO_GROUPS.join(",")).split(",")) as Set<ScenarioGroup>;
  for (const g of only) {
    if (!(SCENARIO_GROUPS as readonly string[]).includes(g)) throw new Error(`--only: unknown group "${g}"\n${USAGE}`);
  }
  const serviceEnv: Record<string, string> = {};
  for (const kv of values["service-env"]) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw new Error(`--service-env expects KEY=VALUE, got "${kv}"\n${USAGE}`);
    serviceEnv[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return {
    quick,
    only,
    serviceEnv,
    profiles,
    durationMs: seconds(values.duration, quick ? 1 : 15, "duration"),
    warmupMs: seconds(values.warmup, quick ? 0.3 : 3, "warmup"),
    zipfWarmupMs: seconds(values["zipf-warmup"], quick ? 1 : 60, "zipf-warmup"),
    zipfDurationMs: seconds(values["zipf-duration"], quick ? 1 : 60, "zipf-duration"),
    connections: 4,
    streamsPerConnection: 16,
    latencyConcurrency: 1,
    rounds: Number(values.rounds ?? (quick ? 1 : 3)),
    stampedeRequests: 1_000,
    stampedeWarmupCalls: quick ? 1_000 : 5_000,
    warmKeys: Math.min(10_000, Math.floor(profiles / 10)),
    useH2load: !values["no-h2load"],
    cpuProfile: values["cpu-prof"],
    adminDatabaseUrl: process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
    redisUrl: process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379",
    dbPoolSize: 20,
    output: values.output,
  };
}
