// The wire types of docs/protocol.md that the extension uses. Unknown fields are ignored and
// unknown event types are passed through untouched (the protocol may add both within 1.x).
// The types come from the server's pydantic models (protocol.generated.ts, made by
// `npm run gen:protocol`; CI fails when it drifts from the models). This file names them for the
// client and adds what the server does not model (yet): replies it builds as plain dicts.

import type * as wire from './protocol.generated';
import { AutonomyMethods, type InboxProposal } from './autonomyProtocol';

export const PROTOCOL_MAJOR = '1';

export const Methods = {
  newSession: 'agent/newSession',
  prompt: 'agent/prompt',
  cancel: 'agent/cancel',
  setMode: 'agent/setMode',
  setModel: 'agent/setModel',
  context: 'agent/context',
  review: 'agent/review',
  listSessions: 'agent/listSessions',
  commands: 'agent/commands',
  mcpStatus: 'agent/mcpStatus',
  mcpRestart: 'agent/mcpRestart',
  mcpApprove: 'agent/mcpApprove',
  mcpResources: 'agent/mcpResources',
  tasks: 'agent/tasks',
  taskOutput: 'agent/taskOutput',
  taskStop: 'agent/taskStop',
  customizations: 'agent/customizations',
  inboxList: 'agent/inboxList',
  watchStatus: 'agent/watchStatus',
  watchApprove: 'agent/watchApprove',
  watchPause: 'agent/watchPause',
  memory: 'agent/memory',
  memoryRead: 'agent/memoryRead',
  memoryWrite: 'agent/memoryWrite',
  memoryDelete: 'agent/memoryDelete',
  memoryClear: 'agent/memoryClear',
  dream: 'agent/dream',
  /** Notifications, server -> client. */
  inbox: 'agent/inbox',
  dreamStatus: 'agent/dreamStatus',
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

export type {
  AgentEvent, EditorContext, InitializationOptions, NewSessionParams, NewSessionResult, PromptParams,
  ReviewParams, SessionParams, SetModeParams, SetModelParams, Usage,
} from './protocol.generated';

export type Mode = wire.SetModeParams['mode'];
/** The modes in the order the chat panel offers them; every mode of the server is listed. */
export const MODES = ['default', 'acceptEdits', 'auto', 'plan', 'dontAsk', 'bypassPermissions'] as const satisfies readonly Mode[];

/** How the pickers and the panel name each mode, and what it lets the agent do (docs/security.md). */
export const MODE_INFO: Record<Mode, { label: string; description: string }> = {
  default: { label: 'Ask first', description: 'Review every edit; ask before commands' },
  acceptEdits: { label: 'Auto-apply edits', description: 'Apply edits at once; ask before commands' },
  auto: { label: 'Auto', description: 'A classifier model decides what would ask; refusals stand' },
  plan: { label: 'Plan only', description: 'Read and plan; no edits, no commands' },
  dontAsk: { label: 'Never ask', description: 'Only what allow rules permit; refuse the rest' },
  bypassPermissions: { label: 'Full access', description: 'Edit and run everything without asking' },
};

export type ProposalHunk = wire.HunkView;
export type ProposalFile = wire.FileChangeView;

export type TodoStatus = wire.TodoView['status'];
export const TODO_STATUSES = ['pending', 'in_progress', 'completed'] as const satisfies readonly TodoStatus[];
/** One item of the agent's plan (TodoWrite); ``activeForm`` is shown while it is in progress. */
export type TodoItem = wire.TodoView;

// Compile-time checks that the lists above name every value the server may send.
type Nothing<T extends never> = T;
type AllModesListed = Nothing<Exclude<Mode, (typeof MODES)[number]>>;
type AllTodoStatusesListed = Nothing<Exclude<TodoStatus, (typeof TODO_STATUSES)[number]>>;

/** One event by its ``type``. */
export type EventOf<T extends wire.AgentEvent['type']> = Extract<wire.AgentEvent, { type: T }>;

/** ``agent/event``: the server builds the envelope by hand around a modelled event. */
export interface EventNotification { sessionId: string; seq: number; event: wire.AgentEvent }

/** ``agent/requestPermission``: the fields of the ``permission_asked`` event it follows. */
export type PermissionRequest = Pick<EventOf<'permission_asked'>, 'sessionId' | 'toolUseId' | 'tool' | 'input' | 'reason'>;
export type PermissionAnswer = wire.PermissionAnswerParams;

/** ``agent/prompt``'s result: the end of the turn. */
export type PromptResult = Pick<EventOf<'turn_ended'>, 'stopReason' | 'usage' | 'rounds'>;

// Not modelled on the server yet (plain dicts in lsp_agent/server/app.py, a dataclass in
// lsp_agent/sessions/proposals.py): written by hand, checked by nothing but the e2e tests.
export interface ReviewResult {
  proposalId: string;
  status: string;
  applied: string[];
  rejected: string[];
  conflicts: string[];
  conflictDetails: string[];
}

/** ``agent/context``: what the next request would hold (a plain dict on the server). */
export interface ContextReport {
  totalTokens: number;
  windowTokens: number;
  ratio: number;
  parts: Record<string, number>;
  level: string;
  cost?: { usd: number };
}

export interface SessionInfo {
  sessionId: string;
  workspaceUri: string;
  mode: Mode;
  model: string;
  busy: boolean;
  pendingProposals: string[];
}

/** ``agent/commands``: one slash command of the session (built-in, skill, custom, MCP prompt). */
export interface SlashCommand {
  name: string;
  description: string;
  argumentHint?: string | null;
  /** ``builtin``, ``user``, ``project``, ``plugin:<name>``, ``skill:<...>``, ``mcp:<server>``. */
  source: string;
}

/** ``agent/mcpStatus``: one MCP server of the session. */
export interface McpServerStatus {
  name: string;
  scope: string;
  source: string;
  transport: string;
  /** The command line or URL (never its environment or headers). */
  target: string;
  state: 'connected' | 'starting' | 'failed' | 'needs_approval' | 'disabled' | 'stopped' | string;
  error?: string | null;
  tools: number;
  toolNames: string[];
  restarts: number;
  /** Refused from the editor's view: stays stopped, not asked about again in this session. */
  denied?: boolean;
}

/** ``agent/mcpResources``: a resource of a connected MCP server, mentionable in a prompt. */
export interface McpResource {
  server: string;
  uri: string;
  /** ``@server:uri``, as the prompt must hold it for the server to read the resource. */
  mention: string;
  name: string;
  description?: string | null;
  mimeType?: string | null;
}

/** ``agent/tasks``: a background command or agent of the session. */
export interface BackgroundTask {
  taskId: string;
  kind: 'shell' | 'agent' | string;
  command: string;
  description?: string | null;
  status: 'running' | 'completed' | 'failed' | 'stopped' | 'expired' | string;
  exitCode?: number | null;
  startedAt: number;
  endedAt?: number | null;
  outputBytes: number;
}

/** ``agent/taskOutput``: the task with its newest output (the agent's read position untouched). */
export interface TaskOutputResult extends BackgroundTask { output: string; omittedBytes: number }

/** ``agent/customizations``: what the session picked up from files. */
export interface Customizations {
  skills: { name: string; description: string; source: string; path: string; argumentHint?: string | null; userInvocable?: boolean; modelInvocable?: boolean }[];
  commands: { name: string; description: string; source: string; path: string; argumentHint?: string | null }[];
  agents: { name: string; description: string; source: string; path?: string | null }[];
  plugins: { name: string; version?: string | null; description?: string | null; root: string }[];
  warnings: string[];
}

// The watcher, auto memory and Dream (docs/protocol.md): plain dicts on the server.

/** ``agent/inbox`` / ``agent/inboxList``: what the watcher prepared for review. */
export interface InboxItem {
  id: string;
  kind: string;
  title: string;
  detail: string;
  sessionId: string;
  proposalIds: string[];
  /** Seconds since the epoch. */
  createdAt: number;
  /** Where each proposal stands (newer servers; autonomyProtocol.ts). */
  proposals?: InboxProposal[];
  /** The watcher's model triage of a test failure (``watch.triage``; newer servers). */
  triage?: { fix: boolean; reason: string; error?: string };
}

/** ``agent/watchStatus``. */
export interface WatchStatus {
  enabled: boolean;
  paused: boolean;
  testCommand?: string | null;
  source?: 'options' | 'managed' | 'local' | 'project' | 'user' | string | null;
  approved: boolean;
  warnings?: string[];
  /** Whether a model decides first if a failure is worth a fix, and which model. */
  triage?: boolean;
  triageModel?: string | null;
}

export interface MemoryTopic { name: string; file: string; type: string; description: string; size: number; problem?: string | null }
/** ``agent/memory``. */
export interface MemoryIndex { folder: string; index: string; topics: MemoryTopic[]; warnings: string[] }

/** ``agent/dreamStatus`` (notification). */
export interface DreamStatus {
  workspaceUri?: string;
  status: 'running' | 'done' | 'skipped' | 'failed' | 'cancelled' | string;
  phase?: string;
  sessions?: number;
  reason?: string;
  report?: string;
  written?: string[];
  deleted?: string[];
}

type Workspace = { workspaceUri?: string };

/** The agent's requests: method -> what the client sends and what the server answers. */
export interface Requests {
  [Methods.newSession]: { params: wire.NewSessionParams; result: wire.NewSessionResult };
  [Methods.prompt]: { params: wire.PromptParams; result: PromptResult };
  [Methods.cancel]: { params: wire.SessionParams; result: { cancelled: boolean } };
  [Methods.setMode]: { params: wire.SetModeParams; result: { mode: Mode } };
  [Methods.setModel]: { params: wire.SetModelParams; result: { model: string } };
  [Methods.context]: { params: wire.SessionParams; result: ContextReport };
  [Methods.review]: { params: wire.ReviewParams; result: ReviewResult };
  [Methods.listSessions]: { params: Record<string, never>; result: { sessions: SessionInfo[] } };
  [Methods.commands]: { params: wire.SessionParams; result: { commands: SlashCommand[] } };
  [Methods.mcpStatus]: { params: wire.SessionParams; result: { servers: McpServerStatus[] } };
  [Methods.mcpRestart]: { params: wire.SessionParams & { server: string }; result: McpServerStatus };
  [Methods.mcpApprove]: { params: wire.SessionParams & { server: string; remember?: boolean; approve?: boolean }; result: McpServerStatus };
  [Methods.mcpResources]: { params: wire.SessionParams & { query?: string }; result: { resources: McpResource[] } };
  [Methods.tasks]: { params: wire.SessionParams; result: { tasks: BackgroundTask[] } };
  [Methods.taskOutput]: { params: wire.TaskParams; result: TaskOutputResult };
  [Methods.taskStop]: { params: wire.TaskParams; result: { message: string; task: BackgroundTask } };
  [Methods.customizations]: { params: wire.SessionParams; result: Customizations };
  [Methods.inboxList]: { params: Record<string, never>; result: { items: InboxItem[] } };
  [AutonomyMethods.inboxDismiss]: { params: { id: string }; result: { dismissed: boolean } };
  [Methods.watchStatus]: { params: Workspace; result: WatchStatus };
  [Methods.watchApprove]: { params: Workspace; result: { approved: boolean; testCommand?: string | null } };
  [Methods.watchPause]: { params: { paused: boolean }; result: { paused: boolean } };
  [Methods.memory]: { params: Workspace; result: MemoryIndex };
  [Methods.memoryRead]: { params: Workspace & { name: string }; result: { name: string; text: string } };
  [Methods.memoryWrite]: { params: Workspace & { name: string; text: string }; result: { written: boolean; masked: number } };
  [Methods.memoryDelete]: { params: Workspace & { name: string }; result: { deleted: boolean } };
  [Methods.memoryClear]: { params: Workspace; result: { deleted: number | string[] } };
  [Methods.dream]: { params: Workspace & { force?: boolean }; result: { started: boolean; reason?: string } };
}
export type RequestMethod = keyof Requests;

/** Whether the server speaks a protocol this client understands ("1.x"). */
export function isCompatibleProtocol(version: unknown): boolean {
  return typeof version === 'string' && version.split('.')[0] === PROTOCOL_MAJOR;
}

export function isAgentEvent(value: unknown): value is wire.AgentEvent {
  const v = value as Partial<wire.AgentEvent> | null;
  return !!v && typeof v === 'object' && typeof v.type === 'string' &&
    typeof v.sessionId === 'string' && typeof v.seq === 'number';
}
