// Warm-up (issue 16): the server loads the model SDK in the background when told the user is
// about to prompt (agent/warmUp), instead of at every start. The extension tells it when the chat
// becomes visible and when the user starts typing in the prompt box, once per server process.
// Pure: unit tested.

/** Says yes once per server (a new process after a restart gets its own warm-up). */
export class OncePerServer<S extends object> {
  private readonly done = new WeakSet<S>();

  take(server: S | undefined): boolean {
    if (!server || this.done.has(server)) return false;
    this.done.add(server);
    return true;
  }
}

/** The prompt box tells the host about typing at most every ``ms`` (the host keeps it to once per server). */
export function throttle(ms: number): (now: number) => boolean {
  let last = -Infinity;
  return (now) => {
    if (now - last < ms) return false;
    last = now;
    return true;
  };
}

export const TYPING_NOTICE_MS = 30_000;
