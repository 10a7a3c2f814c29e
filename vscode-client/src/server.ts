// Starts `python -m lsp_agent serve` through vscode-languageclient and keeps it running.

import { execFile } from 'node:child_process';
import * as vscode from 'vscode';
import {
  CloseAction, ErrorAction, LanguageClient, State, type ErrorHandler, type LanguageClientOptions,
  type ServerOptions,
} from 'vscode-languageclient/node';
import { isCompatibleProtocol, type InitializationOptions, type Mode } from './shared/protocol';

export const SECRET_KEY = 'lspAgent.anthropicApiKey';
const CHECK_TIMEOUT_MS = 20_000;
const MAX_BACKOFF_MS = 30_000;
const STABLE_AFTER_MS = 60_000;

export interface ServerHooks {
  /** Called with each new running client, to register handlers on it. */
  onClient(client: LanguageClient): void;
  /** The server process ended; a new one starts in restartInMs. */
  onStopped(restartInMs: number): void;
  /** lsp_agent is not importable by the interpreter: the server cannot start. */
  onMissing(): void;
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
  private missingShown = false;

  constructor(
    private readonly context: vscode.ExtensionContext,
    readonly output: vscode.OutputChannel,
    private readonly hooks: ServerHooks,
  ) {}

  async start(): Promise<void> {
    if (this.disposed) return;
    const python = await resolvePython();
    const missing = await checkInstalled(python);
    if (missing) {
      this.output.appendLine(`lsp-agent is not importable by ${python}: ${missing}`);
      this.hooks.onMissing();
      void this.offerInstall(python);
      return;
    }
    const env = await this.serverEnv();
    const args = ['-m', 'lsp_agent', ...settings().get<string[]>('serverArgs', []), 'serve'];
    this.output.appendLine(`starting: ${python} ${args.join(' ')}`);
    const serverOptions: ServerOptions = { command: python, args, options: { env } };
    const client = new LanguageClient('lspAgent', 'lsp-agent', serverOptions, this.clientOptions());
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

  async restart(): Promise<void> {
    clearTimeout(this.restartTimer);
    await this.stop();
    this.restarts = 0;
    await this.start();
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

  private async offerInstall(python: string): Promise<void> {
    if (this.missingShown) return;
    this.missingShown = true;
    const choice = await vscode.window.showErrorMessage(
      `lsp-agent is not installed for ${python}. Install it into that environment, or choose another interpreter.`,
      'Install', 'Choose Interpreter', 'Show Log');
    this.missingShown = false;
    if (choice === 'Install') await vscode.commands.executeCommand('lspAgent.installServer');
    if (choice === 'Choose Interpreter') await vscode.commands.executeCommand('workbench.action.openSettings', 'lspAgent.pythonPath');
    if (choice === 'Show Log') this.output.show(true);
  }
}

export function settings(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration('lspAgent');
}

/** The configured interpreter, else the Python extension's selected one, else python3. */
export async function resolvePython(): Promise<string> {
  const configured = settings().get<string>('pythonPath', '').trim();
  if (configured) return configured;
  const ext = vscode.extensions.getExtension('ms-python.python');
  if (ext) {
    try {
      const api = ext.isActive ? ext.exports : await ext.activate();
      const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
      const active = api?.environments?.getActiveEnvironmentPath?.(folder);
      if (active?.path) return active.path as string;
    } catch {
      // The Python extension failed; fall through to the default.
    }
  }
  return 'python3';
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

export async function installServer(): Promise<void> {
  const python = await resolvePython();
  const target = settings().get<string>('installSource', 'lsp-agent') || 'lsp-agent';
  const terminal = vscode.window.createTerminal({ name: 'lsp-agent install' });
  terminal.show();
  terminal.sendText(`${quote(python)} -m pip install ${quote(target)}`);
  const done = await vscode.window.showInformationMessage('When the installation has finished, restart the server.', 'Restart Server');
  if (done) await vscode.commands.executeCommand('lspAgent.restartServer');
}

function quote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
