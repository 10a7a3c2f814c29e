import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WATCH_EVENT_KINDS } from '../../src/shared/autonomyProtocol';
import {
  BubbleGate, companionOf, companionTooltip, companionView, faceWith, framesOf, prng, seedOf, talkPrompt, WATCH_MOOD,
} from '../../src/shared/companion';

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

test('reactions are a few frames: a wave when tests pass, a droop when they fail, one frame under reduced motion', () => {
  const c = companionOf('machine-a', 'Pip');
  const wave = framesOf(c, 'passed', false);
  assert.ok(wave.length >= 3 && wave.length <= 6, 'short');
  assert.ok(wave.slice(0, -1).every((f) => f.startsWith(c.face)), 'the face stays, the arm moves');
  assert.equal(new Set(wave.slice(0, -1)).size, 2, 'two alternating poses');
  assert.match(wave.at(-1)!, /tests pass!$/, 'the last frame holds the bubble');
  const droop = framesOf(c, 'failed', false);
  assert.equal(droop.at(-1), `${faceWith(c, ';')} tests fail…`);
  assert.ok(droop.includes(faceWith(c, '-')), 'the eyes close first');
  assert.notEqual(faceWith(c, ';'), c.face);
  assert.equal(faceWith(c, c.eyes), c.face, 'same eyes, same face');
  assert.deepEqual(framesOf(c, 'passed', true), [wave.at(-1)], 'reduced motion: only the resting frame');
  assert.match(framesOf(c, 'working', false)[0], /\$\(loading~spin\) working…$/);
  assert.doesNotMatch(framesOf(c, 'working', true)[0], /~spin/, 'no spinning under reduced motion');
  assert.deepEqual(framesOf(c, 'idle', false), [c.face]);
});

test('bubbles are rate-limited: test results only on a change, a kind once a minute, a gap between any two', () => {
  const gate = new BubbleGate(8_000, 60_000);
  assert.equal(gate.allow('failed', 0), true, 'the first failure droops');
  assert.equal(gate.allow('failed', 120_000), false, 'failing again on the next save is quiet');
  assert.equal(gate.allow('passed', 240_000), true, 'fixed: a wave');
  assert.equal(gate.allow('passed', 241_000), false, 'still passing on the next save: quiet');
  assert.equal(gate.allow('inbox', 245_000), false, 'too soon after the wave');
  assert.equal(gate.allow('inbox', 250_000), true);
  assert.equal(gate.allow('inbox', 280_000), false, 'the same kind within a minute');
  assert.equal(gate.allow('applied', 280_000), true, 'another kind after the gap');
  assert.equal(gate.allow('inbox', 311_000), true, 'a minute later it may show again');
  // A result that changes twice within the gap: the state is still followed.
  const fast = new BubbleGate(8_000, 60_000);
  assert.equal(fast.allow('failed', 0), true);
  assert.equal(fast.allow('passed', 1_000), false, 'too soon');
  assert.equal(fast.allow('passed', 20_000), false, 'it passed already: no late wave');
});

test('the tooltip names the companion, the last moments and what the user can do', () => {
  const c = companionOf('machine-a', 'Pip*');
  const md = companionTooltip(c, 'failed', [
    { mood: 'passed', at: 0 }, { mood: 'applied', detail: 'Formatted calc.py', at: 100_000 }, { mood: 'failed', detail: 'pytest -q', at: 170_000 },
  ], 180_000);
  assert.match(md, /^\*\*Pip\\\*\*\* the /, 'the name is escaped markdown');
  assert.match(md, /: \*tests fail…\*/);
  const recent = md.split('\n').filter((l) => l.startsWith('- '));
  assert.deepEqual(recent, ['- tests fail… (pytest \\-q), just now', '- tidied up (Formatted calc\\.py), 1 min ago', '- tests pass!, 3 min ago'], 'newest first');
  assert.match(md, /\(command:lspAgent\.companion\.talk\)/);
  assert.match(md, /sends nothing to the model unless you talk to it/);
});

test('talking to the companion is a visible, normal prompt; every watch event has a mood', () => {
  const c = companionOf('machine-a', 'Pip');
  assert.equal(talkPrompt(c, '  how are the tests? '), '(to Pip, the companion) how are the tests?');
  for (const kind of WATCH_EVENT_KINDS) assert.ok(WATCH_MOOD[kind], kind);
  assert.equal(WATCH_MOOD.testsPassed, 'passed');
  assert.equal(WATCH_MOOD.budgetReached, 'budget');
});
