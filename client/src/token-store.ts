// Where a watch keeps its resume token between runs of the caller.
//
// The watch calls save() once the consumer has finished with an item (when it
// asks for the next one), never before. So what a crash of the caller costs
// depends on where the token lives:
// - in a store of its own (a file, a row): a crash between processing an item
//   and saving its token delivers that one item again on restart (at least
//   once);
// - in the same transaction as the item's effect (each item carries its
//   `resumeToken`): nothing is repeated and nothing is lost (exactly once).
//   load() then reads the token from there; save() still gets the tokens of
//   bookmarks, which keep an idle watch's token inside the retention.

import { open, readFile, rename } from "node:fs/promises";

export interface ResumeTokenStore {
  /** The token to resume from; undefined (or "") to watch from now. */
  load(): Promise<string | undefined>;
  /** Everything up to `token` has been processed. */
  save(token: string): Promise<void>;
}

/** A token kept in memory: survives reconnects, not a restart of the caller. */
export class MemoryTokenStore implements ResumeTokenStore {
  constructor(public token: string | undefined = undefined) {}

  async load(): Promise<string | undefined> {
    return this.token;
  }

  async save(token: string): Promise<void> {
    this.token = token;
  }
}

/**
 * A token in a file, replaced atomically (write, fsync, rename), so a crash
 * leaves the old token or the new one, never half of one.
 */
export class FileTokenStore implements ResumeTokenStore {
  constructor(readonly path: string) {}

  async load(): Promise<string | undefined> {
    try {
      const token = (await readFile(this.path, "utf8")).trim();
      return token === "" ? undefined : token;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  async save(token: string): Promise<void> {
    const temporary = `${this.path}.${process.pid}.tmp`;
    const file = await open(temporary, "w");
    try {
      await file.writeFile(token);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temporary, this.path);
  }
}
