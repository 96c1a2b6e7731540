// Issue 13, item 6: the request rules callers read in the proto are the rules
// the service enforces. The `Rules:` lines of proto/profile/v1/profile.proto
// are parsed (support/contract-rules.ts), every request field is probed with
// values that keep or break each rule (support/contract-probes.ts), and the
// running service must answer each probe as the contract predicts: OK (or
// NOT_FOUND / ABORTED, which are about data, not the request) when every rule
// holds, INVALID_ARGUMENT with exactly the predicted field violations when one
// does not. A limit changed in the server alone, or in the proto alone, or a
// rule that one of them has and the other lacks, fails here.

import type { DescMethod } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProfileService } from "../gen/profile/v1/profile_pb.js";
import { loadContract, parseRulesLine, phrases, type Known } from "./support/contract-rules.js";
import { probes, type Probe } from "./support/contract-probes.js";
import { fieldViolations, grpc } from "./support/grpc-client.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";
import { WatchStream } from "./support/watch-stream.js";

const contract = loadContract();
const PASSING = new Set([grpc.status.OK, grpc.status.NOT_FOUND, grpc.status.ABORTED]);
const IN_FLIGHT = 8;

let svc: TestService;
let token: string;
let known: Known;
let all: Probe[];

beforeAll(async () => {
  svc = await startTestService({ label: "contract_rules" });
  // Every scope, so authorization (checked first) never hides a rule.
  token = await mintToken(randomUserId(), { scope: "profiles:read profiles:write profiles:watch" });
  const first = new WatchStream(svc.grpc.stream({}, token));
  await first.until((s) => s.bookmarks.length > 0);
  first.cancel();
  known = { resumeTokens: new Set([first.lastToken]) };
  all = probes(ProfileService, contract, known);
});
afterAll(async () => {
  await svc?.close();
});

interface Outcome {
  code: grpc.status;
  fields: string[];
  details: string;
}

async function call(probe: Probe): Promise<Outcome> {
  if (probe.method.methodKind === "server_streaming") return watch(probe.request);
  try {
    await svc.grpc.unary(probe.method.localName as "getProfile", probe.request, token);
    return { code: grpc.status.OK, fields: [], details: "" };
  } catch (err) {
    const e = err as grpc.ServiceError;
    return { code: e.code, fields: fieldViolations(e).map((v) => v.field), details: e.details };
  }
}

/** A watch is valid when its first message (a bookmark) arrives; a rejected one ends before any. */
async function watch(request: Record<string, unknown>): Promise<Outcome> {
  const stream = new WatchStream(svc.grpc.stream(request, token));
  try {
    await stream.until((s) => s.received.length > 0 || s.error !== undefined || s.ended);
  } finally {
    stream.cancel();
  }
  if (stream.received.length > 0) return { code: grpc.status.OK, fields: [], details: "" };
  const e = stream.error;
  return e === undefined
    ? { code: grpc.status.UNKNOWN, fields: [], details: "ended without a message" }
    : { code: e.code, fields: fieldViolations(e).map((v) => v.field), details: e.details };
}

async function runAll(list: Probe[]): Promise<Map<Probe, Outcome>> {
  const out = new Map<Probe, Outcome>();
  let next = 0;
  const worker = async () => {
    while (next < list.length) {
      const probe = list[next++]!;
      out.set(probe, await call(probe));
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return out;
}

function agrees(probe: Probe, got: Outcome): boolean {
  if (probe.expected.length === 0) return PASSING.has(got.code);
  return got.code === grpc.status.INVALID_ARGUMENT && sameMembers(got.fields, probe.expected);
}

/** grpc-js hands over grpc-message still percent-encoded. */
function readable(details: string): string {
  try {
    return decodeURIComponent(details);
  } catch {
    return details;
  }
}

const sameMembers = (a: string[], b: string[]) => JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());
const name = (m: DescMethod) => m.name;

describe("the Rules syntax in the proto", () => {
  it("documents every phrase the test understands, in ProfileService's comment", () => {
    for (const phrase of phrases) expect(contract.serviceComment).toContain(phrase.doc);
  });

  it("rejects a phrase outside the syntax, and a line not in its form", () => {
    expect(parseRulesLine("Rules: at most 100 characters; no control characters.")).toEqual([
      { kind: "maxChars", n: 100 },
      { kind: "noControl" },
    ]);
    expect(() => parseRulesLine("Rules: at most 100 letters.")).toThrow(/unknown rule "at most 100 letters"/);
    expect(() => parseRulesLine("Rules: at most 100 characters")).toThrow(/ends with "."/);
  });

  it("covers every RPC, and every Rules line is on a field some request carries", () => {
    expect(new Set(all.map((p) => name(p.method)))).toEqual(new Set(ProfileService.methods.map(name)));
    const probed = new Set(all.map((p) => p.field));
    const documented = [...contract.rules].filter(([, rules]) => rules !== undefined).map(([field]) => field);
    expect(documented.filter((f) => !probed.has(f))).toEqual([]);
    expect(documented.length).toBeGreaterThan(20);
  });
});

describe("each rule, over the wire", () => {
  let outcomes: Map<Probe, Outcome>;

  beforeAll(async () => {
    outcomes = await runAll(all);
  }, 120_000);

  it("the service answers every probe as the contract predicts", () => {
    const disagreements = all
      .filter((p) => !agrees(p, outcomes.get(p)!))
      .map((p) => {
        const got = outcomes.get(p)!;
        const want = p.expected.length === 0 ? "valid" : `INVALID_ARGUMENT on ${p.expected.join(", ")}`;
        return `${p.method.name} ${p.path} = ${p.label}: contract says ${want}; service said ${grpc.status[got.code]} ${got.fields.join(", ")} ${readable(got.details)}`;
      });
    expect(disagreements).toEqual([]);
    expect(all.length).toBeGreaterThan(1000);
  });

  it("every limit: the limit passes, one past it is INVALID_ARGUMENT naming the field", () => {
    const boundaries = all.filter((p) => p.boundary !== undefined);
    // Every numeric rule of every field has both sides.
    const limits = new Set<string>();
    for (const [field, rules] of contract.rules) {
      for (const rule of rules ?? []) if ("n" in rule || "max" in rule) limits.add(`${field} ${JSON.stringify(rule)}`);
    }
    for (const limit of limits) {
      const sides = boundaries
        .filter((p) => `${p.field} ${JSON.stringify(p.boundary!.rule)}` === limit)
        .map((p) => p.boundary!.side);
      expect(new Set(sides), limit).toEqual(new Set(["limit", "limit+1"]));
    }
    for (const p of boundaries) {
      const got = outcomes.get(p)!;
      const what = `${p.method.name} ${p.path} = ${p.label}`;
      if (p.boundary!.side === "limit") {
        expect(p.broken, what).toEqual([]);
        expect(PASSING.has(got.code), `${what}: ${grpc.status[got.code]} ${got.details}`).toBe(true);
      } else {
        expect(
          p.broken.map((b) => b.rule),
          what,
        ).toEqual([p.boundary!.rule]);
        expect(got.code, what).toBe(grpc.status.INVALID_ARGUMENT);
        expect(got.fields, what).toEqual([p.expected[0]]);
      }
    }
  });

  it("every rule is broken alone by some probe and kept by others, and the service rejects the breaker", () => {
    const missing: string[] = [];
    for (const [field, rules] of contract.rules) {
      for (const rule of rules ?? []) {
        if (rule.kind === "ignored") continue;
        const onField = all.filter((p) => p.field === field);
        const alone = onField.filter(
          (p) => p.broken.length > 0 && p.broken.every((b) => JSON.stringify(b.rule) === JSON.stringify(rule)),
        );
        const kept = onField.filter((p) => p.broken.length === 0);
        if (alone.length === 0 || kept.length === 0) missing.push(`${field}: ${JSON.stringify(rule)}`);
        for (const p of alone)
          expect(outcomes.get(p)!.code, `${p.path} = ${p.label}`).toBe(grpc.status.INVALID_ARGUMENT);
      }
    }
    expect(missing).toEqual([]);
  });
});
