// What the autonomy views show (docs/autonomy.md): the watcher's Inbox rows, the watcher's
// status-bar item, the Memory view's rows and Dream's progress. Pure (no vscode): unit tested;
// src/autonomyViews.ts draws them and talks to the server.

import { elapsed, type Row } from './agentViews';
import { PROPOSAL_STATUSES, type InboxKind, type ProposalStatus } from './autonomyProtocol';
import type { DreamStatus, InboxItem, MemoryIndex, MemoryTopic, WatchStatus } from './protocol';

/**
 * What this window saw of proposals itself: those waiting in its review book, and the ends it saw
 * (``proposal_resolved``). Newer than an item's ``proposals`` list, which the server sent earlier.
 */
export interface ProposalKnowledge { pending: ReadonlySet<string>; resolved: ReadonlyMap<string, ProposalStatus> }

/** A proposal's status as the Inbox shows it: ``decided`` when an older server said nothing. */
export type ShownStatus = ProposalStatus | 'decided';

/** ``proposal_resolved``'s status, in the Inbox's words. */
const RESOLUTION: Record<string, ProposalStatus> = {
  accepted: 'accepted', partially_accepted: 'accepted', rejected: 'rejected',
  conflict: 'stale', failed: 'stale', cancelled: 'withdrawn',
};

export function statusOfResolution(status: string): ProposalStatus {
  return RESOLUTION[status] ?? 'stale';
}

/** Each proposal of an item with its status: what this window saw, else what the server said. */
export function proposalStatuses(item: InboxItem, known: ProposalKnowledge): { id: string; status: ShownStatus }[] {
  // A status this extension does not know yet (a newer server) reads as "reviewed".
  const told = new Map((item.proposals ?? []).map((p): [string, ShownStatus] =>
    [p.id, (PROPOSAL_STATUSES as readonly string[]).includes(p.status) ? p.status : 'decided']));
  const ids = [...new Set([...item.proposalIds, ...told.keys()])];
  return ids.map((id) => {
    const server = told.get(id);
    const status: ShownStatus = known.resolved.get(id)
      ?? (server && server !== 'pending' ? server : undefined)
      ?? (known.pending.has(id) || server === 'pending' ? 'pending' : 'decided');
    return { id, status };
  });
}

/** An inbox item is unreviewed while one of its proposals still waits for a decision. */
export function isUnreviewed(item: InboxItem, known: ProposalKnowledge): boolean {
  return proposalStatuses(item, known).some((p) => p.status === 'pending');
}

export function unreviewedCount(items: readonly InboxItem[], known: ProposalKnowledge): number {
  return items.filter((it) => isUnreviewed(it, known)).length;
}

/** ``agent/inbox`` sends an item again (same id) with each further proposal: replace it in place. */
export function mergeInboxItem(items: readonly InboxItem[], item: InboxItem): InboxItem[] {
  const at = items.findIndex((it) => it.id === item.id);
  if (at < 0) return [...items, item];
  return items.map((it, i) => (i === at ? item : it));
}

export function removeInboxItem(items: readonly InboxItem[], id: string): InboxItem[] {
  return items.filter((it) => it.id !== id);
}

/** How each kind of item is drawn: its icon while something waits, its label, its row actions. */
interface KindView { icon: string; label: (title: string) => string; words: string; context?: string }
const KINDS: Record<InboxKind, KindView> = {
  test_failure: { icon: 'beaker', label: (t) => shortTestTitle(t), words: 'failing tests' },
  diagnostic: { icon: 'error', label: (t) => t, words: 'a new problem' },
  // Applied on its own (watch.autoApply): nothing to accept, but the user may look and undo.
  auto_applied: { icon: 'wand', label: (t) => `${t} — Review/Undo`, words: 'applied on its own', context: 'inbox.applied' },
  budget: { icon: 'warning', label: (t) => t, words: 'the watcher\'s budget', context: 'inbox.notice' },
};
const OTHER_KIND: KindView = { icon: 'git-pull-request', label: (t) => t, words: '' };

/**
 * A long test command makes a row whose status never shows in a narrow side bar: "`pytest -x
 * -q --maxfail ...` fails after calc.py was saved" reads "Tests fail after calc.py was saved"
 * (the tooltip keeps the command). Any other title is kept as it is.
 */
function shortTestTitle(title: string): string {
  const m = /^`([^`]+)` fails (after .+)$/.exec(title);
  return m && m[1].length > 20 ? `Tests fail ${m[2]}` : title.replace(/`/g, '');
}

/** Once nothing waits: the icon of how it ended (all alike), else a plain check. */
const DONE_ICON: Record<ShownStatus, string> = {
  pending: 'git-pull-request', accepted: 'pass', rejected: 'close', stale: 'history', withdrawn: 'circle-slash', decided: 'check',
};
const STATUS_WORDS: Record<ShownStatus, string> = {
  pending: 'to review', accepted: 'accepted', rejected: 'rejected', stale: 'stale', withdrawn: 'withdrawn', decided: 'reviewed',
};
const STATUS_ORDER: ShownStatus[] = ['pending', 'accepted', 'rejected', 'stale', 'withdrawn', 'decided'];

/** One inbox row: its title, where its proposals stand and how old it is; ``now`` in seconds. */
export function inboxRow(item: InboxItem, known: ProposalKnowledge, now: number): Row {
  const kind = KINDS[item.kind as InboxKind] ?? OTHER_KIND;
  const statuses = proposalStatuses(item, known);
  const count = (s: ShownStatus) => statuses.filter((p) => p.status === s).length;
  const waiting = count('pending');
  const age = `${elapsed(now - item.createdAt)} ago`;
  const summary = STATUS_ORDER.filter((s) => count(s)).map((s) => `${count(s)} ${STATUS_WORDS[s]}`);
  const title = item.kind === 'test_failure' ? item.title : item.title.replace(/`/g, '');
  const ended = new Set(statuses.map((p) => p.status));
  const icon = waiting || !statuses.length ? kind.icon : ended.size === 1 ? DONE_ICON[statuses[0].status] : 'check';
  const lines = statuses.map((p) => `${p.id}: ${STATUS_WORDS[p.status]}`);
  // The watcher's model triage (watch.triage): why it declined to prepare a fix, or why it did.
  const triage = item.triage ? [`triage: ${item.triage.fix ? 'worth a fix' : 'not worth a fix'}: ${item.triage.reason}`] : [];
  return {
    label: kind.label(title),
    description: [...summary, age].join(' · '),
    tooltip: [
      item.title, `${kind.words || item.kind.replace(/_/g, ' ')}, ${age}${item.sessionId ? `; session ${item.sessionId}` : ''}`,
      ...triage, ...lines, '', item.detail,
    ].join('\n').trimEnd(),
    icon,
    context: kind.context ?? (waiting ? 'inbox.unreviewed' : 'inbox.reviewed'),
  };
}

/** The proposal to open for an item: one pending here first (its hunks are known), else one pending on the server. */
export function proposalToOpen(item: InboxItem, known: ProposalKnowledge): string | undefined {
  const pending = proposalStatuses(item, known).filter((p) => p.status === 'pending').map((p) => p.id);
  return pending.find((id) => known.pending.has(id)) ?? pending[0];
}

export interface WatcherStatusView {
  /** Hidden when the workspace has no watcher configured. */
  visible: boolean;
  text: string;
  tooltip: string;
  /** What a click does. */
  command: 'lspAgent.watcher.pause' | 'lspAgent.watcher.resume' | 'lspAgent.watcher.approve' | undefined;
  warning: boolean;
}

/** The watcher in the status bar, from ``agent/watchStatus``. */
export function watcherStatusView(status: WatchStatus | undefined): WatcherStatusView {
  if (!status || !status.enabled) return { visible: false, text: '', tooltip: '', command: undefined, warning: false };
  const test = status.testCommand ? `test command: ${status.testCommand}` : 'no test command configured';
  const from = status.source ? ` (from the ${status.source} settings)` : '';
  const warnings = status.warnings?.length ? `\n${status.warnings.join('\n')}` : '';
  if (!status.approved) {
    return {
      visible: true, text: '$(shield) watcher: needs approval', warning: true, command: 'lspAgent.watcher.approve',
      tooltip: `The project's watcher${from} runs ${test} on save once you approve it. Click to approve.${warnings}`,
    };
  }
  if (status.paused) {
    return {
      visible: true, text: '$(debug-pause) watcher: paused', warning: false, command: 'lspAgent.watcher.resume',
      tooltip: `The watcher is paused; ${test}${from}. Click to resume.${warnings}`,
    };
  }
  const triage = status.triage ? ` A failure gets a fix only if ${status.triageModel ?? 'a small model'} judges it worth one.` : '';
  return {
    visible: true, text: '$(eye) watcher', warning: false, command: 'lspAgent.watcher.pause',
    tooltip: `The watcher runs on save; ${test}${from}.${triage} Click to pause.${warnings}`,
  };
}

/** The watcher acts (and wants the editor's diagnostics) only when on, approved and not paused. */
export function watcherActive(status: WatchStatus | undefined): boolean {
  return !!status?.enabled && status.approved && !status.paused;
}

/** The Memory view's rows: the index first, then the topics by name. */
export function memoryRows(index: MemoryIndex): (Row & { name: string })[] {
  const lines = index.index ? index.index.split('\n').filter((l) => l.trim()).length : 0;
  const head = {
    name: 'MEMORY.md', label: 'MEMORY.md', icon: 'book',
    description: `index · ${lines} line${lines === 1 ? '' : 's'}`,
    tooltip: `The index loaded into every session\n${index.folder}`,
    context: 'memory.index',
  };
  const topics = [...index.topics].sort((a, b) => a.name.localeCompare(b.name)).map(topicRow);
  return [head, ...topics];
}

function topicRow(topic: MemoryTopic): Row & { name: string } {
  return {
    name: topic.name,
    label: topic.name,
    description: [topic.type, topic.problem ? `⚠ ${topic.problem}` : topic.description].filter(Boolean).join(' · '),
    tooltip: [`${topic.file} (${topic.type || 'no type'}, ${topic.size} B)`, topic.description, topic.problem ? `broken frontmatter: ${topic.problem}` : '']
      .filter(Boolean).join('\n'),
    icon: topic.problem ? 'warning' : 'note',
    context: 'memory.topic',
  };
}

const DREAM_PHASE: Record<string, string> = {
  gates: 'checking whether to run', orient: 'reading the memory', gather: 'reading recent sessions',
  consolidate: 'consolidating', prune: 'pruning and re-indexing',
};

/** Dream's progress message while it runs, and its outcome once it ended. */
export function dreamMessage(status: DreamStatus): { done: boolean; text: string } {
  if (status.status === 'running') {
    const phase = status.phase ? DREAM_PHASE[status.phase] ?? status.phase : 'starting';
    return { done: false, text: `${phase}${status.sessions ? ` (${status.sessions} session${status.sessions === 1 ? '' : 's'})` : ''}` };
  }
  const changed = [...(status.written ?? []).map((f) => `wrote ${f}`), ...(status.deleted ?? []).map((f) => `deleted ${f}`)];
  const why = status.report || status.reason || '';
  return { done: true, text: `Dream ${status.status}${why ? `: ${why}` : ''}${changed.length ? ` (${changed.join(', ')})` : ''}` };
}

/** The memory file a document path names: ``/MEMORY.md`` or a topic's ``/<name>.md``. */
export function memoryNameOf(path: string): string {
  const file = path.replace(/^\/+/, '');
  return file === 'MEMORY.md' ? file : file.replace(/\.md$/, '');
}

/** The document path of a memory file (the index or a topic by name). */
export function memoryPathOf(name: string): string {
  return name === 'MEMORY.md' ? '/MEMORY.md' : `/${name.replace(/\.md$/, '')}.md`;
}

/** A settings file that may configure the watcher: saving one refreshes the status bar. */
export function isWatchSettingsFile(path: string): boolean {
  return /[\\/](\.lsp-agent|\.claude)[\\/]settings(\.local)?\.json$/.test(path) || /[\\/]lsp-agent[\\/]settings\.json$/.test(path);
}
