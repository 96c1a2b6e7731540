// connectNodeAdapter, except that:
// - requests are decoded before Connect-ES sees them, so a malformed one is
//   INVALID_ARGUMENT through our interceptors (request-decoding.ts);
// - the universal request tells a client going away from a server fault, and
//   keeps repeated authorization headers visible (node-request.ts);
// - nothing a client sends can throw out of the request handler: a request
//   Connect-ES cannot even represent (no usable authority) answers 400;
// - a response that fails after its handler ran (the client went away, or we
//   reset a stuck stream) goes to our logger at debug level instead of
//   console.error: it is routine, not a server fault.

import type { DescMethod } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createConnectRouter,
  createContextValues,
  type ConnectRouter,
  type ConnectRouterOptions,
  type ContextValues,
} from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import { errorSummary, type Logger } from "../log/logger.js";
import { universalRequestOf, type NodeRequest, type NodeResponse } from "./node-request.js";
import { decodeFirst, undecodableRequests } from "./request-decoding.js";

export interface NodeAdapterOptions extends ConnectRouterOptions {
  routes: (router: ConnectRouter) => void;
  contextValues?: (req: NodeRequest) => ContextValues;
  /** Services whose handlers report an undecodable request themselves (after authentication). */
  selfChecked?: ReadonlySet<string>;
  log: Logger;
}

export interface NodeHandler {
  (req: NodeRequest, res: NodeResponse): void;
  /** Every method served, for metrics exported at zero from startup. */
  readonly methods: readonly DescMethod[];
}

const compressions = [compressionGzip, compressionBrotli];
/** Connect-ES' default: the largest message its envelopes can describe. */
const MAX_READ_BYTES = 0xffffffff;

export function nodeAdapter(options: NodeAdapterOptions): NodeHandler {
  const router = createConnectRouter({
    acceptCompression: compressions,
    ...options,
    // Innermost, after authentication: a request that could not be decoded fails before its handler runs.
    interceptors: [...(options.interceptors ?? []), undecodableRequests(options.selfChecked ?? new Set())],
  });
  options.routes(router);
  const decoding = { compressions, readMaxBytes: options.readMaxBytes ?? MAX_READ_BYTES };
  const handlers = new Map(router.handlers.map((h) => [h.requestPath, { raw: h, decoded: decodeFirst(h, decoding) }]));
  const handle = (req: NodeRequest, res: NodeResponse) => {
    const handler = handlers.get(req.url?.split("?", 2)[0] ?? "");
    if (handler === undefined) {
      res.statusCode = 404;
      res.end();
      return;
    }
    const method = `${handler.raw.service.typeName}/${handler.raw.method.name}`;
    let uReq;
    try {
      uReq = universalRequestOf(req, res, options.contextValues?.(req) ?? createContextValues());
    } catch (err) {
      options.log.debug({ method, err: errorSummary(err) }, "request refused: cannot be represented");
      res.statusCode = 400;
      res.end();
      return;
    }
    handler
      .decoded(uReq)
      .then((uRes) => universalResponseToNodeResponse(uRes, res))
      .catch((reason: unknown) => {
        const code = ConnectError.from(reason).code;
        const log =
          code === Code.Aborted || code === Code.Canceled || res.destroyed ? options.log.debug : options.log.warn;
        log.call(options.log, { method, err: errorSummary(reason) }, "response not completed");
      });
  };
  return Object.assign(handle, { methods: router.handlers.map((h) => h.method) });
}
