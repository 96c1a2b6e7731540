// The last line of defence against a promise nobody handled. Node's default
// is to exit with 1 on the first one: a single request that triggers such a
// bug would then take every other call, and every watch, down with it. Here
// it is logged at error level (the error's name and message only: no stack,
// no request data) and counted in unhandled_rejections_total, where an alert
// belongs; the process keeps serving.
//
// This guards against bugs; it does not replace handling. Every promise on
// the request path is awaited or handled (eslint's no-floating-promises
// enforces it), so the counter stays at 0 unless something is wrong.

import type { Counter } from "prom-client";
import { errorSummary, type Logger } from "../log/logger.js";

export function installProcessGuards(log: Logger, unhandledRejections: Counter): () => void {
  const onRejection = (reason: unknown) => {
    unhandledRejections.inc();
    log.error({ err: errorSummary(reason) }, "unhandled promise rejection; the process keeps running");
  };
  process.on("unhandledRejection", onRejection);
  return () => process.off("unhandledRejection", onRejection);
}
