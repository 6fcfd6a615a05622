// Two more plots of a run, each a self-contained SVG:
//   split_accuracy.svg   a grouped bar chart: Average / Many / Medium / Few top-1 per method, one
//                        distinct colour per method, value labels, the axis from 0 to 100%;
//   calibration_change.svg  per method after the baseline, the change of per-class accuracy against
//                        the baseline, classes sorted by training count (most first) and averaged in
//                        at most 50 bins so it stays readable with 1,000 classes; zero is a drawn line.

/** Distinct colours (Tableau 10): method k gets COLORS[k mod 10]. */
export const METHOD_COLORS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'] as const;

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos' }[c]};`);
const n2 = (v: number): string => String(Math.round(v * 100) / 100);
const FONT = 'font-family="DejaVu Sans, Arial, Helvetica, sans-serif"';

export interface SplitRow {
  method: string;
  /** Fractions in [0, 1]; NaN: the split has no class (no bar, '-' as label). */
  average: number;
  many: number;
  medium: number;
  few: number;
}

/** Average / Many / Medium / Few grouped bars, one colour per method. */
export function splitAccuracySvg(rows: readonly SplitRow[], title = 'Top-1 accuracy by split'): string {
  const groups = ['average', 'many', 'medium', 'few'] as const;
  const labels = { average: 'Average', many: 'Many', medium: 'Medium', few: 'Few' };
  const M = rows.length;
  const barW = Math.max(6, Math.min(28, 160 / Math.max(1, M)));
  const groupW = M * barW + 30;
  const left = 56, top = 40, plotH = 240, legendW = 200;
  const W = left + groups.length * groupW + legendW, H = top + plotH + 50;
  const y = (v: number) => top + plotH * (1 - v);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ${FONT}>`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="15">${esc(title)}</text>`,
    '<g class="grid">',
    ...[0, 0.25, 0.5, 0.75, 1].map((v) => `<line x1="${left}" y1="${n2(y(v))}" x2="${left + groups.length * groupW}" y2="${n2(y(v))}" stroke="${v === 0 ? '#000' : '#ddd'}"/><text x="${left - 6}" y="${n2(y(v) + 4)}" text-anchor="end" font-size="11">${v * 100}%</text>`),
    '</g>',
  ];
  groups.forEach((g, gi) => {
    const x0 = left + gi * groupW + 15;
    parts.push(`<g class="split-${g}"><text x="${n2(x0 + (M * barW) / 2)}" y="${top + plotH + 18}" text-anchor="middle" font-size="12">${labels[g]}</text>`);
    rows.forEach((r, k) => {
      const v = r[g];
      const x = x0 + k * barW;
      if (Number.isFinite(v)) {
        parts.push(`<rect class="bar" data-method="${esc(r.method)}" data-value="${v}" x="${n2(x)}" y="${n2(y(v))}" width="${n2(barW - 2)}" height="${n2(plotH * v)}" fill="${METHOD_COLORS[k % METHOD_COLORS.length]}"><title>${esc(r.method)} ${labels[g]}: ${(v * 100).toFixed(1)}%</title></rect>`);
      }
      if (M <= 8) parts.push(`<text x="${n2(x + (barW - 2) / 2)}" y="${n2((Number.isFinite(v) ? y(v) : y(0)) - 3)}" text-anchor="middle" font-size="9">${Number.isFinite(v) ? (v * 100).toFixed(1) : '-'}</text>`);
    });
    parts.push('</g>');
  });
  const lx = left + groups.length * groupW + 16;
  parts.push('<g class="legend">', ...rows.map((r, k) => `<rect x="${lx}" y="${top + k * 18}" width="12" height="12" fill="${METHOD_COLORS[k % METHOD_COLORS.length]}"/><text x="${lx + 18}" y="${top + k * 18 + 10}" font-size="12">${esc(r.method)}</text>`), '</g>', '</svg>');
  return parts.join('\n') + '\n';
}

export interface ChangeSeries {
  method: string;
  perClass: ArrayLike<number>;
}

/**
 * The change of per-class accuracy after each calibration against the baseline, classes sorted by
 * training count (most first) and averaged over at most `maxBins` bins of consecutive classes (NaN
 * classes left out); one coloured line per method and a zero line.
 */
export function calibrationChangeSvg(baseline: ArrayLike<number>, methods: readonly ChangeSeries[], trainCounts: ArrayLike<number>, { maxBins = 50, title = 'Per-class accuracy change against the baseline' } = {}): { svg: string; bins: number[][] } {
  const C = trainCounts.length;
  const order = Array.from({ length: C }, (_, i) => i).sort((a, b) => trainCounts[b] - trainCounts[a] || a - b);
  const B = Math.min(maxBins, C);
  const binOf = (rank: number) => Math.floor((rank * B) / C);
  const bins = methods.map((m) => {
    const sum = new Float64Array(B), cnt = new Float64Array(B);
    order.forEach((c, rank) => {
      const d = m.perClass[c] - baseline[c];
      if (Number.isFinite(d)) {
        sum[binOf(rank)] += d;
        cnt[binOf(rank)]++;
      }
    });
    return Array.from(sum, (s, b) => (cnt[b] ? s / cnt[b] : NaN));
  });
  const lim = Math.max(0.05, ...bins.flat().filter(Number.isFinite).map(Math.abs));
  const left = 60, top = 40, plotW = 600, plotH = 260, legendW = 200;
  const W = left + plotW + legendW, H = top + plotH + 50;
  const x = (b: number) => left + ((b + 0.5) / B) * plotW;
  const y = (v: number) => top + plotH / 2 - (v / lim) * (plotH / 2);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ${FONT}>`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="15">${esc(title)}</text>`,
    `<line class="zero" x1="${left}" y1="${n2(y(0))}" x2="${left + plotW}" y2="${n2(y(0))}" stroke="#000" stroke-width="1.5"/>`,
    ...[-lim, -lim / 2, lim / 2, lim].map((v) => `<line x1="${left}" y1="${n2(y(v))}" x2="${left + plotW}" y2="${n2(y(v))}" stroke="#ddd"/><text x="${left - 6}" y="${n2(y(v) + 4)}" text-anchor="end" font-size="11">${v > 0 ? '+' : ''}${(v * 100).toFixed(1)}</text>`),
    `<text x="${left - 6}" y="${n2(y(0) + 4)}" text-anchor="end" font-size="11">0</text>`,
    `<text x="${left + plotW / 2}" y="${H - 10}" text-anchor="middle" font-size="12">classes by training count, most first${B < C ? ` (${B} bins of ~${Math.round(C / B)} classes)` : ''}</text>`,
  ];
  methods.forEach((m, k) => {
    const colour = METHOD_COLORS[(k + 1) % METHOD_COLORS.length];
    const pts = bins[k].map((v, b) => (Number.isFinite(v) ? `${n2(x(b))},${n2(y(v))}` : null)).filter((p): p is string => p !== null);
    parts.push(`<polyline class="change" data-method="${esc(m.method)}" fill="none" stroke="${colour}" stroke-width="2" points="${pts.join(' ')}"/>`);
  });
  const lx = left + plotW + 16;
  parts.push('<g class="legend">', ...methods.map((m, k) => `<rect x="${lx}" y="${top + k * 18}" width="12" height="12" fill="${METHOD_COLORS[(k + 1) % METHOD_COLORS.length]}"/><text x="${lx + 18}" y="${top + k * 18 + 10}" font-size="12">${esc(m.method)}</text>`), '</g>', '</svg>');
  return { svg: parts.join('\n') + '\n', bins };
}

/**
 * The confusion matrix as a heat map: rows the true class, columns the predicted one, each row
 * normalised to sum to 1; classes sorted by training count (most first) and, past `maxBins`
 * classes, grouped into bins of consecutive classes (a cell is then the mean of its classes' rows).
 */
export function confusionMatrixSvg(predicted: ArrayLike<number>, labels: ArrayLike<number>, trainCounts: ArrayLike<number>, { maxBins = 50, title = 'Confusion matrix', classNames }: { maxBins?: number; title?: string; classNames?: readonly string[] } = {}): { svg: string; matrix: number[][] } {
  const C = trainCounts.length;
  const order = Array.from({ length: C }, (_, i) => i).sort((a, b) => trainCounts[b] - trainCounts[a] || a - b);
  const B = Math.min(maxBins, C);
  const binOfClass = new Int32Array(C);
  order.forEach((c, rank) => (binOfClass[c] = Math.floor((rank * B) / C)));
  const counts = Array.from({ length: B }, () => new Float64Array(B));
  const rowTotal = new Float64Array(C);
  for (let i = 0; i < labels.length; i++) rowTotal[labels[i]]++;
  // each true class contributes its normalised row; a bin row averages the classes it has samples of
  const classesInRow = new Float64Array(B);
  for (let c = 0; c < C; c++) if (rowTotal[c] > 0) classesInRow[binOfClass[c]]++;
  for (let i = 0; i < labels.length; i++) counts[binOfClass[labels[i]]][binOfClass[predicted[i]]] += 1 / rowTotal[labels[i]];
  const matrix = counts.map((row, b) => Array.from(row, (v) => (classesInRow[b] ? v / classesInRow[b] : NaN)));
  const cell = Math.max(6, Math.min(28, 560 / B));
  const left = 70, top = 50, size = cell * B;
  const W = left + size + 90, H = top + size + 60;
  const shade = (v: number) => (Number.isFinite(v) ? `rgb(${Math.round(255 - 247 * v)},${Math.round(255 - 207 * v)},${Math.round(255 - 148 * v)})` : '#f4f4f4');
  const name = (b: number) => (B === C ? (classNames?.[order[b]] ?? String(order[b])) : `${Math.round((b * C) / B)}–${Math.round(((b + 1) * C) / B) - 1}`);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ${FONT}>`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="15">${esc(title)}</text>`,
    `<text x="${left + size / 2}" y="${H - 10}" text-anchor="middle" font-size="12">predicted (classes by training count, most first${B < C ? `; ${B} bins` : ''})</text>`,
    `<text x="14" y="${top + size / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 14 ${top + size / 2})">true class</text>`,
  ];
  for (let r = 0; r < B; r++) {
    for (let c = 0; c < B; c++) {
      const v = matrix[r][c];
      parts.push(`<rect class="cell" x="${n2(left + c * cell)}" y="${n2(top + r * cell)}" width="${n2(cell)}" height="${n2(cell)}" fill="${shade(v)}"><title>${esc(name(r))} → ${esc(name(c))}: ${Number.isFinite(v) ? (v * 100).toFixed(1) : '-'}%</title></rect>`);
    }
    if (B <= 30) parts.push(`<text x="${left - 4}" y="${n2(top + r * cell + cell / 2 + 4)}" text-anchor="end" font-size="10">${esc(name(r))}</text>`);
  }
  parts.push(`<rect x="${left}" y="${top}" width="${n2(size)}" height="${n2(size)}" fill="none" stroke="#333"/>`, '</svg>');
  return { svg: parts.join('\n') + '\n', matrix };
}
