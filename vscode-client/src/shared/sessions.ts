// Saved sessions (protocol 1.1, docs/protocol.md "agent/listSessions" ... "agent/rewind"): the
// results the server builds as plain dicts, typed by hand from the doc, and the Sessions view's
// model (pages merged, a title filter, the text of each row). Pure: unit-tested without VS Code.

export const SessionMethods = {
  listSessions: 'agent/listSessions',
  resumeSession: 'agent/resumeSession',
  sessionHistory: 'agent/sessionHistory',
  forkSession: 'agent/forkSession',
  renameSession: 'agent/renameSession',
  deleteSession: 'agent/deleteSession',
  promptHistory: 'agent/promptHistory',
  checkpoints: 'agent/checkpoints',
  rewind: 'agent/rewind',
} as const;

/** One row of `agent/listSessions`. */
export interface SavedSession {
  sessionId: string;
  title?: string | null;
  createdAt?: string;
  updatedAt?: string;
  turns?: number;
  model?: string | null;
  costUsd?: number;
  gitBranch?: string | null;
  /** A process (this server or another) has it open. */
  live?: boolean;
  /** This server has it open. */
  open?: boolean;
  busy?: boolean;
  forkedFrom?: { sessionId: string; beforeTurn?: number } | null;
  /** It cannot be read (a newer format). */
  error?: string;
}

export interface ListSessionsResult { sessions: SavedSession[]; total?: number; nextOffset: number | null }

/** A transcript entry as `agent/sessionHistory` returns it (docs/sessions.md, "The transcript"). */
export interface HistoryEntry {
  uuid: string;
  parentUuid?: string | null;
  sessionId?: string;
  timestamp?: string;
  type: string;
  [field: string]: unknown;
}

export interface SessionHistoryResult { entries: HistoryEntry[]; nextBefore: string | null }

export interface CheckpointFile { path: string; existed: boolean; notRestorable?: string | boolean }
export interface Checkpoint { turn: number; prompt: string; timestamp?: string; files: CheckpointFile[] }
export interface CheckpointsResult { checkpoints: Checkpoint[] }

export type RestoreWhat = 'code' | 'conversation' | 'both';
export interface RewindResult {
  turn: number;
  restored: string[];
  notRestored: { path: string; reason: string }[];
  conflicts: { path: string; reason: string }[];
  conversation?: boolean;
}

export const PAGE_SIZE = 50;

/** The sessions loaded so far (page after page) and the title filter. */
export interface SessionList {
  items: SavedSession[];
  /** `offset` of the next page; null once the last page is in. */
  nextOffset: number | null;
  total?: number;
  filter: string;
  loaded: boolean;
}

export const emptyList = (filter = ''): SessionList => ({ items: [], nextOffset: 0, filter, loaded: false });

/** Add a page: rows already listed (a session that moved up meanwhile) are not shown twice. */
export function addPage(list: SessionList, page: ListSessionsResult): SessionList {
  const seen = new Set(list.items.map((s) => s.sessionId));
  const fresh = page.sessions.filter((s) => s && typeof s.sessionId === 'string' && !seen.has(s.sessionId));
  return { ...list, items: [...list.items, ...fresh], nextOffset: page.nextOffset ?? null, total: page.total, loaded: true };
}

/** The rows to show: those whose title holds every word of the filter (any case), newest first. */
export function visibleSessions(list: SessionList): SavedSession[] {
  const words = list.filter.toLowerCase().split(/\s+/).filter(Boolean);
  const shown = words.length ? list.items.filter((s) => words.every((w) => sessionTitle(s).toLowerCase().includes(w))) : list.items;
  return [...shown].sort((a, b) => (b.updatedAt ?? '').localeCompare(a.updatedAt ?? ''));
}

export function sessionTitle(s: SavedSession): string {
  return s.title?.trim() || 'Untitled session';
}

const UNITS: [number, string][] = [[60, 'second'], [60, 'minute'], [24, 'hour'], [7, 'day'], [4.35, 'week'], [12, 'month'], [Infinity, 'year']];

/** "just now", "5 minutes ago", "3 days ago". */
export function relativeTime(iso: string | undefined, now: number): string {
  const then = iso ? Date.parse(iso) : NaN;
  if (Number.isNaN(then)) return '';
  let amount = Math.max(0, (now - then) / 1000);
  if (amount < 45) return 'just now';
  for (const [size, unit] of UNITS) {
    if (amount < size) {
      const n = Math.round(amount);
      return `${n} ${unit}${n === 1 ? '' : 's'} ago`;
    }
    amount /= size;
  }
  return '';
}

export function formatUsd(usd: number | undefined): string {
  if (usd === undefined || !Number.isFinite(usd)) return '';
  return usd >= 0.01 || usd === 0 ? `$${usd.toFixed(2)}` : '<$0.01';
}

/** The row's text: title, then time · turns · cost; the tooltip says it all in words. */
export function sessionRow(s: SavedSession, now: number): { label: string; description: string; tooltip: string } {
  const label = sessionTitle(s);
  const when = relativeTime(s.updatedAt ?? s.createdAt, now);
  const turns = s.turns !== undefined ? `${s.turns} turn${s.turns === 1 ? '' : 's'}` : '';
  const cost = formatUsd(s.costUsd);
  const state = s.error ? 'cannot be read' : s.busy ? 'working' : s.open ? 'open' : s.live ? 'open elsewhere' : '';
  const description = [when, turns, cost, state].filter(Boolean).join(' · ');
  const tooltip = [
    label,
    s.updatedAt ? `Last active ${when} (${s.updatedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')})` : '',
    turns ? `${turns}${cost ? `, cost ${cost}` : ''}` : '',
    s.model ? `Model: ${s.model}` : '',
    s.gitBranch ? `Branch: ${s.gitBranch}` : '',
    s.forkedFrom ? `Forked from ${s.forkedFrom.sessionId}${s.forkedFrom.beforeTurn ? ` before turn ${s.forkedFrom.beforeTurn}` : ''}` : '',
    s.error ? `Error: ${s.error}` : '',
    s.live && !s.open ? 'Open in another lsp-agent process' : '',
  ].filter(Boolean).join('\n');
  return { label, description, tooltip };
}

/** The files a restore to the checkpoint before `turn` puts back: those of that turn and after. */
export function filesFrom(checkpoints: Checkpoint[], turn: number): CheckpointFile[] {
  const byPath = new Map<string, CheckpointFile>();
  for (const cp of [...checkpoints].sort((a, b) => a.turn - b.turn)) {
    if (cp.turn < turn) continue;
    for (const f of cp.files ?? []) if (!byPath.has(f.path)) byPath.set(f.path, f);
  }
  return [...byPath.values()].sort((a, b) => a.path.localeCompare(b.path));
}

/** What a rewind did, in one sentence per part (said in the chat). */
export function rewindSummary(result: RewindResult, what: RestoreWhat): { level: 'info' | 'warning'; text: string } {
  const parts: string[] = [];
  if (what !== 'conversation') {
    parts.push(result.restored.length ? `Restored ${result.restored.join(', ')}.` : 'No file needed restoring.');
    if (result.notRestored.length) parts.push(`Not restored: ${result.notRestored.map((f) => `${f.path} (${f.reason})`).join('; ')}.`);
    if (result.conflicts.length) parts.push(`Left alone, you changed them too: ${result.conflicts.map((f) => `${f.path} (${f.reason})`).join('; ')}.`);
  }
  if (what !== 'code') parts.push(result.conversation === false ? 'The conversation was not rewound.' : `The conversation goes on from before message ${result.turn}.`);
  const level = result.notRestored.length || result.conflicts.length || result.conversation === false ? 'warning' : 'info';
  return { level, text: `Checkpoint before message ${result.turn}: ${parts.join(' ')}` };
}
