// An ACP client written with the official TypeScript SDK, independent of the Python SDK the
// agent uses: it starts `lsp-agent acp`, runs one prompt and prints what it saw as JSON.
// Usage: node client.mjs PYTHON WORKSPACE PROMPT
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { Readable, Writable } from "node:stream";
import * as acp from "@agentclientprotocol/sdk";

const [python, workspace, promptText] = process.argv.slice(2);
const agentProcess = spawn(python, ["-m", "lsp_agent", "acp"], {
  stdio: ["pipe", "pipe", "inherit"],
});
const stream = acp.ndJsonStream(Writable.toWeb(agentProcess.stdin),
                                Readable.toWeb(agentProcess.stdout));
const seen = { updates: [], permissions: [], reads: [], writes: [], diskWhenAsked: {} };

// Commands: "always" (a session rule); edits: once, after noting the disk is still unchanged.
function answerPermission({ params }) {
  seen.permissions.push(params);
  const diffs = (params.toolCall.content ?? []).filter((c) => c.type === "diff");
  for (const diff of diffs) seen.diskWhenAsked[diff.path] = readFileSync(diff.path, "utf8");
  const wanted = diffs.length ? "allow_once" : "allow_always";
  const option = params.options.find((o) => o.kind === wanted);
  return { outcome: { outcome: "selected", optionId: option.optionId } };
}

const app = acp.client({ name: "ts-test-client" })
  .onRequest(acp.methods.client.session.requestPermission, answerPermission)
  .onNotification(acp.methods.client.session.update, ({ params }) => {
    seen.updates.push(params.update);
  })
  .onRequest(acp.methods.client.fs.readTextFile, ({ params }) => {
    seen.reads.push(params.path);
    return { content: readFileSync(params.path, "utf8") };
  })
  .onRequest(acp.methods.client.fs.writeTextFile, ({ params }) => {
    seen.writes.push(params.path);
    writeFileSync(params.path, params.content);
    return {};
  });

const result = await app.connectWith(stream, async (agent) => {
  const init = await agent.request(acp.methods.agent.initialize, {
    protocolVersion: acp.PROTOCOL_VERSION,
    clientCapabilities: { fs: { readTextFile: true, writeTextFile: true } },
  });
  const session = await agent.request(acp.methods.agent.session.new,
                                      { cwd: workspace, mcpServers: [] });
  const answer = await agent.request(acp.methods.agent.session.prompt, {
    sessionId: session.sessionId,
    prompt: [{ type: "text", text: promptText }],
  });
  return { init, modes: session.modes, stopReason: answer.stopReason };
});
agentProcess.stdin.end();
process.stdout.write(JSON.stringify({ ...result, ...seen }) + "\n");
process.exit(0);
