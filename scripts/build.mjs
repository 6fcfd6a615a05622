// Builds the package with esbuild: dist/node.js (Node, Dawn), dist/web.js (browser, no Node
// built-ins: the build fails if one leaks into the core), the runnable bench/*.js and tasks/*.js,
// and the type declarations.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { readdirSync, existsSync } from 'node:fs';

const scripts = (dir) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')).map((f) => `${dir}/${f}`) : []);
const common = { bundle: true, format: 'esm', target: 'es2022', sourcemap: true, logLevel: 'warning' };

await Promise.all([
  build({ ...common, entryPoints: ['index.node.ts'], outfile: 'dist/node.js', platform: 'node', packages: 'external' }),
  build({ ...common, entryPoints: ['index.ts'], outfile: 'dist/web.js', platform: 'browser' }),
  build({
    ...common,
    entryPoints: [...scripts('bench'), ...scripts('tasks')],
    outdir: '.',
    outbase: '.',
    platform: 'node',
    packages: 'external',
    sourcemap: false,
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  }),
]);

if (!process.argv.includes('--no-types')) {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
