// Dawn's two "maxDynamic… artificially reduced" notices (printed by native code on fd 2 while the
// adapter is enumerated) must not reach a run's stderr; any other native output must.
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { dropDawnNoise } from '../../node-quiet-stderr.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'dawn-warn-'));
symlinkSync(join(repo, 'node_modules'), join(work, 'node_modules'), 'dir');
afterAll(() => rmSync(work, { recursive: true, force: true }));

const NOISE = 'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.';

async function bundle(name: string, source: string): Promise<string> {
  const entry = join(repo, `.tmp-${name}-${process.pid}.ts`);
  writeFileSync(entry, source);
  const out = join(work, `${name}.mjs`);
  try {
    await build({ entryPoints: [entry], outfile: out, bundle: true, format: 'esm', platform: 'node', packages: 'external', logLevel: 'warning', absWorkingDir: repo, nodePaths: [join(repo, 'node_modules')] });
  } finally {
    rmSync(entry, { force: true });
  }
  return out;
}

const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' };

/** Runs a bundle with stderr on a file (as `2> file`) or on a shell pipe (as `2>&1 | tee`). Node's own
 * child-process pipes are sockets, which cannot be reopened through /proc: there the notices stay. */
function run(file: string, via: 'file' | 'pipe'): { status: number | null; stdout: string; stderr: string } {
  if (via === 'pipe') {
    const r = spawnSync('sh', ['-c', `"${process.execPath}" "${file}" 2>&1 >/dev/null | cat`], { cwd: repo, encoding: 'utf8', env, timeout: 120_000 });
    return { status: r.status, stdout: '', stderr: r.stdout };
  }
  const errFile = join(work, `stderr-${Math.random().toString(36).slice(2)}`);
  const fd = openSync(errFile, 'w');
  try {
    const r = spawnSync(process.execPath, [file], { cwd: repo, encoding: 'utf8', env, timeout: 120_000, stdio: ['ignore', 'pipe', fd] });
    return { status: r.status, stdout: r.stdout, stderr: readFileSync(errFile, 'utf8') };
  } finally {
    closeSync(fd);
  }
}

describe("Dawn's adapter-limit notices", () => {
  it('drops exactly the two notices', () => {
    const storage = NOISE.replace('Uniform', 'Storage');
    expect(dropDawnNoise(`${NOISE}\n${storage}\nWarning: something else\n`)).toBe('Warning: something else\n');
  });

  it('are not printed when a process initialises WebGPU through the Node entry', async () => {
    const file = await bundle('init', `import './node-dawn.js';\nimport { init } from './kernels/device.js';\nconst d = await init();\nprocess.stdout.write(d ? 'webgpu\\n' : 'cpu\\n');\nprocess.stderr.write('after\\n');\n`);
    for (const via of ['file', 'pipe'] as const) {
      const r = run(file, via);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout + r.stderr).not.toMatch(/artificially reduced/);
      expect(r.stderr).toContain('after');
    }
  });

  it('still shows any other line written to fd 2 in the window, and stderr works afterwards', async () => {
    const file = await bundle('window', `import { writeSync } from 'node:fs';\nimport { withFilteredNativeStderr } from './node-quiet-stderr.js';\nconst v = await withFilteredNativeStderr(async () => { writeSync(2, ${JSON.stringify(NOISE + '\n')} + 'real driver message\\n'); return 7; });\nprocess.stderr.write('value ' + v + '\\n');\n`);
    for (const via of ['file', 'pipe'] as const) {
      const r = run(file, via);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toBe('real driver message\nvalue 7\n');
    }
  });
});
