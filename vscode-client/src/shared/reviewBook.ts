// Pending proposals and the user's per-hunk decisions. The server takes one agent/review per
// proposal, so decisions are collected until every hunk of the proposal has one. Pure.

import { parseHunk, shiftHunks, type HunkView, type LineChange } from './hunks';
import type { ProposalFile, ReviewParams } from './protocol';

export type Decision = 'accept' | 'reject';

export interface FileUnderReview {
  uri: string;
  path: string;
  isNew: boolean;
  hunks: HunkView[];
  /** The text the proposal was computed on, when known (for the side-by-side view). */
  baseText?: string;
}

export interface PendingProposal {
  proposalId: string;
  sessionId: string;
  files: FileUnderReview[];
  decisions: Record<string, Decision>;
  /** agent/review was sent; waiting for its answer. */
  submitted: boolean;
}

export class ReviewBook {
  private proposals = new Map<string, PendingProposal>();

  add(sessionId: string, proposalId: string, files: ProposalFile[]): PendingProposal {
    const proposal: PendingProposal = {
      proposalId, sessionId, submitted: false, decisions: {},
      files: files.map((f) => ({ uri: f.uri, path: f.path, isNew: f.isNew, hunks: f.hunks.map((h) => parseHunk(h.id, h.diff)) })),
    };
    this.proposals.set(proposalId, proposal);
    return proposal;
  }

  get(proposalId: string): PendingProposal | undefined { return this.proposals.get(proposalId); }
  remove(proposalId: string): void { this.proposals.delete(proposalId); }
  all(): PendingProposal[] { return [...this.proposals.values()]; }

  /** Files under review (not yet decided) with this URI, across proposals. */
  filesFor(uri: string): { proposal: PendingProposal; file: FileUnderReview }[] {
    return this.all().flatMap((proposal) => proposal.submitted ? [] : proposal.files
      .filter((f) => f.uri === uri)
      .map((file) => ({ proposal, file })));
  }

  undecidedHunks(uri: string): { proposal: PendingProposal; hunk: HunkView }[] {
    return this.filesFor(uri).flatMap(({ proposal, file }) =>
      file.hunks.filter((h) => !proposal.decisions[h.id]).map((hunk) => ({ proposal, hunk })));
  }

  /** Record decisions; returns the review params when the proposal is fully decided. */
  decide(proposalId: string, hunkIds: string[], decision: Decision): ReviewParams | undefined {
    const proposal = this.proposals.get(proposalId);
    if (!proposal || proposal.submitted) return undefined;
    const known = new Set(proposal.files.flatMap((f) => f.hunks.map((h) => h.id)));
    for (const id of hunkIds) if (known.has(id)) proposal.decisions[id] = decision;
    if (![...known].every((id) => proposal.decisions[id])) return undefined;
    proposal.submitted = true;
    return reviewParams(proposal);
  }

  /** A review was refused by the server: let the user decide again. */
  reopen(proposalId: string): void {
    const proposal = this.proposals.get(proposalId);
    if (proposal) { proposal.submitted = false; proposal.decisions = {}; }
  }

  /** Keep hunk positions right while the user types in a file under review. */
  onChange(uri: string, changes: LineChange[]): boolean {
    let moved = false;
    for (const { file } of this.filesFor(uri)) {
      for (const change of changes) file.hunks = shiftHunks(file.hunks, change);
      moved = true;
    }
    return moved;
  }
}

export function reviewParams(proposal: PendingProposal): ReviewParams {
  const ids = proposal.files.flatMap((f) => f.hunks.map((h) => h.id));
  return {
    proposalId: proposal.proposalId,
    accept: ids.filter((id) => proposal.decisions[id] === 'accept'),
    reject: ids.filter((id) => proposal.decisions[id] !== 'accept'),
  };
}

/** Files of a proposal that had accepted hunks (to save after the edit landed). */
export function filesWithAccepted(files: { uri: string; hunks: { id: string }[] }[], accepted: string[]): string[] {
  const set = new Set(accepted);
  return files.filter((f) => f.hunks.some((h) => set.has(h.id))).map((f) => f.uri);
}
