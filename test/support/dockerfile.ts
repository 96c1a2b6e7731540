// A small Dockerfile interpreter for machines without Docker: it runs a
// Dockerfile's steps in a temporary directory, one directory per stage
// standing for that stage's filesystem root, with this machine's Node in
// place of the image's. It knows the instructions our Dockerfile uses and
// refuses any other, so a new instruction cannot slip past the test
// unexecuted.

import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, join, posix, relative } from "node:path";
import { DockerIgnore } from "./dockerignore.js";

export interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly line: number;
}

export interface Stage {
  readonly image: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/** Stages and their instructions; comments, parser directives and line continuations handled. */
export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let line = lines[i]!.trim();
    if (line === "" || line.startsWith("#")) continue;
    while (line.endsWith("\\") && i + 1 < lines.length) {
      line = line.slice(0, -1) + " ";
      // Comment lines inside a continued instruction are dropped, as Docker does.
      do i++;
      while (i < lines.length && lines[i]!.trim().startsWith("#"));
      line += lines[i]!.trim();
    }
    const [, keyword, args] = /^(\S+)\s*(.*)$/.exec(line)!;
    const instruction = { keyword: keyword!.toUpperCase(), args: args!.trim(), line: start };
    if (instruction.keyword === "FROM") {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args);
      if (!m) throw new Error(`Dockerfile:${start}: cannot read FROM ${instruction.args}`);
      stages.push({ image: m[1]!, name: m[2], instructions: [] });
    } else {
      if (stages.length === 0) throw new Error(`Dockerfile:${start}: ${instruction.keyword} before FROM`);
      stages.at(-1)!.instructions.push(instruction);
    }
  }
  return stages;
}

/** What the last stage would run, and where. */
export interface ImageConfig {
  readonly root: string;
  readonly workdir: string;
  readonly env: Record<string, string>;
  readonly user: { uid: number; gid: number } | undefined;
  readonly cmd: string[];
  readonly exposed: number[];
}

export interface RunOptions {
  /** The build context (the repository). */
  context: string;
  /** An empty directory; each stage gets a subdirectory as its root. */
  workRoot: string;
  /** Environment for RUN steps on top of the Dockerfile's ENV (PATH, HOME). */
  baseEnv: Record<string, string>;
  log?: (line: string) => void;
}

export function runDockerfile(text: string, options: RunOptions): ImageConfig {
  const stages = parseDockerfile(text);
  const ignore = new DockerIgnore(readFileSync(join(options.context, ".dockerignore"), "utf8"));
  const roots = new Map<string, string>();
  // The last stage runs as its USER, who must reach its root, as in an image.
  chmodSync(options.workRoot, 0o755);
  let image: ImageConfig | undefined;
  stages.forEach((stage, index) => {
    const root = join(options.workRoot, `stage-${index}`);
    mkdirSync(root, { recursive: true });
    chmodSync(root, 0o755);
    roots.set(String(index), root);
    if (stage.name !== undefined) roots.set(stage.name, root);
    let workdir = "/";
    const env: Record<string, string> = {};
    let user: ImageConfig["user"];
    let cmd: string[] = [];
    const exposed: number[] = [];
    const inRoot = (path: string) => join(root, posix.resolve(workdir, path));
    for (const { keyword, args, line } of stage.instructions) {
      const where = `Dockerfile:${line}`;
      options.log?.(`${where}: ${keyword} ${args}`);
      switch (keyword) {
        case "WORKDIR":
          workdir = posix.resolve(workdir, args);
          mkdirSync(inRoot("."), { recursive: true });
          chmodSync(inRoot("."), 0o755);
          break;
        case "ENV": {
          const m = /^([A-Za-z_][A-Za-z0-9_]*)=(\S*)$/.exec(args);
          if (!m) throw new Error(`${where}: only ENV NAME=value is supported`);
          env[m[1]!] = m[2]!;
          break;
        }
        case "COPY": {
          const words = args.split(/\s+/);
          let from: string | undefined;
          while (words[0]?.startsWith("--")) {
            const flag = words.shift()!;
            if (flag.startsWith("--from=")) from = flag.slice("--from=".length);
            else throw new Error(`${where}: COPY ${flag} is not supported`);
          }
          const dest = words.pop()!;
          if (words.length === 0) throw new Error(`${where}: COPY needs a source and a destination`);
          for (const source of words) {
            if (from !== undefined) {
              const fromRoot = roots.get(from);
              if (fromRoot === undefined) throw new Error(`${where}: no earlier stage ${from}`);
              copy(join(fromRoot, posix.resolve("/", source)), inRoot(dest), dest, () => true);
            } else {
              if (isAbsolute(source) || source.split("/").includes(".."))
                throw new Error(`${where}: ${source} is outside the context`);
              const path = join(options.context, source);
              if (!ignore.includes(posix.normalize(source)))
                throw new Error(`${where}: ${source} is excluded by .dockerignore`);
              copy(path, inRoot(dest), dest, (file) =>
                ignore.includes(relative(options.context, file).split("\\").join("/")),
              );
            }
          }
          break;
        }
        case "RUN": {
          let command = args;
          // A cache mount keeps npm's download cache out of the layer; here the machine's cache serves.
          while (command.startsWith("--")) {
            const [flag, rest] = [command.split(/\s+/, 1)[0]!, command.replace(/^\S+\s*/, "")];
            if (!/^--mount=type=cache,/.test(flag)) throw new Error(`${where}: RUN ${flag} is not supported`);
            command = rest;
          }
          execFileSync("/bin/sh", ["-c", command], {
            cwd: inRoot("."),
            env: { ...options.baseEnv, ...env },
            stdio: ["ignore", "pipe", "pipe"],
            ...(user !== undefined && process.getuid?.() === 0 ? user : {}),
            timeout: 300_000,
          });
          break;
        }
        case "USER": {
          const m = /^(\d+)(?::(\d+))?$/.exec(args);
          if (!m) throw new Error(`${where}: USER must be numeric (uid[:gid])`);
          user = { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) };
          break;
        }
        case "EXPOSE":
          exposed.push(...args.split(/\s+/).map((p) => Number(p.replace(/\/tcp$/, ""))));
          break;
        case "CMD": {
          let parsed: unknown;
          try {
            parsed = JSON.parse(args);
          } catch {
            throw new Error(
              `${where}: CMD must be in exec form (a JSON array), so no shell stands between the runtime and node`,
            );
          }
          if (!Array.isArray(parsed) || parsed.some((a) => typeof a !== "string"))
            throw new Error(`${where}: CMD must be a list of strings`);
          cmd = parsed as string[];
          break;
        }
        default:
          throw new Error(`${where}: ${keyword} is not supported by test/support/dockerfile.ts`);
      }
    }
    image = { root, workdir: inRoot("."), env, user, cmd, exposed };
  });
  if (image === undefined) throw new Error("Dockerfile has no stage");
  return image;
}

/** Docker's COPY: a directory's contents go into `dest`; a file goes into `dest/` or becomes `dest`. */
function copy(source: string, target: string, dest: string, include: (file: string) => boolean): void {
  const isFileIntoDir = !statSync(source).isDirectory() && dest.endsWith("/");
  copyTree(source, isFileIntoDir ? join(target, basename(source)) : target, include);
}

function copyTree(source: string, target: string, include: (file: string) => boolean): void {
  const stat = statSync(source);
  if (stat.isDirectory()) {
    mkdirSync(target, { recursive: true });
    chmodSync(target, 0o755);
    for (const entry of readdirSync(source)) {
      const path = join(source, entry);
      if (include(path)) copyTree(path, join(target, entry), include);
    }
    return;
  }
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(source, target);
  chmodSync(target, stat.mode & 0o777);
}
