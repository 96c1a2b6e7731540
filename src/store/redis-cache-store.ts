import type { Cluster, Redis } from "ioredis";
import { CacheUnavailableError, type CacheStore, type LeasedFill } from "./cache-store.js";

// Single-key scripts only: a multi-key script would break on Redis Cluster.
const ACQUIRE_LEASE = `
local current = redis.call('GET', KEYS[1])
if current then return current end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false`;

const FILL_LEASED = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] == '0' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
return 1`;

type ScriptedRedis = (Redis | Cluster) & {
  psAcquireLease(key: string, lease: string, ttlMs: number): Promise<string | null>;
  psFillLeased(key: string, lease: string, value: string, ttlSeconds: number): Promise<number>;
};

export class RedisCacheStore implements CacheStore {
  private readonly redis: ScriptedRedis;

  /**
   * `client` should have `enableAutoPipelining` on: per-key commands issued
   * together then share one round trip, on a single node and on a cluster.
   */
  constructor(
    client: Redis | Cluster,
    private readonly timeoutMs: number,
  ) {
    client.defineCommand("psAcquireLease", { numberOfKeys: 1, lua: ACQUIRE_LEASE });
    client.defineCommand("psFillLeased", { numberOfKeys: 1, lua: FILL_LEASED });
    this.redis = client as ScriptedRedis;
  }

  getMany(keys: readonly string[]): Promise<(string | null)[]> {
    if (keys.length === 0) return Promise.resolve([]);
    // A cluster rejects cross-slot MGET; auto-pipelined GETs still cost one round trip per node.
    if (this.redis.isCluster) return this.bounded(Promise.all(keys.map((k) => this.redis.get(k))));
    return this.bounded(this.redis.mget(...keys));
  }

  acquireLeases(keys: readonly string[], lease: string, ttlMs: number): Promise<(string | null)[]> {
    return this.bounded(Promise.all(keys.map((k) => this.redis.psAcquireLease(k, lease, ttlMs))));
  }

  async fillLeased(entries: readonly LeasedFill[]): Promise<boolean[]> {
    const results = await this.bounded(
      Promise.all(entries.map((e) => this.redis.psFillLeased(e.key, e.lease, e.value, e.ttlSeconds))),
    );
    return results.map((r) => r === 1);
  }

  async delete(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    if (this.redis.isCluster) {
      await this.bounded(Promise.all(keys.map((k) => this.redis.del(k))));
    } else {
      await this.bounded(this.redis.del(...keys));
    }
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }

  // ioredis' commandTimeout covers a slow server; this also covers time spent
  // waiting to be written (a reconnecting client), so no call outlives the bound.
  private bounded<T>(promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new CacheUnavailableError(new Error("timed out"))), this.timeoutMs);
      promise.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(new CacheUnavailableError(err));
        },
      );
    });
  }
}
