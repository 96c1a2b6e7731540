// A primary, its replica and one Sentinel (quorum 1) of the test's own, on
// free ports, optionally with passwords, for tests of a real failover.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import { Redis, type RedisOptions } from "ioredis";
import { freePorts } from "./child-process.js";
import { RedisProcesses, THROWAWAY_REDIS_ARGS, until, waitForPing } from "./private-redis-processes.js";

export interface PrivateRedisSentinelOptions {
  /** requirepass (and masterauth) of the primary and the replica. */
  password?: string;
  /** requirepass of the Sentinel. */
  sentinelPassword?: string;
  /** How long the primary may be unreachable before the Sentinel fails over. */
  downAfterMs?: number;
}

export interface DataNode {
  readonly port: number;
  process: ChildProcess;
}

export interface SentinelFailover {
  readonly killed: DataNode;
  readonly promoted: DataNode;
  /** performance.now() when the primary was SIGKILLed. */
  readonly killedAt: number;
  /** performance.now() when the Sentinel named the replica as primary and it answered as master. */
  readonly promotedAt: number;
}

export class PrivateRedisSentinel {
  readonly name = "mymaster";
  readonly nodes: DataNode[] = [];
  sentinelPort = 0;

  private constructor(
    private readonly processes: RedisProcesses,
    private readonly options: PrivateRedisSentinelOptions,
  ) {}

  static async start(options: PrivateRedisSentinelOptions = {}): Promise<PrivateRedisSentinel> {
    const group = new PrivateRedisSentinel(new RedisProcesses("redis-sentinel"), options);
    try {
      const [primary, replica, sentinel] = (await freePorts(3)) as [number, number, number];
      group.nodes.push({ port: primary, process: group.spawnData(primary, undefined) });
      await waitForPing(primary, group.nodeOptions());
      group.nodes.push({ port: replica, process: group.spawnData(replica, primary) });
      await waitForPing(replica, group.nodeOptions());
      await until("the replica to sync", async () =>
        /master_link_status:up/.test(await group.query(group.nodes[1]!, (r) => r.info("replication")))
          ? true
          : undefined,
      );
      group.sentinelPort = sentinel;
      group.spawnSentinel(primary);
      await waitForPing(group.sentinelPort, group.sentinelOptions());
      // The Sentinel finds replicas through the primary's INFO; a failover needs one it knows.
      await until("the Sentinel to know the replica", async () => {
        const replicas = (await group.askSentinel("REPLICAS", group.name)) as string[][];
        const ok = replicas.some((r) => {
          const fields = toObject(r);
          return fields.flags === "slave" && fields["master-link-status"] === "ok";
        });
        return ok ? true : undefined;
      });
      return group;
    } catch (err) {
      await group.stop();
      throw err;
    }
  }

  /** REDIS_SENTINELS: host:port of every Sentinel. */
  get sentinels(): string {
    return `127.0.0.1:${this.sentinelPort}`;
  }

  nodeOptions(): RedisOptions {
    return { password: this.options.password };
  }

  sentinelOptions(): RedisOptions {
    return { password: this.options.sentinelPassword };
  }

  /** An ioredis client that finds the primary through the Sentinel, for inspecting keys. */
  client(): Redis {
    const client = new Redis({
      sentinels: [{ host: "127.0.0.1", port: this.sentinelPort }],
      name: this.name,
      password: this.options.password,
      sentinelPassword: this.options.sentinelPassword,
      retryStrategy: () => 20,
      sentinelRetryStrategy: () => 20,
      maxRetriesPerRequest: 1,
    });
    client.on("error", () => {});
    return client;
  }

  /** The data node the Sentinel names as primary now. */
  async currentPrimary(): Promise<DataNode> {
    const [, port] = (await this.askSentinel("GET-MASTER-ADDR-BY-NAME", this.name)) as [string, string];
    const node = this.nodes.find((n) => n.port === Number(port));
    if (node === undefined) throw new Error(`the Sentinel names an unknown primary on port ${port}`);
    return node;
  }

  /**
   * SIGKILLs the primary and waits until the Sentinel has promoted the
   * replica and the replica answers as master.
   */
  async killPrimaryAndAwaitPromotion(): Promise<SentinelFailover> {
    const killed = await this.currentPrimary();
    const promoted = this.nodes.find((n) => n !== killed)!;
    const killedAt = performance.now();
    await this.processes.kill(killed.process);
    await until(
      `the Sentinel to promote ${promoted.port}`,
      async () => {
        if ((await this.currentPrimary()) !== promoted) return undefined;
        const [role] = (await this.query(promoted, (r) => r.role())) as [string];
        return role === "master" ? true : undefined;
      },
      30_000,
    );
    return { killed, promoted, killedAt, promotedAt: performance.now() };
  }

  /** Starts a killed node again; the Sentinel turns it into a replica of the current primary. */
  async restart(node: DataNode): Promise<void> {
    node.process = this.spawnData(node.port, undefined);
    await waitForPing(node.port, this.nodeOptions());
  }

  async stop(): Promise<void> {
    await this.processes.destroy();
  }

  private async query<T>(node: DataNode, f: (redis: Redis) => Promise<T>): Promise<T> {
    const redis = new Redis({ host: "127.0.0.1", port: node.port, ...this.nodeOptions(), maxRetriesPerRequest: 1 });
    redis.on("error", () => {});
    try {
      return await f(redis);
    } finally {
      redis.disconnect();
    }
  }

  private async askSentinel(...args: string[]): Promise<unknown> {
    const redis = new Redis({ host: "127.0.0.1", port: this.sentinelPort, ...this.sentinelOptions() });
    redis.on("error", () => {});
    try {
      return await redis.call("SENTINEL", ...args);
    } finally {
      redis.disconnect();
    }
  }

  private spawnData(port: number, primary: number | undefined): ChildProcess {
    const { password } = this.options;
    const args = [
      ...THROWAWAY_REDIS_ARGS,
      "--port",
      String(port),
      "--dir",
      this.processes.dir,
      "--dbfilename",
      `dump-${port}.rdb`,
      "--repl-diskless-sync-delay",
      "0",
    ];
    if (password !== undefined) args.push("--requirepass", password, "--masterauth", password);
    if (primary !== undefined) args.push("--replicaof", "127.0.0.1", String(primary));
    return this.processes.spawn(`data-${port}`, args);
  }

  private spawnSentinel(primary: number): void {
    const { password, sentinelPassword, downAfterMs = 1000 } = this.options;
    // Sentinel rewrites its config file as it learns, so each run writes a fresh one.
    const file = join(this.processes.dir, "sentinel.conf");
    const lines = [
      `port ${this.sentinelPort}`,
      "bind 127.0.0.1",
      "protected-mode no",
      `dir ${this.processes.dir}`,
      `sentinel monitor ${this.name} 127.0.0.1 ${primary} 1`,
      `sentinel down-after-milliseconds ${this.name} ${downAfterMs}`,
      `sentinel failover-timeout ${this.name} 10000`,
    ];
    if (password !== undefined) lines.push(`sentinel auth-pass ${this.name} ${password}`);
    if (sentinelPassword !== undefined) lines.push(`requirepass ${sentinelPassword}`);
    writeFileSync(file, `${lines.join("\n")}\n`);
    this.processes.spawn("sentinel", [file, "--sentinel"]);
  }
}

function toObject(pairs: string[]): Record<string, string> {
  const result: Record<string, string> = {};
  for (let i = 0; i + 1 < pairs.length; i += 2) result[pairs[i]!] = pairs[i + 1]!;
  return result;
}
