// Reads Redis' eviction settings at startup and every interval, exports them,
// and says so once when they put the cache at risk. Correctness never depends
// on the policy (a fill lands only on its own lease, and any key may vanish);
// availability of the cache does: under noeviction, a full Redis refuses every
// SET with OOM, and every read goes to PostgreSQL.

import { inBackground } from "../log/background.js";
import { errorSummary, type Logger } from "../log/logger.js";
import { rateLimited } from "../log/rate-limited.js";
import type { Metrics } from "../metrics/metrics.js";
import type { MemoryPolicySource, NodeMemory } from "./redis-eviction-policy.js";

export interface EvictionPolicyWatchOptions {
  intervalMs: number;
}

export class EvictionPolicyWatch {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<NodeMemory[] | undefined> | undefined;
  // Per node: the policy seen last, what we already said, and whether noeviction can bite there.
  private readonly lastPolicy = new Map<string, string | undefined>();
  private readonly toldRefused = new Set<string>();
  private readonly toldUnlimited = new Set<string>();
  private readonly atRisk = new Set<string>();

  constructor(
    private readonly source: MemoryPolicySource,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly options: EvictionPolicyWatchOptions,
  ) {}

  start(): void {
    inBackground(this.check(), this.log, "redis memory check");
    this.timer = setInterval(
      () => inBackground(this.check(), this.log, "redis memory check"),
      this.options.intervalMs,
    ).unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One reading: updates the gauges and logs what changed. Never throws; undefined when Redis did not answer. */
  check(): Promise<NodeMemory[] | undefined> {
    this.running ??= this.readAndReport().finally(() => (this.running = undefined));
    return this.running;
  }

  private async readAndReport(): Promise<NodeMemory[] | undefined> {
    let nodes: NodeMemory[];
    try {
      nodes = await this.source.read();
    } catch (err) {
      // Unknown is not "unchanged": the gauges go away until Redis answers again.
      this.resetGauges();
      rateLimited(this.log).warn(
        "redis memory check failed",
        { err: errorSummary(err) },
        "could not read Redis maxmemory-policy and memory use; trying again at the next interval",
      );
      return undefined;
    }
    this.resetGauges();
    for (const node of nodes) {
      this.metrics.redisMaxmemoryPolicy.set({ node: node.node, policy: node.policy ?? "unknown" }, 1);
      this.metrics.redisUsedMemoryBytes.set({ node: node.node }, node.usedBytes);
      this.metrics.redisMaxmemoryBytes.set({ node: node.node }, node.maxBytes);
      this.report(node);
    }
    return nodes;
  }

  private report(node: NodeMemory): void {
    const fields = { redis: node.node, policy: node.policy, used_memory: node.usedBytes, maxmemory: node.maxBytes };
    if (node.configRefused !== undefined && !this.toldRefused.has(node.node)) {
      this.toldRefused.add(node.node);
      this.log.warn(
        { ...fields, reply: node.configRefused },
        node.policy === undefined
          ? "Redis refused CONFIG GET maxmemory-policy (managed Redis often does) and INFO memory does not name it: the eviction policy is unknown; make sure it is not noeviction"
          : "Redis refused CONFIG GET maxmemory-policy (managed Redis often does); reading the policy from INFO memory instead",
      );
    }
    const before = this.lastPolicy.get(node.node);
    const seenBefore = this.lastPolicy.has(node.node);
    this.lastPolicy.set(node.node, node.policy);
    // Without maxmemory, Redis never answers OOM whatever the policy: the risk is a limit with noeviction.
    const atRisk = node.policy === "noeviction" && node.maxBytes > 0;
    const wasAtRisk = this.atRisk.has(node.node);
    if (atRisk) this.atRisk.add(node.node);
    else this.atRisk.delete(node.node);
    if (atRisk && !wasAtRisk) {
      this.log.warn(
        fields,
        "Redis maxmemory-policy is noeviction: once used_memory reaches maxmemory, Redis refuses every SET with OOM, " +
          "so cache fills fail and reads (cached keys included) are served from PostgreSQL. " +
          "Set maxmemory-policy allkeys-lru (every key we write has a TTL, so volatile-lru works too)",
      );
    }
    if (atRisk && node.usedBytes >= node.maxBytes) {
      rateLimited(this.log).warn(
        `redis full under noeviction: ${node.node}`,
        fields,
        "Redis is full and its policy is noeviction: cache fills are failing with OOM; reads are served from PostgreSQL",
      );
    }
    if (seenBefore && before !== node.policy) {
      this.log.info({ ...fields, previous_policy: before }, "Redis maxmemory-policy changed");
    }
    if (node.maxBytes === 0 && !this.toldUnlimited.has(node.node)) {
      this.toldUnlimited.add(node.node);
      this.log.info(
        fields,
        "Redis has no maxmemory: nothing is evicted, keys leave only when their TTL runs out, and Redis grows with the set of keys read within a TTL",
      );
    }
  }

  private resetGauges(): void {
    this.metrics.redisMaxmemoryPolicy.reset();
    this.metrics.redisUsedMemoryBytes.reset();
    this.metrics.redisMaxmemoryBytes.reset();
  }
}
