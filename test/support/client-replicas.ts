// Replicas of the real binary for the client's watch tests, and what each of
// those suites needs around them: a pool on their database, clients that are
// closed at the end, and consumers stopped after every test.

import pg from "pg";
import { afterAll, afterEach, beforeAll } from "vitest";
import { ProfileClient } from "../../client/src/index.js";
import type { WatchConsumer } from "./client-consumer.js";
import { startReplicas, type Replica, type ReplicaSet } from "./replicas.js";
import { mintToken } from "./tokens.js";

export const addressOf = (r: Replica) => `127.0.0.1:${r.port}`;

export class ClientReplicas {
  private started: { set: ReplicaSet; db: pg.Pool } | undefined;
  private readonly clients: ProfileClient[] = [];
  /** Stopped after the test that started them. */
  readonly consumers: WatchConsumer[] = [];

  /** Starts two replicas before the suite's tests, with `env` over the defaults. */
  static use(label: string, env: Record<string, string>): ClientReplicas {
    const replicas = new ClientReplicas();
    beforeAll(async () => {
      const set = await startReplicas(label, 2, env);
      replicas.started = { set, db: new pg.Pool({ connectionString: set.database.url, max: 2 }) };
    }, 60_000);
    // A test that failed half-way must not leave the next one a replica short.
    afterEach(async () => {
      for (const c of replicas.consumers.splice(0)) await c.stop();
      for (const r of replicas.set.replicas) if (r.service?.exitCode !== undefined) await r.start();
    }, 60_000);
    afterAll(async () => {
      for (const c of replicas.clients) c.close();
      await replicas.started?.db.end();
      await replicas.started?.set.close();
    });
    return replicas;
  }

  get set(): ReplicaSet {
    return this.started!.set;
  }

  get db(): pg.Pool {
    return this.started!.db;
  }

  /** A client of `user`'s, over `addresses`, closed after the suite. */
  async clientFor(user: string, addresses: string[]): Promise<ProfileClient> {
    const client = new ProfileClient({ addresses, token: await mintToken(user) });
    this.clients.push(client);
    return client;
  }
}
