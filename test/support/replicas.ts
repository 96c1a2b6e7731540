// Replicas of the real binary as child processes, sharing one database, one
// Redis and one key prefix, each on a port of its own that it keeps across
// restarts (a load balancer's server list names fixed addresses).

import type pg from "pg";
import { ChildService, serviceEnv } from "./child-service.js";
import { freePort } from "./child-process.js";
import { createTestDatabase, uniqueKeyPrefix, type TestDatabase } from "./servers.js";

export class Replica {
  service: ChildService | undefined;
  /** Output of earlier runs of this replica, oldest first. */
  readonly previousRuns: ChildService[] = [];

  constructor(
    readonly name: string,
    readonly port: number,
    readonly metricsPort: number,
    private readonly env: Record<string, string | undefined>,
  ) {}

  async start(): Promise<void> {
    if (this.service !== undefined) this.previousRuns.push(this.service);
    this.service = await ChildService.start({
      ...this.env,
      PORT: String(this.port),
      METRICS_PORT: String(this.metricsPort),
    });
  }

  /** Sends `signal` to the service process itself (not its group), as a container runtime does. */
  kill(signal: NodeJS.Signals): void {
    process.kill(this.service!.child.pid!, signal);
  }

  async exited(): Promise<number | null> {
    const child = this.service!.child;
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise((resolve) => child.once("exit", resolve));
    }
    return child.exitCode;
  }

  /** A gauge or counter from the replica's Prometheus endpoint (summed over labels). */
  async metric(name: string): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`)).text();
    let sum = 0;
    for (const line of text.split("\n")) {
      const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`).exec(line);
      if (m) sum += Number(m[1]);
    }
    return sum;
  }

  async stop(): Promise<void> {
    await this.service?.stop("SIGKILL");
  }
}

export interface ReplicaSet {
  readonly database: TestDatabase;
  readonly keyPrefix: string;
  readonly replicas: Replica[];
  close(): Promise<void>;
}

export async function startReplicas(
  label: string,
  count: number,
  env: Record<string, string> = {},
): Promise<ReplicaSet> {
  const database = await createTestDatabase(label);
  const keyPrefix = uniqueKeyPrefix(label);
  // Each replica's ports are its own (Replica.start sets them).
  const shared = await serviceEnv(
    { databaseUrl: database.url, keyPrefix },
    { NODE_ENV: "production", DB_POOL_SIZE: "5", ...env },
  );
  const replicas: Replica[] = [];
  for (let i = 1; i <= count; i++) {
    replicas.push(new Replica(`replica${i}`, await freePort(), await freePort(), shared));
  }
  // One after the other: the first applies the migrations (they lock anyway).
  for (const replica of replicas) await replica.start();
  return {
    database,
    keyPrefix,
    replicas,
    async close() {
      await Promise.all(replicas.map((r) => r.stop()));
      await database.drop();
    },
  };
}

/** The replica that reports the (only) open watch stream; replicas that are down are skipped. */
export async function replicaWithWatcher(set: ReplicaSet, timeoutMs = 15_000): Promise<Replica> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const replica of set.replicas) {
      if (replica.service?.exitCode !== undefined) continue;
      if ((await replica.metric("watchers_connected").catch(() => 0)) > 0) return replica;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("no replica reports a watcher");
}

/** The user's committed events, in commit order, from PostgreSQL itself. */
export async function committedEventIds(db: pg.Pool, user: string): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    "SELECT id::text AS id FROM profile_events WHERE user_id = $1 ORDER BY xid, id",
    [user],
  );
  return rows.map((r) => r.id);
}
