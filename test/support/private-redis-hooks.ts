import { Redis } from "ioredis";
import { afterAll, beforeAll } from "vitest";
import { PrivateRedis } from "./private-redis.js";

/**
 * A private redis-server and a plain client to it, for the enclosing describe:
 * started before its tests, stopped after them. Read the fields inside tests.
 */
export function withPrivateRedis(): { readonly server: PrivateRedis; readonly client: Redis } {
  const ctx = {} as { server: PrivateRedis; client: Redis };
  beforeAll(async () => {
    ctx.server = await PrivateRedis.start();
    ctx.client = new Redis(ctx.server.url);
  });
  afterAll(async () => {
    ctx.client?.disconnect();
    await ctx.server?.stop();
  });
  return ctx;
}
