import assert from 'node:assert/strict';
import { test } from 'node:test';
import { companionOf, companionView, prng, seedOf } from '../../src/shared/companion';

test('the same machine id always gives the same companion; another id another one', () => {
  assert.deepEqual(companionOf('machine-a'), companionOf('machine-a'));
  const many = new Set(Array.from({ length: 40 }, (_, i) => JSON.stringify(companionOf(`m-${i}`))));
  assert.ok(many.size > 20, 'ids spread over the tables');
});

test('the seed and the PRNG are stable across runs (a known value)', () => {
  assert.equal(seedOf(''), 0x811c9dc5);
  assert.equal(seedOf('a'), 0xe40c292c, 'FNV-1a of "a"');
  const r1 = prng(42); const r2 = prng(42);
  const xs = [r1(), r1(), r1()];
  assert.deepEqual(xs, [r2(), r2(), r2()]);
  for (const x of xs) assert.ok(x >= 0 && x < 1);
});

test('only the name comes from storage: a stored name cannot change rarity, species or hat', () => {
  const drawn = companionOf('machine-a');
  const named = companionOf('machine-a', '  Ziggy  ');
  assert.equal(named.name, 'Ziggy');
  assert.deepEqual({ ...named, name: drawn.name }, drawn);
  assert.equal(companionOf('machine-a', '   ').name, drawn.name, 'a blank name falls back to the drawn one');
});

test('rarity follows its weights and rare hats only go to rarer companions', () => {
  const counts: Record<string, number> = {};
  for (let i = 0; i < 2000; i++) {
    const c = companionOf(`id-${i}`);
    counts[c.rarity] = (counts[c.rarity] ?? 0) + 1;
    if (c.rarity === 'common') assert.ok(['', 'ˆ'].includes(c.hat), `a common companion wears ${c.hat}`);
  }
  assert.ok(counts.common > counts.uncommon && counts.uncommon > counts.rare && counts.rare > (counts.legendary ?? 0));
});

test('the bubble says what the agent is doing; idle shows just the face', () => {
  const c = companionOf('machine-a', 'Pip');
  assert.equal(companionView(c, 'idle').text, c.face);
  assert.equal(companionView(c, 'waiting').text, `${c.face} needs you!`);
  assert.match(companionView(c, 'review').tooltip, new RegExp(`^Pip the ${c.rarity} ${c.species}: a proposal is ready`));
});
