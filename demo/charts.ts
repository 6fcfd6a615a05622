// Small SVG and canvas charts for the long-tail lab (demo/lab.ts): bars (linear or log scale),
// paired bars before/after, a loss curve, a reliability diagram and a confusion-matrix heat map.
// Strings of SVG, so the page stays plain DOM with no charting library.

import type { ReliabilityBin, ShotSplit } from '../longtail/metrics.js';

export const SPLIT_COLOURS: Record<ShotSplit, string> = { many: '#3b6fb6', medium: '#e08a1e', few: '#c0392b' };
const AXIS = '#8a9099';
const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const fmt = (v: number): string => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));

interface Frame {
  width: number;
  height: number;
  left: number;
  bottom: number;
  top: number;
  right: number;
}

const frame = (width: number, height: number): Frame => ({ width, height, left: 44, bottom: 34, top: 10, right: 8 });

function svg(f: Frame, body: string, label: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${esc(label)}" width="${f.width}" height="${f.height}" viewBox="0 0 ${f.width} ${f.height}" font-family="system-ui, sans-serif" font-size="10">${body}</svg>`;
}

/** Horizontal grid lines and labels at `ticks` (values on the y axis), via y(value). */
function yAxis(f: Frame, ticks: number[], y: (v: number) => number, label: (v: number) => string): string {
  return ticks.map((t) => `<line x1="${f.left}" x2="${f.width - f.right}" y1="${y(t)}" y2="${y(t)}" stroke="#e3e5e8"/><text x="${f.left - 4}" y="${y(t) + 3}" text-anchor="end" fill="${AXIS}">${label(t)}</text>`).join('');
}

/** Class labels under the bars, thinned so that they do not overlap. */
function xLabels(f: Frame, names: readonly string[], x: (i: number) => number, slot: number): string {
  const every = Math.max(1, Math.ceil(36 / slot));
  return names.map((n, i) => (i % every ? '' : `<text x="${x(i) + slot / 2}" y="${f.height - f.bottom + 12}" text-anchor="middle" fill="${AXIS}">${esc(n.length > 8 ? `${n.slice(0, 7)}…` : n)}</text>`)).join('');
}

export interface BarsOptions {
  values: ArrayLike<number>;
  names: readonly string[];
  colours: readonly string[];
  /** Log scale (counts); otherwise linear from 0 to `max`. */
  log?: boolean;
  max?: number;
  width?: number;
  height?: number;
  label: string;
  /** Appended to each bar's tooltip value. */
  unit?: string;
}

/** One bar per class. */
export function bars(o: BarsOptions): string {
  const f = frame(o.width ?? 520, o.height ?? 180);
  const n = o.values.length;
  const slot = (f.width - f.left - f.right) / Math.max(n, 1);
  const vals = Array.from(o.values, (v) => (Number.isFinite(v) ? v : 0));
  const max = o.max ?? Math.max(...vals, 1e-9);
  const h = f.height - f.top - f.bottom;
  let y: (v: number) => number, ticks: number[];
  if (o.log) {
    const top = Math.ceil(Math.log10(Math.max(max, 1)));
    y = (v) => f.top + h * (1 - Math.log10(Math.max(v, 1)) / Math.max(top, 1));
    ticks = Array.from({ length: top + 1 }, (_, k) => 10 ** k);
  } else {
    y = (v) => f.top + h * (1 - v / max);
    ticks = [0, max / 4, max / 2, (3 * max) / 4, max];
  }
  const x = (i: number): number => f.left + i * slot;
  const body = vals.map((v, i) => `<rect x="${x(i) + slot * 0.12}" y="${y(v)}" width="${slot * 0.76}" height="${Math.max(0, f.top + h - y(v))}" fill="${o.colours[i]}"><title>${esc(o.names[i])}: ${fmt(v)}${o.unit ?? ''}</title></rect>`).join('');
  return svg(f, yAxis(f, ticks, y, (t) => (o.log ? String(t) : fmt(t))) + body + xLabels(f, o.names, x, slot), o.label);
}

/** Two bars per class: `before` (grey) and `after` (in the class's split colour), accuracies in [0, 1]. */
export function pairedBars(before: ArrayLike<number>, after: ArrayLike<number>, names: readonly string[], colours: readonly string[], label: string, width = 520, height = 180): string {
  const f = frame(width, height);
  const n = names.length, slot = (f.width - f.left - f.right) / Math.max(n, 1), h = f.height - f.top - f.bottom;
  const y = (v: number): number => f.top + h * (1 - (Number.isFinite(v) ? v : 0));
  const x = (i: number): number => f.left + i * slot;
  const bar = (v: number, i: number, dx: number, fill: string, what: string): string =>
    `<rect x="${x(i) + dx}" y="${y(v)}" width="${slot * 0.36}" height="${f.top + h - y(v)}" fill="${fill}"><title>${esc(names[i])} ${what}: ${Number.isFinite(v) ? (100 * v).toFixed(1) : '-'}%</title></rect>`;
  const body = Array.from({ length: n }, (_, i) => bar(before[i], i, slot * 0.12, '#b9bec6', 'before') + bar(after[i], i, slot * 0.5, colours[i], 'after')).join('');
  return svg(f, yAxis(f, [0, 0.25, 0.5, 0.75, 1], y, (t) => `${t * 100}%`) + body + xLabels(f, names, x, slot), label);
}

/** A loss curve over epochs (the points so far of `total`). */
export function lossCurve(losses: readonly number[], total: number, label: string, width = 260, height = 140): string {
  const f = frame(width, height);
  const h = f.height - f.top - f.bottom, w = f.width - f.left - f.right;
  const max = Math.max(...losses, 1e-9), min = Math.min(...losses, max);
  const span = max - min || max || 1;
  const y = (v: number): number => f.top + h * (1 - (v - min) / span);
  const x = (e: number): number => f.left + (w * e) / Math.max(total - 1, 1);
  const pts = losses.map((l, e) => `${x(e).toFixed(1)},${y(l).toFixed(1)}`).join(' ');
  const axis = yAxis(f, [min, min + span / 2, max], y, fmt) + `<text x="${f.left + w / 2}" y="${f.height - 6}" text-anchor="middle" fill="${AXIS}">epoch (${losses.length} of ${total})</text>`;
  return svg(f, axis + (losses.length ? `<polyline points="${pts}" fill="none" stroke="#3b6fb6" stroke-width="1.5"/>` : ''), label);
}

/** Accuracy against confidence per bin, with the diagonal of perfect calibration and the bin counts as shading. */
export function reliabilityDiagram(bins: readonly ReliabilityBin[], ece: number, label: string, size = 220): string {
  const f = { ...frame(size, size), bottom: 34 };
  const w = f.width - f.left - f.right, h = f.height - f.top - f.bottom;
  const x = (v: number): number => f.left + w * v, y = (v: number): number => f.top + h * (1 - v);
  const maxCount = Math.max(...bins.map((b) => b.count), 1);
  const body = bins.map((b) => {
    const bw = x(b.hi) - x(b.lo);
    const gap = b.count ? `<rect x="${x(b.lo) + 1}" y="${y(Math.max(b.accuracy, b.confidence))}" width="${bw - 2}" height="${Math.abs(y(b.accuracy) - y(b.confidence))}" fill="#c0392b" opacity="0.35"/>` : '';
    const acc = b.count ? `<rect x="${x(b.lo) + 1}" y="${y(b.accuracy)}" width="${bw - 2}" height="${f.top + h - y(b.accuracy)}" fill="#3b6fb6" opacity="${0.35 + (0.65 * b.count) / maxCount}"><title>confidence ${(100 * b.lo).toFixed(0)}–${(100 * b.hi).toFixed(0)}%: ${b.count} samples, accuracy ${(100 * b.accuracy).toFixed(1)}%, mean confidence ${(100 * b.confidence).toFixed(1)}%</title></rect>` : '';
    return acc + gap;
  }).join('');
  const diag = `<line x1="${x(0)}" y1="${y(0)}" x2="${x(1)}" y2="${y(1)}" stroke="${AXIS}" stroke-dasharray="3 3"/>`;
  const axis = yAxis(f, [0, 0.5, 1], y, (t) => `${t * 100}%`) + `<text x="${f.left + w / 2}" y="${f.height - 6}" text-anchor="middle" fill="${AXIS}">confidence · ECE ${(100 * ece).toFixed(1)}%</text>`;
  return svg(f, axis + body + diag, label);
}

/** Row-normalised confusion matrix (rows: true class, columns: prediction) as a heat map on a canvas. */
export function drawConfusion(canvas: HTMLCanvasElement, matrix: ArrayLike<number>, names: readonly string[]): void {
  const C = names.length;
  const cell = Math.max(4, Math.min(28, Math.floor(300 / C)));
  const margin = C <= 30 ? 64 : 8;
  canvas.width = margin + C * cell + 4;
  canvas.height = margin + C * cell + 4;
  const g = canvas.getContext('2d')!;
  g.fillStyle = '#fff';
  g.fillRect(0, 0, canvas.width, canvas.height);
  g.font = '10px system-ui, sans-serif';
  for (let i = 0; i < C; i++) {
    let row = 0;
    for (let j = 0; j < C; j++) row += matrix[i * C + j];
    for (let j = 0; j < C; j++) {
      const v = row ? matrix[i * C + j] / row : 0;
      // white → dark blue
      g.fillStyle = `rgb(${Math.round(255 - 200 * v)}, ${Math.round(255 - 160 * v)}, ${Math.round(255 - 80 * v)})`;
      g.fillRect(margin + j * cell, margin + i * cell, cell - 1, cell - 1);
    }
    if (margin > 8) {
      g.fillStyle = '#555';
      g.textAlign = 'right';
      g.fillText(names[i].slice(0, 10), margin - 4, margin + i * cell + cell / 2 + 3);
      g.save();
      g.translate(margin + i * cell + cell / 2 + 3, margin - 4);
      g.rotate(-Math.PI / 2);
      g.textAlign = 'left';
      g.fillText(names[i].slice(0, 10), 0, 0);
      g.restore();
    }
  }
}
