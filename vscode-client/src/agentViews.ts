// Two trees in the lsp-agent container about the active session: "Tasks" (background shells
// and agents: status, output, Stop) and "MCP & Customizations" (each MCP server's state and
// tools with Restart and Approve; the skills, commands, agents and plugins the session found).
// The rows' words come from shared/agentViews.ts; this file talks to the server and VS Code.

import * as vscode from 'vscode';
import { errorText } from './review';
import {
  approvalToolUseId, customizationGroups, mcpRow, taskRow, type CustomizationGroup, type CustomizationItem, type Row,
} from './shared/agentViews';
import {
  Methods, type BackgroundTask, type Customizations, type McpServerStatus, type PermissionAnswer, type RequestMethod, type Requests,
  type SlashCommand,
} from './shared/protocol';

export const TASKS_VIEW = 'lspAgent.tasks';
export const EXTENSIONS_VIEW = 'lspAgent.extensions';
const TASK_SCHEME = 'lsp-agent-task';
/** While a task runs and the view is shown: how often its list and open output are refreshed. */
const POLL_MS = 2000;

/** What the views need from the extension. */
export interface ViewsHost {
  request<M extends RequestMethod>(method: M, params: Requests[M]['params']): Promise<Requests[M]['result']>;
  activeSession(): string | undefined;
  /** The pending agent/requestPermission of a session with this toolUseId, if any. */
  pendingPermission(sessionId: string, toolUseId: string): string | undefined;
  answerPermission(requestId: string, answer: PermissionAnswer): void;
  log(line: string): void;
}

/** A tree row of the agent's views (MCP, Tasks, Inbox, Memory...). */
export function item(row: Row, collapsible = vscode.TreeItemCollapsibleState.None): vscode.TreeItem {
  const it = new vscode.TreeItem(row.label, collapsible);
  it.description = row.description;
  it.tooltip = row.tooltip;
  it.iconPath = new vscode.ThemeIcon(row.icon);
  it.contextValue = row.context;
  it.accessibilityInformation = { label: `${row.label}, ${row.description}` };
  return it;
}


// -- Tasks ----------------------------------------------------------------------------------------

type TaskNode = { sessionId: string; task: BackgroundTask };

export class TasksView implements vscode.TreeDataProvider<TaskNode>, vscode.TextDocumentContentProvider, vscode.Disposable {
  private tasks: TaskNode[] = [];
  private readonly changed = new vscode.EventEmitter<TaskNode | TaskNode[] | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly outputChanged = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.outputChanged.event;
  readonly view: vscode.TreeView<TaskNode>;
  private timer: NodeJS.Timeout | undefined;
  private poll: NodeJS.Timeout | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly host: ViewsHost) {
    this.view = vscode.window.createTreeView(TASKS_VIEW, { treeDataProvider: this });
    this.disposables.push(
      this.view, this.changed, this.outputChanged,
      this.view.onDidChangeVisibility(() => this.refresh()),
      vscode.workspace.registerTextDocumentContentProvider(TASK_SCHEME, this),
    );
  }

  dispose(): void {
    clearTimeout(this.timer);
    clearTimeout(this.poll);
    for (const d of this.disposables) d.dispose();
  }

  commands(): vscode.Disposable[] {
    return [
      vscode.commands.registerCommand('lspAgent.tasks.refresh', () => this.refresh(0)),
      vscode.commands.registerCommand('lspAgent.tasks.showOutput', (n?: TaskNode) => n && this.showOutput(n)),
      vscode.commands.registerCommand('lspAgent.tasks.stop', (n?: TaskNode) => n && this.stop(n)),
    ];
  }

  getChildren(node?: TaskNode): TaskNode[] {
    return node ? [] : this.tasks;
  }

  getTreeItem(node: TaskNode): vscode.TreeItem {
    const it = item(taskRow(node.task, Date.now() / 1000));
    it.id = `${node.sessionId}/${node.task.taskId}`;
    it.command = { command: 'lspAgent.tasks.showOutput', title: 'Show Output', arguments: [node] };
    return it;
  }

  /** Reload the list (coalesced: events come in bursts). */
  refresh(delayMs = 300): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.load(), delayMs);
  }

  private async load(): Promise<void> {
    const sessionId = this.host.activeSession();
    let tasks: TaskNode[] = [];
    if (sessionId) {
      try {
        tasks = (await this.host.request(Methods.tasks, { sessionId })).tasks.map((task) => ({ sessionId, task }));
      } catch (err) {
        this.host.log(`tasks: ${errorText(err)}`);
      }
    }
    // Newest first: what the agent just started is at the top.
    this.show(tasks.sort((a, b) => b.task.startedAt - a.task.startedAt));
    const running = this.tasks.filter((t) => t.task.status === 'running').length;
    this.view.badge = running ? { value: running, tooltip: `${running} background task${running === 1 ? '' : 's'} running` } : undefined;
    this.view.message = sessionId ? undefined : 'Background commands and agents of the open session appear here.';
    for (const doc of vscode.workspace.textDocuments) if (doc.uri.scheme === TASK_SCHEME) this.outputChanged.fire(doc.uri);
    clearTimeout(this.poll);
    if (running && this.view.visible) this.poll = setTimeout(() => void this.load(), POLL_MS);
  }

  /**
   * The same tasks in the same order (a poll while they run): the rows are updated in place, as
   * the same objects, so VS Code keeps their handles. A redraw from the root makes it forget
   * them for a moment, and a click on a row in that moment reached its command with no row.
   */
  private show(fresh: TaskNode[]): void {
    const key = (n: TaskNode) => `${n.sessionId}/${n.task.taskId}`;
    const sameRows = fresh.length === this.tasks.length && fresh.every((n, i) => key(n) === key(this.tasks[i]));
    if (!sameRows) {
      this.tasks = fresh;
      this.changed.fire(undefined);
      return;
    }
    fresh.forEach((n, i) => { this.tasks[i].task = n.task; });
    if (this.tasks.length) this.changed.fire(this.tasks);
  }

  private async showOutput(node: TaskNode): Promise<void> {
    const uri = vscode.Uri.from({ scheme: TASK_SCHEME, path: `/${node.task.taskId}.log`, query: node.sessionId });
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(doc, { preview: true, preserveFocus: false });
  }

  /** The task's newest output, under a line saying what it is and where it stands. */
  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const taskId = uri.path.replace(/^\//, '').replace(/\.log$/, '');
    try {
      const t = await this.host.request(Methods.taskOutput, { sessionId: uri.query, taskId });
      const head = `# ${t.kind === 'agent' ? t.command : `$ ${t.command}`}\n# ${t.taskId}: ${t.status}${t.exitCode != null ? `, exit code ${t.exitCode}` : ''}` +
        `${t.omittedBytes ? ` (the first ${t.omittedBytes} bytes are not shown)` : ''}\n`;
      return `${head}\n${t.output || '(no output yet)'}`;
    } catch (err) {
      return `The output of ${taskId} cannot be shown: ${errorText(err)}`;
    }
  }

  private async stop(node: TaskNode): Promise<void> {
    try {
      const result = await this.host.request(Methods.taskStop, { sessionId: node.sessionId, taskId: node.task.taskId });
      this.host.log(`[${node.sessionId}] ${result.message}`);
    } catch (err) {
      void vscode.window.showErrorMessage(`lsp-agent: could not stop ${node.task.taskId}: ${errorText(err)}`);
    }
    this.refresh(0);
  }
}

// -- MCP servers and customizations ------------------------------------------------------------------

type ExtNode =
  | { kind: 'section'; section: 'mcp' | 'custom' }
  | { kind: 'server'; sessionId: string; server: McpServerStatus }
  | { kind: 'tool'; server: string; name: string }
  | { kind: 'group'; group: CustomizationGroup }
  | { kind: 'custom'; group: CustomizationGroup['kind']; item: CustomizationItem };

export class ExtensionsView implements vscode.TreeDataProvider<ExtNode>, vscode.Disposable {
  private servers: McpServerStatus[] = [];
  private groups: CustomizationGroup[] = [];
  private sessionId: string | undefined;
  private shown = '';
  private readonly changed = new vscode.EventEmitter<ExtNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  readonly view: vscode.TreeView<ExtNode>;
  private timer: NodeJS.Timeout | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly host: ViewsHost) {
    this.view = vscode.window.createTreeView(EXTENSIONS_VIEW, { treeDataProvider: this });
    this.disposables.push(this.view, this.changed, this.view.onDidChangeVisibility(() => { if (this.view.visible) this.refresh(); }));
  }

  dispose(): void {
    clearTimeout(this.timer);
    for (const d of this.disposables) d.dispose();
  }

  commands(): vscode.Disposable[] {
    return [
      vscode.commands.registerCommand('lspAgent.extensions.refresh', () => this.refresh(0)),
      vscode.commands.registerCommand('lspAgent.mcp.restart', async (n?: ExtNode) => { const s = await this.serverFor(n, false); return s && this.restart(s.sessionId, s.name); }),
      vscode.commands.registerCommand('lspAgent.mcp.approve', async (n?: ExtNode) => { const s = await this.serverFor(n, true); return s && this.approve(s.sessionId, s.name); }),
      vscode.commands.registerCommand('lspAgent.customizations.open', (n?: ExtNode) => n?.kind === 'custom' && n.item.path ? this.open(n.item.path) : undefined),
    ];
  }

  getChildren(node?: ExtNode): ExtNode[] {
    if (!node) return this.sessionId ? [{ kind: 'section', section: 'mcp' }, { kind: 'section', section: 'custom' }] : [];
    if (node.kind === 'section' && node.section === 'mcp') return this.servers.map((server) => ({ kind: 'server', sessionId: this.sessionId!, server }));
    if (node.kind === 'section') return this.groups.map((group) => ({ kind: 'group', group }));
    if (node.kind === 'server') return node.server.toolNames.map((name) => ({ kind: 'tool', server: node.server.name, name }));
    if (node.kind === 'group') return node.group.items.map((it) => ({ kind: 'custom', group: node.group.kind, item: it }));
    return [];
  }

  getTreeItem(node: ExtNode): vscode.TreeItem {
    const Collapsed = vscode.TreeItemCollapsibleState.Collapsed;
    const Expanded = vscode.TreeItemCollapsibleState.Expanded;
    switch (node.kind) {
      case 'section': {
        const mcp = node.section === 'mcp';
        const count = mcp ? this.servers.length : this.groups.reduce((n, g) => n + g.items.length, 0);
        const it = new vscode.TreeItem(mcp ? 'MCP Servers' : 'Customizations', Expanded);
        it.id = `section:${node.section}`;
        it.description = mcp ? (count ? `${count}` : 'none configured') : `${count}`;
        it.iconPath = new vscode.ThemeIcon(mcp ? 'server-environment' : 'settings');
        it.contextValue = `section.${node.section}`;
        return it;
      }
      case 'server': {
        const it = item(mcpRow(node.server), node.server.toolNames.length ? Collapsed : vscode.TreeItemCollapsibleState.None);
        it.id = `server:${node.server.name}`;
        return it;
      }
      case 'tool': {
        const it = new vscode.TreeItem(node.name);
        it.description = `mcp__${node.server}__${node.name}`;
        it.iconPath = new vscode.ThemeIcon('tools');
        return it;
      }
      case 'group': {
        const it = new vscode.TreeItem(node.group.label, node.group.items.length ? Collapsed : vscode.TreeItemCollapsibleState.None);
        it.id = `group:${node.group.kind}`;
        it.description = `${node.group.items.length}`;
        it.iconPath = new vscode.ThemeIcon(node.group.icon);
        return it;
      }
      case 'custom': {
        const slash = node.group === 'skills' || node.group === 'commands';
        const label = `${slash ? '/' : ''}${node.item.name}`;
        const it = new vscode.TreeItem(label);
        it.id = `${node.group}:${node.item.name}`;
        it.description = [node.item.hint, node.item.description].filter(Boolean).join(' — ');
        it.tooltip = `${label}${node.item.hint ? ` ${node.item.hint}` : ''}\n${node.item.description}\nfrom: ${node.item.source}${node.item.path ? `\n${node.item.path}` : ''}`;
        it.iconPath = new vscode.ThemeIcon(node.group === 'agents' ? 'hubot' : node.group === 'plugins' ? 'extensions' : node.group === 'skills' ? 'book' : 'terminal');
        it.contextValue = node.item.path ? 'custom.file' : 'custom';
        if (node.item.path && node.group !== 'plugins') it.command = { command: 'lspAgent.customizations.open', title: 'Open', arguments: [node] };
        return it;
      }
    }
  }

  refresh(delayMs = 300): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.load(), delayMs);
  }

  private async load(): Promise<void> {
    const sessionId = this.host.activeSession();
    this.sessionId = sessionId;
    if (!sessionId) {
      this.servers = [];
      this.groups = [];
      this.view.message = 'MCP servers, skills, commands, agents and plugins of the open session appear here.';
      this.redraw();
      return;
    }
    const quiet = <T>(p: Promise<T>, what: string): Promise<T | undefined> => p.catch((err) => { this.host.log(`${what}: ${errorText(err)}`); return undefined; });
    const [status, commands, found] = await Promise.all([
      quiet(this.host.request(Methods.mcpStatus, { sessionId }), 'mcpStatus'),
      quiet(this.host.request(Methods.commands, { sessionId }), 'commands'),
      quiet(this.host.request(Methods.customizations, { sessionId }), 'customizations'),
    ]);
    this.servers = status?.servers ?? [];
    this.groups = customizationGroups(commands?.commands ?? ([] as SlashCommand[]), found as Customizations | undefined);
    const waiting = this.servers.filter((s) => s.state === 'needs_approval').length;
    this.view.badge = waiting ? { value: waiting, tooltip: `${waiting} MCP server${waiting === 1 ? '' : 's'} awaiting your approval` } : undefined;
    this.view.message = undefined;
    this.redraw();
    // A server starting: look again until it is connected or failed.
    if (this.servers.some((s) => s.state === 'starting')) this.refresh(1000);
  }

  /**
   * Redraw only what changed. A redraw of the root makes VS Code forget the rows' handles
   * until it has asked for them again: a click on a row's action in that moment reaches the
   * command with no row. Loads come often (every turn's end, approvals, visibility), mostly
   * with nothing new, so an unchanged tree is left alone.
   */
  private redraw(): void {
    const shown = JSON.stringify([this.sessionId, this.servers, this.groups]);
    if (shown === this.shown) return;
    this.shown = shown;
    this.changed.fire(undefined);
  }

  /** The server a command is for: its row, or when the row was lost (or from the palette) the one awaiting approval, asked when several are. */
  private async serverFor(n: ExtNode | undefined, awaiting: boolean): Promise<{ sessionId: string; name: string } | undefined> {
    if (n?.kind === 'server') return { sessionId: n.sessionId, name: n.server.name };
    const sessionId = this.sessionId;
    const candidates = this.servers.filter((s) => !awaiting || s.state === 'needs_approval');
    if (!sessionId || !candidates.length) {
      void vscode.window.showInformationMessage(awaiting ? 'lsp-agent: no MCP server awaits approval in the open session.' : 'lsp-agent: the open session has no MCP server.');
      return undefined;
    }
    if (candidates.length === 1) return { sessionId, name: candidates[0].name };
    const picked = await vscode.window.showQuickPick(candidates.map((s) => ({ label: s.name, description: s.target })),
      { title: awaiting ? 'Approve which MCP server?' : 'Which MCP server?', ignoreFocusOut: true });
    return picked && { sessionId, name: picked.label };
  }

  private async restart(sessionId: string, name: string): Promise<void> {
    try {
      await vscode.window.withProgress({ location: { viewId: EXTENSIONS_VIEW }, title: `Restarting ${name}` },
        () => this.host.request(Methods.mcpRestart, { sessionId, server: name }));
    } catch (err) {
      void vscode.window.showErrorMessage(`lsp-agent: could not restart ${name}: ${errorText(err)}`);
    }
    this.refresh(0);
  }

  /**
   * Approve a project server. A question the server is already asking about it (the
   * agent/requestPermission of the first prompt) is answered as the chat would; before that
   * question arrives, agent/mcpApprove starts the server directly (the server then withdraws
   * a question about it that crossed this answer).
   */
  private async approve(sessionId: string, name: string): Promise<void> {
    const server = this.servers.find((s) => s.name === name);
    const picked = await vscode.window.showQuickPick([
      { label: 'Approve for this session', remember: false as const },
      { label: 'Approve for this project', detail: 'Remembered in .lsp-agent/settings.local.json (enabledMcpjsonServers)', remember: 'project' as const },
      { label: 'Deny', detail: 'It stays stopped; this session does not ask again', deny: true },
    // ignoreFocusOut: a card or notification that arrives meanwhile must not dismiss the question.
    ], { title: `Start the MCP server ${name}?`, placeHolder: server ? `It runs with your rights: ${server.target}` : undefined, ignoreFocusOut: true });
    if (!picked) return;
    // The view may still show the session that was active before (e.g. one resumed after a
    // reload); the question is asked in the session now open, so look there too.
    const active = this.host.activeSession();
    const asked = this.host.pendingPermission(sessionId, approvalToolUseId(name)) ? sessionId
      : active && this.host.pendingPermission(active, approvalToolUseId(name)) ? active : undefined;
    const requestId = asked && this.host.pendingPermission(asked, approvalToolUseId(name));
    if (requestId) {
      this.host.answerPermission(requestId, 'deny' in picked ? { decision: 'deny' } : { decision: 'allow', remember: picked.remember });
    } else {
      // Not asked yet: approve (it starts) or refuse (the session will not ask about it).
      const answer = 'deny' in picked ? { approve: false } : { remember: picked.remember === 'project' };
      try {
        await this.host.request(Methods.mcpApprove, { sessionId, server: name, ...answer });
      } catch (err) {
        void vscode.window.showErrorMessage(`lsp-agent: could not ${'deny' in picked ? 'refuse' : 'start'} ${name}: ${errorText(err)}`);
      }
    }
    this.refresh(500);
  }

  private async open(path: string): Promise<void> {
    await vscode.window.showTextDocument(vscode.Uri.file(path), { preview: true });
  }
}
