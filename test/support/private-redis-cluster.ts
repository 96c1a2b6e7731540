// A Redis Cluster of the test's own: 3 masters and 3 replicas on free ports,
// optionally behind a password and TLS, for tests that need real slots,
// real redirections and real failovers.

import { execFile, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { promisify } from "node:util";
import { Cluster, Redis, type RedisOptions } from "ioredis";
import { freePorts } from "./child-process.js";
import { RedisProcesses, THROWAWAY_REDIS_ARGS, until, waitForPing } from "./private-redis-processes.js";
import { SlowLink } from "./private-redis-slow-link.js";
import { selfSignedCert } from "./self-signed-cert.js";

const run = promisify(execFile);

export interface PrivateRedisClusterOptions {
  /** requirepass (and masterauth) on every node. */
  password?: string;
  /** Serve TLS only (clients, replication and the cluster bus), with a self-signed certificate for 127.0.0.1 and localhost. */
  tls?: boolean;
  /**
   * Nodes announce this name instead of their address (as managed clusters
   * do), and the certificate is issued for the name alone, with no IP.
   */
  hostname?: string;
  /** cluster-node-timeout: how long a node may be unreachable before a failover starts. */
  nodeTimeoutMs?: number;
}

export interface ClusterNode {
  port: number;
  busPort: number;
  process: ChildProcess;
}

export interface Failover {
  readonly killed: ClusterNode;
  readonly promoted: ClusterNode;
  /** performance.now() when the master was SIGKILLed. */
  readonly killedAt: number;
  /** performance.now() when its replica answered as master with cluster_state:ok. */
  readonly promotedAt: number;
}

export class PrivateRedisCluster {
  readonly nodes: ClusterNode[] = [];
  /** PEM of the self-signed certificate, the CA clients must trust (with `tls`). */
  readonly ca: Buffer | undefined;
  readonly caFile: string | undefined;
  /** Announced port of a slow link → the port of the node behind it. */
  private readonly links = new Map<number, number>();

  private constructor(
    private readonly processes: RedisProcesses,
    private readonly options: PrivateRedisClusterOptions,
  ) {
    if (options.tls) {
      const files = selfSignedCert(
        processes.dir,
        options.hostname === undefined ? "IP:127.0.0.1,DNS:localhost" : `DNS:${options.hostname}`,
      );
      this.caFile = files.certFile;
      this.ca = files.cert;
    }
  }

  static async start(options: PrivateRedisClusterOptions = {}): Promise<PrivateRedisCluster> {
    const cluster = new PrivateRedisCluster(new RedisProcesses("redis-cluster"), options);
    try {
      const ports = await freePorts(12);
      for (let i = 0; i < 6; i++) cluster.nodes.push({ port: ports[i]!, busPort: ports[i + 6]!, process: undefined! });
      await Promise.all(cluster.nodes.map((n) => cluster.launch(n)));
      await run(
        "redis-cli",
        [
          ...cluster.cliArgs(),
          "--cluster",
          "create",
          ...cluster.nodes.map((n) => `127.0.0.1:${n.port}`),
          "--cluster-replicas",
          "1",
          "--cluster-yes",
        ],
        { env: cluster.cliEnv(), timeout: 30_000 },
      );
      await cluster.waitUntilHealthy();
      return cluster;
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  get password(): string | undefined {
    return this.options.password;
  }

  /** The URL of one node, credentials included, as REDIS_URL takes it. */
  url(node: ClusterNode): string {
    const auth = this.options.password === undefined ? "" : `:${encodeURIComponent(this.options.password)}@`;
    return `${this.options.tls ? "rediss" : "redis"}://${auth}${this.options.hostname ?? "127.0.0.1"}:${node.port}`;
  }

  /** Every node as a comma-separated seed list (REDIS_URL with REDIS_CLUSTER=true). */
  get seedList(): string {
    return this.nodes.map((n) => this.url(n)).join(",");
  }

  /** ioredis options for one connection to a node: AUTH and TLS as the cluster needs. */
  nodeOptions(): RedisOptions {
    return {
      password: this.options.password,
      tls: this.ca === undefined ? undefined : { ca: this.ca, servername: this.options.hostname },
    };
  }

  /** A cluster client for inspecting keys, independent of the code under test. */
  client(): Cluster {
    const client = new Cluster(
      this.nodes.map((n) => ({ host: "127.0.0.1", port: n.port })),
      { redisOptions: this.nodeOptions(), slotsRefreshTimeout: 2000 },
    );
    client.on("error", () => {});
    return client;
  }

  /** A plain connection to one node, bypassing slot routing. */
  direct(node: ClusterNode): Redis {
    const redis = new Redis({ host: "127.0.0.1", port: node.port, ...this.nodeOptions(), maxRetriesPerRequest: 1 });
    redis.on("error", () => {});
    return redis;
  }

  /** The node that is master for `key`'s slot right now. */
  async masterOf(key: string): Promise<ClusterNode> {
    return (await this.mastersOf([key]))[0]!;
  }

  /** The current master of each key's slot, asked of one live node. */
  async mastersOf(keys: readonly string[]): Promise<ClusterNode[]> {
    const redis = this.direct(this.live()[0]!);
    try {
      const slots = await redis.cluster("SLOTS");
      return await Promise.all(
        keys.map(async (key) => {
          const slot = await redis.cluster("KEYSLOT", key);
          const owner = slots.find(([from, to]) => slot >= from && slot <= to)?.[2];
          if (owner === undefined) throw new Error(`no node owns slot ${slot}`);
          return this.byPort(this.realPort(owner[1]));
        }),
      );
    } finally {
      redis.disconnect();
    }
  }

  /**
   * Makes every client reach `node` through a link that delays what they
   * send by `delayMs`: the node announces the link's port to the cluster,
   * so clients that discover nodes through CLUSTER SLOTS use it. `direct()`
   * still reaches the node itself. Call the returned function to undo.
   */
  async slowDown(node: ClusterNode, delayMs: number): Promise<() => Promise<void>> {
    const link = await SlowLink.start(node.port, delayMs);
    this.links.set(link.port, node.port);
    await this.announce(node, link.port);
    return async () => {
      await this.announce(node, 0);
      this.links.delete(link.port);
      await link.close();
    };
  }

  /**
   * SIGKILLs the master of `key`'s slot and waits until its replica has been
   * promoted and the cluster is whole again. The timings let a test measure
   * what clients saw during the outage and after the promotion.
   */
  async killMasterAndAwaitPromotion(key: string): Promise<Failover> {
    const killed = await this.masterOf(key);
    const replica = await this.replicaOf(killed);
    const killedAt = performance.now();
    await this.processes.kill(killed.process);
    await until(
      `replica ${replica.port} to take over from ${killed.port}`,
      async () => {
        const redis = this.direct(replica);
        try {
          const [role] = (await redis.role()) as [string];
          const info = await redis.cluster("INFO");
          return role === "master" && /cluster_state:ok/.test(info) ? true : undefined;
        } finally {
          redis.disconnect();
        }
      },
      30_000,
    );
    return { killed, promoted: replica, killedAt, promotedAt: performance.now() };
  }

  /** Starts a killed node again with its saved cluster config; it rejoins (as a replica of whoever took over). */
  /** SIGKILLs one node, master or replica, and returns when it is gone. */
  async kill(node: ClusterNode): Promise<void> {
    await this.processes.kill(node.process);
  }

  /** Every live node agrees the cluster is ok (after a failover, or a restart). */
  async awaitOk(): Promise<void> {
    await until("cluster_state:ok on every live node", async () => {
      for (const node of this.live()) {
        const redis = this.direct(node);
        try {
          if (!/cluster_state:ok/.test(await redis.cluster("INFO"))) return undefined;
        } finally {
          redis.disconnect();
        }
      }
      return true;
    });
  }

  async restart(node: ClusterNode): Promise<void> {
    node.process = this.spawn(node);
    await this.waitForNode(node);
  }

  /**
   * Starts a new node. Another test may take a free port before the server
   * binds it; the server then exits, and the node gets other ports.
   */
  private async launch(node: ClusterNode): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      node.process = this.spawn(node);
      try {
        await this.waitForNode(node);
        return;
      } catch (err) {
        if (attempt === 3 || node.process.exitCode === null) throw err;
        [node.port, node.busPort] = (await freePorts(2)) as [number, number];
      }
    }
  }

  private async waitForNode(node: ClusterNode): Promise<void> {
    const child = node.process;
    const exited = once(child, "exit").then(() => {
      throw new Error(`redis-server on port ${node.port} exited`);
    });
    exited.catch(() => {});
    try {
      const answered = waitForPing(node.port, this.nodeOptions());
      answered.catch(() => {});
      await Promise.race([answered, exited]);
    } catch (err) {
      throw new Error(`${(err as Error).message}; its log ends:\n${this.processes.logTail(`node-${node.port}`)}`, {
        cause: err,
      });
    }
  }

  async stop(): Promise<void> {
    await this.processes.destroy();
  }

  /** Sets cluster-announce-port (0: the real port) and waits until every live node has heard. */
  private async announce(node: ClusterNode, port: number): Promise<void> {
    const redis = this.direct(node);
    try {
      await redis.config("SET", "cluster-announce-port", String(port));
    } finally {
      redis.disconnect();
    }
    const expected = `127.0.0.1:${port === 0 ? node.port : port}@${node.busPort}`;
    await until(`every node to see ${expected}`, async () => {
      for (const other of this.live()) {
        const redis = this.direct(other);
        try {
          if (!((await redis.cluster("NODES")) as string).includes(expected)) return undefined;
        } finally {
          redis.disconnect();
        }
      }
      return true;
    });
  }

  /** A port a node announces, mapped back to the node's own port. */
  private realPort(announced: number): number {
    return this.links.get(announced) ?? announced;
  }

  private live(): ClusterNode[] {
    return this.nodes.filter((n) => n.process.exitCode === null && n.process.signalCode === null);
  }

  private byPort(port: number): ClusterNode {
    const node = this.nodes.find((n) => n.port === port);
    if (node === undefined) throw new Error(`no node on port ${port}`);
    return node;
  }

  private async replicaOf(master: ClusterNode): Promise<ClusterNode> {
    const redis = this.direct(master);
    try {
      const id = (await redis.cluster("MYID")).trim();
      const replicas = (await redis.cluster("REPLICAS", id)) as string[];
      const address = /127\.0\.0\.1:(\d+)/.exec(replicas[0] ?? "");
      if (address === null) throw new Error(`master ${master.port} has no replica`);
      return this.byPort(this.realPort(Number(address[1])));
    } finally {
      redis.disconnect();
    }
  }

  /** Every node agrees the cluster is ok, knows all six nodes, and every replica is in sync. */
  private async waitUntilHealthy(): Promise<void> {
    await until("the cluster to form", async () => {
      for (const node of this.nodes) {
        const redis = this.direct(node);
        try {
          const info = await redis.cluster("INFO");
          if (!/cluster_state:ok/.test(info) || !/cluster_known_nodes:6\b/.test(info)) return undefined;
          const replication = await redis.info("replication");
          if (/role:slave/.test(replication) && !/master_link_status:up/.test(replication)) return undefined;
        } finally {
          redis.disconnect();
        }
      }
      return true;
    });
  }

  private spawn(node: ClusterNode): ChildProcess {
    const { password, tls, nodeTimeoutMs = 1000 } = this.options;
    const dir = this.processes.dir;
    const args = [
      ...THROWAWAY_REDIS_ARGS,
      "--dir",
      dir,
      "--cluster-enabled",
      "yes",
      "--cluster-config-file",
      join(dir, `nodes-${node.port}.conf`),
      "--cluster-port",
      String(node.busPort),
      "--cluster-node-timeout",
      String(nodeTimeoutMs),
      // Any replica may take over, however long ago it last heard from its master.
      "--cluster-replica-validity-factor",
      "0",
      // Replicas sync at once instead of waiting 5 s for others to join the same transfer.
      "--repl-diskless-sync-delay",
      "0",
      "--dbfilename",
      `dump-${node.port}.rdb`,
    ];
    if (password !== undefined) args.push("--requirepass", password, "--masterauth", password);
    if (this.options.hostname !== undefined) {
      args.push("--cluster-announce-hostname", this.options.hostname, "--cluster-preferred-endpoint-type", "hostname");
    }
    if (tls) {
      args.push(
        "--port",
        "0",
        "--tls-port",
        String(node.port),
        "--tls-cert-file",
        join(dir, "cert.pem"),
        "--tls-key-file",
        join(dir, "key.pem"),
        "--tls-ca-cert-file",
        join(dir, "cert.pem"),
        "--tls-auth-clients",
        "no",
        "--tls-replication",
        "yes",
        "--tls-cluster",
        "yes",
      );
    } else {
      args.push("--port", String(node.port));
    }
    return this.processes.spawn(`node-${node.port}`, args);
  }

  private cliArgs(): string[] {
    return this.options.tls ? ["--tls", "--cacert", this.caFile!] : [];
  }

  private cliEnv(): NodeJS.ProcessEnv {
    return this.options.password === undefined ? process.env : { ...process.env, REDISCLI_AUTH: this.options.password };
  }
}
