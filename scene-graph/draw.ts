// A picture of one image with its predicted scene graph, as SVG (browser-safe, no encoder needed):
// the pixels as a grid of rectangles, every entity box with its (predicted) label, and the top
// relations as arrows from subject to object labelled with the predicate; a relation that matches
// a ground-truth triplet is green, others red, and the list of top triplets is printed beside.

export interface GraphPictureInput {
  /** CHW pixels in [0, 1] at size × size */
  pixels: Float32Array;
  size: number;
  boxes: ArrayLike<number>;
  labels: ArrayLike<number>;
  objectNames: readonly string[];
  predicateNames: readonly string[];
  /** ranked predicted triplets: subject, object, predicate, score */
  triplets: readonly { s: number; o: number; p: number; score: number }[];
  /** ground-truth relations m×3, to colour hits */
  gtRelations: ArrayLike<number>;
  title?: string;
  scale?: number;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function sceneGraphSvg(x: GraphPictureInput): string {
  const k = x.scale ?? 6, S = x.size, W = S * k;
  const panel = 300;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W + panel}" height="${W + 30}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W + panel}" height="${W + 30}" fill="white"/>`);
  if (x.title) out.push(`<text x="4" y="18" font-size="14">${esc(x.title)}</text>`);
  out.push('<g transform="translate(0,28)" shape-rendering="crispEdges">');
  const hex = (v: number) => Math.round(Math.min(1, Math.max(0, v)) * 255).toString(16).padStart(2, '0');
  for (let y = 0; y < S; y++) for (let xx = 0; xx < S; xx++) {
    const i = y * S + xx;
    out.push(`<rect x="${xx * k}" y="${y * k}" width="${k}" height="${k}" fill="#${hex(x.pixels[i])}${hex(x.pixels[S * S + i])}${hex(x.pixels[2 * S * S + i])}"/>`);
  }
  out.push('</g><g transform="translate(0,28)">');
  const n = x.labels.length;
  const centre = (i: number) => [((x.boxes[4 * i] + x.boxes[4 * i + 2]) / 2) * k, ((x.boxes[4 * i + 1] + x.boxes[4 * i + 3]) / 2) * k];
  for (let i = 0; i < n; i++) {
    const [x1, y1, x2, y2] = [x.boxes[4 * i] * k, x.boxes[4 * i + 1] * k, x.boxes[4 * i + 2] * k, x.boxes[4 * i + 3] * k];
    out.push(`<rect x="${x1}" y="${y1}" width="${x2 - x1}" height="${y2 - y1}" fill="none" stroke="#ffff00" stroke-width="1.5"/>`);
    out.push(`<text x="${x1 + 2}" y="${y1 + 12}" fill="black" stroke="white" stroke-width="3" paint-order="stroke">${i}:${esc(x.objectNames[x.labels[i]] ?? String(x.labels[i]))}</text>`);
  }
  out.push('<defs><marker id="a" markerWidth="8" markerHeight="8" refX="6" refY="3" orient="auto"><path d="M0,0 L6,3 L0,6 z" fill="context-stroke"/></marker></defs>');
  const gt = new Set<string>();
  for (let r = 0; r < x.gtRelations.length; r += 3) gt.add(`${x.gtRelations[r]},${x.gtRelations[r + 1]},${x.gtRelations[r + 2]}`);
  x.triplets.forEach((t, rank) => {
    const hit = gt.has(`${t.s},${t.o},${t.p}`);
    const colour = hit ? '#00a000' : '#d00000';
    const [ax, ay] = centre(t.s), [bx, by] = centre(t.o);
    out.push(`<line x1="${ax}" y1="${ay}" x2="${bx}" y2="${by}" stroke="${colour}" stroke-width="2" marker-end="url(#a)"/>`);
    out.push(`<text x="${(ax + bx) / 2}" y="${(ay + by) / 2 - 3}" fill="${colour}" stroke="white" stroke-width="3" paint-order="stroke">${rank + 1}:${esc(x.predicateNames[t.p])}</text>`);
    out.push(`<text x="${W + 8}" y="${16 * (rank + 1)}" fill="${colour}">${rank + 1}. ${t.s}:${esc(x.objectNames[x.labels[t.s]])} —${esc(x.predicateNames[t.p])}→ ${t.o}:${esc(x.objectNames[x.labels[t.o]])} (${t.score.toFixed(2)})${hit ? ' ✓' : ''}</text>`);
  });
  out.push(`<text x="${W + 8}" y="${16 * (x.triplets.length + 2)}" fill="#444">ground truth:</text>`);
  for (let r = 0, line = x.triplets.length + 3; r < x.gtRelations.length; r += 3, line++) {
    const s = x.gtRelations[r], o = x.gtRelations[r + 1], p = x.gtRelations[r + 2];
    out.push(`<text x="${W + 8}" y="${16 * line}" fill="#444">${s}:${esc(x.objectNames[x.labels[s]])} —${esc(x.predicateNames[p])}→ ${o}:${esc(x.objectNames[x.labels[o]])}</text>`);
  }
  out.push('</g></svg>');
  return out.join('\n') + '\n';
}

/** Top-k triplets of one image under the graph constraint (arg-max predicate per pair, score s_s·s_p·s_o). */
export function topTriplets(pairs: ArrayLike<number>, relScores: ArrayLike<number>, objScores: ArrayLike<number>, numPredicates: number, k: number): { s: number; o: number; p: number; score: number }[] {
  const P1 = numPredicates + 1;
  const t: { s: number; o: number; p: number; score: number }[] = [];
  for (let q = 0; q < pairs.length / 2; q++) {
    let best = 1;
    for (let p = 2; p < P1; p++) if (relScores[q * P1 + p] > relScores[q * P1 + best]) best = p;
    const s = pairs[2 * q], o = pairs[2 * q + 1];
    t.push({ s, o, p: best, score: objScores[s] * objScores[o] * relScores[q * P1 + best] });
  }
  return t.sort((a, b) => b.score - a.score).slice(0, k);
}
