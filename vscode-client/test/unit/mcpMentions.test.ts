import assert from 'node:assert/strict';
import { test } from 'node:test';
import { insertMention, MAX_MCP_ROWS, mcpMentionItem, mergeMentionItems } from '../../src/shared/mcpMentions';
import type { MentionItem } from '../../src/shared/messages';
import type { McpResource } from '../../src/shared/protocol';

const res = (uri: string, name = uri, description: string | null = null, server = 'srv'): McpResource =>
  ({ server, uri, mention: `@${server}:${uri}`, name, description, mimeType: 'text/plain' });
const FILE: MentionItem = { label: 'src/app.ts', value: 'src/app.ts', kind: 'file' };
const SYMBOL: MentionItem = { label: 'greet', value: 'symbol:greet (src/app.ts:3)', kind: 'symbol', detail: 'src/app.ts:3' };

test('a resource row is labelled and valued with its mention, marked as MCP, with name and description', () => {
  assert.deepEqual(mcpMentionItem(res('test://notes/readme', 'notes', 'The release notes')),
    { label: '@srv:test://notes/readme', value: '@srv:test://notes/readme', kind: 'mcp', detail: 'MCP · notes — The release notes' });
  assert.equal(mcpMentionItem(res('test://greeting')).detail, 'MCP resource', 'a name that only repeats the URI is left out');
});

test('resources follow the files and symbols, without duplicates, bounded', () => {
  const merged = mergeMentionItems([FILE, SYMBOL], [res('test://a'), res('test://a'), res('test://b', 'b', null, 'docs')]);
  assert.deepEqual(merged.map((i) => i.value), ['src/app.ts', 'symbol:greet (src/app.ts:3)', '@srv:test://a', '@docs:test://b']);
  assert.deepEqual(mergeMentionItems([FILE], []), [FILE], 'no server resources: the list is unchanged');
  const many = Array.from({ length: 30 }, (_, i) => res(`test://r${i}`));
  assert.equal(mergeMentionItems([FILE], many).length, 1 + MAX_MCP_ROWS);
});

test('picking a resource replaces the typed @query with the mention and keeps the rest', () => {
  assert.deepEqual(insertMention('Translate @gree', 15, '@srv:test://greeting'),
    { text: 'Translate @srv:test://greeting ', cursor: 31 });
  const text = 'See @no please';
  assert.deepEqual(insertMention(text, 7, '@srv:test://notes/readme'),
    { text: 'See @srv:test://notes/readme please', cursor: 29 }, 'the half-typed word after the cursor is replaced too');
  assert.deepEqual(insertMention('@', 1, '@srv:test://a'), { text: '@srv:test://a ', cursor: 14 });
});
