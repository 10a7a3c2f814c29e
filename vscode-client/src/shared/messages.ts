// The messages between the extension host (chatView.ts) and the chat webview (webview/main.ts).
// They live here because the two sides compile separately (tsconfig.host.json and
// tsconfig.webview.json) and share nothing but src/shared/.

import type { ChatState } from './chatState';
import type { Mode } from './protocol';
import type { Decision } from './reviewBook';

/** What the webview posts: the user's intents. */
export type FromWebview =
  | { type: 'ready' }
  | { type: 'prompt'; text: string; mentions: string[] }
  | { type: 'stop' }
  | { type: 'newSession' }
  | { type: 'selectSession'; sessionId: string }
  | { type: 'setMode'; mode: Mode }
  | { type: 'setModel'; model: string }
  | { type: 'permission'; requestId: string; decision: 'allow' | 'deny'; remember: boolean; message?: string }
  | { type: 'review'; proposalId: string; decision: Decision }
  | { type: 'openFile'; uri: string; line?: number }
  | { type: 'pickMode' }
  | { type: 'pickModel' }
  | { type: 'retry' }
  | { type: 'openSettings'; query?: string }
  | { type: 'setApiKey' }
  | { type: 'install' }
  | { type: 'sideBySide'; uri: string }
  | { type: 'copy'; text: string }
  | { type: 'insert'; text: string }
  | { type: 'mentionSearch'; query: string }
  /** The slash commands of the active session (agent/commands), for completion. */
  | { type: 'listCommands' }
  // Saved sessions: "Restore checkpoint" on a prompt, older history, Up-arrow recall.
  | { type: 'restoreCheckpoint'; sessionId: string; turn: number }
  | { type: 'loadEarlier'; sessionId: string }
  | { type: 'promptHistory' }
  /** The user typed in the prompt box (throttled): the host warms the server up (agent/warmUp). */
  | { type: 'typing' };

/** One row of the `@` completion: a file, a symbol, the selection or an MCP resource. */
export interface MentionItem { label: string; value: string; kind?: 'file' | 'symbol' | 'selection' | 'mcp'; detail?: string }

/** The snapshot the host posts (``{ type: 'state', model }``) for the webview to render. */
export interface ViewModel {
  state: ChatState;
  decisions: Record<string, Record<string, Decision>>;
  models: string[];
  model: string;
  server: 'starting' | 'running' | 'restarting' | 'stopped' | 'missing';
  /** The model endpoint (lspAgent.baseUrl, else Anthropic's), named in connection errors. */
  endpoint: string;
  /** The interpreter of the server, named when lsp-agent is missing there. */
  python?: string;
  /** The first workspace folder's path: tool cards show paths relative to it. */
  workspaceRoot?: string;
}
