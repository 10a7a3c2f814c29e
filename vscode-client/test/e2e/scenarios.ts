// The scenarios beyond the basic chat: typing in a file under review (merge and conflict),
// Explain / Ask agent to change this on a selection, a permission prompt while the chat panel
// is hidden (answered in its notification, then withdrawn by the server when the turn stops), and
// the server crashing and coming back.

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  chatFrame, clickLineEnd, decorationAfter, editorLines, editorWith, focusedEditorText, lineBelow, loadScenario,
  modelRequests, notification, openFile, runCommand, screenshot, statusItem, STEP_TIMEOUT, until,
  waitForCount, type Env,
} from './workbench';

const FIXTURES = resolve(__dirname, '../fixtures');

async function newChatSession(env: Env, scenario: string, prompt: string): Promise<void> {
  await loadScenario(env.modelUrl, join(FIXTURES, scenario));
  await runCommand(env.page, 'lsp-agent: New Session');
  const input = chatFrame(env.page).locator('#input');
  await input.waitFor({ timeout: STEP_TIMEOUT });
  await input.fill(prompt);
  await input.press('Enter');
}

// -- 1. typing in a file under review -------------------------------------------------------

export async function typingScenario(env: Env): Promise<void> {
  const { page, workspace } = env;
  const chat = chatFrame(page);
  await openFile(page, 'shapes.py');
  await newChatSession(env, 'e2e-typing.json', 'Tidy shapes.py please');
  // The model runs a command that waits for a gate file: allow it in the panel, then go back to
  // the editor and type, and only then let the proposal come.
  const prompt = chat.locator('.tool .permission');
  await prompt.waitFor({ timeout: STEP_TIMEOUT });
  await prompt.getByRole('button', { name: 'Allow once' }).click();
  await clickLineEnd(page, '"""Shapes."""');
  await page.keyboard.type('  # typed-before');
  const accept = page.locator('.codelens-decoration a', { hasText: 'Accept' });
  assert.equal(await accept.count(), 0, 'no proposal before the gate opens');
  writeFileSync(join(workspace, '.gate'), '');
  await waitForCount(accept, 2);
  // The proposal did not take the focus: the keyboard still types into shapes.py, where the
  // cursor was, and the new line moves the hunks below it down.
  assert.match(await focusedEditorText(page), /typed-before/, 'the focus stayed in shapes.py');
  await page.keyboard.press('Enter');
  await page.keyboard.type('EXTRA = 1');
  const editor = editorWith(page, 'EXTRA = 1');
  await editor.waitFor();
  await until('the CodeLens above the square() hunk', async () => {
    const below = await lineBelow(editor, accept.first());
    return /return x \+ x/.test(below) || below;
  });
  await until('the CodeLens above the cube() hunk', async () => {
    const below = await lineBelow(editor, accept.nth(1));
    return /return x \* x/.test(below) || below;
  });
  const squareLine = editor.locator('.view-line', { hasText: 'return x + x' });
  assert.match(await decorationAfter(squareLine), /→ return x \* x/, 'the proposed text is drawn on its line');
  const lines = await editorLines(editor);
  assert.ok(lines.some((l) => l.includes('"""Shapes."""  # typed-before')), 'the typing is in the buffer');
  await screenshot(page, env.results, 'typing-during-review');
  // Accept square(), reject cube(): the agent's change lands on top of the user's typing.
  await accept.first().click();
  await waitForCount(page.locator('.codelens-decoration a', { hasText: 'Reject' }), 1);
  await page.locator('.codelens-decoration a', { hasText: 'Reject' }).first().click();
  const file = join(workspace, 'shapes.py');
  await until('the accepted change on disk', async () => {
    const text = readFileSync(file, 'utf8');
    return /def square\(x\):\n {4}return x \* x/.test(text) || text;
  });
  const merged = readFileSync(file, 'utf8');
  assert.ok(merged.startsWith('"""Shapes."""  # typed-before\nEXTRA = 1\n'), `the typing is kept:\n${merged}`);
  assert.match(merged, /def cube\(x\):\n {4}return x \* x/, 'the rejected hunk is not applied');
  await screenshot(page, env.results, 'typing-merged');
  await conflictCase(env, file);
}

/** The next proposal changes a line the user then edits too: accepting it is a conflict. */
async function conflictCase(env: Env, file: string): Promise<void> {
  const { page } = env;
  const chat = chatFrame(page);
  const accept = page.locator('.codelens-decoration a', { hasText: 'Accept' });
  await waitForCount(accept, 1);
  const editor = editorWith(page, 'EXTRA = 1');
  await until('the CodeLens above return "b"', async () => {
    const below = await lineBelow(editor, accept.first());
    return below.includes('return "b"') || below;
  });
  await clickLineEnd(page, 'return "b"');
  await page.keyboard.type('  # mine');
  await page.locator('.codelens-decoration a', { hasText: 'you edited here' }).first().waitFor({ timeout: STEP_TIMEOUT });
  await accept.first().click();
  await notification(page, 'conflicted with your edits').waitFor({ timeout: STEP_TIMEOUT });
  await waitForCount(accept, 0);
  await chat.locator('.tool.outcome-conflict').waitFor({ timeout: STEP_TIMEOUT });
  await chat.locator('.msg.assistant', { hasText: 'Saw the conflict' }).waitFor({ timeout: STEP_TIMEOUT });
  await screenshot(page, env.results, 'conflict');
  await clickLineEnd(page, 'return "b"  # mine');
  await page.keyboard.press('Control+S');
  await until('the user\'s line saved', async () => {
    const text = readFileSync(file, 'utf8');
    return text.includes('    return "b"  # mine\n') || text;
  });
  assert.ok(!readFileSync(file, 'utf8').includes('"B"'), 'the conflicting change was not applied');
  await dismissNotifications(page);
}

async function dismissNotifications(page: Env['page']): Promise<void> {
  await runCommand(page, 'Notifications: Clear All Notifications');
}

// -- 2. Explain with agent / Ask agent to change this -----------------------------------------

export async function selectionScenario(env: Env): Promise<void> {
  const { page } = env;
  const chat = chatFrame(page);
  await loadScenario(env.modelUrl, join(FIXTURES, 'e2e-selection.json'));
  await openFile(page, 'calc.py');
  await selectLine(page, 'def two():');
  await chooseCodeAction(page, 'Explain with agent');
  await chat.locator('.msg.assistant', { hasText: 'EXPLAIN-OK' }).waitFor({ timeout: STEP_TIMEOUT });
  await screenshot(page, env.results, 'explain');

  // The explain turn must be over: a turn ending moves things in the workbench (status, panel)
  // and can close the action menu under the keyboard.
  await until('the explain turn over', async () => {
    const text = await statusItem(page).innerText();
    return !text.includes('working') || text;
  });
  const box = page.locator('.quick-input-widget input');
  const question = page.locator('.quick-input-widget', { hasText: 'change the selection' });
  // Enter on the menu's row must bring the question; if the menu closed under it (nothing
  // asked, the model not called: each wrong prompt would show as UNEXPECTED), pick it again.
  for (let attempt = 1; ; attempt++) {
    await selectLine(page, 'def two():');
    const picked = await chooseCodeAction(page, 'Ask agent to change this').then(() => true, (err) => { if (attempt === 3) throw err; return false; });
    if (picked && await question.waitFor({ timeout: 15_000 }).then(() => true, () => false)) break;
    if (attempt === 3) await question.waitFor({ timeout: STEP_TIMEOUT });
    await page.keyboard.press('Escape');
  }
  await box.fill('Rename it to deux');
  await screenshot(page, env.results, 'change-instruction');
  await box.press('Enter');
  await chat.locator('.msg.assistant', { hasText: 'CHANGE-OK' }).waitFor({ timeout: STEP_TIMEOUT });
  const requests = await modelRequests(env.modelUrl);
  const last = JSON.stringify(requests[requests.length - 1].body.messages.at(-1));
  assert.ok(last.includes('Rename it to deux') && last.includes('def two():'), `the prompt has the instruction and the selection: ${last}`);
  await screenshot(page, env.results, 'change-done');
}

/** Open the lightbulb menu (Ctrl+.) and pick an action by its title. Providers answer at
 * different times and the list re-renders as they do, so wait until it holds still first:
 * picking from a list that is still moving can land on the wrong row. */
async function chooseCodeAction(page: Env['page'], title: string): Promise<void> {
  const rows = page.locator('.action-widget .monaco-list-row');
  // A server still finishing the previous turn may answer "No code actions available": ask again.
  for (let attempt = 0; attempt < 5; attempt++) {
    await page.keyboard.press('Control+.');
    if (await rows.filter({ hasText: title }).first().waitFor({ timeout: 10_000 }).then(() => true, () => false)) break;
    await page.keyboard.press('Escape');
    await page.waitForTimeout(1000);
  }
  await rows.filter({ hasText: title }).first().waitFor({ timeout: STEP_TIMEOUT });
  let previous = '';
  for (let i = 0; i < 20; i++) {
    const current = (await rows.allInnerTexts()).join('\n');
    if (current === previous) break;
    previous = current;
    await page.waitForTimeout(150);
  }
  // Walk to it with the keyboard, as a user would (the widget blocks pointer events until the
  // mouse has moved over it).
  for (let i = 0; i < 12; i++) {
    // Only a menu on screen: a closed one can leave its last focused row in the DOM, and Enter
    // would then go to the editor.
    const focused = await page.locator('.action-widget:visible .monaco-list-row.focused').first().textContent({ timeout: 2000 }).catch(() => '');
    if (focused?.includes(title)) {
      await page.keyboard.press('Enter');
      return;
    }
    await page.keyboard.press('ArrowDown');
  }
  throw new Error(`code action not reachable: ${title}`);
}

async function selectLine(page: Env['page'], text: string): Promise<void> {
  await clickLineEnd(page, text);
  await page.keyboard.press('Shift+Home');
}

// -- 3. a permission prompt while the panel is hidden ------------------------------------------

export async function hiddenPermissionScenario(env: Env): Promise<void> {
  const { page } = env;
  await newChatSession(env, 'e2e-hidden-permission.json', 'Run the checks');
  // The answer streams slowly: hide the panel (show the Explorer) before the command comes.
  await page.locator('.activitybar .action-item a[aria-label^="Explorer"]').click();
  const first = notification(page, 'wants to run Bash');
  await first.waitFor({ timeout: STEP_TIMEOUT });
  assert.match(await first.innerText(), /hidden-ok/);
  await until('the status bar waiting for permission', async () => {
    const text = await statusItem(page).innerText();
    return text.includes('waiting for your permission') || text;
  });
  await screenshot(page, env.results, 'permission-notification');
  await first.getByRole('link', { name: 'Allow once' }).click();
  await until('the answered notification closed', async () => (await page.locator('.notification-toast', { hasText: 'hidden-ok' }).count()) === 0 || 'still shown');
  // The second ask is withdrawn: the user stops the turn, the server cancels its request
  // ($/cancelRequest), and the question goes from the notifications and from the panel.
  const second = notification(page, 'second-check');
  await second.waitFor({ timeout: STEP_TIMEOUT });
  await runCommand(page, 'lsp-agent: Stop');
  await until('the withdrawn notification closed', async () => (await page.locator('.notification-toast', { hasText: 'second-check' }).count()) === 0 || 'still shown');
  await runCommand(page, 'lsp-agent: Open Chat');
  const chat = chatFrame(page);
  await chat.locator('.notice', { hasText: 'Stopped by you.' }).waitFor({ timeout: STEP_TIMEOUT });
  assert.equal(await chat.locator('.permission').count(), 0, 'no permission dialog left in the panel');
  const card = chat.locator('.tool', { hasText: 'Second check' });
  assert.equal(await card.locator('.state', { hasText: 'Needs your permission' }).count(), 0, 'the card no longer asks');
  await until('the status bar no longer waiting', async () => {
    const text = await statusItem(page).innerText();
    return !text.includes('permission') || text;
  });
  assert.match(outputLog(env.tmp), /permission request withdrawn by the server/);
  const requests = await modelRequests(env.modelUrl);
  assert.match(JSON.stringify(requests[1].body.messages.at(-1)), /hidden-ok/, 'the allowed command ran');
  await screenshot(page, env.results, 'permission-withdrawn');
}

// -- 4. the server crashes and comes back -------------------------------------------------------

export async function restartScenario(env: Env): Promise<void> {
  const { page } = env;
  await loadScenario(env.modelUrl, join(FIXTURES, 'e2e-restart.json'));
  const first = serverPid(env.tmp);
  process.kill(first, 'SIGKILL');
  await until('the status bar saying restarting', async () => {
    const text = await statusItem(page).innerText();
    return text.includes('lsp-agent: restarting') || text;
  });
  await screenshot(page, env.results, 'server-restarting');
  // Kill the restarted server at once: the next restart waits longer.
  let second = 0;
  await until('a new server process', async () => {
    second = serverPidOrZero(env.tmp);
    return (second !== 0 && second !== first) || `pid ${second}`;
  });
  await until('the restarted server running', async () => (await statusItem(page).innerText()).trim() === 'lsp-agent' || 'not yet');
  process.kill(second, 'SIGKILL');
  await until('the output log showing the backoff', async () => {
    const log = outputLog(env.tmp);
    return (log.includes('restarting in 1s') && log.includes('restarting in 2s')) || log.slice(-300);
  });
  await until('the server back', async () => {
    const pid = serverPidOrZero(env.tmp);
    const text = (await statusItem(page).innerText()).trim();
    return (pid !== 0 && pid !== second && text === 'lsp-agent') || `pid ${pid}, status ${text}`;
  });
  await runCommand(page, 'lsp-agent: Open Chat');
  const chat = chatFrame(page);
  const input = chat.locator('#input');
  await input.fill('Are you still there?');
  await input.press('Enter');
  await chat.locator('.msg.assistant', { hasText: 'BACK-OK' }).waitFor({ timeout: STEP_TIMEOUT });
  await screenshot(page, env.results, 'server-restarted');
  await planShown(env);
  // The dead clients' providers are gone: each code action is offered once.
  await openFile(page, 'calc.py');
  await selectLine(page, 'def two():');
  await page.keyboard.press('Control+.');
  const explain = page.locator('.action-widget .monaco-list-row', { hasText: 'Explain with agent' });
  await explain.first().waitFor({ timeout: STEP_TIMEOUT });
  assert.equal(await explain.count(), 1, 'one Explain action after the restarts');
  await page.keyboard.press('Escape');
}

/** The answer saved a plan with TodoWrite: the checklist is pinned above the input. */
async function planShown(env: Env): Promise<void> {
  const chat = chatFrame(env.page);
  await chat.locator('.msg.assistant', { hasText: 'PLAN-SAVED' }).waitFor({ timeout: STEP_TIMEOUT });
  const items = chat.locator('#todos .plan li');
  await waitForCount(items, 3);
  const labels = await items.evaluateAll((els) => els.map((el) => el.getAttribute('aria-label')));
  assert.deepEqual(labels, ['Completed: Check the server restarted', 'In progress: Running the test suite', 'Pending: Report the results']);
  assert.match(await chat.locator('#todos .plan summary').innerText(), /1\/3 done/);
  await screenshot(env.page, env.results, 'todos');
}

/** The lsp-agent server of this run: found by the state dir only this run's processes have. */
export function serverPidOrZero(tmp: string): number {
  const marker = `LSP_AGENT_STATE_DIR=${join(tmp, 'state')}`;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (!cmd.includes('lsp_agent') || !cmd.includes('serve')) continue;
      if (readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(marker)) return Number(entry);
    } catch {
      // the process ended meanwhile
    }
  }
  return 0;
}

export function serverPid(tmp: string): number {
  const pid = serverPidOrZero(tmp);
  assert.ok(pid, 'the lsp-agent server process of this run is running');
  return pid;
}

/** The extension's output channel as the workbench logs it. */
export function outputLog(tmp: string): string {
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (/lsp-agent\.log$/.test(name)) found.push(readFileSync(path, 'utf8'));
    }
  };
  const logs = join(tmp, 'user', 'logs');
  if (existsSync(logs)) walk(logs);
  return found.join('\n');
}
