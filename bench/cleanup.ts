// Undo steps for everything a run creates, run last-in first-out exactly once,
// on success, failure and Ctrl-C alike.

export class Cleanup {
  private readonly steps: { name: string; run: () => Promise<unknown> }[] = [];

  constructor(private readonly onError: (message: string) => void) {}

  /** Registers a step; the returned function runs it early (and unregisters it). */
  add(name: string, run: () => Promise<unknown>): () => Promise<void> {
    const step = { name, run };
    this.steps.push(step);
    return async () => {
      const i = this.steps.indexOf(step);
      if (i < 0) return;
      this.steps.splice(i, 1);
      await run();
    };
  }

  async runAll(): Promise<void> {
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        await step.run();
      } catch (err) {
        this.onError(`cleanup: ${step.name} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
}

/** Runs `body` with a Cleanup that also runs on SIGINT/SIGTERM. */
export async function withCleanup<T>(say: (m: string) => void, body: (cleanup: Cleanup) => Promise<T>): Promise<T> {
  const cleanup = new Cleanup(say);
  const interrupted = () => {
    say("interrupted; cleaning up");
    cleanup
      .runAll()
      .catch((err: unknown) => say(`cleanup failed: ${String(err)}`))
      .finally(() => process.exit(130));
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  try {
    return await body(cleanup);
  } finally {
    await cleanup.runAll();
    process.off("SIGINT", interrupted);
    process.off("SIGTERM", interrupted);
  }
}
