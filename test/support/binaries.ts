// Where the server binaries for private test servers are: on PATH, or, for
// PostgreSQL, in TEST_PG_BINDIR, by default the newest
// /usr/lib/postgresql/<major>/bin, where Debian's postgresql package keeps
// initdb and pg_ctl (off PATH).

import { accessSync, constants, readdirSync } from "node:fs";
import { delimiter, join } from "node:path";

const POSTGRES_LIB = "/usr/lib/postgresql";

export function findBinary(name: string, path = process.env.PATH ?? ""): string | undefined {
  const dirs = path.split(delimiter).filter((d) => d !== "");
  for (const dir of [...dirs, ...postgresBinDirs()]) {
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

function postgresBinDirs(): string[] {
  if (process.env.TEST_PG_BINDIR !== undefined) return [process.env.TEST_PG_BINDIR];
  try {
    return readdirSync(POSTGRES_LIB)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a))
      .map((v) => join(POSTGRES_LIB, v, "bin"));
  } catch {
    return [];
  }
}

export class MissingBinaryError extends Error {}

/** The absolute path of `name`, or an error that names the Debian package providing it. */
export function requireBinary(name: string, debianPackage: string): string {
  const file = findBinary(name);
  if (file === undefined) throw new MissingBinaryError(`${name} not found (Debian package ${debianPackage})`);
  return file;
}
