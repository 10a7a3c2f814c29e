import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  addPage, emptyList, filesFrom, relativeTime, rewindSummary, sessionRow, visibleSessions, type SavedSession,
} from '../../src/shared/sessions';

const NOW = Date.parse('2026-12-01T12:00:00.000Z');
const row = (id: string, title: string, updatedAt: string, extra: Partial<SavedSession> = {}): SavedSession =>
  ({ sessionId: id, title, createdAt: updatedAt, updatedAt, turns: 1, costUsd: 0.01, ...extra });

test('pages are appended in order, a row listed twice is shown once, the last page ends loading', () => {
  let list = addPage(emptyList(), { sessions: [row('a', 'Fix add', '2026-12-01T11:00:00.000Z'), row('b', 'Tidy', '2026-12-01T10:00:00.000Z')], total: 3, nextOffset: 2 });
  assert.equal(list.nextOffset, 2);
  assert.equal(list.loaded, true);
  list = addPage(list, { sessions: [row('b', 'Tidy', '2026-12-01T10:00:00.000Z'), row('c', 'Old one', '2026-11-20T10:00:00.000Z')], total: 3, nextOffset: null });
  assert.deepEqual(visibleSessions(list).map((s) => s.sessionId), ['a', 'b', 'c']);
  assert.equal(list.nextOffset, null, 'no more pages: no "load more"');
});

test('newest first even when a page came out of order', () => {
  const list = addPage(emptyList(), { sessions: [row('old', 'x', '2026-11-01T00:00:00.000Z'), row('new', 'y', '2026-12-01T00:00:00.000Z')], nextOffset: null });
  assert.deepEqual(visibleSessions(list).map((s) => s.sessionId), ['new', 'old']);
});

test('the filter keeps titles holding every word, in any case; empty shows all', () => {
  const list = addPage(emptyList('ADD calc'), { sessions: [
    row('a', 'Fix add in calc.py', '2026-12-01T11:00:00.000Z'), row('b', 'Add tests', '2026-12-01T10:00:00.000Z'),
    row('c', 'calc: add a mul', '2026-12-01T09:00:00.000Z'), row('d', '', '2026-12-01T08:00:00.000Z', { title: null }),
  ], nextOffset: null });
  assert.deepEqual(visibleSessions(list).map((s) => s.sessionId), ['a', 'c']);
  assert.equal(visibleSessions({ ...list, filter: '  ' }).length, 4);
  assert.deepEqual(visibleSessions({ ...list, filter: 'untitled' }).map((s) => s.sessionId), ['d'], 'a session without a title is "Untitled session"');
});

test('relative time in words', () => {
  assert.equal(relativeTime('2026-12-01T11:59:50.000Z', NOW), 'just now');
  assert.equal(relativeTime('2026-12-01T11:55:00.000Z', NOW), '5 minutes ago');
  assert.equal(relativeTime('2026-12-01T11:00:00.000Z', NOW), '1 hour ago');
  assert.equal(relativeTime('2026-11-28T12:00:00.000Z', NOW), '3 days ago');
  assert.equal(relativeTime('2025-11-01T12:00:00.000Z', NOW), '1 year ago');
  assert.equal(relativeTime(undefined, NOW), '');
  assert.equal(relativeTime('not a date', NOW), '');
});

test('a row says when, how many turns and what it cost; the tooltip names model, branch and state', () => {
  const r = sessionRow(row('a', 'Fix add', '2026-12-01T11:55:00.000Z', { turns: 3, costUsd: 0.1234, model: 'claude-sonnet-4-5', gitBranch: 'main', open: true }), NOW);
  assert.equal(r.label, 'Fix add');
  assert.equal(r.description, '5 minutes ago · 3 turns · $0.12 · open');
  assert.match(r.tooltip, /Model: claude-sonnet-4-5/);
  assert.match(r.tooltip, /Branch: main/);
  assert.equal(sessionRow(row('b', 'x', '2026-12-01T11:55:00.000Z', { turns: 1, costUsd: 0.001 }), NOW).description, '5 minutes ago · 1 turn · <$0.01');
  assert.match(sessionRow(row('c', 'x', '2026-12-01T11:55:00.000Z', { error: 'newer format' }), NOW).description, /cannot be read/);
});

test('a restore puts back the files of that turn and every later one, each once', () => {
  const checkpoints = [
    { turn: 1, prompt: 'a', files: [{ path: 'one.py', existed: true }] },
    { turn: 3, prompt: 'c', files: [{ path: 'calc.py', existed: true }, { path: 'new.txt', existed: false }] },
    { turn: 2, prompt: 'b', files: [{ path: 'calc.py', existed: true }] },
  ];
  assert.deepEqual(filesFrom(checkpoints, 2).map((f) => f.path), ['calc.py', 'new.txt']);
  assert.deepEqual(filesFrom(checkpoints, 1).map((f) => f.path), ['calc.py', 'new.txt', 'one.py']);
  assert.deepEqual(filesFrom(checkpoints, 4), []);
});

test('the rewind result is said: restored, not restored with reasons, conflicts, the conversation', () => {
  const ok = rewindSummary({ turn: 1, restored: ['calc.py'], notRestored: [], conflicts: [], conversation: true }, 'both');
  assert.equal(ok.level, 'info');
  assert.equal(ok.text, 'Checkpoint before message 1: Restored calc.py. The conversation goes on from before message 1.');
  const partial = rewindSummary({ turn: 2, restored: [], notRestored: [{ path: '.env', reason: 'a secret file' }],
    conflicts: [{ path: 'app.py', reason: 'you changed line 3' }] }, 'code');
  assert.equal(partial.level, 'warning');
  assert.match(partial.text, /No file needed restoring\. Not restored: \.env \(a secret file\)\. Left alone, you changed them too: app\.py \(you changed line 3\)\./);
  assert.doesNotMatch(partial.text, /conversation/, 'a code-only restore says nothing of the conversation');
});
