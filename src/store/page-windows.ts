// Where the last answer to a search ended in time, so that the next read of the same page looks only
// at what was written since. Any MongoDB server reads an index in order and stops at a page's end;
// SecantusDB (the embedded database) reads every match before it applies the limit, so a page of the
// 10 newest of 20,000 matches costs 20,000 reads unless the filter itself holds fewer. A page sorted
// newest first is exactly the newest of the matches written at or after the time its last entry was
// written, so a range on `lastUpdated` that still holds a full page gives the same answer; one that
// holds less (matches changed or went) is read again without the range, and the boundary learnt anew.
// Process-local and only a hint: several processes each learn their own.

/** The searches remembered, newest first: enough for the work queues and worklists a process serves. */
const remembered = 256;

export class PageWindows {
  private readonly since = new Map<string, Date>();

  /** The boundary of `key`'s last full page, if one is known. */
  get(key: string): Date | undefined {
    return this.since.get(key);
  }

  /** Remembers where a full page of `key` ended; forgets the oldest search beyond `remembered`. */
  set(key: string, boundary: Date): void {
    this.since.delete(key);
    this.since.set(key, boundary);
    if (this.since.size > remembered) this.since.delete(this.since.keys().next().value as string);
  }

  forget(key: string): void {
    this.since.delete(key);
  }
}
