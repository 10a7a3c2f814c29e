// The wire types of docs/protocol.md that the extension uses. Unknown fields are ignored and
// unknown event types are passed through untouched (the protocol may add both within 1.x).

export const PROTOCOL_MAJOR = '1';

export const Methods = {
  newSession: 'agent/newSession',
  prompt: 'agent/prompt',
  cancel: 'agent/cancel',
  setMode: 'agent/setMode',
  review: 'agent/review',
  listSessions: 'agent/listSessions',
  event: 'agent/event',
  requestPermission: 'agent/requestPermission',
} as const;

export const BridgeMethods = {
  definition: 'agent/editor/definition',
  references: 'agent/editor/references',
  hover: 'agent/editor/hover',
  documentSymbols: 'agent/editor/documentSymbols',
  workspaceSymbols: 'agent/editor/workspaceSymbols',
  diagnostics: 'agent/editor/diagnostics',
} as const;

export const MODES = ['default', 'acceptEdits', 'plan', 'dontAsk', 'bypassPermissions'] as const;
export type Mode = (typeof MODES)[number];

export interface Position { line: number; character: number }
export interface Range { start: Position; end: Position }

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  cacheReadInputTokens: number;
  cacheCreationInputTokens: number;
}

export interface ProposalHunk { id: string; header: string; diff: string }
export interface ProposalFile {
  uri: string;
  path: string;
  isNew: boolean;
  version?: number;
  diff: string;
  hunks: ProposalHunk[];
}

export const TODO_STATUSES = ['pending', 'in_progress', 'completed'] as const;
export type TodoStatus = (typeof TODO_STATUSES)[number];
/** One item of the agent's plan (TodoWrite); ``activeForm`` is shown while it is in progress. */
export interface TodoItem { content: string; status: TodoStatus; activeForm?: string }

interface EventBase { sessionId: string; seq: number; ts: number }

export type AgentEvent = EventBase & (
  // trigger "stop_hook": a Stop hook did not let the previous turn of the same prompt end.
  | { type: 'turn_started'; prompt: string; trigger?: 'stop_hook' }
  | { type: 'model_request'; model: string; round: number }
  | { type: 'text_delta'; text: string }
  | { type: 'tool_call_started'; toolUseId: string; name: string }
  | { type: 'tool_input_complete'; toolUseId: string; name: string; input: Record<string, unknown> }
  | { type: 'usage'; model: string; usage: Usage }
  | { type: 'tool_execution_started'; toolUseId: string; name: string }
  | { type: 'permission_asked'; toolUseId: string; tool: string; input: Record<string, unknown>; reason: string }
  | { type: 'permission_decided'; toolUseId: string; tool: string; decision: 'allow' | 'deny'; source: string; message?: string }
  | { type: 'proposal_created'; proposalId: string; toolUseId: string; files: ProposalFile[]; autoApply: boolean }
  | { type: 'proposal_resolved'; proposalId: string; status: string; accepted: string[]; rejected: string[]; conflicts: string[]; feedback?: string }
  | { type: 'tool_result'; toolUseId: string; name: string; content: string; isError: boolean }
  | { type: 'retrying'; attempt: number; reason: string; delaySeconds: number }
  | { type: 'model_fallback'; fromModel: string; toModel: string; reason: string }
  | { type: 'error'; kind: string; message: string; recoverable: boolean }
  | { type: 'turn_ended'; stopReason: string; usage: Usage; rounds: number }
  | { type: 'todos_updated'; todos: TodoItem[] }
);

export interface EventNotification { sessionId: string; seq: number; event: AgentEvent }

export interface PermissionRequest {
  sessionId: string;
  toolUseId: string;
  tool: string;
  input: Record<string, unknown>;
  reason: string;
}

export interface PermissionAnswer {
  decision: 'allow' | 'deny';
  remember?: boolean;
  message?: string;
}

export interface NewSessionResult { sessionId: string; workspaceUri: string; mode: Mode; model: string }
export interface PromptResult { stopReason: string; usage: Usage; rounds: number }

export interface ReviewParams {
  proposalId: string;
  accept: string[] | 'all';
  reject: string[] | 'all';
  feedback?: string;
}

export interface ReviewResult {
  proposalId: string;
  status: string;
  applied: string[];
  rejected: string[];
  conflicts: string[];
  conflictDetails: string[];
}

export interface SessionInfo {
  sessionId: string;
  workspaceUri: string;
  mode: Mode;
  model: string;
  busy: boolean;
  pendingProposals: string[];
}

/** Whether the server speaks a protocol this client understands ("1.x"). */
export function isCompatibleProtocol(version: unknown): boolean {
  return typeof version === 'string' && version.split('.')[0] === PROTOCOL_MAJOR;
}

export function isAgentEvent(value: unknown): value is AgentEvent {
  const v = value as Partial<AgentEvent> | null;
  return !!v && typeof v === 'object' && typeof v.type === 'string' &&
    typeof v.sessionId === 'string' && typeof v.seq === 'number';
}
