// What each Redis master will do when it is full: its maxmemory-policy, and
// how close it is to maxmemory. Managed Redis often refuses CONFIG (renamed,
// or denied by ACL); INFO memory carries the policy too, so it is the fallback.

import type { Cluster, Redis } from "ioredis";

export interface NodeMemory {
  /** host:port of the master. */
  node: string;
  /** maxmemory-policy, or undefined when neither CONFIG GET nor INFO memory gives it. */
  policy: string | undefined;
  usedBytes: number;
  /** 0 means no limit. */
  maxBytes: number;
  /** The server's answer when it refused CONFIG GET; the policy then came from INFO memory. */
  configRefused: string | undefined;
}

/** Where the eviction watch reads from; one entry per master. */
export interface MemoryPolicySource {
  read(): Promise<NodeMemory[]>;
}

export class RedisMemoryPolicy implements MemoryPolicySource {
  constructor(
    private readonly client: Redis | Cluster,
    private readonly timeoutMs = 2000,
  ) {}

  read(): Promise<NodeMemory[]> {
    const masters = this.client.isCluster ? (this.client as Cluster).nodes("master") : [this.client as Redis];
    return within(this.timeoutMs, Promise.all(masters.map((node) => readNode(node))));
  }
}

async function readNode(node: Redis): Promise<NodeMemory> {
  const [config, info] = await Promise.all([configPolicy(node), node.info("memory")]);
  return {
    node: addressOf(node),
    policy: config.policy ?? field(info, "maxmemory_policy"),
    usedBytes: Number(field(info, "used_memory") ?? 0),
    maxBytes: Number(field(info, "maxmemory") ?? 0),
    configRefused: config.refused,
  };
}

/**
 * An error reply (ERR unknown command, NOPERM) means the server refuses
 * CONFIG; anything else (a lost connection, a timeout) fails the whole read.
 */
async function configPolicy(node: Redis): Promise<{ policy?: string; refused?: string }> {
  try {
    const reply = await node.config("GET", "maxmemory-policy");
    // [name, value], or [] when the server does not know the parameter.
    const value = Array.isArray(reply) ? (reply[1] as unknown) : undefined;
    return { policy: typeof value === "string" ? value : undefined };
  } catch (err) {
    if (err instanceof Error && err.name === "ReplyError") return { refused: err.message.split("\n")[0] };
    throw err;
  }
}

// The server actually answering: behind Sentinel, options name the Sentinels, not the primary.
function addressOf(node: Redis): string {
  const stream = node.stream as { remoteAddress?: string; remotePort?: number } | undefined;
  if (stream?.remoteAddress !== undefined && stream.remotePort !== undefined) {
    return `${stream.remoteAddress}:${stream.remotePort}`;
  }
  return `${node.options.host ?? "?"}:${node.options.port ?? "?"}`;
}

function field(info: string, name: string): string | undefined {
  return new RegExp(`^${name}:(\\S+)`, "m").exec(info)?.[1];
}

// ioredis has no per-command deadline here: a frozen server would hold the read forever.
function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from Redis within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
