// Forwarding the editor's diagnostics to the watcher (agent/diagnosticsChanged): which documents
// qualify, a debounce per document, our own server's diagnostics left out, and nothing sent twice.
// Pure (timers injected): unit tested; src/diagnosticsForwarder.ts wires it to VS Code.

export const DIAGNOSTICS_DEBOUNCE_MS = 500;
/** Documents remembered as sent; past this the oldest are forgotten (a resend is harmless). */
const MAX_REMEMBERED = 500;

export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

/** Runs ``fire(key)`` once a key has been quiet for ``ms``; each poke restarts its wait. */
export class PerKeyDebouncer {
  private readonly waiting = new Map<string, unknown>();

  constructor(private readonly ms: number, private readonly timers: Timers, private readonly fire: (key: string) => void) {}

  poke(key: string): void {
    const old = this.waiting.get(key);
    if (old !== undefined) this.timers.clear(old);
    this.waiting.set(key, this.timers.set(() => { this.waiting.delete(key); this.fire(key); }, this.ms));
  }

  cancelAll(): void {
    for (const handle of this.waiting.values()) this.timers.clear(handle);
    this.waiting.clear();
  }

  get pending(): number {
    return this.waiting.size;
  }
}

/** Only saved files of the workspace: not untitled buffers, diffs, output channels or our own documents. */
export function isForwardable(scheme: string, inWorkspace: boolean): boolean {
  return scheme === 'file' && inWorkspace;
}

/** ``all`` without one copy of each of ``own`` (our server's diagnostics, which VS Code merges in). */
export function withoutOwn<T>(all: readonly T[], own: readonly T[], key: (d: T) => string): T[] {
  const left = new Map<string, number>();
  for (const d of own) left.set(key(d), (left.get(key(d)) ?? 0) + 1);
  return all.filter((d) => {
    const n = left.get(key(d)) ?? 0;
    if (!n) return true;
    left.set(key(d), n - 1);
    return false;
  });
}

/**
 * What was last sent per document: an unchanged list is not sent again, and a document never
 * sent counts as having none (so a change that leaves it clean sends nothing).
 */
export class SentDiagnostics {
  private readonly sent = new Map<string, string>();

  /** True (and remembered) when ``payload`` differs from what was last sent for ``uri``. */
  changed(uri: string, payload: readonly unknown[]): boolean {
    const text = JSON.stringify(payload);
    if ((this.sent.get(uri) ?? '[]') === text) return false;
    this.sent.delete(uri); // re-insert: the map's order is the age
    if (payload.length) this.sent.set(uri, text);
    while (this.sent.size > MAX_REMEMBERED) this.sent.delete(this.sent.keys().next().value as string);
    return true;
  }

  clear(): void {
    this.sent.clear();
  }
}
