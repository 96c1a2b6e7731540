// Requests that probe each documented rule, with the outcome the contract
// predicts for each. Every field of every request is walked from the generated
// descriptors: a field the proto adds without rules, or a field type nobody
// taught this file to probe, fails here rather than going unchecked.
//
// Each probe changes one field of an otherwise valid request, so what the
// server says about it is about that field alone. For every rule there are
// values that break it alone and values that keep every rule; for every limit,
// the limit itself and one past it.

import { ScalarType, type DescField, type DescMessage, type DescMethod, type JsonObject } from "@bufbuild/protobuf";
import { brokenJsonRules, brokenStringRules, type Contract, type Known, type Rule } from "./contract-rules.js";

export interface Probe {
  method: DescMethod;
  /** The proto field under test ("profile.v1.Profile.first_name"); undefined for the base request. */
  field?: string;
  /** The field under test, as violations name it (`profile.first_name`). */
  path: string;
  /** A short, printable description of the value. */
  label: string;
  request: Record<string, unknown>;
  /** The violations' fields the contract predicts; empty when the request is valid. */
  expected: string[];
  /** Rules the value breaks, each with the field path it is on. */
  broken: { path: string; rule: Rule }[];
  /** Set on the two probes of each limit. */
  boundary?: { rule: Rule; side: "limit" | "limit+1" };
}

const OWN_PACKAGE = "profile.v1.";
const uuid = () => crypto.randomUUID();

/** Strings worth trying in any string field: near misses of every documented kind. */
export function stringBattery(known: Known): string[] {
  const token = [...known.resumeTokens][0] ?? "";
  const tampered = tamper(token);
  return [
    "",
    "a",
    "Ünïcödé 名前",
    "😀",
    "a b",
    "a\u0000b",
    "a\u0001b",
    "a\tb",
    "a\nb",
    "a\u001fb",
    "a\u007fb",
    "a\u0085b",
    "a\u009fb",
    "a\u00a0b",
    "a\u2028b",
    uuid(),
    uuid().toUpperCase(),
    uuid().replaceAll("-", ""),
    `{${uuid()}}`,
    "not-a-uuid",
    "https://example.com/a.png",
    "https://example.com/a\u0001b",
    "https://example.com/a\u0085b",
    "https://example.com/a\tb",
    "HTTPS://EXAMPLE.COM/",
    "http://example.com/a.png",
    "https://",
    "https:///x",
    "ftp://example.com/x",
    "//example.com/x",
    "example.com/a.png",
    "+81-90-1234-5678",
    "+12345678",
    "+1234567",
    "+123456789012345",
    "+1234567890123456",
    "+1 2 3 4 5 6 7 8",
    "+1-2-3-4-5-6-7-8-9-0-1-2-3-4-5",
    "+1--2345678",
    "+ 12345678",
    "+12345678 ",
    "12345678",
    "+1234567a",
    "light",
    "dark",
    "system",
    "Light",
    "DARK",
    " dark",
    "auto",
    "ja",
    "en-US",
    "en-us",
    "en_US",
    "zh-Hant-TW",
    "i-klingon",
    "not a tag",
    "x",
    "123",
    "1",
    "0",
    "-1",
    "9999999999999999",
    token,
    tampered,
    "p2",
    "' OR 1=1 --",
  ];
}

/** The same token with its MAC's last byte flipped: well formed, but not ours. */
function tamper(token: string): string {
  if (token === "") return "";
  const bytes = Buffer.from(token, "base64url");
  bytes[bytes.length - 1]! ^= 1;
  return bytes.toString("base64url");
}

/** Every probe of every method of the service. */
export function probes(service: { methods: readonly DescMethod[] }, contract: Contract, known: Known): Probe[] {
  return service.methods.flatMap((method) => new MethodProbes(method, contract, known).all());
}

class MethodProbes {
  private readonly out: Probe[] = [];

  constructor(
    private readonly method: DescMethod,
    private readonly contract: Contract,
    private readonly known: Known,
  ) {}

  all(): Probe[] {
    this.add(undefined, "(the base request)", "valid in every field", this.base(this.method.input), []);
    for (const field of this.method.input.fields) this.probeField(field, field.name, (v) => this.withTop(field, v));
    return this.out;
  }

  private rulesOf(field: DescField): Rule[] | undefined {
    return this.contract.rules.get(`${field.parent.typeName}.${field.name}`);
  }

  private requireRules(field: DescField): Rule[] {
    const rules = this.rulesOf(field);
    if (rules === undefined) {
      throw new Error(`${field.parent.typeName}.${field.name} has no Rules line: document what the server accepts`);
    }
    return rules;
  }

  private probeField(field: DescField, path: string, build: (value: unknown) => Record<string, unknown>): void {
    const own = field.fieldKind === "message" && field.message.typeName.startsWith(OWN_PACKAGE);
    if (own) {
      if (path.includes(".")) throw new Error(`${path}: messages nested two deep are not probed yet`);
      // The rules are on the nested message's fields: one probe each, with the mask naming it.
      for (const inner of field.message.fields) {
        this.probeField(inner, `${path}.${inner.name}`, (v) => this.withNested(field, inner, v));
      }
      return;
    }
    if (field.fieldKind === "scalar" && field.scalar === ScalarType.BOOL) {
      if (this.rulesOf(field) !== undefined) throw new Error(`${path}: rules on a bool field`);
      for (const v of [true, false]) this.add(field, path, String(v), build(v), []);
      return;
    }
    const rules = this.requireRules(field);
    if (field.fieldKind === "scalar" && field.scalar === ScalarType.STRING) {
      for (const { value, boundary } of this.stringSamples(rules)) {
        const broken = brokenStringRules(rules, value, this.known).map((rule) => ({ path, rule }));
        this.add(field, path, show(value), build(value), broken.length > 0 ? [path] : [], broken, boundary);
      }
      return;
    }
    if (field.fieldKind === "list" && field.listKind === "scalar" && field.scalar === ScalarType.STRING) {
      for (const { value, boundary } of this.listSamples(rules)) {
        const { expected, broken } = this.listOutcome(path, rules, value);
        this.add(
          field,
          path,
          `[${value.length}: ${value.slice(0, 3).map(show).join(", ")}]`,
          build(value),
          expected,
          broken,
          boundary,
        );
      }
      return;
    }
    if (field.fieldKind === "list" && field.listKind === "enum") {
      const names = new Map(field.enum.values.map((v) => [v.number, v.name]));
      const numbers = [...names.keys()];
      const samples: number[][] = [[], ...numbers.map((n) => [n]), [99], [-1], numbers, [numbers.at(-1)!, numbers[0]!]];
      for (const value of samples) {
        const expected: string[] = [];
        const broken: Probe["broken"] = [];
        value.forEach((n, i) => {
          for (const rule of rules) {
            if (rule.kind !== "eachEnum") throw new Error(`${path}: rule ${rule.kind} on an enum list`);
            if (!rule.names.includes(names.get(n) ?? "")) {
              expected.push(`${path}[${i}]`);
              broken.push({ path, rule });
            }
          }
        });
        this.add(field, path, `[${value.join(", ")}]`, build(value), expected, broken);
      }
      return;
    }
    if (field.fieldKind === "message" && field.message.typeName === "google.protobuf.Struct") {
      for (const { value, label, boundary } of jsonSamples(rules)) {
        const broken = brokenJsonRules(rules, value);
        this.add(
          field,
          path,
          label,
          build(value),
          broken.length > 0 ? [path] : [],
          broken.map((rule) => ({ path, rule })),
          boundary,
        );
      }
      return;
    }
    if (field.fieldKind === "message" && field.message.typeName === "google.protobuf.Timestamp") {
      if (!rules.every((r) => r.kind === "ignored"))
        throw new Error(`${path}: only "ignored on writes" is probed on a Timestamp`);
      for (const value of [undefined, { seconds: 1n, nanos: 0 }, { seconds: -1n, nanos: 999_999_999 }]) {
        this.add(field, path, value === undefined ? "unset" : `${value.seconds}s`, build(value), []);
      }
      return;
    }
    if (field.fieldKind === "message" && field.message.typeName === "google.protobuf.FieldMask") {
      const target = this.maskTarget();
      const allowed = maskRule(rules, path).paths;
      const names = target.fields.map((f) => f.name);
      const samples = [
        [],
        ...names.map((n) => [n]),
        ["bogus"],
        [""],
        ["*"],
        ["firstName"],
        [`${target.name}.${names[0]}`],
        [names[0]!, "bogus"],
        [names[0]!, names[0]!],
      ];
      for (const paths of samples) {
        const bad = paths.flatMap((p, i) => (allowed.includes(p) ? [] : [i]));
        this.add(
          field,
          path,
          `[${paths.join(", ")}]`,
          build({ paths }),
          bad.map((i) => `${path}.paths[${i}]`),
          bad.map(() => ({ path, rule: maskRule(rules, path) })),
        );
      }
      return;
    }
    throw new Error(`${path}: no probes for a field of this type yet; teach test/support/contract-probes.ts`);
  }

  private stringSamples(rules: readonly Rule[]): { value: string; boundary?: Probe["boundary"] }[] {
    const samples: { value: string; boundary?: Probe["boundary"] }[] = stringBattery(this.known).map((value) => ({
      value,
    }));
    for (const rule of rules) {
      if (rule.kind === "maxChars") {
        for (const pad of padders(rules)) {
          samples.push({ value: pad(rule.n), boundary: { rule, side: "limit" } });
          samples.push({ value: pad(rule.n + 1), boundary: { rule, side: "limit+1" } });
        }
      }
      if (rule.kind === "oneOf") {
        for (const v of rule.values) samples.push({ value: v }, { value: v.toUpperCase() }, { value: `${v} ` });
      }
    }
    return samples;
  }

  private listSamples(rules: readonly Rule[]): { value: string[]; boundary?: Probe["boundary"] }[] {
    const ids = (n: number) => Array.from({ length: n }, uuid);
    const samples: { value: string[]; boundary?: Probe["boundary"] }[] = [{ value: [] }, { value: ids(1) }];
    for (const rule of rules) {
      if (rule.kind !== "items") continue;
      samples.push({ value: ids(rule.max), boundary: { rule, side: "limit" } });
      samples.push({ value: ids(rule.max + 1), boundary: { rule, side: "limit+1" } });
      if (rule.min > 0) samples.push({ value: ids(rule.min), boundary: { rule, side: "limit" } });
      if (rule.min > 0) samples.push({ value: ids(rule.min - 1), boundary: { rule, side: "limit+1" } });
    }
    const shared = uuid();
    samples.push({ value: [shared, shared] });
    for (const s of stringBattery(this.known)) samples.push({ value: [uuid(), s] });
    return samples;
  }

  private listOutcome(path: string, rules: readonly Rule[], value: string[]): Pick<Probe, "expected" | "broken"> {
    const expected: string[] = [];
    const broken: Probe["broken"] = [];
    const itemRules = rules.filter((r) => r.kind !== "items");
    for (const rule of rules) {
      if (rule.kind === "items" && (value.length < rule.min || value.length > rule.max)) {
        expected.push(path);
        broken.push({ path, rule });
      }
    }
    value.forEach((item, i) => {
      const bad = brokenStringRules(itemRules, item, this.known);
      if (bad.length > 0) expected.push(`${path}[${i}]`);
      for (const rule of bad) broken.push({ path, rule });
    });
    return { expected, broken };
  }

  /** The message a write's update_mask names fields of: the request's one message of this package. */
  private maskTarget(): DescMessage {
    const own = this.method.input.fields.filter(
      (f) => f.fieldKind === "message" && f.message.typeName.startsWith(OWN_PACKAGE),
    );
    if (own.length !== 1 || own[0]!.fieldKind !== "message") {
      throw new Error(`${this.method.name}: an update_mask needs exactly one message to apply to`);
    }
    return own[0]!.message;
  }

  /** A valid value for every field of `message`: the first sample that keeps every rule. */
  private base(message: DescMessage): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const field of message.fields) out[field.localName] = this.baseValue(field);
    return out;
  }

  private baseValue(field: DescField): unknown {
    if (field.fieldKind === "message") {
      if (field.message.typeName.startsWith(OWN_PACKAGE)) return this.base(field.message);
      if (field.message.typeName === "google.protobuf.Struct") return {};
      if (field.message.typeName === "google.protobuf.FieldMask") return { paths: [] };
      return undefined;
    }
    const rules = this.rulesOf(field) ?? [];
    if (field.fieldKind === "list") {
      const min = Math.max(0, ...rules.map((r) => (r.kind === "items" ? r.min : 0)));
      return field.listKind === "scalar" ? Array.from({ length: min }, uuid) : [];
    }
    if (field.fieldKind === "scalar" && field.scalar === ScalarType.STRING) {
      const value = stringBattery(this.known).find((v) => brokenStringRules(rules, v, this.known).length === 0);
      if (value === undefined) throw new Error(`${field.name}: no sample keeps every rule`);
      return value;
    }
    return undefined;
  }

  private withTop(field: DescField, value: unknown): Record<string, unknown> {
    return { ...this.base(this.method.input), [field.localName]: value };
  }

  /** The base request with one field of its nested message set, and the mask naming that field when it may. */
  private withNested(outer: DescField, inner: DescField, value: unknown): Record<string, unknown> {
    const request = this.base(this.method.input);
    request[outer.localName] = { ...(request[outer.localName] as object), [inner.localName]: value };
    const mask = this.method.input.fields.find((f) => f.name === "update_mask");
    if (mask !== undefined) {
      const allowed = maskRule(this.requireRules(mask), "update_mask").paths;
      request[mask.localName] = { paths: allowed.includes(inner.name) ? [inner.name] : [] };
    }
    return request;
  }

  private add(
    field: DescField | undefined,
    path: string,
    label: string,
    request: Record<string, unknown>,
    expected: string[],
    broken: Probe["broken"] = [],
    boundary?: Probe["boundary"],
  ): void {
    const fieldName = field === undefined ? undefined : `${field.parent.typeName}.${field.name}`;
    this.out.push({ method: this.method, field: fieldName, path, label, request, expected, broken, boundary });
  }
}

function maskRule(rules: readonly Rule[], path: string): Extract<Rule, { kind: "maskPaths" }> {
  const rule = rules.find((r) => r.kind === "maskPaths");
  if (rule?.kind !== "maskPaths" || rules.length !== 1) throw new Error(`${path}: expected one "paths among" rule`);
  return rule;
}

/**
 * Ways to build a value of exactly `length` code points that keeps the field's
 * other rules, so a length limit is probed alone.
 */
function padders(rules: readonly Rule[]): ((length: number) => string)[] {
  if (rules.some((r) => r.kind === "httpsUrlOrEmpty")) {
    const prefix = "https://example.com/";
    return [(n) => prefix + "a".repeat(n - prefix.length), (n) => prefix + "é".repeat(n - prefix.length)];
  }
  if (rules.some((r) => r.kind === "bcp47")) return [privateUseTag];
  return [(n) => "x".repeat(n), (n) => "😀".repeat(n)];
}

/** A valid language tag of exactly `length` characters: "en-x-" and private-use subtags of 1 to 8. */
function privateUseTag(length: number): string {
  let tag = "en-x";
  while (tag.length < length) {
    let take = Math.min(8, length - tag.length - 1);
    // Never leave room for a dash alone.
    if (length - tag.length - 1 - take === 1) take -= 1;
    tag += "-" + "a".repeat(take);
  }
  return tag;
}

function jsonSamples(rules: readonly Rule[]): { value: JsonObject; label: string; boundary?: Probe["boundary"] }[] {
  const samples: { value: JsonObject; label: string; boundary?: Probe["boundary"] }[] = [
    { value: {}, label: "{}" },
    { value: { a: 1, b: "x", c: true, d: null, e: [1, "y"], f: { g: -0.5 } }, label: "every JSON kind" },
    { value: { s: "a\u0001b", "k\u0001": 1 }, label: "control characters (allowed)" },
    { value: { n: Number.NaN }, label: "NaN" },
    { value: { n: Number.POSITIVE_INFINITY }, label: "Infinity" },
    { value: { deep: [{ n: Number.NEGATIVE_INFINITY }] }, label: "-Infinity, nested" },
    { value: { s: "a\u0000b" }, label: "NUL in a string" },
    { value: { "a\u0000b": 1 }, label: "NUL in a key" },
    { value: { l: [{ x: ["\u0000"] }] }, label: "NUL deep in a list" },
    { value: { "😀": "名前" }, label: "non-ASCII" },
  ];
  for (const rule of rules) {
    if (rule.kind === "maxJsonBytes") {
      for (const [side, n] of [
        ["limit", rule.n],
        ["limit+1", rule.n + 1],
      ] as const) {
        samples.push({ value: ofJsonBytes(n, "x"), label: `${n} bytes of ASCII`, boundary: { rule, side } });
        samples.push({
          value: ofJsonBytes(n, "é"),
          label: `${n} bytes with 2-byte characters`,
          boundary: { rule, side },
        });
      }
    }
    if (rule.kind === "maxDepth") {
      for (const [side, n] of [
        ["limit", rule.n],
        ["limit+1", rule.n + 1],
      ] as const) {
        samples.push({ value: nested(n, false), label: `objects ${n} levels deep`, boundary: { rule, side } });
        samples.push({ value: nested(n, true), label: `lists ${n} levels deep`, boundary: { rule, side } });
      }
    }
  }
  return samples;
}

/** `{"s":"…"}` of exactly `bytes` bytes as compact JSON, filled with `fill` (1 or 2 bytes in UTF-8). */
function ofJsonBytes(bytes: number, fill: "x" | "é"): JsonObject {
  const room = bytes - Buffer.byteLength('{"s":""}');
  const wide = fill === "é" ? Math.floor(room / 2) : 0;
  return { s: "é".repeat(wide) + "x".repeat(room - wide * 2) };
}

/** An object whose deepest value is at `levels`. */
function nested(levels: number, lists: boolean): JsonObject {
  let value: JsonObject[string] = 1;
  for (let i = 1; i < levels; i++) value = lists ? [value] : { k: value };
  return { k: value };
}

function show(value: string): string {
  const clipped = value.length > 24 ? `${[...value].slice(0, 12).join("")}…` : value;
  // JSON.stringify leaves DEL and the C1 controls as they are; escape them too, so every probe reads apart.
  const shown = JSON.stringify(clipped).replace(
    /[\u007f-\u009f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  return value.length > 24 ? `${shown} (${[...value].length} characters)` : shown;
}
