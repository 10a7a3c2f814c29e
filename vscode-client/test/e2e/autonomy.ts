// Issue 13 in VS Code: the watcher in the status bar (needs approval -> Approve Watcher -> on ->
// paused -> on again) against the real server's agent/watchStatus, watchApprove and watchPause;
// then the Inbox and Memory views open with their empty-state words.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { runCommand, screenshot, STEP_TIMEOUT, until, type Env } from './workbench';

function watcherItem(page: Page) {
  return page.locator('.statusbar-item', { hasText: 'watcher' }).first();
}

async function watcherText(page: Page): Promise<string> {
  return (await watcherItem(page).innerText().catch(() => '')).trim();
}

export async function autonomyScenario(env: Env): Promise<void> {
  const { page, workspace } = env;
  // A watcher from the project's committed settings: it must wait for the user's approval.
  const folder = join(workspace, '.lsp-agent');
  mkdirSync(folder, { recursive: true });
  const settingsFile = join(folder, 'settings.json');
  writeFileSync(settingsFile, JSON.stringify({ watch: { enabled: true, testCommand: 'true' } }));
  try {
    await runCommand(page, 'lsp-agent: Refresh Watcher Status');
    await until('the watcher asking for approval', async () => /needs approval/.test(await watcherText(page)) || await watcherText(page));
    await screenshot(page, env.results, 'watcher-needs-approval');

    await runCommand(page, 'lsp-agent: Approve Watcher');
    const dialog = page.locator('.monaco-dialog-box');
    await dialog.waitFor({ timeout: STEP_TIMEOUT });
    assert.match(await dialog.innerText(), /`true` on every save/, 'the dialog shows the command it approves');
    await dialog.getByRole('button', { name: 'Approve' }).click();
    await until('the watcher running', async () => { const t = await watcherText(page); return (t && !/approval|paused/.test(t)) || t; });

    await watcherItem(page).click(); // pause
    await until('the watcher paused', async () => /paused/.test(await watcherText(page)) || await watcherText(page));
    await screenshot(page, env.results, 'watcher-paused');
    await watcherItem(page).click(); // resume
    await until('the watcher resumed', async () => { const t = await watcherText(page); return (t && !/paused/.test(t)) || t; });

    // The views: empty inbox, and the memory index row.
    await runCommand(page, 'lsp-agent: Refresh Inbox');
    await runCommand(page, 'Focus on Inbox View');
    await page.locator('.pane', { hasText: 'What the watcher prepares' }).first().waitFor({ timeout: STEP_TIMEOUT });
    await runCommand(page, 'Focus on Memory View');
    await page.locator('.monaco-list-row', { hasText: 'MEMORY.md' }).first().waitFor({ timeout: STEP_TIMEOUT });
    await screenshot(page, env.results, 'inbox-and-memory-views');

    // Edit the index from the view: saving writes it through agent/memoryWrite.
    await page.locator('.monaco-list-row', { hasText: 'MEMORY.md' }).first().click();
    await page.locator('.tab.active', { hasText: 'MEMORY.md' }).first().waitFor({ timeout: STEP_TIMEOUT });
    await page.locator('.monaco-editor .view-lines').first().click();
    await page.keyboard.type('- the tests run with pytest -q\n');
    await page.keyboard.press('Control+S');
    const memoryRoot = join(env.tmp, 'state', 'memory');
    await until('MEMORY.md written in the memory folder', async () => {
      const written = existsSync(memoryRoot) ? readdirSync(memoryRoot).map((d) => join(memoryRoot, d, 'MEMORY.md')).filter(existsSync) : [];
      const text = written.map((f) => readFileSync(f, 'utf8')).join('');
      return text.includes('the tests run with pytest -q') || `files: ${written.join(', ') || 'none'}`;
    });
    await page.locator('.monaco-list-row', { hasText: 'index · 1 line' }).first().waitFor({ timeout: STEP_TIMEOUT });
    await screenshot(page, env.results, 'memory-index-saved');
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}
