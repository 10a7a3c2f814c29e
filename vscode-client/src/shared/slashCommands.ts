// Completion of slash commands in the chat input: when to offer it, which commands match what
// was typed, and the argument hint to show once one is chosen. Pure: unit tested.

import type { SlashCommand } from './protocol';

const MAX_SHOWN = 50;

/** The name typed so far when the input is a command being named ("/rel"), else undefined. */
export function slashQuery(beforeCursor: string): string | undefined {
  const m = /^\/([\w:.-]*)$/.exec(beforeCursor);
  return m ? m[1] : undefined;
}

/**
 * The commands to offer for ``query``: names starting with it first, then names holding it,
 * then descriptions holding it (from three letters on); each group in the server's order (built-ins, skills, custom).
 */
export function matchCommands(commands: SlashCommand[], query: string): SlashCommand[] {
  const q = query.toLowerCase();
  const name = (c: SlashCommand) => c.name.toLowerCase();
  const starts = commands.filter((c) => name(c).startsWith(q));
  const holds = commands.filter((c) => !name(c).startsWith(q) && name(c).includes(q));
  // Descriptions only from three letters on: one or two match almost every sentence.
  const described = q.length >= 3 ? commands.filter((c) => !name(c).includes(q) && c.description.toLowerCase().includes(q)) : [];
  return [...starts, ...holds, ...described].slice(0, MAX_SHOWN);
}

/** What is typed after the command: its name is complete and followed by a space. */
export function chosenCommand(text: string, commands: SlashCommand[]): SlashCommand | undefined {
  const m = /^\/([\w:.-]+)(?:\s|$)/.exec(text);
  if (!m || !/\s/.test(text)) return undefined;
  return commands.find((c) => c.name === m[1]);
}

/** Where a command comes from, in words for its row. */
export function sourceLabel(source: string): string {
  const [kind, rest] = source.split(/:(.*)/s);
  const words: Record<string, string> = { builtin: 'built-in', user: 'user', project: 'project', plugin: 'plugin', mcp: 'MCP', skill: 'skill' };
  if (kind === 'skill') return `skill${rest ? ` (${sourceLabel(rest)})` : ''}`;
  return rest ? `${words[kind] ?? kind} ${rest}` : words[kind] ?? kind;
}
