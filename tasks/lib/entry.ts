// What every task entry does around its pipeline: checks of the paths the user gave (one clear line
// each, before a run folder exists), the command that resumes a run, a SIGINT handler that says
// where the last checkpoint is, and the top-level catch that turns any failure into one line.
import { readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { CHECKPOINT_DIR, checkpointName } from './resume.js';
import type { Run } from './run.js';

/** A failure the user can fix: printed as one line, without a stack. */
export class TaskError extends Error {}

/** Checks that `dir`, given by `--flag`, is an existing folder. */
export function checkFolder(flag: string, dir: string): void {
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new TaskError(`${flag} ${dir} does not exist`);
  }
  if (!st.isDirectory()) throw new TaskError(`${flag} ${dir} is a file, not a folder`);
}

/** The shell word for `arg`, quoted when it needs it. */
const quote = (arg: string): string => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`);

/**
 * The command that continues the run in `dir`: the same options (they must match config.json),
 * without any --out/--resume, then `--out dir --resume`.
 */
export function resumeCommand(task: string, argv: readonly string[], dir: string): string {
  const kept: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--resume' || a === '--no-resume' || a.startsWith('--out=')) continue;
    if (a === '--out') {
      i++;
      continue;
    }
    kept.push(a);
  }
  return ['node', `tasks/${task}.js`, ...kept, '--out', dir, '--resume'].map(quote).join(' ');
}

/** The newest epoch checkpoint in `dir`, read synchronously (safe in a signal handler). */
export function latestCheckpointSync(dir: string): { epoch: number; path: string } | null {
  let names: string[];
  try {
    names = readdirSync(join(dir, CHECKPOINT_DIR));
  } catch {
    return null;
  }
  const epochs = names.map((n) => /^epoch-(\d{4,})\.safetensors$/.exec(n)).filter((m): m is RegExpExecArray => m !== null).map((m) => Number(m[1]));
  if (!epochs.length) return null;
  const epoch = Math.max(...epochs);
  return { epoch, path: join(dir, CHECKPOINT_DIR, checkpointName(epoch)) };
}

/** One line: where the last checkpoint is and the command that continues from it. */
export function resumeAdvice(task: string, argv: readonly string[], dir: string): string {
  const latest = latestCheckpointSync(dir);
  const command = resumeCommand(task, argv, dir);
  return latest
    ? `last checkpoint: ${latest.path} (epoch ${latest.epoch}); continue with: ${command}`
    : `no epoch checkpoint was written in ${dir} yet; ${command} starts it again at epoch 0`;
}

/**
 * On SIGINT (Ctrl-C) or SIGTERM: logs, on the terminal and in log.txt, that the run was
 * interrupted, where its last checkpoint is and how to resume, then exits (130 / 143).
 * Returns a function that removes the handlers.
 */
export function handleInterrupts(run: Run, task: string, argv: readonly string[], exit: (code: number) => void = (code) => process.exit(code)): () => void {
  const handler = (signal: NodeJS.Signals) => {
    run.error(`interrupted by ${signal}; ${resumeAdvice(task, argv, run.dir)}`);
    run.close();
    exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

/** Runs a task's body; any failure outside the run's own handling becomes `task: error: message` and exit code 1. */
export async function taskMain(task: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(`${task}: error: ${message}\n`);
    if (!(e instanceof TaskError) && process.env.LONGTAIL_DEBUG === '1' && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    process.exitCode = 1;
  }
}

/** The data loader's default number of worker threads (data/node-loader.ts): min(4, cores − 1), at least 1. */
export const defaultWorkers = (): number => Math.max(1, Math.min(4, availableParallelism() - 1));
