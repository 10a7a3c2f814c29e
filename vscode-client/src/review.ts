// Inline review of proposals: decorations and CodeLens per hunk in the file itself, editor
// title actions, navigation, and a side-by-side view. The buffer keeps the user's text until a
// hunk is accepted; the server then sends the edit (workspace/applyEdit).

import * as vscode from 'vscode';
import { applyHunks, hunkSpan, hunkStats, type HunkView, type LineChange } from './shared/hunks';
import type { AgentEvent, ReviewParams, ReviewResult } from './shared/protocol';
import { ReviewBook, type Decision, type PendingProposal } from './shared/reviewBook';
import { settings } from './server';

export const PROPOSED_SCHEME = 'lsp-agent-proposed';

type ProposalCreated = Extract<AgentEvent, { type: 'proposal_created' }>;
export type SendReview = (params: ReviewParams) => Promise<ReviewResult>;

export class ReviewController implements vscode.Disposable, vscode.CodeLensProvider, vscode.TextDocumentContentProvider {
  readonly book = new ReviewBook();
  private readonly proposedTexts = new Map<string, string>();
  private readonly lensesChanged = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.lensesChanged.event;
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires when decisions or pending proposals change (the panel's list follows). */
  readonly onDidChangeReview = this.changed.event;
  private readonly removed = vscode.window.createTextEditorDecorationType({
    isWholeLine: true,
    backgroundColor: new vscode.ThemeColor('diffEditor.removedLineBackground'),
    overviewRulerColor: new vscode.ThemeColor('editorOverviewRuler.deletedForeground'),
    overviewRulerLane: vscode.OverviewRulerLane.Left,
  });
  private readonly added = vscode.window.createTextEditorDecorationType({
    after: { color: new vscode.ThemeColor('editor.foreground'), backgroundColor: new vscode.ThemeColor('diffEditor.insertedTextBackground'), margin: '0 0 0 2em' },
    overviewRulerColor: new vscode.ThemeColor('editorOverviewRuler.addedForeground'),
    overviewRulerLane: vscode.OverviewRulerLane.Left,
  });
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly sendReview: SendReview) {
    this.disposables.push(
      vscode.languages.registerCodeLensProvider({ scheme: 'file' }, this),
      vscode.workspace.registerTextDocumentContentProvider(PROPOSED_SCHEME, this),
      vscode.window.onDidChangeVisibleTextEditors(() => this.refresh()),
      vscode.window.onDidChangeActiveTextEditor(() => this.updateContext()),
      vscode.workspace.onDidChangeTextDocument((e) => this.onTyping(e)),
      vscode.commands.registerCommand('lspAgent.acceptHunk', (uri: string, proposalId: string, hunkId: string) => this.decide(proposalId, [hunkId], 'accept')),
      vscode.commands.registerCommand('lspAgent.rejectHunk', (uri: string, proposalId: string, hunkId: string) => this.decide(proposalId, [hunkId], 'reject')),
      vscode.commands.registerCommand('lspAgent.acceptFile', (uri?: vscode.Uri) => this.decideFile(uri, 'accept')),
      vscode.commands.registerCommand('lspAgent.rejectFile', (uri?: vscode.Uri) => this.decideFile(uri, 'reject')),
      vscode.commands.registerCommand('lspAgent.nextHunk', () => this.navigate(1)),
      vscode.commands.registerCommand('lspAgent.previousHunk', () => this.navigate(-1)),
      vscode.commands.registerCommand('lspAgent.openSideBySide', (uri?: vscode.Uri | string) => this.openSideBySide(uri)),
      this.lensesChanged, this.changed,
    );
  }

  dispose(): void {
    this.removed.dispose();
    this.added.dispose();
    for (const d of this.disposables) d.dispose();
  }

  // -- proposals arriving and leaving -------------------------------------------------------

  /** ``quiet``: a background session's proposal (the watcher's): decorated where open, not revealed. */
  async onProposal(event: ProposalCreated, quiet = false): Promise<void> {
    if (event.autoApply) return;
    const proposal = this.book.add(event.sessionId, event.proposalId, event.files);
    for (const file of proposal.files) {
      file.baseText = file.isNew ? '' : await currentText(file.uri);
      this.proposedTexts.set(proposedKey(proposal.proposalId, file.uri), applyHunks(file.baseText ?? '', file.hunks));
    }
    if (!quiet) await this.reveal(proposal);
    this.refresh();
  }

  onResolved(proposalId: string): void {
    if (!this.book.get(proposalId)) return;
    this.book.remove(proposalId);
    this.refresh();
  }

  forgetAll(): void {
    for (const p of this.book.all()) this.book.remove(p.proposalId);
    this.refresh();
  }

  /** Decisions so far, for the panel. */
  decisions(): Record<string, Record<string, Decision>> {
    return Object.fromEntries(this.book.all().map((p) => [p.proposalId, { ...p.decisions }]));
  }

  // -- decisions ----------------------------------------------------------------------------

  async decide(proposalId: string, hunkIds: string[], decision: Decision): Promise<void> {
    const params = this.book.decide(proposalId, hunkIds, decision);
    this.refresh();
    if (!params) return;
    try {
      const result = await this.sendReview(params);
      if (result.conflicts.length) {
        void vscode.window.showWarningMessage(`lsp-agent: some changes conflicted with your edits and were not applied. ${result.conflictDetails.join(' ')}`);
      } else if (result.status === 'failed') {
        void vscode.window.showErrorMessage(`lsp-agent: the edit could not be applied: ${result.conflictDetails.join(' ')}`);
      }
      this.book.remove(proposalId);
    } catch (err) {
      this.book.reopen(proposalId);
      void vscode.window.showErrorMessage(`lsp-agent: review failed: ${errorText(err)}`);
    }
    this.refresh();
  }

  async decideProposal(proposalId: string, decision: Decision): Promise<void> {
    const proposal = this.book.get(proposalId);
    if (!proposal) return;
    const ids = proposal.files.flatMap((f) => f.hunks.map((h) => h.id)).filter((id) => !proposal.decisions[id]);
    await this.decide(proposalId, ids, decision);
  }

  private async decideFile(uri: vscode.Uri | undefined, decision: Decision): Promise<void> {
    const target = (uri ?? vscode.window.activeTextEditor?.document.uri)?.toString();
    if (!target) return;
    const byProposal = new Map<string, string[]>();
    for (const { proposal, hunk } of this.book.undecidedHunks(target)) {
      byProposal.set(proposal.proposalId, [...(byProposal.get(proposal.proposalId) ?? []), hunk.id]);
    }
    for (const [proposalId, ids] of byProposal) await this.decide(proposalId, ids, decision);
  }

  // -- showing ------------------------------------------------------------------------------

  /** The proposals waiting for a decision (the Inbox counts its items by them). */
  pendingIds(): Set<string> {
    return new Set(this.book.all().map((p) => p.proposalId));
  }

  /** Show a pending proposal at its first hunk (the Inbox's Review); false when it is not pending. */
  async openProposal(proposalId: string): Promise<boolean> {
    const first = this.book.get(proposalId)?.files[0];
    if (!first) return false;
    if (first.isNew) { await this.openSideBySide(first.uri); return true; }
    const doc = await vscode.workspace.openTextDocument(vscode.Uri.parse(first.uri));
    const line = first.hunks[0] ? hunkSpan(first.hunks[0]).start : 0;
    await vscode.window.showTextDocument(doc, { selection: new vscode.Range(line, 0, line, 0), preview: true });
    return true;
  }

  private async reveal(proposal: PendingProposal): Promise<void> {
    const focus = settings().get<string>('reviewFocus', 'keep');
    const first = proposal.files.find((f) => !f.isNew);
    if (!first || focus === 'none') return;
    const uri = vscode.Uri.parse(first.uri);
    if (vscode.window.visibleTextEditors.some((e) => e.document.uri.toString() === first.uri)) return;
    const doc = await vscode.workspace.openTextDocument(uri);
    // Open in a tab: show it in its own group, not a second copy in another one.
    const holding = vscode.window.tabGroups.all.find((g) => g.tabs.some((t) => t.input instanceof vscode.TabInputText && t.input.uri.toString() === first.uri));
    const active = vscode.window.activeTextEditor;
    const line = hunkSpan(first.hunks[0]).start;
    const selection = new vscode.Range(line, 0, line, 0);
    if (focus === 'reveal') {
      await vscode.window.showTextDocument(doc, { selection, preview: true, ...(holding ? { viewColumn: holding.viewColumn } : {}) });
      return;
    }
    if (holding) {
      await vscode.window.showTextDocument(doc, { viewColumn: holding.viewColumn, preserveFocus: true, preview: true, selection });
      return;
    }
    // Keep the user's place: beside the editor they are typing in, without moving the focus.
    const viewColumn = active ? vscode.ViewColumn.Beside : vscode.ViewColumn.Active;
    await vscode.window.showTextDocument(doc, { viewColumn, preserveFocus: true, preview: true, selection });
  }

  refresh(): void {
    for (const editor of vscode.window.visibleTextEditors) this.decorate(editor);
    this.lensesChanged.fire();
    this.changed.fire();
    this.updateContext();
  }

  private decorate(editor: vscode.TextEditor): void {
    const hunks = this.book.undecidedHunks(editor.document.uri.toString());
    const removed: vscode.DecorationOptions[] = [];
    const added: vscode.DecorationOptions[] = [];
    const lastLine = editor.document.lineCount - 1;
    for (const { hunk } of hunks) {
      const hover = hunkHover(hunk, editor.document);
      for (const block of hunk.blocks) {
        if (block.removed) {
          const end = Math.min(block.line + block.removed - 1, lastLine);
          removed.push({ range: new vscode.Range(block.line, 0, end, 0), hoverMessage: hover });
        }
        if (block.added.length) {
          const anchor = Math.min(Math.max(block.removed ? block.line + block.removed - 1 : block.line - 1, 0), lastLine);
          const more = block.added.length > 1 ? `   (+${block.added.length - 1} more lines)` : '';
          const range = editor.document.lineAt(anchor).range;
          added.push({ range: new vscode.Range(range.end, range.end), hoverMessage: hover,
            renderOptions: { after: { contentText: `${block.removed ? '→' : '+'} ${block.added[0].trim()}${more}` } } });
        }
      }
    }
    editor.setDecorations(this.removed, removed);
    editor.setDecorations(this.added, added);
  }

  provideCodeLenses(document: vscode.TextDocument): vscode.CodeLens[] {
    const uri = document.uri.toString();
    return this.book.undecidedHunks(uri).flatMap(({ proposal, hunk }) => {
      const line = Math.min(hunkSpan(hunk).start, Math.max(document.lineCount - 1, 0));
      const range = new vscode.Range(line, 0, line, 0);
      const args = [uri, proposal.proposalId, hunk.id];
      const stale = hunk.touched ? ' (you edited here: the agent will merge or report a conflict)' : '';
      return [
        new vscode.CodeLens(range, { title: '$(check) Accept', command: 'lspAgent.acceptHunk', arguments: args, tooltip: `Accept this change (${hunkStats(hunk)})` }),
        new vscode.CodeLens(range, { title: '$(close) Reject', command: 'lspAgent.rejectHunk', arguments: args, tooltip: `Reject this change (${hunkStats(hunk)})` }),
        new vscode.CodeLens(range, { title: `${hunkStats(hunk)}${stale}`, command: 'lspAgent.openSideBySide', arguments: [uri] }),
      ];
    });
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    const query = new URLSearchParams(uri.query);
    return this.proposedTexts.get(proposedKey(query.get('proposal') ?? '', query.get('file') ?? '')) ?? '';
  }

  private updateContext(): void {
    const uri = vscode.window.activeTextEditor?.document.uri.toString();
    const underReview = !!uri && this.book.undecidedHunks(uri).length > 0;
    void vscode.commands.executeCommand('setContext', 'lspAgent.fileUnderReview', underReview);
  }

  private onTyping(e: vscode.TextDocumentChangeEvent): void {
    if (!e.contentChanges.length) return;
    const changes: LineChange[] = e.contentChanges.map((c) => ({
      startLine: c.range.start.line, endLine: c.range.end.line, insertedLineBreaks: (c.text.match(/\n/g) ?? []).length,
    }));
    // Changes come in document order relative to the old text; apply from the bottom up.
    changes.sort((a, b) => b.startLine - a.startLine);
    if (this.book.onChange(e.document.uri.toString(), changes)) this.refresh();
  }

  private navigate(direction: 1 | -1): void {
    const editor = vscode.window.activeTextEditor;
    if (!editor) return;
    const starts = this.book.undecidedHunks(editor.document.uri.toString()).map(({ hunk }) => hunkSpan(hunk).start).sort((a, b) => a - b);
    if (!starts.length) return;
    const here = editor.selection.active.line;
    const target = direction > 0
      ? starts.find((l) => l > here) ?? starts[0]
      : [...starts].reverse().find((l) => l < here) ?? starts[starts.length - 1];
    const pos = new vscode.Position(target, 0);
    editor.selection = new vscode.Selection(pos, pos);
    editor.revealRange(new vscode.Range(pos, pos), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  }

  async openSideBySide(raw?: vscode.Uri | string): Promise<void> {
    const target = (typeof raw === 'string' ? raw : raw?.toString()) ?? vscode.window.activeTextEditor?.document.uri.toString();
    const entry = target ? this.book.filesFor(target)[0] : this.book.all()[0]?.files.map((file) => ({ proposal: this.book.all()[0], file }))[0];
    if (!entry) return;
    const { proposal, file } = entry;
    const proposed = vscode.Uri.from({ scheme: PROPOSED_SCHEME, path: vscode.Uri.parse(file.uri).path,
      query: new URLSearchParams({ proposal: proposal.proposalId, file: file.uri }).toString() });
    const left = file.isNew ? proposed.with({ query: new URLSearchParams({ proposal: '', file: '' }).toString() }) : vscode.Uri.parse(file.uri);
    await vscode.commands.executeCommand('vscode.diff', left, proposed, `${file.path} ↔ proposed by lsp-agent`, { preview: true, preserveFocus: false });
  }
}

function proposedKey(proposalId: string, uri: string): string {
  return `${proposalId}\u0000${uri}`;
}

/** The whole change on hover: the lines it removes (from the buffer) and the lines it adds. */
function hunkHover(hunk: HunkView, document: vscode.TextDocument): vscode.MarkdownString {
  const lines = hunk.blocks.flatMap((b) => {
    const removed: string[] = [];
    for (let i = b.line; i < b.line + b.removed && i < document.lineCount; i++) removed.push(`-${document.lineAt(i).text}`);
    return [...removed, ...b.added.map((l) => `+${l}`)];
  });
  const fence = '`'.repeat(Math.max(3, ...[...lines.join('\n').matchAll(/`+/g)].map((m) => m[0].length + 1)));
  return new vscode.MarkdownString(`**lsp-agent proposes** (${hunkStats(hunk)})\n\n${fence}diff\n${lines.join('\n')}\n${fence}`);
}

async function currentText(uri: string): Promise<string> {
  const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri);
  if (open) return open.getText();
  try {
    return new TextDecoder().decode(await vscode.workspace.fs.readFile(vscode.Uri.parse(uri)));
  } catch {
    return '';
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
