// Unified-diff hunks of a proposal as line positions in the buffer under review, kept in place
// while the user types. Pure: no vscode imports, unit tested.

/** One run of consecutive removed and/or added lines inside a hunk. */
export interface ChangeBlock {
  /** 0-based buffer line where the removed lines start (or where the additions go). */
  line: number;
  removed: number;
  added: string[];
}

export interface HunkView {
  id: string;
  header: string;
  blocks: ChangeBlock[];
  /** The user edited lines of this hunk: the server will rebase or report a conflict. */
  touched: boolean;
}

const HEADER = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/;

export function parseHeader(header: string): { oldStart: number; oldCount: number; newStart: number; newCount: number } {
  const m = HEADER.exec(header);
  if (!m) throw new Error(`not a hunk header: ${header}`);
  return { oldStart: +m[1], oldCount: m[2] === undefined ? 1 : +m[2], newStart: +m[3], newCount: m[4] === undefined ? 1 : +m[4] };
}

/** Parse one hunk (header line first) into change blocks positioned on the old text. */
export function parseHunk(id: string, diff: string): HunkView {
  const lines = diff.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const { oldStart, oldCount } = parseHeader(lines[0]);
  // "-0,0" means the hunk inserts before the first line.
  let oldLine = oldCount === 0 ? oldStart : oldStart - 1;
  const blocks: ChangeBlock[] = [];
  let current: ChangeBlock | undefined;
  for (const raw of lines.slice(1)) {
    if (raw.startsWith('\\')) continue; // "\ No newline at end of file"
    const tag = raw[0];
    const body = raw.slice(1);
    if (tag === '-' || tag === '+') {
      if (!current) {
        current = { line: oldLine, removed: 0, added: [] };
        blocks.push(current);
      }
      if (tag === '-') { current.removed += 1; oldLine += 1; } else current.added.push(body);
    } else {
      current = undefined;
      oldLine += 1;
    }
  }
  return { id, header: lines[0], blocks, touched: false };
}

/** First and last buffer line a hunk covers (for CodeLens and navigation). */
export function hunkSpan(h: HunkView): { start: number; end: number } {
  const first = h.blocks[0];
  const last = h.blocks[h.blocks.length - 1];
  if (!first) return { start: 0, end: 0 };
  return { start: first.line, end: Math.max(last.line + last.removed - 1, last.line) };
}

export interface LineChange {
  /** 0-based lines of the replaced range (end inclusive of the line the range ends on). */
  startLine: number;
  endLine: number;
  /** Lines the inserted text adds (newline count). */
  insertedLineBreaks: number;
}

/**
 * Move hunks after a buffer change. Hunks below the change shift by the change's line delta;
 * hunks whose lines it touched are flagged (their decorations stay, the server rebases).
 */
export function shiftHunks(hunks: HunkView[], change: LineChange): HunkView[] {
  const delta = change.insertedLineBreaks - (change.endLine - change.startLine);
  return hunks.map((h) => {
    let touched = h.touched;
    const blocks = h.blocks.map((b) => {
      const last = b.line + Math.max(b.removed, 1) - 1;
      if (change.endLine < b.line || (change.endLine === b.line && b.removed === 0 && change.startLine < b.line)) {
        return { ...b, line: b.line + delta };
      }
      if (change.startLine > last) return b;
      touched = true;
      return { ...b, line: Math.max(change.startLine, b.line + (change.startLine < b.line ? delta : 0)) };
    });
    return { ...h, blocks, touched };
  });
}

/** Apply a file's hunks to the text they were computed on: the proposed text. */
export function applyHunks(text: string, hunks: HunkView[]): string {
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const endsWithEol = text.endsWith('\n') || text === '';
  const lines = text === '' ? [] : text.replace(/\r?\n$/, '').split(/\r?\n/);
  const blocks = hunks.flatMap((h) => h.blocks).sort((a, b) => b.line - a.line);
  for (const b of blocks) lines.splice(b.line, b.removed, ...b.added);
  return lines.length ? lines.join(eol) + (endsWithEol ? eol : '') : '';
}

/** Short "+2 −1" label of a hunk. */
export function hunkStats(h: HunkView): string {
  const added = h.blocks.reduce((n, b) => n + b.added.length, 0);
  const removed = h.blocks.reduce((n, b) => n + b.removed, 0);
  return `+${added} −${removed}`;
}
