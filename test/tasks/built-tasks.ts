// What the end-to-end task tests share: the tasks built into a fresh folder (with the data loader's
// worker beside them and the repository's node_modules linked in), and small class-balanced lists
// taken from the embedded CIFAR-10-LT mini set.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export const repo = fileURLToPath(new URL('../../', import.meta.url));
export const MINI = join(repo, 'assets/cifar10-lt-mini');

/** Builds tasks/<name>.ts for each name into a new temporary folder (prefix `prefix`); returns the folder. */
export async function buildTasks(prefix: string, names: readonly string[]): Promise<string> {
  const work = mkdtempSync(join(tmpdir(), prefix));
  symlinkSync(join(repo, 'node_modules'), join(work, 'node_modules'), 'dir');
  const common = { bundle: true, format: 'esm', target: 'es2022', platform: 'node', packages: 'external', logLevel: 'warning', absWorkingDir: repo } as const;
  await build({ ...common, entryPoints: ['data/node-worker.ts'], outfile: join(work, 'dist/data-worker.js') });
  for (const name of names) await build({ ...common, entryPoints: [`tasks/${name}.ts`], outfile: join(work, 'tasks', `${name}.js`) });
  return work;
}

/** Runs the built task `name` in `work` (XDG_RUNTIME_DIR set for Dawn): its exit status and stdout + stderr. */
export const taskRunner = (work: string, name: string) => (args: string[]): { status: number | null; output: string } => {
  const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' };
  const r = spawnSync(process.execPath, [join(work, 'tasks', `${name}.js`), ...args], { cwd: work, env, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
};

/** The first `perClass` lines of each class of the mini set's `file` (train.txt or test.txt), as list text; `absolute`: paths made absolute. */
export function miniList(file: string, perClass: number, { absolute = false } = {}): string {
  const taken = new Map<string, number>();
  const lines = readFileSync(join(MINI, file), 'utf8').trim().split('\n').filter((line) => {
    const label = line.split(' ')[1];
    taken.set(label, (taken.get(label) ?? 0) + 1);
    return taken.get(label)! <= perClass;
  });
  return `${(absolute ? lines.map((l) => join(MINI, l)) : lines).join('\n')}\n`;
}
