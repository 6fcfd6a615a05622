// A run folder: everything one task run leaves behind, in one place.
//   config.json               the resolved config (atomic)
//   log.txt                   every log line, timestamped (appended to on --resume)
//   metrics.json              top1, many, medium, few, per_class, train_counts, methods, ... (atomic)
//   results.md                the seed-format results table and the config summary (atomic)
//   per_class_accuracy.svg    per-class accuracy, classes by training count, one series per method
//   split_accuracy.svg        Average / Many / Medium / Few per method; calibration_change.svg: per-class change vs the baseline
//   epochs.csv, curves.svg    per-epoch loss, lr, time, validation top-1, and the loss/lr curves (tasks/lib/curves.ts)
//   checkpoints/              epoch-XXXX.safetensors, the last K (see resume.ts)
//   features/                 cached stage-1 features for stage 2 (see resume.ts)
import { access, constants, mkdir, readdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Backend } from '../../kernels/device.js';
import { resultsTableMarkdown, resultsTableText, shotSplits, type LongTailEvaluation, type ShotThresholds, type ResultRow } from '../../longtail/metrics.js';
import { writeFileAtomic } from '../../nn/node-checkpoint.js';
import { opt } from './cli.js';
import { RunLog } from './log.js';
import { perClassAccuracySvg } from './plot.js';
import { calibrationChangeSvg, splitAccuracySvg } from './plots-summary.js';
import { Progress, type ProgressOptions } from './progress.js';
import {
  checkResume,
  CONFIG_FILE,
  configMismatches,
  loadFeatureCache,
  loadLatestCheckpoint,
  saveEpochCheckpoint,
  saveFeatureCache,
  type EpochCheckpoint,
  type FeatureCache,
  type ResumedState,
  type ResumeReport,
} from './resume.js';

export const LOG_FILE = 'log.txt';
export const METRICS_FILE = 'metrics.json';
export const RESULTS_FILE = 'results.md';
export const PLOT_FILE = 'per_class_accuracy.svg';
export const SPLIT_PLOT_FILE = 'split_accuracy.svg';
export const CHANGE_PLOT_FILE = 'calibration_change.svg';

/** The options every task has; spread them into the task's spec: `options: { ...taskOptions, ...runOptions }`. */
export const runOptions = {
  out: opt.string({
    section: 'Run',
    metavar: 'DIR',
    help: 'Run folder for config, log, metrics, plots and checkpoints (default runs/<task>-<YYYYMMDD-HHMMSS>). With --resume: the run to continue (default: the newest runs/<task>-* folder).',
    resumeCheck: false,
  }),
  resume: opt.boolean({ section: 'Run', help: "Continue the run in --out from its latest checkpoint; the options must match its config.json.", resumeCheck: false }),
  keepCheckpoints: opt.integer({ section: 'Run', default: 3, min: 1, help: 'Epoch checkpoints to keep (the newest).', resumeCheck: false }),
};

/** `20250601-130502`, local time. */
export function runStamp(now: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
}

const exists = (path: string): Promise<boolean> => stat(path).then(() => true, () => false);
const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Whether a run folder holds anything to continue from: an epoch checkpoint, a feature cache or results. */
async function hasProgress(dir: string): Promise<boolean> {
  const nonEmpty = async (sub: string) => (await exists(join(dir, sub))) && (await readdir(join(dir, sub))).some((f) => f.endsWith('.safetensors'));
  return (await nonEmpty('checkpoints')) || (await nonEmpty('features')) || (await exists(join(dir, METRICS_FILE)));
}

/**
 * The newest `<runsRoot>/<task>-YYYYMMDD-HHMMSS[-n]` folder that holds a checkpoint, cached
 * features or results, or null. A folder left by a start that failed before its first checkpoint
 * (a bad option, a missing file) is passed over, so a plain --resume finds the real run; when no
 * folder holds anything, the newest is returned.
 */
export async function latestRunDir(runsRoot: string, task: string): Promise<string | null> {
  if (!(await exists(runsRoot))) return null;
  const pattern = new RegExp(`^${escapeRegExp(task)}-(\\d{8}-\\d{6})(?:-(\\d+))?$`);
  const runs = (await readdir(runsRoot, { withFileTypes: true }))
    .filter((e) => e.isDirectory())
    .map((e) => ({ name: e.name, m: pattern.exec(e.name) }))
    .filter((r): r is { name: string; m: RegExpExecArray } => r.m !== null)
    .sort((a, b) => a.m[1].localeCompare(b.m[1]) || Number(a.m[2] ?? 1) - Number(b.m[2] ?? 1));
  if (!runs.length) return null;
  for (let i = runs.length - 1; i >= 0; i--) {
    const dir = join(runsRoot, runs[i].name);
    if (await hasProgress(dir)) return dir;
  }
  return join(runsRoot, runs[runs.length - 1].name);
}

/** Why a folder cannot be written, in words, from a Node error code. */
function unwritable(dir: string, e: unknown): Error {
  const code = (e as NodeJS.ErrnoException).code;
  const why: Record<string, string> = {
    EROFS: 'it is on a read-only file system',
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    ENOTDIR: 'a part of the path is a file, not a folder',
    EEXIST: 'a file of that name exists',
    ENOSPC: 'no space left on the device',
  };
  return new Error(`cannot write the run folder ${dir}: ${(code && why[code]) ?? (e as Error).message}${code ? ` (${code})` : ''}; choose another --out`, { cause: e });
}

export interface OpenRunOptions {
  /** The task's name: 'imagenet-lt'. */
  task: string;
  /** The resolved config (parseCli's result), written as config.json. */
  config: Record<string, unknown>;
  /** --out. */
  out?: string;
  /** --resume: continue the run in `out` (or the task's newest run). */
  resume?: boolean;
  /** Config keys that may differ on resume (keysFreeOnResume(spec.options)). */
  ignoreOnResume?: readonly string[];
  /** Epoch checkpoints kept (default 3). */
  keepCheckpoints?: number;
  /** Where default run folders go (default 'runs'). */
  runsRoot?: string;
  /** For the default folder name (default now). */
  now?: Date;
  /** The log to attach to log.txt (default: a new one echoing to the console). */
  log?: RunLog;
}

/** One method's evaluation, as evaluateLongTail returns it. */
export interface MethodResult {
  method: string;
  evaluation: LongTailEvaluation;
}

export interface ResultsInput {
  /** Table rows in order (baseline first, as in the seed talk). */
  results: readonly MethodResult[];
  /** Training images per class: the many/medium/few split and the plot's order. */
  trainCounts: ArrayLike<number>;
  /** The method whose numbers are metrics.json's top level (default: the last row). */
  primary?: string;
  classNames?: readonly string[];
  thresholds?: ShotThresholds;
  /** More top-level fields for metrics.json (timings, epochs, seed, ...); they must not reuse its keys. */
  extra?: Record<string, unknown>;
}

/** One method's numbers in metrics.json: fractions in [0, 1], null where undefined (NaN). */
export interface MethodMetrics {
  method: string;
  top1: number;
  many: number;
  medium: number;
  few: number;
  top5: number;
  macro_f1: number;
  per_class: number[];
}

/** metrics.json: the primary method's numbers at the top, every method under `methods`. */
export interface RunMetrics extends Omit<MethodMetrics, 'method'> {
  task: string;
  method: string;
  train_counts: number[];
  split_classes: { many: number; medium: number; few: number };
  thresholds: { many_above: number; few_below: number };
  methods: MethodMetrics[];
  [extra: string]: unknown;
}

function methodMetrics({ method, evaluation: e }: MethodResult): MethodMetrics {
  return { method, top1: e.top1, many: e.many, medium: e.medium, few: e.few, top5: e.top5, macro_f1: e.macroF1, per_class: Array.from(e.perClass) };
}

/** The metrics.json object (NaN becomes null when written). */
export function buildMetrics(task: string, { results, trainCounts, primary, thresholds = {}, extra = {}, classNames }: ResultsInput): RunMetrics {
  if (results.length === 0) throw new Error('writeResults: no method results');
  const C = trainCounts.length;
  for (const r of results) {
    if (r.evaluation.perClass.length !== C) throw new Error(`writeResults: '${r.method}' has ${r.evaluation.perClass.length} per-class accuracies for ${C} training counts`);
  }
  if (classNames && classNames.length !== C) throw new Error(`writeResults: ${classNames.length} class names for ${C} classes`);
  const head = primary === undefined ? results[results.length - 1] : results.find((r) => r.method === primary);
  if (!head) throw new Error(`writeResults: primary method '${primary}' is not among ${results.map((r) => r.method).join(', ')}`);
  const splits = shotSplits(trainCounts, thresholds);
  const { method, ...top } = methodMetrics(head);
  const metrics: RunMetrics = {
    task,
    method,
    ...top,
    train_counts: Array.from(trainCounts),
    split_classes: { many: splits.filter((s) => s === 'many').length, medium: splits.filter((s) => s === 'medium').length, few: splits.filter((s) => s === 'few').length },
    thresholds: { many_above: thresholds.manyAbove ?? 100, few_below: thresholds.fewBelow ?? 20 },
    methods: results.map(methodMetrics),
    ...(classNames ? { class_names: [...classNames] } : {}),
  };
  for (const [k, v] of Object.entries(extra)) {
    if (k in metrics) throw new Error(`writeResults: extra field '${k}' would overwrite a metrics.json field`);
    metrics[k] = v;
  }
  return metrics;
}

const tableRow = (m: MethodMetrics): ResultRow => ({ method: m.method, average: m.top1, many: m.many, medium: m.medium, few: m.few });

/** Indented JSON with arrays of numbers kept on one line (per_class of 1000 classes stays readable). */
export function formatJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/\[\s*((?:-?[\d.eE+-]+|null)(?:,\s*(?:-?[\d.eE+-]+|null))*)\s*\]/g, (_, items: string) => `[${items.split(/,\s*/).join(', ')}]`) + '\n';
}

/** A config value in a Markdown table cell. */
const cell = (v: unknown): string => (v === undefined ? '-' : `\`${(typeof v === 'string' ? v : JSON.stringify(v)).replace(/\|/g, '\\|')}\``);

/** results.md: the seed-format table, top-5 and macro-F1, the split sizes, the plot and the config. */
export function resultsMarkdown(task: string, metrics: RunMetrics, config: Record<string, unknown>, runDir: string): string {
  const pct = (x: number): string => (Number.isFinite(x) ? (x * 100).toFixed(1) : '-');
  const { many_above: manyAbove, few_below: fewBelow } = metrics.thresholds;
  const lines = [
    `# ${task} results`,
    '',
    resultsTableMarkdown(metrics.methods.map(tableRow)).trimEnd(),
    '',
    `Top-1 accuracy (%) on the test set. Many, Medium and Few average the per-class accuracy over the classes with more than ${manyAbove}, ` +
      `${fewBelow} to ${manyAbove}, and fewer than ${fewBelow} training images (${metrics.split_classes.many} / ${metrics.split_classes.medium} / ${metrics.split_classes.few} of ${metrics.train_counts.length} classes). ` +
      `Headline method: ${metrics.method}.`,
    '',
    '| Method | Top-5 | Macro-F1 |',
    '| --- | ---: | ---: |',
    ...metrics.methods.map((m) => `| ${m.method} | ${pct(m.top5)} | ${pct(m.macro_f1)} |`),
    '',
    `![Per-class accuracy](${PLOT_FILE})`,
    '',
    '## Config',
    '',
    `Run folder \`${runDir}\`; the full config is in \`${CONFIG_FILE}\`, all numbers in \`${METRICS_FILE}\`.`,
    '',
    '| Option | Value |',
    '| --- | --- |',
    ...Object.entries(config).map(([k, v]) => `| ${k} | ${cell(v)} |`),
  ];
  return lines.join('\n') + '\n';
}

/** An open run folder; created by openRun. */
export class Run {
  constructor(
    readonly task: string,
    readonly dir: string,
    readonly config: Record<string, unknown>,
    readonly log: RunLog,
    /** The resume check when the run was resumed, else null. */
    readonly resumed: ResumeReport | null,
    private readonly keepCheckpoints: number,
  ) {}

  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  info(message: string): void {
    this.log.info(message);
  }

  warn(message: string): void {
    this.log.warn(message);
  }

  error(message: string): void {
    this.log.error(message);
  }

  /** Writes `<run>/<name>` atomically. */
  async writeText(name: string, text: string): Promise<void> {
    await writeFileAtomic(this.path(name), new TextEncoder().encode(text));
  }

  /** Writes `<run>/<name>` as JSON, atomically (NaN and infinities become null, as JSON has none). */
  async writeJson(name: string, value: unknown): Promise<void> {
    await this.writeText(name, formatJson(value));
  }

  /** A progress bar whose lines go to this run's log. */
  progress(options: Omit<ProgressOptions, 'log'>): Progress {
    return new Progress({ ...options, log: this.log });
  }

  /** Saves checkpoints/epoch-XXXX.safetensors (keeping the newest K) and logs its path. */
  async saveCheckpoint(checkpoint: EpochCheckpoint): Promise<string> {
    const path = await saveEpochCheckpoint(this.dir, checkpoint, { keep: this.keepCheckpoints });
    this.log.info(`checkpoint: ${path}`);
    return path;
  }

  /** The latest checkpoint's state (null when there is none): what a resumed run continues from. */
  loadLatestCheckpoint(device?: Backend): Promise<ResumedState | null> {
    return loadLatestCheckpoint(this.dir, device);
  }

  async saveFeatures(name: string, cache: { features: Float32Array; labels: ArrayLike<number>; dim: number; meta?: Record<string, unknown> }): Promise<string> {
    const path = await saveFeatureCache(this.dir, name, cache);
    this.log.info(`features: ${cache.features.length / cache.dim} × ${cache.dim} cached in ${path}`);
    return path;
  }

  loadFeatures(name: string): Promise<FeatureCache | null> {
    return loadFeatureCache(this.dir, name);
  }

  /** Writes metrics.json, results.md and per_class_accuracy.svg, logs the table (as text), and returns the metrics. */
  async writeResults(input: ResultsInput): Promise<RunMetrics> {
    const metrics = buildMetrics(this.task, input);
    await this.writeJson(METRICS_FILE, metrics);
    await this.writeText(RESULTS_FILE, resultsMarkdown(this.task, metrics, this.config, this.dir));
    const svg = perClassAccuracySvg({
      series: input.results.map((r) => ({ method: r.method, perClass: r.evaluation.perClass })),
      trainCounts: input.trainCounts,
      classNames: input.classNames,
      thresholds: input.thresholds,
      title: `${this.task}: per-class top-1 accuracy`,
    });
    await this.writeText(PLOT_FILE, svg);
    // the split summary, and the per-class change of each calibration against the first row (the baseline)
    await this.writeText(SPLIT_PLOT_FILE, splitAccuracySvg(metrics.methods.map((m) => ({ method: m.method, average: m.top1, many: m.many, medium: m.medium, few: m.few })), `${this.task}: top-1 by split`));
    if (input.results.length > 1) {
      const [base, ...rest] = input.results;
      await this.writeText(CHANGE_PLOT_FILE, calibrationChangeSvg(base.evaluation.perClass, rest.map((r) => ({ method: r.method, perClass: r.evaluation.perClass })), input.trainCounts, { title: `${this.task}: per-class accuracy change against ${base.method}` }).svg);
    }
    this.log.info(`results (${this.path(RESULTS_FILE)}):\n${resultsTableText(metrics.methods.map(tableRow)).trimEnd()}`);
    return metrics;
  }

  /** Stops writing log.txt. */
  close(): void {
    this.log.closeFile();
  }
}

/**
 * The checks openRun makes that need no data, made before a task reads its data (which can take
 * a while) so a wrong --out or --resume fails at once with one line: --resume of a folder that does
 * not exist or with no run to find, an --out that already holds a run, an --out that cannot be
 * created or written (read-only file system, no permission, a file in the way). Creates nothing.
 */
export async function checkRunFolder({ task, out, resume = false, runsRoot = 'runs' }: Pick<OpenRunOptions, 'task' | 'out' | 'resume' | 'runsRoot'>): Promise<void> {
  if (resume) {
    if (out !== undefined && !(await exists(out))) throw new Error(`--resume: the run folder ${out} does not exist (a new run is started without --resume)`);
    if (out === undefined && (await latestRunDir(runsRoot, task)) === null) throw new Error(`--resume: no ${join(runsRoot, `${task}-*`)} run folder found; pass --out DIR`);
    if (out === undefined) return;
  } else if (out !== undefined && (await exists(join(out, CONFIG_FILE)))) {
    throw new Error(`${out} already holds a run (${CONFIG_FILE}); pass --resume to continue it, or choose another --out`);
  }
  // the folder, or the nearest ancestor that exists, must be a writable folder
  let probe = resolve(out ?? runsRoot);
  for (;;) {
    const st = await stat(probe).catch(() => null);
    if (st) {
      if (!st.isDirectory()) throw unwritable(out ?? runsRoot, Object.assign(new Error('not a folder'), { code: 'ENOTDIR' }));
      try {
        await access(probe, constants.W_OK);
      } catch (e) {
        throw unwritable(out ?? runsRoot, e);
      }
      return;
    }
    const parent = dirname(probe);
    if (parent === probe) return;
    probe = parent;
  }
}

/**
 * Opens the run folder. A new run: creates `out` (or runs/<task>-<stamp>, made unique), writes
 * config.json and starts log.txt; an `out` that already holds a config.json is refused. With
 * `resume`: checks the folder (checkResume) and throws its message when the run cannot continue,
 * then appends to log.txt and rewrites config.json (only keys in ignoreOnResume may have changed).
 */
export async function openRun({ task, config, out, resume = false, ignoreOnResume = [], keepCheckpoints = 3, runsRoot = 'runs', now = new Date(), log = new RunLog() }: OpenRunOptions): Promise<Run> {
  if (!/^[A-Za-z0-9._-]+$/.test(task)) throw new Error(`openRun: task name '${task}' must be letters, digits, '.', '_' or '-'`);
  let dir: string;
  let report: ResumeReport | null = null;
  if (resume) {
    const found = out ?? (await latestRunDir(runsRoot, task));
    if (found === null) throw new Error(`--resume: no ${join(runsRoot, `${task}-*`)} run folder found; pass --out DIR`);
    if (out !== undefined && !(await exists(out))) throw new Error(`--resume: the run folder ${out} does not exist (a new run is started without --resume)`);
    dir = found;
    report = await checkResume(dir, config, { ignore: ignoreOnResume });
    if (!report.ok) throw new Error(report.message);
  } else if (out !== undefined) {
    if (await exists(join(out, CONFIG_FILE))) throw new Error(`${out} already holds a run (${CONFIG_FILE}); pass --resume to continue it, or choose another --out`);
    dir = out;
  } else {
    const base = join(runsRoot, `${task}-${runStamp(now)}`);
    dir = base;
    for (let n = 2; await exists(dir); n++) dir = `${base}-${n}`;
  }
  try {
    const st = await stat(dir).catch(() => null);
    if (st && !st.isDirectory()) throw Object.assign(new Error('not a folder'), { code: 'ENOTDIR' });
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
    log.attachFile(join(dir, LOG_FILE));
  } catch (e) {
    throw unwritable(dir, e);
  }
  if (report) {
    log.info(`--- ${report.message}`);
    log.info(`found: ${report.found.join(', ')}${report.missing.length ? `; missing: ${report.missing.join(', ')}` : ''}`);
    const changed = configMismatches(report.savedConfig ?? {}, config).filter((m) => ignoreOnResume.includes(m.key));
    for (const m of changed) log.info(`option ${m.key} changed on resume: ${JSON.stringify(m.saved)} -> ${JSON.stringify(m.current)}`);
  } else {
    log.info(`${task}: run folder ${dir}`);
  }
  await writeFileAtomic(join(dir, CONFIG_FILE), new TextEncoder().encode(formatJson(config)));
  log.fileOnly(`config: ${JSON.stringify(config)}`);
  return new Run(task, dir, config, log, report, keepCheckpoints);
}
