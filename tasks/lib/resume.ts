// Resuming a run and caching features. Epoch checkpoints live in <run>/checkpoints/epoch-XXXX.safetensors,
// written atomically through saveCheckpoint (the last K kept); --resume finds the latest one and
// checks that the new config agrees with the run's config.json on every key that changes results.
// Stage-2 features live in <run>/features/<name>.safetensors (F32 [N, D] + I32 labels) so stage 2
// can rerun without stage 1.
import { readdir, readFile, stat, unlink, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Backend } from '../../kernels/device.js';
import type { Tensor } from '../../kernels/tensor.js';
import type { OptimizerStateDict } from '../../nn/optim.js';
import { loadCheckpoint, saveCheckpoint, writeFileAtomic } from '../../nn/node-checkpoint.js';
import { decodeSafetensors, encodeSafetensors } from '../../nn/safetensors.js';

export const CHECKPOINT_DIR = 'checkpoints';
export const FEATURE_DIR = 'features';
export const CONFIG_FILE = 'config.json';
const CHECKPOINT_NAME = /^epoch-(\d{4,})\.safetensors$/;

/** `epoch-0007.safetensors`. */
export const checkpointName = (epoch: number): string => `epoch-${String(epoch).padStart(4, '0')}.safetensors`;

const exists = (path: string): Promise<boolean> => stat(path).then(() => true, () => false);

export interface CheckpointFile {
  epoch: number;
  path: string;
}

/** The run's epoch checkpoints, oldest first; temporary files of an interrupted write are not listed. */
export async function listCheckpoints(runDir: string): Promise<CheckpointFile[]> {
  const dir = join(runDir, CHECKPOINT_DIR);
  if (!(await exists(dir))) return [];
  const found: CheckpointFile[] = [];
  for (const name of await readdir(dir)) {
    const m = CHECKPOINT_NAME.exec(name);
    if (m) found.push({ epoch: Number(m[1]), path: join(dir, name) });
  }
  return found.sort((a, b) => a.epoch - b.epoch);
}

export interface EpochCheckpoint {
  /** Epochs completed: training continues with epoch `epoch` (0-based) or `epoch + 1` (1-based), the caller's convention. */
  epoch: number;
  /** Optimizer steps taken so far (for schedules that count steps). */
  step: number;
  model: Map<string, Tensor> | Record<string, Tensor>;
  optimizer?: OptimizerStateDict;
  /** Anything else to restore (best accuracy, sampler state, ...): JSON. */
  meta?: Record<string, unknown>;
}

/**
 * Writes <run>/checkpoints/epoch-XXXX.safetensors atomically, then deletes the oldest so at most
 * `keep` remain (the one just written always stays). Returns the path written.
 */
export async function saveEpochCheckpoint(runDir: string, { epoch, step, model, optimizer, meta = {} }: EpochCheckpoint, { keep = 3 }: { keep?: number } = {}): Promise<string> {
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new Error(`saveEpochCheckpoint: epoch must be a non-negative integer, got ${epoch}`);
  if (!Number.isSafeInteger(step) || step < 0) throw new Error(`saveEpochCheckpoint: step must be a non-negative integer, got ${step}`);
  if (!Number.isSafeInteger(keep) || keep < 1) throw new Error(`saveEpochCheckpoint: keep must be at least 1, got ${keep}`);
  const dir = join(runDir, CHECKPOINT_DIR);
  await mkdir(dir, { recursive: true });
  const path = join(dir, checkpointName(epoch));
  await saveCheckpoint(path, { model, optimizer, meta: { ...meta, epoch, step } });
  const older = (await listCheckpoints(runDir)).filter((c) => c.path !== path);
  for (const c of older.slice(0, Math.max(0, older.length - (keep - 1)))) await unlink(c.path);
  return path;
}

export interface ResumedState {
  path: string;
  epoch: number;
  step: number;
  model: Map<string, Tensor>;
  optimizer: OptimizerStateDict | null;
  /** The meta saved with the checkpoint, without epoch and step. */
  meta: Record<string, unknown>;
}

/** Loads the latest epoch checkpoint of the run, or null when it has none. */
export async function loadLatestCheckpoint(runDir: string, device?: Backend): Promise<ResumedState | null> {
  const all = await listCheckpoints(runDir);
  const latest = all.at(-1);
  if (!latest) return null;
  let loaded;
  try {
    loaded = await loadCheckpoint(latest.path, device);
  } catch (e) {
    const others = all.slice(0, -1).map((c) => c.path);
    throw new Error(`cannot read the latest checkpoint ${latest.path}: ${(e as Error).message}` +
      (others.length ? `; older checkpoints: ${others.join(', ')} (move the broken one away to resume from them)` : ''), { cause: e });
  }
  const { epoch, step, ...meta } = loaded.meta;
  if (epoch !== latest.epoch || !Number.isSafeInteger(step)) {
    throw new Error(`checkpoint ${latest.path} records epoch ${JSON.stringify(epoch)} and step ${JSON.stringify(step)}; its name says epoch ${latest.epoch}. Was it written by saveEpochCheckpoint?`);
  }
  return { path: latest.path, epoch: latest.epoch, step: step as number, model: loaded.model, optimizer: loaded.optimizer, meta };
}

/** One line for a crash message: where the last good checkpoint is and how to continue from it. */
export async function resumeHint(runDir: string): Promise<string> {
  const latest = (await listCheckpoints(runDir)).at(-1);
  return latest
    ? `last good checkpoint: ${latest.path} (epoch ${latest.epoch}); continue with --out ${runDir} --resume`
    : `no checkpoint was written in ${runDir} yet`;
}

// ---------------------------------------------------------------- resume checks

export interface ConfigMismatch {
  key: string;
  /** undefined: the key is absent on that side. */
  saved: unknown;
  current: unknown;
}

/** Keys on which two configs differ, by JSON value, leaving out `ignore`. */
export function configMismatches(saved: Record<string, unknown>, current: Record<string, unknown>, ignore: readonly string[] = []): ConfigMismatch[] {
  const keys = [...new Set([...Object.keys(saved), ...Object.keys(current)])].filter((k) => !ignore.includes(k));
  return keys.filter((k) => JSON.stringify(saved[k]) !== JSON.stringify(current[k])).map((key) => ({ key, saved: saved[key], current: current[key] }));
}

export interface ResumeReport {
  runDir: string;
  /** What is there: 'run folder', 'config.json', 'checkpoint epoch-0012.safetensors (3 kept)'. */
  found: string[];
  /** What is not there and is needed, as the same kind of phrases. */
  missing: string[];
  mismatches: ConfigMismatch[];
  /** The checkpoint a resume continues from; null: starts from epoch 0 (crashed before the first save). */
  latest: CheckpointFile | null;
  /** The saved config, when config.json could be read. */
  savedConfig: Record<string, unknown> | null;
  ok: boolean;
  /** A summary on success; on failure, what is wrong and what to do. */
  message: string;
}

const show = (v: unknown): string => (v === undefined ? '(absent)' : JSON.stringify(v));

/** What `--resume` would find in `runDir`, and whether `config` may continue it (keys in `ignore` may differ). */
export async function checkResume(runDir: string, config: Record<string, unknown>, { ignore = [] }: { ignore?: readonly string[] } = {}): Promise<ResumeReport> {
  const found: string[] = [];
  const missing: string[] = [];
  let savedConfig: Record<string, unknown> | null = null;
  let latest: CheckpointFile | null = null;
  let mismatches: ConfigMismatch[] = [];
  const problems: string[] = [];
  if (!(await exists(runDir))) {
    missing.push('run folder');
    problems.push(`the run folder ${runDir} does not exist`);
  } else {
    found.push('run folder');
    const configPath = join(runDir, CONFIG_FILE);
    if (!(await exists(configPath))) {
      missing.push(CONFIG_FILE);
      problems.push(`${configPath} is missing, so the run's settings are unknown`);
    } else {
      try {
        const parsed: unknown = JSON.parse(await readFile(configPath, 'utf8'));
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
        savedConfig = parsed as Record<string, unknown>;
        found.push(CONFIG_FILE);
      } catch (e) {
        missing.push(CONFIG_FILE);
        problems.push(`${configPath} cannot be read: ${(e as Error).message}`);
      }
    }
    const checkpoints = await listCheckpoints(runDir);
    latest = checkpoints.at(-1) ?? null;
    if (latest) found.push(`checkpoint ${checkpointName(latest.epoch)} (${checkpoints.length} kept)`);
    else missing.push(`${CHECKPOINT_DIR}/epoch-XXXX.safetensors (training restarts at epoch 0)`);
    if (savedConfig) {
      mismatches = configMismatches(savedConfig, config, ignore);
      if (mismatches.length) {
        problems.push(`the command line differs from ${CONFIG_FILE} on ${mismatches.map((m) => `${m.key} (saved ${show(m.saved)}, now ${show(m.current)})`).join(', ')}; ` +
          'resume with the saved values, or start a new run in another folder');
      }
    }
  }
  const ok = problems.length === 0;
  const message = ok
    ? `resuming ${runDir}: ${latest ? `from epoch ${latest.epoch} (${latest.path})` : 'no checkpoint yet, starting at epoch 0'}`
    : `cannot resume ${runDir}: ${problems.join('; ')}`;
  return { runDir, found, missing, mismatches, latest, savedConfig, ok, message };
}

// ---------------------------------------------------------------- feature cache

export interface FeatureCache {
  /** Row-major [count, dim]. */
  features: Float32Array;
  labels: Int32Array;
  count: number;
  dim: number;
  /** What the features came from (checkpoint, split, augmentation): JSON. */
  meta: Record<string, unknown>;
}

/** <run>/features/<name>.safetensors. */
export function featureCachePath(runDir: string, name: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith('.')) throw new Error(`feature cache name '${name}' must be letters, digits, '.', '_' or '-', not starting with '.'`);
  return join(runDir, FEATURE_DIR, `${name}.safetensors`);
}

/** Writes features [N, D] and labels [N] as one safetensors file, atomically. Returns its path. */
export async function saveFeatureCache(runDir: string, name: string, { features, labels, dim, meta = {} }: { features: Float32Array; labels: ArrayLike<number>; dim: number; meta?: Record<string, unknown> }): Promise<string> {
  const path = featureCachePath(runDir, name);
  if (!Number.isSafeInteger(dim) || dim < 1 || features.length % dim !== 0) throw new Error(`saveFeatureCache(${name}): ${features.length} values do not split into rows of dim ${dim}`);
  const count = features.length / dim;
  if (labels.length !== count) throw new Error(`saveFeatureCache(${name}): ${labels.length} labels for ${count} feature rows`);
  const labelArray = Int32Array.from(labels);
  const bad = labelArray.findIndex((y, i) => y !== labels[i] || y < 0);
  if (bad >= 0) throw new Error(`saveFeatureCache(${name}): label ${labels[bad]} at row ${bad} is not a non-negative int32`);
  await mkdir(join(runDir, FEATURE_DIR), { recursive: true });
  const bytes = encodeSafetensors([
    ['features', { dtype: 'F32', shape: [count, dim], data: features }],
    ['labels', { dtype: 'I32', shape: [count], data: labelArray }],
  ], { format: 'features', meta: JSON.stringify(meta) });
  await writeFileAtomic(path, bytes);
  return path;
}

/** A view of `bytes` when it is 4-byte aligned (the data of a file read whole: no second copy of a large cache), else a copy. */
function aligned<T extends Float32Array | Int32Array>(bytes: Uint8Array, Type: { new (buffer: ArrayBufferLike, byteOffset: number, length: number): T; new (buffer: ArrayBufferLike): T }): T {
  return bytes.byteOffset % 4 === 0 ? new Type(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) : new Type(bytes.slice().buffer);
}

/** Reads a feature cache; null when the file does not exist, an error naming the file when it is not one. */
export async function loadFeatureCache(runDir: string, name: string): Promise<FeatureCache | null> {
  const path = featureCachePath(runDir, name);
  if (!(await exists(path))) return null;
  const fail = (why: string): never => {
    throw new Error(`feature cache ${path}: ${why}`);
  };
  const file = await readFile(path);
  let decoded;
  try {
    decoded = decodeSafetensors(new Uint8Array(file.buffer, file.byteOffset, file.byteLength));
  } catch (e) {
    return fail((e as Error).message);
  }
  const { tensors, metadata } = decoded;
  const f = tensors.get('features');
  const y = tensors.get('labels');
  if (!f || f.dtype !== 'F32' || f.shape.length !== 2) return fail('needs an F32 tensor "features" of shape [N, D]');
  if (!y || y.dtype !== 'I32' || y.shape.length !== 1 || y.shape[0] !== f.shape[0]) return fail(`needs an I32 tensor "labels" of shape [${f.shape[0]}]`);
  let meta: unknown = {};
  try {
    meta = JSON.parse(metadata.meta ?? '{}');
  } catch (e) {
    fail(`metadata "meta" is not JSON: ${(e as Error).message}`);
  }
  return {
    features: aligned(f.bytes, Float32Array),
    labels: aligned(y.bytes, Int32Array),
    count: f.shape[0],
    dim: f.shape[1],
    meta: meta as Record<string, unknown>,
  };
}
