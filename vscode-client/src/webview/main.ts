// The chat panel's UI. It renders snapshots from the extension host and posts the user's intents
// back; it owns only view state (draft text, cards the user opened or closed, scroll), kept with
// setState. The transcript is rendered block by block: only blocks whose HTML changed are
// replaced, so focus, selection and screen readers are not disturbed by streamed text.

import DOMPurify from 'dompurify';
import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import css from 'highlight.js/lib/languages/css';
import go from 'highlight.js/lib/languages/go';
import java from 'highlight.js/lib/languages/java';
import javascript from 'highlight.js/lib/languages/javascript';
import json from 'highlight.js/lib/languages/json';
import markdownLang from 'highlight.js/lib/languages/markdown';
import python from 'highlight.js/lib/languages/python';
import rust from 'highlight.js/lib/languages/rust';
import typescript from 'highlight.js/lib/languages/typescript';
import xml from 'highlight.js/lib/languages/xml';
import yaml from 'highlight.js/lib/languages/yaml';
import MarkdownIt from 'markdown-it';
import type {
  Block, ChatState, ContinuationBlock, NoticeBlock, PendingPermission, ProposalBlock, SessionView, ToolCard, TurnSummary,
} from '../shared/chatState';
import {
  agentLabel, awaitsReview, currentActivity, hasToolCard, sessionStatus, STATUS_TEXT, subagentOf, toolSummary,
} from '../shared/chatState';
import type { MentionItem, ViewModel } from '../shared/messages';
import { MODE_INFO, type ProposalFile, type SlashCommand, type TodoItem } from '../shared/protocol';
import { chosenCommand, matchCommands, slashQuery, sourceLabel } from '../shared/slashCommands';
import { insertMention } from '../shared/mcpMentions';
import {
  agentOutcome, AUTO_DECISION_VIEW, duration, humanError, locations, OUTCOME_VIEW, outcomeOf, proposalOf, relativePath, resultCount,
  shellRun, tokens, usd,
} from '../shared/toolView';
import { PromptRecall } from '../shared/promptRecall';
import { throttle, TYPING_NOTICE_MS } from '../shared/warmUp';

declare function acquireVsCodeApi(): { postMessage(msg: unknown): void; getState(): any; setState(s: unknown): void };

const LANGUAGES: Record<string, unknown> = { bash, css, go, java, javascript, json, markdown: markdownLang, python, rust, typescript, xml, yaml };
for (const [name, lang] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, lang as Parameters<typeof hljs.registerLanguage>[1]);
const EXTENSION_LANGUAGE: Record<string, string> = {
  py: 'python', js: 'javascript', mjs: 'javascript', cjs: 'javascript', jsx: 'javascript', ts: 'typescript', tsx: 'typescript',
  json: 'json', sh: 'bash', bash: 'bash', css: 'css', go: 'go', java: 'java', rs: 'rust', md: 'markdown', html: 'xml', xml: 'xml',
  yml: 'yaml', yaml: 'yaml', toml: 'yaml',
};
const ALIASES: Record<string, string> = { py: 'python', js: 'javascript', ts: 'typescript', sh: 'bash', shell: 'bash', console: 'bash', html: 'xml', yml: 'yaml' };

const vscode = acquireVsCodeApi();
const md = new MarkdownIt({ html: false, linkify: false, breaks: false });
md.renderer.rules.fence = (tokens_, idx) => {
  const token = tokens_[idx];
  const lang = token.info.trim().split(/\s+/)[0] || '';
  return `<div class="code"><div class="code-bar"><span>${esc(lang)}</span>` +
    `<button class="icon" data-action="copy" title="Copy" aria-label="Copy code"><i class="codicon codicon-copy" aria-hidden="true"></i></button>` +
    `<button class="icon" data-action="insert" title="Insert at cursor" aria-label="Insert code at cursor"><i class="codicon codicon-insert" aria-hidden="true"></i></button>` +
    `</div><pre tabindex="0"><code>${highlight(token.content, ALIASES[lang] ?? lang)}</code></pre></div>`;
};

function highlight(code: string, language: string): string {
  if (!language || !hljs.getLanguage(language)) return esc(code);
  try {
    return hljs.highlight(code, { language, ignoreIllegals: true }).value;
  } catch {
    return esc(code);
  }
}

interface ViewState { draft: string; open: string[]; closed: string[]; mentions: string[]; planCollapsed: boolean }
const saved: ViewState = { draft: '', open: [], closed: [], mentions: [], planCollapsed: false, ...(vscode.getState() ?? {}) };
let planCollapsed = saved.planCollapsed;
/** Cards the user opened or closed: their choice wins over the automatic one. */
const openCards = new Set(saved.open);
const closedCards = new Set(saved.closed);
let model: ViewModel | undefined;

const EXAMPLES = [
  'Explain what this project does and how it is organised',
  'Find why the tests fail and fix it',
  'Add type hints to the functions in the open file',
];

const app = document.getElementById('app')!;
app.innerHTML = `
  <h1 class="visually-hidden">lsp-agent chat</h1>
  <div class="toolbar" role="toolbar" aria-label="Session">
    <select id="session" aria-label="Session"></select>
    <div id="meter" class="meter" tabindex="0" role="group" aria-label="Context and cost"></div>
  </div>
  <div class="toolbar pickers" role="toolbar" aria-label="Mode and model">
    <button id="mode" class="picker" aria-haspopup="listbox"></button>
    <button id="model" class="picker" aria-haspopup="listbox"></button>
  </div>
  <div id="banner" role="alert"></div>
  <div id="log" role="log" aria-live="polite" aria-relevant="additions text" aria-label="Conversation" tabindex="0"></div>
  <button id="jump" class="jump" hidden><i class="codicon codicon-arrow-down" aria-hidden="true"></i> Jump to latest</button>
  <section id="todos" aria-label="The agent's plan"></section>
  <section id="review" aria-label="Changes to review"></section>
  <section id="permissions" aria-label="Permission requests"></section>
  <div class="composer">
    <div id="chips" role="group" aria-label="Mentions"></div>
    <div id="mention-list" role="listbox" aria-label="Files to mention" tabindex="0" hidden></div>
    <textarea id="input" rows="3" placeholder="Ask the agent… (/ for commands, @ to mention a file, symbol or the selection, Enter to send, Shift+Enter for a new line)" aria-label="Message" aria-autocomplete="list" aria-controls="mention-list"></textarea>
    <div id="arg-hint" class="arg-hint" aria-live="polite" hidden></div>
    <div class="actions">
      <span id="status" role="status"></span>
      <button id="stop" class="secondary" title="Stop the running turn" hidden><i class="codicon codicon-debug-stop" aria-hidden="true"></i> Stop</button>
      <button id="send" title="Send (Enter)"><i class="codicon codicon-send" aria-hidden="true"></i> Send</button>
    </div>
  </div>`;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const log = $('log');
const input = $<HTMLTextAreaElement>('input');
const mentionList = $('mention-list');
const jump = $<HTMLButtonElement>('jump');
input.value = saved.draft;
let mentions: string[] = saved.mentions;
let mentionItems: MentionItem[] = [];
let mentionIndex = 0;
/** What the open list offers: files and symbols to mention, or slash commands. */
let suggesting: 'mention' | 'command' = 'mention';
let commandItems: SlashCommand[] = [];
/** The active session's commands (agent/commands), asked for once per session. */
let commands: { sessionId: string; list: SlashCommand[] } | undefined;
let commandsAsked = false;
/** The user scrolled up to read: new output does not pull the view down. */
let scrolledUp = false;

function persist(): void {
  vscode.setState({ draft: input.value, open: [...openCards], closed: [...closedCards], mentions, planCollapsed } satisfies ViewState);
}

// -- rendering ---------------------------------------------------------------------------

function render(): void {
  if (!model) return;
  const { state } = model;
  const session = state.activeSessionId ? state.sessions[state.activeSessionId] : undefined;
  renderHeader(state, session);
  renderBanner();
  renderLog(session);
  renderTodos(session);
  setHtml($('review'), session ? renderReview(session) : '');
  // A question about a call shown in a card (also a child's) is asked in that card.
  const unplaced = session ? session.permissions.filter((p) => !hasToolCard(session, p.toolUseId)) : [];
  setHtml($('permissions'), unplaced.map((p) => permissionHtml(p)).join(''));
  renderStatus(session);
  renderChips();
  follow();
}

function setHtml(el: HTMLElement, html: string): void {
  if (el.dataset.html !== html) { el.innerHTML = html; el.dataset.html = html; }
}

function renderStatus(session: SessionView | undefined): void {
  const status = session ? sessionStatus(session) : 'idle';
  const busy = !!session?.busy;
  let text = '';
  if (model!.server !== 'running') text = '';
  else if (status === 'running') text = `${session?.retrying ? 'Retrying' : (session && currentActivity(session)) ?? STATUS_TEXT.running}…`;
  else if (status !== 'idle') text = STATUS_TEXT[status];
  const statusEl = $('status');
  const html = text ? `<i class="codicon codicon-${status === 'running' ? 'loading codicon-modifier-spin' : status === 'review' ? 'eye' : 'shield'}" aria-hidden="true"></i> ${esc(text)}` : '';
  if (statusEl.dataset.html !== html) { statusEl.innerHTML = html; statusEl.dataset.html = html; statusEl.className = status; }
  // Stop only while a turn runs; Send otherwise.
  $('stop').hidden = !busy;
  $('send').hidden = busy;
}

function renderHeader(state: ChatState, session: SessionView | undefined): void {
  const sessions = $<HTMLSelectElement>('session');
  const options = (session ? '' : '<option value="">New session</option>') +
    state.order.map((id) => `<option value="${esc(id)}">${esc(state.sessions[id]?.title ?? id)}</option>`).join('');
  if (sessions.dataset.html !== options) { sessions.innerHTML = options; sessions.dataset.html = options; }
  sessions.value = session?.sessionId ?? '';
  const mode = MODE_INFO[session?.mode ?? 'default'] ?? MODE_INFO.default;
  const modeBtn = $('mode');
  setHtml(modeBtn, `<i class="codicon codicon-shield" aria-hidden="true"></i><span>${esc(mode.label)}</span><i class="codicon codicon-chevron-down" aria-hidden="true"></i>`);
  modeBtn.title = `Permission mode: ${mode.label}. ${mode.description}. Click to change.`;
  modeBtn.setAttribute('aria-label', `Permission mode: ${mode.label}, ${mode.description}`);
  const current = session?.model || model!.model;
  const modelBtn = $('model');
  setHtml(modelBtn, `<i class="codicon codicon-sparkle" aria-hidden="true"></i><span>${esc(current)}</span><i class="codicon codicon-chevron-down" aria-hidden="true"></i>`);
  modelBtn.title = `Model: ${current}${session ? ' (this session, from its next request on)' : ''}. Click to change.`;
  modelBtn.setAttribute('aria-label', `Model: ${current}`);
  renderMeter(session);
}

function renderMeter(session: SessionView | undefined): void {
  const meter = $('meter');
  const ctx = session?.context;
  const cost = session?.costUsd;
  if (!session || (!ctx && cost === undefined)) { setHtml(meter, ''); meter.hidden = true; return; }
  meter.hidden = false;
  const pct = ctx ? Math.min(100, Math.round(ctx.ratio * 1000) / 10) : 0;
  const level = pct >= 80 ? 'critical' : pct >= 50 ? 'warning' : 'ok';
  const parts = ctx?.parts ? Object.entries(ctx.parts).map(([k, v]) => `${PART_NAMES[k] ?? k} ${tokens(v)}`).join(', ') : '';
  const breakdown = [
    ctx ? `Context: ${tokens(ctx.totalTokens)} of ${tokens(ctx.windowTokens)} tokens (${pct}%)` : '',
    parts ? `Next request: ${parts}` : '',
    cost !== undefined ? `Session cost: ${usd(cost)}` : '',
  ].filter(Boolean).join('\n');
  setHtml(meter, `${ctx ? `<span class="bar ${level}" aria-hidden="true"><span style="width:${pct}%"></span></span><span>${pct}%</span>` : ''}` +
    `${cost !== undefined ? `<span class="cost">${usd(cost)}</span>` : ''}`);
  meter.title = breakdown;
  meter.setAttribute('aria-label', breakdown.replace(/\n/g, '. '));
}

const PART_NAMES: Record<string, string> = { system: 'system', tools: 'tools', memory: 'memory', messages: 'messages', toolResults: 'tool results' };

function renderBanner(): void {
  const server = model!.server;
  const python = model!.python ?? 'the configured Python';
  const html = server === 'missing'
    ? `<div class="banner error"><i class="codicon codicon-warning" aria-hidden="true"></i><span>lsp-agent is not installed for <code>${esc(python)}</code>.</span>
       <button data-action="install">Install</button><button class="secondary" data-action="settings" data-query="lspAgent.pythonPath">Choose interpreter</button></div>`
    : server === 'restarting' || server === 'stopped'
      ? `<div class="banner warning"><i class="codicon codicon-debug-disconnect" aria-hidden="true"></i><span>The lsp-agent server stopped; ${server === 'restarting' ? 'restarting…' : 'see the lsp-agent output.'}</span></div>`
      : server === 'starting' ? `<div class="banner info"><i class="codicon codicon-loading codicon-modifier-spin" aria-hidden="true"></i><span>Starting the lsp-agent server…</span></div>` : '';
  setHtml($('banner'), html);
}

/** The transcript, block by block; unchanged blocks keep their DOM (and focus). */
let renderedKeys: string[] = [];
function renderLog(session: SessionView | undefined): void {
  const items: { key: string; html: string }[] = session && session.blocks.length
    ? session.blocks.map((b, i) => ({ key: `${session.sessionId}:${i}`, html: renderBlock(b, session, i) })).filter((it) => it.html)
    : [{ key: 'empty', html: emptyHtml() }];
  if (session?.olderCursor) items.unshift({ key: `${session.sessionId}:earlier`, html: earlierHtml() });
  const children = Array.from(log.children) as HTMLElement[];
  const sameSession = renderedKeys[0]?.split(':')[0] === items[0]?.key.split(':')[0];
  if (!sameSession) { log.innerHTML = ''; children.length = 0; scrolledUp = false; lastTop = 0; }
  items.forEach((item, i) => {
    const existing = sameSession ? children[i] : undefined;
    if (existing && existing.dataset.key === item.key && existing.dataset.html === item.html) return;
    const el = elementOf(item.html);
    el.dataset.key = item.key;
    el.dataset.html = item.html;
    if (existing) existing.replaceWith(el); else log.appendChild(el);
  });
  for (const extra of Array.from(log.children).slice(items.length)) extra.remove();
  renderedKeys = items.map((it) => it.key);
}

function elementOf(html: string): HTMLElement {
  const t = document.createElement('template');
  t.innerHTML = html.trim();
  const first = t.content.firstElementChild as HTMLElement | null;
  if (first && t.content.childElementCount === 1) return first;
  const wrap = document.createElement('div');
  wrap.append(t.content);
  return wrap;
}

/** Keep the newest output in view unless the user scrolled up; then offer to jump. */
function follow(): void {
  if (!scrolledUp) log.scrollTop = log.scrollHeight;
  jump.hidden = !scrolledUp || log.scrollHeight - log.scrollTop - log.clientHeight < 40;
}

// Only the user scrolls up: the panel scrolls down, and layout changes move no scrollTop.
let lastTop = 0;
log.addEventListener('scroll', () => {
  const fromBottom = log.scrollHeight - log.scrollTop - log.clientHeight;
  if (log.scrollTop < lastTop - 2 && fromBottom > 40) scrolledUp = true;
  else if (fromBottom <= 40) scrolledUp = false;
  if (scrolledUp && log.scrollTop < 8) loadEarlier(); // at the top of a saved session: its older messages
  lastTop = log.scrollTop;
  jump.hidden = !scrolledUp;
});
// The sections below the log (plan, review, permission) grow and shrink: stay at the bottom
// (not while hidden: a hidden panel has no size to follow).
new ResizeObserver(() => { if (log.clientHeight > 0) follow(); }).observe(log);
jump.addEventListener('click', () => { scrolledUp = false; follow(); log.focus(); });

function emptyHtml(): string {
  const examples = EXAMPLES.map((e) => `<li><button class="example" data-action="example" data-text="${esc(e)}"><i class="codicon codicon-lightbulb" aria-hidden="true"></i> ${esc(e)}</button></li>`).join('');
  return `<div class="empty"><i class="codicon codicon-hubot" aria-hidden="true"></i>
    <h2>What should the agent do?</h2>
    <p>Describe a change or a question. It reads your workspace, proposes edits you review hunk by hunk, and asks before running commands.</p>
    <ul class="examples" aria-label="Examples">${examples}</ul>
    <p class="muted">Or pick <b>Fix with agent</b> on a problem in the editor (Ctrl+.). Type / for commands and skills, @ to mention a file.</p></div>`;
}

function renderBlock(block: Block, session: SessionView, index: number): string {
  switch (block.kind) {
    case 'text':
      return block.role === 'user'
        ? `<div class="msg user" role="article" aria-label="You"><div class="who">You${restoreHtml(block.turn, session)}</div><div class="body">${esc(block.text)}</div></div>`
        : `<div class="msg assistant" role="article" aria-label="Agent"><div class="who">Agent</div><div class="body markdown">${markdown(block.text)}</div></div>`;
    case 'notice':
      return noticeHtml(block, session);
    case 'tool':
      return toolHtml(block, session, block.name === 'Agent' && isAgentCall(session.blocks[index - 1]) || isAgentCall(session.blocks[index + 1]) && block.name === 'Agent');
    case 'proposal':
      // Shown inside its Edit/Write card; a proposal without one stands alone.
      return session.blocks.some((b) => b.kind === 'tool' && b.proposalId === block.proposalId) ? '' : proposalHtml(block);
    case 'continuation':
      return continuationHtml(block, `stop-hook-${index}`);
    case 'turn':
      return turnHtml(block);
  }
}

// -- saved sessions: restore a checkpoint, older history ----------------------------------------

/** "Restore checkpoint" on a prompt of a saved session, once no turn runs. */
function restoreHtml(turn: number | undefined, session: SessionView): string {
  if (!turn || session.busy || model!.server !== 'running') return '';
  return `<button class="link restore" data-action="restore" data-turn="${turn}" title="Put the files and/or the conversation back as they were before this message" aria-label="Restore checkpoint before message ${turn}"><i class="codicon codicon-discard" aria-hidden="true"></i> Restore checkpoint</button>`;
}

function earlierHtml(): string {
  return `<div class="earlier"><button class="secondary" data-action="earlier"><i class="codicon codicon-fold-up" aria-hidden="true"></i> Show earlier messages</button></div>`;
}

/** Ask for the next older page once per cursor (the button, or scrolling to the top). */
let earlierAsked = '';
function loadEarlier(): void {
  const session = model?.state.activeSessionId ? model.state.sessions[model.state.activeSessionId] : undefined;
  if (!session?.olderCursor || earlierAsked === session.olderCursor) return;
  earlierAsked = session.olderCursor;
  vscode.postMessage({ type: 'loadEarlier', sessionId: session.sessionId });
}

const NOTICE_ACTIONS: Record<string, string> = {
  retry: '<button data-action="retry"><i class="codicon codicon-refresh" aria-hidden="true"></i> Retry</button>',
  settings: '<button class="secondary" data-action="settings" data-query="lspAgent.baseUrl"><i class="codicon codicon-settings-gear" aria-hidden="true"></i> Open settings</button>',
  apiKey: '<button data-action="api-key"><i class="codicon codicon-key" aria-hidden="true"></i> Set API key</button>',
};

function noticeHtml(block: NoticeBlock, session: SessionView): string {
  const icon = block.level === 'error' ? 'error' : block.level === 'warning' ? 'warning' : 'info';
  // Retry re-sends the prompt: offered once the turn is over.
  const actions = (block.actions ?? []).filter((a) => a !== 'retry' || !session.busy).map((a) => NOTICE_ACTIONS[a]).join('');
  const endpoint = block.endpoint ? `<div class="endpoint">Endpoint: <code>${esc(model!.endpoint)}</code></div>` : '';
  return `<div class="notice ${block.level}" role="${block.level === 'error' ? 'alert' : 'status'}">
    <div><i class="codicon codicon-${icon}" aria-hidden="true"></i> ${esc(block.text)}</div>${endpoint}
    ${actions ? `<div class="buttons">${actions}</div>` : ''}</div>`;
}

function turnHtml(t: TurnSummary): string {
  const parts = [
    t.models.join(', '),
    `${tokens(t.inputTokens)} in`,
    `${tokens(t.outputTokens)} out`,
    ...(t.cacheReadTokens ? [`${tokens(t.cacheReadTokens)} from cache`] : []),
    ...(t.usd !== undefined ? [usd(t.usd)] : []),
  ].filter(Boolean);
  const label = `This answer: ${parts.join(', ')}`;
  return `<div class="turn-summary" role="note" aria-label="${esc(label)}" title="${esc(label)}"><i class="codicon codicon-pulse" aria-hidden="true"></i> ${parts.map(esc).join(' · ')}</div>`;
}

function continuationHtml(block: ContinuationBlock, key: string): string {
  const first = block.reason.split('\n')[0];
  return `<details class="continuation" role="note" data-tool="${key}" ${openCards.has(key) ? 'open' : ''}>
    <summary><i class="codicon codicon-debug-continue" aria-hidden="true"></i> Continued by a Stop hook${first ? `<span class="muted">: ${esc(first)}</span>` : ''}</summary>
    ${block.reason ? `<pre tabindex="0">${esc(block.reason)}</pre>` : ''}
  </details>`;
}

// -- the plan (todo list) ---------------------------------------------------------------------

const TODO_LABEL: Record<TodoItem['status'], string> = { pending: 'Pending', in_progress: 'In progress', completed: 'Completed' };
/** Pinned above the input so the plan stays in view while the transcript scrolls. Compared with
 * what the section shows (not with a remembered string a toggle could reset), so another
 * session's plan never stays up; unchanged, it keeps the focus and the toggle state. */
function renderTodos(session: SessionView | undefined): void {
  setHtml($('todos'), session?.todos.length ? todosHtml(session) : '');
}

function todosHtml(session: SessionView): string {
  const total = session.todos.length;
  const done = session.todos.filter((t) => t.status === 'completed').length;
  const activity = currentActivity(session);
  const items = session.todos.map((t) => todoHtml(t, session.busy)).join('');
  return `<details class="plan" ${planCollapsed ? '' : 'open'}>
    <summary><i class="codicon codicon-checklist" aria-hidden="true"></i> <b>Plan</b> <span class="muted">${done}/${total} done</span>${activity ? `<span class="activity">${esc(activity)}</span>` : ''}</summary>
    <ul role="list" aria-label="Plan: ${done} of ${total} done">${items}</ul>
  </details>`;
}

function todoHtml(todo: TodoItem, busy: boolean): string {
  const icon = todo.status === 'completed' ? 'pass-filled'
    : todo.status === 'pending' ? 'circle-large-outline'
    : busy ? 'loading codicon-modifier-spin' : 'circle-large-filled';
  const text = todo.status === 'in_progress' ? todo.activeForm ?? todo.content : todo.content;
  return `<li class="todo ${todo.status}" aria-label="${TODO_LABEL[todo.status]}: ${esc(text)}">` +
    `<i class="codicon codicon-${icon}" aria-hidden="true"></i><span>${esc(text)}</span></li>`;
}

// -- tool cards -------------------------------------------------------------------------------

const TOOL_ICON: Record<string, string> = {
  Bash: 'terminal', Read: 'file', Edit: 'edit', Write: 'new-file', Grep: 'search', Glob: 'files', TodoWrite: 'checklist',
  Definition: 'symbol-method', References: 'references', Hover: 'info', DocumentSymbols: 'symbol-class',
  WorkspaceSymbols: 'symbol-namespace', Diagnostics: 'warning', ToolSearch: 'tools', Agent: 'hubot', TaskOutput: 'output',
  TaskStop: 'debug-stop', Skill: 'book',
};

function isAgentCall(b: Block | undefined): boolean {
  return b?.kind === 'tool' && b.name === 'Agent';
}

const MAX_LOCATIONS = 30;

/** ``sibling``: one of several Agent calls of one response, shown side by side when there is room. */
function toolHtml(card: ToolCard, session: SessionView, sibling = false): string {
  const pending = session.permissions.find((p) => p.toolUseId === card.toolUseId);
  const agent = card.name === 'Agent';
  const outcome = agent ? agentOutcome(card, session) : outcomeOf(card, session);
  const view = OUTCOME_VIEW[outcome];
  const { title, body } = toolContent(card, session, outcome);
  // Open while it needs the user or failed; closed once done, unless the user chose otherwise.
  const auto = !!pending || outcome === 'review' || outcome === 'failed' || outcome === 'conflict' || outcome === 'permission' ||
    ((card.name === 'Bash' || agent) && outcome === 'running');
  const open = openCards.has(card.toolUseId) || (!closedCards.has(card.toolUseId) && auto);
  const decided = card.auto && card.auto.decision !== 'ask' ? '' : card.permission?.answered === 'deny'
    ? `<div class="decided denied"><i class="codicon codicon-circle-slash" aria-hidden="true"></i> ${card.permission.source === 'user' || !card.permission.source ? 'You denied this' : `Denied by ${esc(SOURCE_WORDS[card.permission.source] ?? card.permission.source)}`}${card.permission.message ? `: ${esc(card.permission.message)}` : '.'}</div>`
    : card.permission?.answered === 'allow' && card.permission.source === 'user' ? '<div class="decided">You allowed this.</div>'
    : card.permission?.withdrawn ? '<div class="decided"><i class="codicon codicon-circle-slash" aria-hidden="true"></i> No longer asked: the agent stopped waiting for your answer.</div>' : '';
  const state = `${view.text}${outcome === 'denied' && card.permission?.source && card.permission.source !== 'user' ? ` by ${SOURCE_WORDS[card.permission.source] ?? card.permission.source}` : ''}`;
  const details = card.input ? `<details class="raw" data-tool="raw-${esc(card.toolUseId)}" ${openCards.has(`raw-${card.toolUseId}`) ? 'open' : ''}><summary>Details</summary><pre tabindex="0" aria-label="Input of the tool call">${esc(JSON.stringify(card.input, null, 2))}</pre></details>` : '';
  const autoView = card.auto ? AUTO_DECISION_VIEW[card.auto.decision] : undefined;
  const autoBadge = card.auto && autoView && card.auto.decision !== 'ask'
    ? `<span class="auto-badge ${card.auto.decision}" title="${esc(`${autoView.text}: ${card.auto.reason}`)}"><i class="codicon codicon-${autoView.icon}" aria-hidden="true"></i> ${esc(autoView.short)}</span>` : '';
  const autoLine = card.auto && autoView
    ? `<div class="auto-decision ${card.auto.decision}" role="note"><i class="codicon codicon-${autoView.icon}" aria-hidden="true"></i> <b>${esc(card.auto.error ? 'Auto mode could not decide; you were asked' : autoView.text)}</b>${card.auto.cached ? ' <span class="muted">(as for the same call before)</span>' : ''}: ${esc(card.auto.error ?? card.auto.reason)}</div>` : '';
  const classes = `tool tone-${view.tone} outcome-${outcome}${agent ? ' agent-card' : ''}${sibling ? ' sibling' : ''}`;
  return `<details class="${classes}" data-tool="${esc(card.toolUseId)}" ${open ? 'open' : ''} role="group" aria-label="${esc(`${card.name}: ${plainTitle(card, session)}, ${state}${card.auto && autoView ? `, ${autoView.text}` : ''}`)}">
    <summary><i class="codicon codicon-${TOOL_ICON[card.name] ?? 'tools'} tool-icon" aria-hidden="true"></i><span class="title">${title}</span>${autoBadge}<span class="state"><i class="codicon codicon-${view.icon}" aria-hidden="true"></i> ${esc(state)}</span></summary>
    <div class="tool-body">${autoLine}${body}${decided}${pending ? permissionHtml(pending) : ''}${details}</div>
  </details>`;
}

const SOURCE_WORDS: Record<string, string> = { rule: 'a permission rule', mode: 'the mode', hook: 'a hook', safety: 'a safety rule', timeout: 'timeout (no answer)', error: 'an error', auto: 'auto mode' };

/** An Agent call: the child's description, type, model, usage and cost, then its own cards. */
function agentContent(card: ToolCard, session: SessionView): { title: string; body: string } {
  const input = card.input ?? {};
  const text = (v: unknown) => (typeof v === 'string' ? v : '');
  const child = subagentOf(session, card.toolUseId);
  const description = child?.description || text(input.description) || 'Delegated task';
  const type = child?.agentType || text(input.subagent_type) || 'general-purpose';
  const name = child?.name || text(input.name);
  const background = input.run_in_background === true;
  const title = `${esc(description)} <span class="agent-type">${esc(name && name !== type ? `${name} · ${type}` : type)}</span>`;
  const tools = child ? child.blocks.filter((b) => b.kind === 'tool').length : 0;
  const meta = child ? [
    child.model ?? '', background ? 'in the background' : '',
    `${tools} tool call${tools === 1 ? '' : 's'}`,
    child.usage.input || child.usage.output ? `${tokens(child.usage.input)} in · ${tokens(child.usage.output)} out` : '',
    child.usd !== undefined ? usd(child.usd) : '',
  ].filter(Boolean) : [];
  const metaHtml = meta.length ? `<div class="agent-meta" aria-label="${esc(`Subagent ${agentLabel(child!)}: ${meta.join(', ')}`)}"><i class="codicon codicon-pulse" aria-hidden="true"></i> ${meta.map(esc).join(' · ')}</div>` : '';
  const children = child?.blocks.map((b) => b.kind === 'tool' ? toolHtml(b, session)
    : b.kind === 'text' ? `<div class="agent-text markdown">${markdown(b.text)}</div>`
    : b.kind === 'notice' ? noticeHtml(b, session) : '').join('') ?? '';
  // The child's final text is the result the parent got: shown once.
  const saidIt = child?.blocks.some((b) => b.kind === 'text');
  const result = card.result && card.status === 'done' && !saidIt
    ? `<div class="agent-text markdown">${markdown(card.result)}</div>` : '';
  const failed = card.status === 'error' && card.result ? `<div class="tool-error"><i class="codicon codicon-error" aria-hidden="true"></i> ${esc(humanError(card.result))}</div>` : '';
  const prompt = text(input.prompt) ? `<details class="raw agent-prompt" data-tool="prompt-${esc(card.toolUseId)}" ${openCards.has(`prompt-${card.toolUseId}`) ? 'open' : ''}><summary>Task given to the agent</summary><pre tabindex="0">${esc(text(input.prompt))}</pre></details>` : '';
  return { title, body: `${metaHtml}${prompt}${children ? `<div class="agent-children" role="group" aria-label="What ${esc(child ? agentLabel(child) : 'the agent')} did">${children}</div>` : ''}${result}${failed}` };
}

function plainTitle(card: ToolCard, session: SessionView): string {
  return toolContent(card, session, outcomeOf(card, session)).title.replace(/<[^>]+>/g, '').replace(/&[a-z#0-9]+;/g, (e) => ({ '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'" })[e] ?? e);
}

function rel(path: unknown): string {
  return typeof path === 'string' ? relativePath(path, model!.workspaceRoot) : '';
}

function fileLink(path: string, line?: number, label?: string): string {
  const shown = label ?? (line ? `${path}:${line}` : path);
  return `<a href="#" class="loc" data-action="open" data-path="${esc(path)}"${line ? ` data-line="${line - 1}"` : ''}>${esc(shown)}</a>`;
}

function toolContent(card: ToolCard, session: SessionView, outcome: string): { title: string; body: string } {
  if (card.name === 'Agent') return agentContent(card, session);
  const input = card.input ?? {};
  const result = card.result ?? '';
  const failed = card.status === 'error' && card.permission?.answered !== 'deny';
  const errorHtml = failed && result ? `<div class="tool-error"><i class="codicon codicon-error" aria-hidden="true"></i> ${esc(humanError(result))}</div>` : '';
  switch (card.name) {
    case 'Edit': case 'Write': {
      const path = rel(input.path);
      const proposal = proposalOf(card, session);
      const verb = card.name === 'Edit' ? 'Edit' : 'Write';
      const title = `${verb} ${esc(path || '…')}`;
      if (proposal) return { title, body: proposal.files.map((f) => fileDiffHtml(f)).join('') + proposalActions(proposal) };
      return { title, body: (path ? `<div>${fileLink(path)}</div>` : '') + errorHtml };
    }
    case 'Bash': {
      const command = typeof input.command === 'string' ? input.command : '';
      const run = shellRun(result);
      const done = card.status === 'done' || card.status === 'error';
      const time = duration(card);
      const exit = run.signal ? `killed by ${run.signal}` : run.exitCode !== undefined ? `exit code ${run.exitCode}` : '';
      const meta = done && card.permission?.answered !== 'deny'
        ? `<div class="term-meta ${run.exitCode ? 'bad' : ''}">${esc([exit, time].filter(Boolean).join(' · '))}</div>` : '';
      const output = done && run.output && card.permission?.answered !== 'deny'
        ? `<details class="term-output" data-tool="out-${esc(card.toolUseId)}" ${closedCards.has(`out-${card.toolUseId}`) ? '' : 'open'}><summary>Output (${run.output.split('\n').length} lines)</summary><pre class="term" tabindex="0" aria-label="Output of the command">${esc(clip(run.output))}</pre></details>` : '';
      const description = typeof input.description === 'string' && input.description ? input.description : '';
      return {
        title: esc(description || firstLine(command) || 'Run a command'),
        body: `<pre class="term command" tabindex="0" aria-label="Command"><span class="prompt" aria-hidden="true">$ </span>${esc(command)}</pre>${meta}${output}${failed && !run.output ? errorHtml : ''}`,
      };
    }
    case 'Read': {
      const path = rel(input.path);
      const from = typeof input.offset === 'number' ? input.offset : undefined;
      const limit = typeof input.limit === 'number' ? input.limit : undefined;
      const range = from !== undefined || limit !== undefined ? ` lines ${from ?? 1}–${limit !== undefined ? (from ?? 1) + limit - 1 : 'end'}` : '';
      const count = card.status === 'done' ? resultCount('Read', result) : undefined;
      return {
        title: `Read ${esc(path || '…')}${esc(range)}${count ? ` <span class="muted">${esc(count)}</span>` : ''}`,
        body: (path ? `<div>${fileLink(path, from, `Open ${path}${range}`)}</div>` : '') + errorHtml,
      };
    }
    case 'Grep': case 'Glob': {
      const pattern = typeof input.pattern === 'string' ? input.pattern : '';
      const where = rel(input.path) || (typeof input.glob === 'string' ? input.glob : '');
      const count = card.status === 'done' ? resultCount(card.name, result) : undefined;
      const verb = card.name === 'Grep' ? 'Search' : 'Find files';
      const title = `${verb} <code>${esc(pattern)}</code>${where ? ` in ${esc(where)}` : ''}${count ? ` <span class="muted">${esc(count)}</span>` : ''}`;
      return { title, body: card.status === 'done' ? locationsHtml(result, card.name) : errorHtml };
    }
    case 'TodoWrite':
      return { title: `Update the plan <span class="muted">${esc(toolSummary(card.name, card.input))}</span>`, body: '' };
    default: {
      const summary = toolSummary(card.name, card.input);
      const count = card.status === 'done' ? resultCount(card.name, result) : undefined;
      const title = `${esc(card.name)} <span class="muted">${esc(summary)}${count ? ` · ${esc(count)}` : ''}</span>`;
      if (card.status !== 'done') return { title, body: errorHtml };
      const locs = locationsHtml(result, card.name);
      return { title, body: locs || (card.name === 'Hover' ? `<pre tabindex="0">${esc(clip(result))}</pre>` : '') };
    }
  }
}

function locationsHtml(result: string, tool: string): string {
  const locs = locations(result, tool);
  if (!locs.length) return '';
  const items = locs.slice(0, MAX_LOCATIONS).map((l) => {
    const path = rel(l.path);
    const count = l.count !== undefined ? ` <span class="muted">${l.count} match${l.count === 1 ? '' : 'es'}</span>` : '';
    const text = l.text ? ` <span class="loc-text">${esc(l.text.trim().slice(0, 120))}</span>` : '';
    return `<li>${fileLink(path, l.line)}${count}${text}</li>`;
  }).join('');
  const more = locs.length > MAX_LOCATIONS ? `<li class="muted">and ${locs.length - MAX_LOCATIONS} more</li>` : '';
  return `<ul class="locations" aria-label="Locations">${items}${more}</ul>`;
}

function fileDiffHtml(file: ProposalFile): string {
  const lang = EXTENSION_LANGUAGE[file.path.split('.').pop() ?? ''] ?? '';
  let added = 0;
  let removed = 0;
  const hunks = file.hunks.map((h) => h.diff.split('\n').filter((l, i) => l && !(i === 0 && l.startsWith('@@'))).map((line) => {
    const tag = line[0];
    if (tag === '\\') return '';
    const cls = tag === '+' ? 'add' : tag === '-' ? 'del' : 'ctx';
    if (tag === '+') added++;
    if (tag === '-') removed++;
    const sign = tag === '+' ? '+' : tag === '-' ? '−' : ' ';
    const label = cls === 'add' ? ' aria-label="added"' : cls === 'del' ? ' aria-label="removed"' : '';
    return `<div class="dl ${cls}"><span class="sign"${label}>${sign}</span><span>${highlight(line.slice(1), lang) || ' '}</span></div>`;
  }).join(''));
  const name = relativePath(file.path, model!.workspaceRoot);
  return `<div class="diff" role="group" aria-label="Changes to ${esc(name)}">
    <div class="diff-head">${fileLink(name)}${file.isNew ? ' <span class="muted">new file</span>' : ''}${file.isDeleted ? ' <span class="muted">deleted</span>' : ''} <span class="stat add">+${added}</span> <span class="stat del">−${removed}</span></div>
    <div class="diff-lines" tabindex="0" aria-label="Diff of ${esc(name)}">${hunks.join('<div class="dl gap" aria-hidden="true">⋯</div>')}</div></div>`;
}

function proposalActions(p: ProposalBlock): string {
  if (!awaitsReview(p)) return '';
  const file = p.files[0];
  return `<div class="buttons">
    <button data-action="accept-all" data-proposal="${esc(p.proposalId)}"><i class="codicon codicon-check" aria-hidden="true"></i> Accept</button>
    <button class="secondary" data-action="reject-all" data-proposal="${esc(p.proposalId)}"><i class="codicon codicon-discard" aria-hidden="true"></i> Reject</button>
    ${file ? `<button class="secondary" data-action="side" data-uri="${esc(file.uri)}"><i class="codicon codicon-diff" aria-hidden="true"></i> Side by side</button>` : ''}
  </div>`;
}

function permissionHtml(p: PendingPermission): string {
  return `<div class="permission" data-request="${esc(p.requestId)}" role="group" aria-label="Permission for ${esc(p.tool)}">
    <div class="reason"><i class="codicon codicon-shield" aria-hidden="true"></i> ${esc(p.reason)}</div>
    <div class="buttons">
      <button data-action="allow">Allow once</button>
      <button data-action="allow-session" class="secondary">Allow for this session</button>
      <input type="text" class="deny-message" placeholder="Reason (optional)" aria-label="Reason for denying">
      <button data-action="deny" class="secondary">Deny</button>
    </div>
  </div>`;
}

const PROPOSAL_WORDS: Record<string, string> = {
  pending: 'Proposed', accepted: 'Accepted', partially_accepted: 'Partly accepted', rejected: 'Rejected', conflict: 'Conflict with your edits',
  cancelled: 'Cancelled', failed: 'Could not be applied',
};

function proposalHtml(p: ProposalBlock): string {
  const label = `${p.autoApply ? 'Applied' : PROPOSAL_WORDS[p.status] ?? p.status}${p.agent ? ` by ${esc(p.agent)}` : ''}`;
  const files = p.files.map((f) => `<li>${fileLink(relativePath(f.path, model!.workspaceRoot))} <span class="muted">${f.hunks.length} change${f.hunks.length === 1 ? '' : 's'}</span></li>`).join('');
  return `<div class="proposal ${esc(p.status)}"><i class="codicon codicon-diff" aria-hidden="true"></i> ${label}: <ul>${files}</ul></div>`;
}

function renderReview(session: SessionView): string {
  const pending = session.blocks.filter((b): b is ProposalBlock => awaitsReview(b) && !!model!.decisions[b.proposalId]);
  if (!pending.length) return '';
  const rows = pending.map((p) => {
    const decided = model!.decisions[p.proposalId] ?? {};
    const files = p.files.map((f) => {
      const left = f.hunks.filter((h) => !decided[h.id]).length;
      const name = relativePath(f.path, model!.workspaceRoot);
      return `<li>${fileLink(name)}
        <span class="muted">${left} of ${f.hunks.length} to review</span>
        <button class="icon" data-action="side" data-uri="${esc(f.uri)}" title="Open side by side" aria-label="Open ${esc(name)} side by side"><i class="codicon codicon-diff" aria-hidden="true"></i></button></li>`;
    }).join('');
    return `<div class="review-item">${p.agent ? `<div class="muted">Proposed by ${esc(p.agent)}</div>` : ''}<ul>${files}</ul>
      <button data-action="accept-all" data-proposal="${esc(p.proposalId)}"><i class="codicon codicon-check-all" aria-hidden="true"></i> Accept all</button>
      <button data-action="reject-all" data-proposal="${esc(p.proposalId)}" class="secondary"><i class="codicon codicon-close-all" aria-hidden="true"></i> Reject all</button></div>`;
  }).join('');
  return `<h2><i class="codicon codicon-git-pull-request" aria-hidden="true"></i> Changes to review</h2>${rows}`;
}

function renderChips(): void {
  setHtml($('chips'), mentions.map((m, i) => `<span class="chip">@${esc(m.replace(/^symbol:/, ""))}<button class="icon" data-action="unmention" data-index="${i}" aria-label="Remove ${esc(m.replace(/^symbol:/, ""))}"><i class="codicon codicon-close" aria-hidden="true"></i></button></span>`).join(''));
}

function markdown(text: string): string {
  return DOMPurify.sanitize(md.render(text), { ADD_ATTR: ['data-action'] });
}

function firstLine(s: string): string {
  const line = s.split('\n')[0] ?? '';
  return line.length > 80 ? `${line.slice(0, 79)}…` : line;
}

function clip(s: string): string {
  return s.length > 20000 ? `${s.slice(0, 20000)}\n…` : s;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

// -- input -------------------------------------------------------------------------------

function send(): void {
  const text = input.value.trim();
  const active = model?.state.activeSessionId ? model.state.sessions[model.state.activeSessionId] : undefined;
  if (!text || active?.busy) return; // one turn at a time: the draft waits for this one to end
  vscode.postMessage({ type: 'prompt', text, mentions });
  input.value = '';
  mentions = [];
  scrolledUp = false;
  hideMentions();
  renderArgHint();
  persist();
  renderChips();
}

const MENTION_ICON: Record<string, string> = { file: 'file', symbol: 'symbol-method', selection: 'selection', mcp: 'plug' };

function mentionRow(item: MentionItem): string {
  if (item.value === 'selection') return '<i class="codicon codicon-selection" aria-hidden="true"></i> current selection';
  const icon = MENTION_ICON[item.kind ?? 'file'] ?? 'file';
  return `<i class="codicon codicon-${icon}" aria-hidden="true"></i> ${esc(item.label)}${item.detail ? ` <span class="muted">${esc(item.detail)}</span>` : ''}`;
}

function showMentions(items: MentionItem[]): void {
  suggesting = 'mention';
  mentionItems = items;
  showSuggestions(items.map(mentionRow), 'Files, symbols and MCP resources to mention');
}

/** The listbox under the input, first row active; the input keeps the focus (aria-activedescendant). */
function showSuggestions(rows: string[], label: string): void {
  mentionIndex = 0;
  mentionList.hidden = rows.length === 0;
  mentionList.setAttribute('aria-label', label);
  mentionList.innerHTML = rows.map((row, i) => `<div role="option" id="mention-${i}" class="mention${suggesting === 'command' ? ' command' : ''}${i === 0 ? ' active' : ''}" data-action="mention" data-index="${i}" aria-selected="${i === 0}">${row}</div>`).join('');
  if (rows.length) input.setAttribute('aria-activedescendant', 'mention-0'); else input.removeAttribute('aria-activedescendant');
}

function suggestionCount(): number {
  return suggesting === 'command' ? commandItems.length : mentionItems.length;
}

function hideMentions(): void {
  mentionList.hidden = true;
  mentionItems = [];
  commandItems = [];
  input.removeAttribute('aria-activedescendant');
}

// -- slash commands ----------------------------------------------------------------------------

function activeSessionId(): string | undefined {
  return model?.state.activeSessionId;
}

/** Offer the commands matching what follows "/" (asking the host for the list once per session). */
function suggestCommands(query: string): void {
  const id = activeSessionId();
  if (!commands || (id && commands.sessionId !== id)) {
    if (!commandsAsked) { commandsAsked = true; vscode.postMessage({ type: 'listCommands' }); }
    if (!commands) return;
  }
  suggesting = 'command';
  commandItems = matchCommands(commands.list, query);
  mentionItems = [];
  showSuggestions(commandItems.map(commandRow), 'Commands');
}

function commandRow(c: SlashCommand): string {
  return `<span class="cmd-name">/${esc(c.name)}</span>${c.argumentHint ? ` <span class="cmd-hint">${esc(c.argumentHint)}</span>` : ''}` +
    `<span class="cmd-source">${esc(sourceLabel(c.source))}</span>` +
    (c.description ? `<span class="cmd-desc">${esc(c.description)}</span>` : '');
}

function pickCommand(index: number): void {
  const c = commandItems[index];
  if (!c) return;
  const rest = input.value.slice(input.selectionStart).replace(/^\S*/, '');
  input.value = `/${c.name} ${rest.trimStart()}`;
  const at = c.name.length + 2;
  input.setSelectionRange(at, at);
  hideMentions();
  renderArgHint();
  persist();
  input.focus();
}

/** Under the input, once a command is chosen: its arguments and what it does. */
function renderArgHint(): void {
  const chosen = commands ? chosenCommand(input.value, commands.list) : undefined;
  const hint = $('arg-hint');
  const html = chosen ? `<span class="cmd-name">/${esc(chosen.name)}</span>${chosen.argumentHint ? ` <span class="cmd-hint">${esc(chosen.argumentHint)}</span>` : ''}${chosen.description ? ` — ${esc(chosen.description)}` : ''}` : '';
  setHtml(hint, html);
  hint.hidden = !html;
}

function pickMention(index: number): void {
  if (suggesting === 'command') { pickCommand(index); return; }
  const item = mentionItems[index];
  if (!item) return;
  if (item.kind === 'mcp') { // written into the prompt, where the server reads it
    const next = insertMention(input.value, input.selectionStart, item.value);
    input.value = next.text;
    input.setSelectionRange(next.cursor, next.cursor);
    hideMentions();
    persist();
    input.focus();
    return;
  }
  input.value = input.value.replace(/@[^\s@]*$/, '');
  if (!mentions.includes(item.value)) mentions.push(item.value);
  hideMentions();
  renderChips();
  persist();
  input.focus();
}

function mentionQuery(): string | undefined {
  const m = /(?:^|\s)@([^\s@]*)$/.exec(input.value.slice(0, input.selectionStart));
  return m ? m[1] : undefined;
}

const typingNotice = throttle(TYPING_NOTICE_MS);
input.addEventListener('input', () => {
  if (typingNotice(Date.now())) vscode.postMessage({ type: 'typing' });
  persist();
  renderArgHint();
  const command = slashQuery(input.value.slice(0, input.selectionStart));
  if (command !== undefined) { suggestCommands(command); return; }
  const query = mentionQuery();
  if (query === undefined) hideMentions();
  else vscode.postMessage({ type: 'mentionSearch', query });
});

input.addEventListener('keydown', (e) => {
  if (suggestionKeys(e)) return;
  // Ctrl+Space offers the commands again on a "/" line.
  if (e.key === ' ' && e.ctrlKey) {
    const command = slashQuery(input.value.slice(0, input.selectionStart));
    if (command !== undefined) { e.preventDefault(); suggestCommands(command); return; }
  }
  if (recallKey(e)) return;
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
});
// The list scrolls, so it can take the focus too; the same keys work there.
mentionList.addEventListener('keydown', (e) => { if (suggestionKeys(e)) input.focus(); });

/** Arrows, Enter/Tab and Escape while the list is open: true when the list used the key. */
function suggestionKeys(e: KeyboardEvent): boolean {
  const count = suggestionCount();
  if (mentionList.hidden || !count) return false;
  if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
    e.preventDefault();
    mentionIndex = (mentionIndex + (e.key === 'ArrowDown' ? 1 : count - 1)) % count;
    mentionList.querySelectorAll('.mention').forEach((el, i) => { el.classList.toggle('active', i === mentionIndex); el.setAttribute('aria-selected', String(i === mentionIndex)); });
    input.setAttribute('aria-activedescendant', `mention-${mentionIndex}`);
    mentionList.querySelector('.mention.active')?.scrollIntoView({ block: 'nearest' });
    return true;
  }
  if (e.key === 'Enter' || e.key === 'Tab') { e.preventDefault(); pickMention(mentionIndex); return true; }
  if (e.key === 'Escape') { e.preventDefault(); hideMentions(); return true; }
  return false;
}

// Up in an empty input recalls earlier prompts (asked for afresh at each start), Down goes forward.
const recall = new PromptRecall();
let recallWanted = false;
function recallKey(e: KeyboardEvent): boolean {
  if (e.shiftKey || e.altKey || e.ctrlKey || e.metaKey || e.isComposing) return false;
  if (e.key === 'ArrowUp' && recall.handlesUp(input.value)) {
    e.preventDefault();
    if (recall.recalling) showRecalled(recall.up());
    else { recallWanted = true; vscode.postMessage({ type: 'promptHistory' }); }
    return true;
  }
  if (e.key === 'ArrowDown' && recall.handlesDown(input.value)) {
    e.preventDefault();
    showRecalled(recall.down());
    return true;
  }
  return false;
}

function showRecalled(text: string | undefined): void {
  if (text === undefined) return;
  input.value = text;
  input.setSelectionRange(text.length, text.length);
  persist();
}
input.addEventListener('input', () => recall.stop());

$('send').addEventListener('click', send);
$('stop').addEventListener('click', () => vscode.postMessage({ type: 'stop' }));
$('mode').addEventListener('click', () => vscode.postMessage({ type: 'pickMode' }));
$('model').addEventListener('click', () => vscode.postMessage({ type: 'pickModel' }));
$<HTMLSelectElement>('session').addEventListener('change', (e) => {
  const id = (e.target as HTMLSelectElement).value;
  vscode.postMessage(id ? { type: 'selectSession', sessionId: id } : { type: 'newSession' });
});

document.addEventListener('click', (e) => {
  const summary = (e.target as HTMLElement).closest('summary');
  const details = summary?.parentElement as HTMLDetailsElement | undefined;
  if (details?.dataset.tool && summary && !(e.target as HTMLElement).closest('[data-action]')) rememberToggle(details.dataset.tool, !details.open);
  const target = (e.target as HTMLElement).closest<HTMLElement>('[data-action]');
  if (!target) return;
  const action = target.dataset.action!;
  const request = target.closest<HTMLElement>('[data-request]')?.dataset.request;
  e.preventDefault();
  switch (action) {
    case 'copy': case 'insert':
      vscode.postMessage({ type: action, text: target.closest('.code')?.querySelector('code')?.textContent ?? '' }); break;
    case 'allow': case 'allow-session':
      vscode.postMessage({ type: 'permission', requestId: request, decision: 'allow', remember: action === 'allow-session' }); break;
    case 'deny': {
      const message = target.parentElement?.querySelector<HTMLInputElement>('.deny-message')?.value.trim();
      vscode.postMessage({ type: 'permission', requestId: request, decision: 'deny', remember: false, message: message || undefined }); break;
    }
    case 'accept-all': case 'reject-all':
      vscode.postMessage({ type: 'review', proposalId: target.dataset.proposal, decision: action === 'accept-all' ? 'accept' : 'reject' }); break;
    case 'open': {
      const line = target.dataset.line !== undefined ? Number(target.dataset.line) : undefined;
      vscode.postMessage({ type: 'openFile', uri: target.dataset.uri ?? target.dataset.path, ...(line !== undefined ? { line } : {}) }); break;
    }
    case 'side': vscode.postMessage({ type: 'sideBySide', uri: target.dataset.uri }); break;
    case 'mention': pickMention(Number(target.dataset.index)); break;
    case 'unmention': mentions.splice(Number(target.dataset.index), 1); renderChips(); persist(); break;
    case 'example': input.value = target.dataset.text ?? ''; input.focus(); persist(); break;
    case 'retry': scrolledUp = false; vscode.postMessage({ type: 'retry' }); break;
    case 'settings': vscode.postMessage({ type: 'openSettings', query: target.dataset.query }); break;
    case 'api-key': vscode.postMessage({ type: 'setApiKey' }); break;
    case 'install': vscode.postMessage({ type: 'install' }); break;
    case 'restore': {
      const sessionId = model?.state.activeSessionId;
      if (sessionId) vscode.postMessage({ type: 'restoreCheckpoint', sessionId, turn: Number(target.dataset.turn) });
      break;
    }
    case 'earlier': loadEarlier(); break;
  }
});

/** The user opened or closed a card: keep it so across updates. */
function rememberToggle(id: string, open: boolean): void {
  if (open) { openCards.add(id); closedCards.delete(id); } else { closedCards.add(id); openCards.delete(id); }
  // The new state is part of the card's HTML: render it so the next update does not undo it.
  persist();
  setTimeout(render, 0);
}

$('todos').addEventListener('toggle', (e) => {
  planCollapsed = !(e.target as HTMLDetailsElement).open;
  persist();
}, true);

window.addEventListener('message', (e) => {
  const msg = e.data;
  if (msg?.type === 'state') {
    model = msg.model;
    // Another session has its own commands (its workspace, plugins, MCP prompts).
    if (commands && model?.state.activeSessionId && commands.sessionId !== model.state.activeSessionId) commands = undefined;
    render();
  }
  // Only the answer for what is typed now: an older query's (slower) answer must not replace it.
  if (msg?.type === 'mentionResults' && mentionQuery() !== undefined && msg.query === mentionQuery()) showMentions(msg.items);
  if (msg?.type === 'commands') {
    commands = { sessionId: msg.sessionId, list: msg.commands ?? [] };
    commandsAsked = false;
    const query = slashQuery(input.value.slice(0, input.selectionStart));
    if (query !== undefined) suggestCommands(query);
    renderArgHint();
  }
  if (msg?.type === 'promptHistory' && recallWanted && input.value.trim() === '') {
    recallWanted = false;
    recall.load(msg.prompts ?? []);
    showRecalled(recall.up());
  }
});

vscode.postMessage({ type: 'ready' });
