// The permission question as a notification while the chat panel is hidden: its answers are
// command links (a notification with buttons cannot be closed by the extension, one with links
// can), and what each link may answer. Pure (no vscode), so it is unit tested.

import type { PermissionAnswer } from './protocol';

/** The command the links run, with the request id and the answer as arguments. */
export const ANSWER_COMMAND = 'lspAgent.answerPermission';
const ANSWERS = { allow: 'Allow once', 'allow-session': 'Allow for this session', deny: 'Deny' } as const;
export type LinkAnswer = keyof typeof ANSWERS;

function link(label: string, command: string, args: unknown[] = []): string {
  return `[${label}](command:${command}${args.length ? `?${encodeURIComponent(JSON.stringify(args))}` : ''})`;
}

/** The notification's message: one link per answer, then one to the chat. */
export function permissionLinks(requestId: string): string {
  const answers = (Object.keys(ANSWERS) as LinkAnswer[]).map((a) => link(ANSWERS[a], ANSWER_COMMAND, [requestId, a]));
  return [...answers, link('Open chat', 'lspAgent.openChat')].join(' · ');
}

/** The notification's title; brackets are dropped so the reason cannot make a link of its own. */
export function permissionTitle(tool: string, reason: string): string {
  return `lsp-agent wants to run ${tool}: ${reason}`.replace(/[[\]]/g, '');
}

/** What a link's argument answers: only the exact words allow; anything else denies. */
export function answerOfLink(answer: unknown): PermissionAnswer {
  if (answer === 'allow' || answer === 'allow-session') return { decision: 'allow', remember: answer === 'allow-session' };
  return { decision: 'deny' };
}
