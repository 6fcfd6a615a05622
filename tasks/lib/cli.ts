// A declarative command-line parser over Node's util.parseArgs (used as the tokenizer): each option
// has a type, a default, help text and a validation rule; --help prints a usage page generated from
// the spec; a bad command line gets one line naming the option and what it accepts, and exit code 2.
// Option keys are camelCase in the config and kebab-case on the command line (batchSize: --batch-size).
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';

interface OptionCommon {
  /** One or two sentences for the usage page. */
  help: string;
  /** The usage page groups options by section, in order of first appearance (default 'Options'). */
  section?: string;
  /** A one-letter alias: `-e 90`. */
  short?: string;
  /** The value's placeholder on the usage page (default by type: VALUE, N, X, or the enum values). */
  metavar?: string;
  /** false: the option may change when a run resumes (paths, workers, logging); default true. */
  resumeCheck?: boolean;
}

export interface StringOption extends OptionCommon {
  type: 'string';
  default?: string;
  required?: boolean;
}

export interface NumberOption extends OptionCommon {
  type: 'number' | 'integer';
  default?: number;
  required?: boolean;
  /** Inclusive lower bound. */
  min?: number;
  /** Exclusive lower bound (a learning rate: greaterThan 0). */
  greaterThan?: number;
  /** Inclusive upper bound. */
  max?: number;
}

export interface BooleanOption extends OptionCommon {
  type: 'boolean';
  /** Default false; an option that defaults to true is turned off with --no-<name>. */
  default?: boolean;
}

export interface EnumOption<V extends string = string> extends OptionCommon {
  type: 'enum';
  values: readonly V[];
  default?: V;
  required?: boolean;
}

export type OptionSpec = StringOption | NumberOption | BooleanOption | EnumOption;
export type OptionSpecs = Record<string, OptionSpec>;

type ValueOf<O> = O extends { type: 'enum'; values: readonly (infer V)[] } ? V : O extends { type: 'number' | 'integer' } ? number : O extends { type: 'boolean' } ? boolean : string;
type AlwaysSet<O> = O extends { type: 'boolean' } ? true : O extends { default: string | number } ? true : O extends { required: true } ? true : false;
/** The parsed config: options without a default and not required may be undefined. */
export type ConfigOf<S extends OptionSpecs> = { [K in keyof S]: AlwaysSet<S[K]> extends true ? ValueOf<S[K]> : ValueOf<S[K]> | undefined };

type Settings<O extends OptionSpec> = Omit<O, 'type'>;

/** Spec builders: they keep literal types (enum values, whether a default exists) for ConfigOf. */
export const opt = {
  string: <const O extends Settings<StringOption>>(o: O): O & { type: 'string' } => ({ ...o, type: 'string' }),
  number: <const O extends Settings<NumberOption>>(o: O): O & { type: 'number' } => ({ ...o, type: 'number' }),
  integer: <const O extends Settings<NumberOption>>(o: O): O & { type: 'integer' } => ({ ...o, type: 'integer' }),
  boolean: <const O extends Settings<BooleanOption>>(o: O): O & { type: 'boolean' } => ({ ...o, type: 'boolean' }),
  enum: <const V extends string, const O extends Omit<Settings<EnumOption<V>>, 'values'> & { default?: NoInfer<V> }>(values: readonly V[], o: O): O & { type: 'enum'; values: readonly V[] } => ({
    ...o,
    type: 'enum',
    values,
  }),
};

export interface CliSpec<S extends OptionSpecs> {
  /** The task's name, as in `runs/<name>-...` and the error prefix. */
  name: string;
  /** One line: what the command does. */
  title: string;
  /** Paragraphs for the usage page (blank lines separate them). */
  description?: string;
  /** How to run it (default `node tasks/<name>.js`). */
  command?: string;
  options: S;
  /** Whole command lines shown under "Examples". */
  examples?: readonly string[];
}

/** A bad command line: the message is the one line shown to the user. */
export class CliError extends Error {
  readonly exitCode = 2;
}

/** camelCase key → kebab-case flag name. */
export const flagOf = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** The keys whose options say they may change on resume (resumeCheck: false). */
export function keysFreeOnResume(options: OptionSpecs): string[] {
  return Object.keys(options).filter((k) => options[k].resumeCheck === false);
}

// ---------------------------------------------------------------- validation

/** What a value must be, for errors and the usage page: "an integer in [1, 1000]", "one of: ce, focal". */
function accepted(o: OptionSpec): string {
  switch (o.type) {
    case 'enum':
      return `one of: ${o.values.join(', ')}`;
    case 'boolean':
      return 'no value';
    case 'string':
      return 'a non-empty value';
    case 'number':
    case 'integer': {
      const what = o.type === 'integer' ? 'an integer' : 'a number';
      const lower = o.greaterThan !== undefined ? { op: '>', v: o.greaterThan } : o.min !== undefined ? { op: '>=', v: o.min } : null;
      if (lower && o.max !== undefined) return `${what} in ${lower.op === '>' ? '(' : '['}${lower.v}, ${o.max}]`;
      if (lower) return `${what} ${lower.op} ${lower.v}`;
      if (o.max !== undefined) return `${what} <= ${o.max}`;
      return what;
    }
  }
}

/** Levenshtein distance, for "did you mean" suggestions. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}

/** The candidate the user most likely meant: the shortest one `word` abbreviates, else the nearest by edit distance. */
function closest(word: string, candidates: readonly string[]): string | undefined {
  const abbreviated = candidates.filter((c) => word.length >= 2 && c.startsWith(word)).sort((a, b) => a.length - b.length)[0];
  if (abbreviated) return abbreviated;
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

/** Converts and validates one value; throws CliError naming the option and what it accepts. */
function convert(flag: string, o: OptionSpec, raw: string): string | number {
  const bad = (): never => {
    throw new CliError(`option --${flag}: expected ${accepted(o)}, got '${raw}'`);
  };
  switch (o.type) {
    case 'string':
      return raw === '' ? bad() : raw;
    case 'boolean':
      throw new CliError(`option --${flag} takes no value, got '${raw}'`);
    case 'enum': {
      if ((o.values as readonly string[]).includes(raw)) return raw;
      const hint = closest(raw, o.values);
      throw new CliError(`option --${flag}: '${raw}' is not ${accepted(o)}${hint ? ` (did you mean ${hint}?)` : ''}`);
    }
    case 'number':
    case 'integer': {
      const v = raw.trim() === '' ? NaN : Number(raw);
      if (!Number.isFinite(v) || (o.type === 'integer' && !Number.isSafeInteger(v))) bad();
      if ((o.min !== undefined && v < o.min) || (o.greaterThan !== undefined && v <= o.greaterThan) || (o.max !== undefined && v > o.max)) bad();
      return v;
    }
  }
}

/** Catches mistakes in a spec (the task author's, not the user's) before any argument is read. */
function checkSpec(spec: CliSpec<OptionSpecs>): void {
  const flags = new Set(['help']);
  const shorts = new Set(['h']);
  for (const [key, o] of Object.entries(spec.options)) {
    const where = `${spec.name}: option '${key}'`;
    if (!/^[a-z][a-zA-Z0-9]*$/.test(key)) throw new Error(`${where}: keys are camelCase identifiers`);
    const flag = flagOf(key);
    for (const f of o.type === 'boolean' ? [flag, `no-${flag}`] : [flag]) {
      if (flags.has(f)) throw new Error(`${where}: --${f} is defined twice (or is --help)`);
      flags.add(f);
    }
    if (o.short !== undefined) {
      if (!/^[a-zA-Z]$/.test(o.short) || shorts.has(o.short)) throw new Error(`${where}: short alias '-${o.short}' is not a single unused letter`);
      shorts.add(o.short);
    }
    if (o.type === 'enum' && o.values.length === 0) throw new Error(`${where}: an enum needs values`);
    if (o.type !== 'boolean' && o.default !== undefined) {
      try {
        convert(flag, o, String(o.default));
      } catch (e) {
        throw new Error(`${where}: its default is invalid: ${(e as Error).message}`);
      }
    }
  }
}

// ---------------------------------------------------------------- parsing

export type ParseOutcome<S extends OptionSpecs> = { kind: 'config'; config: ConfigOf<S> } | { kind: 'help'; text: string };

/** Keys of a run's config.json that say where the run lives, not what it computes: --config leaves them out. */
const RUN_LOCATION_KEYS = ['out', 'resume'];

/**
 * The option values of a `--config FILE.json`: an object of option keys (camelCase, as a run's
 * config.json writes them) to values, validated like the command line. A run's own config.json
 * passes back as it is: its run-location keys (out, resume) and the keys it records beyond the
 * options (`recorded`) are skipped; any other unknown key is an error naming it.
 */
export function readConfigFile<S extends OptionSpecs>(spec: CliSpec<S>, file: string, recorded: readonly string[] = []): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(`--config ${file}: ${code ? `cannot read (${code})` : `not JSON: ${(e as Error).message}`}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new CliError(`--config ${file}: expected a JSON object of options`);
  const values: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(json as Record<string, unknown>)) {
    if (RUN_LOCATION_KEYS.includes(key) || recorded.includes(key) || v === null) continue;
    const o = spec.options[key];
    if (!o) {
      const hint = closest(key, Object.keys(spec.options));
      throw new CliError(`--config ${file}: unknown option "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}`);
    }
    const flag = flagOf(key);
    if (o.type === 'boolean') {
      if (typeof v !== 'boolean') throw new CliError(`--config ${file}: "${key}" must be true or false, got ${JSON.stringify(v)}`);
      values[key] = v;
    } else {
      if (typeof v !== 'string' && typeof v !== 'number') throw new CliError(`--config ${file}: "${key}" must be ${accepted(o)}, got ${JSON.stringify(v)}`);
      try {
        values[key] = convert(flag, o, String(v));
      } catch (e) {
        throw new CliError(`--config ${file}: ${(e as Error).message.replace(/^option --[\w-]+: /, `"${key}": `)}`);
      }
    }
  }
  return values;
}

/** Parses `argv` (without node and the script); --help anywhere returns the usage page. Throws CliError. */
export function parseOptions<S extends OptionSpecs>(spec: CliSpec<S>, argv: readonly string[], fromConfig: Record<string, unknown> = {}): ParseOutcome<S> {
  checkSpec(spec);
  const keyOfFlag = new Map<string, string>();
  const parseArgsOptions: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const [key, o] of Object.entries(spec.options)) {
    const flag = flagOf(key);
    keyOfFlag.set(flag, key);
    parseArgsOptions[flag] = { type: o.type === 'boolean' ? 'boolean' : 'string', ...(o.short ? { short: o.short } : {}) };
    if (o.type === 'boolean') {
      keyOfFlag.set(`no-${flag}`, key);
      parseArgsOptions[`no-${flag}`] = { type: 'boolean' };
    }
  }
  // non-strict: unknown options come back as tokens, so the errors below can name them and suggest
  const { tokens } = parseArgs({ args: [...argv], options: parseArgsOptions, strict: false, allowPositionals: true, tokens: true });
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) return { kind: 'help', text: usage(spec) };

  const values: Record<string, unknown> = {};
  for (const t of tokens) {
    if (t.kind === 'option-terminator') continue;
    if (t.kind === 'positional') throw new CliError(`unexpected argument '${t.value}': options are written --name value (--help lists them)`);
    const key = keyOfFlag.get(t.name);
    if (key === undefined) {
      const hint = closest(t.name, [...Object.keys(parseArgsOptions)]);
      throw new CliError(`unknown option ${t.rawName}${hint ? ` (did you mean --${hint}?)` : ''} (--help lists the options)`);
    }
    const o = spec.options[key];
    if (o.type === 'boolean') {
      if (t.value !== undefined) throw new CliError(`option ${t.rawName} takes no value, got '${t.value}'`);
      values[key] = t.name === flagOf(key);
      continue;
    }
    const flag = flagOf(key);
    if (t.value === undefined) throw new CliError(`option --${flag} needs a value: ${accepted(o)}`);
    // util.parseArgs takes the next argument even when it looks like an option: `--out --resume`
    if (!t.inlineValue && t.value.startsWith('-') && !(o.type !== 'string' && o.type !== 'enum' && Number.isFinite(Number(t.value)))) {
      throw new CliError(`option --${flag} needs a value (${accepted(o)}), got the option '${t.value}'; write --${flag}=${t.value} if that is the value`);
    }
    values[key] = convert(flag, o, t.value);
  }
  for (const [key, o] of Object.entries(spec.options)) {
    if (Object.hasOwn(values, key)) continue;
    // a --config file's value, under the command line's and over the default
    if (Object.hasOwn(fromConfig, key)) values[key] = fromConfig[key];
    else if (o.type === 'boolean') values[key] = o.default ?? false;
    else if (o.default !== undefined) values[key] = o.default;
    else if (o.required) throw new CliError(`missing option --${flagOf(key)}: ${o.help}`);
    else values[key] = undefined;
  }
  return { kind: 'config', config: values as ConfigOf<S> };
}

export interface CliIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  exit: (code: number) => never;
}

const processIO: CliIO = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  exit: (code) => process.exit(code),
};

/** The task entry point's parser: prints the usage page and exits 0 on --help, one error line and exits 2 on a bad command line. */
export function parseCli<S extends OptionSpecs>(spec: CliSpec<S>, argv: readonly string[] = process.argv.slice(2), io: CliIO = processIO, { recorded = [] }: { recorded?: readonly string[] } = {}): ConfigOf<S> {
  let outcome: ParseOutcome<S>;
  try {
    // --config FILE.json (any task): its values come under the command line's
    const rest: string[] = [];
    let fromConfig: Record<string, unknown> = {};
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i];
      const file = a === '--config' ? argv[++i] : a.startsWith('--config=') ? a.slice(9) : undefined;
      if (file === undefined) {
        if (a === '--config') throw new CliError('option --config needs a value: a JSON file of options (a run\'s config.json works as it is)');
        rest.push(a);
      } else if (a !== undefined) fromConfig = { ...fromConfig, ...readConfigFile(spec, file, recorded) };
    }
    outcome = parseOptions(spec, rest, fromConfig);
  } catch (e) {
    if (!(e instanceof CliError)) throw e;
    io.stderr(`${spec.name}: ${e.message}\n`);
    return io.exit(e.exitCode);
  }
  if (outcome.kind === 'help') {
    io.stdout(outcome.text);
    return io.exit(0);
  }
  return outcome.config;
}

// ---------------------------------------------------------------- usage page

const WIDTH = 100;
const MAX_LEFT = 30;

/** Greedy word wrap of `text` to `width` columns. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return line ? [...lines, line] : lines;
}

function metavarOf(o: OptionSpec): string {
  if (o.metavar) return o.metavar;
  switch (o.type) {
    case 'enum': {
      const list = o.values.join('|');
      return list.length <= 24 ? list : 'NAME';
    }
    case 'integer':
      return 'N';
    case 'number':
      return 'X';
    default:
      return 'VALUE';
  }
}

function details(o: OptionSpec): string[] {
  const out: string[] = [];
  if (o.type === 'boolean') return o.default ? ['(default: on)'] : [];
  const bounded = (o.type === 'number' || o.type === 'integer') && (o.min ?? o.greaterThan ?? o.max) !== undefined;
  if (bounded || (o.type === 'enum' && metavarOf(o) !== o.values.join('|'))) out.push(`Accepts ${accepted(o)}.`);
  if (o.default !== undefined) out.push(`(default: ${o.default})`);
  else if (o.required) out.push('(required)');
  return out;
}

/** The --help page: title, description, usage line, options by section with defaults, examples. */
export function usage<S extends OptionSpecs>(spec: CliSpec<S>): string {
  const command = spec.command ?? `node tasks/${spec.name}.js`;
  const rows = new Map<string, [string, string][]>();
  const add = (section: string, left: string, text: string): void => {
    if (!rows.has(section)) rows.set(section, []);
    rows.get(section)!.push([left, text]);
  };
  for (const [key, o] of Object.entries(spec.options)) {
    const flag = flagOf(key);
    const name = o.type === 'boolean' && o.default ? `--[no-]${flag}` : `--${flag}`;
    const left = `${o.short ? `-${o.short}, ` : '    '}${name}${o.type === 'boolean' ? '' : ` ${metavarOf(o)}`}`;
    add(o.section ?? 'Options', left, [o.help, ...details(o)].join(' '));
  }
  add([...rows.keys()].at(-1) ?? 'Options', '    --config FILE', "Options from a JSON file (keys as the option names in camelCase; a run's config.json works as it is); the command line overrides them.");
  add([...rows.keys()].at(-1) ?? 'Options', '-h, --help', 'Show this page and exit.');

  const leftWidth = Math.min(MAX_LEFT, Math.max(...[...rows.values()].flat().map(([left]) => left.length)));
  const lines = [`${spec.name}: ${spec.title}`, ''];
  for (const paragraph of (spec.description ?? '').split(/\n\s*\n/).filter((p) => p.trim())) lines.push(...wrap(paragraph, WIDTH), '');
  lines.push(`Usage: ${command} [options]`, '');
  for (const [section, entries] of rows) {
    lines.push(`${section}:`);
    for (const [left, text] of entries) {
      const body = wrap(text, WIDTH - leftWidth - 4);
      if (left.length > leftWidth) lines.push(`  ${left}`, ...body.map((l) => `${' '.repeat(leftWidth + 4)}${l}`));
      else lines.push(...body.map((l, i) => `  ${(i === 0 ? left : '').padEnd(leftWidth)}  ${l}`));
    }
    lines.push('');
  }
  if (spec.examples?.length) lines.push('Examples:', ...spec.examples.map((e) => `  ${e}`), '');
  return lines.join('\n');
}
