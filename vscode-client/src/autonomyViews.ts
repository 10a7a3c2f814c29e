// The autonomy parts in VS Code (docs/autonomy.md, "In VS Code"): the Inbox view (what the
// watcher prepared, opened for review like any proposal), the watcher in the status bar (pause,
// resume, approve), and the Memory view (the project's auto memory, editable, with Dream). The
// words come from shared/autonomy.ts; this file talks to the server and VS Code.

import * as vscode from 'vscode';
import { dreamMessage, inboxRow, memoryRows, mergeInboxItem, proposalToOpen, unreviewedCount, watcherStatusView } from './shared/autonomy';
import type { Row } from './shared/agentViews';
import {
  Methods, type DreamStatus, type InboxItem, type MemoryIndex, type RequestMethod, type Requests, type WatchStatus,
} from './shared/protocol';

export const INBOX_VIEW = 'lspAgent.inbox';
export const MEMORY_VIEW = 'lspAgent.memory';
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

function treeItem(row: Row): vscode.TreeItem {
  const it = new vscode.TreeItem(row.label);
  it.description = row.description;
  it.tooltip = row.tooltip;
  it.iconPath = new vscode.ThemeIcon(row.icon);
  it.contextValue = row.context;
  it.accessibilityInformation = { label: `${row.label}, ${row.description}` };
  return it;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// -- Inbox ----------------------------------------------------------------------------------------

export class InboxView implements vscode.TreeDataProvider<InboxItem>, vscode.Disposable {
  private items: InboxItem[] = [];
  private readonly changed = new vscode.EventEmitter<InboxItem | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  readonly view: vscode.TreeView<InboxItem>;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly host: AutonomyHost) {
    this.view = vscode.window.createTreeView(INBOX_VIEW, { treeDataProvider: this });
    this.view.message = 'What the watcher prepares while you work appears here (docs/autonomy.md).';
    this.disposables.push(this.view, this.changed, this.view.onDidChangeVisibility(() => { if (this.view.visible) void this.load(); }));
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }

  commands(): vscode.Disposable[] {
    return [
      vscode.commands.registerCommand('lspAgent.inbox.refresh', () => this.load()),
      vscode.commands.registerCommand('lspAgent.inbox.review', (it?: InboxItem) => it && this.review(it)),
    ];
  }

  getChildren(node?: InboxItem): InboxItem[] {
    return node ? [] : [...this.items].reverse(); // newest first
  }

  getTreeItem(node: InboxItem): vscode.TreeItem {
    const it = treeItem(inboxRow(node, this.host.pendingProposals(), Date.now() / 1000));
    it.id = node.id;
    it.command = { command: 'lspAgent.inbox.review', title: 'Review', arguments: [node] };
    return it;
  }

  /** ``agent/inbox``: a new item, or one with a further proposal. */
  onItem(item: InboxItem): void {
    this.items = mergeInboxItem(this.items, item);
    this.redraw();
  }

  /** Proposals were decided or arrived: the rows and the badge follow. */
  redraw(): void {
    const count = unreviewedCount(this.items, this.host.pendingProposals());
    this.view.badge = count ? { value: count, tooltip: `${count} inbox item${count === 1 ? '' : 's'} to review` } : undefined;
    this.view.message = this.items.length ? undefined : 'What the watcher prepares while you work appears here (docs/autonomy.md).';
    this.changed.fire(undefined);
  }

  async load(): Promise<void> {
    try {
      this.items = (await this.host.request(Methods.inboxList, {})).items;
    } catch (err) {
      this.host.log(`inboxList: ${errorText(err)}`);
    }
    this.redraw();
  }

  private async review(item: InboxItem): Promise<void> {
    const proposalId = proposalToOpen(item, this.host.pendingProposals());
    if (proposalId && (await this.host.openProposal(proposalId))) return;
    this.host.openSession(item.sessionId);
  }
}

// -- the watcher in the status bar ------------------------------------------------------------------

export class WatcherStatusItem implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('lspAgent.watcher', vscode.StatusBarAlignment.Left, 99);
  private status: WatchStatus | undefined;

  constructor(private readonly host: AutonomyHost) {
    this.item.name = 'lsp-agent watcher';
  }

  dispose(): void {
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
