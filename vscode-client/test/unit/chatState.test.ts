import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  currentActivity, emptyState, overallStatus, reduce, restoreState, toolSummary, type ChatState,
} from '../../src/shared/chatState';
import type { AgentEvent } from '../../src/shared/protocol';

let seq = 0;
const ev = (e: Record<string, unknown>): AgentEvent => ({ sessionId: 's1', seq: ++seq, ts: 0, ...e } as AgentEvent);
const run = (state: ChatState, ...events: Record<string, unknown>[]) => events.reduce((s, e) => reduce(s, { type: 'event', event: ev(e) }), state);
const started = () => reduce(emptyState(), { type: 'session', sessionId: 's1', mode: 'default', model: 'm' });

test('streamed text deltas join into one assistant message', () => {
  seq = 0;
  let s = reduce(started(), { type: 'userPrompt', sessionId: 's1', text: 'hi' });
  s = run(s, { type: 'turn_started', prompt: 'hi' }, { type: 'model_request', model: 'm', round: 1 },
    { type: 'text_delta', text: 'Hel' }, { type: 'text_delta', text: 'lo' });
  const blocks = s.sessions.s1.blocks;
  assert.equal(blocks.length, 2, 'the typed prompt is not repeated by turn_started');
  assert.deepEqual(blocks[1], { kind: 'text', role: 'assistant', text: 'Hello' });
  assert.equal(s.sessions.s1.busy, true);
  assert.equal(s.sessions.s1.title, 'hi');
});

test('a turn started from the editor shows its prompt', () => {
  seq = 0;
  const s = run(emptyState(), { type: 'turn_started', prompt: 'Fix this problem the editor reports: slugify returns underscores\nFind the cause (it may be in another file), propose the fix, and verify it.' });
  assert.equal(s.activeSessionId, 's1');
  assert.equal(s.sessions.s1.blocks[0].kind, 'text');
  assert.equal(s.sessions.s1.title, 'Fix: slugify returns underscores', 'titled by the diagnostic, not the prompt\'s last line');
});

test('tool cards follow the call from streaming to result', () => {
  seq = 0;
  let s = run(started(), { type: 'turn_started', prompt: 'x' }, { type: 'tool_call_started', toolUseId: 't1', name: 'Bash' });
  assert.equal((s.sessions.s1.blocks[1] as any).status, 'streaming');
  s = run(s, { type: 'tool_input_complete', toolUseId: 't1', name: 'Bash', input: { command: 'pytest' } },
    { type: 'tool_execution_started', toolUseId: 't1', name: 'Bash' });
  s = reduce(s, { type: 'permissionRequested', request: { requestId: 'r1', sessionId: 's1', toolUseId: 't1', tool: 'Bash', input: {}, reason: 'runs pytest' } });
  assert.equal((s.sessions.s1.blocks[1] as any).status, 'waiting');
  assert.equal(overallStatus(s), 'permission');
  s = reduce(s, { type: 'permissionAnswered', requestId: 'r1', decision: 'allow' });
  assert.equal(s.sessions.s1.permissions.length, 0);
  assert.equal(overallStatus(s), 'running');
  s = run(s, { type: 'tool_result', toolUseId: 't1', name: 'Bash', content: '1 passed', isError: false, startedAt: 10, finishedAt: 12.5 });
  assert.deepEqual({ ...(s.sessions.s1.blocks[1] as any) }, {
    kind: 'tool', toolUseId: 't1', name: 'Bash', input: { command: 'pytest' }, status: 'done', result: '1 passed', startedAt: 10, finishedAt: 12.5,
    permission: { reason: 'runs pytest', answered: 'allow', source: 'user' },
  });
  s = run(s, { type: 'turn_ended', stopReason: 'end_turn', usage: {}, rounds: 1 });
  assert.equal(overallStatus(s), 'idle');
});

test('a retry discards what the failed request streamed', () => {
  seq = 0;
  const s = run(started(), { type: 'turn_started', prompt: 'x' }, { type: 'model_request', model: 'm', round: 1 },
    { type: 'text_delta', text: 'partial' }, { type: 'retrying', attempt: 1, reason: 'overloaded', delaySeconds: 1 });
  const blocks = s.sessions.s1.blocks;
  assert.equal(blocks.length, 2);
  assert.equal(blocks[1].kind, 'notice');
});

test('duplicate events (same seq) are ignored', () => {
  seq = 0;
  const s1 = run(started(), { type: 'turn_started', prompt: 'x' }, { type: 'text_delta', text: 'a' });
  const dup = reduce(s1, { type: 'event', event: { sessionId: 's1', seq: 2, ts: 0, type: 'text_delta', text: 'a' } });
  assert.equal((dup.sessions.s1.blocks[1] as any).text, 'a');
});

test('a pending proposal needs approval until it is resolved', () => {
  seq = 0;
  let s = run(started(), { type: 'turn_started', prompt: 'x' },
    { type: 'proposal_created', proposalId: 'p1', toolUseId: 't', autoApply: false, files: [] });
  assert.equal(overallStatus(s), 'review');
  s = run(s, { type: 'proposal_resolved', proposalId: 'p1', status: 'accepted', accepted: ['f1.h1'], rejected: [], conflicts: [] });
  assert.equal(overallStatus(s), 'running');
});

test('tool summaries pick the telling input field', () => {
  assert.equal(toolSummary('Bash', { command: 'pytest -q\nmore' }), 'pytest -q');
  assert.equal(toolSummary('Read', { path: 'a.py', limit: 3 }), 'a.py');
  assert.equal(toolSummary('X', undefined), '');
  assert.equal(toolSummary('TodoWrite', { todos: [{ content: 'a', status: 'completed' }, { content: 'b', status: 'pending' }] }), '2 items, 1 done');
});

const FEEDBACK = '<stop-hook-feedback>\nA Stop hook (a check the user configured to run when you finish) did not let the turn end. ' +
  'Address this, then finish again:\ntests still fail\n</stop-hook-feedback>';
const ended = { type: 'turn_ended', stopReason: 'end_turn', usage: {}, rounds: 1 };

test('each todos_updated replaces the plan; an empty list clears it', () => {
  seq = 0;
  let s = run(started(), { type: 'turn_started', prompt: 'x' }, { type: 'todos_updated', todos: [
    { content: 'Read the code', status: 'completed' },
    { content: 'Run the tests', status: 'in_progress', activeForm: 'Running the tests' },
    { content: 'Fix the bug', status: 'pending' },
  ] });
  assert.equal(s.sessions.s1.todos.length, 3);
  assert.equal(currentActivity(s.sessions.s1), 'Running the tests');
  s = run(s, { type: 'todos_updated', todos: [{ content: 'Fix the bug', status: 'in_progress' }] });
  assert.deepEqual(s.sessions.s1.todos, [{ content: 'Fix the bug', status: 'in_progress' }]);
  assert.equal(currentActivity(s.sessions.s1), 'Fix the bug', 'without activeForm the content is shown');
  s = run(s, { type: 'todos_updated', todos: [] });
  assert.deepEqual(s.sessions.s1.todos, []);
  assert.equal(currentActivity(s.sessions.s1), undefined);
});

test('todos are kept per session', () => {
  seq = 0;
  let s = run(started(), { type: 'todos_updated', todos: [{ content: 'a', status: 'pending' }] });
  s = reduce(s, { type: 'event', event: { sessionId: 's2', seq: 1, ts: 0, type: 'todos_updated', todos: [{ content: 'b', status: 'completed' }] } });
  assert.deepEqual(s.sessions.s1.todos.map((t) => t.content), ['a']);
  assert.deepEqual(s.sessions.s2.todos.map((t) => t.content), ['b']);
});

test('a Stop-hook continuation keeps a panel prompt busy until its answer', () => {
  seq = 0;
  let s = reduce(started(), { type: 'userPrompt', sessionId: 's1', text: 'fix the bug' });
  s = reduce(s, { type: 'busy', sessionId: 's1', busy: true });
  s = run(s, { type: 'turn_started', prompt: 'fix the bug' }, { type: 'text_delta', text: 'Done.' }, ended);
  assert.equal(s.sessions.s1.busy, true, 'the prompt has not answered yet');
  assert.equal(overallStatus(s), 'running');
  s = run(s, { type: 'turn_started', prompt: FEEDBACK, trigger: 'stop_hook' });
  const blocks = s.sessions.s1.blocks;
  assert.deepEqual(blocks[blocks.length - 1], { kind: 'continuation', reason: 'tests still fail' });
  assert.equal(blocks.filter((b) => b.kind === 'text' && b.role === 'user').length, 1, 'no user bubble for the hook');
  assert.equal(s.sessions.s1.title, 'fix the bug');
  s = run(s, { type: 'text_delta', text: 'Fixed the tests.' }, ended);
  assert.equal(s.sessions.s1.busy, true);
  assert.equal((s.sessions.s1.blocks.at(-1) as any).text, 'Fixed the tests.', 'the new turn streams after the marker');
  s = reduce(s, { type: 'busy', sessionId: 's1', busy: false });
  assert.equal(s.sessions.s1.busy, false);
  assert.equal(overallStatus(s), 'idle');
});

test('a turn started by a command is idle after its last turn_ended', () => {
  seq = 0;
  let s = run(emptyState(), { type: 'turn_started', prompt: 'Fix: x' }, ended);
  assert.equal(s.sessions.s1.busy, false);
  s = run(s, { type: 'turn_started', prompt: FEEDBACK, trigger: 'stop_hook' });
  assert.equal(s.sessions.s1.busy, true, 'the continuation is work again');
  assert.equal(s.sessions.s1.blocks.at(-1)!.kind, 'continuation');
  s = run(s, ended);
  assert.equal(s.sessions.s1.busy, false);
});

test('a retry in a continuation keeps the marker', () => {
  seq = 0;
  const s = run(started(), { type: 'turn_started', prompt: 'x' }, ended,
    { type: 'turn_started', prompt: FEEDBACK, trigger: 'stop_hook' }, { type: 'model_request', model: 'm', round: 1 },
    { type: 'text_delta', text: 'partial' }, { type: 'retrying', attempt: 1, reason: 'overloaded', delaySeconds: 1 });
  assert.deepEqual(s.sessions.s1.blocks.map((b) => b.kind), ['text', 'continuation', 'notice']);
});

test('the transcript, plan and markers survive being saved; nothing stays running', () => {
  seq = 0;
  let s = reduce(started(), { type: 'userPrompt', sessionId: 's1', text: 'fix the bug' });
  s = reduce(s, { type: 'busy', sessionId: 's1', busy: true });
  s = run(s, { type: 'turn_started', prompt: 'fix the bug' }, ended,
    { type: 'turn_started', prompt: FEEDBACK, trigger: 'stop_hook' },
    { type: 'todos_updated', todos: [{ content: 'Run the tests', status: 'in_progress', activeForm: 'Running the tests' }] });
  s = reduce(s, { type: 'permissionRequested', request: { requestId: 'r1', sessionId: 's1', toolUseId: 't', tool: 'Bash', input: {}, reason: 'r' } });
  const restored = restoreState(JSON.parse(JSON.stringify(s)));
  const view = restored.sessions.s1;
  assert.deepEqual(view.blocks, s.sessions.s1.blocks);
  assert.deepEqual(view.todos, s.sessions.s1.todos);
  assert.equal(view.lastSeq, s.sessions.s1.lastSeq);
  assert.deepEqual([view.busy, view.promptPending, view.permissions.length], [false, false, 0]);
  assert.equal(overallStatus(restored), 'idle');
  // Duplicates of events already shown are still ignored after a reload.
  const again = reduce(restored, { type: 'event', event: { sessionId: 's1', seq: 1, ts: 0, type: 'turn_started', prompt: 'fix the bug' } });
  assert.equal(again.sessions.s1.blocks.length, view.blocks.length);
});

test('a transcript saved before plans existed is restored with an empty plan', () => {
  const old = { activeSessionId: 's1', order: ['s1', 'gone'], sessions: { s1: {
    sessionId: 's1', title: 't', mode: 'default', model: 'm', busy: true, blocks: [{ kind: 'text', role: 'user', text: 'hi' }],
    lastSeq: 4, permissions: [], requestStart: 1, usage: { input: 1, output: 2 },
  } } };
  const restored = restoreState(old);
  assert.deepEqual(restored.order, ['s1']);
  assert.deepEqual(restored.sessions.s1.todos, []);
  assert.equal(restored.sessions.s1.busy, false);
  assert.equal(restored.sessions.s1.lastSeq, 4);
  assert.deepEqual(restoreState(undefined), emptyState());
  assert.deepEqual(restoreState('garbage'), emptyState());
});

test('malformed todo items are dropped or shown as pending', () => {
  seq = 0;
  const s = run(started(), { type: 'todos_updated', todos: [{ content: 'a', status: 'weird' }, { status: 'pending' }, null] });
  assert.deepEqual(s.sessions.s1.todos, [{ content: 'a', status: 'pending' }]);
});

test('a permission request the server withdraws leaves the panel: no dialog, no "waiting", the card says why', () => {
  seq = 0;
  let s = run(started(), { type: 'turn_started', prompt: 'x' }, { type: 'tool_call_started', toolUseId: 't1', name: 'Bash' },
    { type: 'tool_input_complete', toolUseId: 't1', name: 'Bash', input: { command: 'pytest' } });
  s = reduce(s, { type: 'permissionRequested', request: { requestId: 'r1', sessionId: 's1', toolUseId: 't1', tool: 'Bash', input: {}, reason: 'runs pytest' } });
  s = reduce(s, { type: 'permissionRequested', request: { requestId: 'r2', sessionId: 's1', toolUseId: 't2', tool: 'Bash', input: {}, reason: 'other' } });
  assert.equal(overallStatus(s), 'permission');
  s = reduce(s, { type: 'permissionWithdrawn', requestId: 'r1' });
  assert.deepEqual(s.sessions.s1.permissions.map((p) => p.requestId), ['r2'], 'only the withdrawn request goes');
  const tool = s.sessions.s1.blocks[1] as any;
  assert.equal(tool.status, 'running', 'no longer waiting for the user');
  assert.deepEqual(tool.permission, { reason: 'runs pytest', withdrawn: true });
  s = reduce(s, { type: 'permissionWithdrawn', requestId: 'r2' });
  assert.equal(overallStatus(s), 'running', 'nothing waits for the user any more');
  // An unknown or repeated withdrawal changes nothing; the server's verdict still lands on the card.
  assert.equal(reduce(s, { type: 'permissionWithdrawn', requestId: 'r1' }), s);
  s = run(s, { type: 'permission_decided', toolUseId: 't1', tool: 'Bash', decision: 'deny', source: 'timeout' });
  assert.deepEqual((s.sessions.s1.blocks[1] as any).permission, { reason: 'runs pytest', answered: 'deny', source: 'timeout' });
});

test('a withdrawal after the user answered does not undo the answer', () => {
  seq = 0;
  let s = run(started(), { type: 'turn_started', prompt: 'x' }, { type: 'tool_call_started', toolUseId: 't1', name: 'Bash' });
  s = reduce(s, { type: 'permissionRequested', request: { requestId: 'r1', sessionId: 's1', toolUseId: 't1', tool: 'Bash', input: {}, reason: 'r' } });
  s = reduce(s, { type: 'permissionAnswered', requestId: 'r1', decision: 'allow' });
  assert.equal(reduce(s, { type: 'permissionWithdrawn', requestId: 'r1' }), s);
});

test('a background session (the watcher\'s) is listed without taking the panel from the open one', () => {
  seq = 0;
  const s = reduce(started(), { type: 'event', event: { sessionId: 'w1', seq: 1, ts: 0, type: 'turn_started', prompt: 'The watcher ran the test command' } as AgentEvent });
  assert.equal(s.activeSessionId, 's1', 'the user stays in their session');
  assert.ok(s.sessions.w1, 'the watcher\'s session is listed');
  assert.deepEqual(s.order, ['w1', 's1']);
});
