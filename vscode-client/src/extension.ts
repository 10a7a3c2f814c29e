// Entry point: wires the server, the chat panel, the inline review and the editor bridge.

import * as vscode from 'vscode';
import { ApplyWorkspaceEditRequest, type ApplyWorkspaceEditParams, type LanguageClient } from 'vscode-languageclient/node';
import { registerBridge } from './bridge';
import { ChatViewProvider } from './chatView';
import { ReviewController, errorText } from './review';
import { installServer, SECRET_KEY, ServerManager, settings } from './server';
import { currentActivity, overallStatus, reduce, restoreState, type ChatAction, type ChatState } from './shared/chatState';
import type { FromWebview, ViewModel } from './shared/messages';
import {
  Methods, type EditorContext, type EventNotification, type Mode, type PermissionAnswer, type PermissionRequest,
  type RequestMethod, type Requests,
} from './shared/protocol';

const STATE_KEY = 'lspAgent.chatState';
const DEFAULT_MODELS = ['claude-sonnet-4-5', 'claude-opus-4-1', 'claude-haiku-4-5'];

class Extension {
  private state: ChatState;
  private serverState: ViewModel['server'] = 'starting';
  private restartInMs = 0;
  private model = '';
  private readonly permissionWaiters = new Map<string, (answer: PermissionAnswer) => void>();
  private nextPermissionId = 1;
  private clientDisposables: vscode.Disposable[] = [];
  readonly output = vscode.window.createOutputChannel('lsp-agent');
  readonly status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 100);
  readonly server: ServerManager;
  readonly review: ReviewController;
  readonly chat: ChatViewProvider;

  constructor(private readonly context: vscode.ExtensionContext) {
    // The transcript is restored for display; sessions themselves live in the server process.
    this.state = restoreState(context.workspaceState.get<unknown>(STATE_KEY));
    this.server = new ServerManager(context, this.output, {
      onClient: (client) => this.attach(client),
      onMissing: () => { this.serverState = 'missing'; this.refreshStatus(); this.chat.update(); },
      onStopped: (restartInMs) => { this.restartInMs = restartInMs; this.detach('restarting'); },
      prepareCommand: (command, args) => prepareCommand(command, args),
      commandStarted: (result) => {
        const sessionId = (result as { sessionId?: unknown } | undefined)?.sessionId;
        if (typeof sessionId === 'string') this.followSession(sessionId);
      },
    });
    this.review = new ReviewController((params) => this.request(Methods.review, params));
    this.chat = new ChatViewProvider(context.extensionUri, () => this.viewModel(), (msg, reply) => void this.fromWebview(msg, reply));
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
      client.onRequest(Methods.requestPermission, (p: PermissionRequest) => this.askPermission(p)),
      client.onRequest(ApplyWorkspaceEditRequest.type, (p) => this.applyEdit(client, p)),
      ...registerBridge(client),
    ];
    // Sessions of a previous server process are gone: keep their transcripts read-only.
    this.state = { ...this.state, activeSessionId: undefined };
    this.changed();
  }

  private detach(serverState: ViewModel['server']): void {
    this.serverState = serverState;
    for (const d of this.clientDisposables) d.dispose();
    this.clientDisposables = [];
    for (const resolve of this.permissionWaiters.values()) resolve({ decision: 'deny', message: 'the server restarted' });
    this.permissionWaiters.clear();
    this.review.forgetAll();
    for (const id of Object.keys(this.state.sessions)) this.dispatch({ type: 'busy', sessionId: id, busy: false });
  }

  async request<M extends RequestMethod>(method: M, params: Requests[M]['params']): Promise<Requests[M]['result']> {
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
    this.dispatch({ type: 'event', event });
    if (event.type === 'proposal_created') void this.review.onProposal(event);
    if (event.type === 'proposal_resolved') this.review.onResolved(event.proposalId);
  }

  private askPermission(request: PermissionRequest): Promise<PermissionAnswer> {
    const requestId = `perm-${this.nextPermissionId++}`;
    const answer = new Promise<PermissionAnswer>((resolve) => this.permissionWaiters.set(requestId, resolve));
    this.dispatch({ type: 'permissionRequested', request: { ...request, requestId } });
    if (!this.chat.visible) void this.notifyPermission(requestId, request);
    return answer;
  }

  private async notifyPermission(requestId: string, request: PermissionRequest): Promise<void> {
    const choice = await vscode.window.showWarningMessage(
      `lsp-agent wants to run ${request.tool}: ${request.reason}`, 'Allow Once', 'Allow for Session', 'Deny', 'Open Chat');
    if (choice === 'Open Chat' || choice === undefined) { await this.chat.reveal(false); return; }
    this.answerPermission(requestId, choice === 'Deny' ? { decision: 'deny' } : { decision: 'allow', remember: choice === 'Allow for Session' });
  }

  private answerPermission(requestId: string, answer: PermissionAnswer): void {
    const resolve = this.permissionWaiters.get(requestId);
    if (!resolve) return;
    this.permissionWaiters.delete(requestId);
    resolve(answer);
    this.dispatch({ type: 'permissionAnswered', requestId, decision: answer.decision });
  }

  // -- state --------------------------------------------------------------------------------

  dispatch(action: ChatAction): void {
    this.state = reduce(this.state, action);
    this.changed();
  }

  private changed(): void {
    this.chat.update();
    this.refreshStatus();
    void this.context.workspaceState.update(STATE_KEY, this.state);
    void vscode.commands.executeCommand('setContext', 'lspAgent.busy', overallStatus(this.state) !== 'idle');
  }

  reviewChanged(): void {
    this.chat.update();
    this.refreshStatus();
  }

  private viewModel(): ViewModel {
    const models = settings().get<string[]>('models', DEFAULT_MODELS);
    return { state: this.state, decisions: this.review.decisions(), models, model: this.model || settings().get<string>('model', '') || models[0], server: this.serverState };
  }

  private refreshStatus(): void {
    const server = this.serverState;
    const status = server === 'running' ? overallStatus(this.state) : server;
    const text = {
      idle: '$(hubot) lsp-agent', working: '$(sync~spin) lsp-agent: working', approval: '$(bell-dot) lsp-agent: waiting for approval',
      starting: '$(loading~spin) lsp-agent: starting', restarting: '$(loading~spin) lsp-agent: restarting', missing: '$(warning) lsp-agent: not installed', stopped: '$(debug-disconnect) lsp-agent: stopped',
    }[status];
    this.status.text = text;
    const tooltips: Record<string, string> = {
      starting: 'The lsp-agent server is starting',
      restarting: `The lsp-agent server stopped; restarting in ${this.restartInMs / 1000}s (see the lsp-agent output)`,
      stopped: 'The lsp-agent server is not running: click to open the chat, see the lsp-agent output for details',
      missing: 'lsp-agent is not installed for the configured Python: see the lsp-agent output',
    };
    const activity = status === 'working' ? this.busyActivity() : undefined;
    this.status.tooltip = tooltips[status] ?? (activity ? `lsp-agent: ${activity}` : 'Open the lsp-agent chat');
    this.status.backgroundColor = status === 'approval' ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
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
    return result.sessionId;
  }

  async prompt(text: string, mentions: string[]): Promise<void> {
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

  async stop(): Promise<void> {
    const sessionId = this.activeSession();
    if (sessionId) await this.request(Methods.cancel, { sessionId }).catch((err) => this.output.appendLine(`cancel: ${errorText(err)}`));
  }

  /** A command started a session on the server ("Fix with agent"): show it in the panel. */
  followSession(sessionId: string): void {
    const config = settings();
    this.dispatch({ type: 'session', sessionId, mode: config.get<Mode>('permissionMode', 'default'), model: this.viewModel().model });
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
      case 'selectSession': return this.dispatch({ type: 'activate', sessionId: msg.sessionId });
      case 'setMode': return this.setMode(msg.mode);
      case 'setModel': this.model = msg.model; this.chat.update(); return;
      case 'permission': return this.answerPermission(msg.requestId, { decision: msg.decision, remember: msg.remember, ...(msg.message ? { message: msg.message } : {}) });
      case 'review': return this.review.decideProposal(msg.proposalId, msg.decision);
      case 'openFile': await vscode.window.showTextDocument(vscode.Uri.parse(msg.uri), { preview: true }); return;
      case 'sideBySide': return this.review.openSideBySide(msg.uri);
      case 'copy': await vscode.env.clipboard.writeText(msg.text); return;
      case 'insert': return insertAtCursor(msg.text);
      case 'mentionSearch': reply({ type: 'mentionResults', items: await mentionCandidates(msg.query) }); return;
      default: return;
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
}

async function withMentions(text: string, mentions: string[]): Promise<{ fullText: string; context?: EditorContext }> {
  const files = mentions.filter((m) => m !== 'selection');
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
  const fullText = files.length ? `${text}\n\nFiles mentioned: ${files.join(', ')}` : text;
  return { fullText, context };
}

async function mentionCandidates(query: string): Promise<{ label: string; value: string }[]> {
  const glob = `**/*${query.replace(/[*?{}[\]]/g, '')}*`;
  const found = await vscode.workspace.findFiles(glob, '**/{node_modules,.git,.venv,__pycache__}/**', 20);
  const files = found.map((uri) => vscode.workspace.asRelativePath(uri)).sort();
  const selection = vscode.window.activeTextEditor && !vscode.window.activeTextEditor.selection.isEmpty
    ? [{ label: 'selection', value: 'selection' }] : [];
  return [...selection, ...files.map((f) => ({ label: f, value: f }))];
}

async function insertAtCursor(text: string): Promise<void> {
  const editor = vscode.window.activeTextEditor ?? vscode.window.visibleTextEditors[0];
  if (!editor) {
    void vscode.window.showInformationMessage('lsp-agent: open an editor to insert the code into.');
    return;
  }
  await editor.edit((b) => b.replace(editor.selection, text));
}

async function setApiKey(context: vscode.ExtensionContext, ext: Extension): Promise<void> {
  const key = await vscode.window.showInputBox({ title: 'lsp-agent: API key', prompt: 'Kept in the editor\'s secret storage and passed to the server as ANTHROPIC_API_KEY', password: true, ignoreFocusOut: true });
  if (key === undefined) return;
  await context.secrets.store(SECRET_KEY, key.trim());
  ext.output.appendLine('API key updated; restarting the server');
  await ext.server.restart();
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const ext = new Extension(context);
  context.subscriptions.push(
    ext.output, ext.status, ext.server, ext.review,
    vscode.window.registerWebviewViewProvider(ChatViewProvider.viewId, ext.chat, { webviewOptions: { retainContextWhenHidden: true } }),
    ext.review.onDidChangeReview(() => ext.reviewChanged()),
    vscode.commands.registerCommand('lspAgent.openChat', () => ext.chat.reveal(false)),
    vscode.commands.registerCommand('lspAgent.setApiKey', () => setApiKey(context, ext)),
    vscode.commands.registerCommand('lspAgent.clearApiKey', async () => { await context.secrets.delete(SECRET_KEY); await ext.server.restart(); }),
    vscode.commands.registerCommand('lspAgent.newSession', async () => { await ext.newSession(); await ext.chat.reveal(false); }),
    vscode.commands.registerCommand('lspAgent.stop', () => ext.stop()),
    vscode.commands.registerCommand('lspAgent.restartServer', () => ext.server.restart()),
    vscode.commands.registerCommand('lspAgent.showLog', () => ext.output.show(true)),
    vscode.commands.registerCommand('lspAgent.installServer', () => installServer()),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (['pythonPath', 'baseUrl', 'model', 'pythonLanguageFeatures', 'serverArgs', 'serverEnv'].some((k) => e.affectsConfiguration(`lspAgent.${k}`))) void ext.server.restart();
    }),
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

export function deactivate(): void {
  // Disposables stop the server.
}
