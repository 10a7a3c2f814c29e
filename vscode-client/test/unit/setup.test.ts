import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hasCredential, pipInstallArgs } from '../../src/shared/setup';

test('a credential counts from any environment, only when not blank', () => {
  assert.equal(hasCredential({ PATH: '/bin' }, {}, undefined), false, 'nothing set: ask at first use');
  assert.equal(hasCredential({ ANTHROPIC_API_KEY: '  ' }), false, 'a blank key is no key');
  assert.equal(hasCredential({ PATH: '/bin' }, { ANTHROPIC_API_KEY: 'k' }), true, 'lspAgent.serverEnv counts');
  assert.equal(hasCredential({ ANTHROPIC_AUTH_TOKEN: 't' }), true, 'a bearer token counts too');
  assert.equal(hasCredential({ OPENAI_API_KEY: 'k' }), false, 'only the variables the server reads');
});

test('the one-click install runs pip on the configured source, never on an option', () => {
  assert.deepEqual(pipInstallArgs(undefined), { args: ['-m', 'pip', 'install', 'lsp-agent'] });
  assert.deepEqual(pipInstallArgs('  '), { args: ['-m', 'pip', 'install', 'lsp-agent'] }, 'empty: the package');
  assert.deepEqual(pipInstallArgs(' /tmp/w/lsp_agent-0.1.0-py3-none-any.whl '), { args: ['-m', 'pip', 'install', '/tmp/w/lsp_agent-0.1.0-py3-none-any.whl'] });
  const bad = pipInstallArgs('--index-url=http://evil.example/simple lsp-agent');
  assert.ok('error' in bad && /not a pip option/.test(bad.error), 'an option is refused with a reason');
});

test('the extension waits for workspace trust: a cloned folder\'s settings choose the interpreter and the endpoint', async () => {
  const { readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const manifest = JSON.parse(readFileSync(join(__dirname, '../../package.json'), 'utf8')) as {
    capabilities?: { untrustedWorkspaces?: { supported?: unknown; description?: string } };
  };
  assert.equal(manifest.capabilities?.untrustedWorkspaces?.supported, false);
  assert.match(manifest.capabilities?.untrustedWorkspaces?.description ?? '', /interpreter[\s\S]*endpoint/);
});
