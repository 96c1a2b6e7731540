// A PostgreSQL server of the test's own on a free port, for tests that stop
// it. PostgreSQL refuses to run as root, so as root it runs as `postgres`.

import { execFileSync } from "node:child_process";
import { chownSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireBinary } from "./binaries.js";
import { freePort } from "./child-process.js";

export class PrivatePostgres {
  private running = false;

  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  static async start(): Promise<PrivatePostgres> {
    const dir = mkdtempSync(join(tmpdir(), "ps-pg-"));
    const pg = new PrivatePostgres(await freePort(), dir);
    if (process.getuid?.() === 0) {
      const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"]).toString().trim());
      chownSync(dir, id("-u"), id("-g"));
    }
    pg.run("initdb", ["-D", join(dir, "data"), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
    await pg.start();
    return pg;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  async start(): Promise<void> {
    this.run("pg_ctl", [
      "-D",
      join(this.dir, "data"),
      "-l",
      join(this.dir, "log"),
      "-o",
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300`,
      "-w",
      "start",
    ]);
    this.running = true;
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.run("pg_ctl", ["-D", join(this.dir, "data"), "-m", "immediate", "-w", "stop"]);
    this.running = false;
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private run(name: string, args: string[]): void {
    const command = requireBinary(name, "postgresql");
    const asRoot = process.getuid?.() === 0;
    execFileSync(asRoot ? "runuser" : command, asRoot ? ["-u", "postgres", "--", command, ...args] : args, {
      stdio: "ignore",
      timeout: 60_000,
    });
  }
}
