// The editor bridge: the server asks for what VS Code's own language features know
// (docs/protocol.md, "Editor bridge"), so the agent's code-intel tools work in any language.

import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { BridgeMethods } from './shared/protocol';

interface At { uri: string; position: { line: number; character: number } }

const MAX_ITEMS = 500;

export function registerBridge(client: LanguageClient): vscode.Disposable[] {
  const c2p = client.code2ProtocolConverter;
  const uriOf = (raw: string) => vscode.Uri.parse(raw);
  const pos = (p: At['position']) => new vscode.Position(p.line, p.character);
  const location = (l: vscode.Location | vscode.LocationLink) => 'targetUri' in l
    ? { targetUri: l.targetUri.toString(), targetRange: c2p.asRange(l.targetRange), targetSelectionRange: c2p.asRange(l.targetSelectionRange ?? l.targetRange) }
    : c2p.asLocation(l);

  return [
    client.onRequest(BridgeMethods.definition, async (p: At) => {
      const found = await vscode.commands.executeCommand<(vscode.Location | vscode.LocationLink)[]>(
        'vscode.executeDefinitionProvider', uriOf(p.uri), pos(p.position));
      return (found ?? []).slice(0, MAX_ITEMS).map(location);
    }),
    client.onRequest(BridgeMethods.references, async (p: At) => {
      const found = await vscode.commands.executeCommand<vscode.Location[]>(
        'vscode.executeReferenceProvider', uriOf(p.uri), pos(p.position));
      return (found ?? []).slice(0, MAX_ITEMS).map(location);
    }),
    client.onRequest(BridgeMethods.hover, async (p: At) => {
      const hovers = await vscode.commands.executeCommand<vscode.Hover[]>(
        'vscode.executeHoverProvider', uriOf(p.uri), pos(p.position));
      const value = (hovers ?? []).flatMap((h) => h.contents.map(markdownOf)).filter(Boolean).join('\n\n---\n\n');
      return value ? { contents: { kind: 'markdown', value } } : null;
    }),
    client.onRequest(BridgeMethods.documentSymbols, async (p: { uri: string }) => {
      const symbols = await vscode.commands.executeCommand<(vscode.DocumentSymbol | vscode.SymbolInformation)[]>(
        'vscode.executeDocumentSymbolProvider', uriOf(p.uri));
      return (symbols ?? []).slice(0, MAX_ITEMS).map((s) => 'children' in s ? documentSymbol(c2p, s) : symbolInformation(c2p, s as vscode.SymbolInformation));
    }),
    client.onRequest(BridgeMethods.workspaceSymbols, async (p: { query: string }) => {
      const symbols = await vscode.commands.executeCommand<vscode.SymbolInformation[]>(
        'vscode.executeWorkspaceSymbolProvider', p.query);
      return (symbols ?? []).slice(0, MAX_ITEMS).map((s) => symbolInformation(c2p, s));
    }),
    client.onRequest(BridgeMethods.diagnostics, (p: { uri?: string }) => {
      const entries: [vscode.Uri, readonly vscode.Diagnostic[]][] = p.uri
        ? [[uriOf(p.uri), vscode.languages.getDiagnostics(uriOf(p.uri))]]
        : vscode.languages.getDiagnostics();
      return { items: entries.slice(0, MAX_ITEMS).map(([uri, diagnostics]) => ({
        uri: uri.toString(), diagnostics: c2p.asDiagnosticsSync([...diagnostics]) })) };
    }),
  ];
}

function markdownOf(content: vscode.MarkdownString | vscode.MarkedString): string {
  if (typeof content === 'string') return content;
  if ('language' in content) return `\`\`\`${content.language}\n${content.value}\n\`\`\``;
  return content.value;
}

function documentSymbol(c2p: LanguageClient['code2ProtocolConverter'], s: vscode.DocumentSymbol): unknown {
  return {
    name: s.name, detail: s.detail, kind: s.kind + 1, // vscode's SymbolKind is 0-based, LSP's 1-based
    range: c2p.asRange(s.range), selectionRange: c2p.asRange(s.selectionRange),
    children: s.children.map((child) => documentSymbol(c2p, child)),
  };
}

function symbolInformation(c2p: LanguageClient['code2ProtocolConverter'], s: vscode.SymbolInformation): unknown {
  return { name: s.name, kind: s.kind + 1, containerName: s.containerName || undefined, location: c2p.asLocation(s.location) };
}
