// A procedurally drawn long-tailed segmentation set (the embedded default of tasks/ade20k.ts), a pure
// function of its seed and index (browser-safe; scripts/make-seg-synthetic.ts writes it to disk in
// the ADE20K layout). Each scene is split at a random horizon into an upper "stuff" region (sky or
// wall) and a lower one (ground or floor), which cover most pixels, with small "thing" objects on
// top: thing class k appears in an image with probability p0·decay^k, so a few things are common and
// many are rare, and the rarer things are also drawn smaller (the pixel long tail of ADE20K, where
// wall holds 15.8% of the pixels and flag 0.02%). Things differ by colour and shape; colours of
// neighbouring classes are close and every pixel is noisy, so rare classes are confusable with
// frequent ones, which is where a classifier trained on the raw pixel distribution is biased.
import { DataRng } from '../data/rng.js';

export const SYNTHETIC_STUFF = ['sky', 'ground', 'wall', 'floor'] as const;
export const SYNTHETIC_SHAPES = ['disc', 'box', 'triangle', 'ring', 'cross', 'bar'] as const;

export interface SyntheticOptions {
  /** image side (default 64) */
  size?: number;
  /** thing classes (default 12) */
  things?: number;
  /** probability of the most common thing per image (default 0.9) */
  p0?: number;
  /** per-class decay of that probability (default 0.82) */
  decay?: number;
  /** per-pixel noise amplitude on 0..255 (default 24) */
  noise?: number;
}

export interface SyntheticSample {
  width: number;
  height: number;
  /** RGB, HWC */
  image: Uint8Array;
  /** class per pixel, 0..C−1 (no ignored pixels) */
  label: Uint8Array;
}

export interface SyntheticClass {
  name: string;
  stuff: boolean;
  colour: [number, number, number];
  shape?: (typeof SYNTHETIC_SHAPES)[number];
  /** probability of appearing in an image (things) */
  probability?: number;
}

const STUFF_COLOURS: [number, number, number][] = [[110, 160, 220], [120, 100, 60], [170, 170, 160], [140, 120, 110]];

function hsv(h: number, s: number, v: number): [number, number, number] {
  const c = v * s, x = c * (1 - Math.abs(((h / 60) % 2) - 1)), m = v - c;
  const k = Math.floor(h / 60) % 6;
  const [r, g, b] = k === 0 ? [c, x, 0] : k === 1 ? [x, c, 0] : k === 2 ? [0, c, x] : k === 3 ? [0, x, c] : k === 4 ? [x, 0, c] : [c, 0, x];
  return [Math.round((r + m) * 255), Math.round((g + m) * 255), Math.round((b + m) * 255)];
}

/** The class table: 4 stuff classes, then the things in decreasing frequency. */
export function syntheticClasses(opts: SyntheticOptions = {}): SyntheticClass[] {
  const { things = 12, p0 = 0.9, decay = 0.82 } = opts;
  const out: SyntheticClass[] = SYNTHETIC_STUFF.map((name, i) => ({ name, stuff: true, colour: STUFF_COLOURS[i] }));
  for (let k = 0; k < things; k++) {
    // neighbouring classes differ by 360/things·(golden step mod) in hue: close but distinct
    const hue = (k * 137.5) % 360;
    out.push({ name: `thing${k}`, stuff: false, colour: hsv(hue, 0.75, 0.85), shape: SYNTHETIC_SHAPES[k % SYNTHETIC_SHAPES.length], probability: p0 * decay ** k });
  }
  return out;
}

function inside(shape: (typeof SYNTHETIC_SHAPES)[number], dx: number, dy: number, r: number): boolean {
  const ax = Math.abs(dx), ay = Math.abs(dy), d = Math.hypot(dx, dy);
  switch (shape) {
    case 'disc': return d <= r;
    case 'box': return ax <= r * 0.85 && ay <= r * 0.85;
    case 'triangle': return dy <= r * 0.8 && dy >= -r && ax <= (dy + r) * 0.6;
    case 'ring': return d <= r && d >= r * 0.55;
    case 'cross': return (ax <= r * 0.3 && ay <= r) || (ay <= r * 0.3 && ax <= r);
    case 'bar': return ax <= r && ay <= r * 0.35;
  }
}

/** Scene `index` of the set `seed`. */
export function syntheticSample(seed: number, index: number, opts: SyntheticOptions = {}): SyntheticSample {
  const { size = 64, noise = 24 } = opts;
  const classes = syntheticClasses(opts);
  const rng = new DataRng(seed, index, 0x5e9);
  const S = size;
  const label = new Uint8Array(S * S);
  const horizon = Math.floor(rng.uniform(0.3, 0.65) * S);
  const upper = rng.below(2) === 0 ? 0 : 2, lower = rng.below(2) === 0 ? 1 : 3;
  const tilt = rng.uniform(-0.25, 0.25);
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) label[y * S + x] = y < horizon + tilt * (x - S / 2) ? upper : lower;
  // things: rarer classes are drawn smaller; at most one instance per class, drawn in a random order
  const present: number[] = [];
  for (let c = 4; c < classes.length; c++) if (rng.random() < classes[c].probability!) present.push(c);
  for (let i = present.length - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    [present[i], present[j]] = [present[j], present[i]];
  }
  for (const c of present) {
    const k = c - 4;
    const r = Math.max(2.5, S * rng.uniform(0.08, 0.15) * (1 - (0.25 * k) / Math.max(1, classes.length - 5)));
    const cx = rng.uniform(r, S - r), cy = rng.uniform(r, S - r);
    const shape = classes[c].shape!;
    for (let y = Math.max(0, Math.floor(cy - r)); y < Math.min(S, Math.ceil(cy + r + 1)); y++) {
      for (let x = Math.max(0, Math.floor(cx - r)); x < Math.min(S, Math.ceil(cx + r + 1)); x++) if (inside(shape, x - cx, y - cy, r)) label[y * S + x] = c;
    }
  }
  // colours: class colour × per-image brightness, a vertical gradient on stuff, per-pixel noise
  const image = new Uint8Array(S * S * 3);
  const bright = rng.uniform(0.8, 1.15);
  const noiseRng = new DataRng(seed, index, 0x401e);
  for (let p = 0; p < S * S; p++) {
    const cls = classes[label[p]];
    const y = Math.floor(p / S);
    const grad = cls.stuff ? 0.85 + 0.3 * (y / S) : 1;
    for (let ch = 0; ch < 3; ch++) {
      const n = ((noiseRng.nextU32() / 4294967296) * 2 - 1) * noise;
      const v = cls.colour[ch] * bright * grad + n;
      image[3 * p + ch] = v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
    }
  }
  return { width: S, height: S, image, label };
}
