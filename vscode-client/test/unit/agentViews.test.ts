import assert from 'node:assert/strict';
import { test } from 'node:test';
import { approvalToolUseId, customizationGroups, elapsed, mcpRow, taskRow } from '../../src/shared/agentViews';
import type { BackgroundTask, Customizations, McpServerStatus } from '../../src/shared/protocol';

const task = (t: Partial<BackgroundTask>): BackgroundTask => ({
  taskId: 'bg-1', kind: 'shell', command: 'npm run dev', status: 'running', startedAt: 100, outputBytes: 2048, ...t,
});
const server = (s: Partial<McpServerStatus>): McpServerStatus => ({
  name: 'github', scope: 'project', source: '/ws/.mcp.json', transport: 'stdio', target: 'npx server-github', state: 'connected',
  tools: 3, toolNames: ['a', 'b', 'c'], restarts: 0, ...s,
});

test('a running shell task says so, for how long, and offers Stop', () => {
  const row = taskRow(task({ description: 'dev server' }), 172);
  assert.equal(row.label, 'dev server');
  assert.equal(row.description, 'shell · running · 1 min 12 s');
  assert.equal(row.context, 'task.running');
  assert.match(row.tooltip, /\$ npm run dev[\s\S]*2\.0 KB of output/);
  assert.equal(row.icon, 'loading~spin');
});

test('an ended task shows its end, exit code and duration, without Stop', () => {
  const failed = taskRow(task({ status: 'failed', exitCode: 2, endedAt: 103 }), 999);
  assert.equal(failed.description, 'shell · failed (exit code 2) · 3 s', 'the duration stops at the end');
  assert.equal(failed.context, 'task.ended');
  assert.equal(failed.icon, 'error');
  const agent = taskRow(task({ kind: 'agent', command: 'agent reader: scan the docs', status: 'completed', exitCode: 0, endedAt: 160 }), 999);
  assert.equal(agent.label, 'scan the docs', 'an agent task is named by its description');
  assert.equal(agent.description, 'agent · completed · 1 min 0 s');
  assert.equal(taskRow(task({ status: 'expired', endedAt: 4000 }), 0).description, 'shell · stopped: ran too long · 1 h 5 min');
});

test('elapsed times read as people say them', () => {
  assert.equal(elapsed(0), '0 s');
  assert.equal(elapsed(59.6), '1 min 0 s');
  assert.equal(elapsed(-5), '0 s');
});

test('an MCP server row says its state, its error and its tools', () => {
  assert.equal(mcpRow(server({})).description, 'connected · 3 tools');
  assert.equal(mcpRow(server({})).context, 'mcp.connected');
  const failed = mcpRow(server({ state: 'failed', error: 'connection closed', tools: 0, toolNames: [], restarts: 2 }));
  assert.equal(failed.description, 'failed: connection closed');
  assert.equal(failed.icon, 'error');
  assert.match(failed.tooltip, /restarted 2 times/);
  const waiting = mcpRow(server({ state: 'needs_approval', tools: 0, toolNames: [] }));
  assert.equal(waiting.description, 'awaiting your approval');
  assert.equal(waiting.context, 'mcp.needs_approval', 'the row that gets Approve');
  assert.match(waiting.tooltip, /npx server-github/, 'names what would run');
  const refused = mcpRow(server({ state: 'needs_approval', denied: true, tools: 0, toolNames: [] }));
  assert.equal(refused.description, 'refused for this session');
  assert.equal(refused.context, 'mcp.needs_approval', 'still approvable');
  assert.equal(mcpRow(server({ state: 'weird' })).description, 'weird', 'an unknown state is shown as sent');
  assert.equal(approvalToolUseId('github'), 'mcp-approval-github');
});

test('customizations come from agent/customizations, else from agent/commands alone', () => {
  const commands = [
    { name: 'help', description: 'Help', source: 'builtin' },
    { name: 'release', description: 'Cut a release', source: 'skill:project', argumentHint: '<version>' },
    { name: 'fix', description: 'Fix an issue', source: 'project', argumentHint: '<n>' },
    { name: 'mcp__gh__pr', description: 'A prompt', source: 'mcp:gh' },
  ];
  const fromCommands = customizationGroups(commands, undefined);
  assert.deepEqual(fromCommands.map((g) => [g.kind, g.items.map((i) => i.name)]), [['skills', ['release']], ['commands', ['fix']]]);
  assert.equal(fromCommands[0].items[0].source, 'project');
  const found: Customizations = {
    skills: [{ name: 'release', description: 'Cut a release', source: 'project', path: '/ws/.claude/skills/release/SKILL.md' }],
    commands: [{ name: 'fix', description: 'Fix an issue', source: 'project', path: '/ws/.claude/commands/fix.md', argumentHint: '<n>' }],
    agents: [{ name: 'Explore', description: 'Finds things', source: 'builtin', path: null }, { name: 'reader', description: 'Reads', source: 'file', path: '/ws/r.md' }],
    plugins: [{ name: 'tools', version: '1.0.0', description: 'Lint', root: '/p/tools' }],
    warnings: [],
  };
  const groups = customizationGroups(commands, found);
  assert.deepEqual(groups.map((g) => `${g.label} ${g.items.length}`), ['Skills 1', 'Commands 1', 'Agents 2', 'Plugins 1']);
  assert.equal(groups[0].items[0].path, '/ws/.claude/skills/release/SKILL.md');
  assert.deepEqual(groups[2].items.map((a) => a.source), ['built-in', 'file']);
  assert.equal(groups[3].items[0].name, 'tools 1.0.0');
});
