// The autonomy parts of the wire (issue 13: the watcher's events, diagnostics forwarding, inbox
// statuses and dismissal, prepared fixes; issue 16: warm-up), read leniently: the server models
// them (protocol.generated.ts: WatchEvent, InboxItem, FixResult, DiagnosticsChangedParams,
// InboxDismissParams, WarmUpParams), but an older server that lacks a field or a method must not
// break the extension (unknown notifications and kinds are ignored; missing fields fall back).

export const AutonomyMethods = {
  /** Request: ``{id}`` -> ``{dismissed: true}``. */
  inboxDismiss: 'agent/inboxDismiss',
  /** Notification, client -> server: the full current diagnostics of one document. */
  diagnosticsChanged: 'agent/diagnosticsChanged',
  /** Notification, client -> server: start loading the model SDK in the background. */
  warmUp: 'agent/warmUp',
  /** Notification, server -> client: something the watcher did or saw. */
  watchEvent: 'agent/watchEvent',
} as const;

export type ProposalStatus = 'pending' | 'accepted' | 'rejected' | 'stale' | 'withdrawn';
export const PROPOSAL_STATUSES = ['pending', 'accepted', 'rejected', 'stale', 'withdrawn'] as const satisfies readonly ProposalStatus[];

/** One proposal of an inbox item, with where it stands. */
export interface InboxProposal { id: string; status: ProposalStatus }

/** The kinds of inbox item the extension draws apart; others are drawn as a generic item. */
export type InboxKind = 'test_failure' | 'diagnostic' | 'auto_applied' | 'budget';

export type WatchEventKind = 'testsFailed' | 'testsPassed' | 'fixPrepared' | 'autoApplied' | 'budgetReached' | 'fixDeclined';
export const WATCH_EVENT_KINDS = ['testsFailed', 'testsPassed', 'fixPrepared', 'autoApplied', 'budgetReached', 'fixDeclined'] as const satisfies readonly WatchEventKind[];

/** ``agent/watchEvent``. ``at``: seconds since the epoch. */
export interface WatchEvent { kind: WatchEventKind; workspaceUri?: string; detail?: string; at?: number }

/** ``agent/diagnosticsChanged`` (positions in the negotiated encoding, as any LSP diagnostic). */
export interface DiagnosticsChangedParams { uri: string; diagnostics: unknown[] }

/** What "Fix with agent" answers when the watcher had the fix prepared already. */
export interface PreparedFix { sessionId: string; proposalIds: string[] }

/** A watch event from the wire, or undefined for one this extension does not know (ignored). */
export function watchEventOf(raw: unknown): WatchEvent | undefined {
  const v = raw as Partial<WatchEvent> | null;
  if (!v || typeof v !== 'object' || !(WATCH_EVENT_KINDS as readonly string[]).includes(v.kind as string)) return undefined;
  return {
    kind: v.kind as WatchEventKind,
    ...(typeof v.workspaceUri === 'string' ? { workspaceUri: v.workspaceUri } : {}),
    ...(typeof v.detail === 'string' ? { detail: v.detail } : {}),
    ...(typeof v.at === 'number' ? { at: v.at } : {}),
  };
}

/** The prepared fix a command result names (``{sessionId, prepared: true, proposalIds}``), else none. */
export function preparedFixOf(result: unknown): PreparedFix | undefined {
  const r = result as { sessionId?: unknown; prepared?: unknown; proposalIds?: unknown } | null;
  if (!r || typeof r !== 'object' || r.prepared !== true || typeof r.sessionId !== 'string') return undefined;
  const ids = Array.isArray(r.proposalIds) ? r.proposalIds.filter((id): id is string => typeof id === 'string') : [];
  return { sessionId: r.sessionId, proposalIds: ids };
}
