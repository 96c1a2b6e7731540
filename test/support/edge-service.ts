// The real binary in a child process, for tests of the connection edge: they
// count its open file descriptors and resident memory from /proc, which only a
// separate process shows honestly.

import { readdirSync, readFileSync } from "node:fs";
import { ChildService, serviceEnv } from "./child-service.js";
import { uniqueKeyPrefix, type TestDatabase } from "./servers.js";

export async function startEdgeService(database: TestDatabase, env: Record<string, string>): Promise<ChildService> {
  return ChildService.start(
    await serviceEnv({ databaseUrl: database.url, keyPrefix: uniqueKeyPrefix("edge") }, { DB_POOL_SIZE: "2", ...env }),
  );
}

export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}
