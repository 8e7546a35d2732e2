// Answers of searches on small, rarely written types (the registered Endpoints, read by every case
// create several times), kept per process. An answer is dropped when this process writes the type,
// when the change feed sees another process write it, and in any case after a time: long while the
// feed is live (a guard against a change it missed), short when there is no feed.
import type { ChangeFeed } from './change-feed.js';

const withFeedMs = 60_000;
const withoutFeedMs = 1000;

export class ReadCache {
  private readonly entries = new Map<string, { until: number; value: Promise<unknown> }>();
  private feed?: ChangeFeed;

  constructor(private readonly types: ReadonlySet<string>) {}

  /** Drops the answers of a type whenever the feed sees it change. */
  follow(feed: ChangeFeed): void {
    this.feed = feed;
    for (const type of this.types) feed.on(type, () => this.forget(type));
  }

  holds(type: string): boolean {
    return this.types.has(type);
  }

  /** The answer kept under `key` of `type`, or `load`'s, kept from now on. */
  get<T>(type: string, key: string, load: () => Promise<T>): Promise<T> {
    const now = Date.now();
    const kept = this.entries.get(`${type} ${key}`);
    if (kept && kept.until > now) return kept.value as Promise<T>;
    const value = load();
    const entry = { until: now + (this.feed?.live ? withFeedMs : withoutFeedMs), value };
    this.entries.set(`${type} ${key}`, entry);
    // A failed read is not kept.
    value.catch(() => this.entries.get(`${type} ${key}`) === entry && this.entries.delete(`${type} ${key}`));
    return value;
  }

  forget(type: string): void {
    if (!this.types.has(type)) return;
    for (const key of this.entries.keys()) if (key.startsWith(`${type} `)) this.entries.delete(key);
  }
}
