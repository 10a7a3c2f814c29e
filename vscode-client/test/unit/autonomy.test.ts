import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  dreamMessage, inboxRow, isUnreviewed, isWatchSettingsFile, memoryNameOf, memoryPathOf, memoryRows, mergeInboxItem, proposalToOpen, unreviewedCount, watcherStatusView,
} from '../../src/shared/autonomy';
import type { InboxItem, MemoryIndex, WatchStatus } from '../../src/shared/protocol';

const item = (i: Partial<InboxItem>): InboxItem => ({
  id: 'a1', kind: 'test_failure', title: '`pytest -x -q` fails after calc.py was saved', detail: 'E assert 3 == 4',
  sessionId: 's1', proposalIds: ['p-1'], createdAt: 1000, ...i,
});
const status = (s: Partial<WatchStatus>): WatchStatus => ({
  enabled: true, paused: false, testCommand: 'pytest -x -q', source: 'project', approved: true, warnings: [], ...s,
});

test('an inbox row says what failed, how long ago, and how many proposals wait', () => {
  const row = inboxRow(item({ proposalIds: ['p-1', 'p-2'] }), new Set(['p-1', 'p-2']), 1125);
  assert.equal(row.label, 'pytest -x -q fails after calc.py was saved', 'backticks are markdown, not label text');
  assert.equal(row.description, '2 proposals to review · 2 min 5 s ago');
  assert.match(row.tooltip, /test failure, 2 min 5 s ago; session s1\n\nE assert 3 == 4$/);
  assert.equal(row.context, 'inbox.unreviewed');
  const done = inboxRow(item({}), new Set(), 1001);
  assert.equal(done.description, 'reviewed · 1 s ago');
  assert.equal(done.context, 'inbox.reviewed');
  assert.equal(done.icon, 'check');
});

test('the badge counts items with a pending proposal; opening picks the first pending one', () => {
  const items = [item({ id: 'a', proposalIds: ['p-1', 'p-2'] }), item({ id: 'b', proposalIds: ['p-3'] }), item({ id: 'c', proposalIds: [] })];
  const pending = new Set(['p-2', 'p-3']);
  assert.equal(unreviewedCount(items, pending), 2);
  assert.equal(isUnreviewed(items[2], pending), false);
  assert.equal(proposalToOpen(items[0], pending), 'p-2', 'p-1 was decided already');
  assert.equal(proposalToOpen(items[2], pending), undefined);
});

test('an item sent again with a further proposal replaces the old one in place', () => {
  const items = [item({ id: 'a' }), item({ id: 'b' })];
  const merged = mergeInboxItem(items, item({ id: 'a', proposalIds: ['p-1', 'p-9'] }));
  assert.deepEqual(merged.map((i) => i.id), ['a', 'b']);
  assert.deepEqual(merged[0].proposalIds, ['p-1', 'p-9']);
  assert.deepEqual(mergeInboxItem(items, item({ id: 'c' })).map((i) => i.id), ['a', 'b', 'c'], 'a new item goes last (oldest first)');
});

test('the watcher status item: hidden when off, approve / resume / pause by state', () => {
  assert.equal(watcherStatusView(undefined).visible, false);
  assert.equal(watcherStatusView(status({ enabled: false })).visible, false);
  const approve = watcherStatusView(status({ approved: false }));
  assert.equal(approve.command, 'lspAgent.watcher.approve');
  assert.equal(approve.warning, true);
  assert.match(approve.tooltip, /from the project settings\) runs test command: pytest -x -q/);
  const paused = watcherStatusView(status({ paused: true }));
  assert.equal(paused.command, 'lspAgent.watcher.resume');
  assert.match(paused.text, /paused/);
  const on = watcherStatusView(status({ testCommand: null, warnings: ['watch.mode ignored'] }));
  assert.equal(on.command, 'lspAgent.watcher.pause');
  assert.match(on.tooltip, /no test command configured[\s\S]*\nwatch\.mode ignored$/);
});

test('memory rows: the index first, then topics by name, a broken one flagged', () => {
  const index: MemoryIndex = {
    folder: '/state/memory/ws', index: '- [testing](testing.md)\n\n- [style](style.md)\n', warnings: [],
    topics: [
      { name: 'testing', file: 'testing.md', type: 'project', description: 'run pytest -q', size: 120 },
      { name: 'style', file: 'style.md', type: '', description: '', size: 9, problem: 'missing description' },
    ],
  };
  const rows = memoryRows(index);
  assert.deepEqual(rows.map((r) => r.name), ['MEMORY.md', 'style', 'testing']);
  assert.equal(rows[0].description, 'index · 2 lines');
  assert.equal(rows[0].context, 'memory.index');
  assert.equal(rows[1].icon, 'warning');
  assert.match(rows[1].description, /missing description/);
  assert.equal(rows[2].description, 'project · run pytest -q');
});

test('Dream progress names the phase, and the outcome lists what changed', () => {
  assert.deepEqual(dreamMessage({ status: 'running', phase: 'gather', sessions: 3 }), { done: false, text: 'reading recent sessions (3 sessions)' });
  const end = dreamMessage({ status: 'done', report: 'merged two notes', written: ['style.md'], deleted: ['old.md'] });
  assert.deepEqual(end, { done: true, text: 'Dream done: merged two notes (wrote style.md, deleted old.md)' });
  assert.equal(dreamMessage({ status: 'skipped', reason: 'another server holds the lock' }).text, 'Dream skipped: another server holds the lock');
});

test('memory documents map to the names the server takes, both ways', () => {
  assert.equal(memoryNameOf('/MEMORY.md'), 'MEMORY.md');
  assert.equal(memoryNameOf('/testing.md'), 'testing');
  assert.equal(memoryPathOf('testing'), '/testing.md');
  assert.equal(memoryPathOf('testing.md'), '/testing.md');
  assert.equal(memoryPathOf('MEMORY.md'), '/MEMORY.md');
  for (const name of ['MEMORY.md', 'style', 'a-b_c']) assert.equal(memoryNameOf(memoryPathOf(name)), name);
});

test('saving a settings file that may hold "watch" refreshes the watcher; other files do not', () => {
  for (const p of ['/ws/.lsp-agent/settings.json', '/ws/.lsp-agent/settings.local.json', '/ws/.claude/settings.json', '/home/u/.config/lsp-agent/settings.json']) {
    assert.equal(isWatchSettingsFile(p), true, p);
  }
  for (const p of ['/ws/settings.json', '/ws/.vscode/settings.json', '/ws/.lsp-agent/settings.json.bak']) assert.equal(isWatchSettingsFile(p), false, p);
});
