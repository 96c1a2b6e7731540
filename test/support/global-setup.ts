// vitest globalSetup: decides which PostgreSQL and Redis the suite uses, once,
// before any test file runs, and hands the URLs to the files (servers.ts).
//
// For each of the two, in order:
//   1. TEST_DATABASE_URL / TEST_REDIS_URL: that server, as given;
//   2. the local default (127.0.0.1:5432, user postgres; 127.0.0.1:6379) when
//      it answers, the fast path on a developer machine or in CI;
//   3. otherwise a private server on a free port, started here from the
//      installed binaries and stopped when the run ends.
// TEST_PRIVATE_SERVERS=1 skips step 2. Without the binaries the run stops at
// once, with one line naming the Debian packages to install.

import pg from "pg";
import { Redis } from "ioredis";
import type { TestProject } from "vitest/node";
import { findBinary } from "./binaries.js";
import { PrivatePostgres } from "./private-postgres.js";
import { PrivateRedis } from "./private-redis.js";

declare module "vitest" {
  export interface ProvidedContext {
    testDatabaseUrl: string;
    testRedisUrl: string;
  }
}

const LOCAL_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/postgres";
const LOCAL_REDIS_URL = "redis://127.0.0.1:6379";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const forcePrivate = process.env.TEST_PRIVATE_SERVERS === "1";
  const useLocalDatabase =
    process.env.TEST_DATABASE_URL === undefined && !forcePrivate && (await postgresAnswers(LOCAL_DATABASE_URL));
  const useLocalRedis =
    process.env.TEST_REDIS_URL === undefined && !forcePrivate && (await redisAnswers(LOCAL_REDIS_URL));
  const needPostgres = process.env.TEST_DATABASE_URL === undefined && !useLocalDatabase;
  const needRedis = process.env.TEST_REDIS_URL === undefined && !useLocalRedis;

  const missing: { what: string; binaries: string; debianPackage: string }[] = [];
  if (needPostgres && (findBinary("initdb") === undefined || findBinary("pg_ctl") === undefined))
    missing.push({ what: "PostgreSQL", binaries: "initdb and pg_ctl", debianPackage: "postgresql" });
  if (needRedis && findBinary("redis-server") === undefined)
    missing.push({ what: "Redis", binaries: "redis-server", debianPackage: "redis-server" });
  if (missing.length > 0) {
    const what = missing.map((m) => m.what).join(" and ");
    const binaries = missing.map((m) => m.binaries).join(", ");
    const packages = missing.map((m) => m.debianPackage).join(" ");
    // One line, not a stack trace: this is a machine to set up, not a bug.
    process.stderr.write(
      `npm test: no ${what} to test against, and no private one can be started (${binaries} not found): ` +
        `install the Debian packages with 'apt-get install -y ${packages}', or set TEST_DATABASE_URL and TEST_REDIS_URL\n`,
    );
    process.exit(1);
  }

  const postgres = needPostgres ? await PrivatePostgres.start() : undefined;
  const redis = needRedis ? await PrivateRedis.start() : undefined;
  const databaseUrl = postgres?.url ?? process.env.TEST_DATABASE_URL ?? LOCAL_DATABASE_URL;
  const redisUrl = redis?.url ?? process.env.TEST_REDIS_URL ?? LOCAL_REDIS_URL;
  project.provide("testDatabaseUrl", databaseUrl);
  project.provide("testRedisUrl", redisUrl);
  if (postgres !== undefined || redis !== undefined) {
    process.stderr.write(
      `test servers: PostgreSQL ${postgres === undefined ? databaseUrl : `${postgres.url} (private)`}, Redis ${redis === undefined ? redisUrl : `${redis.url} (private)`}\n`,
    );
  }
  return async () => {
    await redis?.stop();
    await postgres?.destroy();
  };
}

async function postgresAnswers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.query("SELECT 1");
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

async function redisAnswers(url: string): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 2000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on("error", () => {});
  try {
    await client.connect();
    return (await client.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}
