// Driving the VS Code workbench in the browser: commands, files, the chat webview, the editor,
// notifications and the status bar, plus screenshots of each step.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FrameLocator, Locator, Page } from 'playwright-core';

export const STEP_TIMEOUT = 60_000;

export interface Env {
  page: Page;
  workspace: string;
  /** The run's temporary folder (code-server's user data, the server's state dir). */
  tmp: string;
  modelUrl: string;
  results: string;
}

let shot = 0;

export async function screenshot(page: Page, results: string, name: string): Promise<void> {
  shot += 1;
  await page.screenshot({ path: join(results, `${String(shot).padStart(2, '0')}-${name}.png`) });
}

export function chatFrame(page: Page): FrameLocator {
  return page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
}

export async function runCommand(page: Page, title: string): Promise<void> {
  for (let attempt = 0; attempt < 10; attempt++) {
    await page.keyboard.press('F1');
    const box = page.locator('.quick-input-widget input');
    if (!(await box.waitFor({ timeout: 5000 }).then(() => true, () => false))) {
      // A webview that just took the focus may not pass F1 on yet: focus the workbench and retry.
      await page.locator('.part.sidebar .composite.title').first().click().catch(() => undefined);
      continue;
    }
    // Something taking the focus closes the palette: then try again.
    if (!(await box.fill(`>${title}`, { timeout: 5000 }).then(() => true, () => false))) continue;
    const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
    if (await row.isVisible({ timeout: 2000 }).catch(() => false)) {
      if (await row.click({ timeout: 5000 }).then(() => true, () => false)) return;
      continue; // the palette closed under us (focus moved): open it again
    }
    await page.keyboard.press('Escape'); // the extension may not be active yet: the list is taken at open
    await page.waitForTimeout(1000);
  }
  throw new Error(`command not found: ${title}`);
}

export async function openFile(page: Page, name: string): Promise<void> {
  await page.keyboard.press('Control+P');
  const box = page.locator('.quick-input-widget input');
  await box.waitFor();
  await box.fill(name);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: name }).first().click();
  await page.locator('.tab.active', { hasText: name }).first().waitFor({ timeout: STEP_TIMEOUT });
}

/** The code editor showing a line with this text. */
export function editorWith(page: Page, lineText: string): Locator {
  return page.locator('.monaco-editor', { has: page.locator('.view-line', { hasText: lineText }) }).first();
}

/** Put the cursor at the end of the (first) line holding this text, with a real click. */
export async function clickLineEnd(page: Page, lineText: string): Promise<void> {
  await page.locator('.view-line', { hasText: lineText }).first().click();
  await page.keyboard.press('End');
}

/** Text of the editor that has the keyboard focus ('' when the focus is not in an editor). */
export async function focusedEditorText(page: Page): Promise<string> {
  return plain(await page.evaluate(() => document.activeElement?.closest('.monaco-editor')?.querySelector('.view-lines')?.textContent ?? ''));
}

/** The editor's rendered lines as plain text. */
export async function editorLines(editor: Locator): Promise<string[]> {
  return (await editor.locator('.view-line').allTextContents()).map(plain);
}

/** The editor renders spaces as no-break spaces. */
function plain(text: string): string {
  return text.replace(/\u00a0/g, ' ');
}

/** The first line shown below a CodeLens: the line it belongs to. */
export async function lineBelow(editor: Locator, lens: Locator): Promise<string> {
  const box = await lens.boundingBox();
  // Callers poll (until): a lens being re-rendered has no box for a moment.
  if (!box) return '(the CodeLens is not laid out)';
  const lines = await editor.locator('.view-line').evaluateAll((els) => els.map((el) => ({
    top: el.getBoundingClientRect().top, text: el.textContent ?? '' })));
  const below = lines.filter((l) => l.top >= box.y + box.height - 2).sort((a, b) => a.top - b.top)[0];
  return plain(below?.text ?? '');
}

/** The text an inline decoration draws after a line (CSS generated content). */
export function decorationAfter(line: Locator): Promise<string> {
  return line.evaluate((el) => Array.from(el.querySelectorAll('span'))
    .map((s) => getComputedStyle(s, '::after').content)
    .filter((c) => c && c !== 'none' && c !== 'normal').join(' '));
}

export function notification(page: Page, text: string): Locator {
  return page.locator('.notification-toast', { hasText: text }).first();
}

export function statusItem(page: Page): Locator {
  return page.locator('.statusbar-item', { hasText: 'lsp-agent' }).first();
}

/** Poll until check() holds (it returns a description of what it saw otherwise). */
export async function until(what: string, check: () => Promise<true | string>, timeoutMs = STEP_TIMEOUT): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen: true | string = '';
  while (Date.now() < deadline) {
    seen = await check();
    if (seen === true) return;
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`timed out waiting for ${what}; last seen: ${seen}`);
}

/**
 * Click an inline action of a tree row (shown on hover), as a user does. A view that refreshes
 * between the hover and the click (rows re-sorted, a description updated) can move the row
 * from under the mouse: hover and click again until the click lands.
 */
export async function clickRowAction(row: Locator, action: string, timeoutMs = STEP_TIMEOUT): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await row.hover({ timeout: 5_000 });
      await row.locator(`.action-label[aria-label="${action}"]`).click({ timeout: 3_000 });
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
  }
}

export async function waitForCount(locator: Locator, count: number): Promise<void> {
  await until(`${count} of ${locator}`, async () => (await locator.count()) === count || `${await locator.count()}`);
}

/** Swap the scripted model server's scenario (and reset its request log). */
export async function loadScenario(modelUrl: string, file: string): Promise<void> {
  const { readFileSync } = await import('node:fs');
  const res = await fetch(`${modelUrl}/_scripted/scenario`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: readFileSync(file, 'utf8') });
  assert.ok(res.ok, `loading ${file}: ${res.status} ${await res.text()}`);
}

/** The request bodies the scripted model server received since the last scenario swap. */
export async function modelRequests(modelUrl: string): Promise<{ body: { messages: { role: string; content: unknown }[] } }[]> {
  const res = await fetch(`${modelUrl}/_scripted/requests`);
  return ((await res.json()) as { requests: { body: { messages: { role: string; content: unknown }[] } }[] }).requests;
}

/** The three themes the screenshots are taken in: the picker's label and the workbench's class. */
export const THEMES = { light: ['Default Light Modern', 'light_modern'], dark: ['Default Dark Modern', 'vs-dark'], 'high-contrast': ['Default High Contrast', 'hc-black'] } as const;
export type Theme = keyof typeof THEMES;

/** Switch the color theme through its picker (as a user does), unless it is on already. */
export async function setTheme(page: Page, theme: Theme): Promise<void> {
  const [label, cls] = THEMES[theme];
  if (((await page.locator('.monaco-workbench').getAttribute('class')) ?? '').split(' ').includes(cls)) return;
  await runCommand(page, 'Preferences: Color Theme');
  await page.locator('.quick-input-widget input').fill(label);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: label }).first().click();
  await until(`the ${theme} theme`, async () => ((await page.locator('.monaco-workbench').getAttribute('class')) ?? '').includes(cls) || 'not yet');
  await page.waitForTimeout(800); // the webview gets the theme's variables a moment later
}

/** axe-core in the chat webview: every violation logged, none serious or critical. */
export async function chatAccessibility(chat: FrameLocator, state: string): Promise<void> {
  const frame = await (await chat.locator('body').elementHandle())!.ownerFrame();
  assert.ok(frame, 'the chat frame');
  await frame.evaluate(`${readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8')}\n;0`);
  const violations = await frame.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(ctx: unknown, opts: unknown): Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> } }).axe;
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => `${v.impact} ${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  });
  console.log(`e2e: axe (${state}): ${violations.length} violations${violations.length ? `: ${violations.join('; ')}` : ''}`);
  const serious = violations.filter((v) => /^(serious|critical) /.test(v));
  assert.deepEqual(serious, [], `axe-core: no serious accessibility problem in the chat (${state})`);
}
