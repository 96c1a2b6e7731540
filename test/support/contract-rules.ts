// The request rules the contract states, read from the proto's own comments.
//
// proto/profile/v1/profile.proto documents the syntax in ProfileService's
// comment: a field's comment ends with a `Rules:` line of rules separated by
// "; ", each one phrase from a fixed list. This module reads those lines from
// a buf image (which keeps comments), parses each phrase, and says what the
// phrase allows, in the words of the proto's own definitions. A test then holds
// the running service to that, so the comments callers read cannot drift from
// what the server enforces.
//
// Comments rather than protovalidate annotations: buf could only compile
// those with buf/validate/validate.proto vendored (the npm package ships just
// its descriptor), and the server's own validator would have to stay anyway.
// Several rules are beyond protovalidate's standard ones (an empty user_id
// meaning the token's subject, rules that apply only to the fields a mask
// names, BCP-47 as Intl reads it, JSON size and depth), so annotations would
// document, not enforce, and a test would still have to tie them to the server.

import { execFileSync } from "node:child_process";
import { fromBinary, type JsonValue } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";

export type Rule =
  | { kind: "maxChars"; n: number }
  | { kind: "noControl" }
  | { kind: "uuidOrEmpty" }
  | { kind: "items"; min: number; max: number }
  | { kind: "eachUuid" }
  | { kind: "eachEnum"; names: string[] }
  | { kind: "oneOf"; values: string[] }
  | { kind: "httpsUrlOrEmpty" }
  | { kind: "patternOrEmpty"; source: string; re: RegExp }
  | { kind: "bcp47" }
  | { kind: "maxJsonBytes"; n: number }
  | { kind: "maxDepth"; n: number }
  | { kind: "finiteNumbers" }
  | { kind: "noNul" }
  | { kind: "maskPaths"; paths: string[] }
  | { kind: "resumeTokenOrEmpty" }
  | { kind: "ignored" };

interface Phrase {
  /** How the proto's syntax list writes it; the service comment must contain this. */
  doc: string;
  re: RegExp;
  make(m: RegExpExecArray): Rule;
}

const list = (s: string) => s.split(", ");
const quoted = (s: string) => list(s).map((q) => q.slice(1, -1));

export const phrases: Phrase[] = [
  { doc: "at most N characters", re: /^at most (\d+) characters$/, make: (m) => ({ kind: "maxChars", n: +m[1]! }) },
  { doc: "no control characters", re: /^no control characters$/, make: () => ({ kind: "noControl" }) },
  {
    doc: "empty or a canonical lowercase UUID",
    re: /^empty or a canonical lowercase UUID$/,
    make: () => ({ kind: "uuidOrEmpty" }),
  },
  { doc: "N to M items", re: /^(\d+) to (\d+) items$/, make: (m) => ({ kind: "items", min: +m[1]!, max: +m[2]! }) },
  { doc: "at most M items", re: /^at most (\d+) items$/, make: (m) => ({ kind: "items", min: 0, max: +m[1]! }) },
  {
    doc: "each a canonical lowercase UUID",
    re: /^each a canonical lowercase UUID$/,
    make: () => ({ kind: "eachUuid" }),
  },
  {
    doc: "each one of A, B",
    re: /^each one of ([A-Z][A-Z0-9_]*(?:, [A-Z][A-Z0-9_]*)*)$/,
    make: (m) => ({ kind: "eachEnum", names: list(m[1]!) }),
  },
  {
    doc: 'one of "a", "b"',
    re: /^one of ("[^"]*"(?:, "[^"]*")*)$/,
    make: (m) => ({ kind: "oneOf", values: quoted(m[1]!) }),
  },
  {
    doc: "empty or an absolute https URL",
    re: /^empty or an absolute https URL$/,
    make: () => ({ kind: "httpsUrlOrEmpty" }),
  },
  {
    doc: "empty or matching /RE/",
    re: /^empty or matching \/(.+)\/$/,
    make: (m) => ({ kind: "patternOrEmpty", source: m[1]!, re: new RegExp(m[1]!, "u") }),
  },
  { doc: "a BCP-47 language tag", re: /^a BCP-47 language tag$/, make: () => ({ kind: "bcp47" }) },
  {
    doc: "at most N bytes as compact JSON",
    re: /^at most (\d+) bytes as compact JSON$/,
    make: (m) => ({ kind: "maxJsonBytes", n: +m[1]! }),
  },
  { doc: "at most N levels deep", re: /^at most (\d+) levels deep$/, make: (m) => ({ kind: "maxDepth", n: +m[1]! }) },
  { doc: "finite numbers", re: /^finite numbers$/, make: () => ({ kind: "finiteNumbers" }) },
  { doc: "no NUL in strings or keys", re: /^no NUL in strings or keys$/, make: () => ({ kind: "noNul" }) },
  {
    doc: "paths among a, b",
    re: /^paths among ([a-z][a-z0-9_]*(?:, [a-z][a-z0-9_]*)*)$/,
    make: (m) => ({ kind: "maskPaths", paths: list(m[1]!) }),
  },
  {
    doc: "empty or a resume_token from this service",
    re: /^empty or a resume_token from this service$/,
    make: () => ({ kind: "resumeTokenOrEmpty" }),
  },
  { doc: "ignored on writes", re: /^ignored on writes$/, make: () => ({ kind: "ignored" }) },
];

/** The rules of one `Rules:` line; throws on anything outside the documented syntax. */
export function parseRulesLine(line: string): Rule[] {
  const m = /^Rules: (.+)\.$/.exec(line);
  if (m === null) throw new Error(`not a Rules line (it starts "Rules: " and ends with "."): ${line}`);
  return m[1]!.split("; ").map((text) => {
    for (const phrase of phrases) {
      const match = phrase.re.exec(text);
      if (match !== null) return phrase.make(match);
    }
    throw new Error(`unknown rule "${text}": the syntax is in ProfileService's comment`);
  });
}

export interface Contract {
  /** ProfileService's leading comment, where the syntax is documented. */
  serviceComment: string;
  /** Rules by "<message full name>.<field name>"; undefined when the field has no Rules line. */
  rules: Map<string, Rule[] | undefined>;
}

/** The contract's rules, from a buf image of proto/ built now (comments included). */
export function loadContract(protoFile = "profile/v1/profile.proto"): Contract {
  const image = execFileSync("node_modules/.bin/buf", ["build", "proto", "--exclude-imports", "-o", "-#format=binpb"], {
    maxBuffer: 64 * 1024 * 1024,
  });
  const file = fromBinary(FileDescriptorSetSchema, image).file.find((f) => f.name === protoFile);
  if (file === undefined) throw new Error(`${protoFile} is not in the image`);
  return contractOf(file);
}

function contractOf(file: FileDescriptorProto): Contract {
  const comments = new Map<string, string>();
  for (const location of file.sourceCodeInfo?.location ?? []) {
    if (location.leadingComments !== undefined) comments.set(location.path.join("."), location.leadingComments);
  }
  // Paths in FileDescriptorProto: message_type = 4, its field = 2; service = 6.
  const serviceIndex = file.service.findIndex((s) => s.name === "ProfileService");
  const serviceComment = comments.get(`6.${serviceIndex}`) ?? "";
  const rules = new Map<string, Rule[] | undefined>();
  file.messageType.forEach((message, i) => {
    message.field.forEach((field, j) => {
      const where = `${file.package}.${message.name}.${field.name}`;
      const lines = (comments.get(`4.${i}.2.${j}`) ?? "")
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l !== "");
      const ruleLines = lines.filter((l) => l.startsWith("Rules:"));
      if (ruleLines.length > 1) throw new Error(`${where}: more than one Rules line`);
      if (ruleLines.length === 1 && lines.at(-1) !== ruleLines[0]) {
        throw new Error(`${where}: the Rules line must end the comment`);
      }
      try {
        rules.set(where, ruleLines.length === 0 ? undefined : parseRulesLine(ruleLines[0]!));
      } catch (err) {
        throw new Error(`${where}: ${(err as Error).message}`, { cause: err });
      }
    });
  });
  return { serviceComment, rules };
}

// What each rule allows, as the proto's syntax list defines it.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export interface Known {
  /** Resume tokens this service handed out. */
  resumeTokens: ReadonlySet<string>;
}

/** The rules a string value breaks. */
export function brokenStringRules(rules: readonly Rule[], value: string, known: Known): Rule[] {
  return rules.filter((rule) => !stringKeeps(rule, value, known));
}

function stringKeeps(rule: Rule, value: string, known: Known): boolean {
  switch (rule.kind) {
    case "maxChars":
      return [...value].length <= rule.n;
    case "noControl":
      return !CONTROL.test(value);
    case "uuidOrEmpty":
      return value === "" || UUID.test(value);
    case "eachUuid":
      return UUID.test(value);
    case "oneOf":
      return rule.values.includes(value);
    case "httpsUrlOrEmpty":
      return value === "" || URL.parse(value)?.protocol === "https:";
    case "patternOrEmpty":
      return value === "" || rule.re.test(value);
    case "bcp47":
      try {
        return Intl.getCanonicalLocales(value).length === 1;
      } catch {
        return false;
      }
    case "resumeTokenOrEmpty":
      return value === "" || known.resumeTokens.has(value);
    case "ignored":
      return true;
    default:
      throw new Error(`rule ${rule.kind} does not apply to a string`);
  }
}

/** The rules a JSON object (a google.protobuf.Struct) breaks. */
export function brokenJsonRules(rules: readonly Rule[], value: JsonValue): Rule[] {
  return rules.filter((rule) => {
    switch (rule.kind) {
      case "maxJsonBytes":
        return Buffer.byteLength(JSON.stringify(value)) > rule.n;
      case "maxDepth":
        return deepestLevel(value, 0) > rule.n;
      case "finiteNumbers":
        return !everyLeaf(value, (v) => typeof v !== "number" || Number.isFinite(v));
      case "noNul":
        return !everyLeaf(value, (v) => typeof v !== "string" || !v.includes("\u0000"));
      case "ignored":
        return false;
      default:
        throw new Error(`rule ${rule.kind} does not apply to a Struct`);
    }
  });
}

/** The level of the deepest value; the object's own members are level 1. */
function deepestLevel(value: JsonValue, level: number): number {
  const children = Array.isArray(value)
    ? value
    : value !== null && typeof value === "object"
      ? Object.values(value)
      : [];
  return Math.max(level, ...children.map((c) => deepestLevel(c, level + 1)));
}

/** Whether `ok` holds for every scalar and every object key. */
function everyLeaf(value: JsonValue, ok: (v: JsonValue) => boolean): boolean {
  if (Array.isArray(value)) return value.every((v) => everyLeaf(v, ok));
  if (value !== null && typeof value === "object") {
    return Object.entries(value).every(([k, v]) => ok(k) && everyLeaf(v, ok));
  }
  return ok(value);
}
