// The Connect transport: Connect-ES' router with ProfileService (through the
// API layer), health and reflection, for the Connect protocol and gRPC-Web
// (and gRPC, while it is served here too).

import { createContextValues } from "@connectrpc/connect";
import type { DescFile } from "@bufbuild/protobuf";
import { ProfileService } from "../../gen/profile/v1/profile_pb.js";
import type { Calls } from "../api/call.js";
import type { RpcObserver } from "../api/observe.js";
import type { ProfileApi } from "../api/service.js";
import type { Logger } from "../log/logger.js";
import { connectObserver } from "./connect-observer.js";
import { nodeRequestKey } from "./connect-context.js";
import { connectProfileService } from "./connect-service.js";
import type { HealthStatus } from "./health.js";
import { nodeAdapter, type NodeHandler } from "./node-adapter.js";
import { registerStandardServices } from "./standard-services.js";

export interface ConnectTransportOptions {
  api: ProfileApi;
  calls: Calls;
  observer: RpcObserver;
  health: HealthStatus;
  /** Files reflection describes beyond the services' own (error details). */
  extraFiles: readonly DescFile[];
  shutdownSignal: AbortSignal;
  readMaxBytes: number;
  log: Logger;
}

/** The services behind auth, with API metrics and info-level logs; health and reflection are not. */
export const apiServices: ReadonlySet<string> = new Set([ProfileService.typeName]);

export function connectTransport(options: ConnectTransportOptions): NodeHandler {
  return nodeAdapter({
    log: options.log,
    routes: (router) => {
      router.service(ProfileService, connectProfileService(options.api, options.calls));
      // Health and reflection: same port, outside auth.
      registerStandardServices(router, options.health, [ProfileService], options.extraFiles);
    },
    contextValues: (req) => createContextValues().set(nodeRequestKey, req),
    interceptors: [connectObserver(options.observer, apiServices)],
    selfChecked: apiServices,
    shutdownSignal: options.shutdownSignal,
    readMaxBytes: options.readMaxBytes,
  });
}
