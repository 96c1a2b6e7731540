// A real pino logger whose lines a test can read back, parsed and as written.

import { Writable } from "node:stream";
import { pino, type Logger } from "pino";

export interface CapturedLog {
  log: Logger;
  lines: Record<string, unknown>[];
  /** Everything written, verbatim, to check what never appears in it. */
  text(): string;
  /** Lines whose message starts with `prefix`. */
  matching(prefix: string): Record<string, unknown>[];
}

export function captureLog(level = "info"): CapturedLog {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      raw.push(chunk.toString());
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return {
    log: pino({ level }, sink),
    lines,
    text: () => raw.join(""),
    matching: (prefix) => lines.filter((l) => String(l.msg).startsWith(prefix)),
  };
}
