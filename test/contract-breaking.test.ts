// Issue 13, item 6: a change to the proto that would break a caller fails CI.
// .ci/contract (the step .ci/run runs) checks proto/ against proto/image.txtpb,
// the contract as last accepted, with buf's FILE rules and no network. Here it
// runs, as it is, in temporary copies of the checkout whose proto is edited:
// breaking edits fail, a compatible one passes once its image is accepted, and
// only `accept --breaking` takes a breaking one.

import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const PROTO = "proto/profile/v1/profile.proto";
const IMAGE = "proto/image.txtpb";
const repo = resolve(".");
const copies: string[] = [];

afterAll(() => {
  for (const dir of copies) rmSync(dir, { recursive: true, force: true });
});

/** A copy of what the check reads: the proto, the accepted image, buf.yaml and the script. */
function copyOfCheckout(): string {
  const dir = mkdtempSync(join(tmpdir(), "ps-contract-"));
  copies.push(dir);
  for (const path of ["proto", "buf.yaml", ".ci/contract"])
    cpSync(join(repo, path), join(dir, path), { recursive: true });
  return dir;
}

/** Replaces text the proto must contain, so an edit that no longer applies fails instead of testing nothing. */
function edit(dir: string, from: string, to: string): void {
  const file = join(dir, PROTO);
  const text = readFileSync(file, "utf8");
  expect(text, `the proto no longer contains ${JSON.stringify(from)}`).toContain(from);
  writeFileSync(file, text.replace(from, to));
}

async function contract(dir: string, ...args: string[]): Promise<{ code: number; output: string }> {
  // buf comes from this checkout's node_modules; the copy has none.
  const env = { ...process.env, PATH: `${join(repo, "node_modules/.bin")}:${process.env.PATH ?? ""}` };
  try {
    const { stdout, stderr } = await run("bash", [join(dir, ".ci/contract"), ...args], { env, timeout: 60_000 });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, output: e.stdout + e.stderr };
  }
}

describe(".ci/contract check", () => {
  it("passes on this checkout: the proto is the accepted contract", async () => {
    const { code, output } = await contract(repo, "check");
    expect(code, output).toBe(0);
    expect(readFileSync(".ci/run", "utf8")).toMatch(/^bash \.ci\/contract check$/m);
  });

  it("passes a change to comments alone, with no new image", async () => {
    const dir = copyOfCheckout();
    edit(dir, "// Reads one profile, and optionally its preferences, cache first.", "// Reads one profile.");
    const { code, output } = await contract(dir, "check");
    expect(code, output).toBe(0);
  });

  const breaking: [string, string, string, RegExp][] = [
    [
      "renaming a field",
      "string first_name = 2;",
      "string given_name = 2;",
      /Field "2" on message "Profile" changed name from "first_name" to "given_name"/,
    ],
    [
      "changing a field's number",
      "string first_name = 2;",
      "string first_name = 12;",
      /Previously present field "2" with name "first_name" on message "Profile" was deleted/,
    ],
    [
      "changing a field's type",
      "bool include_preferences = 2;",
      "string include_preferences = 2;",
      /changed type from "bool" to "string"/,
    ],
    [
      "removing an RPC",
      `  // Deletes a profile and its preferences.
  rpc DeleteProfile(DeleteProfileRequest) returns (DeleteProfileResponse) {
    option idempotency_level = IDEMPOTENT;
  }
`,
      "",
      /Previously present RPC "DeleteProfile" on service "ProfileService" was deleted/,
    ],
    [
      "making an idempotent RPC not idempotent (clients retry on it)",
      `rpc UpdateProfile(UpdateProfileRequest) returns (UpdateProfileResponse) {
    option idempotency_level = IDEMPOTENT;`,
      `rpc UpdateProfile(UpdateProfileRequest) returns (UpdateProfileResponse) {
    option idempotency_level = IDEMPOTENCY_UNKNOWN;`,
      /changed option "idempotency_level" from "IDEMPOTENT" to "IDEMPOTENCY_UNKNOWN"/,
    ],
    [
      "renaming an enum value",
      "EVENT_TYPE_PROFILE_DELETED = 2;",
      "EVENT_TYPE_PROFILE_REMOVED = 2;",
      /Enum value "2" on enum "EventType" changed name from "EVENT_TYPE_PROFILE_DELETED" to "EVENT_TYPE_PROFILE_REMOVED"/,
    ],
  ];

  for (const [what, from, to, says] of breaking) {
    it(`fails on ${what}, and accept refuses to take it`, async () => {
      const dir = copyOfCheckout();
      edit(dir, from, to);
      const check = await contract(dir, "check");
      expect(check.code, check.output).toBe(1);
      expect(check.output).toMatch(says);
      expect(check.output).toContain("breaks the contract");

      const before = readFileSync(join(dir, IMAGE), "utf8");
      const accept = await contract(dir, "accept");
      expect(accept.code, accept.output).toBe(1);
      expect(accept.output).toContain("not written");
      expect(readFileSync(join(dir, IMAGE), "utf8")).toBe(before);
    });
  }

  it("takes a compatible change (a new field) once its image is accepted, and not before", async () => {
    const dir = copyOfCheckout();
    edit(
      dir,
      "  string etag = 9;\n}",
      "  string etag = 9;\n  // Rules: ignored on writes.\n  string nickname = 10;\n}",
    );
    const stale = await contract(dir, "check");
    expect(stale.code, stale.output).toBe(1);
    expect(stale.output).not.toContain("breaks the contract");
    expect(stale.output).toContain("changed compatibly");

    const accept = await contract(dir, "accept");
    expect(accept.code, accept.output).toBe(0);
    expect(readFileSync(join(dir, IMAGE), "utf8")).toMatch(/name: "nickname"\s+number: 10/);
    const check = await contract(dir, "check");
    expect(check.code, check.output).toBe(0);

    // Removing the field again is now a break: the image moved with the accepted change.
    edit(dir, "  // Rules: ignored on writes.\n  string nickname = 10;\n", "");
    const removed = await contract(dir, "check");
    expect(removed.code, removed.output).toBe(1);
    expect(removed.output).toMatch(
      /Previously present field "10" with name "nickname" on message "Profile" was deleted/,
    );
  });

  it("takes a deliberate breaking change only with accept --breaking", async () => {
    const dir = copyOfCheckout();
    edit(dir, "string first_name = 2;", "string given_name = 2;");
    const accept = await contract(dir, "accept", "--breaking");
    expect(accept.code, accept.output).toBe(0);
    expect(accept.output).toContain("accepting the breaking changes above");
    const check = await contract(dir, "check");
    expect(check.code, check.output).toBe(0);
  });
});
