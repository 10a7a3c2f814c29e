// Issue 13 in VS Code, the watcher at work against the real server: a local watcher (local
// settings count as approval) whose test fails after a save; its background session prepares the
// fix as a proposal without taking the chat panel from the user's session or opening anything; the
// Inbox lists it "to review" with the test-failure icon and the companion says a fix is ready;
// Review opens the proposal inline, Accept lands it (the test passes) and the row says "accepted";
// Dismiss takes the row away. Then "Talk to the Companion" sends a visible, normal prompt.
// Shots in light, dark and high contrast (test/e2e/screenshots/); axe-core checks the chat.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FrameLocator, Page } from 'playwright-core';
import { chatAccessibility, chatFrame, clickRowAction, loadScenario, modelRequests, openFile, runCommand, screenshot, setTheme, STEP_TIMEOUT, THEMES, until, type Env, type Theme } from './workbench';

const FIXTURES = resolve(__dirname, '../fixtures');
const SHOTS = resolve(__dirname, 'screenshots');
const BUGGY = 'def total(xs):\n    return sum(xs) - 1\n';
const CHECK = 'import wallet; assert wallet.total([2, 3]) == 5, wallet.total([2, 3])';

export async function watcherScenario(env: Env): Promise<void> {
  const { page, workspace } = env;
  mkdirSync(SHOTS, { recursive: true });
  const settings = join(workspace, '.lsp-agent', 'settings.local.json');
  const wallet = join(workspace, 'wallet.py');
  mkdirSync(join(workspace, '.lsp-agent'), { recursive: true });
  writeFileSync(wallet, BUGGY);
  writeFileSync(settings, JSON.stringify({ watch: { enabled: true, testCommand: `python3 -c "${CHECK}"`, debounceSeconds: 0.2 } }));
  try {
    await loadScenario(env.modelUrl, join(FIXTURES, 'e2e-watch.json'));
    await runCommand(page, 'lsp-agent: Refresh Watcher Status');
    await until('the watcher on', async () => { const t = await watcherText(page); return (/watcher/.test(t) && !/approval|paused/.test(t)) || t || 'hidden'; });
    const chat = chatFrame(page);
    const userSession = await chat.locator('#session option:checked').innerText();

    // The user edits and saves: the test fails in the background.
    await openFile(page, 'wallet.py');
    await page.locator('.view-line', { hasText: 'return sum(xs) - 1' }).first().click();
    await page.keyboard.press('End');
    await page.keyboard.type('  # saved');
    await page.keyboard.press('Control+S');

    await runCommand(page, 'Focus on Inbox View');
    const row = page.locator('.pane-body .monaco-list-row', { hasText: 'wallet.py was saved' }).first();
    await row.waitFor({ timeout: STEP_TIMEOUT });
    await until('the item waiting for review', async () => /1 to review/.test(await row.innerText()) || await row.innerText());
    assert.ok(await row.locator('.codicon-beaker').count(), 'a test failure has the beaker icon');
    assert.equal(readFileSync(wallet, 'utf8'), BUGGY.replace('- 1\n', '- 1  # saved\n'), 'prepared, not applied');
    await until('the companion saying a fix is ready', async () => /ready/.test(await companionText(page)) || await companionText(page));
    assert.equal(await chat.locator('#session option:checked').innerText(), userSession, 'the watcher did not take the chat panel');
    await shootThemes(page, env, 'watcher-inbox-pending');

    // Review opens the proposal inline; accepting it makes the test pass.
    await row.click();
    const accept = page.locator('.codelens-decoration a', { hasText: 'Accept' }).first();
    await accept.waitFor({ timeout: STEP_TIMEOUT });
    await accept.click();
    await until('the fix on disk', async () => readFileSync(wallet, 'utf8').includes('return sum(xs)  # saved\n') || readFileSync(wallet, 'utf8'));
    execFileSync('python3', ['-c', CHECK], { cwd: workspace, timeout: 30_000 });
    await until('the row saying accepted', async () => /1 accepted/.test(await row.innerText()) || await row.innerText());
    assert.ok(await row.locator('.codicon-pass').count(), 'an accepted item shows the pass icon');
    await shootThemes(page, env, 'watcher-inbox-accepted');
    // The background session's turn goes on once its proposal is decided: let it end first.
    await until('the watcher\'s session done', async () => (await modelRequests(env.modelUrl)).length >= 3 || 'waiting'); // triage + 2 rounds

    // Dismiss (inline action on the row).
    await clickRowAction(row, 'Dismiss Inbox Item');
    await until('the row gone', async () => (await row.count()) === 0 || 'still listed');

    // Talking to the companion is a normal prompt the user sees.
    await runCommand(page, 'lsp-agent: Talk to the Companion');
    const box = page.locator('.quick-input-widget input');
    await box.waitFor({ timeout: STEP_TIMEOUT });
    await box.fill('how are the tests?');
    await page.keyboard.press('Enter');
    await chat.locator('.msg.user', { hasText: ', the companion) how are the tests?' }).first().waitFor({ timeout: STEP_TIMEOUT });
    await chat.getByText('COMPANION-OK').first().waitFor({ timeout: STEP_TIMEOUT });
    await shootThemes(page, env, 'companion-talk', chat);
  } finally {
    rmSync(join(workspace, '.lsp-agent'), { recursive: true, force: true });
    rmSync(wallet, { force: true });
    await runCommand(page, 'lsp-agent: Refresh Watcher Status').catch(() => undefined);
  }
}

async function watcherText(page: Page): Promise<string> {
  return (await page.locator('.statusbar-item', { hasText: 'watcher' }).first().innerText().catch(() => '')).trim();
}

async function companionText(page: Page): Promise<string> {
  return (await page.locator('.statusbar-item[aria-label*="companion"]').first().innerText().catch(() => '')).trim();
}

// -- themes, shots, accessibility ---------------------------------------------------------------

async function shootThemes(page: Page, env: Env, name: string, chat?: FrameLocator): Promise<void> {
  for (const theme of Object.keys(THEMES) as Theme[]) {
    await setTheme(page, theme);
    await page.mouse.move(1300, 60);
    await page.screenshot({ path: join(SHOTS, `${name}-${theme}.png`) });
    await screenshot(page, env.results, `${name}-${theme}`);
    if (chat) await chatAccessibility(chat, `${name}, ${theme}`);
  }
  await setTheme(page, 'light');
}

