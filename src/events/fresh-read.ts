// One query for many callers, never a stale answer. A caller gets the result of
// a read that started after it asked: the one starting now if none is running,
// otherwise the next one, shared by everyone who asked while the current one
// ran. So a burst of N callers costs at most two queries, and each caller still
// sees everything committed before its call (which a plain single-flight, handing
// out a read begun earlier, would not guarantee).

export class FreshRead<T> {
  private running: Promise<T> | undefined;
  private next: Promise<T> | undefined;

  constructor(private readonly read: () => Promise<T>) {}

  get(): Promise<T> {
    if (this.running === undefined) return this.start();
    this.next ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.next = undefined;
        return this.start();
      });
    return this.next;
  }

  private start(): Promise<T> {
    const running = this.read().finally(() => {
      if (this.running === running) this.running = undefined;
    });
    this.running = running;
    return running;
  }
}
