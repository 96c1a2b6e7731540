// Property: no client input produces INTERNAL (or UNKNOWN) or crashes the process.

import { Code, ConnectError } from "@connectrpc/connect";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

let svc: TestService;
let headers: { authorization: string };

beforeAll(async () => {
  svc = await startTestService({ label: "fuzz_inputs" });
  headers = { authorization: `Bearer ${await mintToken(randomUserId(), { scope: "profiles:read profiles:write" })}` };
});
afterAll(async () => {
  await svc?.close();
});

const text = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 120 }),
  fc.string({ unit: "binary", maxLength: 120 }),
  fc.string({ maxLength: 1200 }),
  fc.constantFrom("", "\u0000", "\ud800", "a\u0000b", "+81-90-1234-5678", "https://example.com/a.png", "ja", "dark"),
);
const userId = fc.oneof(
  fc.uuid().map((u) => u.toLowerCase()),
  text,
  fc.constant(""),
);
const paths = fc.array(
  fc.oneof(
    fc.constantFrom("first_name", "last_name", "bio", "avatar_url", "phone", "theme", "language", "settings"),
    text,
  ),
  { maxLength: 4 },
);
const json: fc.Arbitrary<unknown> = fc.jsonValue({ maxDepth: 3 });

const allowed = new Set([
  Code.InvalidArgument,
  Code.NotFound,
  Code.Aborted,
  Code.PermissionDenied,
  Code.ResourceExhausted,
]);

async function outcome(call: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await call;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

describe("arbitrary input", () => {
  it("gets OK or a precise client error from every method", async () => {
    await fc.assert(
      fc.asyncProperty(
        userId,
        fc.record({ firstName: text, lastName: text, bio: text, avatarUrl: text, phone: text }),
        fc.record({ theme: text, language: text, settings: fc.dictionary(text, json, { maxKeys: 4 }) }),
        paths,
        text,
        async (id, profile, prefs, maskPaths, etag) => {
          const results = await Promise.all([
            outcome(
              svc.connect.updateProfile({ userId: id, profile, updateMask: { paths: maskPaths }, etag }, { headers }),
            ),
            outcome(
              svc.connect.updatePreferences(
                { userId: id, preferences: prefs as never, updateMask: { paths: maskPaths }, etag },
                { headers },
              ),
            ),
            outcome(svc.connect.getProfile({ userId: id, includePreferences: true }, { headers })),
            outcome(svc.connect.batchGetProfiles({ userIds: [id, id] }, { headers })),
            outcome(svc.connect.deleteProfile({ userId: id, etag }, { headers })),
          ]);
          for (const r of results) {
            if (r !== "ok") expect(allowed, `code ${Code[r]}`).toContain(r);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
