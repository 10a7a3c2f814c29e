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
export type CompanionMood = 'idle' | 'working' | 'waiting' | 'review' | 'inbox' | 'done' | 'error' | 'offline';

const BUBBLES: Record<CompanionMood, string> = {
  idle: '',
  working: 'working…',
  waiting: 'needs you!',
  review: 'a proposal is ready',
  inbox: 'the watcher found something',
  done: 'done!',
  error: 'uh-oh',
  offline: 'zzz',
};

/** The status-bar text and tooltip for a mood. */
export function companionView(c: Companion, mood: CompanionMood): { text: string; tooltip: string } {
  const bubble = BUBBLES[mood];
  return {
    text: bubble ? `${c.face} ${bubble}` : c.face,
    tooltip: `${c.name} the ${c.rarity} ${c.species}${bubble ? `: ${bubble}` : ''}\n(lsp-agent's companion; lspAgent.companion turns it off)`,
  };
}
