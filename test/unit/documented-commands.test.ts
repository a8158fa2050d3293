import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { type Command, CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main';

/**
 * Every `dbops …` command that deploy/, docs/ and README.md name exists: each is resolved in the
 * CLI's own command tree (buildProgram, what bin/dbops.js runs) and run with `--help`, which must
 * print that command's usage line. Commander prints the parent's help, exit 0, for an unknown
 * sub-command, so the exit code alone proves nothing.
 */
const ROOT = path.resolve(__dirname, '..', '..');
const SOURCES = ['deploy', 'docs', 'README.md'];

/**
 * How a command is named in text, the one definition. It starts with `dbops` where a command line
 * starts (after a backtick, a double quote, `$ ` or `npx `), or with `bin/dbops.js` or `npm run
 * dbops --`. Its words follow, separated by white space (line breaks too: YAML and Markdown wrap
 * code spans): lower-case words, each possibly listing alternatives (`init/advise`,
 * `init|advise`), up to the first option, placeholder (`<id>`) or punctuation. Prose ("the dbops
 * worker") is not a command.
 */
const COMMAND =
  /(?:(?<=[`"]|\$ |npx )dbops|\bbin\/dbops\.js|\bnpm run(?: -s)? dbops --)((?:\s+[a-z][a-z0-9-]*(?:[/|][a-z][a-z0-9-]*)*(?=[\s`"',.;:)\]]|$))+)/g;

interface Mention {
  file: string;
  line: number;
  words: string[];
}

/** The commands `text` names, alternatives expanded: `milvus init|stats` is two commands. */
function mentions(file: string, text: string): Mention[] {
  const out: Mention[] = [];
  for (const m of text.matchAll(COMMAND)) {
    const line = text.slice(0, m.index).split('\n').length;
    let expanded: string[][] = [[]];
    for (const word of m[1]!.trim().split(/\s+/)) {
      expanded = expanded.flatMap((prefix) => word.split(/[/|]/).map((alt) => [...prefix, alt]));
    }
    for (const words of expanded) out.push({ file, line, words });
  }
  return out;
}

function filesUnder(p: string): string[] {
  if (!statSync(p).isDirectory()) return [p];
  return readdirSync(p)
    .sort()
    .flatMap((name) => filesUnder(path.join(p, name)));
}

const documented = SOURCES.flatMap((s) => filesUnder(path.join(ROOT, s))).flatMap((f) =>
  mentions(path.relative(ROOT, f), readFileSync(f, 'utf8')),
);

/** Commander keeps the default sub-command (`restore start`) in a private field: no public getter. */
function defaultSubcommand(cmd: Command): Command | undefined {
  const name = (cmd as unknown as { _defaultCommandName?: string | null })._defaultCommandName;
  return name ? cmd.commands.find((c) => c.name() === name) : undefined;
}

/**
 * The command `words` runs: sub-commands by name, then the words left over as its positional
 * arguments (a group hands them to its default sub-command, as commander does). An error names
 * what does not exist.
 */
function resolve(program: Command, words: readonly string[]): { path: string[] } | { error: string } {
  let cmd = program;
  const names: string[] = [];
  let i = 0;
  for (; i < words.length; i++) {
    const sub = cmd.commands.find((c) => c.name() === words[i] || c.aliases().includes(words[i]!));
    if (!sub) break;
    cmd = sub;
    names.push(sub.name());
  }
  const args = words.slice(i);
  if (args.length === 0) return { path: names };
  const taker = cmd.commands.length > 0 ? defaultSubcommand(cmd) : cmd;
  const params = taker?.registeredArguments ?? [];
  if (taker && (params.at(-1)?.variadic || args.length <= params.length)) {
    return { path: taker === cmd ? names : [...names, taker.name()] };
  }
  const known = cmd.commands.map((c) => c.name()).join(', ');
  return {
    error: `"${args[0]}" is no command of "dbops ${names.join(' ')}"${known ? ` (it has: ${known})` : ' and it takes no more arguments'}`,
  };
}

/** Runs `dbops <path> --help` in-process; returns its exit code and output. */
async function help(commandPath: readonly string[]): Promise<{ exitCode: number; out: string }> {
  const program = buildProgram();
  let out = '';
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const c of all(program)) {
    c.exitOverride().configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
  }
  try {
    await program.parseAsync(['node', 'dbops', ...commandPath, '--help']);
    return { exitCode: 0, out };
  } catch (err) {
    if (err instanceof CommanderError) return { exitCode: err.exitCode, out };
    throw err;
  }
}

describe('every dbops command named in deploy/, docs/ and README.md exists', () => {
  it('finds the commands (the finder is not blind)', () => {
    const files = new Set(documented.map((d) => d.file));
    expect(files).toContain('README.md');
    expect(files).toContain('deploy/README.md');
    expect(files).toContain('deploy/k8s/components/monitoring/prometheusrule.yaml');
    expect(documented.length).toBeGreaterThan(50);
    const found = mentions(
      'x.md',
      'run `dbops backups list --db x`, "dbops milvus init|stats" and the dbops worker',
    );
    expect(found.map((m) => m.words.join(' '))).toEqual(['backups list', 'milvus init', 'milvus stats']);
  });

  it('the check refuses a command that does not exist', async () => {
    const program = buildProgram();
    expect(resolve(program, ['backup', 'list'])).toEqual({
      error: '"list" is no command of "dbops backup" and it takes no more arguments',
    });
    expect(resolve(program, ['backups', 'lst'])).toMatchObject({
      error: expect.stringContaining('list, show'),
    });
    // What --help alone would accept: commander shows the parent's help and exits 0.
    const parent = await help(['backups', 'lst']);
    expect(parent.exitCode).toBe(0);
    expect(parent.out.split('\n')[0]).toBe('Usage: dbops backups [options] [command]');
  });

  const byCommand = new Map<string, Mention[]>();
  for (const d of documented) {
    const name = d.words.join(' ');
    byCommand.set(name, [...(byCommand.get(name) ?? []), d]);
  }
  it.each([...byCommand.keys()])('dbops %s', async (name) => {
    const places = byCommand.get(name)!;
    const where = `dbops ${name} (${places.map((d) => `${d.file}:${d.line}`).join(', ')})`;
    const program = buildProgram();
    const r = resolve(program, places[0]!.words);
    if ('error' in r) throw new Error(`${where}: ${r.error}`);
    let cmd = program;
    for (const name of r.path) cmd = cmd.commands.find((c) => c.name() === name)!;
    const { exitCode, out } = await help(r.path);
    expect(exitCode, where).toBe(0);
    expect(out.split('\n')[0], where).toBe(`Usage: ${['dbops', ...r.path].join(' ')} ${cmd.usage()}`);
  });
});
