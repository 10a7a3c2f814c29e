// What the autonomy views show (docs/autonomy.md): the watcher's Inbox rows, the watcher's
// status-bar item, the Memory view's rows and Dream's progress. Pure (no vscode): unit tested;
// src/autonomyViews.ts draws them and talks to the server.

import { elapsed, type Row } from './agentViews';
import type { DreamStatus, InboxItem, MemoryIndex, MemoryTopic, WatchStatus } from './protocol';

/** An inbox item is unreviewed while one of its proposals still waits for a decision. */
export function isUnreviewed(item: InboxItem, pending: ReadonlySet<string>): boolean {
  return item.proposalIds.some((id) => pending.has(id));
}

export function unreviewedCount(items: readonly InboxItem[], pending: ReadonlySet<string>): number {
  return items.filter((it) => isUnreviewed(it, pending)).length;
}

/** ``agent/inbox`` sends an item again (same id) with each further proposal: replace it in place. */
export function mergeInboxItem(items: readonly InboxItem[], item: InboxItem): InboxItem[] {
  const at = items.findIndex((it) => it.id === item.id);
  if (at < 0) return [...items, item];
  return items.map((it, i) => (i === at ? item : it));
}

/** One inbox row: its title, how old it is and whether it waits for review; ``now`` in seconds. */
export function inboxRow(item: InboxItem, pending: ReadonlySet<string>, now: number): Row {
  const waiting = item.proposalIds.filter((id) => pending.has(id)).length;
  const age = `${elapsed(now - item.createdAt)} ago`;
  const state = waiting ? `${waiting} proposal${waiting === 1 ? '' : 's'} to review` : 'reviewed';
  return {
    label: item.title.replace(/`/g, ''),
    description: `${state} · ${age}`,
    tooltip: [item.title, `${item.kind.replace(/_/g, ' ')}, ${age}; session ${item.sessionId}`, '', item.detail].join('\n').trimEnd(),
    icon: waiting ? 'git-pull-request' : 'check',
    context: waiting ? 'inbox.unreviewed' : 'inbox.reviewed',
  };
}

/** The proposal to open for an item: the first one still pending, else none. */
export function proposalToOpen(item: InboxItem, pending: ReadonlySet<string>): string | undefined {
  return item.proposalIds.find((id) => pending.has(id));
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
  return {
    visible: true, text: '$(eye) watcher', warning: false, command: 'lspAgent.watcher.pause',
    tooltip: `The watcher runs on save; ${test}${from}. Click to pause.${warnings}`,
  };
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
