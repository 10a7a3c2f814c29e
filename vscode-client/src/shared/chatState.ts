// The chat transcript as a pure reducer over agent events and user actions. The extension host
// keeps the authoritative state (it survives webview reloads) and the webview renders it.

import { reduceSaved, type SavedSessionAction } from './history';
import { TODO_STATUSES, type AgentEvent, type Mode, type PermissionRequest, type ProposalFile, type TodoItem } from './protocol';

export type ToolStatus = 'streaming' | 'running' | 'waiting' | 'done' | 'error';

export interface ToolCard {
  kind: 'tool';
  toolUseId: string;
  name: string;
  input?: Record<string, unknown>;
  status: ToolStatus;
  result?: string;
  permission?: {
    reason: string; answered?: 'allow' | 'deny'; source?: string; message?: string;
    /** The server stopped waiting ($/cancelRequest) before the user answered. */
    withdrawn?: boolean;
  };
  /** Seconds since the epoch, from the server's tool_result (for the run's duration). */
  startedAt?: number;
  finishedAt?: number;
  /** The proposal this call made (Edit, Write): its card shows the diff and the review state. */
  proposalId?: string;
  /** Auto mode's classifier judged this call (the ``auto_decision`` event). */
  auto?: AutoDecisionView;
  /** The subagent that made this call (its card sits inside that agent's card). */
  agentId?: string;
}

export interface AutoDecisionView { decision: 'allow' | 'deny' | 'ask'; reason: string; cached: boolean; error?: string }

export type SubagentStatus = 'running' | 'done' | 'failed' | 'cancelled';

/** A child agent started by an Agent call: shown inside that call's card. */
export interface SubagentView {
  agentId: string;
  /** The Agent call that started it. */
  parentToolUseId: string;
  agentType: string;
  description: string;
  name?: string;
  model?: string;
  status: SubagentStatus;
  stopReason?: string;
  /** The child's own transcript: its text, tool cards and notices. */
  blocks: Block[];
  usage: { input: number; output: number };
  usd?: number;
  rounds?: number;
}

export interface TextBlock {
  kind: 'text'; role: 'user' | 'assistant'; text: string;
  /** A prompt's turn number in its session (1-based, as agent/checkpoints counts): "Restore checkpoint". */
  turn?: number;
}
/** What a notice offers to do about it. */
export type NoticeAction = 'retry' | 'settings' | 'apiKey';
export interface NoticeBlock {
  kind: 'notice'; level: 'info' | 'warning' | 'error'; text: string;
  /** The model endpoint could not be reached: the panel names the URL. */
  endpoint?: boolean;
  /** A retry in progress: replaced by the next retry, the error, or dropped when the answer comes. */
  retry?: boolean;
  actions?: NoticeAction[];
}

/** Under each answer: which model answered, its tokens and what the turn cost. */
export interface TurnSummary {
  kind: 'turn';
  models: string[];
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  usd?: number;
  stopReason: string;
}
export interface ProposalBlock {
  kind: 'proposal';
  /** The subagent whose edit this is (its name or type), when not the main agent's. */
  agent?: string;
  proposalId: string;
  files: ProposalFile[];
  autoApply: boolean;
  status: 'pending' | string;
  accepted: string[];
  rejected: string[];
}

/** A turn a Stop hook started after the previous one of the same prompt: shown instead of a user message. */
export interface ContinuationBlock { kind: 'continuation'; reason: string }

export type Block = TextBlock | ToolCard | NoticeBlock | ProposalBlock | ContinuationBlock | TurnSummary;

/** What the context meter shows (agent/context, refreshed by context_pressure events). */
export interface ContextInfo {
  totalTokens: number;
  windowTokens: number;
  ratio: number;
  parts?: Record<string, number>;
}

export interface PendingPermission extends PermissionRequest { requestId: string }

export interface SessionView {
  sessionId: string;
  title: string;
  mode: Mode;
  model: string;
  busy: boolean;
  /** The panel's `agent/prompt` request is unanswered: the session stays busy across Stop-hook turns. */
  promptPending: boolean;
  blocks: Block[];
  lastSeq: number;
  permissions: PendingPermission[];
  /** Length of ``blocks`` when the current model request began (a retry discards back to it). */
  requestStart: number;
  usage: { input: number; output: number };
  /** The agent's latest todo list (its plan); empty when it has none. */
  todos: TodoItem[];
  /** What the session has cost so far (the latest ``cost`` event). */
  costUsd?: number;
  /** Models that answered in the running turn, and the turn's cost once known. */
  turnModels: string[];
  turnCostUsd?: number;
  context?: ContextInfo;
  /** The turn is being retried: the panel says so until the next answer arrives. */
  retrying?: { attempt: number; delaySeconds: number; reason: string };
  /** Prompts (turns) so far, when known: numbers the next one. */
  turns?: number;
  /** A saved session shown from its newest history page: the cursor of the next older page. */
  olderCursor?: string;
  /** Child agents by agentId; their cards nest under the Agent call that started them. */
  subagents: Record<string, SubagentView>;
}

export interface ChatState {
  activeSessionId?: string;
  sessions: Record<string, SessionView>;
  order: string[];
}

export type ChatAction =
  | { type: 'session'; sessionId: string; mode: Mode; model: string; title?: string }
  | { type: 'activate'; sessionId: string }
  | { type: 'userPrompt'; sessionId: string; text: string }
  | { type: 'event'; event: AgentEvent }
  | { type: 'permissionRequested'; request: PendingPermission }
  | { type: 'permissionAnswered'; requestId: string; decision: 'allow' | 'deny' }
  /** The server cancelled its agent/requestPermission (the turn stopped, or it timed out): no longer ask. */
  | { type: 'permissionWithdrawn'; requestId: string }
  | { type: 'mode'; sessionId: string; mode: Mode }
  | { type: 'model'; sessionId: string; model: string }
  | { type: 'context'; sessionId: string; context: ContextInfo }
  | { type: 'notice'; sessionId: string; level: NoticeBlock['level']; text: string }
  /** The panel sent `agent/prompt` (true) or it answered (false); false also ends a turn shown as running. */
  | { type: 'busy'; sessionId: string; busy: boolean }
  | SavedSessionAction;

export const emptyState = (): ChatState => ({ sessions: {}, order: [] });

function newSession(sessionId: string, mode: Mode, model: string, title = 'New session'): SessionView {
  return {
    sessionId, title, mode, model, busy: false, promptPending: false, blocks: [], lastSeq: 0, permissions: [],
    requestStart: 0, usage: { input: 0, output: 0 }, todos: [], turnModels: [], subagents: {},
  };
}

export function reduce(state: ChatState, action: ChatAction): ChatState {
  switch (action.type) {
    case 'session': {
      const existing = state.sessions[action.sessionId];
      const view = existing
        ? { ...existing, mode: action.mode, model: action.model }
        : newSession(action.sessionId, action.mode, action.model, action.title);
      const order = existing ? state.order : [action.sessionId, ...state.order];
      return { ...state, sessions: { ...state.sessions, [action.sessionId]: view }, order, activeSessionId: action.sessionId };
    }
    case 'activate':
      return state.sessions[action.sessionId] ? { ...state, activeSessionId: action.sessionId } : state;
    case 'permissionRequested':
      return update(state, action.request.sessionId, (s) => patchTool(
        { ...s, permissions: [...s.permissions, action.request] },
        action.request.toolUseId, { status: 'waiting', permission: { reason: action.request.reason } }));
    case 'permissionAnswered': {
      const owner = Object.values(state.sessions).find((s) => s.permissions.some((p) => p.requestId === action.requestId));
      if (!owner) return state;
      const request = owner.permissions.find((p) => p.requestId === action.requestId)!;
      return update(state, owner.sessionId, (s) => patchTool(
        { ...s, permissions: s.permissions.filter((p) => p.requestId !== action.requestId) }, request.toolUseId,
        { status: action.decision === 'allow' ? 'running' : 'error',
          permission: { reason: request.reason, answered: action.decision, source: 'user' } }));
    }
    case 'permissionWithdrawn': {
      const owner = Object.values(state.sessions).find((s) => s.permissions.some((p) => p.requestId === action.requestId));
      if (!owner) return state;
      const request = owner.permissions.find((p) => p.requestId === action.requestId)!;
      // The call goes on as the server decides (its permission_decided / tool_result follow).
      return update(state, owner.sessionId, (s) => patchTool(
        { ...s, permissions: s.permissions.filter((p) => p.requestId !== action.requestId) }, request.toolUseId,
        (b) => b.permission?.answered ? {}
          : { status: b.status === 'waiting' ? 'running' : b.status, permission: { reason: request.reason, withdrawn: true } }));
    }
    case 'userPrompt':
      return update(state, action.sessionId, (s) => ({
        ...s, title: s.blocks.length ? s.title : titleOf(action.text),
        blocks: [...s.blocks, { kind: 'text', role: 'user', text: action.text }],
      }));
    case 'mode':
      return update(state, action.sessionId, (s) => ({ ...s, mode: action.mode }));
    case 'model':
      return update(state, action.sessionId, (s) => ({ ...s, model: action.model }));
    case 'context':
      return update(state, action.sessionId, (s) => ({ ...s, context: action.context }));
    case 'busy':
      return update(state, action.sessionId, (s) => ({ ...s, busy: action.busy, promptPending: action.busy }));
    case 'notice':
      return update(state, action.sessionId, (s) => ({
        ...s, blocks: [...s.blocks, { kind: 'notice', level: action.level, text: action.text }],
      }));
    case 'event':
      return applyEvent(state, action.event);
    case 'history': case 'title': case 'forget':
      return reduceSaved(state, action, newSession);
  }
}

function update(state: ChatState, sessionId: string, fn: (s: SessionView) => SessionView): ChatState {
  const s = state.sessions[sessionId];
  if (!s) return state;
  return { ...state, sessions: { ...state.sessions, [sessionId]: fn(s) } };
}

/** Prompts the editor writes for the user ("Fix with agent" ...) and the title each gets. */
const EDITOR_PROMPTS: [RegExp, (m: RegExpExecArray) => string][] = [
  [/^Fix this problem the editor reports: (.*)/, (m) => `Fix: ${m[1]}`],
  [/^Explain what the selected code does/, () => 'Explain the selection'],
];

/** A session's title: the user's first words, or what the editor asked for them. */
export function titleOf(text: string): string {
  const first = text.trim().split('\n')[0] ?? '';
  const known = EDITOR_PROMPTS.map(([re, title]) => { const m = re.exec(first); return m && title(m); }).find(Boolean);
  const line = (known || first).trim();
  return line.length > 48 ? `${line.slice(0, 47)}…` : line || 'New session';
}

function applyEvent(state: ChatState, event: AgentEvent): ChatState {
  let next = state;
  if (!state.sessions[event.sessionId]) {
    // A session started elsewhere ("Fix with agent", the watcher): list it, but a background
    // session must not take the panel from the one the user is in (the command's result does).
    next = reduce(state, { type: 'session', sessionId: event.sessionId, mode: 'default', model: '' });
    const active = state.activeSessionId;
    if (active && state.sessions[active]) next = { ...next, activeSessionId: active };
  }
  const session = next.sessions[event.sessionId];
  if (event.seq <= session.lastSeq) return next; // a duplicate or stale event
  return update(next, event.sessionId, (s) => applySessionEvent({ ...s, lastSeq: event.seq }, event));
}

function applySessionEvent(s: SessionView, event: AgentEvent): SessionView {
  const child = childEvent(s, event);
  if (child) return child;
  switch (event.type) {
    case 'turn_started': {
      if (event.trigger === 'stop_hook') {
        const blocks: Block[] = [...s.blocks, { kind: 'continuation', reason: stopHookReason(event.prompt) }];
        return { ...s, busy: true, blocks, requestStart: blocks.length };
      }
      // Turns started from the editor ("Fix with agent") have no prompt typed in the panel.
      const last = s.blocks[s.blocks.length - 1];
      const typed = last?.kind === 'text' && last.role === 'user';
      const turn = (s.turns ?? s.blocks.filter((b) => b.kind === 'text' && b.role === 'user').length - (typed ? 1 : 0)) + 1;
      const prompt: TextBlock = { kind: 'text', role: 'user', text: typed ? last.text : event.prompt, turn };
      const blocks: Block[] = typed ? [...s.blocks.slice(0, -1), prompt] : [...s.blocks, prompt];
      const title = s.blocks.length || typed ? s.title : titleOf(event.prompt);
      return { ...s, busy: true, blocks, title, requestStart: blocks.length, turnModels: [], turnCostUsd: undefined, turns: turn };
    }
    case 'model_request':
      return { ...s, model: event.model || s.model, requestStart: s.blocks.length,
        turnModels: event.model && !s.turnModels.includes(event.model) ? [...s.turnModels, event.model] : s.turnModels };
    case 'text_delta':
      return { ...s, retrying: undefined, blocks: appendText(s.retrying ? withoutRetries(s.blocks) : s.blocks, event.text) };
    case 'tool_call_started':
      return { ...s, blocks: [...s.blocks, { kind: 'tool', toolUseId: event.toolUseId, name: event.name, status: 'streaming' }] };
    case 'tool_input_complete':
      return patchTool(s, event.toolUseId, { input: event.input });
    case 'tool_execution_started':
      return patchTool(s, event.toolUseId, { status: 'running' });
    case 'permission_asked':
      return patchTool(s, event.toolUseId, (t) => ({ status: t.permission?.answered ? t.status : 'waiting', permission: t.permission ?? { reason: event.reason } }));
    case 'permission_decided':
      return patchTool(s, event.toolUseId, (t) => ({
        status: event.decision === 'deny' ? 'error' : t.status === 'waiting' ? 'running' : t.status,
        permission: { reason: t.permission?.reason ?? '', answered: event.decision, source: event.source,
          ...(event.message ? { message: event.message } : {}) },
      }));
    case 'tool_result':
      return patchTool(s, event.toolUseId, { status: event.isError ? 'error' : 'done', result: event.content,
        ...(event.startedAt ? { startedAt: event.startedAt, finishedAt: event.finishedAt } : {}) });
    case 'proposal_created': {
      // The proposal also lives in its tool card (Edit, Write), which shows its diff and state.
      const linked = patchTool(s, event.toolUseId, { proposalId: event.proposalId });
      const by = event.agentId ? s.subagents[event.agentId] : undefined;
      return { ...linked, blocks: [...linked.blocks, {
        kind: 'proposal', proposalId: event.proposalId, files: event.files, autoApply: event.autoApply,
        status: 'pending', accepted: [], rejected: [], ...(by ? { agent: agentLabel(by) } : {}),
      }] };
    }
    case 'auto_decision':
      return patchTool(s, event.toolUseId, { auto: {
        decision: event.decision, reason: event.reason, cached: event.cached, ...(event.error ? { error: event.error } : {}) } });
    case 'subagent_started': {
      const agentId = event.agentId ?? '';
      const known = s.subagents[agentId];
      return { ...s, subagents: { ...s.subagents, [agentId]: {
        ...known, agentId, parentToolUseId: event.parentToolUseId ?? known?.parentToolUseId ?? '', agentType: event.agentType,
        description: event.description, model: event.model, status: 'running', blocks: known?.blocks ?? [],
        usage: known?.usage ?? { input: 0, output: 0 }, ...(event.name ? { name: event.name } : {}),
      } } };
    }
    case 'subagent_ended':
      return patchChild(s, event.agentId ?? '', event.parentToolUseId, () => ({
        status: SUBAGENT_END[event.stopReason] ?? 'failed', stopReason: event.stopReason, rounds: event.rounds, usd: event.usd,
        usage: { input: event.usage.inputTokens + event.usage.cacheReadInputTokens + event.usage.cacheCreationInputTokens, output: event.usage.outputTokens },
      }));
    case 'proposal_resolved':
      return { ...s, blocks: s.blocks.map((b) => b.kind === 'proposal' && b.proposalId === event.proposalId
        ? { ...b, status: event.status, accepted: event.accepted, rejected: event.rejected } : b) };
    case 'usage':
      return { ...s, model: event.model || s.model, usage: {
        input: s.usage.input + event.usage.inputTokens + event.usage.cacheReadInputTokens + event.usage.cacheCreationInputTokens,
        output: s.usage.output + event.usage.outputTokens,
      } };
    case 'retrying': {
      // Said at once, with the reason: a connection failure names the endpoint and offers its setting.
      const endpoint = isConnectionFailure(event.reason);
      const reason = event.reason.replace(/\.\s*$/, '');
      return { ...s, retrying: { attempt: event.attempt, delaySeconds: event.delaySeconds, reason: event.reason },
        blocks: [...withoutRetries(s.blocks.slice(0, s.requestStart)), { kind: 'notice', level: endpoint ? 'error' : 'warning', endpoint, retry: true,
          text: `${endpoint ? 'Cannot reach the model endpoint' : 'The model request failed'}: ${reason}. ` +
            `Retrying in ${event.delaySeconds}s (attempt ${event.attempt}).`,
          actions: endpoint ? ['settings'] : [] }] };
    }
    case 'model_fallback':
      return { ...s, model: event.toModel, blocks: [...s.blocks.slice(0, s.requestStart), { kind: 'notice', level: 'warning',
        text: `Switched to ${event.toModel}: ${event.reason}` }] };
    case 'error':
      return { ...s, retrying: undefined, blocks: [...withoutRetries(s.blocks), errorNotice(event.kind, event.message)] };
    case 'cost':
      return { ...s, costUsd: event.session.usd, turnCostUsd: event.turn.usd };
    case 'context_pressure':
      return { ...s, context: { ...s.context, totalTokens: event.usedTokens, windowTokens: event.windowTokens, ratio: event.ratio } };
    case 'todos_updated':
      return { ...s, todos: validTodos(event.todos) };
    case 'turn_ended': {
      // A Stop hook may start another turn of the same prompt: the prompt's answer ends the work.
      const said = STOP_WORDS[event.stopReason];
      const last = s.blocks[s.blocks.length - 1];
      const erred = event.stopReason === 'error' && last?.kind === 'notice' && last.level === 'error'; // said already
      const notice: Block[] = said && !erred ? [{ kind: 'notice', level: event.stopReason === 'error' ? 'error' : 'info', text: said,
        ...(event.stopReason === 'error' ? { actions: ['retry'] as NoticeAction[] } : {}) }] : [];
      const summary: TurnSummary = {
        kind: 'turn', models: s.turnModels, stopReason: event.stopReason,
        inputTokens: event.usage.inputTokens + event.usage.cacheReadInputTokens + event.usage.cacheCreationInputTokens,
        outputTokens: event.usage.outputTokens, cacheReadTokens: event.usage.cacheReadInputTokens,
        ...(s.turnCostUsd !== undefined ? { usd: s.turnCostUsd } : {}),
      };
      const answered = s.turnModels.length > 0 && (summary.inputTokens > 0 || summary.outputTokens > 0);
      // An MCP server's approval is asked outside the turn (at its first prompt): it stays open.
      return { ...s, busy: s.promptPending, permissions: s.permissions.filter((p) => p.toolUseId.startsWith(MCP_APPROVAL)), retrying: undefined,
        blocks: [...s.blocks, ...notice, ...(answered ? [summary] : [])] };
    }
    default:
      return s;
  }
}

/** The toolUseId prefix of the question about starting a project's MCP server (docs/protocol.md). */
export const MCP_APPROVAL = 'mcp-approval-';

/** How a turn that did not simply end is told to the user (end_turn says nothing). */
const STOP_WORDS: Record<string, string> = {
  cancelled: 'Stopped by you.',
  error: 'The turn stopped because of an error.',
  max_turns: 'Stopped: the turn used all the tool rounds it may use.',
  refusal: 'The model declined to answer.',
};

/** Error kinds of the server (ModelFailure) and what the panel offers for each. */
const ERROR_ACTIONS: Record<string, NoticeAction[]> = {
  auth: ['apiKey', 'settings'],
  not_found: ['settings', 'retry'],
  rate_limited: ['retry'],
};

export function isConnectionFailure(reason: string): boolean {
  return /connection|connect|unreachable|timed out|timeout|name resolution|ECONNREFUSED/i.test(reason);
}

function withoutRetries(blocks: Block[]): Block[] {
  return blocks.filter((b) => !(b.kind === 'notice' && b.retry));
}

function errorNotice(kind: string, message: string): NoticeBlock {
  const endpoint = isConnectionFailure(message);
  if (endpoint) return { kind: 'notice', level: 'error', endpoint, text: `Cannot reach the model endpoint: ${message}`, actions: ['retry', 'settings'] };
  if (kind === 'auth') return { kind: 'notice', level: 'error', text: `The model endpoint refused the API key: ${message.replace(/^The model endpoint refused the credentials: /, '').replace(/\. Check the API key\.$/, '')}`, actions: ERROR_ACTIONS.auth };
  return { kind: 'notice', level: 'error', text: message, actions: ERROR_ACTIONS[kind] ?? ['retry'] };
}

/** The hook's reason, without the wrapper the model sees. */
function stopHookReason(prompt: string): string {
  const inner = /<stop-hook-feedback>([\s\S]*?)(?:<\/stop-hook-feedback>|$)/.exec(prompt)?.[1] ?? prompt;
  const lines = inner.trim().split('\n');
  // The first line tells the model what a Stop hook is; the user configured it and knows.
  const reason = lines.length > 1 && /Stop hook/.test(lines[0]) ? lines.slice(1).join('\n') : inner;
  return reason.trim();
}

function validTodos(todos: unknown): TodoItem[] {
  if (!Array.isArray(todos)) return [];
  return todos.filter((t) => t && typeof t.content === 'string').map((t) => ({
    content: t.content,
    status: TODO_STATUSES.includes(t.status) ? t.status : 'pending',
    ...(typeof t.activeForm === 'string' && t.activeForm ? { activeForm: t.activeForm } : {}),
  }));
}

function appendText(blocks: Block[], text: string): Block[] {
  const last = blocks[blocks.length - 1];
  if (last && last.kind === 'text' && last.role === 'assistant') {
    return [...blocks.slice(0, -1), { ...last, text: last.text + text }];
  }
  return [...blocks, { kind: 'text', role: 'assistant', text }];
}

type ToolPatch = Partial<ToolCard> | ((t: ToolCard) => Partial<ToolCard>);

/** Patch the tool card with this id, in the main transcript or inside a subagent's card. */
function patchTool(s: SessionView, toolUseId: string, patch: ToolPatch): SessionView {
  const has = (blocks: Block[]) => blocks.some((b) => b.kind === 'tool' && b.toolUseId === toolUseId);
  const apply = (blocks: Block[]) => blocks.map((b) => {
    if (b.kind !== 'tool' || b.toolUseId !== toolUseId) return b;
    return { ...b, ...(typeof patch === 'function' ? patch(b) : patch) };
  });
  const owner = Object.values(s.subagents ?? {}).find((c) => has(c.blocks));
  if (owner) return { ...s, subagents: { ...s.subagents, [owner.agentId]: { ...owner, blocks: apply(owner.blocks) } } };
  return has(s.blocks) ? { ...s, blocks: apply(s.blocks) } : s;
}

// -- subagents -------------------------------------------------------------------------------

const SUBAGENT_END: Record<string, SubagentStatus> = { end_turn: 'done', cancelled: 'cancelled', max_turns: 'failed', error: 'failed', refusal: 'failed' };

/** How the panel names a child: its name, else its type. */
export function agentLabel(a: Pick<SubagentView, 'name' | 'agentType'>): string {
  return a.name || a.agentType;
}

function patchChild(s: SessionView, agentId: string, parentToolUseId: string | undefined,
  fn: (c: SubagentView) => Partial<SubagentView>): SessionView {
  // Events that come before subagent_started (none should) still get a card to live in.
  const c: SubagentView = s.subagents[agentId] ?? {
    agentId, parentToolUseId: parentToolUseId ?? '', agentType: 'agent', description: '', status: 'running', blocks: [], usage: { input: 0, output: 0 },
  };
  return { ...s, subagents: { ...s.subagents, [agentId]: { ...c, ...fn(c) } } };
}

/**
 * A child agent's event, which belongs in its card, not in the main transcript. Undefined for
 * events that are handled as the main agent's (tool events patch the card wherever it is).
 */
function childEvent(s: SessionView, event: AgentEvent): SessionView | undefined {
  const agentId = 'agentId' in event ? event.agentId : undefined;
  if (!agentId) return undefined;
  const parent = 'parentToolUseId' in event ? event.parentToolUseId : undefined;
  switch (event.type) {
    case 'text_delta':
      return patchChild(s, agentId, parent, (c) => ({ blocks: appendText(c.blocks, event.text) }));
    case 'tool_call_started':
      return patchChild(s, agentId, parent, (c) => ({ blocks: [...c.blocks, { kind: 'tool', toolUseId: event.toolUseId, name: event.name, status: 'streaming', agentId }] }));
    case 'model_request':
      return patchChild(s, agentId, parent, (c) => ({ model: event.model || c.model }));
    case 'usage': {
      const input = event.usage.inputTokens + event.usage.cacheReadInputTokens + event.usage.cacheCreationInputTokens;
      const withChild = patchChild(s, agentId, parent, (c) => ({ usage: { input: c.usage.input + input, output: c.usage.output + event.usage.outputTokens } }));
      return { ...withChild, usage: { input: s.usage.input + input, output: s.usage.output + event.usage.outputTokens } };
    }
    case 'error':
      return patchChild(s, agentId, parent, (c) => ({ blocks: [...c.blocks, { kind: 'notice', level: event.recoverable ? 'warning' : 'error', text: event.message }] }));
    case 'turn_started': case 'turn_ended': case 'cost': case 'retrying': case 'model_fallback':
    case 'context_pressure': case 'compact_boundary': case 'todos_updated':
      return s; // the child's own bookkeeping: the main transcript and plan stay as they are
    default:
      return undefined;
  }
}

/** Whether a tool card with this id is shown, in the main transcript or in a child's card. */
export function hasToolCard(session: SessionView, toolUseId: string): boolean {
  const has = (blocks: Block[]) => blocks.some((b) => b.kind === 'tool' && b.toolUseId === toolUseId);
  return has(session.blocks) || Object.values(session.subagents ?? {}).some((c) => has(c.blocks));
}

/** The child agent an Agent call started, if any. */
export function subagentOf(session: SessionView, toolUseId: string): SubagentView | undefined {
  return Object.values(session.subagents ?? {}).find((c) => c.parentToolUseId === toolUseId);
}

/**
 * The transcript saved in workspaceState, ready to show again. The sessions' server is gone, so
 * nothing is running or waiting; fields added since the state was saved get their defaults.
 */
export function restoreState(saved: unknown): ChatState {
  const raw = saved as Partial<ChatState> | undefined;
  if (!raw || typeof raw !== 'object' || !raw.sessions || !Array.isArray(raw.order)) return emptyState();
  const sessions: Record<string, SessionView> = {};
  for (const [id, s] of Object.entries(raw.sessions)) {
    sessions[id] = {
      ...newSession(id, s.mode, s.model, s.title), ...s,
      busy: false, promptPending: false, permissions: [], todos: validTodos(s.todos), turnModels: [], retrying: undefined,
      // The server those children ran in is gone: one still running was stopped with it.
      subagents: Object.fromEntries(Object.entries(s.subagents ?? {}).map(([id, c]) =>
        [id, c.status === 'running' ? { ...c, status: 'cancelled' as const } : c])),
    };
  }
  return { ...raw, sessions, order: raw.order.filter((id) => sessions[id]) };
}

/** The line to show while the agent works: its current todo's activeForm, if any. */
export function currentActivity(session: SessionView): string | undefined {
  const doing = session.todos.find((t) => t.status === 'in_progress');
  return doing ? doing.activeForm ?? doing.content : undefined;
}

/** One vocabulary for the status bar, the panel and the cards. */
export type SessionStatus = 'permission' | 'review' | 'running' | 'idle';
export const STATUS_TEXT: Record<SessionStatus, string> = {
  permission: 'Waiting for your permission',
  review: 'Waiting for your review',
  running: 'Working',
  idle: 'Idle',
};

/** A proposal waiting for the user's verdict. */
export function awaitsReview(b: Block): b is ProposalBlock {
  return b.kind === 'proposal' && b.status === 'pending' && !b.autoApply;
}

/** What one session waits for: the user before the agent. */
export function sessionStatus(s: SessionView): SessionStatus {
  if (s.permissions.length > 0) return 'permission';
  if (s.blocks.some(awaitsReview)) return 'review';
  return s.busy ? 'running' : 'idle';
}

const STATUS_ORDER: SessionStatus[] = ['permission', 'review', 'running', 'idle'];

/** What the status bar shows: the most urgent status of any session. */
export function overallStatus(state: ChatState): SessionStatus {
  const all = Object.values(state.sessions).map(sessionStatus);
  return STATUS_ORDER.find((st) => all.includes(st)) ?? 'idle';
}

/** A one-line summary of a tool call's input for its card header. */
export function toolSummary(name: string, input: Record<string, unknown> | undefined): string {
  if (!input) return '';
  if (name === 'TodoWrite' && Array.isArray(input.todos)) {
    const todos = validTodos(input.todos);
    return `${todos.length} item${todos.length === 1 ? '' : 's'}, ${todos.filter((t) => t.status === 'completed').length} done`;
  }
  const pick = ['command', 'path', 'pattern', 'query', 'symbol', 'url'].find((k) => typeof input[k] === 'string');
  const value = pick ? String(input[pick]) : JSON.stringify(input);
  const line = value.split('\n')[0];
  return line.length > 80 ? `${line.slice(0, 79)}…` : line;
}
