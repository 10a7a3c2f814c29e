import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyHunks, hunkSpan, hunkStats, parseHeader, parseHunk, shiftHunks } from '../../src/shared/hunks';

const BASE = 'a\nb\nc\nd\ne\nf\n';
const REPLACE_C = '@@ -2,3 +2,3 @@\n b\n-c\n+C\n d\n';
const INSERT_AFTER_E = '@@ -5,1 +5,3 @@\n e\n+e1\n+e2\n';

test('a header without counts means one line', () => {
  assert.deepEqual(parseHeader('@@ -3 +3,2 @@'), { oldStart: 3, oldCount: 1, newStart: 3, newCount: 2 });
  assert.throws(() => parseHeader('not a header'), /not a hunk header/);
});

test('a replacement becomes one block on the old line', () => {
  const h = parseHunk('f1.h1', REPLACE_C);
  assert.deepEqual(h.blocks, [{ line: 2, removed: 1, added: ['C'] }]);
  assert.deepEqual(hunkSpan(h), { start: 2, end: 2 });
  assert.equal(hunkStats(h), '+1 −1');
});

test('an insertion at the start of an empty file', () => {
  const h = parseHunk('f1.h1', '@@ -0,0 +1,2 @@\n+x\n+y\n');
  assert.deepEqual(h.blocks, [{ line: 0, removed: 0, added: ['x', 'y'] }]);
  assert.equal(applyHunks('', [h]), 'x\ny\n');
});

test('applying hunks gives the proposed text', () => {
  const hunks = [parseHunk('f1.h1', REPLACE_C), parseHunk('f1.h2', INSERT_AFTER_E)];
  assert.equal(applyHunks(BASE, hunks), 'a\nb\nC\nd\ne\ne1\ne2\nf\n');
});

test('"No newline at end of file" markers are ignored', () => {
  const h = parseHunk('f1.h1', '@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+b\n\\ No newline at end of file\n');
  assert.deepEqual(h.blocks, [{ line: 0, removed: 1, added: ['b'] }]);
});

test('typing above a hunk moves it; typing below leaves it', () => {
  const hunks = [parseHunk('f1.h1', REPLACE_C)];
  const above = shiftHunks(hunks, { startLine: 0, endLine: 0, insertedLineBreaks: 2 });
  assert.equal(above[0].blocks[0].line, 4);
  assert.equal(above[0].touched, false);
  const below = shiftHunks(hunks, { startLine: 4, endLine: 5, insertedLineBreaks: 0 });
  assert.equal(below[0].blocks[0].line, 2);
  assert.equal(below[0].touched, false);
});

test('typing inside a hunk flags it for the server to rebase', () => {
  const touched = shiftHunks([parseHunk('f1.h1', REPLACE_C)], { startLine: 2, endLine: 2, insertedLineBreaks: 0 });
  assert.equal(touched[0].touched, true);
  assert.equal(touched[0].blocks[0].line, 2);
});

test('deleting lines above a hunk moves it up', () => {
  const moved = shiftHunks([parseHunk('f1.h2', INSERT_AFTER_E)], { startLine: 0, endLine: 2, insertedLineBreaks: 0 });
  assert.equal(moved[0].blocks[0].line, 3);
});
