// Starts the three bare floor servers, each in its own child process like the
// service, answering `reply` (the hot profile's GetProfile reply message).

import { freePort } from "../../test/support/child-process.js";
import { startChild } from "../child.js";
import type { Endpoint, Protocol } from "../service.js";

export interface FloorServers {
  http2: Endpoint;
  grpcJs: Endpoint;
  connect: Endpoint;
}

export async function startFloorServers(
  reply: Uint8Array,
  logDir: string,
  onStarted: (name: string, stop: () => Promise<void>) => void,
): Promise<FloorServers> {
  const start = async (name: string, protocol: Protocol): Promise<Endpoint> => {
    const port = await freePort();
    const env = { PORT: String(port), FLOOR_REPLY: Buffer.from(reply).toString("base64") };
    const child = await startChild({ name, entry: `bench/floors/${name}.ts`, env, logDir, ready: "listening" });
    onStarted(name, child.stop);
    return { label: name, url: `http://127.0.0.1:${port}`, protocol, process: child, logsRpcs: false };
  };
  return {
    http2: await start("http2-fixed", "grpc"),
    grpcJs: await start("grpc-js", "grpc"),
    connect: await start("connect-es", "connect"),
  };
}
