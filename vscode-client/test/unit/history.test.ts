import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emptyState, reduce, type ChatState, type TextBlock, type ToolCard } from '../../src/shared/chatState';
import { addHistoryPage, historyView } from '../../src/shared/history';
import type { AgentEvent } from '../../src/shared/protocol';
import type { HistoryEntry } from '../../src/shared/sessions';

let n = 0;
const e = (type: string, fields: Record<string, unknown> = {}): HistoryEntry => ({ uuid: `u${++n}`, type, timestamp: '2026-12-01T10:00:00.000Z', ...fields });
const prompt = (text: string) => e('user', { origin: 'user', prompt: text, message: { role: 'user', content: [{ type: 'text', text }] } });
const answer = (...content: unknown[]) => e('assistant', { message: { role: 'assistant', model: 'claude-sonnet-4-5', content } });

/** A saved two-turn session, oldest first: an Edit proposal accepted, a command, a turn end with cost. */
function transcript(): HistoryEntry[] {
  n = 0;
  return [
    prompt('Fix add in calc.py'),
    // As the server records it: the proposal and its decision come while the call runs, before
    // the answer holding the call is written.
    e('proposal', { proposalId: 'p1', toolUseId: 't1', files: [{ path: 'calc.py', isNew: false, diff: '--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b' }] }),
    e('proposal_decision', { proposalId: 'p1', status: 'accepted', accepted: ['h0'], rejected: [], conflicts: [] }),
    answer({ type: 'text', text: 'Fixing it.' }, { type: 'tool_use', id: 't1', name: 'Edit', input: { path: 'calc.py', old_string: '-', new_string: '+' } }),
    e('tool_result', { message: { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: [{ type: 'text', text: 'Applied.' }] }] },
      results: [{ toolUseId: 't1', name: 'Edit', isError: false, startedAt: 10, finishedAt: 11 }] }),
    answer({ type: 'text', text: 'Done.' }),
    e('turn_end', { stopReason: 'end_turn', rounds: 2, usage: { input_tokens: 100, output_tokens: 20, cache_read_input_tokens: 50 }, costUsd: 0.01, sessionCost: { usd: 0.01 } }),
    prompt('Run the tests'),
    answer({ type: 'tool_use', id: 't2', name: 'Bash', input: { command: 'pytest' } }),
    e('todos', { todos: [{ content: 'Run tests', status: 'in_progress' }] }),
    e('system', { kind: 'note', message: 'The server restarted.', level: 'warning' }),
    e('turn_end', { stopReason: 'cancelled', rounds: 1, usage: { inputTokens: 10, outputTokens: 0 }, costUsd: 0, sessionCost: { usd: 0.012 } }),
  ];
}

test('a saved transcript renders as the chat showed it: prompts, answers, tool cards with results, the proposal, turn summaries', () => {
  const view = historyView({ entries: transcript(), nextBefore: null });
  const kinds = view.blocks.map((b) => (b.kind === 'text' ? `${b.role}` : b.kind));
  assert.deepEqual(kinds, ['user', 'proposal', 'assistant', 'tool', 'assistant', 'turn', 'user', 'tool', 'notice', 'notice', 'turn']);
  const [first, proposal, , edit] = view.blocks;
  assert.deepEqual(first, { kind: 'text', role: 'user', text: 'Fix add in calc.py', turn: 1 });
  assert.equal((edit as ToolCard).status, 'done');
  assert.equal((edit as ToolCard).result, 'Applied.');
  assert.equal((edit as ToolCard).proposalId, 'p1', 'the Edit card shows its proposal');
  assert.equal((edit as ToolCard).finishedAt, 11);
  assert.ok(proposal.kind === 'proposal' && proposal.status === 'accepted' && proposal.files[0].hunks.length === 1);
  assert.equal(proposal.kind === 'proposal' && proposal.files[0].hunks[0].diff.split('\n')[0], '@@ -1,2 +1,2 @@');
  const bash = view.blocks[7] as ToolCard;
  assert.equal(bash.status, 'error', 'a call without a result (the session ended) is not shown as done');
  assert.match(view.blocks[8].kind === 'notice' ? view.blocks[8].text : '', /server restarted/);
  assert.match(view.blocks[9].kind === 'notice' ? view.blocks[9].text : '', /Stopped by you/);
  const summary = view.blocks[5];
  assert.ok(summary.kind === 'turn' && summary.inputTokens === 150 && summary.outputTokens === 20 && summary.usd === 0.01);
  assert.deepEqual(summary.kind === 'turn' && summary.models, ['claude-sonnet-4-5']);
  assert.equal(view.costUsd, 0.012, 'the session cost is the last turn end\'s running total');
  const second = view.blocks[10];
  assert.ok(second.kind === 'turn' && second.inputTokens === 10, 'camelCase token counts are read too');
  assert.ok(second.kind === 'turn' && Math.abs((second.usd ?? 0) - 0.002) < 1e-9, 'without its own cost, a turn costs what the running total grew by');
  assert.deepEqual(view.todos.map((t) => t.content), ['Run tests']);
  assert.equal(view.turns, 2);
});

test('pages come newest first; an older page goes above, and a partial history numbers prompts from the total', () => {
  const all = transcript();
  const newest = { entries: all.slice(7).reverse(), nextBefore: all[7].uuid };
  let loaded = addHistoryPage(undefined, newest, 2);
  let view = historyView(loaded);
  assert.equal((view.blocks[0] as TextBlock).text, 'Run the tests');
  assert.equal((view.blocks[0] as TextBlock).turn, 2, 'the newest page\'s prompt is turn 2 of 2, not 1');
  loaded = addHistoryPage(loaded, { entries: all.slice(0, 7).reverse(), nextBefore: null });
  view = historyView(loaded);
  assert.deepEqual(view.blocks.filter((b): b is TextBlock => b.kind === 'text' && b.role === 'user').map((b) => [b.text, b.turn]),
    [['Fix add in calc.py', 1], ['Run the tests', 2]]);
  assert.equal(loaded.nextBefore, null);
  // The same page again (a double click) adds nothing.
  assert.equal(addHistoryPage(loaded, { entries: all.slice(0, 7).reverse(), nextBefore: null }).entries.length, all.length);
});

test('a tool result on a newer page than its call still completes the card', () => {
  const all = transcript();
  let loaded = addHistoryPage(undefined, { entries: all.slice(4).reverse(), nextBefore: all[4].uuid }, 2);
  assert.equal(historyView(loaded).blocks.some((b) => b.kind === 'tool' && b.toolUseId === 't1'), false);
  loaded = addHistoryPage(loaded, { entries: all.slice(0, 4).reverse(), nextBefore: null });
  const card = historyView(loaded).blocks.find((b): b is ToolCard => b.kind === 'tool' && b.toolUseId === 't1');
  assert.equal(card?.status, 'done');
});

test('stop-hook continuations and agent-added messages are not numbered as prompts', () => {
  n = 0;
  const view = historyView({ entries: [prompt('go'), e('user', { origin: 'stop_hook', prompt: '<stop-hook-feedback>Tests fail</stop-hook-feedback>' }),
    e('user', { origin: 'agent', prompt: 'continue' }), prompt('again')], nextBefore: null });
  assert.deepEqual(view.blocks.map((b) => b.kind === 'text' ? b.turn : b.kind), [1, 'continuation', 2]);
  assert.equal(view.blocks[1].kind === 'continuation' && view.blocks[1].reason, 'Tests fail');
});

const event = (seq: number, fields: Record<string, unknown>): AgentEvent => ({ sessionId: 's1', seq, ts: 0, ...fields } as AgentEvent);

test('a resumed session shows its history, is active, and takes the new server\'s events from seq 1', () => {
  let state: ChatState = reduce(emptyState(), { type: 'session', sessionId: 's1', mode: 'default', model: 'm' });
  state = reduce(state, { type: 'event', event: event(40, { type: 'turn_started', prompt: 'old' }) });
  state = reduce(state, { type: 'session', sessionId: 's2', mode: 'default', model: 'm' });
  state = reduce(state, { type: 'history', sessionId: 's1', mode: 'plan', model: 'claude-opus-4-1', history: historyView({ entries: transcript(), nextBefore: 'u1' }),
    olderCursor: 'u1', activate: true });
  const s1 = state.sessions.s1;
  assert.equal(state.activeSessionId, 's1');
  assert.equal(s1.mode, 'plan');
  assert.equal(s1.olderCursor, 'u1');
  assert.equal(s1.costUsd, 0.012);
  state = reduce(state, { type: 'userPrompt', sessionId: 's1', text: 'next' });
  state = reduce(state, { type: 'event', event: event(1, { type: 'turn_started', prompt: 'next' }) });
  const last = state.sessions.s1.blocks.at(-1) as TextBlock;
  assert.equal(state.sessions.s1.busy, true, 'seq 1 of the new server is not taken for a stale event');
  assert.deepEqual(last, { kind: 'text', role: 'user', text: 'next', turn: 3 }, 'the next prompt is turn 3 of the resumed session');
});

test('live prompts are numbered as the server counts turns (not the Stop hook\'s)', () => {
  let state: ChatState = reduce(emptyState(), { type: 'session', sessionId: 's1', mode: 'default', model: 'm' });
  state = reduce(state, { type: 'userPrompt', sessionId: 's1', text: 'one' });
  state = reduce(state, { type: 'event', event: event(1, { type: 'turn_started', prompt: 'one' }) });
  state = reduce(state, { type: 'event', event: event(2, { type: 'turn_started', prompt: 'hook', trigger: 'stop_hook' }) });
  state = reduce(state, { type: 'event', event: event(3, { type: 'turn_started', prompt: 'Fix this problem the editor reports: x' }) });
  const prompts = state.sessions.s1.blocks.filter((b): b is TextBlock => b.kind === 'text' && b.role === 'user');
  assert.deepEqual(prompts.map((b) => b.turn), [1, 2]);
});

test('rename and delete reach the panel', () => {
  let state: ChatState = reduce(emptyState(), { type: 'session', sessionId: 's1', mode: 'default', model: 'm' });
  state = reduce(state, { type: 'title', sessionId: 's1', title: 'Renamed' });
  assert.equal(state.sessions.s1.title, 'Renamed');
  state = reduce(state, { type: 'forget', sessionId: 's1' });
  assert.equal(state.sessions.s1, undefined);
  assert.deepEqual(state.order, []);
  assert.equal(state.activeSessionId, undefined);
});
