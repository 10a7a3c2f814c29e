import assert from 'node:assert/strict';
import { test } from 'node:test';
import { filesWithAccepted, ReviewBook } from '../../src/shared/reviewBook';
import { isAgentEvent, isCompatibleProtocol } from '../../src/shared/protocol';

const FILES = [
  { uri: 'file:///w/a.py', path: 'a.py', isNew: false, isDeleted: false, diff: '', hunks: [
    { id: 'f1.h1', header: '@@ -1 +1 @@', diff: '@@ -1 +1 @@\n-a\n+A\n' },
    { id: 'f1.h2', header: '@@ -9 +9 @@', diff: '@@ -9 +9 @@\n-i\n+I\n' }] },
  { uri: 'file:///w/b.py', path: 'b.py', isNew: false, isDeleted: false, diff: '', hunks: [
    { id: 'f2.h1', header: '@@ -1 +1 @@', diff: '@@ -1 +1 @@\n-b\n+B\n' }] },
];

test('the review is sent once every hunk has a decision', () => {
  const book = new ReviewBook();
  book.add('s', 'p1', FILES);
  assert.equal(book.decide('p1', ['f1.h1'], 'accept'), undefined);
  assert.equal(book.decide('p1', ['f1.h2'], 'reject'), undefined);
  assert.deepEqual(book.undecidedHunks('file:///w/b.py').map((x) => x.hunk.id), ['f2.h1']);
  const params = book.decide('p1', ['f2.h1'], 'accept');
  assert.deepEqual(params, { proposalId: 'p1', accept: ['f1.h1', 'f2.h1'], reject: ['f1.h2'] });
  assert.equal(book.decide('p1', ['f1.h1'], 'accept'), undefined, 'a submitted proposal takes no more decisions');
  assert.deepEqual(book.filesFor('file:///w/a.py'), [], 'submitted files leave the editor');
});

test('a refused review can be decided again', () => {
  const book = new ReviewBook();
  book.add('s', 'p1', FILES.slice(1));
  assert.ok(book.decide('p1', ['f2.h1'], 'accept'));
  book.reopen('p1');
  assert.equal(book.undecidedHunks('file:///w/b.py').length, 1);
});

test('unknown hunk ids are ignored', () => {
  const book = new ReviewBook();
  book.add('s', 'p1', FILES.slice(1));
  assert.equal(book.decide('p1', ['nope'], 'accept'), undefined);
  assert.equal(book.decide('other', ['f2.h1'], 'accept'), undefined);
});

test('typing moves the hunks of that file only', () => {
  const book = new ReviewBook();
  book.add('s', 'p1', FILES);
  assert.equal(book.onChange('file:///w/a.py', [{ startLine: 0, endLine: 0, insertedLineBreaks: 1 }]), true);
  const a = book.undecidedHunks('file:///w/a.py').map((x) => x.hunk);
  assert.equal(a[0].touched, true);
  assert.equal(a[1].blocks[0].line, 9);
  assert.equal(book.undecidedHunks('file:///w/b.py')[0].hunk.blocks[0].line, 0);
  assert.equal(book.onChange('file:///w/c.py', []), false);
});

test('files with accepted hunks are the ones to save', () => {
  assert.deepEqual(filesWithAccepted(FILES, ['f2.h1']), ['file:///w/b.py']);
});

test('protocol helpers', () => {
  assert.equal(isCompatibleProtocol('1.0'), true);
  assert.equal(isCompatibleProtocol('1.7'), true);
  assert.equal(isCompatibleProtocol('2.0'), false);
  assert.equal(isCompatibleProtocol(undefined), false);
  assert.equal(isAgentEvent({ type: 'x', sessionId: 's', seq: 1 }), true);
  assert.equal(isAgentEvent({ type: 'x' }), false);
});
