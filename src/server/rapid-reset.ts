// Rapid reset (CVE-2023-44487): a client opens streams and resets them at
// once. A reset stream no longer counts against SETTINGS_MAX_CONCURRENT_STREAMS,
// yet each one has already cost us a handler, so one connection can keep the
// process busy and every other caller waits. A token bucket per connection
// (HTTP2_STREAM_RESET_BURST, refilled at HTTP2_STREAM_RESET_RATE per second)
// counts streams that ended in a reset, whichever side sent it; when it runs
// dry the connection gets GOAWAY(ENHANCE_YOUR_CALM) and is closed.
//
// nghttp2 has the same kind of limit built in (streamResetBurst and
// streamResetRate); we set it to twice ours, as a backstop, because when it
// fires it only sends GOAWAY and tells us nothing, so only ours can close the
// connection.

import * as http2 from "node:http2";
import type { ServerLimits } from "../config/config.js";
import type { Connection } from "./connection.js";

export function limitStreamResets(connection: Connection, limits: ServerLimits): void {
  const { streamResetBurst: burst, streamResetRate: perSecond } = limits;
  let tokens = burst;
  let refilledAt = Date.now();
  connection.session.on("stream", (stream: http2.ServerHttp2Stream) => {
    stream.once("close", () => {
      if (stream.rstCode === http2.constants.NGHTTP2_NO_ERROR) return;
      const now = Date.now();
      tokens = Math.min(burst, tokens + ((now - refilledAt) / 1000) * perSecond);
      refilledAt = now;
      tokens -= 1;
      if (tokens < 0) connection.terminate(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, "too_many_resets");
    });
  });
}
