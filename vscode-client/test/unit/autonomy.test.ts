import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  dreamMessage, inboxRow, isUnreviewed, isWatchSettingsFile, memoryNameOf, memoryPathOf, memoryRows, mergeInboxItem, proposalStatuses, proposalToOpen,
  removeInboxItem, statusOfResolution, unreviewedCount, watcherActive, watcherStatusView, type ProposalKnowledge,
} from '../../src/shared/autonomy';
import type { ProposalStatus } from '../../src/shared/autonomyProtocol';
import type { InboxItem, MemoryIndex, WatchStatus } from '../../src/shared/protocol';

const item = (i: Partial<InboxItem>): InboxItem => ({
  id: 'a1', kind: 'test_failure', title: '`pytest -x -q` fails after calc.py was saved', detail: 'E assert 3 == 4',
  sessionId: 's1', proposalIds: ['p-1'], createdAt: 1000, ...i,
});
/** What the window saw itself: pending proposals (its review book) and resolved ones. */
const known = (pending: string[], resolved: Record<string, ProposalStatus> = {}): ProposalKnowledge => ({ pending: new Set(pending), resolved: new Map(Object.entries(resolved)) });
const status = (s: Partial<WatchStatus>): WatchStatus => ({
  enabled: true, paused: false, testCommand: 'pytest -x -q', source: 'project', approved: true, warnings: [], ...s,
});

test('an inbox row says what failed, how long ago, and how many proposals wait', () => {
  const row = inboxRow(item({ proposalIds: ['p-1', 'p-2'] }), known(['p-1', 'p-2']), 1125);
  assert.equal(row.label, 'pytest -x -q fails after calc.py was saved', 'backticks are markdown, not label text');
  assert.equal(row.description, '2 to review · 2 min 5 s ago');
  assert.match(row.tooltip, /failing tests, 2 min 5 s ago; session s1\np-1: to review\np-2: to review\n\nE assert 3 == 4$/);
  assert.equal(row.context, 'inbox.unreviewed');
  assert.equal(row.icon, 'beaker', 'a test failure waiting for review');
  const done = inboxRow(item({}), known([]), 1001);
  assert.equal(done.description, '1 reviewed · 1 s ago', 'an older server says nothing of how it ended');
  assert.equal(done.context, 'inbox.reviewed');
  assert.equal(done.icon, 'check');
});

test('an item the triage declined says why in its tooltip', () => {
  const declined = inboxRow(item({ sessionId: undefined, proposalIds: [], triage: { fix: false, reason: 'a network failure' } }), known([]), 1001);
  assert.match(declined.tooltip, /failing tests, 1 s ago\ntriage: not worth a fix: a network failure\n\nE assert 3 == 4$/);
  assert.doesNotMatch(inboxRow(item({}), known([]), 1001).tooltip, /triage/);
});

test('the badge counts items with a pending proposal; opening picks the first pending one', () => {
  const items = [item({ id: 'a', proposalIds: ['p-1', 'p-2'] }), item({ id: 'b', proposalIds: ['p-3'] }), item({ id: 'c', proposalIds: [] })];
  const pending = known(['p-2', 'p-3']);
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
  assert.doesNotMatch(on.tooltip, /judges/);
  const triaged = watcherStatusView(status({ triage: true, triageModel: 'claude-haiku-4-5' }));
  assert.match(triaged.tooltip, /fix only if claude-haiku-4-5 judges it worth one\. Click to pause/);
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

test('after a reload the statuses the server lists are shown; what this window saw since wins', () => {
  const listed = item({ proposalIds: ['p-1', 'p-2', 'p-3'], proposals: [
    { id: 'p-1', status: 'pending' }, { id: 'p-2', status: 'accepted' }, { id: 'p-3', status: 'stale' }] });
  // A fresh window: its review book is empty, yet p-1 still waits on the server.
  assert.deepEqual(proposalStatuses(listed, known([])).map((p) => p.status), ['pending', 'accepted', 'stale']);
  assert.equal(isUnreviewed(listed, known([])), true, 'the badge counts it after the reload');
  const row = inboxRow(listed, known([]), 1060);
  assert.equal(row.description, '1 to review · 1 accepted · 1 stale · 1 min 0 s ago');
  assert.equal(row.context, 'inbox.unreviewed');
  // Then the user rejects p-1 here: proposal_resolved is newer than the listed "pending".
  const after = known([], { 'p-1': statusOfResolution('rejected') });
  assert.deepEqual(proposalStatuses(listed, after).map((p) => p.status), ['rejected', 'accepted', 'stale']);
  assert.equal(isUnreviewed(listed, after), false);
  const future = item({ proposals: [{ id: 'p-1', status: 'superseded' as ProposalStatus }] });
  assert.equal(inboxRow(future, known([]), 1000).description, '1 reviewed · 0 s ago', 'a status from a newer server');
  // A proposal only the server lists (not in proposalIds) still counts.
  assert.deepEqual(proposalStatuses(item({ proposalIds: [], proposals: [{ id: 'p-9', status: 'withdrawn' }] }), known([])), [{ id: 'p-9', status: 'withdrawn' }]);
});

test('proposal_resolved statuses map to the Inbox\'s words', () => {
  const cases: [string, ProposalStatus][] = [['accepted', 'accepted'], ['partially_accepted', 'accepted'], ['rejected', 'rejected'],
    ['conflict', 'stale'], ['failed', 'stale'], ['cancelled', 'withdrawn'], ['something-new', 'stale']];
  for (const [wire, shown] of cases) assert.equal(statusOfResolution(wire), shown, wire);
});

test('each kind has its icon and title; an item that ended shows how', () => {
  const applied = inboxRow(item({ kind: 'auto_applied', title: 'Formatted calc.py', proposalIds: ['p-1'], proposals: [{ id: 'p-1', status: 'accepted' }] }), known([]), 1000);
  assert.equal(applied.label, 'Formatted calc.py — Review/Undo');
  assert.equal(applied.context, 'inbox.applied', 'Review stays on the row after it was applied');
  assert.equal(applied.icon, 'pass');
  const budget = inboxRow(item({ kind: 'budget', title: 'The watcher reached its budget of 6 runs per hour', sessionId: '', proposalIds: [] }), known([]), 1000);
  assert.equal(budget.icon, 'warning');
  assert.equal(budget.context, 'inbox.notice');
  assert.equal(budget.description, '0 s ago');
  assert.doesNotMatch(budget.tooltip, /session/, 'no session to name');
  const long = inboxRow(item({ title: '`python3 -c "import wallet; assert wallet.total([2, 3]) == 5"` fails after wallet.py was saved' }), known(['p-1']), 1000);
  assert.equal(long.label, 'Tests fail after wallet.py was saved', 'a long command would hide the status in a narrow side bar');
  assert.match(long.tooltip, /^`python3 -c "import wallet/, 'the tooltip keeps the command');
  const diag = inboxRow(item({ kind: 'diagnostic', title: 'Fix prepared for "x" is not defined' }), known(['p-1']), 1000);
  assert.equal(diag.icon, 'error');
  assert.equal(inboxRow(item({ kind: 'something_new' }), known(['p-1']), 1000).icon, 'git-pull-request', 'an unknown kind is drawn plainly');
  const ends: [ProposalStatus, string][] = [['accepted', 'pass'], ['rejected', 'close'], ['stale', 'history'], ['withdrawn', 'circle-slash']];
  for (const [end, icon] of ends) assert.equal(inboxRow(item({ proposals: [{ id: 'p-1', status: end }] }), known([]), 1000).icon, icon, end);
  const mixed = inboxRow(item({ proposalIds: ['p-1', 'p-2'], proposals: [{ id: 'p-1', status: 'accepted' }, { id: 'p-2', status: 'rejected' }] }), known([]), 1000);
  assert.equal(mixed.icon, 'check');
});

test('Review opens a proposal this window holds before one only the server knows; dismiss removes by id', () => {
  const it = item({ proposalIds: ['p-1', 'p-2'], proposals: [{ id: 'p-1', status: 'pending' }, { id: 'p-2', status: 'pending' }] });
  assert.equal(proposalToOpen(it, known(['p-2'])), 'p-2', 'its hunks are known here');
  assert.equal(proposalToOpen(it, known([])), 'p-1', 'else the first pending one (the session shows it)');
  assert.deepEqual(removeInboxItem([item({ id: 'a' }), item({ id: 'b' })], 'a').map((i) => i.id), ['b']);
});

test('diagnostics go to the watcher only while it is on, approved and not paused', () => {
  assert.equal(watcherActive(undefined), false);
  assert.equal(watcherActive(status({})), true);
  assert.equal(watcherActive(status({ enabled: false })), false);
  assert.equal(watcherActive(status({ approved: false })), false);
  assert.equal(watcherActive(status({ paused: true })), false);
});
