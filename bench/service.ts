// The bench's view of the service: how an instance starts (the real binary,
// src/main.ts) and where each protocol's calls go. Scenarios only ask
// `endpoint(protocol)`: gRPC goes to PORT (grpc-js), Connect to HTTP_PORT
// (Connect-ES, h2c).

import { readFileSync } from "node:fs";
import { freePort } from "../test/support/child-process.js";
import { startChild, type Child } from "./child.js";

export type Protocol = "grpc" | "connect";

/** Something a measurement calls: a service instance's port for one protocol, or a floor server. */
export interface Endpoint {
  readonly label: string;
  readonly url: string;
  readonly protocol: Protocol;
  readonly process: Child;
  /** The service logs one line per RPC (checked after every run); the floors log nothing. */
  readonly logsRpcs: boolean;
}

export interface ServiceInstance extends Child {
  endpoint(protocol: Protocol): Endpoint;
  /** The Prometheus text of GET /metrics. */
  metrics(): Promise<string>;
}

export const SERVICE_ENTRY = "src/main.ts";
const LISTENING = '"msg":"profile-service listening"';

export async function startService(
  name: string,
  env: Readonly<Record<string, string>>,
  logDir: string,
  cpuProfileDir?: string,
  /** Another checkout's entry (an absolute path), for comparing code (--baseline). */
  entry: string = SERVICE_ENTRY,
): Promise<ServiceInstance> {
  const port = await freePort();
  const httpPort = await freePort();
  const child = await startChild({
    name,
    entry,
    logDir,
    ready: LISTENING,
    nodeArgs: cpuProfileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${cpuProfileDir}`],
    // Scenarios decide what is warm.
    env: {
      WARMUP_LIMIT: "0",
      METRICS_PORT: "0",
      ...env,
      PORT: String(port),
      HTTP_PORT: String(httpPort),
      HOST: "127.0.0.1",
    },
  });
  const listening = readFileSync(child.logFile, "utf8")
    .split("\n")
    .find((line) => line.includes(LISTENING));
  const metricsPort = /"metrics_port":(\d+)/.exec(listening ?? "")?.[1];
  const urls: Record<Protocol, string> = {
    grpc: `http://127.0.0.1:${port}`,
    connect: `http://127.0.0.1:${httpPort}`,
  };
  return {
    ...child,
    endpoint: (protocol) => ({
      label: `${name}, ${protocol}`,
      url: urls[protocol],
      protocol,
      process: child,
      logsRpcs: true,
    }),
    metrics: async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text(),
  };
}
