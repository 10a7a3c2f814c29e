// MCP resources in the chat input's `@` completion. The server lists them (agent/mcpResources)
// as `@server:uri` mentions its prompt hook reads; these rows sit beside the files and symbols,
// and picking one writes the mention into the prompt text itself (not a chip): the server reads
// the resource when the prompt arrives.

import type { MentionItem } from './messages';
import type { McpResource } from './protocol';

/** At most this many MCP rows in one list, so files and symbols stay in view. */
export const MAX_MCP_ROWS = 10;

/** A resource as a completion row: labelled with its mention, marked as MCP. */
export function mcpMentionItem(r: McpResource): MentionItem {
  const about = [r.name && r.name !== r.uri ? r.name : '', r.description ?? ''].filter(Boolean).join(' — ');
  return { label: r.mention, value: r.mention, kind: 'mcp', detail: about ? `MCP · ${about}` : 'MCP resource' };
}

/** Files and symbols first (the editor's own), then the MCP resources not already offered. */
export function mergeMentionItems(local: MentionItem[], resources: McpResource[]): MentionItem[] {
  const seen = new Set(local.map((i) => i.value));
  const mcp = resources.map(mcpMentionItem).filter((i) => !seen.has(i.value) && !!seen.add(i.value));
  return [...local, ...mcp.slice(0, MAX_MCP_ROWS)];
}

/**
 * The input with the `@query` before the cursor replaced by the mention and a space, and the
 * cursor after it; the text after the cursor is kept.
 */
export function insertMention(text: string, cursor: number, mention: string): { text: string; cursor: number } {
  const before = text.slice(0, cursor).replace(/@[^\s@]*$/, '');
  const after = text.slice(cursor).replace(/^\S*/, '');
  const inserted = `${before}${mention} `;
  return { text: `${inserted}${after.replace(/^ /, '')}`, cursor: inserted.length };
}
