// Builds the package with esbuild: dist/node.js (Node, Dawn), dist/web.js (browser, no Node
// built-ins: the build fails if one leaks into the core), the smoke demo demo/dist/smoke.js and the long-tail lab demo/dist/lab.js, the
// runnable bench/*.js and tasks/*.js, and the type declarations. `--web`: the browser bundles only.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { readdirSync, existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const scripts = (dir) => (existsSync(root + dir) ? readdirSync(root + dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')).map((f) => `${dir}/${f}`) : []);
const common = { bundle: true, format: 'esm', target: 'es2022', sourcemap: true, logLevel: 'warning', absWorkingDir: root };
/** Options of every browser bundle (also used by scripts/test-browser.mjs): platform 'browser' makes a Node built-in a build error. */
export const webOptions = { ...common, platform: 'browser' };

export const buildWeb = () =>
  Promise.all([
    build({ ...webOptions, entryPoints: ['index.ts'], outfile: 'dist/web.js' }),
    build({ ...webOptions, entryPoints: ['demo/smoke.ts'], outfile: 'demo/dist/smoke.js' }),
    build({ ...webOptions, entryPoints: ['demo/lab.ts'], outfile: 'demo/dist/lab.js' }),
  ]);

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv.includes('--web')) {
    await buildWeb();
  } else {
    await Promise.all([
      build({ ...common, entryPoints: ['index.node.ts'], outfile: 'dist/node.js', platform: 'node', packages: 'external' }),
      // The data loader's worker thread: a file of its own, which data/node-loader.ts finds at run time.
      build({ ...common, entryPoints: ['data/node-worker.ts'], outfile: 'dist/data-worker.js', platform: 'node', packages: 'external' }),
      buildWeb(),
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
      execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit', cwd: root });
    }
  }
}
