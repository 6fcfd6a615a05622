import { describe, expect, it } from 'vitest';
import { constantLr, cosineLr, ldamDrwLr, multiStepLr } from '../../nn/schedule.js';

const near = (a: number, b: number) => expect(a).toBeCloseTo(b, 14);

describe('learning-rate schedules', () => {
  it('LDAM-DRW: per-epoch warm-up to 0.1 over 5 epochs, x0.01 from epoch 160, x0.0001 from epoch 180 (0-based)', () => {
    // cifar_train.py: e = epoch + 1; e <= 5: lr*e/5; e > 180: lr*1e-4; e > 160: lr*1e-2; else lr
    const lr = ldamDrwLr();
    const expected: [number, number][] = [
      [0, 0.02], [1, 0.04], [2, 0.06], [3, 0.08], [4, 0.1], [5, 0.1], [100, 0.1], [159, 0.1],
      [160, 0.001], [170, 0.001], [179, 0.001], [180, 0.00001], [199, 0.00001],
    ];
    for (const [epoch, value] of expected) near(lr(epoch), value);
    // per epoch: the iteration within the epoch does not move it
    near(lr(2, 389), 0.06);
    near(ldamDrwLr(0.2)(0), 0.04);
  });

  it('multi-step with gamma is torch MultiStepLR; per-iteration warm-up ramps every iteration', () => {
    const steps = multiStepLr({ lr: 1, milestones: [3, 6], gamma: 0.5 });
    expect([0, 2, 3, 5, 6, 9].map((e) => steps(e))).toEqual([1, 1, 0.5, 0.5, 0.25, 0.25]);
    const warm = multiStepLr({ lr: 0.4, milestones: [2], warmupEpochs: 1, itersPerEpoch: 4 });
    expect([0, 1, 2, 3].map((i) => warm(0, i))).toEqual([0.1, 0.2, 0.30000000000000004, 0.4]);
    near(warm(1, 0), 0.4);
    near(warm(2, 3), 0.04);
  });

  it('cosine is torch CosineAnnealingLR: lr at 0, the midpoint at T/2, eta_min at T, back up after', () => {
    const lr = cosineLr({ lr: 0.1, epochs: 10, etaMin: 0.001 });
    near(lr(0), 0.1);
    near(lr(5), 0.0505);
    near(lr(10), 0.001);
    near(lr(15), 0.0505);
    // eta_min + (lr - eta_min)(1 + cos(pi t / T))/2 at t = 2
    near(lr(2), 0.001 + (0.099 * (1 + Math.cos(Math.PI / 5))) / 2);
  });

  it('cosine with warm-up: (t+1)/W over W epochs, then the cosine over the remaining epochs; per iteration too', () => {
    const lr = cosineLr({ lr: 0.2, epochs: 12, warmupEpochs: 2 });
    near(lr(0), 0.1);
    near(lr(1), 0.2);
    near(lr(2), 0.2);
    near(lr(7), 0.1);
    near(lr(12), 0);
    const it = cosineLr({ lr: 1, epochs: 3, warmupEpochs: 1, itersPerEpoch: 2 });
    expect([it(0, 0), it(0, 1), it(1, 0)]).toEqual([0.5, 1, 1]);
    near(it(2, 0), 0.5);
    near(it(2, 1), (1 + Math.cos((3 * Math.PI) / 4)) / 2);
  });

  it('constant stays put; bad arguments are named errors', () => {
    expect([0, 7, 300].map((e) => constantLr(0.05)(e))).toEqual([0.05, 0.05, 0.05]);
    expect(() => ldamDrwLr()(-1)).toThrow(/multiStepLr: epoch must be an integer >= 0, got -1/);
    expect(() => cosineLr({ lr: 1, epochs: 5, itersPerEpoch: 10 })(0, 10)).toThrow(/iteration 10 is out of range for 10 iterations per epoch/);
    expect(() => cosineLr({ lr: 1, epochs: 5, warmupEpochs: 5 })).toThrow(/epochs \(5\) must be an integer above warmupEpochs \(5\)/);
    expect(() => multiStepLr({ lr: 1, milestones: [5, 3] })).toThrow(/milestones must be increasing integers/);
    expect(() => multiStepLr({ lr: 1, milestones: [5], factors: [0.1, 0.01] })).toThrow(/2 factors for 1 milestones/);
  });
});
