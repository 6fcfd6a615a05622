import { describe, expect, expectTypeOf, it } from 'vitest';
import { CliError, flagOf, keysFreeOnResume, opt, parseCli, parseOptions, usage, type CliIO, type CliSpec, type OptionSpecs } from '../../tasks/lib/cli.js';
import { runOptions } from '../../tasks/lib/run.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const spec = {
  name: 'toy-lt',
  title: 'Train a toy long-tail classifier',
  description: 'Stage 1 trains the backbone.\n\nStage 2 calibrates the classifier on cached features.',
  options: {
    dataRoot: opt.string({ section: 'Data', help: 'Dataset folder.', metavar: 'DIR', required: true }),
    numClasses: opt.integer({ section: 'Data', help: 'Classes.', default: 10, min: 2, max: 1000 }),
    epochs: opt.integer({ section: 'Training', short: 'e', help: 'Training epochs.', default: 90, min: 1 }),
    lr: opt.number({ section: 'Training', help: 'Base learning rate.', default: 0.1, greaterThan: 0 }),
    shift: opt.number({ section: 'Training', help: 'Logit shift.', default: 0 }),
    loss: opt.enum(['ce', 'focal', 'ldam'], { section: 'Training', help: 'Loss.', default: 'ce' }),
    calib: opt.enum(['none', 'tau-norm', 'logit-adjust', 'disalign', 'lws'], { section: 'Training', help: 'Calibration.' }),
    augment: opt.boolean({ section: 'Training', help: 'Random crops and flips.', default: true }),
    workers: opt.integer({ section: 'Run', help: 'Loader threads.', default: 2, min: 0, resumeCheck: false }),
    ...runOptions,
  },
  examples: ['node tasks/toy-lt.js --data-root data/toy --loss ldam'],
} satisfies CliSpec<OptionSpecs>;

const parse = (argv: string[]) => {
  const outcome = parseOptions(spec, argv);
  if (outcome.kind !== 'config') throw new Error('expected a config');
  return outcome.config;
};
const errorOf = (argv: string[]): string => {
  try {
    parseOptions(spec, argv);
  } catch (e) {
    expect(e).toBeInstanceOf(CliError);
    return (e as Error).message;
  }
  throw new Error(`no error for ${argv.join(' ')}`);
};

/** An io whose exit throws, so parseCli's exit code and output can be checked. */
function captureIO(): CliIO & { out: string; err: string; code: number | null } {
  const io = {
    out: '',
    err: '',
    code: null as number | null,
    stdout: (t: string) => void (io.out += t),
    stderr: (t: string) => void (io.err += t),
    exit: (code: number): never => {
      io.code = code;
      throw new Error(`exit ${code}`);
    },
  };
  return io;
}

describe('cli: option parsing', () => {
  it('fills defaults, leaves optional options undefined, and types the config', () => {
    const config = parse(['--data-root', 'data/toy']);
    expect(config).toEqual({
      dataRoot: 'data/toy', numClasses: 10, epochs: 90, lr: 0.1, shift: 0, loss: 'ce', calib: undefined, augment: true, workers: 2,
      out: undefined, resume: false, keepCheckpoints: 3,
    });
    expectTypeOf(config.loss).toEqualTypeOf<'ce' | 'focal' | 'ldam'>();
    expectTypeOf(config.calib).toEqualTypeOf<'none' | 'tau-norm' | 'logit-adjust' | 'disalign' | 'lws' | undefined>();
    expectTypeOf(config.epochs).toEqualTypeOf<number>();
    expectTypeOf(config.dataRoot).toEqualTypeOf<string>();
    expectTypeOf(config.out).toEqualTypeOf<string | undefined>();
    expectTypeOf(config.augment).toEqualTypeOf<boolean>();
  });

  it('reads kebab-case flags, inline values, short aliases, negations, negative numbers; the last repeat wins', () => {
    const config = parse(['--data-root=/d', '--num-classes', '100', '-e', '5', '--lr=0.05', '--shift', '-0.5', '--loss', 'ldam', '--calib', 'tau-norm',
      '--no-augment', '--resume', '--epochs', '7']);
    expect(config).toMatchObject({ dataRoot: '/d', numClasses: 100, epochs: 7, lr: 0.05, shift: -0.5, loss: 'ldam', calib: 'tau-norm', augment: false, resume: true });
    expect(parse(['--data-root', 'x', '--no-augment', '--augment']).augment).toBe(true);
    expect(parse(['--data-root', 'x', '--lr', '1e-3']).lr).toBe(0.001);
    expect(flagOf('keepCheckpoints')).toBe('keep-checkpoints');
  });

  it('names the option and what it accepts on a bad value', () => {
    expect(errorOf(['--data-root', 'x', '--loss', 'ldamm'])).toBe("option --loss: 'ldamm' is not one of: ce, focal, ldam (did you mean ldam?)");
    expect(errorOf(['--data-root', 'x', '--calib', 'zzz'])).toBe("option --calib: 'zzz' is not one of: none, tau-norm, logit-adjust, disalign, lws");
    expect(errorOf(['--data-root', 'x', '--epochs', '0'])).toBe("option --epochs: expected an integer >= 1, got '0'");
    expect(errorOf(['--data-root', 'x', '--epochs', '2.5'])).toBe("option --epochs: expected an integer >= 1, got '2.5'");
    expect(errorOf(['--data-root', 'x', '--num-classes', '1001'])).toBe("option --num-classes: expected an integer in [2, 1000], got '1001'");
    expect(errorOf(['--data-root', 'x', '--lr', '0'])).toBe("option --lr: expected a number > 0, got '0'");
    expect(errorOf(['--data-root', 'x', '--lr', 'fast'])).toBe("option --lr: expected a number > 0, got 'fast'");
    expect(errorOf(['--data-root', 'x', '--shift', ''])).toBe("option --shift: expected a number, got ''");
    expect(errorOf(['--data-root', ''])).toBe("option --data-root: expected a non-empty value, got ''");
  });

  it('rejects unknown options (with a suggestion), missing values, values on flags, positionals and missing required options', () => {
    expect(errorOf(['--data-root', 'x', '--lrr', '0.1'])).toBe('unknown option --lrr (did you mean --lr?) (--help lists the options)');
    expect(errorOf(['--data-root', 'x', '--ep', '8'])).toBe('unknown option --ep (did you mean --epochs?) (--help lists the options)');
    expect(errorOf(['--data-root', 'x', '--batchsize', '8'])).toBe('unknown option --batchsize (--help lists the options)');
    expect(errorOf(['--data-root', 'x', '-z'])).toBe('unknown option -z (--help lists the options)');
    expect(errorOf(['--data-root', 'x', '--epochs'])).toBe('option --epochs needs a value: an integer >= 1');
    expect(errorOf(['--data-root', 'x', '--out', '--resume'])).toBe("option --out needs a value (a non-empty value), got the option '--resume'; write --out=--resume if that is the value");
    expect(errorOf(['--data-root', 'x', '--resume=yes'])).toBe("option --resume takes no value, got 'yes'");
    expect(errorOf(['--data-root', 'x', 'extra'])).toBe("unexpected argument 'extra': options are written --name value (--help lists them)");
    expect(errorOf([])).toBe('missing option --data-root: Dataset folder.');
  });

  it('refuses a spec with an invalid default or a clashing alias (an author error, not a usage error)', () => {
    const badDefault = { name: 't', title: 't', options: { lr: opt.number({ help: 'x', default: -1, min: 0 }) } };
    expect(() => parseOptions(badDefault, [])).toThrow("t: option 'lr': its default is invalid: option --lr: expected a number >= 0, got '-1'");
    const clash = { name: 't', title: 't', options: { a: opt.boolean({ help: 'x', short: 'h' }) } };
    expect(() => parseOptions(clash, [])).toThrow("short alias '-h'");
    expect(() => parseOptions({ name: 't', title: 't', options: { Bad: opt.boolean({ help: 'x' }) } }, [])).toThrow('camelCase');
    // @ts-expect-error a default outside the enum's values is a type error too
    const outside = opt.enum(['a', 'b'], { help: 'x', default: 'c' });
    expect(() => parseOptions({ name: 't', title: 't', options: { choice: outside } }, [])).toThrow("its default is invalid: option --choice: 'c' is not one of: a, b");
  });

  it('lists the keys that may change on resume', () => {
    expect(keysFreeOnResume(spec.options)).toEqual(['workers', 'out', 'resume', 'keepCheckpoints']);
  });
});

describe('cli: parseCli and the usage page', () => {
  it('prints the usage page and exits 0 on --help, even next to bad options', () => {
    const io = captureIO();
    expect(() => parseCli(spec, ['--lr', 'bad', '--help'], io)).toThrow('exit 0');
    expect(io.code).toBe(0);
    expect(io.err).toBe('');
    expect(io.out).toBe(usage(spec));
    const text = io.out;
    const lines = text.split('\n');
    expect(lines[0]).toBe('toy-lt: Train a toy long-tail classifier');
    expect(text).toContain('Stage 1 trains the backbone.\n\nStage 2 calibrates');
    expect(text).toContain('Usage: node tasks/toy-lt.js [options]');
    // sections in order of first appearance, each option under its own
    const sections = lines.filter((l) => /^[A-Z][a-z]+:$/.test(l));
    expect(sections).toEqual(['Data:', 'Training:', 'Run:', 'Examples:']);
    const line = (flag: string) => lines.find((l) => l.includes(flag))!;
    expect(line('--data-root DIR')).toMatch(/Dataset folder\. \(required\)$/);
    expect(line('--num-classes N')).toMatch(/Classes\. Accepts an integer in \[2, 1000\]\. \(default: 10\)$/);
    expect(line('-e, --epochs N')).toContain('(default: 90)');
    expect(line('--lr X')).toContain('Accepts a number > 0. (default: 0.1)');
    expect(line('--loss ce|focal|ldam')).toMatch(/Loss\. \(default: ce\)$/);
    expect(line('--calib NAME')).toContain('Calibration. Accepts one of: none, tau-norm, logit-adjust, disalign,');
    // the help column wraps, indented under itself
    expect(lines[lines.findIndex((l) => l.includes('--calib NAME')) + 1]).toBe(`${' '.repeat(line('--calib NAME').indexOf('Calibration.'))}lws.`);
    expect(line('--[no-]augment')).toContain('(default: on)');
    expect(line('-h, --help')).toContain('Show this page and exit.');
    expect(lines.indexOf('Run:')).toBeLessThan(lines.findIndex((l) => l.includes('--out DIR')));
    expect(text).toContain('Examples:\n  node tasks/toy-lt.js --data-root data/toy --loss ldam\n');
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(100);
  });

  it('prints one error line naming the task and exits 2 on a bad command line', () => {
    const io = captureIO();
    expect(() => parseCli(spec, ['--data-root', 'x', '--loss', 'hinge'], io)).toThrow('exit 2');
    expect(io.code).toBe(2);
    expect(io.out).toBe('');
    expect(io.err).toBe("toy-lt: option --loss: 'hinge' is not one of: ce, focal, ldam\n");
  });

  it('returns the config when the command line is good', () => {
    const io = captureIO();
    expect(parseCli(spec, ['--data-root', 'x', '--epochs', '3'], io).epochs).toBe(3);
    expect(io.code).toBeNull();
  });
});

describe('--config FILE.json', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-config-'));
  const write = (name: string, value: unknown): string => {
    const file = join(dir, name);
    writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
    return file;
  };
  const io = (): CliIO & { err: string[] } => {
    const err: string[] = [];
    return { err, stdout: () => undefined, stderr: (t) => void err.push(t), exit: (code) => { throw new Error(`exit ${code}`); } };
  };

  it('takes option values from the file, under the command line; a run\u2019s config.json (out, resume, recorded keys) passes back as it is', () => {
    const file = write('run-config.json', { dataRoot: 'data/toy', numClasses: 20, epochs: 5, lr: 0.05, loss: 'focal', augment: false, workers: 3, out: 'runs/old', resume: true, keepCheckpoints: 3, embedded: true });
    const config = parseCli(spec, ['--config', file, '--epochs', '7'], io(), { recorded: ['embedded'] });
    expect(config).toMatchObject({ dataRoot: 'data/toy', numClasses: 20, epochs: 7, lr: 0.05, loss: 'focal', augment: false, workers: 3, out: undefined, resume: false });
    expect(parseCli(spec, [`--config=${file}`, '--augment'], io(), { recorded: ['embedded'] }).augment).toBe(true);
  });

  it('names an unknown key, a bad value and an unreadable file in one line', () => {
    const run = (argv: string[]) => {
      const i = io();
      expect(() => parseCli(spec, argv, i)).toThrow('exit 2');
      return i.err.join('');
    };
    expect(run(['--config', write('a.json', { dataRoot: 'd', epoch: 3 })])).toBe(`toy-lt: --config ${join(dir, 'a.json')}: unknown option "epoch" (did you mean "epochs"?)\n`);
    expect(run(['--config', write('b.json', { dataRoot: 'd', numClasses: 1 })])).toBe(`toy-lt: --config ${join(dir, 'b.json')}: "numClasses": expected an integer in [2, 1000], got '1'\n`);
    expect(run(['--config', write('c.json', { dataRoot: 'd', augment: 'yes' })])).toBe(`toy-lt: --config ${join(dir, 'c.json')}: "augment" must be true or false, got "yes"\n`);
    expect(run(['--config', write('d.json', '{ not json')])).toMatch(/^toy-lt: --config .*d\.json: not JSON: /);
    expect(run(['--config', join(dir, 'missing.json')])).toBe(`toy-lt: --config ${join(dir, 'missing.json')}: cannot read (ENOENT)\n`);
    expect(run(['--config'])).toBe("toy-lt: option --config needs a value: a JSON file of options (a run's config.json works as it is)\n");
  });
});
