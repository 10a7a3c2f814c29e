// The autonomy parts in VS Code (docs/autonomy.md, "In VS Code"): the Inbox view (what the
// watcher prepared, opened for review like any proposal), the watcher in the status bar (pause,
// resume, approve), and the Memory view (the project's auto memory, editable, with Dream). The
// words come from shared/autonomy.ts; this file talks to the server and VS Code.

import * as vscode from 'vscode';
import {
  dreamMessage, inboxRow, isWatchSettingsFile, memoryNameOf, memoryPathOf, memoryRows, mergeInboxItem, proposalStatuses, proposalToOpen,
  removeInboxItem, statusOfResolution, unreviewedCount, watcherActive, watcherStatusView, type ProposalKnowledge,
} from './shared/autonomy';
import { AutonomyMethods, type ProposalStatus } from './shared/autonomyProtocol';
import { item } from './agentViews';
import type { Row } from './shared/agentViews';
import { errorText } from './review';
import {
  Methods, type DreamStatus, type InboxItem, type MemoryIndex, type RequestMethod, type Requests, type WatchStatus,
} from './shared/protocol';

export const INBOX_VIEW = 'lspAgent.inbox';
export const MEMORY_VIEW = 'lspAgent.memory';
/** Ends of proposals remembered for the Inbox's rows (a window sees few). */
const RESOLVED_KEPT = 500;
const METHOD_NOT_FOUND = -32601;
const EMPTY_INBOX = 'What the watcher prepares while you work appears here (docs/autonomy.md).';
const MEMORY_SCHEME = 'lsp-agent-memory';

/** What the autonomy parts need from the extension. */
export interface AutonomyHost {
  request<M extends RequestMethod>(method: M, params: Requests[M]['params']): Promise<Requests[M]['result']>;
  /** The proposals waiting for review (the review controller's book). */
  pendingProposals(): ReadonlySet<string>;
  /** Show a pending proposal in the editor, as the chat's review does; false when unknown. */
  openProposal(proposalId: string): Promise<boolean>;
  /** Open a session in the chat panel (an item whose proposals are all decided). */
  openSession(sessionId: string): void;
  log(line: string): void;
}

// -- Inbox ----------------------------------------------------------------------------------------

export class InboxView implements vscode.TreeDataProvider<InboxItem>, vscode.Disposable {
  private items: InboxItem[] = [];
  /** Ends of proposals this window saw (proposal_resolved): newer than what an item says. */
  private readonly resolved = new Map<string, ProposalStatus>();
  private readonly changed = new vscode.EventEmitter<InboxItem | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  readonly view: vscode.TreeView<InboxItem>;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly host: AutonomyHost) {
    this.view = vscode.window.createTreeView(INBOX_VIEW, { treeDataProvider: this });
    this.view.message = EMPTY_INBOX;
    this.disposables.push(this.view, this.changed, this.view.onDidChangeVisibility(() => { if (this.view.visible) void this.load(); }));
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }

  commands(): vscode.Disposable[] {
    return [
      vscode.commands.registerCommand('lspAgent.inbox.refresh', () => this.load()),
      vscode.commands.registerCommand('lspAgent.inbox.review', (it?: InboxItem) => it && this.review(it)),
      vscode.commands.registerCommand('lspAgent.inbox.dismiss', (it?: InboxItem) => it && this.dismiss(it)),
    ];
  }

  getChildren(node?: InboxItem): InboxItem[] {
    return node ? [] : [...this.items].reverse(); // newest first
  }

  getTreeItem(node: InboxItem): vscode.TreeItem {
    const it = item(inboxRow(node, this.known(), Date.now() / 1000));
    it.id = node.id;
    it.command = { command: 'lspAgent.inbox.review', title: 'Review', arguments: [node] };
    return it;
  }

  /** ``agent/inbox``: a new item, or one with a further proposal. */
  onItem(item: InboxItem): void {
    this.items = mergeInboxItem(this.items, item);
    this.redraw();
  }

  /** ``proposal_resolved``: the item's row says how it ended. */
  onResolved(proposalId: string, status: string): void {
    this.resolved.delete(proposalId);
    this.resolved.set(proposalId, statusOfResolution(status));
    if (this.resolved.size > RESOLVED_KEPT) this.resolved.delete(this.resolved.keys().next().value as string);
    this.redraw();
  }

  /** Whether a session is one the watcher runs (its proposals wait in the Inbox, not in the user's way). */
  ownsSession(sessionId: string): boolean {
    return this.items.some((it) => it.sessionId === sessionId);
  }

  /** Proposals were decided or arrived: the rows and the badge follow. */
  redraw(): void {
    const count = unreviewedCount(this.items, this.known());
    this.view.badge = count ? { value: count, tooltip: `${count} inbox item${count === 1 ? '' : 's'} to review` } : undefined;
    this.view.message = this.items.length ? undefined : EMPTY_INBOX;
    this.changed.fire(undefined);
  }

  private known(): ProposalKnowledge {
    return { pending: this.host.pendingProposals(), resolved: this.resolved };
  }

  async load(): Promise<void> {
    try {
      this.items = (await this.host.request(Methods.inboxList, {})).items;
    } catch (err) {
      this.host.log(`inboxList: ${errorText(err)}`);
    }
    this.redraw();
  }

  /**
   * Review: the pending proposal inline, as the chat's review does; a proposal this window does
   * not hold (prepared before a reload) or an edit applied on its own: its session in the chat,
   * where the tool card shows the change and a checkpoint restores the file before it.
   */
  private async review(item: InboxItem): Promise<void> {
    if (!item.sessionId) {
      void vscode.window.showInformationMessage(`lsp-agent: ${item.title.replace(/`/g, '')}${item.detail ? ` — ${item.detail}` : ''}`);
      return;
    }
    const proposalId = proposalToOpen(item, this.known());
    if (proposalId && (await this.host.openProposal(proposalId))) return;
    this.host.openSession(item.sessionId);
  }

  /** Dismiss: the server forgets the item (agent/inboxDismiss); a proposal still pending asks first. */
  private async dismiss(item: InboxItem): Promise<void> {
    const waiting = proposalStatuses(item, this.known()).filter((p) => p.status === 'pending').length;
    if (waiting) {
      const choice = await vscode.window.showWarningMessage(
        `Dismiss "${item.title.replace(/`/g, '')}"? Its ${waiting === 1 ? 'proposal is' : `${waiting} proposals are`} still waiting for review.`,
        { modal: true, detail: 'The Inbox stops listing it; its session stays in the chat.' }, 'Dismiss');
      if (choice !== 'Dismiss') return;
    }
    try {
      await this.host.request(AutonomyMethods.inboxDismiss, { id: item.id });
    } catch (err) {
      // A server without agent/inboxDismiss: hidden in this window only (it lists it again after a restart).
      if ((err as { code?: unknown }).code !== METHOD_NOT_FOUND) {
        void vscode.window.showErrorMessage(`lsp-agent: could not dismiss the inbox item: ${errorText(err)}`);
        return;
      }
      this.host.log(`inboxDismiss: the server does not know it; ${item.id} hidden in this window only`);
    }
    this.items = removeInboxItem(this.items, item.id);
    this.redraw();
  }
}

// -- the watcher in the status bar ------------------------------------------------------------------

export class WatcherStatusItem implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('lspAgent.watcher', vscode.StatusBarAlignment.Left, 99);
  private status: WatchStatus | undefined;
  private readonly saved: vscode.Disposable;
  private readonly activeChanged = new vscode.EventEmitter<boolean>();
  /** Fires with each status: whether the watcher is on (diagnostics are forwarded only then). */
  readonly onDidChangeActive = this.activeChanged.event;

  constructor(private readonly host: AutonomyHost) {
    this.item.name = 'lsp-agent watcher';
    // The server reads the watcher's settings afresh on each agent/watchStatus.
    this.saved = vscode.workspace.onDidSaveTextDocument((doc) => { if (isWatchSettingsFile(doc.uri.fsPath)) void this.refresh(); });
  }

  dispose(): void {
    this.saved.dispose();
    this.activeChanged.dispose();
    this.item.dispose();
  }

  commands(): vscode.Disposable[] {
    return [
      vscode.commands.registerCommand('lspAgent.watcher.pause', () => this.pause(true)),
      vscode.commands.registerCommand('lspAgent.watcher.resume', () => this.pause(false)),
      vscode.commands.registerCommand('lspAgent.watcher.approve', () => this.approve()),
      vscode.commands.registerCommand('lspAgent.watcher.refresh', () => this.refresh()),
    ];
  }

  async refresh(): Promise<void> {
    try {
      this.status = await this.host.request(Methods.watchStatus, {});
    } catch (err) {
      this.status = undefined;
      this.host.log(`watchStatus: ${errorText(err)}`);
    }
    this.draw();
  }

  /** The server stopped: nothing is watching. */
  clear(): void {
    this.status = undefined;
    this.draw();
  }

  private draw(): void {
    const view = watcherStatusView(this.status);
    this.activeChanged.fire(watcherActive(this.status));
    void vscode.commands.executeCommand('setContext', 'lspAgent.watcherNeedsApproval', !!this.status?.enabled && !this.status.approved);
    if (!view.visible) { this.item.hide(); return; }
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.command = view.command;
    this.item.backgroundColor = view.warning ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.item.show();
  }

  private async pause(paused: boolean): Promise<void> {
    try {
      await this.host.request(Methods.watchPause, { paused });
    } catch (err) {
      void vscode.window.showErrorMessage(`lsp-agent: could not ${paused ? 'pause' : 'resume'} the watcher: ${errorText(err)}`);
    }
    await this.refresh();
  }

  /** The project's committed watcher runs a command on save: ask before approving it. */
  private async approve(): Promise<void> {
    await this.refresh();
    const status = this.status;
    if (!status?.enabled) { void vscode.window.showInformationMessage('lsp-agent: no watcher is configured for this workspace.'); return; }
    if (status.approved) { void vscode.window.showInformationMessage('lsp-agent: the watcher is approved already.'); return; }
    const choice = await vscode.window.showWarningMessage(
      `Let lsp-agent's watcher run \`${status.testCommand ?? '(no test command)'}\` on every save in this workspace?`,
      { modal: true, detail: `It comes from the ${status.source ?? 'project'} settings. A changed configuration asks again.` }, 'Approve');
    if (choice !== 'Approve') return;
    try {
      await this.host.request(Methods.watchApprove, {});
    } catch (err) {
      void vscode.window.showErrorMessage(`lsp-agent: could not approve the watcher: ${errorText(err)}`);
    }
    await this.refresh();
  }
}

// -- Memory --------------------------------------------------------------------------------------

type MemoryNode = Row & { name: string };

/**
 * The project's auto memory: a tree of MEMORY.md and the topic files, each opened as a
 * ``lsp-agent-memory:`` document read and saved through the server (agent/memoryRead and
 * agent/memoryWrite), which checks names, links, limits and masks secrets. Dream runs from here.
 */
export class MemoryView implements vscode.TreeDataProvider<MemoryNode>, vscode.FileSystemProvider, vscode.Disposable {
  private rows: MemoryNode[] = [];
  private readonly changed = new vscode.EventEmitter<MemoryNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly filesChanged = new vscode.EventEmitter<vscode.FileChangeEvent[]>();
  readonly onDidChangeFile = this.filesChanged.event;
  readonly view: vscode.TreeView<MemoryNode>;
  /** The running Dream's progress, when started here: ended by its last agent/dreamStatus. */
  private dreaming: { report: (text: string) => void; end: () => void } | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly host: AutonomyHost) {
    this.view = vscode.window.createTreeView(MEMORY_VIEW, { treeDataProvider: this });
    this.disposables.push(
      this.view, this.changed, this.filesChanged,
      this.view.onDidChangeVisibility(() => { if (this.view.visible) void this.load(); }),
      vscode.workspace.registerFileSystemProvider(MEMORY_SCHEME, this, { isCaseSensitive: true }),
    );
  }

  dispose(): void {
    this.dreaming?.end();
    for (const d of this.disposables) d.dispose();
  }

  commands(): vscode.Disposable[] {
    return [
      vscode.commands.registerCommand('lspAgent.memory.refresh', () => this.load()),
      vscode.commands.registerCommand('lspAgent.memory.open', (n?: MemoryNode) => n && this.open(n.name)),
      vscode.commands.registerCommand('lspAgent.memory.delete', (n?: MemoryNode) => n && this.remove(n.name)),
      vscode.commands.registerCommand('lspAgent.memory.clear', () => this.clear()),
      vscode.commands.registerCommand('lspAgent.dream', () => this.dream()),
    ];
  }

  getChildren(node?: MemoryNode): MemoryNode[] {
    return node ? [] : this.rows;
  }

  getTreeItem(node: MemoryNode): vscode.TreeItem {
    const it = item(node);
    it.id = node.name;
    it.command = { command: 'lspAgent.memory.open', title: 'Open', arguments: [node] };
    return it;
  }

  async load(): Promise<void> {
    let index: MemoryIndex | undefined;
    try {
      index = await this.host.request(Methods.memory, {});
    } catch (err) {
      this.rows = [];
      this.view.message = `Auto memory is not available: ${errorText(err)}`;
      this.changed.fire(undefined);
      return;
    }
    const rows = memoryRows(index);
    this.view.message = index.warnings.length ? index.warnings.join(' ') : undefined;
    // Reloaded after every turn, mostly unchanged: an unchanged tree is not redrawn (a redraw
    // makes VS Code forget the rows for a moment, and a click then finds no row).
    if (JSON.stringify(rows) === JSON.stringify(this.rows)) return;
    this.rows = rows;
    this.changed.fire(undefined);
  }

  private async open(name: string): Promise<void> {
    const uri = vscode.Uri.from({ scheme: MEMORY_SCHEME, path: memoryPathOf(name) });
    await vscode.window.showTextDocument(uri, { preview: true });
  }

  private async remove(name: string): Promise<void> {
    const ok = await vscode.window.showWarningMessage(`Delete the memory file ${name}.md? Its line in MEMORY.md goes with it.`, { modal: true }, 'Delete');
    if (ok !== 'Delete') return;
    try {
      await this.host.request(Methods.memoryDelete, { name });
    } catch (err) {
      void vscode.window.showErrorMessage(`lsp-agent: could not delete ${name}: ${errorText(err)}`);
    }
    await this.load();
  }

  private async clear(): Promise<void> {
    const ok = await vscode.window.showWarningMessage('Delete all of this project\'s auto memory (MEMORY.md and every topic file)?', { modal: true }, 'Clear Memory');
    if (ok !== 'Clear Memory') return;
    try {
      await this.host.request(Methods.memoryClear, {});
    } catch (err) {
      void vscode.window.showErrorMessage(`lsp-agent: could not clear the memory: ${errorText(err)}`);
    }
    await this.load();
  }

  /** "Dream now": forced past the time and session gates, never past another server's lock. */
  private async dream(): Promise<void> {
    if (this.dreaming) { void vscode.window.showInformationMessage('lsp-agent: Dream is running already.'); return; }
    let answer: { started: boolean; reason?: string };
    try {
      answer = await this.host.request(Methods.dream, { force: true });
    } catch (err) {
      void vscode.window.showErrorMessage(`lsp-agent: Dream could not start: ${errorText(err)}`);
      return;
    }
    if (!answer.started) { void vscode.window.showInformationMessage(`lsp-agent: Dream did not start: ${answer.reason ?? 'a gate holds'}`); return; }
    void vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'lsp-agent: Dream' }, (progress) =>
      new Promise<void>((resolve) => {
        this.dreaming = { report: (message) => progress.report({ message }), end: () => { this.dreaming = undefined; resolve(); } };
      }));
  }

  /** ``agent/dreamStatus``: progress while it runs; its outcome and a fresh list when it ends. */
  onDreamStatus(status: DreamStatus): void {
    const { done, text } = dreamMessage(status);
    if (!done) { this.dreaming?.report(text); return; }
    const shown = !!this.dreaming;
    this.dreaming?.end();
    if (shown) void vscode.window.showInformationMessage(`lsp-agent: ${text}`);
    else this.host.log(text);
    void this.load();
    for (const doc of vscode.workspace.textDocuments) {
      if (doc.uri.scheme === MEMORY_SCHEME) this.filesChanged.fire([{ type: vscode.FileChangeType.Changed, uri: doc.uri }]);
    }
  }

  /** The server stopped: a Dream it ran is over. */
  serverStopped(): void {
    this.dreaming?.end();
  }

  // -- the lsp-agent-memory: documents (through the server) ----------------------------------

  watch(): vscode.Disposable {
    return new vscode.Disposable(() => undefined);
  }

  async stat(uri: vscode.Uri): Promise<vscode.FileStat> {
    const text = await this.read(uri);
    return { type: vscode.FileType.File, ctime: 0, mtime: Date.now(), size: Buffer.byteLength(text) };
  }

  async readFile(uri: vscode.Uri): Promise<Uint8Array> {
    return Buffer.from(await this.read(uri), 'utf8');
  }

  async writeFile(uri: vscode.Uri, content: Uint8Array): Promise<void> {
    const name = memoryNameOf(uri.path);
    let result: { written: boolean; masked: number };
    try {
      result = await this.host.request(Methods.memoryWrite, { name, text: Buffer.from(content).toString('utf8') });
    } catch (err) {
      throw vscode.FileSystemError.NoPermissions(`lsp-agent refused ${name}: ${errorText(err)}`);
    }
    if (result.masked) {
      void vscode.window.showWarningMessage(`lsp-agent masked ${result.masked} secret-looking value${result.masked === 1 ? '' : 's'} in ${name}.`);
      // The file on disk differs from the buffer: let the editor reload it.
      setTimeout(() => this.filesChanged.fire([{ type: vscode.FileChangeType.Changed, uri }]), 0);
    }
    void this.load();
  }

  private async read(uri: vscode.Uri): Promise<string> {
    const name = memoryNameOf(uri.path);
    try {
      return (await this.host.request(Methods.memoryRead, { name })).text;
    } catch (err) {
      // No MEMORY.md yet: open the (empty) index agent/memory reports, so saving creates it.
      if (name === 'MEMORY.md') {
        const index = await this.host.request(Methods.memory, {}).catch(() => undefined);
        if (index) return index.index;
      }
      throw vscode.FileSystemError.FileNotFound(`${name}: ${errorText(err)}`);
    }
  }

  readDirectory(): [string, vscode.FileType][] {
    return this.rows.map((r) => [memoryPathOf(r.name).slice(1), vscode.FileType.File]);
  }

  createDirectory(): void {
    throw vscode.FileSystemError.NoPermissions('the memory folder has no subfolders');
  }

  delete(uri: vscode.Uri): void {
    throw vscode.FileSystemError.NoPermissions(`delete ${memoryNameOf(uri.path)} from the Memory view`);
  }

  rename(): void {
    throw vscode.FileSystemError.NoPermissions('memory files cannot be renamed');
  }
}
