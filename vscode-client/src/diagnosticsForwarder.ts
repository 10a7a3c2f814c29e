// The editor's diagnostics to the watcher (docs/autonomy.md, "In VS Code"): while the watcher is
// on (agent/watchStatus: enabled, approved, not paused), each change of a workspace file's
// diagnostics sends its full current list (agent/diagnosticsChanged), 500 ms after the last change
// of that file, without our own server's diagnostics, never the same list twice. While it is off
// nothing is subscribed: idle costs nothing.

import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { AutonomyMethods, type DiagnosticsChangedParams } from './shared/autonomyProtocol';
import { DIAGNOSTICS_DEBOUNCE_MS, isForwardable, PerKeyDebouncer, SentDiagnostics, withoutOwn } from './shared/diagnosticsForward';

/** Diagnostics our server publishes carry this source (none today; the rule is kept for when it does). */
const OWN_SOURCE = 'lsp-agent';

export class DiagnosticsForwarder implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private subscription: vscode.Disposable | undefined;
  private readonly uris = new Map<string, vscode.Uri>();
  private readonly sent = new SentDiagnostics();
  private readonly debouncer = new PerKeyDebouncer(DIAGNOSTICS_DEBOUNCE_MS,
    { set: (fn, ms) => setTimeout(fn, ms), clear: (h) => clearTimeout(h as NodeJS.Timeout) },
    (key) => this.send(key));

  constructor(private readonly log: (line: string) => void) {}

  /** A new server knows nothing yet: forget what the old one was sent. */
  setClient(client: LanguageClient | undefined): void {
    this.client = client;
    this.sent.clear();
    if (!client) this.setActive(false);
  }

  /** Forward only while the watcher is on. */
  setActive(active: boolean): void {
    if (active === !!this.subscription) return;
    if (!active) {
      this.subscription?.dispose();
      this.subscription = undefined;
      this.debouncer.cancelAll();
      this.uris.clear();
      this.sent.clear();
      return;
    }
    this.subscription = vscode.languages.onDidChangeDiagnostics((e) => {
      for (const uri of e.uris) {
        if (!isForwardable(uri.scheme, !!vscode.workspace.getWorkspaceFolder(uri))) continue;
        const key = uri.toString();
        this.uris.set(key, uri);
        this.debouncer.poke(key);
      }
    });
  }

  dispose(): void {
    this.setActive(false);
  }

  private send(key: string): void {
    const uri = this.uris.get(key);
    this.uris.delete(key);
    const client = this.client;
    if (!uri || !client || !this.subscription) return;
    const own = client.diagnostics?.get(uri) ?? [];
    const theirs = withoutOwn(vscode.languages.getDiagnostics(uri), own, diagnosticKey).filter((d) => d.source !== OWN_SOURCE);
    const diagnostics = client.code2ProtocolConverter.asDiagnosticsSync(theirs);
    if (!this.sent.changed(key, diagnostics)) return;
    const params: DiagnosticsChangedParams = { uri: key, diagnostics };
    client.sendNotification(AutonomyMethods.diagnosticsChanged, params).catch((err: unknown) => this.log(`diagnosticsChanged: ${String(err)}`));
  }
}

function diagnosticKey(d: vscode.Diagnostic): string {
  const r = d.range;
  return `${r.start.line}:${r.start.character}-${r.end.line}:${r.end.character}|${d.severity}|${d.source ?? ''}|${d.message}`;
}
