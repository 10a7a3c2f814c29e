// The companion in the status bar (shared/companion.ts draws it): generated from
// vscode.env.machineId, only its name kept (globalState); it follows the agent's state and reacts
// to moments worth noticing (a proposal ready, tests passing or failing, an edit applied on its own)
// with a short animation and a bubble, rate-limited (BubbleGate). Off with lspAgent.companion;
// reduced motion (workbench.reduceMotion: on) shows the last frame only. It sends nothing to the
// model unless the user talks to it ("Talk to the Companion": a normal chat prompt).

import * as vscode from 'vscode';
import {
  BubbleGate, companionOf, companionTooltip, FRAME_MS, framesOf, talkPrompt, type Companion, type CompanionMood, type Moment,
} from './shared/companion';

const NAME_KEY = 'lspAgent.companionName';
/** How long a passing reaction shows before the steady state returns. */
const FLASH_MS = 6000;
const MOMENTS_KEPT = 5;

export class CompanionItem implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('lspAgent.companion', vscode.StatusBarAlignment.Right, 1000);
  private companion: Companion;
  private steady: CompanionMood = 'idle';
  private flashing: { mood: CompanionMood; frames: string[]; frame: number; timer?: NodeJS.Timeout } | undefined;
  private readonly gate = new BubbleGate();
  private readonly moments: Moment[] = [];
  private readonly disposables: vscode.Disposable[] = [];

  /** ``talk``: sends the user's words to the chat as a prompt (the only way it reaches the model). */
  constructor(private readonly context: vscode.ExtensionContext, private readonly talk: (prompt: string) => Promise<void>) {
    this.item.name = 'lsp-agent companion';
    this.item.command = 'lspAgent.openChat';
    this.companion = companionOf(vscode.env.machineId, context.globalState.get<string>(NAME_KEY));
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('lspAgent.companion') || e.affectsConfiguration('workbench.reduceMotion')) this.stopFlash();
      }),
      vscode.commands.registerCommand('lspAgent.companion.rename', () => this.rename()),
      vscode.commands.registerCommand('lspAgent.companion.talk', () => this.talkTo()),
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
    const arrived = mood === 'review' && this.steady !== 'review';
    this.steady = mood;
    if (arrived) this.flash('review'); // a proposal just became ready: a hop, once
    else if (!this.flashing) this.draw();
  }

  /** A moment: remembered for the tooltip; animated with a bubble when the gate lets it through. */
  flash(mood: CompanionMood, detail?: string): void {
    const now = Date.now();
    this.moments.push({ mood, detail, at: now });
    if (this.moments.length > MOMENTS_KEPT) this.moments.shift();
    if (!this.enabled() || !this.gate.allow(mood, now)) { this.draw(); return; }
    clearTimeout(this.flashing?.timer);
    this.flashing = { mood, frames: framesOf(this.companion, mood, reducedMotion()), frame: 0 };
    this.step();
  }

  /** Show the current frame, then the next one soon, or hold the last one for the flash. */
  private step(): void {
    const flash = this.flashing;
    if (!flash) return;
    this.draw();
    const last = flash.frame >= flash.frames.length - 1;
    flash.timer = setTimeout(() => {
      if (this.flashing !== flash) return;
      if (last) this.stopFlash();
      else { flash.frame += 1; this.step(); }
    }, last ? FLASH_MS : FRAME_MS);
  }

  private stopFlash(): void {
    clearTimeout(this.flashing?.timer);
    this.flashing = undefined;
    this.draw();
  }

  private enabled(): boolean {
    return vscode.workspace.getConfiguration('lspAgent').get<boolean>('companion', true);
  }

  private draw(): void {
    if (!this.enabled()) { this.item.hide(); return; }
    const flash = this.flashing;
    const mood = flash?.mood ?? this.steady;
    this.item.text = flash ? flash.frames[flash.frame] : framesOf(this.companion, mood, reducedMotion()).slice(-1)[0];
    const tooltip = new vscode.MarkdownString(companionTooltip(this.companion, mood, this.moments, Date.now()));
    tooltip.isTrusted = { enabledCommands: ['lspAgent.companion.talk', 'lspAgent.companion.rename', 'lspAgent.openChat'] };
    tooltip.supportThemeIcons = true;
    this.item.tooltip = tooltip;
    this.item.accessibilityInformation = { label: `${this.companion.name}, lsp-agent's companion${mood === 'idle' ? '' : `: ${mood}`}` };
    this.item.show();
  }

  private async talkTo(): Promise<void> {
    const text = await vscode.window.showInputBox({
      title: `Talk to ${this.companion.name}`,
      prompt: 'Goes to the chat as a normal prompt (the model reads it); the companion itself never sends anything on its own.',
      placeHolder: `Ask ${this.companion.name} something…`,
    });
    if (!text?.trim()) return;
    await this.talk(talkPrompt(this.companion, text));
  }

  private async rename(): Promise<void> {
    const name = await vscode.window.showInputBox({ title: 'Rename the companion', value: this.companion.name, validateInput: (v) => (v.trim().length > 24 ? 'At most 24 characters' : undefined) });
    if (name === undefined) return;
    await this.context.globalState.update(NAME_KEY, name.trim() || undefined);
    this.companion = companionOf(vscode.env.machineId, name);
    this.draw();
  }
}

/** VS Code's own reduced-motion setting ("auto" follows the OS, which an extension cannot read). */
function reducedMotion(): boolean {
  return vscode.workspace.getConfiguration('workbench').get<string>('reduceMotion', 'auto') === 'on';
}
