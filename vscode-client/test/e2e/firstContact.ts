// Issue 15, "First contact": what a new user meets. A model picked in an open session answers
// the next request; a setting change brings the server back with the configured interpreter; an
// interpreter without lsp-agent is said once and the notice closes when fixed; a failed test run
// is red, an Edit is a diff waiting for review and a rejected one is not a green check; each
// answer shows its model and cost; an unreachable endpoint is said at once with its URL and what
// to do; a turn that ends while the panel is hidden leaves a badge and a notification; axe-core
// finds no serious accessibility problem in light, dark and high-contrast themes, with
// screenshots of each.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FrameLocator, Page } from 'playwright-core';
import {
  chatFrame, loadScenario, modelRequests, notification, runCommand, screenshot, statusItem, STEP_TIMEOUT, until, type Env,
} from './workbench';
import { outputLog, serverPid, serverPidOrZero } from './scenarios';

const FIXTURES = resolve(__dirname, '../fixtures');
/** Screenshots of each state, per theme, kept with the tests (looked at before closing issue 15). */
export const SHOTS = resolve(__dirname, 'screenshots');
const THEMES = { light: 'Default Light Modern', dark: 'Default Dark Modern', 'high-contrast': 'Default High Contrast' } as const;
type Theme = keyof typeof THEMES;
const UNREACHABLE = 'http://127.0.0.1:9';

export async function firstContactScenario(env: Env, python: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await loadScenario(env.modelUrl, join(FIXTURES, 'e2e-first-contact.json'));
  await runCommand(env.page, 'lsp-agent: New Session');
  const chat = chatFrame(env.page);
  await emptyState(env, chat);
  await modelSwitch(env, chat);
  await failedRunAndDiff(env, chat);
  await settingsRestart(env, chat, python);
  await unreachableEndpoint(env, chat);
  await missingInterpreter(env, python);
  await hiddenTurnEnd(env, chat);
}

// -- a new session: an empty state with examples ------------------------------------------------

async function emptyState(env: Env, chat: FrameLocator): Promise<void> {
  const empty = chat.locator('.empty');
  await empty.waitFor({ timeout: STEP_TIMEOUT });
  assert.match(await empty.innerText(), /What should the agent do\?/);
  assert.equal(await chat.locator('.empty button.example').count(), 3, 'three example prompts');
  await until('no plan of another session', async () => (await chat.locator('#todos .plan').count()) === 0 || 'a plan is shown');
  assert.equal(await chat.locator('#stop').isVisible(), false, 'no Stop while nothing runs');
  assert.equal(await chat.locator('button[aria-label="New session"]').count(), 0, 'one "+" (the view\'s), not two');
  await shoot(env, 'empty-state');
  // Modes by readable names, each with what it allows.
  assert.equal((await chat.locator('#mode').innerText()).trim(), 'Ask first');
  await chat.locator('#mode').click();
  const modes = env.page.locator('.quick-input-list');
  await modes.locator('.monaco-list-row', { hasText: 'Plan only' }).waitFor({ timeout: STEP_TIMEOUT });
  const listed = await modes.innerText();
  assert.match(listed, /Plan only[\s\S]*Read and plan; no edits, no commands/);
  assert.ok(!/dontAsk|bypassPermissions/.test(listed), 'no raw mode ids');
  await env.page.keyboard.press('Escape');
}

// -- bug 1: the model picker changes the open session's model ------------------------------------

async function modelSwitch(env: Env, chat: FrameLocator): Promise<void> {
  const { page } = env;
  await send(chat, 'Say hello');
  await answer(chat, 'HELLO-OK');
  const picker = chat.locator('#model');
  assert.equal((await picker.innerText()).trim(), 'claude-sonnet-4-5', 'the whole model name, not cut');
  await picker.click();
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: 'claude-opus-4-1' }).first();
  await row.waitFor({ timeout: STEP_TIMEOUT });
  assert.match(await page.locator('.quick-input-list').innerText(), /Most capable/, 'models come with descriptions');
  await shoot(env, 'model-picker');
  await row.click();
  await until('the picker keeping the new model', async () => (await picker.innerText()).trim() === 'claude-opus-4-1' || await picker.innerText());
  await page.waitForTimeout(500);
  assert.equal((await picker.innerText()).trim(), 'claude-opus-4-1', 'the choice does not snap back');
  await send(chat, 'And now?');
  await answer(chat, 'MODEL-SWITCHED');
  const models = (await modelRequests(env.modelUrl)).map((r) => (r.body as unknown as { model: string }).model);
  assert.deepEqual(models, ['claude-sonnet-4-5', 'claude-opus-4-1'], 'the next request used the picked model');
  // Under each answer: the model that answered, its tokens and the cost.
  const summaries = chat.locator('.turn-summary');
  await until('two answer summaries', async () => (await summaries.count()) === 2 || `${await summaries.count()}`);
  assert.match(await summaries.nth(0).innerText(), /claude-sonnet-4-5 · \S+ in · \S+ out.*\$\d/);
  assert.match(await summaries.nth(1).innerText(), /claude-opus-4-1 · \S+ in · \S+ out.*\$\d/);
  // The session's total and the context meter in the header, with the breakdown on hover.
  const meter = chat.locator('#meter');
  await until('the context meter', async () => /\d+(\.\d)?%/.test(await meter.innerText()) || await meter.innerText());
  assert.match(await meter.innerText(), /\$\d/);
  assert.match(await meter.getAttribute('title') ?? '', /Context: .* tokens[\s\S]*tools[\s\S]*Session cost/);
  await shoot(env, 'model-switched-cost');
}

// -- a failed run in red, an Edit as a diff waiting for review, then rejected ---------------------

async function failedRunAndDiff(env: Env, chat: FrameLocator): Promise<void> {
  const { page } = env;
  await send(chat, 'Run the tests and fix stats.py');
  const bash = chat.locator('.tool', { hasText: 'Run the tests' });
  await bash.locator('.permission').waitFor({ timeout: STEP_TIMEOUT });
  assert.match(await bash.locator('summary .state').innerText(), /Needs your permission/, 'the badge is not cut');
  await statusSays(page, 'waiting for your permission');
  await bash.getByRole('button', { name: 'Allow once' }).click();
  await chat.locator('.tool.outcome-failed', { hasText: 'Run the tests' }).waitFor({ timeout: STEP_TIMEOUT });
  assert.match(await bash.locator('.term-meta.bad').innerText(), /exit code 1 · \d/, 'exit code and duration');
  assert.match(await bash.locator('pre.term.command').innerText(), /\$ python3 -c/);
  assert.match(await bash.locator('.term-output').innerText(), /test_mean FAILED/);
  assert.equal(await bash.locator('.state .codicon-check').count(), 0, 'a failed run has no green check');
  const mark = await bash.locator('.term-meta.bad').evaluate((el) => getComputedStyle(el).borderLeftColor);
  const error = await bash.locator('summary .state .codicon').evaluate((el) => getComputedStyle(el).color);
  assert.equal(mark, error, 'the failed run is marked in the theme\'s error colour');
  // The Edit: a diff of the proposal, waiting for review -- the card, the panel and the status bar agree.
  const edit = chat.locator('.tool.outcome-review', { hasText: 'stats.py' });
  await edit.waitFor({ timeout: STEP_TIMEOUT });
  assert.match(await edit.locator('.dl.del').first().innerText(), /return sum\(values\) \/ len\(values\) \+ 1/);
  assert.match(await edit.locator('.dl.add').first().innerText(), /return sum\(values\) \/ len\(values\)$/);
  assert.ok(await edit.locator('.dl.add .hljs-keyword, .dl.add .hljs-built_in').count() > 0, 'the diff is syntax-highlighted');
  assert.match(await edit.locator('summary .state').innerText(), /Waiting for your review/);
  assert.equal(await edit.locator('.codicon-loading').count(), 0, 'no spinner while it waits for the user');
  await until('the panel waiting for review', async () => /Waiting for your review/.test(await chat.locator('#status').innerText()) || await chat.locator('#status').innerText());
  await statusSays(page, 'waiting for your review');
  assert.equal(await page.locator('.statusbar-item', { hasText: 'lsp-agent' }).count(), 1, 'one status item');
  const text = await chat.locator('#log').innerText();
  for (const modelWords of ['old_string', 'new_string', 'f1.h1', 'the file now contains']) {
    assert.ok(!text.includes(modelWords), `no model-facing text in the panel: ${modelWords}`);
  }
  // The review opened stats.py once, with the hunk hover showing both sides.
  await page.locator('.codelens-decoration a', { hasText: 'Accept' }).first().waitFor({ timeout: STEP_TIMEOUT });
  assert.equal(await page.locator('.tab', { hasText: 'stats.py' }).count(), 1, 'no second copy of the file');
  for (const theme of Object.keys(THEMES) as Theme[]) {
    await setTheme(env, theme);
    await shoot(env, `review-and-failed-run-${theme}`);
    await accessibility(chat, theme);
  }
  await setTheme(env, 'dark');
  await edit.getByRole('button', { name: 'Reject' }).click();
  await answer(chat, 'FIX-DONE');
  const rejected = chat.locator('.tool.outcome-rejected', { hasText: 'stats.py' });
  await rejected.waitFor({ timeout: STEP_TIMEOUT });
  assert.match(await rejected.locator('summary .state').innerText(), /Rejected by you/);
  assert.equal(await rejected.locator('.state .codicon-check').count(), 0, 'a rejected edit has no green check');
  assert.equal(await chat.locator('#stop').isVisible(), false, 'Stop hidden once the turn ended');
  assert.equal(await rejected.evaluate((el) => (el as HTMLDetailsElement).open), false, 'a card opened for the review closes once decided');
  // The answer after the review is in view; scrolled up, the panel offers to jump back.
  const log = chat.locator('#log');
  const fromBottom = () => log.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight);
  await until('the final answer in view', async () => (await fromBottom()) < 40 || `${await fromBottom()} px below`);
  await log.evaluate((el) => { el.scrollTop = 0; });
  const jump = chat.locator('#jump');
  await jump.waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
  await jump.click();
  await until('back at the latest output', async () => (await fromBottom()) < 40 || `${await fromBottom()} px below`);
  await shoot(env, 'rejected-edit');
}

// -- bug 2: a setting change restarts the server with the configured interpreter ------------------

async function settingsRestart(env: Env, chat: FrameLocator, python: string): Promise<void> {
  const { page } = env;
  const before = serverPid(env.tmp);
  // Through the Settings UI, typed key by key as a user does (a burst of changes).
  await setSetting(page, 'lspAgent.baseUrl', 'Base Url', UNREACHABLE);
  await until('the server restarted', async () => {
    const pid = serverPidOrZero(env.tmp);
    return (pid !== 0 && pid !== before && !!(await baseUrlOf(pid))?.startsWith(UNREACHABLE)) || `pid ${pid}`;
  });
  const pid = serverPid(env.tmp);
  assert.equal(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0], python, 'the server runs with lspAgent.pythonPath');
  const log = outputLog(env.tmp);
  assert.ok(!/not importable by python3/.test(log), `never fell back to python3:\n${log.slice(-2000)}`);
  assert.match(log, new RegExp(`starting: ${escapeRe(python)} -m lsp_agent serve \\(interpreter from lspAgent.pythonPath`));
  assert.ok(!/\[Error.*exited with code 0/.test(log), 'a normal stop is not logged as an error');
  void chat;
}

// -- an unreachable endpoint: said at once, with the URL, Retry and Open settings ------------------

async function unreachableEndpoint(env: Env, chat: FrameLocator): Promise<void> {
  const { page } = env;
  await runCommand(page, 'lsp-agent: Open Chat');
  await runCommand(page, 'lsp-agent: New Session');
  await send(chat, 'Is the endpoint up?');
  const notice = chat.locator('.notice.error', { hasText: 'Cannot reach the model endpoint' }).last();
  await notice.waitFor({ timeout: STEP_TIMEOUT });
  assert.match(await notice.innerText(), new RegExp(escapeRe(UNREACHABLE)), 'the URL is named');
  assert.ok(await notice.getByRole('button', { name: 'Open settings' }).isVisible());
  // The turn ends in an error that says what to do; the Output channel has it too.
  await notice.getByRole('button', { name: 'Retry' }).waitFor({ timeout: STEP_TIMEOUT });
  assert.match(outputLog(env.tmp), new RegExp(`model request to ${escapeRe(UNREACHABLE)} failed`));
  await shoot(env, 'endpoint-unreachable');
  // Open settings goes to the setting; the endpoint comes back; Retry sends the prompt again.
  await notice.getByRole('button', { name: 'Open settings' }).click();
  await page.locator('.settings-editor .setting-item-contents', { hasText: 'Base Url' }).first().waitFor({ timeout: STEP_TIMEOUT });
  await page.keyboard.press('Control+W');
  const before = serverPid(env.tmp);
  await setSetting(page, 'lspAgent.baseUrl', 'Base Url', env.modelUrl);
  await until('the server back on the scripted endpoint', async () => {
    const pid = serverPidOrZero(env.tmp);
    return (pid !== 0 && pid !== before && await baseUrlOf(pid) === env.modelUrl) || `pid ${pid}`;
  });
  await until('the panel connected', async () => (await statusItem(page).innerText()).trim() === 'lsp-agent' || await statusItem(page).innerText());
  await runCommand(page, 'lsp-agent: Open Chat');
  // The old session went with the old server: ask again in a new one.
  await runCommand(page, 'lsp-agent: New Session');
  await send(chat, 'Is the endpoint up now?');
  await answer(chat, 'BACK-ONLINE');
}

// -- an interpreter without lsp-agent: said once, and the notice goes when it is fixed -------------

async function missingInterpreter(env: Env, python: string): Promise<void> {
  const { page } = env;
  const bare = join(env.tmp, 'bare-venv');
  if (!existsSync(bare)) assert.equal(spawnSync('python3', ['-m', 'venv', '--without-pip', bare], { timeout: 120_000 }).status, 0, 'a bare venv');
  const barePython = join(bare, 'bin', 'python');
  await setSetting(page, 'lspAgent.pythonPath', 'Python Path', barePython);
  const notice = notification(page, 'lsp-agent is not installed for');
  await notice.waitFor({ timeout: STEP_TIMEOUT });
  assert.match(await notice.innerText(), new RegExp(escapeRe(barePython)));
  assert.match(await notice.innerText(), /Install it there/, 'a one-click install');
  await statusSays(page, 'not installed');
  await runCommand(page, 'lsp-agent: Open Chat');
  await chatFrame(page).locator('.banner.error', { hasText: 'not installed' }).waitFor({ timeout: STEP_TIMEOUT });
  await shoot(env, 'interpreter-missing');
  await setSetting(page, 'lspAgent.pythonPath', 'Python Path', python);
  await until('the server back', async () => (await statusItem(page).innerText()).trim() === 'lsp-agent' || await statusItem(page).innerText());
  await until('the stale notice closed', async () => (await page.locator('.notification-toast', { hasText: 'is not installed for' }).count()) === 0 || 'still shown');
  await until('the banner gone', async () => (await chatFrame(page).locator('.banner.error').count()) === 0 || 'still shown');
}

// -- a turn that ends while the panel is hidden ------------------------------------------------------

async function hiddenTurnEnd(env: Env, chat: FrameLocator): Promise<void> {
  const { page } = env;
  await runCommand(page, 'lsp-agent: New Session');
  await send(chat, 'Take your time');
  await page.locator('.activitybar .action-item a[aria-label^="Explorer"]').click();
  await page.locator('.part.sidebar .composite.title', { hasText: 'Explorer' }).waitFor({ timeout: STEP_TIMEOUT });
  const done = notification(page, 'lsp-agent finished');
  await done.waitFor({ timeout: STEP_TIMEOUT });
  const badge = page.locator('.activitybar .action-item', { has: page.locator('a[aria-label^="lsp-agent"]') }).locator('.badge-content');
  await until('a badge on the activity-bar icon', async () => (await badge.innerText().catch(() => '')).trim() === '1' || 'no badge');
  await shoot(env, 'hidden-turn-ended');
  await done.getByRole('button', { name: 'Open Chat' }).click();
  await answer(chat, 'HIDDEN-FINISHED');
  await until('the badge cleared', async () => (await badge.count()) === 0 || !(await badge.isVisible()) || 'still there');
}

// -- helpers ----------------------------------------------------------------------------------------

async function send(chat: FrameLocator, text: string): Promise<void> {
  const input = chat.locator('#input');
  await input.waitFor({ timeout: STEP_TIMEOUT });
  await input.fill(text);
  await input.press('Enter');
}

/** The answer with this marker is there and its turn is over (Send is back instead of Stop). */
async function answer(chat: FrameLocator, marker: string): Promise<void> {
  await chat.locator('.msg.assistant', { hasText: marker }).waitFor({ timeout: STEP_TIMEOUT });
  await chat.locator('#send').waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
}

async function statusSays(page: Page, words: string): Promise<void> {
  await until(`the status bar saying ${words}`, async () => {
    const text = await statusItem(page).innerText();
    return text.includes(words) || text;
  });
}

async function shoot(env: Env, name: string): Promise<void> {
  await screenshot(env.page, env.results, name);
  await env.page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

/** Change a user setting in the Settings UI, typing its value key by key, then close the editor. */
async function setSetting(page: Page, key: string, label: string, value: string): Promise<void> {
  await runCommand(page, 'Preferences: Open User Settings');
  await page.locator('.settings-editor').waitFor({ timeout: STEP_TIMEOUT });
  await page.waitForTimeout(500); // the search box takes the focus when the editor opens
  await page.keyboard.press('Control+A');
  await page.keyboard.type(key);
  const field = page.locator('.settings-editor .setting-item-contents', { hasText: label }).locator('input').first();
  await field.waitFor({ timeout: STEP_TIMEOUT });
  await field.fill('');
  await field.pressSequentially(value, { delay: 20 });
  await field.press('Tab');
  await page.waitForTimeout(500);
  await page.keyboard.press('Control+W');
  await until('the settings editor closed', async () => !(await page.locator('.settings-editor').isVisible()) || 'still open');
}

/** Switch the colour theme with its picker, as a user does. */
async function setTheme(env: Env, theme: Theme): Promise<void> {
  const { page } = env;
  await runCommand(page, 'Preferences: Color Theme');
  await page.locator('.quick-input-widget input').fill(THEMES[theme]);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: THEMES[theme] }).first().click();
  const want = theme === 'high-contrast' ? 'hc-black' : theme === 'dark' ? 'vs-dark' : 'light_modern';
  await until(`the ${theme} theme`, async () => {
    const cls = await page.locator('.monaco-workbench').getAttribute('class') ?? '';
    return cls.includes(want) || cls;
  });
  await page.waitForTimeout(800); // the webview gets the theme's variables a moment later
}

/** axe-core in the chat webview: no serious or critical violation. */
async function accessibility(chat: FrameLocator, theme: Theme): Promise<void> {
  const frame = await (await chat.locator('body').elementHandle())!.ownerFrame();
  assert.ok(frame, 'the chat frame');
  const source = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  await frame.evaluate(`${source}\n;0`);
  const violations = await frame.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(ctx: unknown, opts: unknown): Promise<{ violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[] }> } }).axe;
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  console.log(`e2e: axe (${theme}): ${violations.length} violations, ${serious.length} serious or critical${violations.length ? `: ${JSON.stringify(violations)}` : ''}`);
  assert.deepEqual(serious, [], `axe-core found serious accessibility problems in the ${theme} theme`);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

async function baseUrlOf(pid: number): Promise<string | undefined> {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find((e) => e.startsWith('ANTHROPIC_BASE_URL='))?.slice('ANTHROPIC_BASE_URL='.length);
  } catch {
    return undefined;
  }
}
