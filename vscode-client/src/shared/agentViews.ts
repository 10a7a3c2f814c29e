// What the Tasks view and the MCP & Customizations view show for each row: words, icons and
// the actions a row offers. Pure (no vscode): unit tested; src/agentViews.ts draws the trees.

import { MCP_APPROVAL } from './chatState';
import type { BackgroundTask, Customizations, McpServerStatus, SlashCommand } from './protocol';

export interface Row {
  label: string;
  description: string;
  tooltip: string;
  /** A codicon name (``~spin`` allowed). */
  icon: string;
  /** The tree item's contextValue: which inline actions it gets (package.json menus). */
  context: string;
}

const TASK_ICON: Record<string, string> = {
  running: 'loading~spin', completed: 'pass', failed: 'error', stopped: 'debug-stop', expired: 'watch',
};
const TASK_WORDS: Record<string, string> = {
  running: 'running', completed: 'completed', failed: 'failed', stopped: 'stopped', expired: 'stopped: ran too long',
};

/** How long something took: "8 s", "3 min 4 s", "2 h 5 min". */
export function elapsed(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function bytes(n: number): string {
  return n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** A background task: what it runs, its state and for how long; ``now`` in seconds. */
export function taskRow(task: BackgroundTask, now: number): Row {
  const agent = task.kind === 'agent';
  const label = task.description || task.command.replace(/^agent [^:]*: /, '');
  const took = elapsed((task.endedAt ?? now) - task.startedAt);
  const state = TASK_WORDS[task.status] ?? task.status;
  const exit = task.status === 'failed' && task.exitCode != null ? ` (exit code ${task.exitCode})` : '';
  return {
    label,
    description: `${agent ? 'agent' : 'shell'} · ${state}${exit} · ${took}`,
    tooltip: [`${agent ? 'Background agent' : 'Background command'} ${task.taskId}: ${state}${exit}`,
      agent ? task.command : `$ ${task.command}`, `${took}, ${bytes(task.outputBytes)} of output`].join('\n'),
    icon: task.status === 'running' && agent ? 'sync~spin' : TASK_ICON[task.status] ?? 'circle-outline',
    context: task.status === 'running' ? 'task.running' : 'task.ended',
  };
}

const MCP_STATE: Record<string, { words: string; icon: string }> = {
  connected: { words: 'connected', icon: 'plug' },
  starting: { words: 'starting…', icon: 'loading~spin' },
  failed: { words: 'failed', icon: 'error' },
  needs_approval: { words: 'awaiting your approval', icon: 'shield' },
  disabled: { words: 'disabled in settings', icon: 'circle-slash' },
  stopped: { words: 'stopped', icon: 'debug-stop' },
};

/** An MCP server: its state (with the error when it failed) and its tool count. */
export function mcpRow(server: McpServerStatus): Row {
  // A refused server still awaits approval (Approve stays on its row): the user may change their mind.
  const refused = server.denied && server.state === 'needs_approval';
  const state = refused ? { words: 'refused for this session', icon: 'circle-slash' } : MCP_STATE[server.state] ?? { words: server.state, icon: 'question' };
  const tools = server.state === 'connected' ? ` · ${server.tools} tool${server.tools === 1 ? '' : 's'}` : '';
  const error = server.state === 'failed' && server.error ? `: ${server.error}` : '';
  return {
    label: server.name,
    description: `${state.words}${error}${tools}`,
    tooltip: [`${server.name} (${server.scope}, ${server.transport}): ${state.words}${error}`, server.target,
      `from ${server.source}`, ...(server.restarts ? [`restarted ${server.restarts} time${server.restarts === 1 ? '' : 's'}`] : [])].join('\n'),
    icon: state.icon,
    context: `mcp.${server.state}`,
  };
}

export interface CustomizationItem { name: string; description: string; source: string; path?: string | null; hint?: string | null }
export interface CustomizationGroup { kind: 'skills' | 'commands' | 'agents' | 'plugins'; label: string; icon: string; items: CustomizationItem[] }

/**
 * The "Customizations" section: skills, commands, agents and plugins. Built from
 * agent/customizations when the server has it, else from agent/commands alone (skills and
 * custom commands; built-ins are not customizations).
 */
export function customizationGroups(commands: SlashCommand[], found: Customizations | undefined): CustomizationGroup[] {
  const skills: CustomizationItem[] = found
    ? found.skills.map((s) => ({ name: s.name, description: s.description, source: s.source, path: s.path, hint: s.argumentHint }))
    : commands.filter((c) => c.source.startsWith('skill:')).map((c) => ({ name: c.name, description: c.description, source: c.source.slice(6), hint: c.argumentHint }));
  const custom: CustomizationItem[] = found
    ? found.commands.map((c) => ({ name: c.name, description: c.description, source: c.source, path: c.path, hint: c.argumentHint }))
    : commands.filter((c) => !['builtin'].includes(c.source) && !c.source.startsWith('skill:') && !c.source.startsWith('mcp:'))
      .map((c) => ({ name: c.name, description: c.description, source: c.source, hint: c.argumentHint }));
  const groups: CustomizationGroup[] = [
    { kind: 'skills', label: 'Skills', icon: 'book', items: skills },
    { kind: 'commands', label: 'Commands', icon: 'terminal', items: custom },
  ];
  if (found) {
    groups.push(
      { kind: 'agents', label: 'Agents', icon: 'hubot', items: found.agents.map((a) => ({ name: a.name, description: a.description, source: a.source === 'builtin' ? 'built-in' : 'file', path: a.path })) },
      { kind: 'plugins', label: 'Plugins', icon: 'extensions', items: found.plugins.map((p) => ({ name: p.version ? `${p.name} ${p.version}` : p.name, description: p.description ?? '', source: 'plugin', path: p.root })) },
    );
  }
  return groups;
}

/** The toolUseId of the permission request the server sends about an unapproved project server. */
export function approvalToolUseId(server: string): string {
  return `${MCP_APPROVAL}${server}`;
}
