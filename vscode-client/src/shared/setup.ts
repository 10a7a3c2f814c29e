// Decisions of the extension host about setting the server up: whether a model credential is
// configured (else the panel asks for the API key at first use) and what the one-click install
// runs. Pure (no vscode), so they are unit tested.

/** The environment variables the server takes a model credential from. */
export const CREDENTIAL_VARS = ['ANTHROPIC_API_KEY', 'ANTHROPIC_AUTH_TOKEN'] as const;

/** True when one of these environments (process, lspAgent.serverEnv ...) holds a non-empty credential. */
export function hasCredential(...envs: (Record<string, string | undefined> | undefined)[]): boolean {
  return envs.some((env) => !!env && CREDENTIAL_VARS.some((name) => typeof env[name] === 'string' && env[name]!.trim() !== ''));
}

export const DEFAULT_INSTALL_SOURCE = 'lsp-agent';

/**
 * The arguments after the interpreter for installing lsp-agent from lspAgent.installSource (a
 * package name or requirement, a wheel or a source folder), or why the setting cannot be used: a
 * value starting with "-" would be read by pip as an option, not as what to install.
 */
export function pipInstallArgs(source: string | undefined): { args: string[] } | { error: string } {
  const target = (source ?? '').trim() || DEFAULT_INSTALL_SOURCE;
  if (target.startsWith('-')) {
    return { error: `lspAgent.installSource must name a package, a wheel or a folder, not a pip option ("${target}")` };
  }
  return { args: ['-m', 'pip', 'install', target] };
}
