import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isForwardable, PerKeyDebouncer, SentDiagnostics, withoutOwn, type Timers } from '../../src/shared/diagnosticsForward';

/** Timers run by hand: ``advance(ms)`` fires what is due, in order. */
function fakeTimers(): Timers & { advance(ms: number): void; live(): number } {
  let now = 0;
  let next = 1;
  const due = new Map<number, { at: number; fn: () => void }>();
  return {
    set: (fn, ms) => { const id = next++; due.set(id, { at: now + ms, fn }); return id; },
    clear: (h) => { due.delete(h as number); },
    advance(ms) {
      now += ms;
      for (const [id, t] of [...due].sort((a, b) => a[1].at - b[1].at)) {
        if (t.at <= now) { due.delete(id); t.fn(); }
      }
    },
    live: () => due.size,
  };
}

test('a burst of changes to one document sends once, 500 ms after the last; documents wait apart', () => {
  const timers = fakeTimers();
  const fired: string[] = [];
  const d = new PerKeyDebouncer(500, timers, (k) => fired.push(k));
  d.poke('file:///a.py');
  timers.advance(300);
  d.poke('file:///a.py'); // still typing: the wait starts again
  d.poke('file:///b.py');
  timers.advance(300);
  assert.deepEqual(fired, [], 'nothing before a quiet 500 ms');
  timers.advance(200);
  assert.deepEqual(fired, ['file:///a.py', 'file:///b.py']);
  assert.equal(timers.live(), 0, 'the replaced timer was cleared, not left to fire');
  d.poke('file:///a.py');
  d.cancelAll();
  timers.advance(1000);
  assert.deepEqual(fired, ['file:///a.py', 'file:///b.py'], 'cancelled (the watcher was paused)');
  assert.equal(d.pending, 0);
});

test('only workspace files are forwarded', () => {
  assert.equal(isForwardable('file', true), true);
  assert.equal(isForwardable('file', false), false, 'a file outside the workspace');
  for (const scheme of ['untitled', 'git', 'output', 'lsp-agent-memory', 'vscode-notebook-cell']) assert.equal(isForwardable(scheme, true), false, scheme);
});

test('our own server\'s diagnostics are left out, one copy each', () => {
  const key = (d: { m: string }) => d.m;
  const all = [{ m: 'E1 theirs' }, { m: 'ours' }, { m: 'same text' }, { m: 'same text' }];
  assert.deepEqual(withoutOwn(all, [{ m: 'ours' }, { m: 'same text' }], key), [{ m: 'E1 theirs' }, { m: 'same text' }],
    'another extension may report the same text: only our copy goes');
  assert.deepEqual(withoutOwn(all, [], key), all);
});

test('an unchanged list is not sent twice; a document that gets clean sends its empty list once', () => {
  const sent = new SentDiagnostics();
  const e1 = [{ message: 'x is not defined', range: { start: { line: 1, character: 0 }, end: { line: 1, character: 1 } } }];
  assert.equal(sent.changed('file:///a.py', []), false, 'never sent and clean: nothing to say');
  assert.equal(sent.changed('file:///a.py', e1), true);
  assert.equal(sent.changed('file:///a.py', e1), false, 'same list again (e.g. another extension republished)');
  assert.equal(sent.changed('file:///a.py', []), true, 'fixed: the server hears it');
  assert.equal(sent.changed('file:///a.py', []), false);
  assert.equal(sent.changed('file:///b.py', e1), true, 'per document');
  sent.clear();
  assert.equal(sent.changed('file:///b.py', e1), true, 'a new server is told again');
});
