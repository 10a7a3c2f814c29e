import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PromptRecall } from '../../src/shared/promptRecall';

test('Up from an empty input goes back through the prompts, Down comes forward to an empty input', () => {
  const r = new PromptRecall();
  assert.equal(r.handlesUp(''), true);
  assert.equal(r.handlesUp('a draft'), false, 'Up in a draft moves the cursor, it does not replace the draft');
  r.load(['third', 'second', 'third', 'first']);
  assert.equal(r.up(), 'third');
  assert.equal(r.handlesUp('third'), true);
  assert.equal(r.up(), 'second');
  assert.equal(r.up(), 'first', 'duplicates are listed once');
  assert.equal(r.up(), 'first', 'stays on the oldest');
  assert.equal(r.down(), 'second');
  assert.equal(r.down(), 'third');
  assert.equal(r.down(), '', 'past the newest: the empty input again');
  assert.equal(r.recalling, false);
  assert.equal(r.handlesDown(''), false);
});

test('typing over a recalled prompt ends the recall: arrows move in the text again', () => {
  const r = new PromptRecall();
  r.load(['one', 'two']);
  r.up();
  r.stop();
  assert.equal(r.handlesUp('one'), false);
  assert.equal(r.handlesDown('one'), false);
  assert.equal(r.handlesUp('one edited'), false);
});

test('no earlier prompts: Up changes nothing', () => {
  const r = new PromptRecall();
  r.load([]);
  assert.equal(r.up(), undefined);
  assert.equal(r.recalling, false);
});
