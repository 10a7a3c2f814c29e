import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emptyState, overallStatus, reduce, toolSummary, type ChatState } from '../../src/shared/chatState';
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
  const s = run(emptyState(), { type: 'turn_started', prompt: 'context...\nFix: slugify returns underscores' });
  assert.equal(s.activeSessionId, 's1');
  assert.equal(s.sessions.s1.blocks[0].kind, 'text');
  assert.equal(s.sessions.s1.title, 'Fix: slugify returns underscores');
});

test('tool cards follow the call from streaming to result', () => {
  seq = 0;
  let s = run(started(), { type: 'turn_started', prompt: 'x' }, { type: 'tool_call_started', toolUseId: 't1', name: 'Bash' });
  assert.equal((s.sessions.s1.blocks[1] as any).status, 'streaming');
  s = run(s, { type: 'tool_input_complete', toolUseId: 't1', name: 'Bash', input: { command: 'pytest' } },
    { type: 'tool_execution_started', toolUseId: 't1', name: 'Bash' });
  s = reduce(s, { type: 'permissionRequested', request: { requestId: 'r1', sessionId: 's1', toolUseId: 't1', tool: 'Bash', input: {}, reason: 'runs pytest' } });
  assert.equal((s.sessions.s1.blocks[1] as any).status, 'waiting');
  assert.equal(overallStatus(s), 'approval');
  s = reduce(s, { type: 'permissionAnswered', requestId: 'r1', decision: 'allow' });
  assert.equal(s.sessions.s1.permissions.length, 0);
  assert.equal(overallStatus(s), 'working');
  s = run(s, { type: 'tool_result', toolUseId: 't1', name: 'Bash', content: '1 passed', isError: false });
  assert.deepEqual({ ...(s.sessions.s1.blocks[1] as any) }, {
    kind: 'tool', toolUseId: 't1', name: 'Bash', input: { command: 'pytest' }, status: 'done', result: '1 passed',
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
  assert.equal(overallStatus(s), 'approval');
  s = run(s, { type: 'proposal_resolved', proposalId: 'p1', status: 'accepted', accepted: ['f1.h1'], rejected: [], conflicts: [] });
  assert.equal(overallStatus(s), 'working');
});

test('tool summaries pick the telling input field', () => {
  assert.equal(toolSummary('Bash', { command: 'pytest -q\nmore' }), 'pytest -q');
  assert.equal(toolSummary('Read', { path: 'a.py', limit: 3 }), 'a.py');
  assert.equal(toolSummary('X', undefined), '');
});
