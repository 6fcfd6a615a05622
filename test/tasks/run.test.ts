import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { afterAll, describe, expect, it } from 'vitest';
import { evaluateLongTail, resultsTableMarkdown, shotSplits } from '../../longtail/metrics.js';
import { RunLog } from '../../tasks/lib/log.js';
import { perClassAccuracySvg } from '../../tasks/lib/plot.js';
import { checkRunFolder, formatJson, latestRunDir, openRun, runStamp, type MethodResult } from '../../tasks/lib/run.js';

const root = mkdtempSync(join(tmpdir(), 'run-folder-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const quiet = () => new RunLog({ console: null });
const read = (path: string): string => readFileSync(path, 'utf8');

// 12 classes: many (>100), medium (20-100) and few (<20) training counts, shuffled so the plot must sort them
const trainCounts = [30, 500, 5, 120, 64, 1, 250, 19, 100, 21, 1000, 7];
const C = trainCounts.length;
const names = ['cat', 'dog', 'owl', 'eel', 'fox', 'yak', 'emu', 'gnu', 'ant', 'bee', 'cow', 'elk'];
const config = { dataRoot: 'data/toy', epochs: 3, lr: 0.1, loss: 'ce', out: undefined, resume: false, workers: 2 };

/** Scores for 4 test samples per class (none for class 5) from a fixed LCG: some right, some wrong. */
function synthetic(seed: number): { scores: Float64Array; labels: number[] } {
  let s = seed;
  const next = () => ((s = (1103515245 * s + 12345) % 2147483648) / 2147483648);
  const labels = Array.from({ length: C }, (_, c) => (c === 5 ? [] : [c, c, c, c])).flat();
  const scores = Float64Array.from({ length: labels.length * C }, next);
  labels.forEach((y, i) => (scores[i * C + y] += next() < 0.6 ? 1 : 0));
  return { scores, labels };
}
const evaluate = (method: string, seed: number): MethodResult => {
  const { scores, labels } = synthetic(seed);
  return { method, evaluation: evaluateLongTail(scores, labels, trainCounts) };
};

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (name) => ['g', 'rect', 'text', 'line', 'polyline'].includes(name) });
type Node = Record<string, unknown> & { rect?: Node[]; g?: Node[]; polyline?: Node[]; text?: Node[] };
const group = (svg: Node, cls: string): Node => svg.g!.find((g) => g.class === cls)!;

describe('run folder', () => {
  it('creates runs/<task>-<YYYYMMDD-HHMMSS> (made unique), writes config.json atomically and timestamps log.txt', async () => {
    const runsRoot = join(root, 'runs');
    const now = new Date(2025, 0, 2, 3, 4, 5);
    expect(runStamp(now)).toBe('20250102-030405');
    const first = await openRun({ task: 'toy-lt', config, runsRoot, now, log: quiet() });
    const second = await openRun({ task: 'toy-lt', config, runsRoot, now, log: quiet() });
    expect(first.dir).toBe(join(runsRoot, 'toy-lt-20250102-030405'));
    expect(second.dir).toBe(join(runsRoot, 'toy-lt-20250102-030405-2'));
    expect(await latestRunDir(runsRoot, 'toy-lt')).toBe(second.dir);
    expect(await latestRunDir(runsRoot, 'other')).toBeNull();

    // undefined values are left out of JSON, as JSON.stringify does
    expect(JSON.parse(read(first.path('config.json')))).toEqual({ dataRoot: 'data/toy', epochs: 3, lr: 0.1, loss: 'ce', resume: false, workers: 2 });
    first.info('epoch 1 done');
    first.warn('loss spiked');
    first.close();
    second.close();
    const log = read(first.path('log.txt')).trimEnd().split('\n');
    for (const line of log) expect(line).toMatch(/^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] /);
    expect(log.map((l) => l.slice(27))).toEqual([
      `toy-lt: run folder ${first.dir}`,
      `config: ${JSON.stringify(config)}`,
      'epoch 1 done',
      'warning: loss spiked',
    ]);
    // nothing half-written stays behind
    expect(readdirSync(first.dir).sort()).toEqual(['config.json', 'log.txt']);
  });

  it('a plain --resume passes over a folder left by a failed start (nothing to continue from)', async () => {
    const runsRoot = join(root, 'failed-start');
    const real = await openRun({ task: 'toy-lt', config, runsRoot, now: new Date(2025, 0, 1, 10, 0, 0), log: quiet() });
    real.close();
    mkdirSync(real.path('checkpoints'));
    writeFileSync(real.path('checkpoints', 'epoch-0003.safetensors'), 'x');
    const failed = await openRun({ task: 'toy-lt', config, runsRoot, now: new Date(2025, 0, 1, 11, 0, 0), log: quiet() });
    failed.close();
    expect(await latestRunDir(runsRoot, 'toy-lt')).toBe(real.dir);
    // a finished run (metrics.json) counts as well; the newest one with something in it wins
    const finished = await openRun({ task: 'toy-lt', config, runsRoot, now: new Date(2025, 0, 1, 12, 0, 0), log: quiet() });
    finished.close();
    writeFileSync(finished.path('metrics.json'), '{}');
    expect(await latestRunDir(runsRoot, 'toy-lt')).toBe(finished.dir);
  });

  it('checks --out and --resume before any data is read, and says why a folder cannot be written', async () => {
    await expect(checkRunFolder({ task: 'toy-lt', out: join(root, 'nope'), resume: true })).rejects.toThrow(`--resume: the run folder ${join(root, 'nope')} does not exist (a new run is started without --resume)`);
    writeFileSync(join(root, 'plain-file'), 'x');
    await expect(checkRunFolder({ task: 'toy-lt', out: join(root, 'plain-file', 'run') })).rejects.toThrow(`cannot write the run folder ${join(root, 'plain-file', 'run')}: a part of the path is a file, not a folder (ENOTDIR); choose another --out`);
    await expect(openRun({ task: 'toy-lt', config, out: join(root, 'plain-file', 'run'), log: quiet() })).rejects.toThrow(/cannot write the run folder .*\(ENOTDIR\)/);
    await expect(checkRunFolder({ task: 'toy-lt', out: join(root, 'fresh', 'deeper') })).resolves.toBeUndefined();
    expect(readdirSync(root)).not.toContain('fresh');
  });

  it('refuses an --out that already holds a run unless resuming', async () => {
    const out = join(root, 'taken');
    (await openRun({ task: 'toy-lt', config, out, log: quiet() })).close();
    await expect(openRun({ task: 'toy-lt', config, out, log: quiet() })).rejects.toThrow(`${out} already holds a run (config.json); pass --resume to continue it, or choose another --out`);
    await expect(openRun({ task: 'toy-lt', config, resume: true, runsRoot: join(root, 'none'), log: quiet() })).rejects.toThrow(/--resume: no .*toy-lt-\* run folder found; pass --out DIR/);
  });

  it('resumes: appends to log.txt, allows changes only to the free keys, names the keys that differ', async () => {
    const out = join(root, 'resumable');
    const run = await openRun({ task: 'toy-lt', config, out, log: quiet() });
    run.info('first session');
    run.close();
    await expect(openRun({ task: 'toy-lt', config: { ...config, lr: 0.2, loss: 'focal' }, out, resume: true, ignoreOnResume: ['workers'], log: quiet() }))
      .rejects.toThrow(`cannot resume ${out}: the command line differs from config.json on lr (saved 0.1, now 0.2), loss (saved "ce", now "focal")`);
    const resumed = await openRun({ task: 'toy-lt', config: { ...config, workers: 8, resume: true }, out, resume: true, ignoreOnResume: ['workers', 'resume', 'out'], log: quiet() });
    expect(resumed.resumed?.ok).toBe(true);
    expect(resumed.resumed?.latest).toBeNull();
    resumed.close();
    const log = read(join(out, 'log.txt'));
    expect(log).toContain('first session');
    expect(log).toContain(`--- resuming ${out}: no checkpoint yet, starting at epoch 0`);
    expect(log).toContain('option workers changed on resume: 2 -> 8');
    expect(JSON.parse(read(join(out, 'config.json'))).workers).toBe(8);
  });

  it('writes metrics.json, results.md and the per-class SVG for several methods', async () => {
    const run = await openRun({ task: 'toy-lt', config, out: join(root, 'results'), log: quiet() });
    const results = [evaluate('Baseline', 1), evaluate('tau-norm', 2), evaluate('DisAlign', 3)];
    const metrics = await run.writeResults({ results, trainCounts, classNames: names, extra: { epochs_run: 3 } });
    run.close();

    const json = JSON.parse(read(run.path('metrics.json')));
    expect(json).toEqual(JSON.parse(JSON.stringify(metrics)));
    const head = results[2].evaluation;
    expect(json).toMatchObject({ task: 'toy-lt', method: 'DisAlign', top1: head.top1, many: head.many, medium: head.medium, few: head.few, macro_f1: head.macroF1, epochs_run: 3 });
    expect(json.top5).toBe(head.top5);
    expect(json.train_counts).toEqual(trainCounts);
    expect(json.class_names).toEqual(names);
    expect(json.per_class).toHaveLength(C);
    // class 5 has no test samples: NaN, stored as null
    expect(json.per_class[5]).toBeNull();
    json.per_class.forEach((a: number | null, c: number) => c !== 5 && expect(a).toBe(head.perClass[c]));
    expect(json.split_classes).toEqual({ many: 4, medium: 4, few: 4 });
    expect(json.thresholds).toEqual({ many_above: 100, few_below: 20 });
    expect(json.methods.map((m: { method: string }) => m.method)).toEqual(['Baseline', 'tau-norm', 'DisAlign']);
    expect(json.methods[0].top1).toBe(results[0].evaluation.top1);

    const md = read(run.path('results.md'));
    const table = resultsTableMarkdown(results.map((r) => ({ method: r.method, average: r.evaluation.top1, many: r.evaluation.many, medium: r.evaluation.medium, few: r.evaluation.few })));
    expect(md.startsWith(`# toy-lt results\n\n${table}`)).toBe(true);
    expect(md).toContain('(4 / 4 / 4 of 12 classes)');
    expect(md).toContain('![Per-class accuracy](per_class_accuracy.svg)');
    expect(md).toContain('| lr | `0.1` |');
    expect(md).toContain('| loss | `ce` |');
    expect(md).toContain('| out | - |');

    const svgText = read(run.path('per_class_accuracy.svg'));
    expect(XMLValidator.validate(svgText)).toBe(true);
    const svg = parser.parse(svgText).svg as Node;
    const bars = group(svg, 'bars').rect!;
    // one bar per class and method, none for the class without test samples
    expect(bars).toHaveLength((C - 1) * 3);
    const firstSeries = bars.filter((b) => b['data-method'] === 'Baseline').map((b) => Number(b['data-class']));
    const sorted = [...Array(C).keys()].filter((c) => c !== 5).sort((a, b) => trainCounts[b] - trainCounts[a]);
    expect(firstSeries).toEqual(sorted);
    const splits = shotSplits(trainCounts);
    for (const b of bars) expect(b['data-split']).toBe(splits[Number(b['data-class'])]);
    // same split, different methods: different shades; same method, different splits: different hues
    const fill = (method: string, c: number) => bars.find((b) => b['data-method'] === method && Number(b['data-class']) === c)!.fill;
    expect(new Set([fill('Baseline', 10), fill('tau-norm', 10), fill('DisAlign', 10)]).size).toBe(3);
    expect(new Set([fill('Baseline', 10), fill('Baseline', 4), fill('Baseline', 2)]).size).toBe(3);
    // bar heights are proportional to the accuracies
    const height = (c: number) => Number(bars.find((b) => b['data-method'] === 'DisAlign' && Number(b['data-class']) === c)!.height);
    const scale = [...head.perClass].map((a, c) => (c === 5 || a === 0 ? NaN : height(c) / a)).filter(Number.isFinite);
    expect(scale.length).toBeGreaterThan(3);
    for (const k of scale) expect(k).toBeCloseTo(scale[0], 1);
    head.perClass.forEach((a, c) => a === 0 && expect(height(c)).toBe(0));
    // the training-count line has a point per class, falling left to right
    const points = String(group(svg, 'axis-count').polyline![0].points).split(' ').map((p) => p.split(',').map(Number));
    expect(points).toHaveLength(C);
    for (let i = 1; i < C; i++) {
      expect(points[i][0]).toBeGreaterThan(points[i - 1][0]);
      expect(points[i][1]).toBeGreaterThanOrEqual(points[i - 1][1]);
    }
    // legend: the methods and the splits; class names as x ticks (12 classes)
    const legend = group(svg, 'legend').text!.map((t) => String(t['#text']));
    expect(legend).toEqual(expect.arrayContaining(['Baseline', 'tau-norm', 'DisAlign', 'many (>100)', 'medium (20-100)', 'few (<20)', 'training images (right axis)']));
    expect(group(svg, 'axis-class').text!.map((t) => String(t['#text'])).slice(0, 3)).toEqual(['cow', 'dog', 'emu']);
  });

  it('rejects an extra metrics field that would overwrite a standard one, and an unknown primary method', async () => {
    const run = await openRun({ task: 'toy-lt', config, out: join(root, 'bad-results'), log: quiet() });
    await expect(run.writeResults({ results: [evaluate('A', 4)], trainCounts, extra: { top1: 1 } })).rejects.toThrow("extra field 'top1' would overwrite");
    await expect(run.writeResults({ results: [evaluate('A', 4)], trainCounts, primary: 'B' })).rejects.toThrow("primary method 'B' is not among A");
    const metrics = await run.writeResults({ results: [evaluate('A', 4), evaluate('B', 5)], trainCounts, primary: 'A' });
    expect(metrics.method).toBe('A');
    run.close();
  });
});

describe('per-class accuracy plot', () => {
  it('draws one bar per class for a single method, escapes text and uses rank ticks past 40 classes', () => {
    const counts = Array.from({ length: 50 }, (_, j) => 1 + ((j * 37) % 50) * 20);
    const svgText = perClassAccuracySvg({ series: [{ method: 'A & <B>', perClass: counts.map((n) => n / 1000) }], trainCounts: counts, title: 'toy "plot"' });
    expect(XMLValidator.validate(svgText)).toBe(true);
    const svg = parser.parse(svgText).svg as Node;
    expect(group(svg, 'bars').rect).toHaveLength(50);
    expect(svgText).toContain('A &amp; &lt;B&gt;');
    expect(svgText).toContain('<title>toy &quot;plot&quot;</title>');
    const ticks = group(svg, 'axis-class').text!.map((t) => String(t['#text']));
    expect(ticks).toEqual(['0', '5', '10', '15', '20', '25', '30', '35', '40', '45', '50', '50 classes sorted by training images, most to fewest']);
    // every bar stays inside the plot
    for (const b of group(svg, 'bars').rect!) expect(Number(b.height)).toBeGreaterThanOrEqual(0);
  });

  it('checks its inputs', () => {
    expect(() => perClassAccuracySvg({ series: [{ method: 'A', perClass: [0.5] }], trainCounts: [1, 2] })).toThrow("method 'A' has 1 class accuracies for 2 classes");
    expect(() => perClassAccuracySvg({ series: [], trainCounts: [1] })).toThrow('need at least one class and one method');
  });
});

describe('atomic files in the run folder', () => {
  it('replaces files whole and leaves no temporary files', async () => {
    const out = join(root, 'atomic');
    mkdirSync(out);
    writeFileSync(join(out, 'notes.txt'), 'stray file, not a run');
    const run = await openRun({ task: 'toy-lt', config, out, log: quiet() });
    await run.writeJson('state.json', { step: 1 });
    await run.writeJson('state.json', { step: 2, nan: NaN });
    expect(JSON.parse(read(run.path('state.json')))).toEqual({ step: 2, nan: null });
    run.close();
    expect(readdirSync(out).sort()).toEqual(['config.json', 'log.txt', 'notes.txt', 'state.json']);
  });

  it('writes JSON with number arrays on one line, losslessly', () => {
    const value = { a: [1, -2.5e-7, null, 3], b: ['1', '2'], c: [[1, 2], [3]], d: [], e: { f: [0.1] } };
    const text = formatJson(value);
    expect(JSON.parse(text)).toEqual(value);
    expect(text).toContain('"a": [1, -2.5e-7, null, 3]');
    expect(text).toContain('"e": {\n    "f": [0.1]\n  }');
    expect(text).toContain('"b": [\n    "1",');
  });
});
