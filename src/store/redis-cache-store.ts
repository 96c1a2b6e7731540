import type { Cluster, Redis } from "ioredis";
import { eventLoopLag } from "./event-loop-lag.js";
import { CacheUnavailableError, REFRESH_PREFIX, refreshMarker, type CacheStore, type LeasedFill } from "./cache-store.js";

// Single-key scripts only: a multi-key script would break on Redis Cluster.
const FILL_LEASED = `
local current = redis.call('GET', KEYS[1])
local refreshing = '${REFRESH_PREFIX}' .. ARGV[1] .. '|'
if current ~= ARGV[1] and (not current or string.sub(current, 1, #refreshing) ~= refreshing) then return 0 end
if ARGV[3] == '0' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
return 1`;

const GET_WITH_TTL = `
local value = redis.call('GET', KEYS[1])
if not value then return {false, -2} end
return {value, redis.call('PTTL', KEYS[1])}`;

const BEGIN_REFRESH = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1`;

type ScriptedRedis = (Redis | Cluster) & {
  psFillLeased(key: string, lease: string, value: string, ttlSeconds: number): Promise<number>;
  psGetWithTtl(key: string): Promise<[string | null, number]>;
  psBeginRefresh(key: string, current: string, marker: string): Promise<number>;
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
    client.defineCommand("psFillLeased", { numberOfKeys: 1, lua: FILL_LEASED });
    client.defineCommand("psGetWithTtl", { numberOfKeys: 1, lua: GET_WITH_TTL });
    client.defineCommand("psBeginRefresh", { numberOfKeys: 1, lua: BEGIN_REFRESH });
    this.redis = client as ScriptedRedis;
  }

  getMany(keys: readonly string[]): Promise<(string | null)[]> {
    if (keys.length === 0) return Promise.resolve([]);
    // A cluster rejects cross-slot MGET; auto-pipelined GETs still cost one round trip per node.
    if (this.redis.isCluster) return this.bounded(Promise.all(keys.map((k) => this.redis.get(k))));
    return this.bounded(this.redis.mget(...keys));
  }

  // SET NX GET (Redis 7.0+) stores the lease only if the key is absent, and
  // returns what was there: read-or-lease in one native command, no script.
  acquireLeases(keys: readonly string[], lease: string, ttlMs: number): Promise<(string | null)[]> {
    return this.bounded(
      Promise.all(keys.map((k) => this.redis.call("SET", k, lease, "PX", ttlMs, "NX", "GET") as Promise<string | null>)),
    );
  }

  async fillLeased(entries: readonly LeasedFill[]): Promise<boolean[]> {
    const results = await this.bounded(
      Promise.all(entries.map((e) => this.redis.psFillLeased(e.key, e.lease, e.value, e.ttlSeconds))),
    );
    return results.map((r) => r === 1);
  }

  async getManyWithTtl(keys: readonly string[]): Promise<{ value: string | null; ttlMs: number }[]> {
    const replies = await this.bounded(Promise.all(keys.map((k) => this.redis.psGetWithTtl(k))));
    return replies.map(([value, ttlMs]) => ({ value, ttlMs }));
  }

  async beginRefresh(key: string, current: string, lease: string): Promise<boolean> {
    return (await this.bounded(this.redis.psBeginRefresh(key, current, refreshMarker(lease, current)))) === 1;
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
  // The bound is on Redis's latency, not our own queueing: it stretches by the
  // event loop's current lag, checked again when the timer fires.
  private bounded<T>(promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const started = performance.now();
      const expire = () => {
        // Timers run before I/O callbacks in a loop turn: after a stall the reply may
        // already be waiting, so the lag counts twice (the stall, then reading it).
        const allowed = this.timeoutMs + 2 * eventLoopLag.current();
        const elapsed = performance.now() - started;
        if (elapsed < allowed) timer = setTimeout(expire, allowed - elapsed);
        else reject(new CacheUnavailableError(new Error("timed out")));
      };
      let timer = setTimeout(expire, this.timeoutMs);
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
