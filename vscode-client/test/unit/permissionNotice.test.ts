import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ANSWER_COMMAND, answerOfLink, permissionLinks, permissionTitle } from '../../src/shared/permissionNotice';

test('the notification links answer this request, each with its own word', () => {
  const links = [...permissionLinks('perm-7').matchAll(/\[([^\]]+)\]\(command:([\w.]+)(?:\?([^)]*))?\)/g)]
    .map(([, label, command, args]) => ({ label, command, args: args ? JSON.parse(decodeURIComponent(args)) : [] }));
  assert.deepEqual(links, [
    { label: 'Allow once', command: ANSWER_COMMAND, args: ['perm-7', 'allow'] },
    { label: 'Allow for this session', command: ANSWER_COMMAND, args: ['perm-7', 'allow-session'] },
    { label: 'Deny', command: ANSWER_COMMAND, args: ['perm-7', 'deny'] },
    { label: 'Open chat', command: 'lspAgent.openChat', args: [] },
  ]);
});

test('only the exact words of the links allow; anything else denies', () => {
  assert.deepEqual(answerOfLink('allow'), { decision: 'allow', remember: false });
  assert.deepEqual(answerOfLink('allow-session'), { decision: 'allow', remember: true });
  for (const other of ['deny', 'Allow', 'allow ', undefined, 1, { decision: 'allow' }]) {
    assert.deepEqual(answerOfLink(other), { decision: 'deny' }, String(other));
  }
});

test('a reason cannot bring a link of its own into the notification', () => {
  assert.equal(permissionTitle('Bash', 'runs [x](command:evil)'), 'lsp-agent wants to run Bash: runs x(command:evil)');
});
