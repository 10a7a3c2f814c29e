// The companion in the status bar (shared/companion.ts draws it): generated from
// vscode.env.machineId, only its name kept (globalState); it follows the agent's state and
// flashes a bubble on a moment worth noticing. Off with lspAgent.companion. Nothing goes to the model.

import * as vscode from 'vscode';
import { companionOf, companionView, type Companion, type CompanionMood } from './shared/companion';

const NAME_KEY = 'lspAgent.companionName';
/** How long a passing reaction (done, inbox, error) shows before the steady state returns. */
const FLASH_MS = 6000;

export class CompanionItem implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('lspAgent.companion', vscode.StatusBarAlignment.Right, 1000);
  private companion: Companion;
  private steady: CompanionMood = 'idle';
  private flashing: { mood: CompanionMood; timer: NodeJS.Timeout } | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly context: vscode.ExtensionContext) {
    this.item.name = 'lsp-agent companion';
    this.item.command = 'lspAgent.openChat';
    this.companion = companionOf(vscode.env.machineId, context.globalState.get<string>(NAME_KEY));
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((e) => { if (e.affectsConfiguration('lspAgent.companion')) this.draw(); }),
      vscode.commands.registerCommand('lspAgent.companion.rename', () => this.rename()),
    );
    this.draw();
  }

  dispose(): void {
    clearTimeout(this.flashing?.timer);
    this.item.dispose();
    for (const d of this.disposables) d.dispose();
  }

  /** The agent's lasting state (working, waiting for you, a proposal to review, idle, offline). */
  setState(mood: CompanionMood): void {
    if (mood === this.steady) return;
    this.steady = mood;
    this.draw();
  }

  /** A moment: shown for a few seconds, then the lasting state again. */
  flash(mood: CompanionMood): void {
    clearTimeout(this.flashing?.timer);
    this.flashing = { mood, timer: setTimeout(() => { this.flashing = undefined; this.draw(); }, FLASH_MS) };
    this.draw();
  }

  private draw(): void {
    if (!vscode.workspace.getConfiguration('lspAgent').get<boolean>('companion', true)) { this.item.hide(); return; }
    const view = companionView(this.companion, this.flashing?.mood ?? this.steady);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.show();
  }

  private async rename(): Promise<void> {
    const name = await vscode.window.showInputBox({ title: 'Rename the companion', value: this.companion.name, validateInput: (v) => (v.trim().length > 24 ? 'At most 24 characters' : undefined) });
    if (name === undefined) return;
    await this.context.globalState.update(NAME_KEY, name.trim() || undefined);
    this.companion = companionOf(vscode.env.machineId, name);
    this.draw();
  }
}
