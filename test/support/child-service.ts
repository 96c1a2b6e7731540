// The real binary (src/main.ts, or `npm start`) as a child process, for tests
// of what only a process shows: startup output, signals, exit codes, logs.

import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";

export class ChildService {
  readonly lines: string[] = [];
  output = "";
  exitCode: number | null | undefined;
  port = 0;
  metricsPort = 0;

  private constructor(readonly child: ChildProcess) {
    const collect = (d: Buffer) => {
      this.output += d.toString();
      this.lines.push(...d.toString().split("\n").filter((l) => l !== ""));
    };
    child.stdout!.on("data", collect);
    child.stderr!.on("data", collect);
    child.once("exit", (code) => (this.exitCode = code));
  }

  /** Starts `command` (default: node --import tsx src/main.ts) and waits for "listening". */
  static async start(env: Record<string, string | undefined>, command: string[] = [process.execPath, "--import", "tsx", "src/main.ts"]): Promise<ChildService> {
    const clean: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, ...env })) if (v !== undefined) clean[k] = v;
    // Its own process group, so a signal reaches the node process under `npm start` too.
    const child = spawn(command[0]!, command.slice(1), { env: clean, stdio: ["ignore", "pipe", "pipe"], detached: true });
    const service = new ChildService(child);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const listening = service.lines.map(parseJson).find((l) => l?.msg === "profile-service listening");
      if (listening) {
        service.port = Number(listening.port);
        service.metricsPort = Number(listening.metrics_port);
        return service;
      }
      if (service.exitCode !== undefined) throw new Error(`service exited (${service.exitCode}):\n${service.output}`);
      if (Date.now() > deadline) throw new Error(`service did not start:\n${service.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  signal(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.child.pid!, signal);
    } catch {
      this.child.kill(signal);
    }
  }

  /** Log lines that are JSON (pino). */
  get logs(): Record<string, unknown>[] {
    return this.lines.map(parseJson).filter((l): l is Record<string, unknown> => l !== undefined);
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    if (this.exitCode === undefined) {
      this.signal(signal);
      await once(this.child, "exit");
    }
    return this.exitCode ?? null;
  }
}

function parseJson(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
