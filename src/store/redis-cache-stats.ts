// Cache statistics read from Redis itself. Both reads are bounded: INFO is one
// command, and the size is a sample (SCAN + MEMORY USAGE) extrapolated to the
// key count, never a walk of the whole keyspace.

import type { Cluster, Redis } from "ioredis";
import { DEFAULT_SAMPLE_SIZE, DEFAULT_SCAN_BUDGET, type CacheStats } from "../metrics/cache-stats.js";

export interface RedisCacheStatsOptions {
  /** Keys SCAN may visit per node for one estimate. */
  scanBudget?: number;
  /** Keys per prefix whose MEMORY USAGE is read, per node. */
  sampleSize?: number;
}

export class RedisCacheStats implements CacheStats {
  private readonly scanBudget: number;
  private readonly sampleSize: number;

  constructor(
    private readonly client: Redis | Cluster,
    options: RedisCacheStatsOptions = {},
  ) {
    this.scanBudget = options.scanBudget ?? DEFAULT_SCAN_BUDGET;
    this.sampleSize = options.sampleSize ?? DEFAULT_SAMPLE_SIZE;
  }

  async keyspaceHitRate(): Promise<number | undefined> {
    const nodes = this.nodes();
    let hits = 0;
    let misses = 0;
    for (const info of await Promise.all(nodes.map((n) => n.info("stats")))) {
      hits += statOf(info, "keyspace_hits");
      misses += statOf(info, "keyspace_misses");
    }
    return hits + misses === 0 ? undefined : hits / (hits + misses);
  }

  async bytesByPrefix(prefixes: readonly string[]): Promise<number[]> {
    const perNode = await Promise.all(this.nodes().map((n) => this.estimateOn(n, prefixes)));
    return prefixes.map((_, i) => perNode.reduce((sum, node) => sum + node[i]!, 0));
  }

  private async estimateOn(node: Redis, prefixes: readonly string[]): Promise<number[]> {
    const matched: string[][] = prefixes.map(() => []);
    let seen = 0;
    let cursor = "0";
    do {
      const [next, keys] = await node.scan(cursor, "COUNT", 200);
      cursor = next;
      seen += keys.length;
      for (const key of keys) {
        const i = prefixes.findIndex((p) => key.startsWith(p));
        if (i >= 0) matched[i]!.push(key);
      }
    } while (cursor !== "0" && seen < this.scanBudget);
    const complete = cursor === "0";
    const total = complete ? seen : await node.dbsize();

    return Promise.all(
      matched.map(async (keys) => {
        if (keys.length === 0 || seen === 0) return 0;
        const sample = keys.slice(0, this.sampleSize);
        const usages = await Promise.all(sample.map((k) => node.memory("USAGE", k)));
        const measured = usages.filter((u): u is number => typeof u === "number");
        if (measured.length === 0) return 0;
        const mean = measured.reduce((a, b) => a + b, 0) / measured.length;
        const count = complete ? keys.length : (keys.length / seen) * total;
        return Math.round(mean * count);
      }),
    );
  }

  private nodes(): Redis[] {
    return this.client.isCluster ? (this.client as Cluster).nodes("master") : [this.client as Redis];
  }
}

function statOf(info: string, name: string): number {
  const match = new RegExp(`^${name}:(\\d+)`, "m").exec(info);
  return match === null ? 0 : Number(match[1]);
}
