import assert from 'node:assert/strict';
import { test } from 'node:test';
import { preparedFixOf, watchEventOf } from '../../src/shared/autonomyProtocol';
import { OncePerServer, throttle } from '../../src/shared/warmUp';

test('watch events: known kinds pass with their fields, anything else is ignored', () => {
  assert.deepEqual(watchEventOf({ kind: 'testsPassed', workspaceUri: 'file:///ws', detail: 'pytest -q', at: 17.5, extra: 1 }),
    { kind: 'testsPassed', workspaceUri: 'file:///ws', detail: 'pytest -q', at: 17.5 });
  assert.deepEqual(watchEventOf({ kind: 'budgetReached', detail: 42 }), { kind: 'budgetReached' }, 'a field of the wrong type is dropped');
  for (const bad of [null, 'testsPassed', { kind: 'testsExploded' }, {}]) assert.equal(watchEventOf(bad), undefined, JSON.stringify(bad));
});

test('"Fix with agent" opens the review at once only when the fix was prepared', () => {
  assert.deepEqual(preparedFixOf({ sessionId: 's1', prepared: true, proposalIds: ['p-1', 7, 'p-2'] }), { sessionId: 's1', proposalIds: ['p-1', 'p-2'] });
  assert.equal(preparedFixOf({ sessionId: 's1' }), undefined, 'a new turn: follow the session as before');
  assert.equal(preparedFixOf({ sessionId: 's1', prepared: 'yes' }), undefined);
  assert.equal(preparedFixOf({ prepared: true }), undefined, 'no session to show');
  assert.deepEqual(preparedFixOf({ sessionId: 's1', prepared: true }), { sessionId: 's1', proposalIds: [] });
  assert.equal(preparedFixOf(undefined), undefined);
});

test('warm-up goes once to each server process; typing is reported at most every 30 s', () => {
  const once = new OncePerServer<object>();
  const first = {};
  const restarted = {};
  assert.equal(once.take(undefined), false, 'no server running');
  assert.equal(once.take(first), true);
  assert.equal(once.take(first), false, 'the chat shown again, more keystrokes: nothing more');
  assert.equal(once.take(restarted), true, 'a restarted server warms up again');
  const typing = throttle(30_000);
  assert.equal(typing(0), true);
  assert.equal(typing(29_999), false);
  assert.equal(typing(30_000), true);
});
