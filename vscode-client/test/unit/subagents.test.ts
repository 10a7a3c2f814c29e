// Subagents nested under their Agent card, and auto mode's decisions on the card they decided.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emptyState, hasToolCard, reduce, restoreState, subagentOf, type ChatState, type ToolCard } from '../../src/shared/chatState';
import type { AgentEvent } from '../../src/shared/protocol';
import { agentOutcome, outcomeOf } from '../../src/shared/toolView';

let seq = 0;
const ev = (e: Record<string, unknown>): AgentEvent => ({ sessionId: 's1', seq: ++seq, ts: 0, ...e } as AgentEvent);
const run = (state: ChatState, ...events: Record<string, unknown>[]) => events.reduce((s, e) => reduce(s, { type: 'event', event: ev(e) }), state);
const started = () => reduce(emptyState(), { type: 'session', sessionId: 's1', mode: 'default', model: 'm' });
const usage = (i: number, o: number) => ({ inputTokens: i, outputTokens: o, cacheReadInputTokens: 0, cacheCreationInputTokens: 0 });
const child = (agentId: string, parent: string) => ({ agentId, parentToolUseId: parent });

/** Two Agent calls of one response, each with its child running a Read. */
function twoChildren(): ChatState {
  seq = 0;
  return run(started(),
    { type: 'turn_started', prompt: 'check the plan' }, { type: 'model_request', model: 'm', round: 1 },
    { type: 'text_delta', text: 'Delegating.' },
    { type: 'tool_call_started', toolUseId: 'A1', name: 'Agent' },
    { type: 'tool_input_complete', toolUseId: 'A1', name: 'Agent', input: { description: 'first reader', prompt: 'Read it', subagent_type: 'reader' } },
    { type: 'tool_call_started', toolUseId: 'A2', name: 'Agent' },
    { type: 'tool_input_complete', toolUseId: 'A2', name: 'Agent', input: { description: 'second reader', prompt: 'Read it', subagent_type: 'reader' } },
    { type: 'tool_execution_started', toolUseId: 'A1', name: 'Agent' },
    { type: 'tool_execution_started', toolUseId: 'A2', name: 'Agent' },
    { type: 'subagent_started', ...child('c1', 'A1'), agentType: 'reader', description: 'first reader', model: 'small' },
    { type: 'subagent_started', ...child('c2', 'A2'), agentType: 'reader', description: 'second reader', name: 'scout', model: 'small' },
    { type: 'model_request', model: 'small', round: 1, ...child('c1', 'A1') },
    { type: 'text_delta', text: 'Reading plan.txt', ...child('c1', 'A1') },
    { type: 'tool_call_started', toolUseId: 'r1', name: 'Read', ...child('c1', 'A1') },
    { type: 'tool_call_started', toolUseId: 'r2', name: 'Read', ...child('c2', 'A2') },
    { type: 'tool_input_complete', toolUseId: 'r1', name: 'Read', input: { path: 'plan.txt' }, ...child('c1', 'A1') },
    { type: 'usage', model: 'small', usage: usage(100, 20), ...child('c1', 'A1') },
  );
}

test("a child's text and tool cards go into its Agent card, not the main transcript", () => {
  const s = twoChildren().sessions.s1;
  const main = s.blocks.map((b) => (b.kind === 'tool' ? `tool:${b.name}` : b.kind === 'text' ? `${b.role}:${b.text}` : b.kind));
  assert.deepEqual(main, ['user:check the plan', 'assistant:Delegating.', 'tool:Agent', 'tool:Agent']);
  const first = subagentOf(s, 'A1')!;
  assert.equal(first.description, 'first reader');
  assert.equal(first.model, 'small');
  assert.deepEqual(first.blocks.map((b) => b.kind), ['text', 'tool']);
  assert.deepEqual((first.blocks[1] as ToolCard).input, { path: 'plan.txt' }, 'tool events patch the nested card');
  assert.equal((first.blocks[1] as ToolCard).agentId, 'c1');
  assert.deepEqual(first.usage, { input: 100, output: 20 });
  assert.equal(subagentOf(s, 'A2')!.name, 'scout');
  assert.equal(subagentOf(s, 'A2')!.blocks.length, 1);
  assert.deepEqual(s.usage, { input: 100, output: 20 }, "the child's tokens count in the session's too");
  assert.equal(s.turnModels.includes('small'), false, "a child's model_request does not touch the main request");
});

test("a child's permission, then its end, drive the Agent card's state", () => {
  let s = run(twoChildren(), { type: 'tool_execution_started', toolUseId: 'r1', name: 'Read', ...child('c1', 'A1') });
  s = reduce(s, { type: 'permissionRequested', request: { requestId: 'p1', sessionId: 's1', toolUseId: 'r1', tool: 'Read', input: {}, reason: '[subagent reader: first reader] reads plan.txt' } });
  const agentCard = () => s.sessions.s1.blocks[2] as ToolCard;
  assert.equal(agentOutcome(agentCard(), s.sessions.s1), 'permission', 'a question inside shows on the (maybe collapsed) Agent card');
  assert.equal((subagentOf(s.sessions.s1, 'A1')!.blocks[1] as ToolCard).status, 'waiting');
  assert.ok(hasToolCard(s.sessions.s1, 'r1'), "the question is asked in the child's card, not apart");
  assert.ok(!hasToolCard(s.sessions.s1, 'mcp-approval-demo'));
  s = reduce(s, { type: 'permissionAnswered', requestId: 'p1', decision: 'allow' });
  assert.equal(agentOutcome(agentCard(), s.sessions.s1), 'running');
  s = run(s,
    { type: 'tool_result', toolUseId: 'r1', name: 'Read', content: '1\tship', isError: false, startedAt: 1, finishedAt: 2, ...child('c1', 'A1') },
    { type: 'subagent_ended', ...child('c1', 'A1'), agentType: 'reader', stopReason: 'end_turn', usage: usage(300, 40), rounds: 2, usd: 0.0123 });
  const c1 = subagentOf(s.sessions.s1, 'A1')!;
  assert.equal(c1.status, 'done');
  assert.deepEqual(c1.usage, { input: 300, output: 40 }, 'the final usage replaces the running count');
  assert.equal(c1.usd, 0.0123);
  assert.equal(agentOutcome(agentCard(), s.sessions.s1), 'done', 'done once the child ended, even before the tool result');
  s = run(s, { type: 'subagent_ended', ...child('c2', 'A2'), agentType: 'reader', stopReason: 'max_turns', usage: usage(1, 1), rounds: 5, usd: 0 });
  assert.equal(agentOutcome(s.sessions.s1.blocks[3] as ToolCard, s.sessions.s1), 'failed');
});

test("a child's edit is a proposal labelled with the child, linked to its nested card", () => {
  let s = run(twoChildren(),
    { type: 'tool_call_started', toolUseId: 'e1', name: 'Edit', ...child('c2', 'A2') },
    { type: 'proposal_created', proposalId: 'P1', toolUseId: 'e1', files: [], autoApply: false, ...child('c2', 'A2') });
  const proposal = s.sessions.s1.blocks.find((b) => b.kind === 'proposal');
  assert.equal(proposal && proposal.kind === 'proposal' && proposal.agent, 'scout');
  const edit = subagentOf(s.sessions.s1, 'A2')!.blocks.find((b) => b.kind === 'tool' && b.name === 'Edit') as ToolCard;
  assert.equal(edit.proposalId, 'P1');
  assert.equal(agentOutcome(s.sessions.s1.blocks[3] as ToolCard, s.sessions.s1), 'review');
  s = run(s, { type: 'turn_ended', stopReason: 'end_turn', usage: usage(0, 0), rounds: 1, ...child('c2', 'A2') });
  assert.equal(s.sessions.s1.busy, true, "a child's turn_ended does not end the main turn");
});

test("auto mode's decision lands on the card it decided, also inside a child", () => {
  let s = run(twoChildren(),
    { type: 'auto_decision', toolUseId: 'r2', tool: 'Read', decision: 'allow', reason: 'reading the workspace is harmless', cached: false, ...child('c2', 'A2') });
  assert.deepEqual((subagentOf(s.sessions.s1, 'A2')!.blocks[0] as ToolCard).auto,
    { decision: 'allow', reason: 'reading the workspace is harmless', cached: false });
  s = run(s,
    { type: 'tool_call_started', toolUseId: 'b1', name: 'Bash' },
    { type: 'tool_input_complete', toolUseId: 'b1', name: 'Bash', input: { command: 'rm -rf build' } },
    { type: 'auto_decision', toolUseId: 'b1', tool: 'Bash', decision: 'deny', reason: 'deletes files the user did not ask about', cached: true },
    { type: 'permission_decided', toolUseId: 'b1', tool: 'Bash', decision: 'deny', source: 'auto', message: 'deletes files' });
  const bash = s.sessions.s1.blocks.find((b) => b.kind === 'tool' && b.toolUseId === 'b1') as ToolCard;
  assert.equal(bash.auto?.decision, 'deny');
  assert.equal(bash.auto?.cached, true);
  assert.equal(outcomeOf(bash, s.sessions.s1), 'denied');
  s = run(s, { type: 'auto_decision', toolUseId: 'b2', tool: 'Bash', decision: 'ask', reason: '', cached: false, error: 'classifier timed out' });
  assert.equal(s.sessions.s1.blocks.filter((b) => b.kind === 'tool').length, 3, 'a decision on an unknown call adds nothing');
});

test('a transcript saved before subagents existed restores with none', () => {
  const saved = JSON.parse(JSON.stringify(started()));
  delete saved.sessions.s1.subagents;
  assert.deepEqual(restoreState(saved).sessions.s1.subagents, {});
  const kept = restoreState(JSON.parse(JSON.stringify(twoChildren())));
  assert.equal(subagentOf(kept.sessions.s1, 'A1')?.description, 'first reader');
  assert.equal(subagentOf(kept.sessions.s1, 'A1')?.status, 'cancelled', 'its server is gone: not shown as running forever');
});

test("the question about a project's MCP server outlives the turn it came with", () => {
  seq = 0;
  let s = run(started(), { type: 'turn_started', prompt: 'x' });
  s = reduce(s, { type: 'permissionRequested', request: { requestId: 'p1', sessionId: 's1', toolUseId: 'mcp-approval-demo', tool: 'mcp__demo', input: {}, reason: 'start demo?' } });
  s = reduce(s, { type: 'permissionRequested', request: { requestId: 'p2', sessionId: 's1', toolUseId: 't9', tool: 'Bash', input: {}, reason: 'run' } });
  s = run(s, { type: 'turn_ended', stopReason: 'end_turn', usage: usage(0, 0), rounds: 1 });
  assert.deepEqual(s.sessions.s1.permissions.map((p) => p.requestId), ['p1']);
});
