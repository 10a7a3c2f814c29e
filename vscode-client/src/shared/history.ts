// A saved session's transcript (agent/sessionHistory pages) turned back into the chat's blocks,
// and the chat-state changes that come with saved sessions: show a resumed session's history,
// prepend an older page, rename, forget a deleted session. Pure: unit-tested without VS Code.

import type { Block, ChatState, NoticeBlock, ProposalBlock, SessionView, TextBlock, ToolCard, TurnSummary } from './chatState';
import type { Mode, ProposalFile, ProposalHunk, TodoItem } from './protocol';
import type { HistoryEntry } from './sessions';

/** The history loaded so far: entries oldest first, and the cursor of the next older page. */
export interface LoadedHistory {
  entries: HistoryEntry[];
  nextBefore: string | null;
  /** The session's number of turns (from agent/resumeSession): numbers the prompts of a partial history. */
  turns?: number;
}

/** Merge a page (newest first, as the server sends it) into what is loaded. */
export function addHistoryPage(loaded: LoadedHistory | undefined, page: { entries: HistoryEntry[]; nextBefore: string | null }, turns?: number): LoadedHistory {
  const older = [...page.entries].reverse();
  const known = new Set(loaded?.entries.map((e) => e.uuid));
  return {
    entries: [...older.filter((e) => !known.has(e.uuid)), ...(loaded?.entries ?? [])],
    nextBefore: page.nextBefore,
    turns: turns ?? loaded?.turns,
  };
}

export interface HistoryView {
  blocks: Block[];
  todos: TodoItem[];
  costUsd?: number;
  /** Turns on the current branch that the loaded entries hold or follow. */
  turns: number;
}

/** The words said for a turn that did not simply end (as the live chat says them). */
const STOP_WORDS: Record<string, string> = {
  cancelled: 'Stopped by you.',
  error: 'The turn stopped because of an error.',
  max_turns: 'Stopped: the turn used all the tool rounds it may use.',
  refusal: 'The model declined to answer.',
  interrupted: 'The session ended during this turn.',
};

type Converter = (entry: HistoryEntry, out: Builder) => void;

interface Builder {
  blocks: Block[];
  tools: Map<string, ToolCard>;
  proposals: Map<string, ProposalBlock>;
  proposalOfCall: Map<string, string>;
  turnModels: string[];
  todos: TodoItem[];
  costUsd?: number;
  nextTurn: number;
}

/** What each entry type adds to the chat (types not listed show nothing: usage, title, ...). */
const CONVERTERS: Record<string, Converter> = {
  user: (e, out) => {
    const prompt = str(e.prompt);
    if (e.origin === 'stop_hook') { out.blocks.push({ kind: 'continuation', reason: stopHookReason(prompt) }); return; }
    if (e.origin === 'agent') return;
    out.turnModels = [];
    const block: TextBlock = { kind: 'text', role: 'user', text: prompt, turn: out.nextTurn++ };
    out.blocks.push(block);
  },
  assistant: (e, out) => {
    const message = (e.message ?? {}) as { content?: unknown; model?: unknown };
    const model = str(message.model);
    if (model && !out.turnModels.includes(model)) out.turnModels.push(model);
    for (const b of asBlocks(message.content)) {
      if (b.type === 'text' && str(b.text)) appendAssistantText(out.blocks, str(b.text));
      if (b.type === 'tool_use') {
        const card: ToolCard = { kind: 'tool', toolUseId: str(b.id), name: str(b.name), input: (b.input ?? {}) as Record<string, unknown>, status: 'error',
          result: 'The session ended before this finished.' };
        out.tools.set(card.toolUseId, card);
        out.blocks.push(card);
      }
    }
  },
  tool_result: (e, out) => {
    const message = (e.message ?? {}) as { content?: unknown };
    const times = new Map(asBlocks(e.results).map((r) => [str(r.toolUseId), r]));
    for (const b of asBlocks(message.content)) {
      const card = b.type === 'tool_result' ? out.tools.get(str(b.tool_use_id)) : undefined;
      if (!card) continue;
      const t = times.get(card.toolUseId);
      card.status = b.is_error ? 'error' : 'done';
      card.result = resultText(b.content);
      if (t && typeof t.startedAt === 'number' && typeof t.finishedAt === 'number') { card.startedAt = t.startedAt; card.finishedAt = t.finishedAt; }
    }
  },
  proposal: (e, out) => {
    const files = asBlocks(e.files).map(proposalFile);
    const block: ProposalBlock = { kind: 'proposal', proposalId: str(e.proposalId), files, autoApply: false, status: 'cancelled', accepted: [], rejected: [] };
    out.proposals.set(block.proposalId, block);
    // The proposal is recorded while its call runs, before the answer holding the call: linked at the end.
    out.proposalOfCall.set(str(e.toolUseId), block.proposalId);
    out.blocks.push(block);
  },
  proposal_decision: (e, out) => {
    const block = out.proposals.get(str(e.proposalId));
    if (!block) return;
    block.status = str(e.status) || block.status;
    block.accepted = strings(e.accepted);
    block.rejected = strings(e.rejected);
  },
  turn_end: (e, out) => {
    const stop = str(e.stopReason);
    const usage = (e.usage ?? {}) as Record<string, unknown>;
    // Token counts by their Messages-API names or the events' camelCase ones (the server writes either).
    const n = (k: string) => [k, camel(k)].map((key) => usage[key]).find((v): v is number => typeof v === 'number') ?? 0;
    if (STOP_WORDS[stop]) out.blocks.push({ kind: 'notice', level: stop === 'error' ? 'error' : 'info', text: STOP_WORDS[stop] });
    const sessionCost = (e.sessionCost ?? {}) as { usd?: unknown };
    const total = typeof sessionCost.usd === 'number' ? sessionCost.usd : undefined;
    // The turn's cost: its own figure, else what the session's running total grew by.
    const usd = typeof e.costUsd === 'number' && e.costUsd > 0 ? e.costUsd
      : total !== undefined ? Math.max(0, total - (out.costUsd ?? 0)) : undefined;
    const summary: TurnSummary = {
      kind: 'turn', models: out.turnModels, stopReason: stop,
      inputTokens: n('input_tokens') + n('cache_read_input_tokens') + n('cache_creation_input_tokens'),
      outputTokens: n('output_tokens'), cacheReadTokens: n('cache_read_input_tokens'),
      ...(usd !== undefined ? { usd } : {}),
    };
    if (out.turnModels.length && (summary.inputTokens || summary.outputTokens)) out.blocks.push(summary);
    if (total !== undefined) out.costUsd = total;
    out.turnModels = [];
  },
  todos: (e, out) => { out.todos = asBlocks(e.todos).filter((t) => typeof t.content === 'string') as unknown as TodoItem[]; },
  system: (e, out) => {
    const level = (['info', 'warning', 'error'] as const).find((l) => l === e.level) ?? 'info';
    if (str(e.message)) out.blocks.push({ kind: 'notice', level, text: str(e.message) } satisfies NoticeBlock);
  },
  compact_boundary: (e, out) => {
    const before = typeof e.tokensBefore === 'number' ? e.tokensBefore : undefined;
    const after = typeof e.tokensAfter === 'number' ? e.tokensAfter : undefined;
    const sizes = before !== undefined && after !== undefined ? ` (${before} → ${after} tokens)` : '';
    out.blocks.push({ kind: 'notice', level: 'info', text: `The conversation was compacted here${sizes}; the agent sees a summary of what came before.` });
  },
};

/**
 * The chat's blocks for the loaded entries (oldest first). Prompts are numbered from 1 when the
 * history is complete; a partial one (older pages not loaded) counts back from `turns`.
 */
export function historyView(loaded: LoadedHistory): HistoryView {
  const prompts = loaded.entries.filter(isTurn).length;
  const first = loaded.nextBefore === null || loaded.turns === undefined ? 1 : Math.max(1, loaded.turns - prompts + 1);
  const out: Builder = { blocks: [], tools: new Map(), proposals: new Map(), proposalOfCall: new Map(), turnModels: [], todos: [], nextTurn: first };
  for (const entry of loaded.entries) CONVERTERS[entry.type]?.(entry, out);
  // An Edit or Write card shows its proposal's diff and state (the proposal block then hides).
  for (const [toolUseId, proposalId] of out.proposalOfCall) {
    const card = out.tools.get(toolUseId);
    if (card) card.proposalId = proposalId;
  }
  return { blocks: out.blocks, todos: out.todos, costUsd: out.costUsd, turns: out.nextTurn - 1 };
}

function isTurn(e: HistoryEntry): boolean {
  return e.type === 'user' && (e.origin === undefined || e.origin === 'user');
}

function appendAssistantText(blocks: Block[], text: string): void {
  const last = blocks[blocks.length - 1];
  if (last?.kind === 'text' && last.role === 'assistant') blocks[blocks.length - 1] = { ...last, text: `${last.text}\n\n${text}` };
  else blocks.push({ kind: 'text', role: 'assistant', text });
}

/** A saved diff split into the hunks the chat draws (each starts at its `@@` line). */
function proposalFile(f: Record<string, unknown>): ProposalFile {
  const diff = str(f.diff);
  const hunks: ProposalHunk[] = [];
  for (const line of diff.split('\n')) {
    if (line.startsWith('@@')) hunks.push({ id: `h${hunks.length}`, header: line, diff: line });
    else if (hunks.length && !line.startsWith('--- ') && !line.startsWith('+++ ')) hunks[hunks.length - 1].diff += `\n${line}`;
  }
  return { path: str(f.path), uri: str(f.uri), isNew: !!f.isNew, isDeleted: !!f.isDeleted, diff, hunks };
}

function camel(snake: string): string {
  return snake.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
}

function resultText(content: unknown): string {
  if (typeof content === 'string') return content;
  return asBlocks(content).map((b) => (b.type === 'text' ? str(b.text) : '')).filter(Boolean).join('\n');
}

function stopHookReason(prompt: string): string {
  return (/<stop-hook-feedback>([\s\S]*?)(?:<\/stop-hook-feedback>|$)/.exec(prompt)?.[1] ?? prompt).trim();
}

function asBlocks(value: unknown): Record<string, unknown>[] {
  return Array.isArray(value) ? value.filter((v) => v && typeof v === 'object') : [];
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

// -- chat-state changes of saved sessions -------------------------------------------------------

export type SavedSessionAction =
  /** Show a (resumed) session with its saved history; it becomes the active one. */
  | { type: 'history'; sessionId: string; mode: Mode; model: string; title?: string; history: HistoryView; olderCursor: string | null; activate: boolean }
  | { type: 'title'; sessionId: string; title: string }
  /** A deleted session leaves the panel. */
  | { type: 'forget'; sessionId: string };

export function reduceSaved(state: ChatState, action: SavedSessionAction, fresh: (id: string, mode: Mode, model: string, title?: string) => SessionView): ChatState {
  switch (action.type) {
    case 'history': {
      const existing = state.sessions[action.sessionId] ?? fresh(action.sessionId, action.mode, action.model, action.title);
      const { history } = action;
      // The new server numbers its events from the start: forget the old process's sequence.
      const view: SessionView = {
        ...existing, mode: action.mode, model: action.model || existing.model, title: action.title || existing.title,
        blocks: history.blocks, todos: history.todos, costUsd: history.costUsd ?? existing.costUsd, turns: history.turns,
        olderCursor: action.olderCursor ?? undefined, lastSeq: 0, requestStart: history.blocks.length,
      };
      const order = state.order.includes(action.sessionId) ? state.order : [action.sessionId, ...state.order];
      return { ...state, sessions: { ...state.sessions, [action.sessionId]: view }, order,
        activeSessionId: action.activate ? action.sessionId : state.activeSessionId };
    }
    case 'title': {
      const s = state.sessions[action.sessionId];
      return s ? { ...state, sessions: { ...state.sessions, [action.sessionId]: { ...s, title: action.title } } } : state;
    }
    case 'forget': {
      if (!state.sessions[action.sessionId]) return state;
      const { [action.sessionId]: _gone, ...sessions } = state.sessions;
      return { ...state, sessions, order: state.order.filter((id) => id !== action.sessionId),
        activeSessionId: state.activeSessionId === action.sessionId ? undefined : state.activeSessionId };
    }
  }
}
