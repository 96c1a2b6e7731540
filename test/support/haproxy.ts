// A real haproxy in front of test replicas, run from the checked-in example
// (deploy/haproxy/haproxy.cfg) with only its addresses and ports changed, plus
// what the test needs to see: one JSON log line per call, naming the server
// it went to and the call's x-call-id, and a stats socket for server states.

import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findBinary, MissingBinaryError } from "./binaries.js";
import { freePort } from "./child-process.js";

export const HAPROXY_EXAMPLE = "deploy/haproxy/haproxy.cfg";

/** One call as haproxy logged it, when it ended. */
export interface HaproxyCall {
  /** The x-call-id request header ("-" when absent). */
  call: string;
  /** The server it ended on ("<NOSRV>" when none). */
  server: string;
  /** The HTTP status haproxy returned (-1 when none). */
  status: number;
  /** Termination state: first event, then the phase (see haproxy's "Session state at disconnection"). */
  term: string;
  /** Retries, "+N" when the last one was redispatched to another server. */
  retries: string;
  path: string;
}

export interface Backend {
  name: string;
  port: number;
}

// Test-only lines. The log format is JSON, so lines parse without guessing.
const LOG_FORMAT = `'{"call":"%[capture.req.hdr(0)]","server":"%s","status":%ST,"term":"%ts","retries":"%rc","path":"%HP"}'`;

/** The example with its bind address and server lines replaced, and the test's observation lines added. */
export function testConfig(example: string, frontendPort: number, backends: Backend[], statsSocket: string): string {
  const out: string[] = [];
  let serverOptions: string | undefined;
  let section = "";
  for (const line of example.split("\n")) {
    const words = line.trim().split(/\s+/);
    if (/^\S/.test(line)) section = words[0]!;
    if (words[0] === "bind") {
      out.push(line.replace(/bind\s+\S+/, `bind 127.0.0.1:${frontendPort}`));
      continue;
    }
    if (words[0] === "server") {
      // The first server line stands for all of them; its options are kept.
      if (serverOptions === undefined) {
        serverOptions = words.slice(3).join(" ");
        for (const b of backends) out.push(`    server ${b.name} 127.0.0.1:${b.port} ${serverOptions}`.trimEnd());
      }
      continue;
    }
    out.push(line);
    if (section === "global" && words[0] === "global") out.push(`    stats socket ${statsSocket} level admin`);
    if (section === "frontend" && words[0] === "frontend") {
      out.push("    http-request capture req.hdr(x-call-id) len 64", `    log-format ${LOG_FORMAT}`);
    }
  }
  if (serverOptions === undefined) throw new Error(`${HAPROXY_EXAMPLE} has no server line`);
  return out.join("\n");
}

export class Haproxy {
  readonly calls: HaproxyCall[] = [];
  /** Everything else haproxy printed (server state changes, alerts). */
  readonly messages: string[] = [];
  private exited = false;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    private readonly dir: string,
  ) {
    let partial = "";
    const collect = (d: Buffer) => {
      const lines = (partial + d.toString()).split("\n");
      partial = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith('{"call"')) this.calls.push(JSON.parse(line) as HaproxyCall);
        else if (line !== "") this.messages.push(line);
      }
    };
    child.stdout!.on("data", collect);
    child.stderr!.on("data", collect);
    child.once("exit", () => (this.exited = true));
    // A worker that ends without its afterAll must not leave haproxy behind.
    process.once("exit", this.killOnExit);
  }

  private readonly killOnExit = () => this.child.kill("SIGKILL");

  static async start(backends: Backend[], example = readFileSync(HAPROXY_EXAMPLE, "utf8")): Promise<Haproxy> {
    const binary = findBinary("haproxy", `${process.env.PATH ?? ""}:/usr/sbin:/usr/local/sbin`);
    if (binary === undefined) throw new MissingBinaryError("haproxy not found (Debian package haproxy)");
    const dir = mkdtempSync(join(tmpdir(), "ps-haproxy-"));
    const port = await freePort();
    const config = join(dir, "haproxy.cfg");
    writeFileSync(config, testConfig(example, port, backends, join(dir, "stats.sock")));
    // -db: foreground, logs on stdout; the test owns the process.
    const child = spawn(binary, ["-db", "-f", config], { stdio: ["ignore", "pipe", "pipe"] });
    const haproxy = new Haproxy(child, port, dir);
    const deadline = Date.now() + 10_000;
    // The stats socket can appear a moment after the frontend accepts: wait for both.
    while (!(await accepts(port)) || !existsSync(join(dir, "stats.sock"))) {
      if (haproxy.exited) throw new Error(`haproxy exited:\n${haproxy.messages.join("\n")}`);
      if (Date.now() > deadline) throw new Error(`haproxy did not listen:\n${haproxy.messages.join("\n")}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return haproxy;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Each server's state (UP, DOWN, "UP 1/2" while rising, …), from the stats socket. */
  async serverStates(): Promise<Record<string, string>> {
    const csv = await this.command("show stat");
    const lines = csv.split("\n").filter((l) => l !== "");
    const header = lines[0]!.replace(/^# /, "").split(",");
    const [px, sv, status] = ["pxname", "svname", "status"].map((c) => header.indexOf(c));
    const states: Record<string, string> = {};
    for (const row of lines.slice(1).map((l) => l.split(","))) {
      if (row[sv!] !== "FRONTEND" && row[sv!] !== "BACKEND" && row[px!] !== "") states[row[sv!]!] = row[status!]!;
    }
    return states;
  }

  /** Waits until every named server is in `state`. */
  async waitFor(state: "UP" | "DOWN", servers: string[], timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = await this.serverStates();
      if (servers.every((s) => states[s] === state)) return;
      if (Date.now() > deadline) throw new Error(`servers not ${state}: ${JSON.stringify(states)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The log line of the call with this x-call-id, once haproxy has written it. */
  async call(id: string, timeoutMs = 5000): Promise<HaproxyCall> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.calls.find((c) => c.call === id);
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`haproxy logged no call ${id}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stop(): Promise<void> {
    process.off("exit", this.killOnExit);
    if (!this.exited) {
      this.child.kill("SIGKILL");
      await once(this.child, "exit");
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private command(command: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect(join(this.dir, "stats.sock"));
      let out = "";
      socket.on("connect", () => socket.end(`${command}\n`));
      socket.on("data", (d) => (out += d.toString()));
      socket.on("end", () => resolve(out));
      socket.on("error", reject);
    });
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
