// The chat panel's UI. It renders snapshots from the extension host and posts the user's intents
// back; it owns only view state (draft text, open cards, scroll), kept with setState.

import DOMPurify from 'dompurify';
import MarkdownIt from 'markdown-it';
import type { Block, ChatState, ContinuationBlock, PendingPermission, ProposalBlock, SessionView, ToolCard } from '../shared/chatState';
import { currentActivity, toolSummary } from '../shared/chatState';
import type { ViewModel } from '../shared/messages';
import { MODES, type TodoItem } from '../shared/protocol';

declare function acquireVsCodeApi(): { postMessage(msg: unknown): void; getState(): any; setState(s: unknown): void };

const vscode = acquireVsCodeApi();
const md = new MarkdownIt({ html: false, linkify: false, breaks: false });
const codeBlocks: string[] = [];
md.renderer.rules.fence = (tokens, idx) => {
  const token = tokens[idx];
  const index = codeBlocks.push(token.content) - 1;
  const lang = md.utils.escapeHtml(token.info.trim().split(/\s+/)[0] || '');
  return `<div class="code"><div class="code-bar"><span>${lang}</span>` +
    `<button class="icon" data-action="copy" data-code="${index}" title="Copy" aria-label="Copy code"><i class="codicon codicon-copy"></i></button>` +
    `<button class="icon" data-action="insert" data-code="${index}" title="Insert at cursor" aria-label="Insert code at cursor"><i class="codicon codicon-insert"></i></button>` +
    `</div><pre><code>${md.utils.escapeHtml(token.content)}</code></pre></div>`;
};

interface ViewState { draft: string; open: string[]; mentions: string[]; planCollapsed: boolean }
const saved: ViewState = { draft: '', open: [], mentions: [], planCollapsed: false, ...(vscode.getState() ?? {}) };
let planCollapsed = saved.planCollapsed;
const openCards = new Set(saved.open);
let model: ViewModel | undefined;

const app = document.getElementById('app')!;
app.innerHTML = `
  <header class="toolbar">
    <select id="session" aria-label="Session"></select>
    <button class="icon" id="new" title="New session" aria-label="New session"><i class="codicon codicon-add"></i></button>
  </header>
  <header class="toolbar">
    <label>Mode <select id="mode" aria-label="Permission mode">${MODES.map((m) => `<option value="${m}">${m}</option>`).join('')}</select></label>
    <label>Model <select id="model" aria-label="Model"></select></label>
  </header>
  <main id="log" role="log" aria-live="polite" aria-label="Conversation" tabindex="0"></main>
  <section id="todos" aria-label="The agent's plan"></section>
  <section id="review" aria-label="Changes to review"></section>
  <section id="permissions" aria-label="Permission requests"></section>
  <footer>
    <div id="chips" aria-label="Mentions"></div>
    <div id="mention-list" role="listbox" hidden></div>
    <textarea id="input" rows="3" placeholder="Ask the agent… (@ to mention a file or the selection, Enter to send, Shift+Enter for a new line)" aria-label="Message"></textarea>
    <div class="actions">
      <span id="status" aria-live="polite"></span>
      <button id="stop" class="secondary" title="Stop the running turn"><i class="codicon codicon-debug-stop"></i> Stop</button>
      <button id="send" title="Send (Enter)"><i class="codicon codicon-send"></i> Send</button>
    </div>
  </footer>`;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const log = $('log');
const input = $<HTMLTextAreaElement>('input');
const mentionList = $('mention-list');
input.value = saved.draft;
let mentions: string[] = saved.mentions;
let mentionItems: { label: string; value: string }[] = [];
let mentionIndex = 0;

function persist(): void {
  vscode.setState({ draft: input.value, open: [...openCards], mentions, planCollapsed } satisfies ViewState);
}

// -- rendering ---------------------------------------------------------------------------

function render(): void {
  if (!model) return;
  const { state } = model;
  const session = state.activeSessionId ? state.sessions[state.activeSessionId] : undefined;
  renderHeader(state, session);
  const stick = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  codeBlocks.length = 0;
  log.innerHTML = session ? session.blocks.map((b, i) => renderBlock(b, session, i)).join('') : emptyHtml();
  if (stick) log.scrollTop = log.scrollHeight;
  renderTodos(session);
  $('review').innerHTML = session ? renderReview(session) : '';
  const unplaced = session ? session.permissions.filter((p) => !session.blocks.some((b) => b.kind === 'tool' && b.toolUseId === p.toolUseId)) : [];
  $('permissions').innerHTML = unplaced.map((p) => permissionHtml(p)).join('');
  $('status').textContent = model.server !== 'running' ? `server ${model.server}` : session?.busy ? `${(session && currentActivity(session)) ?? 'working'}…` : '';
  ($('stop') as HTMLButtonElement).disabled = !session?.busy;
  renderChips();
}

function renderHeader(state: ChatState, session: SessionView | undefined): void {
  const sessions = $<HTMLSelectElement>('session');
  sessions.innerHTML = (session ? '' : '<option value="">New session</option>') +
    state.order.map((id) => `<option value="${esc(id)}">${esc(state.sessions[id]?.title ?? id)}</option>`).join('');
  sessions.value = session?.sessionId ?? '';
  $<HTMLSelectElement>('mode').value = session?.mode ?? 'default';
  const models = $<HTMLSelectElement>('model');
  const choices = [...new Set([...(model!.models), model!.model, ...(session?.model ? [session.model] : [])].filter(Boolean))];
  models.innerHTML = choices.map((m) => `<option value="${esc(m)}">${esc(m)}</option>`).join('');
  models.value = session?.model || model!.model;
}

function emptyHtml(): string {
  return `<div class="empty"><i class="codicon codicon-hubot"></i><p>Ask for a change, or pick <b>Fix with agent</b> on a problem in the editor.</p></div>`;
}

function renderBlock(block: Block, session: SessionView, index: number): string {
  switch (block.kind) {
    case 'text':
      return block.role === 'user'
        ? `<div class="msg user"><div class="who">You</div><div class="body">${esc(block.text)}</div></div>`
        : `<div class="msg assistant"><div class="who">Agent</div><div class="body markdown">${markdown(block.text)}</div></div>`;
    case 'notice':
      return `<div class="notice ${block.level}" role="status"><i class="codicon codicon-${block.level === 'error' ? 'error' : block.level === 'warning' ? 'warning' : 'info'}"></i> ${esc(block.text)}</div>`;
    case 'tool':
      return toolHtml(block, session);
    case 'proposal':
      return proposalHtml(block);
    case 'continuation':
      return continuationHtml(block, `stop-hook-${index}`);
  }
}

function continuationHtml(block: ContinuationBlock, key: string): string {
  const first = block.reason.split('\n')[0];
  return `<details class="continuation" role="note" data-tool="${key}" ${openCards.has(key) ? 'open' : ''}>
    <summary><i class="codicon codicon-debug-continue" aria-hidden="true"></i> Continued by a Stop hook${first ? `<span class="muted">: ${esc(first)}</span>` : ''}</summary>
    ${block.reason ? `<pre>${esc(block.reason)}</pre>` : ''}
  </details>`;
}

// -- the plan (todo list) ---------------------------------------------------------------------

const TODO_LABEL: Record<TodoItem['status'], string> = { pending: 'Pending', in_progress: 'In progress', completed: 'Completed' };
let lastTodosHtml = '';

/** Pinned above the input so the plan stays in view while the transcript scrolls. */
function renderTodos(session: SessionView | undefined): void {
  const html = session?.todos.length ? todosHtml(session) : '';
  if (html === lastTodosHtml) return; // keep the focus and the toggle state between updates
  lastTodosHtml = html;
  $('todos').innerHTML = html;
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

const STATUS_ICON: Record<ToolCard['status'], string> = {
  streaming: 'loading codicon-modifier-spin', running: 'loading codicon-modifier-spin', waiting: 'question', done: 'check', error: 'error',
};

function toolHtml(card: ToolCard, session: SessionView): string {
  const pending = session.permissions.find((p) => p.toolUseId === card.toolUseId);
  const open = openCards.has(card.toolUseId) || !!pending;
  const result = card.result ? `<pre class="result">${esc(card.result.length > 4000 ? `${card.result.slice(0, 4000)}\n…` : card.result)}</pre>` : '';
  const input = card.input ? `<pre class="input">${esc(JSON.stringify(card.input, null, 2))}</pre>` : '';
  const decided = card.permission?.answered ? `<div class="decided">${card.permission.answered === 'allow' ? 'Allowed' : 'Denied'}${card.permission.source && card.permission.source !== 'user' ? ` (${esc(card.permission.source)})` : ''}</div>` : '';
  return `<details class="tool ${card.status}" data-tool="${esc(card.toolUseId)}" ${open ? 'open' : ''}>
    <summary><i class="codicon codicon-${STATUS_ICON[card.status]}"></i> <b>${esc(card.name)}</b> <span class="summary">${esc(toolSummary(card.name, card.input))}</span>${card.status === 'waiting' ? ' <span class="badge">needs approval</span>' : ''}</summary>
    ${input}${decided}${pending ? permissionHtml(pending) : ''}${result}
  </details>`;
}

function permissionHtml(p: PendingPermission): string {
  return `<div class="permission" data-request="${esc(p.requestId)}" role="group" aria-label="Permission for ${esc(p.tool)}">
    <div class="reason"><i class="codicon codicon-shield"></i> ${esc(p.reason)}</div>
    <div class="buttons">
      <button data-action="allow">Allow once</button>
      <button data-action="allow-session" class="secondary">Allow for this session</button>
      <input type="text" class="deny-message" placeholder="Reason (optional)" aria-label="Reason for denying">
      <button data-action="deny" class="secondary">Deny</button>
    </div>
  </div>`;
}

function proposalHtml(p: ProposalBlock): string {
  const label = p.autoApply ? 'Applied' : p.status === 'pending' ? 'Proposed' : `Proposal ${p.status.replace('_', ' ')}`;
  const files = p.files.map((f) => `<li><a href="#" data-action="open" data-uri="${esc(f.uri)}">${esc(f.path)}</a> <span class="muted">${f.hunks.length} change${f.hunks.length === 1 ? '' : 's'}</span></li>`).join('');
  return `<div class="proposal ${esc(p.status)}"><i class="codicon codicon-diff"></i> ${label}: <ul>${files}</ul></div>`;
}

function renderReview(session: SessionView): string {
  const pending = session.blocks.filter((b): b is ProposalBlock => b.kind === 'proposal' && b.status === 'pending' && !b.autoApply && !!model!.decisions[b.proposalId]);
  if (!pending.length) return '';
  const rows = pending.map((p) => {
    const decided = model!.decisions[p.proposalId] ?? {};
    const files = p.files.map((f) => {
      const left = f.hunks.filter((h) => !decided[h.id]).length;
      return `<li><a href="#" data-action="open" data-uri="${esc(f.uri)}">${esc(f.path)}</a>
        <span class="muted">${left} of ${f.hunks.length} to review</span>
        <button class="icon" data-action="side" data-uri="${esc(f.uri)}" title="Open side by side" aria-label="Open ${esc(f.path)} side by side"><i class="codicon codicon-diff"></i></button></li>`;
    }).join('');
    return `<div class="review-item"><ul>${files}</ul>
      <button data-action="accept-all" data-proposal="${esc(p.proposalId)}"><i class="codicon codicon-check-all"></i> Accept all</button>
      <button data-action="reject-all" data-proposal="${esc(p.proposalId)}" class="secondary"><i class="codicon codicon-close-all"></i> Reject all</button></div>`;
  }).join('');
  return `<h3><i class="codicon codicon-git-pull-request"></i> Changes to review</h3>${rows}`;
}

function renderChips(): void {
  $('chips').innerHTML = mentions.map((m, i) => `<span class="chip">@${esc(m)}<button class="icon" data-action="unmention" data-index="${i}" aria-label="Remove ${esc(m)}"><i class="codicon codicon-close"></i></button></span>`).join('');
}

function markdown(text: string): string {
  return DOMPurify.sanitize(md.render(text), { ADD_ATTR: ['data-action', 'data-code'] });
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

// -- input -------------------------------------------------------------------------------

function send(): void {
  const text = input.value.trim();
  if (!text) return;
  vscode.postMessage({ type: 'prompt', text, mentions });
  input.value = '';
  mentions = [];
  hideMentions();
  persist();
  renderChips();
}

function showMentions(items: { label: string; value: string }[]): void {
  mentionItems = items;
  mentionIndex = 0;
  mentionList.hidden = items.length === 0;
  mentionList.innerHTML = items.map((item, i) => `<div role="option" id="mention-${i}" class="mention${i === 0 ? ' active' : ''}" data-action="mention" data-index="${i}" aria-selected="${i === 0}">${item.value === 'selection' ? '<i class="codicon codicon-selection"></i> current selection' : `<i class="codicon codicon-file"></i> ${esc(item.label)}`}</div>`).join('');
}

function hideMentions(): void {
  mentionList.hidden = true;
  mentionItems = [];
}

function pickMention(index: number): void {
  const item = mentionItems[index];
  if (!item) return;
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

input.addEventListener('input', () => {
  persist();
  const query = mentionQuery();
  if (query === undefined) hideMentions();
  else vscode.postMessage({ type: 'mentionSearch', query });
});

input.addEventListener('keydown', (e) => {
  if (!mentionList.hidden && mentionItems.length) {
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      mentionIndex = (mentionIndex + (e.key === 'ArrowDown' ? 1 : mentionItems.length - 1)) % mentionItems.length;
      mentionList.querySelectorAll('.mention').forEach((el, i) => { el.classList.toggle('active', i === mentionIndex); el.setAttribute('aria-selected', String(i === mentionIndex)); });
      return;
    }
    if (e.key === 'Enter' || e.key === 'Tab') { e.preventDefault(); pickMention(mentionIndex); return; }
    if (e.key === 'Escape') { hideMentions(); return; }
  }
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
});

$('send').addEventListener('click', send);
$('stop').addEventListener('click', () => vscode.postMessage({ type: 'stop' }));
$('new').addEventListener('click', () => vscode.postMessage({ type: 'newSession' }));
$<HTMLSelectElement>('session').addEventListener('change', (e) => {
  const id = (e.target as HTMLSelectElement).value;
  vscode.postMessage(id ? { type: 'selectSession', sessionId: id } : { type: 'newSession' });
});
$<HTMLSelectElement>('mode').addEventListener('change', (e) => vscode.postMessage({ type: 'setMode', mode: (e.target as HTMLSelectElement).value }));
$<HTMLSelectElement>('model').addEventListener('change', (e) => vscode.postMessage({ type: 'setModel', model: (e.target as HTMLSelectElement).value }));

document.addEventListener('click', (e) => {
  const target = (e.target as HTMLElement).closest<HTMLElement>('[data-action]');
  if (!target) return;
  const action = target.dataset.action!;
  const request = target.closest<HTMLElement>('[data-request]')?.dataset.request;
  if (action !== 'open') e.preventDefault();
  switch (action) {
    case 'copy': case 'insert':
      vscode.postMessage({ type: action, text: codeBlocks[Number(target.dataset.code)] ?? '' }); break;
    case 'allow': case 'allow-session':
      vscode.postMessage({ type: 'permission', requestId: request, decision: 'allow', remember: action === 'allow-session' }); break;
    case 'deny': {
      const message = target.parentElement?.querySelector<HTMLInputElement>('.deny-message')?.value.trim();
      vscode.postMessage({ type: 'permission', requestId: request, decision: 'deny', remember: false, message: message || undefined }); break;
    }
    case 'accept-all': case 'reject-all':
      vscode.postMessage({ type: 'review', proposalId: target.dataset.proposal, decision: action === 'accept-all' ? 'accept' : 'reject' }); break;
    case 'open': e.preventDefault(); vscode.postMessage({ type: 'openFile', uri: target.dataset.uri }); break;
    case 'side': vscode.postMessage({ type: 'sideBySide', uri: target.dataset.uri }); break;
    case 'mention': pickMention(Number(target.dataset.index)); break;
    case 'unmention': mentions.splice(Number(target.dataset.index), 1); renderChips(); persist(); break;
  }
});

// Remember which tool cards the user opened or closed.
log.addEventListener('toggle', (e) => {
  const el = e.target as HTMLDetailsElement;
  const id = el.dataset?.tool;
  if (!id) return;
  if (el.open) openCards.add(id); else openCards.delete(id);
  persist();
}, true);

$('todos').addEventListener('toggle', (e) => {
  planCollapsed = !(e.target as HTMLDetailsElement).open;
  lastTodosHtml = '';
  persist();
}, true);

window.addEventListener('message', (e) => {
  const msg = e.data;
  if (msg?.type === 'state') { model = msg.model; render(); }
  if (msg?.type === 'mentionResults' && mentionQuery() !== undefined) showMentions(msg.items);
});

vscode.postMessage({ type: 'ready' });
