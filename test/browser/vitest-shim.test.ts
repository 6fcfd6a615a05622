// The browser runner's vitest shim must judge like vitest: every case runs through the real
// `expect` and the shim's, and both must pass or both must throw. Plus the shim's runner: hook
// order, beforeAll failures, timeouts, and several files in one page.
import { describe, expect, it, vi } from 'vitest';
import * as shim from './vitest-shim.js';

class Custom extends Error {}
const thrower = (e: unknown) => () => {
  throw e;
};
const quiet = () => 1;

// [description, (expect) => assertion]; E is either vitest's expect or the shim's
type E = (v: unknown) => shim.Matchers;
const CASES: [string, (e: E) => void][] = [
  ['toBe same number', (e) => e(3).toBe(3)],
  ['toBe NaN', (e) => e(NaN).toBe(NaN)],
  ['toBe 0 vs -0', (e) => e(0).toBe(-0)],
  ['toBe equal arrays', (e) => e([1]).toBe([1])],
  ['not.toBe', (e) => e(1).not.toBe(2)],
  ['toEqual arrays', (e) => e([1, 2, [3]]).toEqual([1, 2, [3]])],
  ['toEqual arrays differ', (e) => e([1, 2]).toEqual([1, 3])],
  ['toEqual length differs', (e) => e([1, 2]).toEqual([1, 2, 3])],
  ['toEqual 0 vs -0', (e) => e([0]).toEqual([-0])],
  ['toEqual NaN', (e) => e([NaN]).toEqual([NaN])],
  ['toEqual typed vs plain', (e) => e(new Float32Array([1])).toEqual([1])],
  ['toEqual typed arrays', (e) => e(new Int32Array([1, 2])).toEqual(new Int32Array([1, 2]))],
  ['toEqual typed kinds differ', (e) => e(new Int32Array([1])).toEqual(new Uint32Array([1]))],
  ['toEqual objects ignore undefined', (e) => e({ a: 1, b: undefined }).toEqual({ a: 1 })],
  ['toEqual objects differ', (e) => e({ a: 1 }).toEqual({ a: 2 })],
  ['toEqual nested', (e) => e({ a: [1, { b: 'x' }] }).toEqual({ a: [1, { b: 'x' }] })],
  ['toEqual map', (e) => e(new Map([[1, 'a']])).toEqual(new Map([[1, 'a']]))],
  ['toEqual set differs', (e) => e(new Set([1])).toEqual(new Set([2]))],
  ['toEqual number vs string', (e) => e(1).toEqual('1')],
  ['not.toEqual', (e) => e([1]).not.toEqual([2])],
  ['toBeLessThan', (e) => e(1).toBeLessThan(2)],
  ['toBeLessThan equal', (e) => e(2).toBeLessThan(2)],
  ['toBeLessThan NaN', (e) => e(NaN).toBeLessThan(2)],
  ['toBeLessThan string', (e) => e('1').toBeLessThan(2)],
  ['toBeLessThanOrEqual equal', (e) => e(2).toBeLessThanOrEqual(2)],
  ['toBeLessThanOrEqual more', (e) => e(3).toBeLessThanOrEqual(2)],
  ['toBeGreaterThan', (e) => e(3).toBeGreaterThan(2)],
  ['toBeGreaterThan less', (e) => e(1).toBeGreaterThan(2)],
  ['not.toBeGreaterThan NaN', (e) => e(NaN).not.toBeGreaterThan(2)],
  ['toBeGreaterThanOrEqual', (e) => e(2).toBeGreaterThanOrEqual(2)],
  ['toBeCloseTo default digits', (e) => e(0.1 + 0.2).toBeCloseTo(0.3)],
  ['toBeCloseTo too far', (e) => e(0.31).toBeCloseTo(0.3)],
  ['toBeCloseTo digits', (e) => e(1.0004).toBeCloseTo(1, 3)],
  ['toBeCloseTo digits too far', (e) => e(1.0006).toBeCloseTo(1, 3)],
  ['toBeCloseTo infinities', (e) => e(Infinity).toBeCloseTo(Infinity)],
  ['toThrow any', (e) => e(thrower(new Error('boom'))).toThrow()],
  ['toThrow none', (e) => e(quiet).toThrow()],
  ['toThrow substring', (e) => e(thrower(new Error('a boom here'))).toThrow('boom')],
  ['toThrow substring missing', (e) => e(thrower(new Error('bang'))).toThrow('boom')],
  ['toThrow regexp', (e) => e(thrower(new Error('axis 5 is out of range'))).toThrow(/axis \d is out/)],
  ['toThrow regexp missing', (e) => e(thrower(new Error('axis'))).toThrow(/range/)],
  ['toThrow class', (e) => e(thrower(new Custom('x'))).toThrow(Custom)],
  ['toThrow other class', (e) => e(thrower(new Error('x'))).toThrow(Custom)],
  ['toThrow error instance', (e) => e(thrower(new Error('x'))).toThrow(new Error('x'))],
  ['not.toThrow', (e) => e(quiet).not.toThrow()],
  ['not.toThrow but throws', (e) => e(thrower(new Error('x'))).not.toThrow()],
  ['not.toThrow other message', (e) => e(thrower(new Error('x'))).not.toThrow('y')],
  ['toThrow non-function', (e) => e(1).toThrow()],
  ['toBeInstanceOf', (e) => e(new Custom()).toBeInstanceOf(Error)],
  ['toBeInstanceOf wrong', (e) => e(new Error()).toBeInstanceOf(Custom)],
  ['toBeTruthy', (e) => e(1).toBeTruthy()],
  ['toBeTruthy empty string', (e) => e('').toBeTruthy()],
  ['toBeFalsy', (e) => e(0).toBeFalsy()],
  ['toBeFalsy object', (e) => e({}).toBeFalsy()],
  ['toBeNaN', (e) => e(NaN).toBeNaN()],
  ['toBeNaN number', (e) => e(1).toBeNaN()],
  ['not.toBeNaN', (e) => e(1).not.toBeNaN()],
  ['toContain array', (e) => e([1, 2]).toContain(2)],
  ['toContain array missing', (e) => e([1, 2]).toContain(3)],
  ['toContain object identity', (e) => e([{ a: 1 }]).toContain({ a: 1 })],
  ['toContain string', (e) => e('hello').toContain('ell')],
  ['toContain string missing', (e) => e('hello').toContain('x')],
  ['toContain set', (e) => e(new Set(['a'])).toContain('a')],
  ['toMatchObject subset', (e) => e({ OH: 5, OW: 4, extra: 1 }).toMatchObject({ OH: 5, OW: 4 })],
  ['toMatchObject differs', (e) => e({ OH: 5 }).toMatchObject({ OH: 6 })],
  ['toMatchObject missing key', (e) => e({}).toMatchObject({ a: undefined })],
  ['toMatchObject nested arrays of objects', (e) => e({ m: [{ name: 'w', x: 1 }] }).toMatchObject({ m: [{ name: 'w' }] })],
  ['toMatchObject array length', (e) => e({ m: [1, 2] }).toMatchObject({ m: [1] })],
  ['toMatchObject non-object, empty pattern', (e) => e(1).toMatchObject({})],
  ['toMatchObject non-object pattern', (e) => e({}).toMatchObject(1 as never)],
  ['toMatchObject string', (e) => e('abc').toMatchObject({ length: 3 })],
  ['toMatch regexp', (e) => e('Missing key(s)').toMatch(/key\(s\)/)],
  ['toMatch substring missing', (e) => e('abc').toMatch('x')],
  ['toMatch non-string', (e) => e(1).toMatch(/1/)],
  ['toBeDefined', (e) => e(0).toBeDefined()],
  ['toBeDefined undefined', (e) => e(undefined).toBeDefined()],
  ['toBeUndefined', (e) => e(undefined).toBeUndefined()],
  ['toBeNull', (e) => e(null).toBeNull()],
  ['toBeNull undefined', (e) => e(undefined).toBeNull()],
  ['toHaveLength', (e) => e([1, 2]).toHaveLength(2)],
  ['toHaveLength wrong', (e) => e('abc').toHaveLength(2)],
  ['toHaveLength no length', (e) => e(3).toHaveLength(1)],
];

async function outcome(f: () => unknown): Promise<'pass' | 'throw'> {
  try {
    await f();
    return 'pass';
  } catch {
    return 'throw';
  }
}

describe('vitest shim', () => {
  it('every matcher passes and fails exactly where vitest does', async () => {
    const disagreements: string[] = [];
    for (const [name, assertion] of CASES) {
      const real = await outcome(() => assertion(expect as unknown as E));
      const ours = await outcome(() => assertion(shim.expect as E));
      if (real !== ours) disagreements.push(`${name}: vitest ${real}, shim ${ours}`);
    }
    expect(disagreements).toEqual([]);
  });

  it('rejects.toThrow matches vitest on rejected and resolved promises', async () => {
    const cases: [string, () => Promise<unknown>, unknown][] = [
      ['rejects with match', () => Promise.reject(new Error('used after dispose')), /after dispose/],
      ['rejects with other message', () => Promise.reject(new Error('boom')), /after dispose/],
      ['resolves', () => Promise.resolve(1), undefined],
      ['rejects with class', () => Promise.reject(new Custom('x')), Custom],
    ];
    for (const [name, make, want] of cases) {
      const real = await outcome(() => expect(make()).rejects.toThrow(want as RegExp));
      const ours = await outcome(() => shim.expect(make()).rejects.toThrow(want as RegExp));
      expect(`${name}: ${ours}`).toBe(`${name}: ${real}`);
    }
  });

  it('names a matcher it lacks instead of failing with "not a function"', () => {
    const m = shim.expect(1) as unknown as Record<string, () => void>;
    expect(() => m.toMatchSnapshot()).toThrow(/matcher toMatchSnapshot is not implemented/);
  });

  it('runs hooks in vitest order, fails a suite whose beforeAll fails, and times tests out', async () => {
    const log: string[] = [];
    const events: shim.TestEvent[] = [];
    shim.beforeAll(() => void log.push('root beforeAll'));
    shim.describe('outer', () => {
      shim.beforeEach(() => void log.push('outer beforeEach'));
      shim.afterEach(() => void log.push('outer afterEach'));
      shim.afterAll(() => void log.push('outer afterAll'));
      shim.describe('inner', () => {
        shim.beforeEach(() => void log.push('inner beforeEach'));
        shim.it('a', () => void log.push('a'));
      });
      shim.it('b', () => shim.expect(1).toBe(2));
      shim.it.skip('skipped', () => void log.push('never'));
      shim.it('slow', () => new Promise((resolve) => setTimeout(resolve, 1000)), 20);
      shim.it('slow, options first', { timeout: 20 }, () => new Promise((resolve) => setTimeout(resolve, 1000)));
    });
    shim.describe.runIf(false)('off', () => shim.it('d', () => void log.push('never')));
    shim.describe.skipIf(false)('on', () => shim.it('e', () => void log.push('e')));
    shim.it.runIf('')('f', () => void log.push('never'));
    expect(() => shim.it('no body', { timeout: 5 })).toThrow('vitest shim: test "no body" has no function body');
    shim.describe('broken', () => {
      shim.beforeAll(() => {
        throw new Error('setup failed');
      });
      shim.it('c', () => void log.push('never'));
    });
    await shim.runRegistered((e) => events.push(e), 5000);
    expect(log).toEqual(['root beforeAll', 'outer beforeEach', 'inner beforeEach', 'a', 'outer afterEach', 'outer beforeEach', 'outer afterEach', 'outer beforeEach', 'outer afterEach', 'outer beforeEach', 'outer afterEach', 'outer afterAll', 'e']);
    const results = events.flatMap((e) => (e.type === 'result' ? [`${e.path.join(' > ')}: ${e.status}${e.error ? ` (${e.error.message})` : ''}`] : []));
    expect(results).toEqual([
      'outer > inner > a: pass',
      'outer > b: fail (AssertionError: expected 1 to be 2)',
      'outer > skipped: skip',
      'outer > slow: fail (TimeoutError: test timed out after 20 ms)',
      'outer > slow, options first: fail (TimeoutError: test timed out after 20 ms)',
      'off > d: skip',
      'on > e: pass',
      'f: skip',
      'broken > c: fail (beforeAll failed: Error: setup failed)',
    ]);
    // the runner's watchdog waits as long as the running test may take
    const starts = Object.fromEntries(events.flatMap((e) => (e.type === 'start' ? [[e.path.at(-1), e.timeout]] : [])));
    expect(starts).toMatchObject({ a: 5000, b: 5000, slow: 20, 'slow, options first': 20 });
  });

  it('files that share a page: each under its own name, with its own hooks, in order', async () => {
    vi.resetModules();
    const fresh = (await import('./vitest-shim.js')) as typeof shim;
    const log: string[] = [];
    await fresh.collectFile('one.test.ts', async () => {
      fresh.beforeAll(() => void log.push('one beforeAll'));
      fresh.it('x', () => void log.push('one x'));
    });
    await fresh.collectFile('two.test.ts', async () => {
      fresh.beforeEach(() => void log.push('two beforeEach'));
      fresh.describe('d', () => fresh.it('y', () => void log.push('two y')));
    });
    // a test registered outside collectFile lands at the top level again
    fresh.it('z', () => void log.push('z'));
    expect(fresh.registeredTests()).toEqual([['one.test.ts', 'x'], ['two.test.ts', 'd', 'y'], ['z']]);
    const events: shim.TestEvent[] = [];
    await fresh.runRegistered((e) => events.push(e), 5000);
    expect(log).toEqual(['one beforeAll', 'one x', 'two beforeEach', 'two y', 'z']);
    expect(events.filter((e) => e.type === 'result').map((e) => e.path.join(' > '))).toEqual(['one.test.ts > x', 'two.test.ts > d > y', 'z']);
    await expect(fresh.collectFile('three.test.ts', () => Promise.reject(new Error('no such file')))).rejects.toThrow('no such file');
    fresh.it('w', () => undefined);
    expect(fresh.registeredTests().at(-1)).toEqual(['w']);
  });
});
