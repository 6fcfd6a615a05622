import { describe, expect, it } from 'vitest';
import { tensor, type Tensor } from '../../index.node.js';
import { reshape } from '../../autograd/ops.js';
import type { Batch, BatchLoader } from '../../data/loader.js';
import { Module } from '../../nn/module.js';
import { SGD } from '../../nn/optim.js';
import { constantLr } from '../../nn/schedule.js';
import { LinearHead } from '../../longtail/heads.js';
import { crossEntropy, focalLoss, ldamLoss, logitAdjustedLoss, seqlLoss, sigmoidLoss, eqlLoss } from '../../longtail/losses.js';
import { LOSS_NAMES, TwoStageModel, labelTensor, lossBiasInit, lossByName, trainStage1, type Backbone } from '../../longtail/runner.js';
import { SAMPLERS } from '../../longtail/samplers.js';
import { Rng } from '../../data/rng.js';
import { classBalancedWeights, eqlWeights, seqlWeights, tailIndicator } from '../../longtail/weights.js';
import { randomArray } from '../helpers.js';

const cpu = (v: ArrayLike<number>, shape: number[]): Tensor => tensor(v, shape, { device: 'cpu' });

describe('stage-1 losses by name', () => {
  const counts = [300, 60, 12, 2];
  const N = 6, C = 4;
  const y = Int32Array.from([0, 1, 3, 2, 0, 3]);
  const z = randomArray(N * C, -2, 2);
  const cb = Array.from(classBalancedWeights(counts, 0.999));

  /** Cui et al.'s softmax CB loss by hand: Σ_i w_{y_i}·(−log softmax(z_i)_{y_i}) / N (their tf.losses mean over the N samples). */
  function cbSoftmaxByHand(): number {
    let total = 0;
    for (let i = 0; i < N; i++) {
      const row = Array.from(z.slice(i * C, i * C + C));
      const m = Math.max(...row);
      const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
      total += cb[y[i]] * (lse - row[y[i]]);
    }
    return total / N;
  }

  it('CB softmax averages over N as Cui et al. (not over Σ w_y as torch); cb-sigmoid is γ = 0 whatever --focal-gamma; cb-focal is their sigmoid focal form', async () => {
    const zt = cpu(z, [N, C]), yt = labelTensor(y, 'cpu');
    const o = { classCounts: counts, cbBeta: 0.999, focalGamma: 1.5 };
    const cbLoss = await lossByName('cb', o)(zt, yt, 0).item();
    expect(cbLoss).toBeCloseTo(cbSoftmaxByHand(), 6);
    // torch's weighted mean would divide by Σ w_{y_i} instead: a different number
    const sumW = Array.from(y, (c) => cb[c]).reduce((a, b) => a + b, 0);
    expect(Math.abs(cbLoss * N / sumW - cbLoss)).toBeGreaterThan(1e-3);
    // sigmoid forms by hand: Σ_i Σ_j w_{y_i}·m_ij·BCE_ij / N with m = exp(−γ y z − γ log(1 + e^−z))
    const byHand = (gamma: number) => {
      let total = 0;
      for (let i = 0; i < N; i++) for (let j = 0; j < C; j++) {
        const v = z[i * C + j], t = j === y[i] ? 1 : 0;
        const bce = Math.max(v, 0) - t * v + Math.log1p(Math.exp(-Math.abs(v)));
        total += cb[y[i]] * Math.exp(-gamma * t * v - gamma * Math.log1p(Math.exp(-v))) * bce;
      }
      return total / N;
    };
    expect(await lossByName('cb-sigmoid', o)(zt, yt, 0).item()).toBeCloseTo(byHand(0), 6);
    expect(await lossByName('cb-focal', o)(zt, yt, 0).item()).toBeCloseTo(byHand(1.5), 6);
    // the official bias initialisations
    expect(lossBiasInit('cb-sigmoid', 10)).toBeCloseTo(-Math.log(9), 15);
    expect(lossBiasInit('cb-focal', 100)).toBeCloseTo(-Math.log(99), 15);
    expect(lossBiasInit('eql', 1000)).toBeCloseTo(-Math.log(999), 15);
    expect(lossBiasInit('ce', 10)).toBeNull();
  });

  it('each name builds its loss with the paper\u2019s weights; DRW switches to class-balanced weights at its epoch', async () => {
    const zt = cpu(z, [N, C]), yt = labelTensor(y, 'cpu');
    const o = { classCounts: counts, cbBeta: 0.999, focalGamma: 1.5 };
    const perSample = Float32Array.from({ length: N * C }, (_, k) => cb[y[Math.floor(k / C)]]);
    const total = counts.reduce((a, b) => a + b, 0);
    const tail = tailIndicator(counts.map((n) => n / total), 1 / C);
    const expected: Record<(typeof LOSS_NAMES)[number], Tensor> = {
      ce: crossEntropy(zt, yt),
      focal: focalLoss(zt, yt, { gamma: 1.5 }),
      cb: cpu([cbSoftmaxByHand()], []),
      'cb-focal': sigmoidLoss(zt, yt, { elementWeights: perSample, gamma: 1.5 }),
      'cb-sigmoid': sigmoidLoss(zt, yt, { elementWeights: perSample, gamma: 0 }),
      ldam: ldamLoss(zt, yt, counts),
      'balanced-softmax': logitAdjustedLoss(zt, yt, counts),
      'logit-adjusted': logitAdjustedLoss(zt, yt, counts),
      eql: eqlLoss(zt, yt, eqlWeights(y, tail)),
      // the runner's SEQL stream: Rng(seed, 0, 7), γ = 0.9
      seql: seqlLoss(zt, yt, seqlWeights(y, tail, 0.9, new Rng(0, 0, 7))),
    };
    for (const name of LOSS_NAMES) {
      expect(await lossByName(name, o)(zt, yt, 0).item(), name).toBeCloseTo(await expected[name].item(), 12);
    }
    const drw = lossByName('ldam', { ...o, drwEpoch: 3 });
    expect(await drw(zt, yt, 2).item()).toBeCloseTo(await ldamLoss(zt, yt, counts).item(), 12);
    expect(await drw(zt, yt, 3).item()).toBeCloseTo(await ldamLoss(zt, yt, counts, { weights: cb }).item(), 12);
  });

  it('rejects an unknown name, and EQL labels without host values', () => {
    expect(() => lossByName('dice', { classCounts: counts })).toThrow(/lossByName: unknown loss "dice"; expected one of ce, focal/);
    const eql = lossByName('eql', { classCounts: counts });
    expect(() => eql(cpu(z, [N, C]), tensor(y, [N], { dtype: 'i32', device: 'cpu' }), 0)).toThrow(/this loss needs the labels on the host/);
  });
});

/** Features = the image's 3 channel values ([N, 3, 1, 1] → [N, 3]). */
class PixelBackbone extends Module implements Backbone {
  readonly featureDim = 3;
  features(x: Tensor): Tensor {
    return reshape(x, [x.shape[0], 3]);
  }
}

/** Serves images [3, 1, 1] from memory in the order given. */
function memoryLoader(images: Float32Array, labels: Int32Array, batchSize: number): BatchLoader {
  return {
    sampleShape: [3, 1, 1],
    async *epoch(order, epoch) {
      for (let b = 0; b * batchSize + batchSize <= order.length; b++) {
        const idx = Int32Array.from({ length: batchSize }, (_, k) => order[b * batchSize + k]);
        const batch: Batch = {
          images: Float32Array.from({ length: batchSize * 3 }, (_, k) => images[idx[Math.floor(k / 3)] * 3 + (k % 3)]),
          labels: Int32Array.from(idx, (i) => labels[i]),
          indices: idx,
          shape: [batchSize, 3, 1, 1],
          epoch,
          batch: b,
        };
        yield batch;
      }
    },
    async close() {},
  };
}

describe('stage 1', () => {
  const labels = Int32Array.from({ length: 24 }, (_, i) => (i < 16 ? 0 : i < 22 ? 1 : 2));
  // image i: 2 in the channel of its class, plus a little noise
  const images = Float32Array.from({ length: 24 * 3 }, (_, k) => (k % 3 === labels[Math.floor(k / 3)] ? 2 : 0) + 0.1 * Math.sin(k));

  function setup(data: Float32Array) {
    const model = new TwoStageModel(new PixelBackbone(), new LinearHead(3, 3));
    const optimizer = new SGD(model.trainableParameters(), { lr: 0.5, momentum: 0.9 });
    const sampler = SAMPLERS.instance(labels, { seed: 1 });
    return { model, optimizer, sampler, loader: memoryLoader(data, labels, 8), loss: lossByName('ce', { classCounts: [16, 6, 2] }), schedule: constantLr(0.5), batchSize: 8 };
  }

  it('trains backbone + head, logs and reports each epoch\u2019s mean loss', async () => {
    const epochLosses: number[] = [];
    await trainStage1({ ...setup(images), epochs: 4, logEvery: 2, onEpochEnd: (_, loss) => { epochLosses.push(loss); } });
    expect(epochLosses).toHaveLength(4);
    expect(epochLosses[3]).toBeLessThan(epochLosses[0] / 2);
  });

  it('stops with a named error when the logits turn NaN', async () => {
    await expect(trainStage1({ ...setup(new Float32Array(24 * 3).fill(NaN)), epochs: 1, logEvery: 1 })).rejects.toThrow(/trainStage1: the loss became NaN at epoch 0, iteration 1/);
  });
});
