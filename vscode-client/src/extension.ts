// Entry point: wires the server, the chat panel, the inline review and the editor bridge.

import * as vscode from 'vscode';
import {
  ApplyWorkspaceEditRequest, type ApplyWorkspaceEditParams, type CancellationToken, type LanguageClient,
} from 'vscode-languageclient/node';
import { ExtensionsView, TasksView, type ViewsHost } from './agentViews';
import { InboxView, MemoryView, WatcherStatusItem, type AutonomyHost } from './autonomyViews';
import { registerBridge } from './bridge';
import { ChatViewProvider } from './chatView';
import { CompanionItem } from './companion';
import { DiagnosticsForwarder } from './diagnosticsForwarder';
import { AutonomyMethods, preparedFixOf, watchEventOf, type PreparedFix } from './shared/autonomyProtocol';
import { WATCH_MOOD, type CompanionMood } from './shared/companion';
import { OncePerServer } from './shared/warmUp';
import { ReviewController, errorText } from './review';
import { installServer, SECRET_KEY, ServerManager, settings } from './server';
import { ANSWER_COMMAND, answerOfLink, permissionLinks, permissionTitle } from './shared/permissionNotice';
import { hasCredential } from './shared/setup';
import { SavedSessions, SESSIONS_VIEW } from './sessionsView';
import {
  currentActivity, overallStatus, reduce, restoreState, sessionStatus, STATUS_TEXT, type ChatAction, type ChatState,
  type SessionStatus,
} from './shared/chatState';
import type { FromWebview, MentionItem, ViewModel } from './shared/messages';
import { mergeMentionItems } from './shared/mcpMentions';
import {
  type DreamStatus, type InboxItem, MODE_INFO, MODES, Methods, type AgentEvent, type EditorContext, type EventNotification, type Mode, type PermissionAnswer,
  type McpResource, type PermissionRequest, type RequestMethod, type Requests, type SlashCommand,
} from './shared/protocol';

const STATE_KEY = 'lspAgent.chatState';
/** Events after which the Tasks view looks again (a task started, ended or a child ran). */
/** How long a prompt waits for the session a restarted server is resuming. */
const RESUME_WAIT_MS = 10_000;
const TASK_EVENTS = new Set(['background_task_ended', 'tool_result', 'subagent_started', 'subagent_ended', 'turn_ended']);
const DEFAULT_MODELS = ['claude-sonnet-4-5', 'claude-opus-4-1', 'claude-haiku-4-5'];
const DEFAULT_ENDPOINT = 'https://api.anthropic.com';
/** How the companion reads the status bar's state. */
const COMPANION_MOOD: Record<SessionStatus | ViewModel['server'], CompanionMood> = {
  idle: 'idle', running: 'working', permission: 'waiting', review: 'review',
  starting: 'idle', restarting: 'offline', missing: 'offline', stopped: 'offline',
};
/** What the model picker says of the models it knows; others are listed without a description. */
const MODEL_INFO: Record<string, string> = {
  'claude-sonnet-4-5': 'Balanced: strong coding at moderate cost',
  'claude-opus-4-1': 'Most capable, slowest and most expensive',
  'claude-haiku-4-5': 'Fastest and cheapest, for simple tasks',
};

class Extension {
  private state: ChatState;
  private serverState: ViewModel['server'] = 'starting';
  private restartInMs = 0;
  private model = '';
  private readonly permissionWaiters = new Map<string, (answer: PermissionAnswer) => void>();
  /** The notification asking each permission while the panel was hidden: closed once it is moot. */
  private readonly permissionNotices = new Map<string, () => void>();
  private nextPermissionId = 1;
  private clientDisposables: vscode.Disposable[] = [];
  /** Turns that ended while the panel was hidden, not yet seen (the activity-bar badge). */
  private unseen = new Set<string>();
  private askedForKey = false;
  readonly output = vscode.window.createOutputChannel('lsp-agent');
  readonly status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 100);
  readonly server: ServerManager;
  readonly review: ReviewController;
  readonly chat: ChatViewProvider;
  /** Saved sessions: the Sessions view, resume, checkpoints, prompt history (sessionsView.ts). */
  readonly sessions: SavedSessions;
  /** The Tasks view and the MCP & Customizations view of the active session (agentViews.ts). */
  readonly tasks: TasksView;
  readonly extensions: ExtensionsView;
  /** The watcher's Inbox and status-bar item (autonomyViews.ts). */
  readonly inbox: InboxView;
  readonly watcher: WatcherStatusItem;
  /** The project's auto memory and Dream (autonomyViews.ts). */
  readonly memory: MemoryView;
  /** The status-bar companion (companion.ts): the agent's state at a glance. */
  readonly companion: CompanionItem;
  /** The editor's diagnostics to the watcher while it is on (diagnosticsForwarder.ts). */
  readonly diagnostics: DiagnosticsForwarder;
  private readonly warmedUp = new OncePerServer<LanguageClient>();
  /**
   * Sessions the user did not start here (the watcher's, speculative fixes): their proposals wait
   * in the Inbox instead of opening an editor or a notification; following one ends that.
   */
  private readonly background = new Set<string>();
  private viewedSession: string | undefined;
  /** The session open before a reload or restart, being resumed: prompts wait for it. */
  private resuming: Promise<void> | undefined;

  constructor(private readonly context: vscode.ExtensionContext) {
    // The transcript is restored for display; sessions themselves live in the server process.
    this.state = restoreState(context.workspaceState.get<unknown>(STATE_KEY));
    this.server = new ServerManager(context, this.output, {
      onClient: (client) => this.attach(client),
      onMissing: () => { this.serverState = 'missing'; this.refreshStatus(); this.chat.update(); },
      onStopped: (restartInMs) => { this.restartInMs = restartInMs; this.detach('restarting'); },
      prepareCommand: (command, args) => prepareCommand(command, args),
      commandStarted: (result) => {
        const prepared = preparedFixOf(result);
        if (prepared) { void this.openPrepared(prepared); return; }
        const sessionId = (result as { sessionId?: unknown } | undefined)?.sessionId;
        if (typeof sessionId === 'string') this.followSession(sessionId);
      },
    });
    this.review = new ReviewController((params) => this.request(Methods.review, params));
    this.chat = new ChatViewProvider(context.extensionUri, () => this.viewModel(), (msg, reply) => void this.fromWebview(msg, reply));
    this.chat.onDidBecomeVisible(() => { this.unseen.clear(); this.refreshBadge(); this.warmUp(); });
    this.sessions = new SavedSessions({
      send: <R>(method: string, params: object) => {
        if (!this.client) return Promise.reject(new Error('the lsp-agent server is not running (see the lsp-agent output)'));
        return this.client.sendRequest<R>(method, params);
      },
      dispatch: (action) => this.dispatch(action),
      state: () => this.state,
      revealChat: () => this.chat.reveal(false),
      log: (line) => this.output.appendLine(line),
    });
    const views: ViewsHost = {
      request: (method, params) => this.request(method, params),
      activeSession: () => this.activeSession(),
      pendingPermission: (sessionId, toolUseId) => this.state.sessions[sessionId]?.permissions.find((p) => p.toolUseId === toolUseId)?.requestId,
      answerPermission: (requestId, answer) => this.answerPermission(requestId, answer),
      log: (line) => this.output.appendLine(line),
    };
    this.tasks = new TasksView(views);
    this.extensions = new ExtensionsView(views);
    const autonomy: AutonomyHost = {
      request: (method, params) => this.request(method, params),
      pendingProposals: () => this.review.pendingIds(),
      openProposal: (proposalId) => this.review.openProposal(proposalId),
      openSession: (sessionId) => this.openSession(sessionId),
      log: (line) => this.output.appendLine(line),
    };
    this.inbox = new InboxView(autonomy);
    this.watcher = new WatcherStatusItem(autonomy);
    this.memory = new MemoryView(autonomy);
    this.companion = new CompanionItem(context, async (prompt) => { await this.chat.reveal(false); await this.prompt(prompt, []); });
    this.diagnostics = new DiagnosticsForwarder((line) => this.output.appendLine(line));
    this.watcher.onDidChangeActive((active) => this.diagnostics.setActive(active));
    this.status.command = 'lspAgent.openChat';
    this.refreshStatus();
    this.status.show();
  }

  get client(): LanguageClient | undefined {
    return this.server.client;
  }

  // -- the server ---------------------------------------------------------------------------

  private attach(client: LanguageClient): void {
    this.serverState = 'running';
    this.clientDisposables = [
      client.onNotification(Methods.event, (n: EventNotification) => this.onEvent(n)),
      client.onNotification(Methods.inbox, (n: { item: InboxItem }) => { this.inbox.onItem(n.item); this.companion.flash('inbox'); }),
      client.onNotification(Methods.dreamStatus, (n: DreamStatus) => this.memory.onDreamStatus(n)),
      client.onNotification(AutonomyMethods.watchEvent, (n: unknown) => this.onWatchEvent(n)),
      client.onRequest(Methods.requestPermission, (p: PermissionRequest, token: CancellationToken) => this.askPermission(p, token)),
      client.onRequest(ApplyWorkspaceEditRequest.type, (p) => this.applyEdit(client, p)),
      ...registerBridge(client),
    ];
    // Sessions of a previous server process are gone: keep their transcripts read-only.
    const previous = this.state.activeSessionId;
    this.state = { ...this.state, activeSessionId: undefined };
    this.changed();
    // ...except the one that was open: it is saved, resume it with its history.
    // A prompt waits for the resume, but never for long: a server that is slow to answer it must
    // not swallow what the user types (the resume goes on, and only takes over an empty panel).
    let timer: NodeJS.Timeout | undefined;
    const resume = this.sessions.resumeOnStart(previous).finally(() => clearTimeout(timer));
    this.resuming = Promise.race([resume, new Promise<void>((done) => {
      timer = setTimeout(() => {
        this.output.appendLine(`[${previous}] still resuming after ${RESUME_WAIT_MS / 1000}s; prompts no longer wait for it`);
        done();
      }, RESUME_WAIT_MS);
    })]);
    this.sessions.refresh();
    this.diagnostics.setClient(client);
    if (this.chat.visible) this.warmUp();
    void this.inbox.load();
    void this.watcher.refresh();
    if (this.memory.view.visible) void this.memory.load();
  }

  private detach(serverState: ViewModel['server']): void {
    this.serverState = serverState;
    for (const d of this.clientDisposables) d.dispose();
    this.clientDisposables = [];
    for (const resolve of this.permissionWaiters.values()) resolve({ decision: 'deny', message: 'the server restarted' });
    this.permissionWaiters.clear();
    for (const close of this.permissionNotices.values()) close();
    this.permissionNotices.clear();
    this.review.forgetAll();
    this.diagnostics.setClient(undefined);
    this.watcher.clear();
    this.memory.serverStopped();
    for (const id of Object.keys(this.state.sessions)) this.dispatch({ type: 'busy', sessionId: id, busy: false });
  }

  async request<M extends RequestMethod>(method: M, params: Requests[M]['params']): Promise<Requests[M]['result']> {
    // A request made while the server restarts (a setting just changed) goes to the new server.
    await this.server.settled();
    const client = this.client;
    if (!client) throw new Error('the lsp-agent server is not running (see the lsp-agent output)');
    return client.sendRequest<Requests[M]['result']>(method, params);
  }

  /** Apply the accepted edit as one undo step, then save the files (editorSavesAppliedEdits). */
  private async applyEdit(client: LanguageClient, params: ApplyWorkspaceEditParams): Promise<{ applied: boolean; failureReason?: string }> {
    const open = new Map(vscode.workspace.textDocuments.map((d) => [d.uri.toString(), d]));
    for (const change of params.edit.documentChanges ?? []) {
      if (!('textDocument' in change) || change.textDocument.version == null) continue;
      const doc = open.get(client.protocol2CodeConverter.asUri(change.textDocument.uri).toString());
      if (doc && doc.version !== change.textDocument.version) {
        return { applied: false, failureReason: `the buffer changed (version ${doc.version}, edit for ${change.textDocument.version})` };
      }
    }
    const edit = await client.protocol2CodeConverter.asWorkspaceEdit(params.edit);
    if (!(await vscode.workspace.applyEdit(edit))) return { applied: false, failureReason: 'VS Code refused the edit' };
    const uris = edit.entries().map(([uri]) => uri);
    for (const uri of uris) {
      const doc = await vscode.workspace.openTextDocument(uri);
      if (doc.isDirty && !(await doc.save())) return { applied: true, failureReason: `could not save ${uri.fsPath}` };
    }
    return { applied: true };
  }

  // -- events and permissions ---------------------------------------------------------------

  private onEvent(notification: EventNotification): void {
    const event = notification.event;
    // A session first heard of while the user is in another one runs in the background.
    const active = this.activeSession();
    if (!this.state.sessions[event.sessionId] && active && active !== event.sessionId) this.background.add(event.sessionId);
    this.dispatch({ type: 'event', event });
    this.logEvent(event);
    if (event.type === 'proposal_created') {
      const quiet = this.background.has(event.sessionId) || this.inbox.ownsSession(event.sessionId);
      void this.review.onProposal(event, quiet);
      if (!event.autoApply && !quiet && !this.chat.visible) this.reviewWaitingHidden(event.files.map((f) => f.path), event.files[0]?.uri);
    }
    if (event.type === 'proposal_resolved') {
      this.review.onResolved(event.proposalId);
      this.inbox.onResolved(event.proposalId, event.status);
    }
    if (TASK_EVENTS.has(event.type) && event.sessionId === this.activeSession()) this.tasks.refresh();
    if (event.type === 'turn_ended') {
      this.sessions.refresh();
      if (event.sessionId === this.activeSession()) this.extensions.refresh();
      if (this.memory.view.visible) void this.memory.load(); // the turn may have written memory
      // A moment later: right after a turn the user often acts (code actions, a new prompt).
      setTimeout(() => { if (!this.state.sessions[event.sessionId]?.busy) void this.refreshContext(event.sessionId); }, 1500);
      // The watcher's turns end out of sight: their result is the Inbox item, not a "done!".
      if (!this.background.has(event.sessionId) && !this.inbox.ownsSession(event.sessionId)) {
        if (!this.chat.visible) this.turnEndedHidden(event.sessionId, event.stopReason);
        this.companion.flash(event.stopReason === 'end_turn' ? 'done' : 'error');
      }
    }
  }

  /** ``agent/watchEvent``: the companion reacts (rate-limited); an unknown kind is ignored. */
  private onWatchEvent(raw: unknown): void {
    const event = watchEventOf(raw);
    if (!event) return;
    this.output.appendLine(`watcher: ${event.kind}${event.detail ? `: ${event.detail}` : ''}`);
    this.companion.flash(WATCH_MOOD[event.kind], event.detail);
  }

  /** ``agent/warmUp``, once per server process: the user is about to prompt (issue 16). */
  private warmUp(): void {
    const client = this.client;
    if (!client || !this.warmedUp.take(client)) return;
    client.sendNotification(AutonomyMethods.warmUp, {}).catch((err: unknown) => this.output.appendLine(`warmUp: ${errorText(err)}`));
  }

  /**
   * "Fix with agent" found the fix prepared already (the watcher's speculative fix): its
   * session in the chat and its proposal in the editor at once, no new turn.
   */
  private async openPrepared(prepared: PreparedFix): Promise<void> {
    this.followSession(prepared.sessionId);
    for (const proposalId of prepared.proposalIds) {
      if (await this.review.openProposal(proposalId)) return;
    }
    this.output.appendLine(`[${prepared.sessionId}] the prepared fix (${prepared.proposalIds.join(', ') || 'no proposal'}) is not held by this window: showing its session`);
  }

  /** Show a session in the chat; one not in the panel (after a reload) is resumed from its saved transcript. */
  private openSession(sessionId: string): void {
    this.background.delete(sessionId);
    if (this.state.sessions[sessionId]) this.dispatch({ type: 'activate', sessionId });
    else void this.sessions.resume(sessionId).catch((err) => void vscode.window.showErrorMessage(`lsp-agent: cannot open the session: ${errorText(err)}`));
    void this.chat.reveal(false);
  }

  /** What the user may need to act on goes to the Output channel too (with the endpoint). */
  private logEvent(event: AgentEvent): void {
    const at = `[${event.sessionId}]`;
    if (event.type === 'retrying') this.output.appendLine(`${at} model request to ${this.endpoint()} failed: ${event.reason}; retry ${event.attempt} in ${event.delaySeconds}s`);
    if (event.type === 'error') this.output.appendLine(`${at} error (${event.kind}) from ${this.endpoint()}: ${event.message}`);
    if (event.type === 'model_fallback') this.output.appendLine(`${at} switched from ${event.fromModel} to ${event.toModel}: ${event.reason}`);
    if (event.type === 'cost') this.output.appendLine(`${at} turn cost $${event.turn.usd.toFixed(4)}, session $${event.session.usd.toFixed(4)}`);
  }

  private endpoint(): string {
    return settings().get<string>('baseUrl', '') || DEFAULT_ENDPOINT;
  }

  /** A turn ended while the panel was hidden: a badge on the activity-bar icon and a notification. */
  private turnEndedHidden(sessionId: string, stopReason: string): void {
    this.unseen.add(sessionId);
    this.refreshBadge();
    const title = this.state.sessions[sessionId]?.title ?? 'the session';
    const text = stopReason === 'end_turn' ? `lsp-agent finished "${title}".` : `lsp-agent stopped "${title}" (${stopReason}).`;
    void vscode.window.showInformationMessage(text, 'Open Chat').then((choice) => {
      if (choice) { this.dispatch({ type: 'activate', sessionId }); void this.chat.reveal(false); }
    });
  }

  /** A proposal waits for review while the panel is hidden: say so (the badge counts it too). */
  private reviewWaitingHidden(paths: string[], firstUri: string | undefined): void {
    const names = paths.map((p) => vscode.workspace.asRelativePath(p)).join(', ');
    void vscode.window.showInformationMessage(`lsp-agent proposes changes to ${names}: waiting for your review.`, 'Review', 'Open Chat')
      .then((choice) => {
        if (choice === 'Review' && firstUri) void openAt(firstUri);
        if (choice === 'Open Chat') void this.chat.reveal(false);
      });
  }

  /** The badge counts what waits for the user: permissions, reviews and unseen answers. */
  private refreshBadge(): void {
    if (this.chat.visible) this.unseen.clear(); // seen now, whatever the visibility events said
    const waiting = Object.values(this.state.sessions).filter((s) => ['permission', 'review'].includes(sessionStatus(s))).length;
    const count = waiting + [...this.unseen].filter((id) => this.state.sessions[id] && sessionStatus(this.state.sessions[id]) === 'idle').length;
    this.chat.setBadge(count, count ? `${count} waiting for you in lsp-agent` : '');
  }

  /** The context meter: what the session's next request would hold. */
  private async refreshContext(sessionId: string): Promise<void> {
    if (!this.client) return;
    try {
      const report = await this.request(Methods.context, { sessionId });
      this.dispatch({ type: 'context', sessionId, context: { totalTokens: report.totalTokens, windowTokens: report.windowTokens, ratio: report.ratio, parts: report.parts } });
    } catch (err) {
      this.output.appendLine(`context: ${errorText(err)}`);
    }
  }

  private askPermission(request: PermissionRequest, token?: CancellationToken): Promise<PermissionAnswer> {
    const requestId = `perm-${this.nextPermissionId++}`;
    const answer = new Promise<PermissionAnswer>((resolve) => this.permissionWaiters.set(requestId, resolve));
    // The server withdraws the ask ($/cancelRequest) when the turn stops or it gave up waiting.
    const withdrawn = token?.onCancellationRequested(() => this.withdrawPermission(requestId));
    void answer.finally(() => withdrawn?.dispose());
    this.dispatch({ type: 'permissionRequested', request: { ...request, requestId } });
    if (!this.chat.visible) this.notifyPermission(requestId, request);
    return answer;
  }

  /**
   * Ask in a notification while the panel is hidden. A progress notification with the answers
   * as links: unlike a message with buttons, it can be closed when the question is moot.
   */
  private notifyPermission(requestId: string, request: PermissionRequest): void {
    let close = () => {};
    const closed = new Promise<void>((resolve) => { close = resolve; });
    this.permissionNotices.set(requestId, close);
    // Cancellable: its Cancel button keeps the toast expanded with the links in view; Cancel only
    // closes the notification (the question stays in the panel, counted by the badge).
    void vscode.window.withProgress({
      location: vscode.ProgressLocation.Notification, cancellable: true,
      title: permissionTitle(request.tool, request.reason),
    }, (progress, token) => {
      progress.report({ message: permissionLinks(requestId) });
      token.onCancellationRequested(() => this.closePermissionNotice(requestId));
      return closed;
    });
  }

  /** An answer from the notification's links. */
  answerFromNotice(requestId: unknown, answer: unknown): void {
    if (typeof requestId === 'string') this.answerPermission(requestId, answerOfLink(answer));
  }

  private answerPermission(requestId: string, answer: PermissionAnswer): void {
    const resolve = this.permissionWaiters.get(requestId);
    if (!resolve) return;
    this.permissionWaiters.delete(requestId);
    this.closePermissionNotice(requestId);
    resolve(answer);
    this.dispatch({ type: 'permissionAnswered', requestId, decision: answer.decision });
    this.extensions.refresh(500); // an MCP server's approval starts it
  }

  /** The server no longer waits for this answer: take the question down everywhere. */
  private withdrawPermission(requestId: string): void {
    const resolve = this.permissionWaiters.get(requestId);
    if (!resolve) return;
    this.permissionWaiters.delete(requestId);
    this.closePermissionNotice(requestId);
    resolve({ decision: 'deny', message: 'withdrawn by the server' }); // ignored by the server; frees the handler
    this.output.appendLine(`permission request withdrawn by the server (${requestId})`);
    this.dispatch({ type: 'permissionWithdrawn', requestId });
  }

  private closePermissionNotice(requestId: string): void {
    this.permissionNotices.get(requestId)?.();
    this.permissionNotices.delete(requestId);
  }

  // -- state --------------------------------------------------------------------------------

  dispatch(action: ChatAction): void {
    this.state = reduce(this.state, action);
    this.changed();
  }

  private changed(): void {
    this.chat.update();
    this.refreshStatus();
    this.refreshBadge();
    void this.context.workspaceState.update(STATE_KEY, this.state);
    const active = this.activeSession();
    void vscode.commands.executeCommand('setContext', 'lspAgent.busy', !!active && !!this.state.sessions[active].busy);
    if (active !== this.viewedSession) {
      // Another session: its own tasks, MCP servers and customizations.
      this.viewedSession = active;
      this.tasks?.refresh();
      this.extensions?.refresh();
    }
  }

  reviewChanged(): void {
    this.chat.update();
    this.refreshStatus();
  }

  private viewModel(): ViewModel {
    const models = settings().get<string[]>('models', DEFAULT_MODELS);
    return {
      state: this.state, decisions: this.review.decisions(), models, model: this.model || settings().get<string>('model', '') || models[0],
      server: this.serverState, endpoint: this.endpoint(), python: this.server.python?.path,
      workspaceRoot: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath,
    };
  }

  /** The one status item: the server's state, else the most urgent state of the sessions. */
  private refreshStatus(): void {
    const server = this.serverState;
    const status: SessionStatus | ViewModel['server'] = server === 'running' ? overallStatus(this.state) : server;
    const text: Record<typeof status, string> = {
      idle: '$(hubot) lsp-agent', running: '$(sync~spin) lsp-agent: working', review: '$(git-pull-request) lsp-agent: waiting for your review',
      permission: '$(bell-dot) lsp-agent: waiting for your permission',
      starting: '$(loading~spin) lsp-agent: starting', restarting: '$(loading~spin) lsp-agent: restarting', missing: '$(warning) lsp-agent: not installed', stopped: '$(debug-disconnect) lsp-agent: stopped',
    };
    this.status.text = text[status];
    const tooltips: Record<string, string> = {
      starting: 'The lsp-agent server is starting',
      restarting: `The lsp-agent server stopped; restarting in ${this.restartInMs / 1000}s (see the lsp-agent output)`,
      stopped: 'The lsp-agent server is not running: click to open the chat, see the lsp-agent output for details',
      missing: `lsp-agent is not installed for ${this.server.python?.path ?? 'the configured Python'}: click to install it`,
      review: 'lsp-agent proposed changes: review them in the editor or the chat',
      permission: 'lsp-agent asks for your permission: answer in the chat',
    };
    const activity = status === 'running' ? this.busyActivity() : undefined;
    this.status.tooltip = tooltips[status] ?? (activity ? `lsp-agent: ${activity}` : `lsp-agent: ${STATUS_TEXT.idle}. Open the chat`);
    this.status.command = status === 'missing' ? 'lspAgent.installServer' : 'lspAgent.openChat';
    this.status.backgroundColor = status === 'permission' || status === 'review' ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.companion?.setState(COMPANION_MOOD[status]);
  }

  /** What a working session is doing now, from its todo list. */
  private busyActivity(): string | undefined {
    const active = this.activeSession();
    const sessions = Object.values(this.state.sessions).filter((s) => s.busy);
    const session = sessions.find((s) => s.sessionId === active) ?? sessions[0];
    return session && currentActivity(session);
  }

  // -- sessions and prompts -----------------------------------------------------------------

  private activeSession(): string | undefined {
    const id = this.state.activeSessionId;
    return id && this.state.sessions[id] ? id : undefined;
  }

  /** A session being created: a prompt sent meanwhile belongs to it, not to the old one. */
  private creatingSession: Promise<string> | undefined;

  newSession(): Promise<string> {
    const creating = this.createSession();
    this.creatingSession = creating;
    const clear = () => { if (this.creatingSession === creating) this.creatingSession = undefined; };
    creating.then(clear, clear);
    return creating;
  }

  private async createSession(): Promise<string> {
    const config = settings();
    const permissionMode = config.get<Mode>('permissionMode', 'default');
    const mode: Mode = permissionMode === 'default' && config.get<boolean>('autoApplyEdits') ? 'acceptEdits' : permissionMode;
    const model = this.viewModel().model;
    const workspaceUri = vscode.workspace.workspaceFolders?.[0]?.uri.toString();
    const result = await this.request(Methods.newSession, { mode, ...(model ? { model } : {}), ...(workspaceUri ? { workspaceUri } : {}) });
    this.dispatch({ type: 'session', sessionId: result.sessionId, mode: result.mode, model: result.model });
    this.sessions.refresh();
    return result.sessionId;
  }

  async prompt(text: string, mentions: string[]): Promise<void> {
    await this.askForKeyAtFirstUse();
    await this.resuming;
    const sessionId = (this.creatingSession && await this.creatingSession)
      ?? this.activeSession() ?? await this.newSession();
    const { fullText, context } = await withMentions(text, mentions);
    this.dispatch({ type: 'userPrompt', sessionId, text });
    this.dispatch({ type: 'busy', sessionId, busy: true });
    try {
      await this.request(Methods.prompt, { sessionId, text: fullText, ...(context ? { context } : {}) });
    } catch (err) {
      this.dispatch({ type: 'notice', sessionId, level: 'error', text: errorText(err) });
    } finally {
      this.dispatch({ type: 'busy', sessionId, busy: false });
    }
  }

  /** The active session's MCP resources for `@` completion; none without a session or in time. */
  private async mcpResources(query: string): Promise<McpResource[]> {
    const sessionId = this.activeSession();
    if (!sessionId) return [];
    const listed = this.request(Methods.mcpResources, { sessionId, query }).then((r) => r.resources, () => []);
    return Promise.race([listed, new Promise<McpResource[]>((r) => setTimeout(() => r([]), 3000))]);
  }

  /**
   * No model credential anywhere (environment, lspAgent.serverEnv, secret storage): ask for the
   * API key before the first prompt rather than let it fail. Once per window: Escape goes on
   * without one (an endpoint that needs none).
   */
  private async askForKeyAtFirstUse(): Promise<void> {
    if (this.askedForKey) return;
    const env = settings().get<Record<string, string>>('serverEnv', {});
    if (hasCredential(process.env, env) || await this.context.secrets.get(SECRET_KEY)) return;
    this.askedForKey = true;
    this.output.appendLine(`no API key is set for ${this.endpoint()}: asking for one (lsp-agent: Set API Key)`);
    await setApiKey(this.context, this, this.endpoint());
  }

  /** Send the session's last prompt again (after an error). */
  private async retry(): Promise<void> {
    const session = this.state.activeSessionId ? this.state.sessions[this.state.activeSessionId] : undefined;
    const last = session && [...session.blocks].reverse().find((b) => b.kind === 'text' && b.role === 'user');
    if (last && last.kind === 'text') await this.prompt(last.text, []);
  }

  async stop(): Promise<void> {
    const sessionId = this.activeSession();
    if (sessionId) await this.request(Methods.cancel, { sessionId }).catch((err) => this.output.appendLine(`cancel: ${errorText(err)}`));
  }

  /** A command started a session on the server ("Fix with agent"): show it in the panel. */
  followSession(sessionId: string): void {
    this.background.delete(sessionId);
    const config = settings();
    const known = this.state.sessions[sessionId];
    this.dispatch({ type: 'session', sessionId, mode: known?.mode ?? config.get<Mode>('permissionMode', 'default'), model: known?.model || this.viewModel().model });
    void this.chat.reveal(true);
  }

  private async fromWebview(msg: FromWebview, reply: (data: unknown) => void): Promise<void> {
    try {
      await this.handleWebview(msg, reply);
    } catch (err) {
      void vscode.window.showErrorMessage(`lsp-agent: ${errorText(err)}`);
    }
  }

  private async handleWebview(msg: FromWebview, reply: (data: unknown) => void): Promise<void> {
    switch (msg.type) {
      case 'prompt': return this.prompt(msg.text, msg.mentions);
      case 'stop': return this.stop();
      case 'newSession': await this.newSession(); return;
      case 'selectSession': this.background.delete(msg.sessionId); this.dispatch({ type: 'activate', sessionId: msg.sessionId }); return this.refreshContext(msg.sessionId);
      case 'setMode': return this.setMode(msg.mode);
      case 'setModel': return this.setModel(msg.model);
      case 'pickMode': return this.pickMode();
      case 'pickModel': return this.pickModel();
      case 'retry': return this.retry();
      case 'openSettings': await vscode.commands.executeCommand('workbench.action.openSettings', msg.query ?? 'lspAgent'); return;
      case 'setApiKey': await vscode.commands.executeCommand('lspAgent.setApiKey'); return;
      case 'install': await vscode.commands.executeCommand('lspAgent.installServer'); return;
      case 'permission': return this.answerPermission(msg.requestId, { decision: msg.decision, remember: msg.remember, ...(msg.message ? { message: msg.message } : {}) });
      case 'review': return this.review.decideProposal(msg.proposalId, msg.decision);
      case 'openFile': return openAt(msg.uri, msg.line);
      case 'sideBySide': return this.review.openSideBySide(msg.uri);
      case 'copy': await vscode.env.clipboard.writeText(msg.text); return;
      case 'insert': return insertAtCursor(msg.text);
      case 'mentionSearch': {
        const [local, resources] = await Promise.all([mentionCandidates(msg.query), this.mcpResources(msg.query)]);
        reply({ type: 'mentionResults', query: msg.query, items: mergeMentionItems(local, resources) });
        return;
      }
      case 'listCommands': reply({ type: 'commands', ...await this.slashCommands() }); return;
      // Saved sessions (sessionsView.ts).
      case 'restoreCheckpoint': return this.sessions.restoreCheckpoint(msg.sessionId, msg.turn);
      case 'loadEarlier': return this.sessions.loadEarlier(msg.sessionId);
      case 'promptHistory': reply({ type: 'promptHistory', prompts: await this.sessions.promptHistory() }); return;
      case 'typing': this.warmUp(); return;
      default: return;
    }
  }

  /**
   * The active session's slash commands for the input's completion. Typing "/" in a new panel
   * starts the session the prompt would start anyway. A server without agent/commands: none.
   */
  private async slashCommands(): Promise<{ sessionId: string; commands: SlashCommand[] }> {
    await this.resuming;
    const sessionId = (this.creatingSession && await this.creatingSession) ?? this.activeSession() ?? await this.newSession();
    try {
      return { sessionId, commands: (await this.request(Methods.commands, { sessionId })).commands };
    } catch (err) {
      this.output.appendLine(`commands: ${errorText(err)}`);
      return { sessionId, commands: [] };
    }
  }

  private async setMode(mode: Mode): Promise<void> {
    const sessionId = this.activeSession();
    if (!sessionId) {
      await settings().update('permissionMode', mode, vscode.ConfigurationTarget.Workspace);
      return;
    }
    await this.request(Methods.setMode, { sessionId, mode });
    this.dispatch({ type: 'mode', sessionId, mode });
  }

  /**
   * The open session answers with this model from its next request on (agent/setModel); new
   * sessions start with it too. Without a session it is only the choice for the next one.
   */
  async setModel(model: string): Promise<void> {
    this.model = model;
    const sessionId = this.activeSession();
    if (sessionId && this.client) {
      const result = await this.request(Methods.setModel, { sessionId, model });
      this.dispatch({ type: 'model', sessionId, model: result.model });
      this.output.appendLine(`[${sessionId}] model: ${result.model} from the next request on`);
    } else {
      this.chat.update();
    }
  }

  pickModelCommand(): Promise<void> {
    return this.pickModel();
  }

  private async pickModel(): Promise<void> {
    const current = this.currentModel();
    const models = [...new Set([...settings().get<string[]>('models', DEFAULT_MODELS), current].filter(Boolean))];
    const items = models.map((m) => ({ label: m, description: m === current ? 'current' : '', detail: MODEL_INFO[m] }));
    const picked = await vscode.window.showQuickPick(items, {
      title: 'lsp-agent: model', placeHolder: this.activeSession() ? 'Model for this session (from its next request on)' : 'Model for new sessions',
    });
    if (picked && picked.label !== current) await this.setModel(picked.label);
  }

  private currentModel(): string {
    const id = this.activeSession();
    return (id && this.state.sessions[id].model) || this.viewModel().model;
  }

  private async pickMode(): Promise<void> {
    const id = this.activeSession();
    const current = id ? this.state.sessions[id].mode : settings().get<Mode>('permissionMode', 'default');
    const items = MODES.map((m) => ({ label: MODE_INFO[m].label, description: m === current ? 'current' : '', detail: MODE_INFO[m].description, mode: m }));
    const picked = await vscode.window.showQuickPick(items, { title: 'lsp-agent: permission mode', placeHolder: 'What the agent may do without asking' });
    if (picked && picked.mode !== current) await this.setMode(picked.mode);
  }
}

async function withMentions(text: string, mentions: string[]): Promise<{ fullText: string; context?: EditorContext }> {
  const files = mentions.filter((m) => m !== 'selection' && !m.startsWith(SYMBOL_MENTION));
  const symbols = mentions.filter((m) => m.startsWith(SYMBOL_MENTION)).map((m) => m.slice(SYMBOL_MENTION.length));
  let context: EditorContext | undefined;
  const editor = vscode.window.activeTextEditor;
  if (mentions.includes('selection') && editor) {
    const sel = editor.selection;
    context = {
      uri: editor.document.uri.toString(),
      range: { start: { line: sel.start.line, character: sel.start.character }, end: { line: sel.end.line, character: sel.end.character } },
      selectionText: editor.document.getText(sel),
    };
  }
  const fullText = [text, files.length ? `Files mentioned: ${files.join(', ')}` : '', symbols.length ? `Symbols mentioned: ${symbols.join(', ')}` : '']
    .filter(Boolean).join('\n\n');
  return { fullText, context };
}

/** Open a file (at a line) where it is already shown, else in the active group. */
async function openAt(uriOrPath: string, line?: number): Promise<void> {
  const root = vscode.workspace.workspaceFolders?.[0]?.uri;
  const target = /^[a-z][\w+.-]+:/i.test(uriOrPath) ? vscode.Uri.parse(uriOrPath)
    : uriOrPath.startsWith('/') || !root ? vscode.Uri.file(uriOrPath) : vscode.Uri.joinPath(root, uriOrPath);
  const selection = line !== undefined ? new vscode.Range(line, 0, line, 0) : undefined;
  await vscode.window.showTextDocument(target, { preview: true, viewColumn: columnShowing(target), ...(selection ? { selection } : {}) });
}

/** The editor group already holding this file, so no second copy opens elsewhere. */
export function columnShowing(uri: vscode.Uri): vscode.ViewColumn | undefined {
  const key = uri.toString();
  const visible = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === key);
  if (visible?.viewColumn) return visible.viewColumn;
  for (const group of vscode.window.tabGroups.all) {
    if (group.tabs.some((t) => t.input instanceof vscode.TabInputText && t.input.uri.toString() === key)) return group.viewColumn;
  }
  return undefined;
}

const SYMBOL_MENTION = 'symbol:';

async function mentionCandidates(query: string): Promise<MentionItem[]> {
  const glob = `**/*${query.replace(/[*?{}[\]]/g, '')}*`;
  const [found, symbols] = await Promise.all([
    vscode.workspace.findFiles(glob, '**/{node_modules,.git,.venv,__pycache__}/**', 20),
    symbolCandidates(query),
  ]);
  const files = found.map((uri) => vscode.workspace.asRelativePath(uri)).sort();
  const selection: MentionItem[] = vscode.window.activeTextEditor && !vscode.window.activeTextEditor.selection.isEmpty
    ? [{ label: 'selection', value: 'selection', kind: 'selection' }] : [];
  return [...selection, ...files.map((f): MentionItem => ({ label: f, value: f, kind: 'file' })), ...symbols];
}

/** Workspace symbols (the language servers' own) for "@name": mentioned as "name (path:line)". */
async function symbolCandidates(query: string): Promise<MentionItem[]> {
  if (query.length < 2) return [];
  const found = await Promise.race([
    vscode.commands.executeCommand<vscode.SymbolInformation[]>('vscode.executeWorkspaceSymbolProvider', query).then((s) => s ?? [], () => []),
    new Promise<vscode.SymbolInformation[]>((r) => setTimeout(() => r([]), 1500)), // a slow provider must not hold the list up
  ]);
  return found.slice(0, 10).map((s) => {
    const where = `${vscode.workspace.asRelativePath(s.location.uri)}:${s.location.range.start.line + 1}`;
    return { label: s.name, value: `${SYMBOL_MENTION}${s.name} (${where})`, kind: 'symbol', detail: where };
  });
}

async function insertAtCursor(text: string): Promise<void> {
  const editor = vscode.window.activeTextEditor ?? vscode.window.visibleTextEditors[0];
  if (!editor) {
    void vscode.window.showInformationMessage('lsp-agent: open an editor to insert the code into.');
    return;
  }
  await editor.edit((b) => b.replace(editor.selection, text));
}

/** Ask for the API key, keep it in the secret storage and restart the server with it. */
async function setApiKey(context: vscode.ExtensionContext, ext: Extension, firstUseEndpoint?: string): Promise<void> {
  const key = await vscode.window.showInputBox({
    title: 'lsp-agent: API key',
    prompt: firstUseEndpoint
      ? `No API key is set for ${firstUseEndpoint}. Enter it (kept in the editor's secret storage, passed to the server as ANTHROPIC_API_KEY), or press Escape if the endpoint needs none.`
      : 'Your Anthropic API key (kept in the editor\'s secret storage and passed to the server as ANTHROPIC_API_KEY)',
    placeHolder: 'sk-ant-…', password: true, ignoreFocusOut: true,
  });
  if (key === undefined || !key.trim()) return;
  await context.secrets.store(SECRET_KEY, key.trim());
  ext.output.appendLine('API key updated; restarting the server');
  await ext.server.restart();
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const ext = new Extension(context);
  extension = ext;
  context.subscriptions.push(
    ext.status, ext.server, ext.review,
    vscode.window.registerWebviewViewProvider(ChatViewProvider.viewId, ext.chat, { webviewOptions: { retainContextWhenHidden: true } }),
    ext.review.onDidChangeReview(() => { ext.reviewChanged(); ext.inbox.redraw(); }),
    vscode.commands.registerCommand('lspAgent.openChat', () => ext.chat.reveal(false)),
    vscode.commands.registerCommand('lspAgent.setApiKey', () => setApiKey(context, ext)),
    vscode.commands.registerCommand('lspAgent.clearApiKey', async () => { await context.secrets.delete(SECRET_KEY); await ext.server.restart(); }),
    // Show the panel first: creating the session may wait for a server that is still starting,
    // and a late reveal would pull the panel back after the user moved on.
    vscode.commands.registerCommand('lspAgent.newSession', async () => { await ext.chat.reveal(false); await ext.newSession(); }),
    vscode.commands.registerCommand('lspAgent.stop', () => ext.stop()),
    vscode.commands.registerCommand('lspAgent.restartServer', () => ext.server.restart()),
    vscode.commands.registerCommand('lspAgent.showLog', () => ext.output.show(true)),
    vscode.commands.registerCommand('lspAgent.installServer', async () => { if (await installServer(ext.output)) await ext.server.restart(); }),
    vscode.commands.registerCommand('lspAgent.choosePython', () => vscode.commands.executeCommand('workbench.action.openSettings', 'lspAgent.pythonPath')),
    vscode.commands.registerCommand('lspAgent.pickModel', () => ext.pickModelCommand()),
    vscode.commands.registerCommand(ANSWER_COMMAND, (requestId: unknown, answer: unknown) => ext.answerFromNotice(requestId, answer)),
    ext.sessions, ...ext.sessions.commands(),
    ext.tasks, ...ext.tasks.commands(), ext.extensions, ...ext.extensions.commands(),
    ext.inbox, ...ext.inbox.commands(), ext.watcher, ...ext.watcher.commands(),
    ext.memory, ...ext.memory.commands(), ext.companion, ext.diagnostics,
    vscode.commands.registerCommand('lspAgent.openTasks', () => vscode.commands.executeCommand('lspAgent.tasks.focus')),
    vscode.commands.registerCommand('lspAgent.openExtensions', () => vscode.commands.executeCommand('lspAgent.extensions.focus')),
    vscode.commands.registerCommand('lspAgent.openSessions', () => vscode.commands.executeCommand(`${SESSIONS_VIEW}.focus`)),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (['pythonPath', 'baseUrl', 'model', 'pythonLanguageFeatures', 'serverArgs', 'serverEnv'].some((k) => e.affectsConfiguration(`lspAgent.${k}`))) void ext.server.restart();
    }),
    // Last: disposed after the server, whose shutdown still writes to it.
    ext.output,
  );
  await ext.server.start();
}

/** "Ask agent to change this" needs to know what to change: ask before it runs. */
async function prepareCommand(command: string, args: any[]): Promise<any[] | undefined> {
  if (command !== 'lspAgent.change' || !args[0] || typeof args[0] !== 'object' || args[0].instruction) return args;
  const instruction = await vscode.window.showInputBox({ title: 'lsp-agent: change the selection', prompt: 'What should change? (empty: a clear, minimal improvement)' });
  if (instruction === undefined) return undefined;
  return [{ ...args[0], ...(instruction.trim() ? { instruction: instruction.trim() } : {}) }, ...args.slice(1)];
}

let extension: Extension | undefined;

/** Stop the server before the output channel goes: a reload then logs no "Channel has been closed". */
export async function deactivate(): Promise<void> {
  await extension?.server.stop();
  extension = undefined;
}
