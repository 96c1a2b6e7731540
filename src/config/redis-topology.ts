// What REDIS_URL and the Sentinel settings name: addresses, a cluster's seed
// list and a Sentinel group. Parsing lives with the configuration so that
// config/ checks a seed list without importing the Redis client.

export interface RedisAddress {
  host: string;
  port: number;
}

export interface RedisSentinelOptions {
  sentinels: readonly RedisAddress[];
  /** The master group's name, as in `sentinel monitor <name> …`. */
  name: string;
  /** requirepass of the primary and its replicas. */
  password?: string;
  /** requirepass of the Sentinels. */
  sentinelPassword?: string;
}

/** A cluster's seed list: the nodes to start from, and what every node (not only these) needs. */
export interface SeedList {
  nodes: RedisAddress[];
  username: string | undefined;
  password: string | undefined;
  tls: boolean;
}

/**
 * Parses `redis://[user:password@]host[:port]` seeds, separated by commas.
 * They must agree on the scheme and the credentials, because those are
 * applied to every node of the cluster, including nodes found later.
 */
export function parseSeedList(list: string): SeedList {
  const urls = list.split(",").map((s) => s.trim());
  const seeds = urls.map((raw) => {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new Error(`"${redactUrl(raw)}" is not a valid URL`);
    }
    if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
      throw new Error(`must use redis: or rediss:, got ${url.protocol}`);
    }
    if (url.hostname === "") throw new Error(`"${redactUrl(raw)}" has no host`);
    if (url.pathname !== "" && url.pathname !== "/" && url.pathname !== "/0") {
      throw new Error("a cluster has only database 0");
    }
    if (url.search !== "") throw new Error("query parameters are not supported in a seed list");
    return {
      node: { host: url.hostname.replace(/^\[(.*)\]$/, "$1"), port: url.port === "" ? 6379 : Number(url.port) },
      username: url.username === "" ? undefined : decodeURIComponent(url.username),
      password: url.password === "" ? undefined : decodeURIComponent(url.password),
      tls: url.protocol === "rediss:",
    };
  });
  const [first] = seeds;
  for (const seed of seeds) {
    if (seed.tls !== first!.tls) throw new Error("seeds must all use redis:// or all rediss://");
    if (seed.username !== first!.username || seed.password !== first!.password) {
      throw new Error("seeds must all carry the same credentials");
    }
  }
  return { nodes: seeds.map((s) => s.node), username: first!.username, password: first!.password, tls: first!.tls };
}

function redactUrl(raw: string): string {
  return raw.replace(/\/\/[^@/]*@/, "//***@");
}
