// Starts `python -m lsp_agent serve` through vscode-languageclient and keeps it running.

import { execFile, spawn } from 'node:child_process';
import * as vscode from 'vscode';
import {
  CloseAction, ErrorAction, LanguageClient, State, type ClientCapabilities, type ErrorHandler,
  type LanguageClientOptions, type ServerOptions, type StaticFeature,
} from 'vscode-languageclient/node';
import { isCompatibleProtocol, type InitializationOptions, type Mode } from './shared/protocol';
import { DEFAULT_INSTALL_SOURCE, pipInstallArgs } from './shared/setup';

export const SECRET_KEY = 'lspAgent.anthropicApiKey';
const CHECK_TIMEOUT_MS = 20_000;
const MAX_BACKOFF_MS = 30_000;
const STABLE_AFTER_MS = 60_000;

/** The interpreter the server runs with, and where that choice came from (said in the log). */
export interface Interpreter { path: string; source: string }

/** The client, with a normal exit logged as such instead of as an error. */
class AgentLanguageClient extends LanguageClient {
  override error(message: string, data?: unknown, showNotification?: boolean | 'force'): void {
    if (/^Server process exited with code 0\.?$/.test(message)) {
      this.info('The server process ended normally.');
      return;
    }
    super.error(message, data, showNotification);
  }
}

/** The panel and the single status item show a turn's progress: no second, work-done one. */
const NO_WORK_DONE_PROGRESS: StaticFeature = {
  fillClientCapabilities(capabilities: ClientCapabilities): void {
    if (capabilities.window) capabilities.window.workDoneProgress = false;
  },
  initialize(): void {},
  getState: () => ({ kind: 'static' }),
  clear(): void {},
};

export interface ServerHooks {
  /** Called with each new running client, to register handlers on it. */
  onClient(client: LanguageClient): void;
  /** The server process ended; a new one starts in restartInMs. */
  onStopped(restartInMs: number): void;
  /** lsp_agent is not importable by the interpreter: the server cannot start. */
  onMissing(python: string): void;
  /** Before a server command (lspAgent.fix/explain/change) runs: adjust its arguments, or cancel. */
  prepareCommand(command: string, args: any[]): Promise<any[] | undefined>;
  /** A server command started a session. */
  commandStarted(result: unknown): void;
}

export class ServerManager implements vscode.Disposable {
  client: LanguageClient | undefined;
  private restarts = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private disposed = false;
  /** The "not installed" notification while it is up: closed when the server starts. */
  private missingNotice: { python: string; close: () => void } | undefined;
  /** Restarts run one after another; a burst of setting changes makes one restart. */
  private restartChain: Promise<void> = Promise.resolve();
  private restartQueued = false;
  /** The interpreter the running (or last started) server uses. */
  python: Interpreter | undefined;

  constructor(
    private readonly context: vscode.ExtensionContext,
    readonly output: vscode.OutputChannel,
    private readonly hooks: ServerHooks,
  ) {}

  async start(): Promise<void> {
    if (this.disposed) return;
    const interpreter = await resolvePython();
    this.python = interpreter;
    const python = interpreter.path;
    const missing = await checkInstalled(python);
    if (missing) {
      this.output.appendLine(`lsp-agent is not importable by ${python} (${interpreter.source}): ${missing}`);
      this.hooks.onMissing(python);
      this.showMissing(python);
      return;
    }
    this.closeMissing();
    const env = await this.serverEnv();
    const args = ['-m', 'lsp_agent', ...settings().get<string[]>('serverArgs', []), 'serve'];
    this.output.appendLine(`starting: ${python} ${args.join(' ')} (interpreter from ${interpreter.source})`);
    const serverOptions: ServerOptions = { command: python, args, options: { env } };
    const client = new AgentLanguageClient('lspAgent', 'lsp-agent', serverOptions, this.clientOptions());
    client.registerFeature(NO_WORK_DONE_PROGRESS);
    this.client = client;
    this.startedAt = Date.now();
    try {
      await client.start();
    } catch (err) {
      this.output.appendLine(`the server failed to start: ${String(err)}`);
      this.client = undefined;
      this.scheduleRestart();
      return;
    }
    const version = (client.initializeResult?.capabilities.experimental as any)?.lspAgent?.protocolVersion;
    if (!isCompatibleProtocol(version)) {
      void vscode.window.showWarningMessage(`lsp-agent: the server speaks protocol ${String(version)}; this extension expects 1.x.`);
    }
    this.hooks.onClient(client);
  }

  /** Stop and start again, after any restart already under way; bursts collapse into one. */
  restart(): Promise<void> {
    if (this.restartQueued) return this.restartChain;
    this.restartQueued = true;
    const run = async () => {
      this.restartQueued = false;
      clearTimeout(this.restartTimer);
      await this.stop();
      this.restarts = 0;
      await this.start();
    };
    this.restartChain = this.restartChain.then(run, run);
    return this.restartChain;
  }

  /** Resolves once no restart is under way or queued (a burst of setting changes ends in one). */
  settled(): Promise<void> {
    return this.restartChain;
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client && client.state !== State.Stopped) {
      await client.stop(5000).catch((err) => this.output.appendLine(`stop: ${String(err)}`));
    }
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.restartTimer);
    this.closeMissing();
    void this.stop();
  }

  private clientOptions(): LanguageClientOptions {
    const config = settings();
    const permissionMode = config.get<Mode>('permissionMode', 'default');
    const mode: Mode = permissionMode === 'default' && config.get<boolean>('autoApplyEdits') ? 'acceptEdits' : permissionMode;
    const initializationOptions: InitializationOptions = {
      mode,
      ...(config.get<string>('model') ? { model: config.get<string>('model') } : {}),
      pythonLanguageFeatures: config.get<boolean>('pythonLanguageFeatures', false),
      editorSavesAppliedEdits: true,
      editorBridge: true,
    };
    return {
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      outputChannel: this.output,
      initializationOptions,
      errorHandler: this.errorHandler(),
      middleware: {
        executeCommand: async (command, args, next) => {
          const prepared = await this.hooks.prepareCommand(command, args);
          if (!prepared) return undefined;
          const result = await next(command, prepared);
          this.hooks.commandStarted(result);
          return result;
        },
      },
    };
  }

  /** Restart with exponential backoff; a server that ran a minute resets the backoff. */
  private errorHandler(): ErrorHandler {
    return {
      error: () => ({ action: ErrorAction.Continue }),
      closed: () => {
        if (!this.disposed) this.scheduleRestart();
        return { action: CloseAction.DoNotRestart, handled: true };
      },
    };
  }

  private scheduleRestart(): void {
    if (Date.now() - this.startedAt > STABLE_AFTER_MS) this.restarts = 0;
    const delay = Math.min(1000 * 2 ** this.restarts, MAX_BACKOFF_MS);
    this.hooks.onStopped(delay);
    this.restarts += 1;
    this.output.appendLine(`the server stopped; restarting in ${delay / 1000}s`);
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      this.client = undefined;
      void this.start();
    }, delay);
  }

  private async serverEnv(): Promise<NodeJS.ProcessEnv> {
    const env: NodeJS.ProcessEnv = { ...process.env, ...settings().get<Record<string, string>>('serverEnv', {}) };
    const key = await this.context.secrets.get(SECRET_KEY);
    if (key) env.ANTHROPIC_API_KEY = key;
    const baseUrl = settings().get<string>('baseUrl');
    if (baseUrl) env.ANTHROPIC_BASE_URL = baseUrl;
    return env;
  }

  /**
   * Say that the interpreter lacks lsp-agent, with one-click fixes, in a notification that closes
   * by itself once the server starts (a progress notification: plain ones cannot be closed).
   */
  private showMissing(python: string): void {
    if (this.missingNotice?.python === python) return;
    this.closeMissing();
    let close = () => {};
    const closed = new Promise<void>((resolve) => { close = resolve; });
    this.missingNotice = { python, close };
    void vscode.window.withProgress({
      location: vscode.ProgressLocation.Notification, cancellable: true,
      title: `lsp-agent is not installed for ${python}`,
    }, (progress, token) => {
      progress.report({ message: '[Install it there](command:lspAgent.installServer) · [Choose another interpreter](command:lspAgent.choosePython) · [Show log](command:lspAgent.showLog)' });
      token.onCancellationRequested(close);
      return closed;
    });
  }

  private closeMissing(): void {
    this.missingNotice?.close();
    this.missingNotice = undefined;
  }
}

export function settings(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration('lspAgent');
}

/** The configured interpreter, else the Python extension's selected one, else python3. */
export async function resolvePython(): Promise<Interpreter> {
  const configured = configuredPython();
  if (configured) return configured;
  const ext = vscode.extensions.getExtension('ms-python.python');
  if (ext) {
    try {
      const api = ext.isActive ? ext.exports : await ext.activate();
      const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
      const active = api?.environments?.getActiveEnvironmentPath?.(folder);
      if (active?.path) return { path: active.path as string, source: 'the Python extension' };
    } catch {
      // The Python extension failed; fall through to the default.
    }
  }
  return { path: 'python3', source: 'the default (lspAgent.pythonPath is empty)' };
}

/**
 * lspAgent.pythonPath from the most specific level that sets it. Read level by level: a value
 * set in the user settings must not be lost because another level (or another setting) changed.
 */
function configuredPython(): Interpreter | undefined {
  const found = settings().inspect<string>('pythonPath');
  const levels: [string | undefined, string][] = [
    [found?.workspaceFolderValue, 'the folder settings'], [found?.workspaceValue, 'the workspace settings'],
    [found?.globalValue, 'the user settings'], [settings().get<string>('pythonPath'), 'the settings'],
  ];
  for (const [value, where] of levels) {
    if (typeof value === 'string' && value.trim()) return { path: value.trim(), source: `lspAgent.pythonPath in ${where}` };
  }
  return undefined;
}

/** Empty string when lsp_agent imports, else why not (bounded in time). */
export function checkInstalled(python: string): Promise<string> {
  return new Promise((resolve) => {
    execFile(python, ['-c', 'import lsp_agent'], { timeout: CHECK_TIMEOUT_MS, maxBuffer: 64 * 1024 }, (err, _out, stderr) => {
      if (!err) resolve('');
      else resolve((stderr || err.message).trim().split('\n').pop() ?? 'unknown error');
    });
  });
}

/**
 * pip-install lsp-agent into the interpreter the server uses, showing progress, with pip's output
 * in the Output channel; true when it worked. Bounded: the user can cancel it (pip is killed).
 */
export async function installServer(output: vscode.OutputChannel): Promise<boolean> {
  const python = (await resolvePython()).path;
  const install = pipInstallArgs(settings().get<string>('installSource', DEFAULT_INSTALL_SOURCE));
  if ('error' in install) {
    output.appendLine(`install: ${install.error}`);
    void vscode.window.showErrorMessage(`lsp-agent: ${install.error}.`, 'Open Settings')
      .then((choice) => choice && vscode.commands.executeCommand('workbench.action.openSettings', 'lspAgent.installSource'));
    return false;
  }
  output.appendLine(`installing: ${python} ${install.args.map(quote).join(' ')}`);
  return vscode.window.withProgress({
    location: vscode.ProgressLocation.Notification, title: `Installing lsp-agent into ${python}…`, cancellable: true,
  }, (_progress, token) => new Promise<boolean>((resolve) => {
    // A relative wheel or folder is read from the workspace folder, as the setting's users expect.
    const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const child = spawn(python, install.args, { stdio: ['ignore', 'pipe', 'pipe'], ...(cwd ? { cwd } : {}) });
    const log = (data: Buffer) => output.append(data.toString());
    child.stdout.on('data', log);
    child.stderr.on('data', log);
    token.onCancellationRequested(() => child.kill());
    child.on('error', (err) => { output.appendLine(`install failed: ${err.message}`); resolve(false); });
    child.on('close', (code) => {
      output.appendLine(`pip exited with code ${code}`);
      if (code !== 0 && !token.isCancellationRequested) {
        void vscode.window.showErrorMessage(`lsp-agent: pip could not install lsp-agent into ${python} (exit code ${code}).`, 'Show Log')
          .then((choice) => choice && output.show(true));
      }
      resolve(code === 0);
    });
  }));
}

function quote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
