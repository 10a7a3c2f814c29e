// Bundles the extension (Node, CommonJS) and the chat webview (browser) with esbuild, each with its
// own tsconfig (type-checking is `npm run typecheck`), and copies the webview's static assets next
// to them in dist/.
import { build, context } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const watch = process.argv.includes('--watch');

const targets = [
  { entryPoints: [join(root, 'src/extension.ts')], outfile: join(dist, 'extension.js'), platform: 'node',
    format: 'cjs', target: 'node20', external: ['vscode'], tsconfig: join(root, 'tsconfig.host.json') },
  { entryPoints: [join(root, 'src/webview/main.ts')], outfile: join(dist, 'webview.js'), platform: 'browser',
    format: 'iife', target: 'es2022', tsconfig: join(root, 'tsconfig.webview.json') },
].map((t) => ({ bundle: true, sourcemap: true, minify: !watch, logLevel: 'info', ...t }));

mkdirSync(dist, { recursive: true });
const codicons = join(root, 'node_modules/@vscode/codicons/dist');
copyFileSync(join(codicons, 'codicon.css'), join(dist, 'codicon.css'));
copyFileSync(join(codicons, 'codicon.ttf'), join(dist, 'codicon.ttf'));
copyFileSync(join(root, 'media/chat.css'), join(dist, 'chat.css'));

if (watch) {
  for (const t of targets) await (await context(t)).watch();
} else {
  await Promise.all(targets.map((t) => build(t)));
}
