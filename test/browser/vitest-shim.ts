// A small stand-in for vitest, so the Node test files run unchanged in a browser page:
// scripts/test-browser.mjs aliases `vitest` to this file. It holds the suite tree, the runner
// (hooks, per-test timeout) and `expect` with the matchers our tests use, with vitest's semantics
// (test/browser/vitest-shim.test.ts checks them against the real vitest).

type Fn = () => unknown;

interface TestCase {
  kind: 'test';
  name: string;
  fn: Fn;
  timeout?: number;
  skip: boolean;
}

interface Suite {
  kind: 'suite';
  name: string;
  children: (Suite | TestCase)[];
  beforeAll: Fn[];
  afterAll: Fn[];
  beforeEach: Fn[];
  afterEach: Fn[];
  skip: boolean;
}

const newSuite = (name: string, skip: boolean): Suite => ({ kind: 'suite', name, children: [], beforeAll: [], afterAll: [], beforeEach: [], afterEach: [], skip });
const root = newSuite('', false);
let current = root;

function collect(name: string, factory: () => void, skip: boolean): void {
  const suite = newSuite(name, skip || current.skip);
  current.children.push(suite);
  const parent = current;
  current = suite;
  try {
    factory();
  } finally {
    current = parent;
  }
}

type TestOptions = number | { timeout?: number };

/** vitest's two forms: it(name, fn, timeout | options) and it(name, options, fn). */
function addTest(name: string, a: Fn | TestOptions | undefined, b: Fn | TestOptions | undefined, skip: boolean): void {
  const [fn, options] = typeof a === 'function' ? [a, b as TestOptions | undefined] : [b, a];
  // a body that is not a function would pass without running anything
  if (typeof fn !== 'function') throw new Error(`vitest shim: test "${name}" has no function body`);
  const ms = typeof options === 'number' ? options : options?.timeout;
  current.children.push({ kind: 'test', name, fn, timeout: ms, skip: skip || current.skip });
}

type Describe = (name: string, factory: () => void) => void;
const describeWhen = (skip: boolean): Describe => (name, factory) => collect(name, factory, skip);
export const describe = Object.assign(describeWhen(false), {
  skip: describeWhen(true),
  runIf: (condition: unknown): Describe => describeWhen(!condition),
  skipIf: (condition: unknown): Describe => describeWhen(Boolean(condition)),
});
type It = (name: string, a?: Fn | TestOptions, b?: Fn | TestOptions) => void;
const itWhen = (skip: boolean): It => (name, a, b) => addTest(name, a, b, skip);
export const it = Object.assign(itWhen(false), {
  skip: itWhen(true),
  runIf: (condition: unknown): It => itWhen(!condition),
  skipIf: (condition: unknown): It => itWhen(Boolean(condition)),
});
export const beforeAll = (fn: Fn): void => void current.beforeAll.push(fn);
export const afterAll = (fn: Fn): void => void current.afterAll.push(fn);
export const beforeEach = (fn: Fn): void => void current.beforeEach.push(fn);
export const afterEach = (fn: Fn): void => void current.afterEach.push(fn);

// ---- running

export interface ErrorInfo {
  message: string;
  stack: string;
}

export type TestEvent =
  | { type: 'collected'; paths: string[][] }
  /** timeout: the test's own limit in ms, so the runner's watchdog waits for a slow test as long as it may run */
  | { type: 'start'; path: string[]; timeout: number }
  | { type: 'result'; path: string[]; status: 'pass' | 'fail' | 'skip'; ms: number; error?: ErrorInfo };

export function errorInfo(e: unknown): ErrorInfo {
  if (e instanceof Error) return { message: `${e.name}: ${e.message}`, stack: e.stack ?? '' };
  return { message: `thrown non-error: ${format(e)}`, stack: '' };
}

/** A test or hook ran past its time; the runner treats the page (and the GPU queue) as wedged. */
class TimeoutError extends Error {
  override name = 'TimeoutError';
}

async function withTimeout(fn: Fn, ms: number, what: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    await Promise.race([Promise.resolve().then(fn), expired]);
  } finally {
    clearTimeout(timer);
  }
}

function testsUnder(s: Suite, path: string[]): string[][] {
  return s.children.flatMap((c) => (c.kind === 'test' ? [[...path, c.name]] : testsUnder(c, [...path, c.name])));
}

interface RunContext {
  report: (e: TestEvent) => void;
  timeout: number;
}

async function runSuite(s: Suite, path: string[], eachBefore: Fn[], eachAfter: Fn[], ctx: RunContext): Promise<void> {
  const runnable = testsUnder(s, path).length > 0 && !s.skip;
  if (runnable) {
    for (const hook of s.beforeAll) {
      try {
        await withTimeout(hook, ctx.timeout, 'beforeAll hook');
      } catch (e) {
        // vitest fails every test of the suite when its beforeAll fails
        const err = errorInfo(e);
        err.message = `beforeAll failed: ${err.message}`;
        for (const p of testsUnder(s, path)) ctx.report({ type: 'result', path: p, status: 'fail', ms: 0, error: err });
        await runAfterAll(s, path, ctx);
        return;
      }
    }
  }
  const before = [...eachBefore, ...s.beforeEach];
  const after = [...s.afterEach, ...eachAfter];
  for (const child of s.children) {
    const childPath = [...path, child.name];
    if (child.kind === 'suite') {
      await runSuite(child, childPath, before, after, ctx);
      continue;
    }
    if (child.skip) {
      ctx.report({ type: 'result', path: childPath, status: 'skip', ms: 0 });
      continue;
    }
    ctx.report({ type: 'start', path: childPath, timeout: child.timeout ?? ctx.timeout });
    const t0 = performance.now();
    let error: ErrorInfo | undefined;
    try {
      for (const hook of before) await withTimeout(hook, ctx.timeout, 'beforeEach hook');
      await withTimeout(child.fn, child.timeout ?? ctx.timeout, 'test');
    } catch (e) {
      error = errorInfo(e);
    }
    for (const hook of after) {
      try {
        await withTimeout(hook, ctx.timeout, 'afterEach hook');
      } catch (e) {
        error ??= errorInfo(e);
      }
    }
    const ms = Math.round(performance.now() - t0);
    ctx.report({ type: 'result', path: childPath, status: error ? 'fail' : 'pass', ms, error });
  }
  if (runnable) await runAfterAll(s, path, ctx);
}

async function runAfterAll(s: Suite, path: string[], ctx: RunContext): Promise<void> {
  for (const hook of s.afterAll) {
    try {
      await withTimeout(hook, ctx.timeout, 'afterAll hook');
    } catch (e) {
      ctx.report({ type: 'result', path: [...path, '(afterAll)'], status: 'fail', ms: 0, error: errorInfo(e) });
    }
  }
}

/**
 * Registers the tests of one file under a suite named after it, as `load` (its import) runs: several
 * files can share a page, each with its own hooks, and every path starts with the file's name.
 */
export async function collectFile(name: string, load: () => Promise<unknown>): Promise<void> {
  const suite = newSuite(name, false);
  root.children.push(suite);
  current = suite;
  try {
    await load();
  } finally {
    current = root;
  }
}

/** The paths (describe names, test name) of every test registered so far. */
export const registeredTests = (): string[][] => testsUnder(root, []);

/** Runs every test registered so far, reporting each start and result. */
export function runRegistered(report: (e: TestEvent) => void, timeout: number): Promise<void> {
  return runSuite(root, [], [], [], { report, timeout });
}

// ---- expect

class AssertionError extends Error {
  override name = 'AssertionError';
}

/** A short readable rendering of a value for failure messages. */
function format(v: unknown, depth = 0): string {
  if (typeof v === 'string') return depth ? JSON.stringify(v) : `'${v}'`;
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'function') return `[Function ${v.name || 'anonymous'}]`;
  if (v === null || typeof v !== 'object') return String(v);
  if (v instanceof Error) return `${v.name}: ${v.message}`;
  if (depth > 2) return '[…]';
  if (Array.isArray(v) || ArrayBuffer.isView(v)) {
    const items = Array.from(v as ArrayLike<unknown>);
    const shown = items.slice(0, 20).map((x) => format(x, depth + 1));
    const prefix = Array.isArray(v) ? '' : `${v.constructor.name} `;
    return `${prefix}[${shown.join(', ')}${items.length > 20 ? `, … ${items.length - 20} more` : ''}]`;
  }
  const entries = Object.entries(v).slice(0, 20).map(([k, x]) => `${k}: ${format(x, depth + 1)}`);
  return `{ ${entries.join(', ')} }`;
}

const tag = (v: unknown): string => Object.prototype.toString.call(v);

/** vitest's toEqual: Object.is on primitives, recursive on containers, undefined properties ignored, prototypes not compared. */
function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (tag(a) !== tag(b)) return false;
  if (a instanceof Date) return a.getTime() === (b as Date).getTime();
  if (a instanceof RegExp) return String(a) === String(b);
  if (a instanceof Error) return a.message === (b as Error).message;
  if (a instanceof Map || a instanceof Set) {
    const bm = b as Map<unknown, unknown> | Set<unknown>;
    if (a.size !== bm.size) return false;
    if (a instanceof Set) return [...a].every((x) => [...(bm as Set<unknown>)].some((y) => deepEqual(x, y)));
    return [...a].every(([k, x]) => (bm as Map<unknown, unknown>).has(k) && deepEqual(x, (bm as Map<unknown, unknown>).get(k)));
  }
  if (Array.isArray(a) || ArrayBuffer.isView(a)) {
    const x = a as ArrayLike<unknown>, y = b as ArrayLike<unknown>;
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!deepEqual(x[i], y[i])) return false;
    return true;
  }
  const definedKeys = (o: object) => Object.keys(o).filter((k) => (o as Record<string, unknown>)[k] !== undefined);
  const ka = definedKeys(a), kb = definedKeys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** Where two values first differ, for toEqual's message: ' (first difference at [0][2]: -0 vs 0)'. */
function firstDifference(a: unknown, b: unknown, path = ''): string {
  const indexable = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !(v instanceof Map || v instanceof Set);
  if (indexable(a) && indexable(b) && tag(a) === tag(b)) {
    const list = Array.isArray(a) || ArrayBuffer.isView(a);
    const [na, nb] = [Object.keys(a).length, Object.keys(b).length];
    if (list && na !== nb) return ` (at ${path || 'top level'}: length ${na} vs ${nb})`;
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    for (const k of keys) if (!deepEqual(a[k], b[k])) return firstDifference(a[k], b[k], `${path}${list ? `[${k}]` : `.${k}`}`);
  }
  return path ? ` (first difference at ${path}: ${format(a, 1)} vs ${format(b, 1)})` : '';
}

/** vitest's toMatchObject: every property of `expected` matches, recursively; arrays match element by element. */
function matchesObject(actual: unknown, expected: unknown): boolean {
  if (Array.isArray(expected)) return Array.isArray(actual) && actual.length === expected.length && expected.every((e, i) => matchesObject(actual[i], e));
  if (tag(expected) !== '[object Object]') return deepEqual(actual, expected);
  const want = expected as Record<string, unknown>;
  const has = (k: string) => typeof actual === 'object' && actual !== null && k in actual;
  return Object.keys(want).every((k) => has(k) && matchesObject((actual as Record<string, unknown>)[k], want[k]));
}

function numeric(name: string, ...values: unknown[]): void {
  for (const v of values) {
    if (typeof v !== 'number' && typeof v !== 'bigint') throw new TypeError(`${name}: ${format(v)} is not a number or bigint`);
  }
}

type Expected = string | RegExp | Error | (abstract new (...args: never[]) => unknown);

/** Whether a thrown value matches toThrow's argument, and how to describe the expectation. */
function throwMatch(thrown: unknown, expected: Expected | undefined): { ok: boolean; want: string } {
  const message = thrown instanceof Error ? thrown.message : String(thrown);
  if (expected === undefined) return { ok: true, want: 'to throw' };
  if (typeof expected === 'string') return { ok: message.includes(expected), want: `to throw an error including ${format(expected)}` };
  if (expected instanceof RegExp) return { ok: expected.test(message), want: `to throw an error matching ${expected}` };
  if (expected instanceof Error) return { ok: message === expected.message, want: `to throw ${format(expected)}` };
  return { ok: thrown instanceof expected, want: `to throw an instance of ${expected.name}` };
}

export interface Matchers {
  not: Matchers;
  rejects: AsyncMatchers;
  toBe(expected: unknown): void;
  toEqual(expected: unknown): void;
  toBeLessThan(expected: number | bigint): void;
  toBeLessThanOrEqual(expected: number | bigint): void;
  toBeGreaterThan(expected: number | bigint): void;
  toBeGreaterThanOrEqual(expected: number | bigint): void;
  toBeCloseTo(expected: number, digits?: number): void;
  toThrow(expected?: Expected): void;
  toMatchObject(expected: object): void;
  toMatch(expected: string | RegExp): void;
  toBeDefined(): void;
  toBeUndefined(): void;
  toBeNull(): void;
  toBeInstanceOf(cls: abstract new (...args: never[]) => unknown): void;
  toBeTruthy(): void;
  toBeFalsy(): void;
  toBeNaN(): void;
  toContain(item: unknown): void;
  toHaveLength(n: number): void;
}

type MatcherName = Exclude<keyof Matchers, 'not' | 'rejects'>;
export type AsyncMatchers = { not: AsyncMatchers } & { [K in MatcherName]: (...args: Parameters<Matchers[K]>) => Promise<void> };

const REJECTED = Symbol('rejected');
type Subject = { value: unknown } | { [REJECTED]: unknown };

function matchers(subject: Subject, negated: boolean): Matchers {
  const actual = 'value' in subject ? subject.value : subject[REJECTED];
  const assert = (pass: boolean, want: string, got = `${format(actual)}`) => {
    if (pass === negated) throw new AssertionError(`expected ${got} ${negated ? 'not ' : ''}${want}`);
  };
  const m: Omit<Matchers, 'not' | 'rejects'> = {
    toBe: (e) => assert(Object.is(actual, e), `to be ${format(e)}${deepEqual(actual, e) ? ' (equal but not the same: use toEqual)' : ''}`),
    toEqual: (e) => assert(deepEqual(actual, e), `to equal ${format(e)}${negated ? '' : firstDifference(actual, e)}`),
    toBeLessThan: (e) => (numeric('toBeLessThan', actual, e), assert((actual as number) < e, `to be less than ${format(e)}`)),
    toBeLessThanOrEqual: (e) => (numeric('toBeLessThanOrEqual', actual, e), assert((actual as number) <= e, `to be less than or equal to ${format(e)}`)),
    toBeGreaterThan: (e) => (numeric('toBeGreaterThan', actual, e), assert((actual as number) > e, `to be greater than ${format(e)}`)),
    toBeGreaterThanOrEqual: (e) => (numeric('toBeGreaterThanOrEqual', actual, e), assert((actual as number) >= e, `to be greater than or equal to ${format(e)}`)),
    toBeCloseTo: (e, digits = 2) => {
      numeric('toBeCloseTo', actual, e);
      const a = actual as number;
      // vitest: |expected - actual| < 10^-digits / 2, and equal infinities are close
      const pass = (a === Infinity && e === Infinity) || (a === -Infinity && e === -Infinity) || Math.abs(e - a) < 10 ** -digits / 2;
      assert(pass, `to be close to ${format(e)} (${digits} digits)`);
    },
    toThrow: (e) => {
      let thrown: { error: unknown } | null = null;
      if ('value' in subject) {
        if (typeof actual !== 'function') throw new TypeError(`toThrow: ${format(actual)} is not a function`);
        try {
          actual();
        } catch (err) {
          thrown = { error: err };
        }
      } else {
        thrown = { error: actual };
      }
      if (!thrown) return assert(false, throwMatch(undefined, e).want, `${format(actual)} (it did not throw)`);
      const { ok, want } = throwMatch(thrown.error, e);
      assert(ok, want, `${format(actual)} (threw ${format(thrown.error)})`);
    },
    toMatchObject: (e) => assert(matchesObject(actual, e), `to match object ${format(e)}`),
    toMatch: (e) => {
      if (typeof actual !== 'string') throw new TypeError(`toMatch: ${format(actual)} is not a string`);
      assert(typeof e === 'string' ? actual.includes(e) : e.test(actual), `to match ${typeof e === 'string' ? format(e) : e}`);
    },
    toBeDefined: () => assert(actual !== undefined, 'to be defined'),
    toBeUndefined: () => assert(actual === undefined, 'to be undefined'),
    toBeNull: () => assert(actual === null, 'to be null'),
    toBeInstanceOf: (cls) => assert(actual instanceof cls, `to be an instance of ${cls.name}`),
    toBeTruthy: () => assert(Boolean(actual), 'to be truthy'),
    toBeFalsy: () => assert(!actual, 'to be falsy'),
    toBeNaN: () => assert(Number.isNaN(actual), 'to be NaN'),
    toContain: (item) => {
      if (typeof actual === 'string') return assert(typeof item === 'string' && actual.includes(item), `to contain ${format(item)}`);
      if (actual === null || typeof actual !== 'object' || !(Symbol.iterator in actual)) throw new TypeError(`toContain: ${format(actual)} is not a string or iterable`);
      assert(Array.from(actual as Iterable<unknown>).includes(item), `to contain ${format(item)}`);
    },
    toHaveLength: (n) => {
      const len = (actual as { length?: unknown } | null | undefined)?.length;
      if (typeof len !== 'number') throw new TypeError(`toHaveLength: ${format(actual)} has no length`);
      assert(len === n, `to have length ${n}`, `${format(actual)} (length ${len})`);
    },
  };
  return guarded({
    ...m,
    get not() {
      return matchers(subject, !negated);
    },
    get rejects() {
      return rejects(actual, negated);
    },
  });
}

function rejects(promiseOrFn: unknown, negated: boolean): AsyncMatchers {
  const settle = async (): Promise<Subject> => {
    const p = typeof promiseOrFn === 'function' ? promiseOrFn() : promiseOrFn;
    if (!(p instanceof Promise)) throw new TypeError(`rejects: ${format(p)} is not a promise`);
    let value: unknown;
    try {
      value = await p;
    } catch (err) {
      return { [REJECTED]: err };
    }
    throw new AssertionError(`expected the promise to reject, but it resolved to ${format(value)}`);
  };
  const build = (neg: boolean): AsyncMatchers =>
    new Proxy({} as AsyncMatchers, {
      get: (_, name) => {
        if (name === 'not') return build(!neg);
        if (typeof name === 'symbol' || name === 'then') return undefined;
        return async (...args: unknown[]) => {
          const m = matchers(await settle(), neg) as unknown as Record<string, (...a: unknown[]) => void>;
          m[name](...args);
        };
      },
    });
  return build(negated);
}

/** Turns the call of a matcher this shim lacks into a clear error instead of "is not a function". */
function guarded(m: Matchers): Matchers {
  return new Proxy(m, {
    get: (target, name, receiver) => {
      if (typeof name === 'string' && /^to[A-Z]/.test(name) && !(name in target)) {
        throw new Error(`vitest shim: matcher ${name} is not implemented (add it to test/browser/vitest-shim.ts)`);
      }
      return Reflect.get(target, name, receiver);
    },
  });
}

export function expect(actual: unknown): Matchers {
  return matchers({ value: actual }, false);
}
