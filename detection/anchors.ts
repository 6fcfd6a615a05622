// torchvision's AnchorGenerator (models/detection/anchor_utils.py): per FPN level, base anchors
// round([−w, −h, w, h] / 2) with h = √r · s and w = s / √r (float32, ratios major, sizes minor,
// torch.round = half to even), shifted over the level's grid with the integer stride
// ⌊image / grid⌋; the order is (y, x, anchor), the same as the RPN head's flattened outputs.
// Mask R-CNN-FPN: sizes 32, 64, 128, 256, 512 (one per level) and ratios 0.5, 1, 2.

const f = Math.fround;

/** torch.round: half to even. */
const roundHalfEven = (x: number): number => {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

/** The base anchors [A, 4] of one level (float32 values). */
export function baseAnchors(sizes: readonly number[], ratios: readonly number[]): Float32Array {
  const out = new Float32Array(sizes.length * ratios.length * 4);
  let k = 0;
  for (const r of ratios) {
    const h = f(Math.sqrt(f(r)));
    const w = f(1 / h);
    for (const s of sizes) {
      const ws = f(w * f(s)), hs = f(h * f(s));
      out.set([roundHalfEven(f(-ws / 2)), roundHalfEven(f(-hs / 2)), roundHalfEven(f(ws / 2)), roundHalfEven(f(hs / 2))], k);
      k += 4;
    }
  }
  return out;
}

export class AnchorGenerator {
  readonly cellAnchors: Float32Array[];

  constructor(
    readonly sizes: readonly (readonly number[])[] = [[32], [64], [128], [256], [512]],
    readonly aspectRatios: readonly (readonly number[])[] = sizes.map(() => [0.5, 1, 2]),
  ) {
    if (sizes.length !== aspectRatios.length) throw new RangeError(`AnchorGenerator: ${sizes.length} size tuples but ${aspectRatios.length} aspect-ratio tuples (one per feature map is needed)`);
    this.cellAnchors = sizes.map((s, i) => baseAnchors(s, aspectRatios[i]));
  }

  /** Anchors per spatial position of each level. */
  numAnchorsPerLocation(): number[] {
    return this.sizes.map((s, i) => s.length * this.aspectRatios[i].length);
  }

  /**
   * Anchors of one image for feature maps of sizes gridSizes ([h, w] per level) on a padded batch of
   * [imageHeight, imageWidth]: Float32Array [Σ h·w·A, 4], levels concatenated, and the count per level.
   */
  gridAnchors(gridSizes: readonly (readonly [number, number])[], imageSize: readonly [number, number]): { anchors: Float32Array; perLevel: number[] } {
    if (gridSizes.length !== this.cellAnchors.length) {
      throw new RangeError(`AnchorGenerator: ${gridSizes.length} feature maps but anchors for ${this.cellAnchors.length} levels; the sizes and aspect ratios need one entry per feature map`);
    }
    const perLevel = gridSizes.map(([h, w], i) => h * w * this.cellAnchors[i].length / 4);
    const anchors = new Float32Array(perLevel.reduce((a, b) => a + b, 0) * 4);
    let k = 0;
    gridSizes.forEach(([gh, gw], level) => {
      const sy = Math.floor(imageSize[0] / gh), sx = Math.floor(imageSize[1] / gw);
      const base = this.cellAnchors[level];
      const A = base.length / 4;
      for (let y = 0; y < gh; y++) {
        for (let x = 0; x < gw; x++) {
          const X = x * sx, Y = y * sy;
          for (let a = 0; a < A; a++) {
            anchors[k++] = f(X + base[a * 4]);
            anchors[k++] = f(Y + base[a * 4 + 1]);
            anchors[k++] = f(X + base[a * 4 + 2]);
            anchors[k++] = f(Y + base[a * 4 + 3]);
          }
        }
      }
    });
    return { anchors, perLevel };
  }
}
