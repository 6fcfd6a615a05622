// Long-tail re-sampling. Every sampler turns per-sample labels into the dataset indices of one
// epoch, deterministic in (seed, epoch). Pure TypeScript (no GPU, no Node built-ins): it runs in
// the browser demo and in worker threads alike.
import { check } from '../kernels/errors.js';
import { Rng, STREAMS } from '../data/rng.js';

// Independent random streams of one epoch, so adding draws to one never shifts another.
const STREAM_DRAW = STREAMS.samplerDraw;
const STREAM_CLASS_ROUNDING = STREAMS.samplerClassRounding;
const STREAM_RELATION_DROP = STREAMS.relationDrop;

// ---------------------------------------------------------------------------------------------
// Labels

/**
 * Per-sample labels: one class per sample (classification), or one list per image — the categories
 * of its objects (detection, LVIS) or the predicate of each of its relations, repeats included (SGG).
 */
export type SampleLabels = ArrayLike<number> | ReadonlyArray<ArrayLike<number>>;

/** Labels indexed both ways: each sample's label list and each class's member samples. */
export interface LabelIndex {
  readonly numSamples: number;
  readonly numClasses: number;
  /** Per sample, its labels as given (SGG: one entry per relation). */
  readonly lists: readonly Int32Array[];
  /** Per class, the samples containing it, ascending, each sample once. */
  readonly members: readonly Int32Array[];
}

const isListOfLists = (labels: SampleLabels): labels is ReadonlyArray<ArrayLike<number>> =>
  labels.length > 0 && typeof labels[0] !== 'number';

/** Validates labels (non-negative integers below numClasses) and indexes them by sample and by class. */
export function indexLabels(labels: SampleLabels, numClasses?: number, op = 'indexLabels'): LabelIndex {
  check(labels.length > 0, op, 'the dataset has no samples');
  const lists: Int32Array[] = [];
  let maxLabel = -1;
  const nested = isListOfLists(labels);
  for (let i = 0; i < labels.length; i++) {
    const entry: unknown = labels[i];
    check(nested === (typeof entry !== 'number'), op, `sample ${i} mixes single labels and label lists`);
    const values: ArrayLike<number> = nested ? (entry as ArrayLike<number>) : [entry as number];
    check(values !== null && typeof values === 'object' && typeof values.length === 'number', op, `sample ${i} has no label list`);
    const list = new Int32Array(values.length);
    for (let k = 0; k < values.length; k++) {
      const c = values[k];
      check(Number.isInteger(c) && c >= 0, op, `sample ${i} has label ${c}; labels must be non-negative integers`);
      check(numClasses === undefined || c < numClasses, op, `sample ${i} has label ${c}, outside the ${numClasses} classes`);
      list[k] = c;
      if (c > maxLabel) maxLabel = c;
    }
    lists.push(list);
  }
  const C = numClasses ?? maxLabel + 1;
  check(Number.isInteger(C) && C > 0, op, `numClasses must be a positive integer, got ${C}`);
  const sizes = new Int32Array(C);
  const lastSeen = new Int32Array(C).fill(-1);
  lists.forEach((list, i) => list.forEach((c) => {
    if (lastSeen[c] !== i) { lastSeen[c] = i; sizes[c]++; }
  }));
  const members = Array.from(sizes, (n) => new Int32Array(n));
  const fill = new Int32Array(C);
  lastSeen.fill(-1);
  lists.forEach((list, i) => list.forEach((c) => {
    if (lastSeen[c] !== i) { lastSeen[c] = i; members[c][fill[c]++] = i; }
  }));
  return { numSamples: lists.length, numClasses: C, lists, members };
}

/** n_j: the number of samples (images) containing class j. */
export function countClasses(labels: SampleLabels | LabelIndex, numClasses?: number): Int32Array {
  const index = 'members' in labels ? labels : indexLabels(labels, numClasses, 'countClasses');
  return Int32Array.from(index.members, (m) => m.length);
}

// ---------------------------------------------------------------------------------------------
// The sampler contract

/** One epoch of draws. */
export interface EpochDraw {
  /** Dataset indices to visit, in order. */
  readonly indices: Int32Array;
  /** Bi-level sampling: the category each draw was made for (SimCal keeps only its proposals). */
  readonly categories?: Int32Array;
  /**
   * BGNN: which relations of each drawn image survive the instance-level drop-out. Relation r of
   * draw k (the r-th label of image indices[k]) is kept when keep[offsets[k] + r] is 1.
   */
  readonly relationKeep?: { readonly offsets: Int32Array; readonly keep: Uint8Array };
}

export interface Sampler {
  /** Registry name, e.g. 'sqrt' or 'pow(0.25)'. */
  readonly name: string;
  readonly numSamples: number;
  readonly numClasses: number;
  /** The draws of one epoch; the same (seed, epoch, length) always gives the same draws. */
  draw(epoch: number, length?: number): EpochDraw;
  /** Shorthand for draw(epoch, length).indices. */
  indices(epoch: number, length?: number): Int32Array;
  /** Probability that a single draw of this epoch is sample i (sums to 1): what the draws converge to. */
  sampleProbabilities(epoch: number): Float64Array;
}

export interface SamplerOptions {
  /** PRNG seed (default 0). */
  seed?: number;
  /** Number of classes (default: largest label + 1). */
  numClasses?: number;
  /** pow: the exponent q of p_j ∝ n_j^q. */
  q?: number;
  /** progressive: the total number of epochs T. */
  totalEpochs?: number;
  /** rfs: threshold t (default 0.001, LVIS); bgnn: threshold t on predicate frequency (default 0.1, PySGG VG config). */
  repeatThreshold?: number;
  /** bilevel: images drawn per sampled category (default 1). */
  imagesPerClass?: number;
  /** bgnn: instance drop rate γ_d (default 0.9, PySGG VG config). */
  dropRate?: number;
}

abstract class BaseSampler implements Sampler {
  readonly numSamples: number;
  readonly numClasses: number;
  protected readonly index: LabelIndex;
  protected readonly seed: number;

  constructor(readonly name: string, labels: SampleLabels, options: SamplerOptions) {
    this.index = indexLabels(labels, options.numClasses, `${name} sampler`);
    this.numSamples = this.index.numSamples;
    this.numClasses = this.index.numClasses;
    this.seed = options.seed ?? 0;
    check(Number.isSafeInteger(this.seed), `${name} sampler`, `seed must be a safe integer, got ${this.seed}`);
  }

  abstract draw(epoch: number, length?: number): EpochDraw;
  abstract sampleProbabilities(epoch: number): Float64Array;

  indices(epoch: number, length?: number): Int32Array {
    return this.draw(epoch, length).indices;
  }

  protected checkEpoch(epoch: number): void {
    check(Number.isSafeInteger(epoch) && epoch >= 0, `${this.name} sampler`, `epoch must be a non-negative integer, got ${epoch}`);
  }

  protected drawLength(length: number | undefined, fallback: number): number {
    const n = length ?? fallback;
    check(Number.isSafeInteger(n) && n >= 0, `${this.name} sampler`, `length must be a non-negative integer, got ${length}`);
    return n;
  }

  protected rng(epoch: number, stream: number): Rng {
    return new Rng(this.seed, epoch, stream);
  }
}

// ---------------------------------------------------------------------------------------------
// Instance-balanced, class-balanced, square-root, p_j ∝ n_j^q, progressively balanced

/** Instance-balanced sampling: each epoch visits every sample once in a fresh random order (passes repeat for longer epochs). */
export class InstanceSampler extends BaseSampler {
  constructor(labels: SampleLabels, options: SamplerOptions = {}) {
    super('instance', labels, options);
  }

  draw(epoch: number, length?: number): EpochDraw {
    this.checkEpoch(epoch);
    const n = this.drawLength(length, this.numSamples);
    const rng = this.rng(epoch, STREAM_DRAW);
    const out = new Int32Array(n);
    const pass = new Int32Array(this.numSamples);
    for (let start = 0; start < n; start += pass.length) {
      for (let i = 0; i < pass.length; i++) pass[i] = i;
      rng.shuffle(pass);
      out.set(pass.subarray(0, Math.min(pass.length, n - start)), start);
    }
    return { indices: out };
  }

  sampleProbabilities(): Float64Array {
    return new Float64Array(this.numSamples).fill(1 / this.numSamples);
  }
}

/** p_j = n_j^q / Σ_i n_i^q over the classes that have samples (Kang et al., "Decoupling", ICLR 2020); empty classes get 0. */
export function powerClassProbabilities(counts: ArrayLike<number>, q: number): Float64Array {
  check(Number.isFinite(q), 'powerClassProbabilities', `q must be a finite number, got ${q}`);
  const p = Float64Array.from(counts, (n) => (n > 0 ? n ** q : 0));
  const total = p.reduce((a, b) => a + b, 0);
  check(total > 0, 'powerClassProbabilities', 'no class has any sample');
  return p.map((v) => v / total);
}

/** Class-level sampling: pick class j with probability p_j, then a uniform sample of that class (a sample without labels is never drawn). */
abstract class ClassLevelSampler extends BaseSampler {
  /** The class distribution p_j used at this epoch. */
  abstract classProbabilities(epoch: number): Float64Array;

  draw(epoch: number, length?: number): EpochDraw {
    this.checkEpoch(epoch);
    const n = this.drawLength(length, this.numSamples);
    const p = this.classProbabilities(epoch);
    const cdf = new Float64Array(p.length);
    let acc = 0;
    p.forEach((v, j) => (cdf[j] = acc += v));
    const rng = this.rng(epoch, STREAM_DRAW);
    const out = new Int32Array(n);
    const members = this.index.members;
    for (let k = 0; k < n; k++) {
      const c = searchCdf(cdf, rng.uniform() * acc);
      out[k] = members[c][rng.int(members[c].length)];
    }
    return { indices: out };
  }

  sampleProbabilities(epoch: number): Float64Array {
    const p = this.classProbabilities(epoch);
    const q = new Float64Array(this.numSamples);
    this.index.members.forEach((m, c) => m.forEach((i) => (q[i] += p[c] / m.length)));
    return q;
  }
}

/** First index j with cdf[j] > target (cdf non-decreasing, target < cdf[last]); classes with p = 0 are never hit. */
function searchCdf(cdf: Float64Array, target: number): number {
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cdf[mid] > target) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** The p_j ∝ n_j^q family (Kang et al., ICLR 2020): q = 1 instance-balanced, q = 0 class-balanced, q = 1/2 square-root. */
export class ClassPowerSampler extends ClassLevelSampler {
  private readonly probabilities: Float64Array;

  constructor(readonly q: number, labels: SampleLabels, options: SamplerOptions = {}, name = `pow(${q})`) {
    super(name, labels, options);
    check(Number.isFinite(q), `${name} sampler`, `q must be a finite number, got ${q}`);
    this.probabilities = powerClassProbabilities(countClasses(this.index), q);
  }

  classProbabilities(): Float64Array {
    return this.probabilities.slice();
  }
}

/** p_j^PB(t) = (1 − t/T)·p_j^IB + (t/T)·p_j^CB (Kang et al., ICLR 2020); t is clamped to [0, T]. */
export class ProgressiveSampler extends ClassLevelSampler {
  private readonly instanceBalanced: Float64Array;
  private readonly classBalanced: Float64Array;

  constructor(readonly totalEpochs: number, labels: SampleLabels, options: SamplerOptions = {}) {
    super('progressive', labels, options);
    check(Number.isFinite(totalEpochs) && totalEpochs > 0, 'progressive sampler', `totalEpochs T must be a positive number, got ${totalEpochs}`);
    const counts = countClasses(this.index);
    this.instanceBalanced = powerClassProbabilities(counts, 1);
    this.classBalanced = powerClassProbabilities(counts, 0);
  }

  classProbabilities(epoch: number): Float64Array {
    this.checkEpoch(epoch);
    // The official code walks np.linspace(0, 1, T) (reaching CB at epoch T−1); the paper's t/T is used here.
    const a = Math.min(epoch, this.totalEpochs) / this.totalEpochs;
    return this.instanceBalanced.map((ib, j) => (1 - a) * ib + a * this.classBalanced[j]);
  }
}

// ---------------------------------------------------------------------------------------------
// Repeat-factor sampling (LVIS)

/** Stochastic rounding: floor(r) + Bernoulli(frac(r)), so the expected count is exactly r. */
function stochasticRound(r: number, rng: Rng): number {
  const whole = Math.floor(r);
  return whole + (rng.uniform() < r - whole ? 1 : 0);
}

/** Expands each index i into counts[i] copies, then shuffles: one pass over a repeat-factor dataset. */
function expandShuffled(counts: Int32Array, rng: Rng): Int32Array {
  let total = 0;
  counts.forEach((c) => (total += c));
  const out = new Int32Array(total);
  let k = 0;
  counts.forEach((c, i) => out.fill(i, k, (k += c)));
  return rng.shuffle(out);
}

/**
 * Repeat-factor sampling (Gupta et al., "LVIS", CVPR 2019, as detectron2's RepeatFactorTrainingSampler):
 * f(c) = fraction of images containing c, r(c) = max(1, sqrt(t / f(c))), image repeat r(i) = max over
 * its categories (1 for an image without any). Each pass rounds r(i) stochastically per image
 * (floor(r) + Bernoulli(frac(r))), lists image i that many times and shuffles. The default epoch
 * length is one pass; a longer length concatenates passes.
 */
export class RepeatFactorSampler extends BaseSampler {
  /** r(c) per category (1 for categories absent from the data). */
  readonly categoryRepeatFactors: Float64Array;
  /** r(i) per image. */
  readonly repeatFactors: Float64Array;

  constructor(labels: SampleLabels, options: SamplerOptions = {}) {
    super('rfs', labels, options);
    const t = options.repeatThreshold ?? 0.001;
    check(Number.isFinite(t) && t > 0, 'rfs sampler', `repeatThreshold t must be a positive number, got ${t}`);
    const N = this.numSamples;
    this.categoryRepeatFactors = Float64Array.from(this.index.members, (m) => (m.length > 0 ? Math.max(1, Math.sqrt(t / (m.length / N))) : 1));
    this.repeatFactors = Float64Array.from(this.index.lists, (list) => list.reduce((r, c) => Math.max(r, this.categoryRepeatFactors[c]), 1));
  }

  draw(epoch: number, length?: number): EpochDraw {
    this.checkEpoch(epoch);
    const rng = this.rng(epoch, STREAM_DRAW);
    const counts = new Int32Array(this.numSamples);
    const pass = (): Int32Array => {
      this.repeatFactors.forEach((r, i) => (counts[i] = stochasticRound(r, rng)));
      return expandShuffled(counts, rng);
    };
    const first = pass();
    if (length === undefined) return { indices: first };
    return { indices: concatPasses(first, pass, this.drawLength(length, 0)) };
  }

  sampleProbabilities(): Float64Array {
    const total = this.repeatFactors.reduce((a, b) => a + b, 0);
    return this.repeatFactors.map((r) => r / total);
  }
}

/** The first `length` entries of first ++ next() ++ next() ++ ... */
function concatPasses(first: Int32Array, next: () => Int32Array, length: number): Int32Array {
  const out = new Int32Array(length);
  let pass = first;
  for (let k = 0; k < length; ) {
    const take = Math.min(pass.length, length - k);
    out.set(pass.subarray(0, take), k);
    k += take;
    if (k < length) pass = next();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Bi-level sampling (SimCal)

/**
 * Bi-level sampling (Wang et al., "The Devil is in Classification" (SimCal), ECCV 2020; their
 * EpisodicSampler with τ = 0): draw a category uniformly among those with samples (with
 * replacement), then `imagesPerClass` images containing it uniformly with replacement. Each draw
 * carries its category, so calibration keeps only that category's proposals.
 */
export class BilevelSampler extends BaseSampler {
  readonly imagesPerClass: number;
  private readonly present: Int32Array;

  constructor(labels: SampleLabels, options: SamplerOptions = {}) {
    super('bilevel', labels, options);
    this.imagesPerClass = options.imagesPerClass ?? 1;
    check(Number.isSafeInteger(this.imagesPerClass) && this.imagesPerClass > 0, 'bilevel sampler', `imagesPerClass must be a positive integer, got ${this.imagesPerClass}`);
    this.present = Int32Array.from(this.index.members.flatMap((m, c) => (m.length > 0 ? [c] : [])));
    check(this.present.length > 0, 'bilevel sampler', 'no category has any image');
  }

  draw(epoch: number, length?: number): EpochDraw {
    this.checkEpoch(epoch);
    const n = this.drawLength(length, this.numSamples);
    const rng = this.rng(epoch, STREAM_DRAW);
    const indices = new Int32Array(n);
    const categories = new Int32Array(n);
    for (let k = 0; k < n; ) {
      const c = this.present[rng.int(this.present.length)];
      const m = this.index.members[c];
      for (let j = 0; j < this.imagesPerClass && k < n; j++, k++) {
        indices[k] = m[rng.int(m.length)];
        categories[k] = c;
      }
    }
    return { indices, categories };
  }

  sampleProbabilities(): Float64Array {
    const q = new Float64Array(this.numSamples);
    for (const c of this.present) {
      const m = this.index.members[c];
      m.forEach((i) => (q[i] += 1 / (this.present.length * m.length)));
    }
    return q;
  }
}

// ---------------------------------------------------------------------------------------------
// BGNN bi-level resampling (scene graphs)

/**
 * BGNN bi-level data resampling (Li et al., "Bipartite Graph Network with Adaptive Message Passing
 * for Unbiased Scene Graph Generation", CVPR 2021), as the official PySGG `bilvl` code does it:
 * - f_p = share of predicate p among all relation instances; r_p = max(1, sqrt(t / f_p));
 * - each predicate's repeat is rounded ONCE (R_p = floor(r_p) + Bernoulli(frac(r_p)), from the seed);
 * - image repeat R_i = max over its predicates of R_p (1 without relations); an epoch lists image i
 *   R_i times, shuffled;
 * - every time an image with R_i > 1 is drawn, each relation of predicate p is dropped with
 *   probability clip(γ_d·(1 − R_p / R_i), 0, 1): head predicates thin out, the rarest stay.
 * Labels are, per image, the predicate of each relation (repeats included).
 */
export class BgnnSampler extends BaseSampler {
  /** f_p: share of relation instances with predicate p. */
  readonly predicateFrequencies: Float64Array;
  /** R_p: the rounded per-predicate repeat (1 for predicates absent from the data). */
  readonly predicateRepeats: Int32Array;
  /** R_i: the per-image repeat. */
  readonly imageRepeats: Int32Array;
  readonly dropRate: number;

  constructor(labels: SampleLabels, options: SamplerOptions = {}) {
    super('bgnn', labels, options);
    const t = options.repeatThreshold ?? 0.1;
    this.dropRate = options.dropRate ?? 0.9;
    check(Number.isFinite(t) && t > 0, 'bgnn sampler', `repeatThreshold t must be a positive number, got ${t}`);
    check(Number.isFinite(this.dropRate) && this.dropRate >= 0, 'bgnn sampler', `dropRate must be a non-negative number, got ${this.dropRate}`);
    const instances = new Float64Array(this.numClasses);
    let total = 0;
    for (const list of this.index.lists) for (const p of list) { instances[p]++; total++; }
    check(total > 0, 'bgnn sampler', 'no image has any relation');
    this.predicateFrequencies = instances.map((n) => n / total);
    const rng = this.rng(0, STREAM_CLASS_ROUNDING);
    this.predicateRepeats = Int32Array.from(this.predicateFrequencies, (f) => (f > 0 ? stochasticRound(Math.max(1, Math.sqrt(t / f)), rng) : 1));
    this.imageRepeats = Int32Array.from(this.index.lists, (list) => list.reduce((r, p) => Math.max(r, this.predicateRepeats[p]), 1));
  }

  /** Probability that relation `relation` of `image` is dropped when the image is drawn. */
  dropProbability(image: number, relation: number): number {
    const Ri = this.imageRepeats[image];
    if (Ri <= 1) return 0;
    const Rp = this.predicateRepeats[this.index.lists[image][relation]];
    return Math.min(1, Math.max(0, this.dropRate * (1 - Rp / Ri)));
  }

  draw(epoch: number, length?: number): EpochDraw {
    this.checkEpoch(epoch);
    const rng = this.rng(epoch, STREAM_DRAW);
    const pass = (): Int32Array => expandShuffled(this.imageRepeats, rng);
    const first = pass();
    const indices = length === undefined ? first : concatPasses(first, pass, this.drawLength(length, 0));
    const offsets = new Int32Array(indices.length + 1);
    indices.forEach((i, k) => (offsets[k + 1] = offsets[k] + this.index.lists[i].length));
    const keep = new Uint8Array(offsets[indices.length]);
    const dropRng = this.rng(epoch, STREAM_RELATION_DROP);
    indices.forEach((i, k) => {
      const list = this.index.lists[i];
      for (let r = 0; r < list.length; r++) keep[offsets[k] + r] = dropRng.uniform() < this.dropProbability(i, r) ? 0 : 1;
    });
    return { indices, relationKeep: { offsets, keep } };
  }

  sampleProbabilities(): Float64Array {
    const total = this.imageRepeats.reduce((a, b) => a + b, 0);
    return Float64Array.from(this.imageRepeats, (r) => r / total);
  }
}

// ---------------------------------------------------------------------------------------------
// classifier-balancing's ClassAwareSampler

/** A list visited in cycles, reshuffled at the start of every cycle (classifier-balancing's RandomCycleIter). */
class RandomCycle {
  private readonly items: Int32Array;
  private i: number;
  constructor(items: ArrayLike<number>, private readonly rng: Rng) {
    this.items = Int32Array.from(items);
    this.i = this.items.length - 1; // the first next() starts a cycle: shuffled
  }
  next(): number {
    this.i++;
    if (this.i === this.items.length) {
      this.i = 0;
      this.rng.shuffle(this.items);
    }
    return this.items[this.i];
  }
}

/**
 * Class-aware sampling as classifier-balancing's ClassAwareSampler (Shen et al. 2016, used by cRT
 * and LWS with num_samples_cls = 4): classes are visited in a reshuffled cycle; each visit takes the
 * next `perVisit` images of that class's own reshuffled cycle. An epoch has max_j n_j · C draws.
 * The cycles carry over from one epoch to the next, as the official sampler's iterators do; an
 * epoch asked for out of order is replayed from epoch 0, so draw(e) is a function of (seed, e).
 */
export class ClassAwareSampler extends BaseSampler {
  private state: { classes: RandomCycle; perClass: RandomCycle[]; nextEpoch: number } | null = null;
  readonly epochLength: number;

  constructor(labels: SampleLabels, options: SamplerOptions & { perVisit?: number } = {}, readonly perVisit = options.perVisit ?? 4) {
    super('class-aware', labels, options);
    check(Number.isSafeInteger(perVisit) && perVisit > 0, 'class-aware sampler', `images per class visit must be a positive integer, got ${perVisit}`);
    const present = this.index.members.filter((m) => m.length > 0);
    check(present.length > 0, 'class-aware sampler', 'no class has any sample');
    this.epochLength = Math.max(...present.map((m) => m.length)) * present.length;
  }

  private reset(): void {
    const rng = this.rng(0, 13);
    const classes = this.index.members.map((m, c) => (m.length > 0 ? c : -1)).filter((c) => c >= 0);
    this.state = { classes: new RandomCycle(classes, rng), perClass: this.index.members.map((m) => new RandomCycle(m, rng)), nextEpoch: 0 };
  }

  draw(epoch: number, length?: number): EpochDraw {
    this.checkEpoch(epoch);
    const n = this.drawLength(length, this.epochLength);
    if (!this.state || this.state.nextEpoch > epoch) this.reset();
    while (this.state!.nextEpoch < epoch) this.drawOne(n);
    return { indices: this.drawOne(n) };
  }

  private drawOne(n: number): Int32Array {
    const st = this.state!;
    const out = new Int32Array(n);
    let visit: number[] = [];
    for (let k = 0; k < n; k++) {
      const j = k % this.perVisit;
      if (j === 0) {
        const cycle = st.perClass[st.classes.next()];
        visit = Array.from({ length: this.perVisit }, () => cycle.next());
      }
      out[k] = visit[j];
    }
    st.nextEpoch++;
    return out;
  }

  sampleProbabilities(): Float64Array {
    const q = new Float64Array(this.numSamples);
    const present = this.index.members.filter((m) => m.length > 0).length;
    this.index.members.forEach((m) => m.forEach((i) => (q[i] += 1 / present / m.length)));
    return q;
  }
}

// ---------------------------------------------------------------------------------------------
// Registry

export type SamplerName = 'instance' | 'class' | 'class-aware' | 'sqrt' | 'pow' | 'progressive' | 'rfs' | 'bilevel' | 'bgnn';
export type SamplerFactory = (labels: SampleLabels, options?: SamplerOptions) => Sampler;

/** Samplers by the name a task passes (`--sampler sqrt`); 'pow' needs options.q, 'progressive' options.totalEpochs. */
export const SAMPLERS: Record<SamplerName, SamplerFactory> = {
  instance: (labels, options = {}) => new InstanceSampler(labels, options),
  class: (labels, options = {}) => new ClassPowerSampler(0, labels, options, 'class'),
  'class-aware': (labels, options = {}) => new ClassAwareSampler(labels, options),
  sqrt: (labels, options = {}) => new ClassPowerSampler(0.5, labels, options, 'sqrt'),
  pow: (labels, options = {}) => {
    check(options.q !== undefined, 'pow sampler', 'needs the exponent q: pass options.q or the spec "pow(q)"');
    return new ClassPowerSampler(options.q, labels, options);
  },
  progressive: (labels, options = {}) => {
    check(options.totalEpochs !== undefined, 'progressive sampler', 'needs options.totalEpochs (T in p(t) = (1 − t/T)·p_IB + (t/T)·p_CB)');
    return new ProgressiveSampler(options.totalEpochs, labels, options);
  },
  rfs: (labels, options = {}) => new RepeatFactorSampler(labels, options),
  bilevel: (labels, options = {}) => new BilevelSampler(labels, options),
  bgnn: (labels, options = {}) => new BgnnSampler(labels, options),
};

/** Builds a sampler from a spec: a registry name, or 'pow(q)' with the exponent inline (e.g. 'pow(0.25)'). */
export function createSampler(spec: string, labels: SampleLabels, options: SamplerOptions = {}): Sampler {
  const pow = /^pow\(\s*([^)]+?)\s*\)$/.exec(spec.trim());
  if (pow) {
    const q = Number(pow[1]);
    check(Number.isFinite(q), 'createSampler', `"${spec}": q must be a number`);
    return SAMPLERS.pow(labels, { ...options, q });
  }
  const name = spec.trim();
  check(Object.hasOwn(SAMPLERS, name), 'createSampler', `unknown sampler "${spec}"; expected one of ${Object.keys(SAMPLERS).join(', ')} or pow(q)`);
  return SAMPLERS[name as SamplerName](labels, options);
}
