// Issues 11, 12 and 13 in the real VS Code: "/" completes the session's slash commands and
// skills (keyboard only); two reader subagents of one response are nested in their Agent cards,
// side by side, with their own tool cards, usage and cost, and auto mode's decisions (one
// allowed, one denied, with the classifier's reason) on the cards they decided; a background
// command shows in the Tasks view with its output and is stopped there; the MCP view lists the
// project's servers awaiting approval, approves them (one connects with its tools, one fails with
// its error) and lists the skills, commands, agents and plugins; "@" offers the MCP server's
// resources and the picked mention reaches the model with the resource's text. Each state is shot in the light,
// dark and high-contrast themes (test/e2e/screenshots/) and the chat is checked with axe-core.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FrameLocator, Locator, Page } from 'playwright-core';
import {
  chatAccessibility, chatFrame, clickRowAction, loadScenario, modelRequests, runCommand, screenshot, setTheme, STEP_TIMEOUT, THEMES, until, waitForCount, type Env, type Theme,
} from './workbench';

const FIXTURES = resolve(__dirname, '../fixtures');
const SHOTS = resolve(__dirname, 'screenshots');
const REPO = resolve(__dirname, '../../..');
const PROMPT = 'Check the plan with two readers';
/** Files the scenario adds to the workspace (and takes away at the end). */
const ADDED = ['.lsp-agent', '.claude', '.mcp.json', 'plan.txt'];

export async function agentsScenario(env: Env, python: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  addCustomizations(env.workspace, python);
  try {
    await loadScenario(env.modelUrl, join(FIXTURES, 'e2e-agents.json'));
    await runCommand(env.page, 'lsp-agent: New Session');
    await widenSidebar(env.page);
    await slashCompletion(env);
    await delegation(env);
    await mcpView(env);
    await tasksView(env);
    await mcpResourceMention(env);
  } finally {
    for (const name of ADDED) rmSync(join(env.workspace, name), { recursive: true, force: true });
  }
}

/** A custom agent, a skill, a command and two project MCP servers (one that starts, one that cannot). */
function addCustomizations(workspace: string, python: string): void {
  const write = (path: string, text: string) => {
    mkdirSync(join(workspace, path, '..'), { recursive: true });
    writeFileSync(join(workspace, path), text);
  };
  write('.lsp-agent/agents/reader.md', '---\nname: reader\ndescription: Reads plans and reports\ntools: Read, Grep, Bash\n---\nYou are READER-E2E. Report briefly.\n');
  write('.claude/skills/release/SKILL.md', '---\nname: release\ndescription: Cut a release of the project\nargument-hint: <version>\n---\nRelease steps.\n');
  write('.claude/commands/fix.md', '---\ndescription: Fix a numbered issue\nargument-hint: <number>\n---\nFix issue $1.\n');
  write('plan.txt', 'PLAN-OK: ship on Friday\n');
  write('.mcp.json', JSON.stringify({ mcpServers: {
    demo: { command: python, args: [join(REPO, 'tests/extensions/mcp_test_server.py')] },
    broken: { command: '/nonexistent/mcp-server-e2e' },
  } }, null, 2));
}

/** More room for the chat: the sidebar dragged wider, as a user does for side-by-side agents. */
async function widenSidebar(page: Page): Promise<void> {
  const box = await page.locator('.part.sidebar').boundingBox();
  assert.ok(box, 'the sidebar');
  const x = box.x + box.width;
  await page.mouse.move(x, box.y + 300);
  await page.mouse.down();
  await page.mouse.move(x + 200, box.y + 300, { steps: 8 });
  await page.mouse.move(760, box.y + 300, { steps: 8 });
  await page.mouse.up();
  await until('a wider sidebar', async () => ((await page.locator('.part.sidebar').boundingBox())?.width ?? 0) > 600 || 'not yet');
}

// -- "/" completion ------------------------------------------------------------------------------

async function slashCompletion(env: Env): Promise<void> {
  const chat = chatFrame(env.page);
  const input = chat.locator('#input');
  await input.waitFor({ timeout: STEP_TIMEOUT });
  await input.click();
  await input.pressSequentially('/');
  const list = chat.locator('#mention-list');
  const rows = list.locator('[role="option"]');
  await rows.first().waitFor({ timeout: STEP_TIMEOUT });
  const all = (await rows.allInnerTexts()).join('\n');
  for (const want of ['/help', '/compact', '/release', '<version>', 'Cut a release of the project', '/fix', '<number>', 'Fix a numbered issue', 'skill (project)']) {
    assert.ok(all.includes(want), `the list offers ${want}: ${all.slice(0, 600)}`);
  }
  // Keyboard only: the input keeps the focus, arrows move the active row, Tab picks it.
  assert.equal(await input.getAttribute('aria-activedescendant'), 'mention-0');
  await input.press('ArrowDown');
  assert.equal(await input.getAttribute('aria-activedescendant'), 'mention-1');
  assert.equal(await rows.nth(1).getAttribute('aria-selected'), 'true');
  await shootThemes(env, 'slash-commands', chat);
  await input.focus();
  await input.pressSequentially('rel');
  await until('the list filtered to /rel…', async () => {
    const first = await rows.first().innerText();
    return first.startsWith('/release') || first;
  });
  await until('the release skill active', async () => (await chat.locator('.mention.active').innerText()).includes('/release') || await chat.locator('.mention.active').innerText());
  await input.press('Tab');
  assert.equal(await input.inputValue(), '/release ');
  assert.ok(await list.isHidden(), 'the list closed');
  const hint = chat.locator('#arg-hint');
  await until('the argument hint', async () => (await hint.isVisible() && /\/release\s*<version>/.test(await hint.innerText())) || 'hidden');
  // Escape closes the list without touching the text.
  await input.fill('');
  await input.pressSequentially('/f');
  await rows.first().waitFor();
  await input.press('Escape');
  assert.ok(await list.isHidden(), 'Escape closed the list');
  assert.equal(await input.inputValue(), '/f');
  await input.fill('');
}

// -- subagents and auto mode -------------------------------------------------------------------

async function delegation(env: Env): Promise<void> {
  const { page } = env;
  const chat = chatFrame(page);
  // Auto mode for this session, through the mode picker.
  await chat.locator('#mode').click();
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'A classifier model decides' }).first().click();
  await until('auto mode', async () => (await chat.locator('#mode').innerText()).includes('Auto') || await chat.locator('#mode').innerText());
  const input = chat.locator('#input');
  await input.fill(PROMPT);
  await input.press('Enter');
  await chat.locator('.msg.assistant', { hasText: 'AGENTS-DONE' }).waitFor({ timeout: STEP_TIMEOUT });
  const agents = chat.locator('details.agent-card');
  assert.equal(await agents.count(), 2, 'one card per Agent call');
  // Nothing of the children is in the main transcript: their text and cards are in their card.
  const mainText = (await chat.locator('#log > .msg.assistant').allInnerTexts()).join('\n');
  assert.ok(!mainText.includes('SUMMARY-A') && !mainText.includes('PLAN-OK'), `the main transcript holds no child output: ${mainText}`);
  assert.equal(await chat.locator('#log > details.tool:not(.agent-card)', { hasText: 'Print the plan' }).count(), 0, "a child's tool card is not a top-level card");
  // Done: collapsed; the user opens both (a click on each header).
  for (const i of [0, 1]) {
    const card = agents.nth(i);
    if (!(await card.getAttribute('open') !== null)) await card.locator(':scope > summary').click();
    await until(`agent card ${i} open`, async () => (await card.getAttribute('open')) !== null || 'closed');
  }
  const first = agents.filter({ hasText: 'first reader' });
  const second = agents.filter({ hasText: 'second reader' });
  await first.locator('.agent-children details.tool', { hasText: 'Print the plan' }).waitFor();
  assert.match(await first.locator(':scope > summary').innerText(), /reader[\s\S]*Done/);
  assert.match(await first.locator('.agent-meta').innerText(), /1 tool call · .* in · .* out/);
  assert.match(await first.innerText(), /SUMMARY-A: the plan says PLAN-OK/);
  assert.match(await second.locator(':scope > summary').innerText(), /tidier · reader/);
  // Auto mode's decisions, on the cards they decided, with the classifier's reason.
  const allowed = first.locator('.agent-children details.tool', { hasText: 'Print the plan' });
  assert.match(await allowed.locator(':scope > summary').innerText(), /Auto-allowed/);
  const denied = second.locator('.agent-children details.tool', { hasText: 'Remove the build folder' });
  assert.match(await denied.locator(':scope > summary').innerText(), /Auto-denied[\s\S]*Denied by auto mode/);
  if (await denied.getAttribute('open') === null) await denied.locator(':scope > summary').click();
  assert.match(await denied.locator('.auto-decision').innerText(), /Denied by auto mode: Deleting the build folder was not asked for/);
  // Side by side in a wide panel.
  const [a, b] = [await agents.nth(0).boundingBox(), await agents.nth(1).boundingBox()];
  assert.ok(a && b && Math.abs(a.y - b.y) < 4 && b.x > a.x + a.width - 10, `the two agents side by side: ${JSON.stringify([a, b])}`);
  // The model: the children ran with the agent's prompt; the parent got the summaries only.
  const bodies = (await modelRequests(env.modelUrl)).map((r) => JSON.stringify(r.body));
  const parentLast = bodies.filter((t) => !t.includes('READER-E2E') && !t.includes('permission classifier')).pop() ?? '';
  assert.ok(parentLast.includes('SUMMARY-A') && parentLast.includes('SUMMARY-B'), 'the parent got both summaries');
  await page.mouse.move(1300, 60);
  await shootThemes(env, 'subagents', chat);
}

// -- MCP servers and customizations --------------------------------------------------------------

function pane(page: Page, title: string): Locator {
  return page.locator('.pane', { has: page.locator('.pane-header h3.title', { hasText: new RegExp(`^${title}$`, 'i') }) });
}

function row(p: Locator, text: string): Locator {
  return p.locator('.monaco-list-row', { hasText: text }).first();
}

async function rowAction(r: Locator, action: string): Promise<void> {
  await clickRowAction(r, action);
}

async function approve(page: Page, view: Locator, server: string): Promise<void> {
  const r = row(view, server);
  await until(`${server} awaiting approval`, async () => (await r.innerText().catch(() => '')).includes('awaiting your approval') || await r.innerText().catch(() => 'no row'));
  const pick = page.locator('.quick-input-widget');
  // The row's action, again if its question did not open (a click that crossed a redraw).
  const deadline = Date.now() + STEP_TIMEOUT;
  while (!(await pick.isVisible())) {
    await rowAction(r, 'Approve MCP Server');
    await pick.waitFor({ timeout: 10_000 }).catch((err) => { if (Date.now() > deadline) throw err; });
  }
  // A click whose row was gone reaches the command without it: it asks which server.
  if (/Approve which MCP server/.test(await pick.innerText())) {
    await page.locator('.quick-input-list .monaco-list-row', { hasText: server }).first().click();
    await until('the approval question', async () => /Start the MCP server/.test(await pick.innerText()) || await pick.innerText());
  }
  assert.match(await pick.innerText(), new RegExp(`Start the MCP server ${server}\\?`));
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Approve for this session' }).first().click();
}

async function mcpView(env: Env): Promise<void> {
  const { page } = env;
  // An earlier scenario may leave the Sessions view open; with the Inbox and Memory views
  // below, the MCP view then scrolls and its row actions sit under the scrollbar.
  if (await pane(page, 'Sessions').count()) await togglePane(page, 'Sessions', false);
  await runCommand(page, 'lsp-agent: Open MCP Servers and Customizations');
  const view = pane(page, 'MCP & Customizations');
  await row(view, 'MCP Servers').waitFor({ timeout: STEP_TIMEOUT });
  // The first prompt asked about the project's servers: approved here, as the chat would.
  await approve(page, view, 'demo');
  await until('demo connected with its tools', async () => /connected · 8 tools/.test(await row(view, 'demo').innerText()) || await row(view, 'demo').innerText());
  await approve(page, view, 'broken');
  await until('broken failed with its error', async () => /failed/.test(await row(view, 'broken').innerText()) || await row(view, 'broken').innerText());
  await waitForCount(chatFrame(page).locator('.permission'), 0); // the chat no longer asks
  // Room for the view: the chat folded away for a moment.
  await togglePane(page, 'Chat', false);
  // The customizations by kind, and the server's tools under it.
  for (const group of ['Skills', 'Commands', 'Agents']) await row(view, group).click();
  await row(view, '/release').waitFor({ timeout: STEP_TIMEOUT });
  assert.match(await row(view, '/release').innerText(), /<version> — Cut a release of the project/);
  assert.match(await row(view, '/fix').innerText(), /<number> — Fix a numbered issue/);
  assert.match(await row(view, 'Reads plans').innerText(), /reader/);
  await row(view, 'Explore').waitFor();
  await row(view, 'demo').click();
  await row(view, 'echo').waitFor({ timeout: STEP_TIMEOUT });
  assert.match(await row(view, 'echo').innerText(), /mcp__demo__echo/);
  // Restart of the connected server answers with its state again.
  await rowAction(row(view, 'demo'), 'Restart MCP Server');
  await until('demo connected after the restart', async () => /connected · 8 tools/.test(await row(view, 'demo').innerText()) || await row(view, 'demo').innerText());
  await page.mouse.move(1300, 60);
  await shootThemes(env, 'mcp-view');
  await togglePane(page, 'MCP & Customizations', false);
}

async function togglePane(page: Page, title: string, expanded: boolean): Promise<void> {
  const header = pane(page, title).locator('.pane-header');
  if ((await header.getAttribute('aria-expanded')) !== String(expanded)) await header.click();
  await until(`${title} ${expanded ? 'expanded' : 'collapsed'}`, async () => (await header.getAttribute('aria-expanded')) === String(expanded) || 'not yet');
}

// -- background tasks -----------------------------------------------------------------------------

async function tasksView(env: Env): Promise<void> {
  const { page } = env;
  await runCommand(page, 'lsp-agent: Open Tasks');
  const view = pane(page, 'Tasks');
  const task = row(view, 'dev server');
  await task.waitFor({ timeout: STEP_TIMEOUT });
  assert.match(await task.innerText(), /shell · running/);
  await task.click(); // its output, in an editor
  const editor = page.locator('.monaco-editor', { has: page.locator('.view-line', { hasText: 'TASK-STARTED' }) }).first();
  await editor.waitFor({ timeout: STEP_TIMEOUT });
  await page.locator('.tab.active[data-resource-name$=".log"]', { hasText: /bg-\w+\.log/ }).waitFor({ timeout: STEP_TIMEOUT });
  await page.mouse.move(1300, 60);
  await shootThemes(env, 'tasks-view');
  await rowAction(task, 'Stop Task');
  await until('the task stopped', async () => /shell · stopped/.test(await task.innerText()) || await task.innerText());
  await togglePane(page, 'Chat', true);
}

// -- MCP resources in the @ completion ----------------------------------------------------------

/** "@notes" offers the demo server's resource beside files (marked MCP); Tab writes its mention into the prompt, which reaches the model with the resource's text. */
async function mcpResourceMention(env: Env): Promise<void> {
  const chat = chatFrame(env.page);
  const input = chat.locator('#input');
  await input.waitFor({ timeout: STEP_TIMEOUT });
  await input.click();
  await input.fill('');
  await input.pressSequentially('Summarise @release');
  const rows = chat.locator('#mention-list [role="option"]');
  const resource = rows.filter({ hasText: '@demo:test://notes/readme' });
  await resource.first().waitFor({ timeout: STEP_TIMEOUT });
  assert.match(await resource.first().innerText(), /MCP · notes — The project's release notes/);
  await shootThemes(env, 'mcp-mention', chat);
  await input.focus();
  // Keyboard only: arrows to the resource's row, Tab picks it.
  for (let i = 0; i < 20 && !/@demo:test:\/\/notes\/readme/.test(await chat.locator('.mention.active').innerText()); i++) await input.press('ArrowDown');
  await input.press('Tab');
  assert.equal(await input.inputValue(), 'Summarise @demo:test://notes/readme ');
  const before = (await modelRequests(env.modelUrl)).length;
  await input.press('Enter');
  await chat.getByText('MCP-RESOURCE-SEEN').first().waitFor({ timeout: STEP_TIMEOUT });
  const requests = await modelRequests(env.modelUrl);
  const sent = JSON.stringify(requests.slice(before).map((r) => r.body.messages.at(-1)));
  assert.ok(sent.includes('@demo:test://notes/readme') && sent.includes('NOTES-BODY'), `the mention and the resource's text reach the model: ${sent.slice(0, 400)}`);
}

// -- themes, shots, accessibility ---------------------------------------------------------------

async function shootThemes(env: Env, name: string, chat?: FrameLocator): Promise<void> {
  for (const theme of Object.keys(THEMES) as Theme[]) {
    await setTheme(env.page, theme);
    await env.page.mouse.move(1300, 60);
    await env.page.screenshot({ path: join(SHOTS, `${name}-${theme}.png`) });
    await screenshot(env.page, env.results, `${name}-${theme}`);
    if (chat) await chatAccessibility(chat, `${name}, ${theme}`);
  }
}

