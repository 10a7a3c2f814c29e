import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SlashCommand } from '../../src/shared/protocol';
import { chosenCommand, matchCommands, slashQuery, sourceLabel } from '../../src/shared/slashCommands';

const cmd = (name: string, description = '', source = 'builtin', argumentHint: string | null = null): SlashCommand => ({ name, description, source, argumentHint });
const LIST = [
  cmd('help', 'List the commands'), cmd('compact', 'Summarise the conversation', 'builtin', '[instructions]'),
  cmd('release', 'Cut a release', 'skill:project', '<version>'), cmd('fix', 'Fix an issue', 'project', '<number>'),
  cmd('tools:lint', 'Lint the code', 'plugin:tools'),
];

test('completion is offered while a command is being named at the start of the input', () => {
  assert.equal(slashQuery('/'), '');
  assert.equal(slashQuery('/rel'), 'rel');
  assert.equal(slashQuery('/tools:li'), 'tools:li');
  assert.equal(slashQuery('/release v2'), undefined, 'not once its arguments are typed');
  assert.equal(slashQuery('see /rel'), undefined, 'not in the middle of a sentence');
  assert.equal(slashQuery('/usr/bin/python crashes'), undefined, 'a path is no command');
});

test('names starting with the query come first, then names and descriptions holding it', () => {
  assert.deepEqual(matchCommands(LIST, '').map((c) => c.name), ['help', 'compact', 'release', 'fix', 'tools:lint'], 'all, in the server\'s order');
  assert.deepEqual(matchCommands(LIST, 'li').map((c) => c.name), ['tools:lint'], 'a name holding it; two letters do not search descriptions');
  assert.deepEqual(matchCommands(LIST, 'lint').map((c) => c.name), ['tools:lint'], 'once only, though its description holds it too');
  assert.deepEqual(matchCommands(LIST, 'the').map((c) => c.name), ['help', 'compact', 'tools:lint'], 'descriptions from three letters on');
  assert.deepEqual(matchCommands(LIST, 'F').map((c) => c.name), ['fix'], 'case does not matter');
  assert.deepEqual(matchCommands(LIST, 'zzz'), []);
  const many = Array.from({ length: 80 }, (_, i) => cmd(`c${i}`));
  assert.equal(matchCommands(many, 'c').length, 50, 'the list is bounded');
});

test('the argument hint appears once a known command is followed by a space', () => {
  assert.equal(chosenCommand('/release ', LIST)?.argumentHint, '<version>');
  assert.equal(chosenCommand('/release v2', LIST)?.name, 'release');
  assert.equal(chosenCommand('/release', LIST), undefined, 'still being named');
  assert.equal(chosenCommand('/nope x', LIST), undefined);
  assert.equal(chosenCommand('hello /fix 1', LIST), undefined);
});

test('sources read as words', () => {
  assert.equal(sourceLabel('builtin'), 'built-in');
  assert.equal(sourceLabel('skill:project'), 'skill (project)');
  assert.equal(sourceLabel('plugin:tools'), 'plugin tools');
  assert.equal(sourceLabel('mcp:github'), 'MCP github');
  assert.equal(sourceLabel('skill:plugin:tools'), 'skill (plugin tools)');
});
