// Saved sessions in VS Code (issue 10): the Sessions view (a tree in the lsp-agent container:
// list, filter by title, load more, resume, fork, rename, delete), bringing the open session back
// after a window reload or a server restart, "Restore checkpoint" on a prompt, and the prompt
// history for Up-arrow. The chat state stays in extension.ts; this file talks to the server and
// dispatches what it learns.

import * as vscode from 'vscode';
import { errorText } from './review';
import type { ChatAction, ChatState } from './shared/chatState';
import { addHistoryPage, historyView, type LoadedHistory } from './shared/history';
import type { Mode } from './shared/protocol';
import {
  addPage, emptyList, filesFrom, PAGE_SIZE, rewindSummary, SessionMethods as M, sessionRow, sessionTitle, visibleSessions,
  type CheckpointsResult, type ListSessionsResult, type RestoreWhat, type RewindResult, type SavedSession, type SessionHistoryResult,
  type SessionList,
} from './shared/sessions';

/** What the controller needs from the extension. */
export interface SessionsHost {
  send<R>(method: string, params: object): Promise<R>;
  dispatch(action: ChatAction): void;
  state(): ChatState;
  revealChat(): Promise<void>;
  log(line: string): void;
}

interface ResumeResult { sessionId: string; mode: Mode; model: string; turns?: number; notApplied?: string[]; warnings?: string[] }

type Node = { kind: 'session'; session: SavedSession } | { kind: 'more' };
type Activate = 'always' | 'ifNoneActive';

export const SESSIONS_VIEW = 'lspAgent.sessions';
const HISTORY_PAGE = 50;
const RESUME_ATTEMPTS = 8;

export class SavedSessions implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  private list: SessionList = emptyList();
  private readonly histories = new Map<string, LoadedHistory>();
  private readonly changed = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  readonly view: vscode.TreeView<Node>;
  private refreshTimer: NodeJS.Timeout | undefined;

  constructor(private readonly host: SessionsHost) {
    this.view = vscode.window.createTreeView(SESSIONS_VIEW, { treeDataProvider: this });
  }

  dispose(): void {
    clearTimeout(this.refreshTimer);
    this.view.dispose();
    this.changed.dispose();
  }

  commands(): vscode.Disposable[] {
    const on = (name: string, fn: (node?: Node) => unknown) => vscode.commands.registerCommand(`lspAgent.sessions.${name}`, fn);
    return [
      on('refresh', () => this.refresh()),
      on('filter', () => this.askFilter()),
      on('clearFilter', () => this.setFilter('')),
      on('loadMore', () => this.loadMore()),
      on('resume', (n) => this.withId(n, (s) => this.open(s))),
      on('fork', (n) => this.withId(n, (s) => this.fork(s))),
      on('rename', (n) => this.withId(n, (s) => this.rename(s))),
      on('delete', (n) => this.withId(n, (s) => this.remove(s))),
    ];
  }

  // -- the tree ------------------------------------------------------------------------------

  getChildren(node?: Node): Node[] {
    if (node) return [];
    if (!this.list.loaded) { void this.loadMore(); return []; }
    const rows: Node[] = visibleSessions(this.list).map((session) => ({ kind: 'session', session }));
    return this.list.nextOffset !== null ? [...rows, { kind: 'more' }] : rows;
  }

  getTreeItem(node: Node): vscode.TreeItem {
    if (node.kind === 'more') {
      const item = new vscode.TreeItem('Load more sessions…');
      item.iconPath = new vscode.ThemeIcon('ellipsis');
      item.command = { command: 'lspAgent.sessions.loadMore', title: 'Load more sessions' };
      item.contextValue = 'more';
      return item;
    }
    const s = node.session;
    const row = sessionRow(s, Date.now());
    const item = new vscode.TreeItem(row.label);
    item.id = s.sessionId;
    item.description = row.description;
    item.tooltip = row.tooltip;
    item.accessibilityInformation = { label: `${row.label}, ${row.description}` };
    item.iconPath = new vscode.ThemeIcon(s.error ? 'warning' : s.busy ? 'loading~spin' : s.forkedFrom ? 'repo-forked' : 'comment-discussion');
    item.contextValue = s.error ? 'sessionUnreadable' : 'session';
    if (!s.error) item.command = { command: 'lspAgent.sessions.resume', title: 'Resume', arguments: [node] };
    return item;
  }

  /** Reload from the first page (coalesced: turn ends and session changes come in bursts). */
  refresh(): void {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => void this.reload(), 200);
  }

  /**
   * The loaded rows again, swapped in at once. The old rows stay on screen while the page
   * loads: an emptied tree made VS Code forget the rows' handles, and a click on a row's
   * action in that moment reached its command with no row (the click was lost).
   */
  private async reload(): Promise<void> {
    if (this.loading) await this.loading;
    if (!this.list.loaded) return; // never shown yet: its first load reads the list fresh
    const limit = Math.min(500, Math.max(PAGE_SIZE, this.list.items.length));
    let list: SessionList;
    try {
      list = addPage(emptyList(this.list.filter), await this.host.send<ListSessionsResult>(M.listSessions, { offset: 0, limit, ...this.where() }));
    } catch (err) {
      this.host.log(`sessions: ${errorText(err)}`);
      return;
    }
    const same = JSON.stringify(list.items) === JSON.stringify(this.list.items) && list.nextOffset === this.list.nextOffset;
    this.list = { ...list, filter: this.list.filter };
    this.showMessage();
    if (!same) this.changed.fire(undefined);
  }

  private loading: Promise<void> | undefined;

  async loadMore(): Promise<void> {
    if (this.loading) return this.loading;
    if (this.list.nextOffset === null) return;
    this.loading = (async () => {
      try {
        const page = await this.host.send<ListSessionsResult>(M.listSessions, { offset: this.list.nextOffset, limit: PAGE_SIZE, ...this.where() });
        this.list = addPage(this.list, page);
      } catch (err) {
        this.host.log(`sessions: ${errorText(err)}`);
        this.list = { ...this.list, loaded: true, nextOffset: null };
      } finally {
        this.loading = undefined;
      }
      this.showMessage();
      this.changed.fire(undefined);
    })();
    return this.loading;
  }

  private showMessage(): void {
    const shown = visibleSessions(this.list).length;
    this.view.description = this.list.filter ? `matching "${this.list.filter}"` : '';
    this.view.message = shown ? undefined
      : this.list.filter ? `No loaded session has "${this.list.filter}" in its title.`
      : 'No saved sessions in this workspace yet: start one in the chat.';
  }

  private async askFilter(): Promise<void> {
    const value = await vscode.window.showInputBox({
      title: 'lsp-agent: filter sessions', prompt: 'Show the sessions whose title holds these words (empty: all)', value: this.list.filter,
    });
    if (value !== undefined) this.setFilter(value.trim());
  }

  private setFilter(filter: string): void {
    this.list = { ...this.list, filter };
    void vscode.commands.executeCommand('setContext', 'lspAgent.sessionsFiltered', !!filter);
    this.showMessage();
    this.changed.fire(undefined);
  }

  private where(): { workspaceUri?: string } {
    const uri = vscode.workspace.workspaceFolders?.[0]?.uri.toString();
    return uri ? { workspaceUri: uri } : {};
  }

  private withId(node: Node | undefined, fn: (s: SavedSession) => Promise<void>): Promise<void> | undefined {
    if (node?.kind !== 'session') return undefined;
    // The row's own copy when the list was reloaded meanwhile (its newest copy otherwise).
    const session = this.list.items.find((s) => s.sessionId === node.session.sessionId) ?? node.session;
    if (!session) return undefined;
    return fn(session).catch((err) => { void vscode.window.showErrorMessage(`lsp-agent: ${errorText(err)}`); });
  }

  // -- resume, fork, rename, delete ----------------------------------------------------------

  /** Open a saved session in the chat panel with its history. */
  private async open(s: SavedSession): Promise<void> {
    await this.host.revealChat();
    await this.resume(s.sessionId, sessionTitle(s));
  }

  /**
   * Resume a session in this server and show its newest history page. It becomes the active one;
   * on start only if the user did not open or start another meanwhile.
   */
  async resume(sessionId: string, title?: string, activate: Activate = 'always'): Promise<void> {
    const result = await this.host.send<ResumeResult>(M.resumeSession, { sessionId, ...this.where() });
    this.histories.delete(sessionId);
    await this.showHistory(result, title, activate);
    for (const w of result.warnings ?? []) this.host.log(`[${sessionId}] ${w}`);
    if (result.notApplied?.length) {
      this.host.dispatch({ type: 'notice', sessionId, level: 'warning',
        text: `${result.notApplied.length} proposed change${result.notApplied.length === 1 ? ' was' : 's were'} waiting for review when the session ended: not applied.` });
    }
    this.refresh();
  }

  /** The session open in the chat before a window reload or a server restart: bring it back. */
  async resumeOnStart(sessionId: string | undefined): Promise<void> {
    if (!sessionId) return;
    // After a window reload the old extension host's server may still hold the session for a
    // moment (its lock goes with the process): ask again a few times.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.resume(sessionId, undefined, 'ifNoneActive');
        this.host.log(`[${sessionId}] resumed`);
        return;
      } catch (err) {
        if (attempt < RESUME_ATTEMPTS && /open in another process/.test(errorText(err))) {
          await new Promise((r) => setTimeout(r, 1000));
          continue;
        }
        // Not saved (persistence off), deleted, or open elsewhere: the panel keeps it read-only.
        this.host.log(`[${sessionId}] could not be resumed: ${errorText(err)}`);
        return;
      }
    }
  }

  private async showHistory(session: ResumeResult, title: string | undefined, activate: Activate): Promise<void> {
    const page = await this.host.send<SessionHistoryResult>(M.sessionHistory, { sessionId: session.sessionId, limit: HISTORY_PAGE, ...this.where() });
    const loaded = addHistoryPage(undefined, page, session.turns);
    this.histories.set(session.sessionId, loaded);
    const active = this.host.state().activeSessionId;
    this.dispatchHistory(session.sessionId, session.mode, session.model, loaded, title,
      activate === 'always' || !active || active === session.sessionId);
  }

  private dispatchHistory(sessionId: string, mode: Mode, model: string, loaded: LoadedHistory, title: string | undefined, activate: boolean): void {
    this.host.dispatch({ type: 'history', sessionId, mode, model, title, history: historyView(loaded), olderCursor: loaded.nextBefore, activate });
  }

  /** "Show earlier messages": the next older page, above what is shown. */
  async loadEarlier(sessionId: string): Promise<void> {
    const loaded = this.histories.get(sessionId);
    const view = this.host.state().sessions[sessionId];
    if (!loaded?.nextBefore || !view) return;
    const page = await this.host.send<SessionHistoryResult>(M.sessionHistory, { sessionId, before: loaded.nextBefore, limit: HISTORY_PAGE, ...this.where() });
    const merged = addHistoryPage(loaded, page);
    this.histories.set(sessionId, merged);
    this.dispatchHistory(sessionId, view.mode, view.model, merged, undefined, false);
  }

  private async fork(s: SavedSession): Promise<void> {
    const { sessionId } = await this.host.send<{ sessionId: string }>(M.forkSession, { sessionId: s.sessionId, ...this.where() });
    await this.host.revealChat();
    await this.resume(sessionId, `${sessionTitle(s)} (fork)`);
  }

  private async rename(s: SavedSession): Promise<void> {
    const title = await vscode.window.showInputBox({ title: 'lsp-agent: rename session', prompt: 'The session\'s new title', value: sessionTitle(s),
      validateInput: (v) => (v.trim() ? undefined : 'A title cannot be empty') });
    if (!title?.trim()) return;
    const result = await this.host.send<{ title: string }>(M.renameSession, { sessionId: s.sessionId, title: title.trim(), ...this.where() });
    this.host.dispatch({ type: 'title', sessionId: s.sessionId, title: result.title });
    this.refresh();
  }

  private async remove(s: SavedSession): Promise<void> {
    const choice = await vscode.window.showWarningMessage(`Delete the session "${sessionTitle(s)}"?`,
      { modal: true, detail: 'Its transcript and saved checkpoints are deleted for good. Files in the workspace are not changed.' }, 'Delete');
    if (choice !== 'Delete') return;
    await this.host.send(M.deleteSession, { sessionId: s.sessionId, ...this.where() });
    this.histories.delete(s.sessionId);
    this.host.dispatch({ type: 'forget', sessionId: s.sessionId });
    this.refresh();
  }

  // -- checkpoints -------------------------------------------------------------------------

  /** "Restore checkpoint" on a prompt: preview the files, choose what to restore, rewind, say the result. */
  async restoreCheckpoint(sessionId: string, turn: number): Promise<void> {
    const { checkpoints } = await this.host.send<CheckpointsResult>(M.checkpoints, { sessionId, ...this.where() });
    const files = filesFrom(checkpoints, turn);
    const listed = files.slice(0, 12).map((f) => `• ${f.path}${f.existed ? '' : ' (new: removed)'}${f.notRestorable ? ' (cannot be restored)' : ''}`);
    const more = files.length > listed.length ? [`• and ${files.length - listed.length} more`] : [];
    const detail = [
      files.length ? `Code: these files go back to how they were before this message:\n${[...listed, ...more].join('\n')}` : 'Code: the agent changed no file from this message on.',
      `Conversation: this message and everything after it leave the chat (kept in the transcript as a branch).`,
      'Your own edits since are kept: changes to the same lines are reported as conflicts, never overwritten.',
    ].join('\n\n');
    const options: Record<string, RestoreWhat> = { 'Restore Code and Conversation': 'both', 'Restore Code Only': 'code', 'Restore Conversation Only': 'conversation' };
    const choice = await vscode.window.showWarningMessage(`Restore the checkpoint before message ${turn}?`, { modal: true, detail }, ...Object.keys(options));
    const what = choice && options[choice];
    if (!what) return;
    const result = await this.host.send<RewindResult>(M.rewind, { sessionId, turn, restore: what, ...this.where() });
    if (what !== 'code') {
      const view = this.host.state().sessions[sessionId];
      this.histories.delete(sessionId);
      await this.showHistory({ sessionId, mode: view?.mode ?? 'default', model: view?.model ?? '', turns: turn - 1 }, undefined, 'always');
    }
    const said = rewindSummary(result, what);
    this.host.dispatch({ type: 'notice', sessionId, level: said.level, text: said.text });
    this.refresh();
  }

  async promptHistory(): Promise<string[]> {
    const { prompts } = await this.host.send<{ prompts: string[] }>(M.promptHistory, { limit: 100, ...this.where() });
    return Array.isArray(prompts) ? prompts.filter((p) => typeof p === 'string') : [];
  }
}

