// End to end in a real VS Code: code-server (VS Code 1.100's workbench and extension host) in
// headless Chromium, the packaged .vsix installed offline, the real lsp-agent server, and the
// scripted model server. Screenshots of each step go to test-results/.
//
//   npm run build && npm run package && npm run test:e2e
//
// Environment: LSP_AGENT_PYTHON (interpreter with lsp_agent installed), CHROMIUM (browser path).

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { apiKeyScenario, firstContactScenario, THEME_CYCLE_KEYBINDINGS, THEME_CYCLE_SETTINGS, wheelPath } from './firstContact';
import { hiddenPermissionScenario, restartScenario, selectionScenario, typingScenario } from './scenarios';
import { agentsScenario } from './agents';
import { autonomyScenario } from './autonomy';
import { watcherScenario } from './watcher';
import { sessionsScenario } from './sessions';
import { chatFrame, loadScenario, runCommand, screenshot as shootIn, openFile, waitForCount, STEP_TIMEOUT, type Env } from './workbench';

const ROOT = resolve(__dirname, '../..');
const CODE_SERVER = join(ROOT, 'test/e2e/host/node_modules/.bin/code-server');
const VSIX = join(ROOT, 'dist-vsix/lsp-agent.vsix');
const RESULTS = join(ROOT, 'test-results');
const PYTHON = process.env.LSP_AGENT_PYTHON ?? (existsSync('/work/venv/bin/python') ? '/work/venv/bin/python' : 'python3');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

const children: ChildProcess[] = [];

async function main(): Promise<void> {
  for (const need of [CODE_SERVER, VSIX, CHROMIUM]) assert.ok(existsSync(need), `missing ${need} (run scripts/ci.sh)`);
  rmSync(RESULTS, { recursive: true, force: true });
  mkdirSync(RESULTS, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'lsp-agent-e2e-'));
  const workspace = join(tmp, 'workspace');
  cpSync(join(ROOT, 'test/fixtures/workspace'), workspace, { recursive: true });
  const chatScript = join(ROOT, 'test/fixtures/e2e-scenario.json');
  const modelUrl = await startModel(chatScript);
  const url = await startCodeServer(tmp, workspace, modelUrl);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS(tmp) });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${url}/?folder=${encodeURIComponent(workspace)}`);
    await page.locator('.monaco-workbench').waitFor({ timeout: STEP_TIMEOUT });
    // E2E_ONLY=first-contact,selection runs only those scenarios (quicker while working on one).
    const only = process.env.E2E_ONLY?.split(',');
    const wanted = (key: string) => !only || only.includes(key);
    try {
      const env: Env = { page, workspace, tmp, modelUrl, results: RESULTS };
      // Always first: the run starts without an API key, and the first prompt asks for one.
      await step('API key asked at first use', () => apiKeyScenario(env, wanted('api-key')));
      await loadScenario(modelUrl, chatScript);
      if (wanted('chat')) await step('chat, permission prompt and inline review', () => chatScenario(page, workspace));
      if (wanted('fix')) await step('fix with agent from the lightbulb', () => fixScenario(page, workspace));
      if (wanted('typing')) await step('typing in a file under review: merge, then conflict', () => typingScenario(env));
      if (wanted('selection')) await step('explain with agent and ask agent to change this', () => selectionScenario(env));
      if (wanted('hidden')) await step('permission prompt while the panel is hidden', () => hiddenPermissionScenario(env));
      if (wanted('restart')) await step('server crash and restart with backoff', () => restartScenario(env));
      if (wanted('first-contact')) await step('first contact (issue 15)', () => firstContactScenario(env, PYTHON));
      if (wanted('sessions')) await step('sessions that last: reload, Sessions view, restore checkpoint (issue 10)', () => sessionsScenario(env));
      if (wanted('agents')) await step('slash commands, subagents, auto mode, Tasks and MCP views (issues 11-13)', () => agentsScenario(env, PYTHON));
      if (wanted('autonomy')) await step('the watcher in the status bar, the Inbox and Memory views (issue 13)', () => autonomyScenario(env));
      if (wanted('watcher')) await step('the watcher prepares a fix: Inbox statuses, Review, Dismiss, the companion (issue 13)', () => watcherScenario(env));
    } catch (err) {
      await screenshot(page, 'failure').catch(() => undefined);
      throw err;
    }
  } finally {
    await browser.close();
  }
  console.log(`e2e: all scenarios passed; screenshots in ${RESULTS}`);
}

async function step(name: string, fn: () => Promise<void>): Promise<void> {
  console.log(`e2e: ${name}`);
  await fn();
  console.log(`e2e: ${name}: ok`);
}

// -- scenarios ------------------------------------------------------------------------------

async function chatScenario(page: Page, workspace: string): Promise<void> {
  await runCommand(page, 'lsp-agent: Open Chat');
  const chat = chatFrame(page);
  const input = chat.locator('#input');
  await input.waitFor({ timeout: STEP_TIMEOUT });
  await input.fill('Please fix add and mul in calc.py');
  await input.press('Enter');
  // Mid-stream: part of the answer is there, the turn is still running.
  await chat.locator('.msg.assistant').waitFor({ timeout: STEP_TIMEOUT });
  await chat.locator('.msg.assistant', { hasText: 'Both functions' }).waitFor({ timeout: STEP_TIMEOUT });
  await screenshot(page, 'chat-mid-stream');
  // The permission prompt for the shell command, inline in the Bash card.
  const prompt = chat.locator('.tool .permission');
  await prompt.waitFor({ timeout: STEP_TIMEOUT });
  assert.match(await prompt.innerText(), /env-ok/);
  await screenshot(page, 'permission-prompt');
  await prompt.getByRole('button', { name: 'Allow once' }).click();
  await chat.locator('.tool.outcome-done', { hasText: 'Check the Python environment' }).waitFor({ timeout: STEP_TIMEOUT });
  // The proposal opens beside the chat with a CodeLens per hunk.
  const lenses = page.locator('.codelens-decoration a', { hasText: 'Accept' });
  await lenses.nth(1).waitFor({ timeout: STEP_TIMEOUT });
  await page.locator('.view-lines', { hasText: 'def mul' }).first().waitFor();
  await screenshot(page, 'inline-review');
  // calc.py opened beside the chat without taking the focus from it (reviewFocus: keep).
  assert.equal(await page.evaluate(() => !!document.activeElement?.closest('.monaco-editor')), false, 'the proposal did not move the focus to an editor');
  assert.equal(await page.evaluate(() => document.activeElement?.tagName), 'IFRAME', 'the focus stayed in the chat panel');
  assert.equal(await lenses.count(), 2, 'one Accept lens per hunk');
  await lenses.first().click(); // accept the add() hunk
  await waitForCount(page.locator('.codelens-decoration a', { hasText: 'Reject' }), 1);
  await page.locator('.codelens-decoration a', { hasText: 'Reject' }).first().click(); // reject mul()
  await chat.locator('.msg.assistant', { hasText: 'you kept the old' }).waitFor({ timeout: STEP_TIMEOUT });
  await screenshot(page, 'review-done');
  const text = readFileSync(join(workspace, 'calc.py'), 'utf8');
  assert.match(text, /def add\(a, b\):\n {4}return a \+ b/, 'the accepted hunk is on disk');
  assert.match(text, /def mul\(a, b\):\n {4}return a \+ b/, 'the rejected hunk is not');
}

async function fixScenario(page: Page, workspace: string): Promise<void> {
  await openFile(page, 'data.json');
  // A real diagnostic from VS Code's JSON language features.
  const squiggle = page.locator('.squiggly-error').first();
  await squiggle.waitFor({ timeout: STEP_TIMEOUT });
  await page.locator('.view-line', { hasText: '"size": 1,' }).click();
  await page.keyboard.press('End');
  await page.keyboard.press('Control+.');
  const fix = page.locator('.action-widget .monaco-list-row', { hasText: 'Fix with agent' }).first();
  await fix.waitFor({ timeout: STEP_TIMEOUT });
  await screenshot(page, 'lightbulb-fix-with-agent');
  await page.keyboard.press('Enter'); // the only action is selected
  const accept = page.locator('.codelens-decoration a', { hasText: 'Accept' }).first();
  await accept.waitFor({ timeout: STEP_TIMEOUT });
  await screenshot(page, 'fix-proposal');
  await accept.click();
  await chatFrame(page).locator('.msg.assistant', { hasText: 'Fixed data.json' }).waitFor({ timeout: STEP_TIMEOUT });
  await screenshot(page, 'fix-done');
  assert.equal(readFileSync(join(workspace, 'data.json'), 'utf8'), '{\n  "name": "demo",\n  "size": 1\n}\n');
}

async function screenshot(page: Page, name: string): Promise<void> {
  await shootIn(page, RESULTS, name);
}

// -- processes ------------------------------------------------------------------------------

function CHROMIUM_ARGS(tmp: string): string[] {
  return ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];
}

function track(child: ChildProcess, name: string): ChildProcess {
  children.push(child);
  child.stderr?.on('data', (d) => process.env.E2E_VERBOSE && process.stderr.write(`[${name}] ${d}`));
  return child;
}

function startModel(scenario: string): Promise<string> {
  const child = track(spawn(PYTHON, ['-m', 'lsp_agent.scripted.server', '--scenario', scenario, '--port', '0'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] }), 'model');
  return new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error('the scripted model server did not start')), 30_000);
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /LISTENING (\S+)/.exec(out);
      if (m) { clearTimeout(timer); resolveUrl(m[1]); }
    });
    child.on('exit', (code) => reject(new Error(`the scripted model server exited (${code})`)));
  });
}

async function startCodeServer(tmp: string, workspace: string, modelUrl: string): Promise<string> {
  const dirs = { user: join(tmp, 'user'), ext: join(tmp, 'extensions'), xdg: join(tmp, 'xdg'), home: join(tmp, 'home') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  // Short retry back-off: the unreachable-endpoint case ends in seconds, not in 31 s.
  // No API key: the first prompt asks for it (apiKeyScenario). pip runs offline (the one-click install).
  // A HOME of its own: the user's settings (~/.claude/settings.json, which CI fills with hostile
  // rules while these tests run beside the Python suite) never reach the server.
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: dirs.home, XDG_CONFIG_HOME: dirs.xdg, XDG_DATA_HOME: dirs.xdg, LSP_AGENT_STATE_DIR: join(tmp, 'state'), LSP_AGENT_BACKOFF_BASE: '0.05', PIP_NO_INDEX: '1' };
  delete env.ANTHROPIC_API_KEY;
  delete env.ANTHROPIC_AUTH_TOKEN;
  const config = join(tmp, 'code-server.yaml');
  writeFileSync(config, 'auth: none\n');
  const common = ['--config', config, '--user-data-dir', dirs.user, '--extensions-dir', dirs.ext];
  const install = spawnSync(CODE_SERVER, [...common, '--install-extension', VSIX], { env, encoding: 'utf8', timeout: 120_000 });
  assert.equal(install.status, 0, `installing the vsix failed: ${install.stderr}${install.stdout}`);
  mkdirSync(join(dirs.user, 'User'), { recursive: true });
  writeFileSync(join(dirs.user, 'User/settings.json'), JSON.stringify({
    'workbench.startupEditor': 'none', 'extensions.autoUpdate': false, 'extensions.autoCheckUpdates': false,
    'update.mode': 'none', 'telemetry.telemetryLevel': 'off', 'security.workspace.trust.enabled': false,
    'workbench.tips.enabled': false, 'chat.disableAIFeatures': true,
    // The themes the screenshots cycle through with one key (firstContact.ts: setTheme).
    ...THEME_CYCLE_SETTINGS,
    'lspAgent.pythonPath': PYTHON, 'lspAgent.baseUrl': modelUrl, 'lspAgent.reviewFocus': 'keep',
    'lspAgent.installSource': wheelPath(tmp),
  }, null, 2));
  writeFileSync(join(dirs.user, 'User/keybindings.json'), JSON.stringify(THEME_CYCLE_KEYBINDINGS, null, 2));
  const port = await freePort();
  track(spawn(CODE_SERVER, [...common, '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none', '--disable-telemetry',
    '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override', '--ignore-last-opened', workspace],
  { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }), 'code-server');
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 120; i++) {
    if (await fetch(`${url}/healthz`).then((r) => r.ok, () => false)) return url;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error('code-server did not start');
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolvePort(port));
    });
    server.on('error', reject);
  });
}

function stopAll(): void {
  for (const child of children) {
    if (child.pid && child.exitCode === null) {
      try { process.kill(-child.pid, 'SIGTERM'); } catch { /* already gone */ }
    }
  }
}

const overall = setTimeout(() => { console.error('e2e: overall timeout'); stopAll(); process.exit(1); }, 18 * 60_000);
main().then(() => { clearTimeout(overall); stopAll(); }, (err) => {
  console.error('e2e FAILED:', err);
  clearTimeout(overall);
  stopAll();
  process.exit(1);
});
