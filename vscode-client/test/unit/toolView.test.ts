import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emptyState, reduce, sessionStatus, type ChatState, type ToolCard } from '../../src/shared/chatState';
import type { AgentEvent } from '../../src/shared/protocol';
import { humanError, locations, outcomeOf, relativePath, resultCount, shellRun, tokens, usd } from '../../src/shared/toolView';

let seq = 0;
const ev = (e: Record<string, unknown>): AgentEvent => ({ sessionId: 's1', seq: ++seq, ts: 0, ...e } as AgentEvent);
const run = (state: ChatState, ...events: Record<string, unknown>[]) => events.reduce((s, e) => reduce(s, { type: 'event', event: ev(e) }), state);
const started = () => { seq = 0; return reduce(emptyState(), { type: 'session', sessionId: 's1', mode: 'default', model: 'm' }); };
const card = (s: ChatState, id = 't1') => s.sessions.s1.blocks.find((b) => b.kind === 'tool' && b.toolUseId === id) as ToolCard;

test('a shell run: output, exit code, signal', () => {
  assert.deepEqual(shellRun('F\n1 failed\nexit code: 1'), { output: 'F\n1 failed', exitCode: 1 });
  assert.deepEqual(shellRun('ok'), { output: 'ok', exitCode: 0 });
  assert.deepEqual(shellRun('(no output)'), { output: '', exitCode: 0 });
  assert.equal(shellRun('x\nkilled by signal SIGKILL').signal, 'SIGKILL');
});

test('a Bash run that exited 1 is failed, not done; a denied call is denied', () => {
  let s = run(started(), { type: 'turn_started', prompt: 'x' }, { type: 'tool_call_started', toolUseId: 't1', name: 'Bash' },
    { type: 'tool_result', toolUseId: 't1', name: 'Bash', content: 'boom\nexit code: 1', isError: false });
  assert.equal(outcomeOf(card(s), s.sessions.s1), 'failed');
  s = run(s, { type: 'tool_call_started', toolUseId: 't2', name: 'Bash' },
    { type: 'permission_decided', toolUseId: 't2', tool: 'Bash', decision: 'deny', source: 'user' },
    { type: 'tool_result', toolUseId: 't2', name: 'Bash', content: 'The user denied this', isError: true });
  assert.equal(outcomeOf(card(s, 't2'), s.sessions.s1), 'denied');
});

test('an Edit card follows its proposal: waiting for review, then rejected (not a green check)', () => {
  let s = run(started(), { type: 'turn_started', prompt: 'x' }, { type: 'tool_call_started', toolUseId: 't1', name: 'Edit' },
    { type: 'proposal_created', proposalId: 'p1', toolUseId: 't1', autoApply: false, files: [] });
  assert.equal(card(s).proposalId, 'p1');
  assert.equal(outcomeOf(card(s), s.sessions.s1), 'review');
  assert.equal(sessionStatus(s.sessions.s1), 'review');
  s = run(s, { type: 'proposal_resolved', proposalId: 'p1', status: 'rejected', accepted: [], rejected: ['f1.h1'], conflicts: [] },
    { type: 'tool_result', toolUseId: 't1', name: 'Edit', content: 'Review of your edit (1 rejected)', isError: false });
  assert.equal(outcomeOf(card(s), s.sessions.s1), 'rejected');
});

test('locations in search and code-intel results', () => {
  assert.deepEqual(locations('calc.py:3\nshapes.py:1', 'Grep'), [{ path: 'calc.py', count: 3 }, { path: 'shapes.py', count: 1 }]);
  assert.deepEqual(locations('calc.py:12:def add(a, b):', 'Grep'), [{ path: 'calc.py', line: 12, text: 'def add(a, b):' }]);
  assert.deepEqual(locations('a.py\nsub/b.py\n(truncated: more)', 'Glob'), [{ path: 'a.py' }, { path: 'sub/b.py' }]);
  assert.equal(resultCount('Grep', 'calc.py:3\nshapes.py:1'), '4 matches in 2 files');
  assert.equal(resultCount('Read', '     1\tx\n     2\ty'), '2 lines');
});

test('errors lose what was written for the model', () => {
  const text = 'calc.py: old_string was not found.\nThe most similar lines in the file (80% similar):\n  3\tdef add\nRe-read the file and copy old_string exactly.';
  assert.equal(humanError(text), 'Calc.py: the text to replace was not found.');
  assert.ok(!humanError('x is a directory, not a file; use Glob to list its files.').includes('Glob'));
});

test('paths relative to the workspace; tokens and dollars as people read them', () => {
  assert.equal(relativePath('/ws/proj/calc.py', '/ws/proj'), 'calc.py');
  assert.equal(relativePath('/elsewhere/x.py', '/ws/proj'), '/elsewhere/x.py');
  assert.equal(tokens(950), '950');
  assert.equal(tokens(12345), '12k');
  assert.equal(usd(0.0123), '$0.01');
  assert.equal(usd(0.0042), '$0.0042');
});

test('a model change applies to the session; each answer says which model answered and what it cost', () => {
  let s = reduce(started(), { type: 'model', sessionId: 's1', model: 'opus' });
  assert.equal(s.sessions.s1.model, 'opus');
  s = run(s, { type: 'turn_started', prompt: 'x' }, { type: 'model_request', model: 'opus', round: 1 }, { type: 'text_delta', text: 'hi' },
    { type: 'cost', turn: { usd: 0.02, cacheSavingsUsd: 0, byModel: [] }, session: { usd: 0.05, cacheSavingsUsd: 0, byModel: [] } },
    { type: 'turn_ended', stopReason: 'end_turn', rounds: 1, usage: { inputTokens: 100, outputTokens: 20, cacheReadInputTokens: 50, cacheCreationInputTokens: 0 } });
  const last = s.sessions.s1.blocks.at(-1) as any;
  assert.deepEqual(last, { kind: 'turn', models: ['opus'], stopReason: 'end_turn', inputTokens: 150, outputTokens: 20, cacheReadTokens: 50, usd: 0.02 });
  assert.equal(s.sessions.s1.costUsd, 0.05);
});

test('an unreachable endpoint is said at once, with what to do', () => {
  let s = run(started(), { type: 'turn_started', prompt: 'x' }, { type: 'model_request', model: 'm', round: 1 },
    { type: 'retrying', attempt: 1, reason: 'connection to the model failed: Connection error.', delaySeconds: 1 });
  const notice = s.sessions.s1.blocks.at(-1) as any;
  assert.equal(notice.level, 'error');
  assert.equal(notice.endpoint, true);
  assert.deepEqual(notice.actions, ['settings']);
  assert.match(notice.text, /Cannot reach the model endpoint.*Retrying in 1s \(attempt 1\)/);
  s = run(s, { type: 'model_request', model: 'm', round: 1 },
    { type: 'retrying', attempt: 2, reason: 'connection to the model failed: Connection error.', delaySeconds: 2 });
  assert.equal(s.sessions.s1.blocks.filter((b) => b.kind === 'notice').length, 1, 'one retry notice, updated in place');
  assert.match((s.sessions.s1.blocks.at(-1) as any).text, /Connection error\. Retrying in 2s \(attempt 2\)/);
  s = run(s, { type: 'error', kind: 'transient', message: 'connection to the model failed: Connection error.' },
    { type: 'turn_ended', stopReason: 'error', rounds: 1, usage: { inputTokens: 0, outputTokens: 0, cacheReadInputTokens: 0, cacheCreationInputTokens: 0 } });
  const blocks = s.sessions.s1.blocks;
  assert.deepEqual((blocks.at(-1) as any).actions, ['retry', 'settings']);
  assert.equal(blocks.filter((b) => b.kind === 'notice').length, 1, 'the error replaces the retry notice; no extra "Stopped: error"');
});
