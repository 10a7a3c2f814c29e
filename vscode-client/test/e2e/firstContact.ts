// Issue 15, "First contact": what a new user meets. A model picked in an open session answers
// the next request; a setting change brings the server back with the configured interpreter; an
// interpreter without lsp-agent is said once and the notice closes when fixed; a failed test run
// is red, an Edit is a diff waiting for review and a rejected one is not a green check; each
// answer shows its model and cost; an unreachable endpoint is said at once with its URL and what
// to do; an interpreter without lsp-agent gets it with one click (a wheel of this repository,
// built here, installed offline); a turn that ends while the panel is hidden leaves a badge and a
// notification; without a key the panel asks for one at first use and the server restarts with
// it. Each state is shot in light, dark and high-contrast themes, and axe-core finds no serious
// accessibility problem in the panel in any of them.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
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
/** The key typed at first use: it must reach the restarted server's environment. */
const TYPED_KEY = 'sk-e2e-typed-at-first-use';
const REPO = resolve(__dirname, '../../..');

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
  await missingInterpreterInstalled(env, python);
  await hiddenTurnEnd(env, chat);
}

// -- no API key: the panel asks at first use, the server restarts with it ----------------------------

/**
 * Runs first, before anything set a key: the run starts the server without one. With shots, each
 * theme of the question is shot; without (another scenario is wanted), the key is only entered.
 */
export async function apiKeyScenario(env: Env, shots: boolean): Promise<void> {
  const { page } = env;
  let before = 0;
  await until('the first server', async () => (before = serverPidOrZero(env.tmp)) !== 0 || 'not started');
  assert.equal(credentialOf(before), undefined, 'the server starts without a key');
  await loadScenario(env.modelUrl, join(FIXTURES, 'e2e-api-key.json'));
  await runCommand(page, 'lsp-agent: Open Chat');
  const chat = chatFrame(page);
  await send(chat, 'My first question: who holds the key?');
  const ask = page.locator('.quick-input-widget', { hasText: 'No API key is set' });
  await ask.waitFor({ timeout: STEP_TIMEOUT });
  assert.match(await ask.innerText(), new RegExp(`${escapeRe(env.modelUrl)}[\\s\\S]*Escape if the endpoint needs none`), 'names the endpoint and the way out');
  assert.equal(await page.locator('.quick-input-widget input').getAttribute('type'), 'password', 'the key is not shown');
  if (shots) {
    await shootThemes(env, 'api-key-prompt', chat);
    await setTheme(env, 'light'); // the scenarios after this one run in the theme they were written in
  }
  await page.locator('.quick-input-widget input').fill(TYPED_KEY);
  await page.keyboard.press('Enter');
  // Kept in the secret storage, which the restarted server gets it from: nothing else holds it.
  await until('the server restarted with the key', async () => {
    const pid = serverPidOrZero(env.tmp);
    return (pid !== 0 && pid !== before && credentialOf(pid) === TYPED_KEY) || `pid ${pid}`;
  });
  await answer(chat, 'KEY-OK');
  assert.equal((await modelRequests(env.modelUrl)).length, 1, 'the prompt went to the model once, after the key was set');
  assert.match(outputLog(env.tmp), /no API key is set for .*asking for one[\s\S]*API key updated; restarting the server/);
  assert.ok(!outputLog(env.tmp).includes(TYPED_KEY), 'the key is not logged');
  if (shots) await screenshot(env.page, env.results, 'api-key-answered');
  await runCommand(page, 'lsp-agent: New Session');
}

/** The model credential in a process's environment (undefined when it has none). */
function credentialOf(pid: number): string | undefined {
  return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find((e) => e.startsWith('ANTHROPIC_API_KEY='))?.slice('ANTHROPIC_API_KEY='.length);
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
  await shootThemes(env, 'empty-state', chat);
  // Modes by readable names, each with what it allows.
  assert.equal((await chat.locator('#mode').innerText()).trim(), 'Ask first');
  await chat.locator('#mode').click();
  const modes = env.page.locator('.quick-input-list');
  await modes.locator('.monaco-list-row', { hasText: 'Plan only' }).waitFor({ timeout: STEP_TIMEOUT });
  const listed = await modes.innerText();
  assert.match(listed, /Plan only[\s\S]*Read and plan; no edits, no commands/);
  assert.ok(!/dontAsk|bypassPermissions/.test(listed), 'no raw mode ids');
  await shootThemes(env, 'mode-picker');
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
  await shootThemes(env, 'model-picker');
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
  await shootThemes(env, 'model-switched-cost', chat);
}

// -- a failed run in red, an Edit as a diff waiting for review, then rejected ---------------------

async function failedRunAndDiff(env: Env, chat: FrameLocator): Promise<void> {
  const { page } = env;
  await send(chat, 'Run the tests and fix stats.py');
  const bash = chat.locator('.tool', { hasText: 'Run the tests' });
  await bash.locator('.permission').waitFor({ timeout: STEP_TIMEOUT });
  assert.match(await bash.locator('summary .state').innerText(), /Needs your permission/, 'the badge is not cut');
  await statusSays(page, 'waiting for your permission');
  await shootThemes(env, 'permission-prompt', chat);
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
  await shootThemes(env, 'review-and-failed-run', chat);
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
  await shootThemes(env, 'rejected-edit', chat);
}

// -- bug 2: a setting change restarts the server with the configured interpreter ------------------

async function settingsRestart(env: Env, chat: FrameLocator, python: string): Promise<void> {
  const { page } = env;
  const before = serverPid(env.tmp);
  // Through the Settings UI, typed key by key as a user does (a burst of changes).
  await setSetting(env, 'lspAgent.baseUrl', 'Base Url', UNREACHABLE);
  await until('the server restarted', async () => {
    const pid = serverPidOrZero(env.tmp);
    return (pid !== 0 && pid !== before && !!(await baseUrlOf(pid))?.startsWith(UNREACHABLE)) || `pid ${pid}`;
  });
  await serverSettled(env);
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
  await shootThemes(env, 'endpoint-unreachable', chat);
  // Open settings goes to the setting; the endpoint comes back; Retry sends the prompt again.
  await notice.getByRole('button', { name: 'Open settings' }).click();
  await page.locator('.settings-editor .setting-item-contents', { hasText: 'Base Url' }).first().waitFor({ timeout: STEP_TIMEOUT });
  await page.keyboard.press('Control+W');
  const before = serverPid(env.tmp);
  await setSetting(env, 'lspAgent.baseUrl', 'Base Url', env.modelUrl);
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

// -- an interpreter without lsp-agent: said once, installed with one click, the notice goes ----------

async function missingInterpreterInstalled(env: Env, python: string): Promise<void> {
  const { page } = env;
  const fresh = freshVenv(env, python);
  buildWheel(python, wheelPath(env.tmp));
  await setSetting(env, 'lspAgent.pythonPath', 'Python Path', fresh);
  const notice = notification(page, 'lsp-agent is not installed for');
  await notice.waitFor({ timeout: STEP_TIMEOUT });
  assert.match(await notice.innerText(), new RegExp(escapeRe(fresh)));
  assert.match(await notice.innerText(), /Install it there/, 'a one-click install');
  await statusSays(page, 'not installed');
  await runCommand(page, 'lsp-agent: Open Chat');
  const chat = chatFrame(page);
  const banner = chat.locator('.banner.error', { hasText: 'not installed' });
  await banner.waitFor({ timeout: STEP_TIMEOUT });
  await shootThemes(env, 'interpreter-missing', chat);
  // One click: pip installs the wheel (lspAgent.installSource) into that interpreter, offline.
  await banner.getByRole('button', { name: 'Install' }).click();
  await until('the server running with the fresh interpreter', async () => {
    const pid = serverPidOrZero(env.tmp);
    const exe = pid ? readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] : '';
    return exe === fresh || `pid ${pid} ${exe}; log: ${outputLog(env.tmp).slice(-400)}`;
  }, 180_000);
  assert.match(outputLog(env.tmp), new RegExp(`installing: ${escapeRe(fresh)} -m pip install ${escapeRe(wheelPath(env.tmp))}[\\s\\S]*pip exited with code 0`));
  assert.equal(spawnSync(fresh, ['-c', 'import lsp_agent, sys; sys.exit(0 if lsp_agent.__file__.startswith(sys.prefix) else 1)']).status, 0,
    'lsp-agent is now installed in that interpreter\'s environment');
  await until('the server back', async () => (await statusItem(page).innerText()).trim() === 'lsp-agent' || await statusItem(page).innerText());
  await until('the stale notice closed', async () => (await page.locator('.notification-toast', { hasText: 'is not installed for' }).count()) === 0 || 'still shown');
  await until('the banner gone', async () => (await chat.locator('.banner.error').count()) === 0 || 'still shown');
}

/** Where the wheel of this repository is built (lspAgent.installSource of the run points here). */
export function wheelPath(tmp: string): string {
  const version = /^version = "([^"]+)"/m.exec(readFileSync(join(REPO, 'pyproject.toml'), 'utf8'))?.[1] ?? '0';
  return join(tmp, 'wheelhouse', `lsp_agent-${version}-py3-none-any.whl`);
}

/**
 * A new venv of the same Python, with pip but without lsp-agent. Its dependencies come from the
 * test's interpreter through a .pth (links to every package there but lsp-agent itself), so the
 * install needs no network: pip sees them installed and only installs the wheel.
 */
function freshVenv(env: Env, python: string): string {
  const venv = join(env.tmp, 'fresh-venv');
  const bin = join(venv, 'bin', 'python');
  if (!existsSync(bin)) assert.equal(spawnSync(python, ['-m', 'venv', venv], { timeout: 180_000 }).status, 0, 'a fresh venv with pip');
  const purelib = (exe: string) => spawnSync(exe, ['-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], { encoding: 'utf8' }).stdout.trim();
  const from = purelib(python);
  const deps = join(env.tmp, 'deps');
  mkdirSync(deps, { recursive: true });
  const own = /^(lsp_agent|pip|setuptools|pkg_resources|_distutils_hack)\b|^__editable__|\.pth$/;
  for (const name of readdirSync(from)) {
    if (own.test(name) || existsSync(join(deps, name))) continue;
    symlinkSync(join(from, name), join(deps, name));
  }
  writeFileSync(join(purelib(bin), 'e2e-deps.pth'), `${deps}\n`);
  assert.notEqual(spawnSync(bin, ['-c', 'import lsp_agent']).status, 0, 'the fresh venv has no lsp-agent yet');
  return bin;
}

/** A wheel of this repository, built without network or a build backend: the package and its metadata. */
function buildWheel(python: string, wheel: string): void {
  mkdirSync(dirname(wheel), { recursive: true });
  const script = `
import base64, hashlib, pathlib, sys, tomllib, zipfile
repo, wheel = pathlib.Path(sys.argv[1]), sys.argv[2]
project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
name, version = "lsp_agent", project["version"]
info = f"{name}-{version}.dist-info"
meta = [f"Metadata-Version: 2.1", f"Name: {project['name']}", f"Version: {version}", f"Requires-Python: {project['requires-python']}"]
meta += [f"Requires-Dist: {d}" for d in project["dependencies"]]
files = {str(p.relative_to(repo)): p.read_bytes() for p in sorted((repo / name).rglob("*"))
         if p.is_file() and "__pycache__" not in p.parts}
files[f"{info}/METADATA"] = ("\\n".join(meta) + "\\n").encode()
files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\\nGenerator: lsp-agent-e2e\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
files[f"{info}/entry_points.txt"] = b"[console_scripts]\\nlsp-agent = lsp_agent.cli:main\\n"
def digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
record = [f"{path},{digest(data)},{len(data)}" for path, data in files.items()] + [f"{info}/RECORD,,"]
files[f"{info}/RECORD"] = ("\\n".join(record) + "\\n").encode()
with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
    for path, data in files.items():
        zf.writestr(path, data)
`;
  const built = spawnSync(python, ['-c', script, REPO, wheel], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(built.status, 0, `building the wheel: ${built.stderr}`);
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
  await shootThemes(env, 'hidden-turn-ended');
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

/** The server is up and stays the same process (the restarts of a burst of setting changes are over). */
async function serverSettled(env: Env): Promise<void> {
  let last = 0;
  await until('the server settled', async () => {
    const pid = serverPidOrZero(env.tmp);
    const idle = (await statusItem(env.page).innerText()).trim() === 'lsp-agent';
    const same = pid !== 0 && pid === last;
    last = pid;
    if (same && idle) return true;
    await env.page.waitForTimeout(1000);
    return `pid ${pid}, idle ${idle}`;
  });
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

/** The theme the workbench shows now (VS Code in a browser starts in its light theme). */
let currentTheme: Theme = 'light';

/**
 * One key cycles light -> dark -> high contrast -> light: "Toggle between Light/Dark Themes"
 * goes from a light theme to the preferred dark one, from a dark one to the preferred light one
 * (here the high-contrast theme) and from high contrast to the preferred high-contrast light one
 * (here the light theme). A key, not a picker: opening the palette would close what the state
 * shows (a quick pick, the API key's input box). Set before the start: the workbench does not
 * pick up settings files changed while it runs here.
 */
const CYCLE_KEY = 'ctrl+alt+shift+f12';
export const THEME_CYCLE_SETTINGS = {
  'workbench.preferredDarkColorTheme': THEMES.dark,
  'workbench.preferredLightColorTheme': THEMES['high-contrast'],
  'workbench.preferredHighContrastLightColorTheme': THEMES.light,
  'window.autoDetectHighContrast': false,
  'window.autoDetectColorScheme': false,
};
export const THEME_CYCLE_KEYBINDINGS = [{ key: CYCLE_KEY, command: 'workbench.action.toggleLightDarkThemes' }];
const CYCLE: Theme[] = ['light', 'dark', 'high-contrast'];

/**
 * Shoot a state in each theme, starting with the current one (two switches per state), and check
 * the panel with axe-core in each when it is on screen. The theme is switched in the settings
 * file: a picker would close what the state shows (a quick pick, an input box, a notification).
 */
async function shootThemes(env: Env, name: string, chat?: FrameLocator): Promise<void> {
  await until(`the ${currentTheme} theme`, async () => (await shown(env.page, currentTheme)) || await classes(env.page));
  const order = [currentTheme, ...(Object.keys(THEMES) as Theme[]).filter((t) => t !== currentTheme)];
  for (const theme of order) {
    if (theme !== currentTheme) await setTheme(env, theme);
    await env.page.mouse.move(1200, 50); // no hover tooltip from the last click in the picture
    await shoot(env, `${name}-${theme}`);
    if (chat) await accessibility(chat, theme, name);
  }
}

/** Change a user setting in the Settings UI, typing its value key by key, then close the editor. */
/** Set a setting through the Settings editor, as a user does; again if it did not reach the file. */
async function setSetting(env: Env, key: string, label: string, value: string): Promise<void> {
  const { page } = env;
  const file = join(env.tmp, 'user/User/settings.json');
  const written = () => { try { return (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>)[key] === value; } catch { return false; } };
  for (let attempt = 1; ; attempt++) {
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
    // The editor writes the file a moment later (debounced); under load that moment grows.
    const deadline = Date.now() + 10_000;
    while (!written() && Date.now() < deadline) await page.waitForTimeout(200);
    await page.keyboard.press('Control+W');
    await until('the settings editor closed', async () => !(await page.locator('.settings-editor').isVisible()) || 'still open');
    if (written()) return;
    if (attempt === 3) assert.fail(`${key} never reached ${file}: ${readFileSync(file, 'utf8')}`);
  }
}

const classes = async (page: Page) => await page.locator('.monaco-workbench').getAttribute('class') ?? '';
const shown = async (page: Page, t: Theme) => (await classes(page)).includes(t === 'high-contrast' ? 'hc-black' : t === 'dark' ? 'vs-dark' : 'light_modern');

/** Switch the colour theme with the cycling key (see CYCLE_KEY). */
async function setTheme(env: Env, theme: Theme): Promise<void> {
  const { page } = env;
  while (currentTheme !== theme) {
    const next = CYCLE[(CYCLE.indexOf(currentTheme) + 1) % CYCLE.length];
    await page.keyboard.press('Control+Alt+Shift+F12'); // CYCLE_KEY
    await until(`the ${next} theme`, async () => (await shown(page, next)) || await classes(page));
    currentTheme = next;
  }
  await page.waitForTimeout(800); // the webview gets the theme's variables a moment later
}

/** axe-core in the chat webview: no serious or critical violation. */
async function accessibility(chat: FrameLocator, theme: Theme, state: string): Promise<void> {
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
  console.log(`e2e: axe (${state}, ${theme}): ${violations.length} violations, ${serious.length} serious or critical${violations.length ? `: ${JSON.stringify(violations)}` : ''}`);
  assert.deepEqual(serious, [], `axe-core found serious accessibility problems in ${state}, ${theme} theme`);
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
