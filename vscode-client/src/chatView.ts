// The chat panel: a webview view whose state lives here, in the extension host, so it survives
// the webview being hidden, moved or reloaded. The webview renders snapshots and posts intents.

import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import type { FromWebview, ViewModel } from './shared/messages';

export class ChatViewProvider implements vscode.WebviewViewProvider {
  static readonly viewId = 'lspAgent.chat';
  private view: vscode.WebviewView | undefined;
  private pending: NodeJS.Timeout | undefined;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly snapshot: () => ViewModel,
    private readonly onMessage: (msg: FromWebview, reply: (data: unknown) => void) => void,
  ) {}

  private readonly becameVisible = new vscode.EventEmitter<void>();
  readonly onDidBecomeVisible = this.becameVisible.event;
  private badge: vscode.ViewBadge = { value: 0, tooltip: '' };

  get visible(): boolean {
    return !!this.view?.visible;
  }

  /** The number on the activity-bar icon (0 removes it). */
  setBadge(value: number, tooltip: string): void {
    if (value === this.badge.value && tooltip === this.badge.tooltip) return;
    // A zero badge, not undefined: undefined leaves the last badge up in VS Code 1.100.
    this.badge = { value, tooltip };
    if (this.view) this.view.badge = this.badge;
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    const dist = vscode.Uri.joinPath(this.extensionUri, 'dist');
    view.webview.options = { enableScripts: true, localResourceRoots: [dist] };
    view.webview.html = this.html(view.webview, dist);
    view.webview.onDidReceiveMessage((msg: FromWebview) => {
      if (msg.type === 'ready') this.postNow();
      else this.onMessage(msg, (data) => void view.webview.postMessage(data));
    });
    view.badge = this.badge;
    view.onDidChangeVisibility(() => { if (view.visible) { this.postNow(); this.becameVisible.fire(); } });
    view.onDidDispose(() => { this.view = undefined; });
    if (view.visible) this.becameVisible.fire(); // resolved because it is shown
  }

  /** Push the state to the webview, coalescing bursts (streamed text) into one update. */
  update(): void {
    if (this.pending || !this.view) return;
    this.pending = setTimeout(() => this.postNow(), 30);
  }

  async reveal(preserveFocus = true): Promise<void> {
    if (this.view) this.view.show(preserveFocus);
    else await vscode.commands.executeCommand(`${ChatViewProvider.viewId}.focus`);
  }

  post(data: unknown): void {
    void this.view?.webview.postMessage(data);
  }

  private postNow(): void {
    clearTimeout(this.pending);
    this.pending = undefined;
    void this.view?.webview.postMessage({ type: 'state', model: this.snapshot() });
  }

  private html(webview: vscode.Webview, dist: vscode.Uri): string {
    const nonce = randomBytes(16).toString('base64');
    const asset = (name: string) => webview.asWebviewUri(vscode.Uri.joinPath(dist, name)).toString();
    const csp = [
      `default-src 'none'`,
      `img-src ${webview.cspSource} data:`,
      `font-src ${webview.cspSource}`,
      `style-src ${webview.cspSource}`,
      `script-src 'nonce-${nonce}'`,
    ].join('; ');
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${asset('codicon.css')}">
<link rel="stylesheet" href="${asset('chat.css')}">
<title>lsp-agent</title>
</head>
<body>
<main id="app" aria-label="lsp-agent chat"></main>
<script nonce="${nonce}" src="${asset('webview.js')}"></script>
</body>
</html>`;
  }
}
