// Issue 10, "Sessions that last", in the real VS Code: a turn edits a file; the window reloads
// and the session comes back with its messages and goes on with its conversation; the Sessions
// view lists it; "Restore checkpoint" (code and conversation) on the first message previews the
// file, puts it back on disk and re-renders the chat. Screenshots of the Sessions view and of
// the restore dialog in light, dark and high-contrast themes go to test/e2e/screenshots/.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FrameLocator, Page } from 'playwright-core';
import { outputLog } from './scenarios';
import {
  chatAccessibility, chatFrame, clickRowAction, loadScenario, modelRequests, runCommand, screenshot, setTheme, STEP_TIMEOUT, THEMES, until, type Env, type Theme,
} from './workbench';

const FIXTURES = resolve(__dirname, '../fixtures');
const SHOTS = resolve(__dirname, 'screenshots');
const PROMPT = 'Please make greet.py friendlier';
const RENAMED = 'Friendlier greeting';
const ORIGINAL = 'def greet(name):\n    return "Hello " + name\n';

export async function sessionsScenario(env: Env): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  const file = join(env.workspace, 'greet.py');
  assert.equal(readFileSync(file, 'utf8'), ORIGINAL);
  await loadScenario(env.modelUrl, join(FIXTURES, 'e2e-sessions.json'));
  await runCommand(env.page, 'lsp-agent: New Session');
  await editTurn(env, file);
  await reloadAndGoOn(env);
  await sessionsListed(env);
  await renameFilterForkDelete(env);
  await restoreCheckpoint(env, file);
}

/** The turn: the agent edits greet.py, the user accepts in the chat. */
async function editTurn(env: Env, file: string): Promise<void> {
  const chat = chatFrame(env.page);
  const input = chat.locator('#input');
  await input.waitFor({ timeout: STEP_TIMEOUT });
  await input.fill(PROMPT);
  await input.press('Enter');
  const accept = chat.locator('.tool button[data-action="accept-all"]').first();
  const done = chat.locator('.msg.assistant', { hasText: 'SESSIONS-EDIT-DONE' });
  await until('the proposal or the answer', async () => (await accept.isVisible() || await done.isVisible()) || 'neither yet');
  if (await accept.isVisible()) await accept.click(); // not auto-applied: review it
  await done.waitFor({ timeout: STEP_TIMEOUT });
  await until('the edit on disk', async () => readFileSync(file, 'utf8').includes('f"Hello, {name}!"') || readFileSync(file, 'utf8'));
}

/** Developer: Reload Window: the session is back, from the server's transcript, and goes on. */
async function reloadAndGoOn(env: Env): Promise<void> {
  const { page } = env;
  const resumedBefore = (outputLog(env.tmp).match(/\] resumed/g) ?? []).length;
  await runCommand(page, 'Developer: Reload Window');
  await page.locator('.monaco-workbench').waitFor({ timeout: STEP_TIMEOUT });
  await until('the session resumed by the new extension host', async () => {
    const count = (outputLog(env.tmp).match(/\] resumed/g) ?? []).length;
    return count > resumedBefore || `resumed ${count} times`;
  });
  await runCommand(page, 'lsp-agent: Open Chat');
  const chat = chatFrame(page);
  await chat.locator('.msg.user', { hasText: PROMPT }).waitFor({ timeout: STEP_TIMEOUT });
  await chat.locator('.msg.assistant', { hasText: 'SESSIONS-EDIT-DONE' }).waitFor({ timeout: STEP_TIMEOUT });
  await chat.locator('.tool', { hasText: 'greet.py' }).first().waitFor({ timeout: STEP_TIMEOUT });
  await screenshot(page, env.results, 'session-after-reload');
  // Up in the empty input recalls the prompt (agent/promptHistory); Down clears it again.
  const input = chat.locator('#input');
  await input.click();
  await input.press('ArrowUp');
  await until('the last prompt recalled', async () => (await input.inputValue()) === PROMPT || await input.inputValue());
  await input.press('ArrowDown');
  assert.equal(await input.inputValue(), '');
  // The conversation goes on: the model gets the turn from before the reload.
  await input.fill('Do you still remember what we did?');
  await input.press('Enter');
  await chat.locator('.msg.assistant', { hasText: 'REMEMBERED' }).waitFor({ timeout: STEP_TIMEOUT });
  const requests = await modelRequests(env.modelUrl);
  const sent = JSON.stringify(requests[requests.length - 1].body.messages);
  assert.ok(sent.includes(PROMPT) && sent.includes('SESSIONS-EDIT-DONE'), `the resumed conversation reached the model: ${sent.slice(0, 400)}`);
}

async function sessionsListed(env: Env): Promise<void> {
  const { page } = env;
  await runCommand(page, 'lsp-agent: Open Sessions');
  const row = sessionRow(page);
  await row.waitFor({ timeout: STEP_TIMEOUT });
  await until('the row saying its turns', async () => {
    const text = await row.innerText();
    return /2 turns/.test(text) || text;
  });
}

function sessionsPane(page: Page) {
  return page.locator('.pane', { has: page.locator('.pane-header', { hasText: 'Sessions' }) });
}

function sessionRow(page: Page, title = PROMPT) {
  return sessionsPane(page).locator('.monaco-list-row', { hasText: title }).first();
}

/** An inline action of a row (shown on hover), as a user clicks it. */
async function rowAction(_page: Page, row: ReturnType<typeof sessionRow>, action: string): Promise<void> {
  await clickRowAction(row, action);
}

async function quickInput(page: Page, text: string): Promise<void> {
  const box = page.locator('.quick-input-widget input');
  await box.waitFor({ timeout: STEP_TIMEOUT });
  await box.fill(text);
  await box.press('Enter');
}

/** Rename (inline action and input box), filter by title, fork (opens in the chat), delete the fork. */
async function renameFilterForkDelete(env: Env): Promise<void> {
  const { page } = env;
  const chat = chatFrame(page);
  const rows = sessionsPane(page).locator('.monaco-list-row');
  await rowAction(page, sessionRow(page), 'Rename Session');
  await quickInput(page, RENAMED);
  await sessionRow(page, RENAMED).waitFor({ timeout: STEP_TIMEOUT });
  await until('the chat\'s session list renamed', async () => (await chat.locator('#session option', { hasText: RENAMED }).count()) === 1 || 'not yet');
  // The filter keeps the titles holding its words.
  await sessionsPane(page).hover();
  await sessionsPane(page).locator('.action-label[aria-label="Filter Sessions by Title"]').click();
  await quickInput(page, 'zzz');
  await until('no row for a filter nothing matches', async () => (await rows.count()) === 0 || `${await rows.count()} rows`);
  await sessionsPane(page).locator('.pane-body', { hasText: 'has "zzz" in its title' }).waitFor({ timeout: STEP_TIMEOUT });
  await sessionsPane(page).locator('.action-label[aria-label="Filter Sessions by Title"]').click();
  await quickInput(page, 'FRIENDLIER greet');
  await sessionRow(page, RENAMED).waitFor({ timeout: STEP_TIMEOUT });
  await sessionsPane(page).locator('.action-label[aria-label="Clear Sessions Filter"]').click();
  // Fork: a second saved session, opened in the chat with the same messages.
  // Other scenarios of a full run leave their sessions: count the forks (only this one forks).
  const forks = rows.filter({ has: page.locator('.codicon-repo-forked:not(.action-label)') }); // the row's icon, not its Fork action
  await rowAction(page, sessionRow(page, RENAMED), 'Fork Session');
  await waitForRows(forks, 1);
  await until('the fork open in the chat', async () => ((await chat.locator('#session option:checked').innerText()).includes('(fork)')) || 'not yet');
  await chat.locator('.msg.assistant', { hasText: 'REMEMBERED' }).waitFor({ timeout: STEP_TIMEOUT });
  // Delete the fork, after the confirmation.
  await rowAction(page, forks.first(), 'Delete Session');
  const dialog = page.locator('.monaco-dialog-box');
  await dialog.waitFor({ timeout: STEP_TIMEOUT });
  await dialog.getByRole('button', { name: 'Delete' }).click();
  await waitForRows(forks, 0);
  // Back to the original: a click resumes it in the chat.
  await sessionRow(page, RENAMED).click();
  await until('the original open in the chat', async () => ((await chat.locator('#session option:checked').innerText()).includes(RENAMED)) || 'not yet');
  await chat.locator('.msg.user', { hasText: PROMPT }).waitFor({ timeout: STEP_TIMEOUT });
}

async function waitForRows(rows: ReturnType<typeof sessionRow>, count: number): Promise<void> {
  await until(`${count} forked sessions listed`, async () => (await rows.count()) === count || `${await rows.count()} rows`);
}

/** "Restore checkpoint" on the first message: the dialog in each theme, then code and conversation. */
async function restoreCheckpoint(env: Env, file: string): Promise<void> {
  const { page } = env;
  const chat = chatFrame(page);
  const dialog = page.locator('.monaco-dialog-box');
  const themes = Object.keys(THEMES) as Theme[];
  for (const theme of themes) {
    await setTheme(page, theme);
    await sessionRow(page, RENAMED).hover();
    await shoot(env, `sessions-view-${theme}`);
    await chatAccessibility(chat, 'sessions'); // the prompts' "Restore checkpoint" buttons in this theme
    await chat.locator('.msg.user', { hasText: PROMPT }).getByRole('button', { name: /Restore checkpoint/ }).click();
    await dialog.waitFor({ timeout: STEP_TIMEOUT });
    const text = await dialog.innerText();
    assert.match(text, /greet\.py/, 'the dialog previews the file it will change');
    await shoot(env, `restore-dialog-${theme}`);
    if (theme !== themes[themes.length - 1]) {
      await page.keyboard.press('Escape');
      await dialog.waitFor({ state: 'hidden' });
      assert.ok(readFileSync(file, 'utf8').includes('f"Hello, {name}!"'), 'a cancelled dialog restores nothing');
      continue;
    }
    await dialog.getByRole('button', { name: 'Restore Code and Conversation' }).click();
  }
  await until('greet.py restored on disk', async () => readFileSync(file, 'utf8') === ORIGINAL || readFileSync(file, 'utf8'));
  await chat.locator('.notice', { hasText: 'Restored greet.py' }).waitFor({ timeout: STEP_TIMEOUT });
  assert.equal(await chat.locator('.msg.user').count(), 0, 'the conversation went back before the first message');
  await chatAccessibility(chat, 'sessions');
  await shoot(env, 'restored-high-contrast');
  await setTheme(page, 'dark');
}

async function shoot(env: Env, name: string): Promise<void> {
  await env.page.screenshot({ path: join(SHOTS, `${name}.png`) });
  await screenshot(env.page, env.results, name);
}

