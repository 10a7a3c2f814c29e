// How a tool call reads to a person: its outcome in words, workspace-relative paths, a shell
// run's exit code and duration, clickable locations in search and code-intel results, and errors
// without the instructions written for the model. Pure (no DOM, no vscode): unit tested.

import { subagentOf, type AutoDecisionView, type ProposalBlock, type SessionView, type SubagentStatus, type ToolCard } from './chatState';

/** What a card shows as its state: one word, one icon, one colour class. */
export type Outcome =
  | 'preparing' | 'running' | 'permission' | 'review' | 'done' | 'accepted' | 'applied' | 'partial'
  | 'rejected' | 'conflict' | 'denied' | 'failed' | 'cancelled';

export const OUTCOME_VIEW: Record<Outcome, { icon: string; text: string; tone: 'busy' | 'wait' | 'ok' | 'neutral' | 'bad' }> = {
  preparing: { icon: 'loading codicon-modifier-spin', text: 'Preparing', tone: 'busy' },
  running: { icon: 'loading codicon-modifier-spin', text: 'Running', tone: 'busy' },
  permission: { icon: 'shield', text: 'Needs your permission', tone: 'wait' },
  review: { icon: 'eye', text: 'Waiting for your review', tone: 'wait' },
  done: { icon: 'check', text: 'Done', tone: 'ok' },
  accepted: { icon: 'check', text: 'Accepted', tone: 'ok' },
  applied: { icon: 'check', text: 'Applied', tone: 'ok' },
  partial: { icon: 'check', text: 'Partly accepted', tone: 'ok' },
  rejected: { icon: 'discard', text: 'Rejected by you', tone: 'neutral' },
  conflict: { icon: 'warning', text: 'Conflicts with your edits', tone: 'bad' },
  denied: { icon: 'circle-slash', text: 'Denied', tone: 'neutral' },
  failed: { icon: 'error', text: 'Failed', tone: 'bad' },
  cancelled: { icon: 'circle-slash', text: 'Cancelled', tone: 'neutral' },
};

const PROPOSAL_OUTCOME: Record<string, Outcome> = {
  accepted: 'accepted', partially_accepted: 'partial', rejected: 'rejected', conflict: 'conflict',
  cancelled: 'cancelled', failed: 'failed',
};

export function proposalOf(card: ToolCard, session: SessionView): ProposalBlock | undefined {
  if (!card.proposalId) return undefined;
  return session.blocks.find((b): b is ProposalBlock => b.kind === 'proposal' && b.proposalId === card.proposalId);
}

export function outcomeOf(card: ToolCard, session: SessionView): Outcome {
  if (session.permissions.some((p) => p.toolUseId === card.toolUseId)) return 'permission';
  if (card.permission?.answered === 'deny') return 'denied';
  const proposal = proposalOf(card, session);
  if (proposal) {
    if (proposal.autoApply) return 'applied';
    if (proposal.status === 'pending') return 'review';
    return PROPOSAL_OUTCOME[proposal.status] ?? 'done';
  }
  if (card.status === 'streaming') return 'preparing';
  if (card.status === 'running' || card.status === 'waiting') return 'running';
  if (card.status === 'error') return /\bcancel/i.test(card.result ?? '') ? 'cancelled' : 'failed';
  if (card.name === 'Bash' && shellRun(card.result ?? '').exitCode) return 'failed';
  return 'done';
}

const CHILD_OUTCOME: Record<SubagentStatus, Outcome> = { running: 'running', done: 'done', failed: 'failed', cancelled: 'cancelled' };

/**
 * An Agent call's state: the child's. While it runs, what it waits on from the user (a
 * permission, a review) shows on the Agent card, which may be collapsed around it.
 */
export function agentOutcome(card: ToolCard, session: SessionView): Outcome {
  const own = outcomeOf(card, session);
  const child = subagentOf(session, card.toolUseId);
  if (!child || own === 'permission' || own === 'denied') return own;
  const waits = child.blocks.map((b) => (b.kind === 'tool' ? outcomeOf(b, session) : undefined));
  if (waits.includes('permission')) return 'permission';
  if (waits.includes('review')) return 'review';
  if (child.status === 'running') return 'running';
  if (card.status === 'error') return own; // the call itself failed (cancelled, refused)
  return CHILD_OUTCOME[child.status];
}

/** What auto mode's decision on a call reads like, on the card. */
export const AUTO_DECISION_VIEW: Record<AutoDecisionView['decision'], { icon: string; text: string; short: string }> = {
  allow: { icon: 'sparkle', text: 'Allowed by auto mode', short: 'Auto-allowed' },
  deny: { icon: 'circle-slash', text: 'Denied by auto mode', short: 'Auto-denied' },
  ask: { icon: 'question', text: 'Auto mode left this to you', short: 'Asked you' },
};

/** ``path`` relative to the workspace folder when inside it. */
export function relativePath(path: string, root: string | undefined): string {
  const clean = path.replace(/^file:\/\//, '');
  if (root && (clean === root || clean.startsWith(`${root.replace(/\/$/, '')}/`))) {
    return clean.slice(root.replace(/\/$/, '').length + 1) || '.';
  }
  return clean;
}

export interface ShellRun { output: string; exitCode: number | undefined; signal?: string }

/** The Bash tool's result: output, then "exit code: N" or "killed by signal X" when not 0. */
export function shellRun(result: string): ShellRun {
  const exit = /\n?exit code: (-?\d+)\s*$/.exec(result);
  if (exit) return { output: result.slice(0, exit.index), exitCode: Number(exit[1]) };
  const killed = /\n?killed by signal (\w+)\s*$/.exec(result);
  if (killed) return { output: result.slice(0, killed.index), exitCode: undefined, signal: killed[1] };
  return { output: result === '(no output)' ? '' : result, exitCode: 0 };
}

export function duration(card: ToolCard): string | undefined {
  if (!card.startedAt || !card.finishedAt) return undefined;
  const s = Math.max(0, card.finishedAt - card.startedAt);
  return s < 1 ? `${Math.round(s * 1000)} ms` : s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

export interface Location { path: string; line?: number; text?: string; count?: number }

/**
 * Locations in a search or code-intel result: "path:line:text" (Grep content, References),
 * "path:count" (Grep files), "path:line" and bare paths (Glob). Other lines are skipped.
 */
export function locations(result: string, tool: string): Location[] {
  const out: Location[] = [];
  for (const raw of result.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('(')) continue;
    let m: RegExpExecArray | null;
    if (tool === 'Grep' && (m = /^(\S[^:]*):(\d+)$/.exec(line))) out.push({ path: m[1], count: Number(m[2]) });
    else if ((m = /^(\S[^:]*\.[\w]+|[^\s:]+):(\d+)(?::(\d+))?(?::\s?(.*))?$/.exec(line))) out.push({ path: m[1], line: Number(m[2]), ...(m[4] ? { text: m[4] } : {}) });
    else if (tool === 'Glob' && /^[^\s:][^:]*$/.test(line)) out.push({ path: line });
    else if ((m = /\b([\w./-]+\.\w+):(\d+)\b/.exec(line))) out.push({ path: m[1], line: Number(m[2]), text: line });
  }
  return out;
}

/** Words in errors that only the model understands, and what a person reads instead. */
const MODEL_WORDS: [RegExp, string][] = [
  [/\bold_string was not found\b/g, 'the text to replace was not found'],
  [/\bold_string\b/g, 'the text to replace'],
  [/\bnew_string\b/g, 'the new text'],
  [/\boffset (\d+)\b/g, 'line $1'],
  [/; use (Glob|Grep|Write|Read)\b[^.]*\./g, '.'],
  [/\bf\d+\.h\d+\b/g, 'a change'],
];

/** Sentences addressed to the model: dropped from what the user reads. */
const MODEL_SENTENCES = /\b(Re-read|re-read|copy old_string|Use (?:Write|Read|Glob|Grep)|To create or overwrite a file use)\b[^.]*\.?/g;

/** The first line of an error, in the user's words. */
export function humanError(text: string): string {
  let first = (text.trim().split('\n')[0] ?? '').replace(MODEL_SENTENCES, '').trim();
  for (const [re, words] of MODEL_WORDS) first = first.replace(re, words);
  first = first.replace(/\s+\./g, '.').trim();
  return first ? first[0].toUpperCase() + first.slice(1) : 'The tool failed.';
}

/** Counts for a card's subtitle: "12 matches in 3 files", "40 lines", "5 files". */
export function resultCount(tool: string, result: string): string | undefined {
  if (tool === 'Read') {
    const n = result.split('\n').filter((l) => /^\s*\d+\t/.test(l)).length;
    return n ? `${n} line${n === 1 ? '' : 's'}` : undefined;
  }
  if (/^No (matches|files)/.test(result.trim())) return 'no matches';
  const locs = locations(result, tool);
  if (tool === 'Grep') {
    const files = new Set(locs.map((l) => l.path)).size;
    const matches = locs.reduce((n, l) => n + (l.count ?? 1), 0);
    return locs.length ? `${matches} match${matches === 1 ? '' : 'es'} in ${files} file${files === 1 ? '' : 's'}` : undefined;
  }
  if (tool === 'Glob') return `${locs.length} file${locs.length === 1 ? '' : 's'}`;
  if (locs.length) return `${locs.length} location${locs.length === 1 ? '' : 's'}`;
  return undefined;
}

/** Tokens as people read them: 950, 12.3k, 1.2M. */
export function tokens(n: number): string {
  if (n < 1000) return String(n);
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}

export function usd(n: number): string {
  return n === 0 ? '$0.00' : n < 0.01 ? `$${n.toFixed(4)}` : `$${n.toFixed(2)}`;
}
