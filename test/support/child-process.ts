// Child processes for the tests and the bench: free ports to give them, and
// the one wait for a child to say it is ready (or to fail saying why).

import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { connect, createServer, type AddressInfo, type Server } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

/** `count` distinct free ports: each stays bound until all are found, so none repeats. */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
      servers.push(server);
    }
    return servers.map((s) => (s.address() as AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

/** True when nothing listens on `port` any more (a connection is refused). */
export function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", (err: NodeJS.ErrnoException) => resolve(err.code === "ECONNREFUSED"));
  });
}

export interface ReadyOptions {
  /** Names the child in errors. */
  name: string;
  /** True once the child's output says it is ready. */
  ready: () => boolean;
  /** Its output so far, shown when it fails. */
  output: () => string;
  timeoutMs?: number;
  /** Kills it when it is not ready in time (by default SIGKILL to the child itself). */
  kill?: () => void;
}

/** Resolves once `ready()`; throws with its output if the child exits first or takes longer than `timeoutMs`. */
export async function untilReady(child: ChildProcess, o: ReadyOptions): Promise<void> {
  const timeoutMs = o.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  while (!o.ready()) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${o.name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${o.output()}`);
    }
    if (Date.now() > deadline) {
      if (o.kill !== undefined) o.kill();
      else child.kill("SIGKILL");
      throw new Error(`${o.name} was not ready within ${timeoutMs} ms:\n${o.output()}`);
    }
    await sleep(50);
  }
}
