// Up-arrow in an empty chat input recalls earlier prompts (agent/promptHistory, newest first),
// Down goes forward again and, past the newest, back to an empty input. Typing ends the recall
// and keeps the text. No DOM here: webview/main.ts wires it to the textarea (unit-tested).

export class PromptRecall {
  private prompts: string[] = [];
  /** The recalled prompt's index (0: newest); -1: not recalling. */
  private index = -1;

  /** Up starts a recall only from an empty input; during one it goes on while the text is unchanged. */
  handlesUp(value: string): boolean {
    return this.index === -1 ? value.trim() === '' : value === this.prompts[this.index];
  }

  handlesDown(value: string): boolean {
    return this.index !== -1 && value === this.prompts[this.index];
  }

  get recalling(): boolean {
    return this.index !== -1;
  }

  /** A fresh list (asked for at the start of each recall, so prompts sent meanwhile are in). */
  load(prompts: string[]): void {
    this.prompts = [...new Set(prompts.filter((p) => typeof p === 'string' && p.trim()))];
    this.index = -1;
  }

  /** The next older prompt (stays on the oldest); undefined when there is none. */
  up(): string | undefined {
    if (!this.prompts.length) return undefined;
    this.index = Math.min(this.index + 1, this.prompts.length - 1);
    return this.prompts[this.index];
  }

  /** The next newer prompt, or '' (the empty input) past the newest. */
  down(): string {
    if (this.index <= 0) { this.index = -1; return ''; }
    this.index -= 1;
    return this.prompts[this.index];
  }

  /** The user typed: the text is theirs now. */
  stop(): void {
    this.index = -1;
  }
}
