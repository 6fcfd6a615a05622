// The per-class accuracy plot of a run as one self-contained SVG (no scripts, fonts or links):
// a bar per class and method, classes sorted by training count (most first), each bar colored by
// the class's many/medium/few split (one shade per method), and the training count as a line on a
// log-scale right axis. Hovering a bar shows its class, count and accuracy.
import { shotSplits, type ShotSplit, type ShotThresholds } from '../../longtail/metrics.js';

export interface PlotSeries {
  method: string;
  /** Accuracy per class in [0, 1]; NaN (a class without test samples) draws no bar. */
  perClass: ArrayLike<number>;
}

export interface PerClassPlotInput {
  series: readonly PlotSeries[];
  /** Training images per class; sets the order, the split colors and the line. */
  trainCounts: ArrayLike<number>;
  /** Shown under the bars when there are at most 40 classes, and in the hover text. */
  classNames?: readonly string[];
  title?: string;
  thresholds?: ShotThresholds;
}

/** Per split, one shade per method (cycled): ColorBrewer blues, oranges, greens. */
const PALETTE: Record<ShotSplit, readonly string[]> = {
  many: ['#2171b5', '#6baed6', '#08306b', '#9ecae1'],
  medium: ['#e6550d', '#fdae6b', '#7f2704', '#fdd0a2'],
  few: ['#238b45', '#74c476', '#00441b', '#a1d99b'],
};
const SPLITS: readonly ShotSplit[] = ['many', 'medium', 'few'];
const LINE_COLOR = '#222222';
const FONT = 'font-family="DejaVu Sans, Arial, Helvetica, sans-serif"';
const MAX_NAMED_CLASSES = 40;

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos' }[c]};`);
/** Coordinates with at most two decimals, no trailing zeros. */
const num = (v: number): string => String(Math.round(v * 100) / 100);
const percent = (v: number): string => `${(v * 100).toFixed(1)}%`;
/** Width of 12px sans-serif text, estimated (no font metrics in a string builder). */
const textWidth = (s: string): number => 7.5 * s.length;

/** Ticks of a log axis over [lo, hi]: powers of ten, with 2 and 5 between them when the range is short. */
function logTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  const fine = Math.log10(hi / lo) <= 2;
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of fine ? [1, 2, 5] : [1]) {
      const v = m * 10 ** e;
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) ticks.push(v);
    }
  }
  return ticks;
}

/** A round step giving about `target` ticks over `span`. */
function niceStep(span: number, target: number): number {
  const raw = Math.max(1, span / target);
  const base = 10 ** Math.floor(Math.log10(raw));
  return ([1, 2, 5, 10].map((m) => m * base).find((s) => s >= raw) ?? 10 * base);
}

/** The SVG text of the per-class accuracy plot. */
export function perClassAccuracySvg({ series, trainCounts, classNames, title = 'Per-class top-1 accuracy', thresholds }: PerClassPlotInput): string {
  const C = trainCounts.length;
  const M = series.length;
  if (C === 0 || M === 0) throw new Error(`perClassAccuracySvg: need at least one class and one method, got ${C} classes and ${M} methods`);
  for (const s of series) {
    if (s.perClass.length !== C) throw new Error(`perClassAccuracySvg: method '${s.method}' has ${s.perClass.length} class accuracies for ${C} classes`);
  }
  if (classNames && classNames.length !== C) throw new Error(`perClassAccuracySvg: ${classNames.length} class names for ${C} classes`);
  const splits = shotSplits(trainCounts, thresholds);
  // most training images first; ties keep class order
  const order = Array.from({ length: C }, (_, j) => j).sort((a, b) => trainCounts[b] - trainCounts[a] || a - b);
  const namedTicks = classNames !== undefined && C <= MAX_NAMED_CLASSES;

  // legend geometry: one row of split swatches, or a method × split grid when methods are compared
  const manyAbove = thresholds?.manyAbove ?? 100;
  const fewBelow = thresholds?.fewBelow ?? 20;
  const splitLabel = (s: ShotSplit): string => ({ many: `many (>${manyAbove})`, medium: `medium (${fewBelow}-${manyAbove})`, few: `few (<${fewBelow})` })[s];
  const lineLabel = 'training images (right axis)';
  const nameWidth = M === 1 ? 0 : Math.min(240, 16 + Math.max(...series.map((s) => textWidth(s.method))));
  const columns = SPLITS.map((s) => 16 + textWidth(splitLabel(s)) + 24);
  const legendWidth = nameWidth + (M === 1 ? columns.reduce((a, b) => a + b) : 3 * Math.max(...columns)) + 30 + textWidth(lineLabel);

  // layout
  const plotWidth = Math.min(1600, Math.max(560, C * M * 6, legendWidth - 60));
  const plotHeight = 320;
  const legendRows = M === 1 ? 1 : M + 1;
  const left = 70;
  const right = 80;
  const top = 40 + legendRows * 20 + 22;
  const bottom = namedTicks ? 110 : 56;
  const width = left + plotWidth + right;
  const height = top + plotHeight + bottom;
  const slot = plotWidth / C;
  const groupWidth = slot * (slot >= 4 ? 0.8 : 1);
  const barWidth = groupWidth / M;
  const xOfClass = (rank: number): number => left + rank * slot + (slot - groupWidth) / 2;
  const yOfAccuracy = (a: number): number => top + plotHeight * (1 - a);

  // the log-scale count axis, clamped at 1 so a class with no images stays on the axis
  const counts = order.map((j) => Math.max(1, trainCounts[j]));
  const countLo = 10 ** Math.floor(Math.log10(Math.min(...counts)));
  const countHi = Math.max(countLo * 10, 10 ** Math.ceil(Math.log10(Math.max(...counts))));
  const yOfCount = (n: number): number => top + plotHeight * (1 - Math.log(Math.max(1, n) / countLo) / Math.log(countHi / countLo));

  const out: string[] = [];
  out.push(`<?xml version="1.0" encoding="UTF-8"?>`);
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT} font-size="12">`);
  out.push(`<title>${esc(title)}</title>`);
  out.push(`<rect class="background" x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${num(width / 2)}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${esc(title)}</text>`);

  // legend
  const legendTop = 40;
  out.push(`<g class="legend">`);
  const swatch = (x: number, y: number, color: string): string => `<rect x="${num(x)}" y="${num(y)}" width="12" height="12" fill="${color}"/>`;
  const lineKey = (x: number): void => {
    out.push(`<line x1="${num(x)}" y1="${num(legendTop + 6)}" x2="${num(x + 24)}" y2="${num(legendTop + 6)}" stroke="${LINE_COLOR}" stroke-width="2"/>`);
    out.push(`<text x="${num(x + 30)}" y="${num(legendTop + 10)}">${lineLabel}</text>`);
  };
  if (M === 1) {
    let x = left;
    SPLITS.forEach((s, k) => {
      out.push(swatch(x, legendTop, PALETTE[s][0]), `<text x="${num(x + 16)}" y="${num(legendTop + 10)}">${esc(splitLabel(s))}</text>`);
      x += columns[k];
    });
    lineKey(x);
  } else {
    const column = Math.max(...columns);
    SPLITS.forEach((s, k) => out.push(`<text x="${num(left + nameWidth + k * column)}" y="${num(legendTop + 10)}">${esc(splitLabel(s))}</text>`));
    series.forEach((s, i) => {
      const y = legendTop + 20 * (i + 1);
      out.push(`<text x="${left}" y="${num(y + 10)}">${esc(s.method)}</text>`);
      SPLITS.forEach((split, k) => out.push(swatch(left + nameWidth + k * column, y, PALETTE[split][i % PALETTE[split].length])));
    });
    lineKey(left + nameWidth + 3 * column);
  }
  out.push(`</g>`);

  // accuracy grid and left axis
  out.push(`<g class="axis-accuracy">`);
  for (let p = 0; p <= 100; p += 20) {
    const y = yOfAccuracy(p / 100);
    out.push(`<line x1="${left}" y1="${num(y)}" x2="${left + plotWidth}" y2="${num(y)}" stroke="#e0e0e0"/>`);
    out.push(`<text x="${left - 6}" y="${num(y + 4)}" text-anchor="end">${p}</text>`);
  }
  const midY = top + plotHeight / 2;
  out.push(`<text x="18" y="${num(midY)}" text-anchor="middle" transform="rotate(-90 18 ${num(midY)})">top-1 accuracy (%)</text>`);
  out.push(`</g>`);

  // split regions: dashed boundaries and their names above the plot
  out.push(`<g class="splits">`);
  let start = 0;
  for (const s of SPLITS) {
    let end = start;
    while (end < C && splits[order[end]] === s) end++;
    if (end > start) {
      const x0 = left + start * slot;
      const x1 = left + end * slot;
      if (start > 0) out.push(`<line x1="${num(x0)}" y1="${top}" x2="${num(x0)}" y2="${top + plotHeight}" stroke="#888888" stroke-dasharray="4 3"/>`);
      if (x1 - x0 >= 36) out.push(`<text x="${num((x0 + x1) / 2)}" y="${top - 8}" text-anchor="middle" fill="#555555">${s} (${end - start})</text>`);
    }
    start = end;
  }
  out.push(`</g>`);

  // the bars
  out.push(`<g class="bars">`);
  order.forEach((j, rank) => {
    const name = classNames ? ` ${classNames[j]}` : '';
    series.forEach((s, i) => {
      const a = s.perClass[j];
      if (Number.isNaN(a)) return;
      const y = yOfAccuracy(Math.min(1, Math.max(0, a)));
      const color = PALETTE[splits[j]][i % PALETTE[splits[j]].length];
      out.push(
        `<rect class="bar" data-class="${j}" data-method="${esc(s.method)}" data-split="${splits[j]}" x="${num(xOfClass(rank) + i * barWidth)}" y="${num(y)}" width="${num(barWidth)}" height="${num(top + plotHeight - y)}" fill="${color}">` +
          `<title>class ${j}${esc(name)}: ${trainCounts[j]} training images (${splits[j]}); ${esc(s.method)} ${percent(a)}</title></rect>`,
      );
    });
  });
  out.push(`</g>`);

  // training counts: a line over the class centres and the right axis
  const points = counts.map((n, rank) => `${num(left + (rank + 0.5) * slot)},${num(yOfCount(n))}`).join(' ');
  out.push(`<g class="axis-count">`);
  out.push(`<polyline class="train-counts" points="${points}" fill="none" stroke="${LINE_COLOR}" stroke-width="2" stroke-linejoin="round"/>`);
  const axisX = left + plotWidth;
  out.push(`<line x1="${axisX}" y1="${top}" x2="${axisX}" y2="${top + plotHeight}" stroke="${LINE_COLOR}"/>`);
  for (const v of logTicks(countLo, countHi)) {
    const y = yOfCount(v);
    out.push(`<line x1="${axisX}" y1="${num(y)}" x2="${axisX + 5}" y2="${num(y)}" stroke="${LINE_COLOR}"/>`);
    out.push(`<text x="${axisX + 8}" y="${num(y + 4)}">${v}</text>`);
  }
  const rightLabelX = width - 16;
  out.push(`<text x="${rightLabelX}" y="${num(midY)}" text-anchor="middle" transform="rotate(90 ${rightLabelX} ${num(midY)})">training images (log scale)</text>`);
  out.push(`</g>`);

  // class axis
  out.push(`<g class="axis-class">`);
  out.push(`<line x1="${left}" y1="${top + plotHeight}" x2="${left + plotWidth}" y2="${top + plotHeight}" stroke="${LINE_COLOR}"/>`);
  out.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotHeight}" stroke="${LINE_COLOR}"/>`);
  const baseY = top + plotHeight;
  if (namedTicks) {
    order.forEach((j, rank) => {
      const x = left + (rank + 0.5) * slot;
      out.push(`<text x="${num(x)}" y="${baseY + 12}" text-anchor="end" transform="rotate(-45 ${num(x)} ${baseY + 12})">${esc(classNames![j])}</text>`);
    });
  } else {
    const step = niceStep(C, 10);
    for (let rank = 0; rank <= C; rank += step) {
      const x = left + rank * slot;
      out.push(`<line x1="${num(x)}" y1="${baseY}" x2="${num(x)}" y2="${baseY + 5}" stroke="${LINE_COLOR}"/>`);
      out.push(`<text x="${num(x)}" y="${baseY + 18}" text-anchor="middle">${rank}</text>`);
    }
  }
  out.push(`<text x="${num(left + plotWidth / 2)}" y="${height - 12}" text-anchor="middle">${C} classes sorted by training images, most to fewest</text>`);
  out.push(`</g>`);
  out.push(`</svg>`);
  return out.join('\n') + '\n';
}
