// The companion (docs/autonomy.md, "The companion"): a small status-bar creature that makes the
// agent's state glanceable. Everything about it but its name is regenerated from a hash of the
// machine id with a seeded PRNG, so editing stored state cannot fake a rarity. It reacts to the
// agent's state with a short bubble and never sends anything to the model. Pure: unit tested.

export interface Companion {
  species: string;
  rarity: Rarity;
  eyes: string;
  hat: string;
  /** The stored name, or one drawn from the seed until the user renames it. */
  name: string;
  /** How it looks in the status bar, e.g. ``^(o.o)`` . */
  face: string;
}

export type Rarity = 'common' | 'uncommon' | 'rare' | 'epic' | 'legendary';

// Tables, not if-chains: each draw picks from one of these.
const SPECIES: { name: string; face: (eyes: string) => string }[] = [
  { name: 'cat', face: (e) => `(${e}ω${e})` },
  { name: 'owl', face: (e) => `{${e}v${e}}` },
  { name: 'bear', face: (e) => `ʕ${e}ᴥ${e}ʔ` },
  { name: 'frog', face: (e) => `(${e}‿${e})` },
  { name: 'robot', face: (e) => `[${e}_${e}]` },
  { name: 'ghost', face: (e) => `(${e}o${e})~` },
  { name: 'crab', face: (e) => `V(${e}_${e})V` },
  { name: 'blob', face: (e) => `(${e}.${e})` },
];
/** Rarity tiers with their weights (out of 100): the rarer, the fewer. */
const RARITIES: [Rarity, number][] = [['common', 60], ['uncommon', 25], ['rare', 10], ['epic', 4], ['legendary', 1]];
const EYES = ['•', '°', 'o', '^', '-', '◉', '×', '✦'];
/** Hats by the lowest rarity that may wear them: a common one never gets a crown. */
const HATS: [string, Rarity][] = [['', 'common'], ['ˆ', 'common'], ['°', 'uncommon'], ['≋', 'rare'], ['♛', 'epic'], ['✧', 'legendary']];
const NAMES = ['Pip', 'Moss', 'Tully', 'Nib', 'Quill', 'Bramble', 'Juno', 'Sprocket', 'Wren', 'Fennel', 'Biscuit', 'Orbit'];

/** FNV-1a, 32 bits: a stable seed from a string (the machine id). */
export function seedOf(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/** mulberry32: a small seeded PRNG giving numbers in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(items: readonly T[], random: () => number): T {
  return items[Math.floor(random() * items.length)];
}

function rarityOf(random: () => number): Rarity {
  let roll = random() * 100;
  for (const [rarity, weight] of RARITIES) {
    if (roll < weight) return rarity;
    roll -= weight;
  }
  return 'common';
}

const RANK = Object.fromEntries(RARITIES.map(([r], i) => [r, i])) as Record<Rarity, number>;

/** The companion of a machine: the same id always gives the same creature. */
export function companionOf(machineId: string, storedName?: string): Companion {
  const random = prng(seedOf(machineId));
  const species = pick(SPECIES, random);
  const rarity = rarityOf(random);
  const eyes = pick(EYES, random);
  const hat = pick(HATS.filter(([, min]) => RANK[min] <= RANK[rarity]).map(([h]) => h), random);
  const drawnName = pick(NAMES, random);
  const name = storedName?.trim() ? storedName.trim().slice(0, 24) : drawnName;
  return { species: species.name, rarity, eyes, hat, name, face: `${hat}${species.face(eyes)}` };
}

/** What the agent is doing, as the companion sees it. */
export type CompanionMood =
  | 'idle' | 'working' | 'waiting' | 'review' | 'inbox' | 'done' | 'error' | 'offline'
  // The watcher's moments (agent/watchEvent).
  | 'passed' | 'failed' | 'applied' | 'budget';

const BUBBLES: Record<CompanionMood, string> = {
  idle: '',
  working: 'working…',
  waiting: 'needs you!',
  review: 'a proposal is ready',
  inbox: 'a fix is ready',
  done: 'done!',
  error: 'uh-oh',
  offline: 'zzz',
  passed: 'tests pass!',
  failed: 'tests fail…',
  applied: 'tidied up',
  budget: 'resting: budget reached',
};

/** The status-bar text and tooltip for a mood. */
export function companionView(c: Companion, mood: CompanionMood): { text: string; tooltip: string } {
  const bubble = BUBBLES[mood];
  return {
    text: bubble ? `${c.face} ${bubble}` : c.face,
    tooltip: `${c.name} the ${c.rarity} ${c.species}${bubble ? `: ${bubble}` : ''}\n(lsp-agent's companion; lspAgent.companion turns it off)`,
  };
}

/** The companion's face with other eyes (a droop, a blink); hat and species stay. */
export function faceWith(c: Companion, eyes: string): string {
  const species = SPECIES.find((s) => s.name === c.species) ?? SPECIES[0];
  return `${c.hat}${species.face(eyes)}`;
}

/**
 * A short animation: status-bar texts shown one after another (FRAME_MS apart); the last one
 * stays for the flash. With reduced motion only the last one is shown. Working spins with the
 * codicon's own CSS animation (no timer), still under reduced motion.
 */
export function framesOf(c: Companion, mood: CompanionMood, reducedMotion: boolean): string[] {
  const bubble = BUBBLES[mood];
  const face = c.face;
  const frames: Partial<Record<CompanionMood, string[]>> = {
    working: [`${face} $(${reducedMotion ? 'loading' : 'loading~spin'}) ${bubble}`],
    // A wave: the arm goes up and down twice.
    passed: [`${face}/`, `${face}_`, `${face}/`, `${face}_`, `${face}/ ${bubble}`],
    // A droop: the eyes close, then tear up.
    failed: [face, faceWith(c, '-'), faceWith(c, ';'), `${faceWith(c, ';')} ${bubble}`],
    // A hop with a sparkle: something is ready.
    review: [`${face} $(sparkle)`, face, `${face} $(sparkle) ${bubble}`],
    inbox: [`${face} $(sparkle)`, face, `${face} $(sparkle) ${bubble}`],
    applied: [`${face} $(wand)`, face, `${face} $(wand) ${bubble}`],
    done: [`${face}/`, `${face} ${bubble}`],
  };
  const all = frames[mood] ?? [bubble ? `${face} ${bubble}` : face];
  return reducedMotion ? all.slice(-1) : all;
}

export const FRAME_MS = 220;

/**
 * Which moments get an animation and a bubble, so that a demanding user does not find it noisy:
 * test results only when they change (failing -> passing waves, passing -> failing droops; the
 * same result again on the next save is quiet), any kind at most once a minute, and any bubble at
 * most every few seconds. A quiet moment still updates the tooltip.
 */
export class BubbleGate {
  private lastAny = -Infinity;
  private readonly lastOf = new Map<CompanionMood, number>();
  private tests: 'passed' | 'failed' | undefined;

  constructor(private readonly minGapMs = 8_000, private readonly sameKindMs = 60_000) {}

  allow(mood: CompanionMood, now: number): boolean {
    if (mood === 'passed' || mood === 'failed') {
      const changed = this.tests !== mood;
      this.tests = mood;
      if (!changed) return false;
    }
    if (now - this.lastAny < this.minGapMs) return false;
    if (now - (this.lastOf.get(mood) ?? -Infinity) < this.sameKindMs) return false;
    this.lastAny = now;
    this.lastOf.set(mood, now);
    return true;
  }
}

/** One moment the companion noticed, for its tooltip ("tests pass!, 2 min ago"). */
export interface Moment { mood: CompanionMood; detail?: string; at: number }

/**
 * The tooltip (markdown, with command links): who it is, what it says now, the last few moments,
 * and what the user can do. ``now`` and ``at`` in milliseconds.
 */
export function companionTooltip(c: Companion, mood: CompanionMood, moments: readonly Moment[], now: number): string {
  const bubble = BUBBLES[mood];
  const head = `**${escapeMarkdown(c.name)}** the ${c.rarity} ${c.species}${bubble ? `: *${bubble}*` : ''}`;
  const recent = moments.slice(-3).reverse().map((m) =>
    `- ${BUBBLES[m.mood] || m.mood}${m.detail ? ` (${escapeMarkdown(m.detail.slice(0, 80))})` : ''}, ${ago(now - m.at)}`);
  const links = `[Talk to ${escapeMarkdown(c.name)}](command:lspAgent.companion.talk) · [Rename](command:lspAgent.companion.rename) · `
    + '[Open Chat](command:lspAgent.openChat)';
  return [head, ...(recent.length ? ['', ...recent] : []), '', links, '',
    '*lsp-agent\'s companion: it sends nothing to the model unless you talk to it. `lspAgent.companion` turns it off.*'].join('\n');
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? 'just now' : s < 3600 ? `${Math.floor(s / 60)} min ago` : `${Math.floor(s / 3600)} h ago`;
}

function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, '\\$&');
}

/** What "Talk to the companion" sends to the chat: a normal prompt, marked so the user sees whom it was for. */
export function talkPrompt(c: Companion, text: string): string {
  return `(to ${c.name}, the companion) ${text.trim()}`;
}

/** An agent/watchEvent kind as the companion's mood (``fixDeclined``: the triage thought the failure not worth a fix; it follows ``testsFailed``, so only the tooltip shows its reason). */
export const WATCH_MOOD: Record<string, CompanionMood> = {
  testsPassed: 'passed', testsFailed: 'failed', fixPrepared: 'inbox', autoApplied: 'applied', budgetReached: 'budget',
  fixDeclined: 'failed',
};
