// Per-epoch training curves of a run: epochs.csv (one row an epoch, appended as training goes, so a
// resumed run continues it) and curves.svg (mean loss and learning rate by epoch, redrawn each epoch).
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../nn/node-checkpoint.js';

export const EPOCHS_CSV = 'epochs.csv';
export const CURVES_SVG = 'curves.svg';
export const CSV_COLUMNS = ['epoch', 'mean_loss', 'lr', 'train_seconds', 'images_per_s', 'val_top1'] as const;

export interface EpochRow {
  /** 1-based. */
  epoch: number;
  meanLoss: number;
  lr: number;
  trainSeconds: number;
  imagesPerSecond: number;
  /** Validation top-1 in [0, 1] (NaN: not evaluated that epoch). */
  valTop1?: number;
}

const num = (v: number): string => (Number.isFinite(v) ? String(Number(v.toPrecision(8))) : '');

/** Appends one row (and the header to a new file); rows of epochs at or after `row.epoch` from an interrupted session are dropped first. */
export async function appendEpochRow(file: string, row: EpochRow): Promise<EpochRow[]> {
  const rows = readEpochRows(file).filter((r) => r.epoch < row.epoch);
  rows.push(row);
  const text = [CSV_COLUMNS.join(','), ...rows.map((r) => [r.epoch, num(r.meanLoss), num(r.lr), num(r.trainSeconds), num(r.imagesPerSecond), num(r.valTop1 ?? NaN)].join(','))].join('\n') + '\n';
  await writeFileAtomic(file, new TextEncoder().encode(text));
  return rows;
}

/** The rows of an epochs.csv ([] when it does not exist). */
export function readEpochRows(file: string): EpochRow[] {
  if (!existsSync(file)) return [];
  const [header, ...lines] = readFileSync(file, 'utf8').trim().split('\n');
  if (header !== CSV_COLUMNS.join(',')) throw new Error(`${file}: unexpected header "${header}" (expected ${CSV_COLUMNS.join(',')})`);
  const value = (s: string) => (s === '' ? NaN : Number(s));
  return lines.filter((l) => l.trim()).map((l) => {
    const [epoch, meanLoss, lr, trainSeconds, imagesPerSecond, valTop1] = l.split(',').map(value);
    return { epoch, meanLoss, lr, trainSeconds, imagesPerSecond, valTop1 };
  });
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Two panels, mean loss and learning rate by epoch, each with its own axis from 0 (a visible zero), as an SVG. */
export function curvesSvg(rows: readonly EpochRow[], title: string): string {
  const W = 720, H = 260, pad = { l: 60, r: 20, t: 36, b: 40 };
  const panelW = (W - pad.l - pad.r - 60) / 2;
  const panel = (x0: number, key: 'meanLoss' | 'lr', label: string, colour: string): string => {
    const pts = rows.filter((r) => Number.isFinite(r[key]));
    const maxY = Math.max(1e-12, ...pts.map((r) => r[key])) * 1.05;
    const maxX = Math.max(1, ...rows.map((r) => r.epoch));
    const px = (e: number) => x0 + (e / maxX) * panelW;
    const py = (v: number) => H - pad.b - (v / maxY) * (H - pad.t - pad.b);
    const ticks = [0, 0.5, 1].map((f) => f * maxY);
    return [
      `<g class="panel-${key}">`,
      `<text x="${x0 + panelW / 2}" y="${pad.t - 10}" text-anchor="middle" font-size="13">${esc(label)}</text>`,
      `<line x1="${x0}" y1="${py(0)}" x2="${x0 + panelW}" y2="${py(0)}" stroke="#333"/>`,
      `<line x1="${x0}" y1="${py(0)}" x2="${x0}" y2="${py(maxY)}" stroke="#333"/>`,
      ...ticks.map((t) => `<text x="${x0 - 6}" y="${py(t) + 4}" text-anchor="end" font-size="10">${Number(t.toPrecision(3))}</text>`),
      `<text x="${x0 + panelW / 2}" y="${H - 8}" text-anchor="middle" font-size="11">epoch</text>`,
      `<text x="${x0}" y="${H - pad.b + 14}" text-anchor="middle" font-size="10">0</text>`,
      `<text x="${x0 + panelW}" y="${H - pad.b + 14}" text-anchor="middle" font-size="10">${maxX}</text>`,
      pts.length ? `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${pts.map((r) => `${px(r.epoch).toFixed(1)},${py(r[key]).toFixed(1)}`).join(' ')}"/>` : '',
      ...pts.map((r) => `<circle cx="${px(r.epoch).toFixed(1)}" cy="${py(r[key]).toFixed(1)}" r="2.5" fill="${colour}"/>`),
      '</g>',
    ].join('\n');
  };
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="16" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    panel(pad.l, 'meanLoss', 'mean training loss', '#1f77b4'),
    panel(pad.l + panelW + 60, 'lr', 'learning rate', '#d62728'),
    '</svg>',
  ].join('\n') + '\n';
}
