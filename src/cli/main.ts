/**
 * The tufa CLI: parse flags, call the library, map errors to exit codes. The only module that
 * touches argv, the environment, stdout and the exit status.
 *
 * Exit codes: 0 verified / done, 1 verification refused, 2 usage or configuration error,
 * 3 network or registry unavailable.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { addAdmissionCommands } from './commands/admission.js';
import { runDemo } from './commands/demo.js';
import { addImageCommands } from './commands/image.js';
import { addKeyCommands } from './commands/key.js';
import { addNotaryCommands } from './commands/notary.js';
import { addPolicyCommands } from './commands/policy.js';
import { addProxyCommand } from './commands/proxy.js';
import { addRepoCommands } from './commands/repo.js';
import { runTufClient } from './commands/tuf.js';
import { EXIT, errorCode, exitCodeFor } from './exit.js';
import { type Output, processOutput } from './output.js';

export { EXIT, exitCodeFor } from './exit.js';

/** The package's version, read from its package.json (dist/src/cli → the package root). */
function version(): string {
  const file = new URL('../../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

function build(out: Output, setCode: (n: number) => void): Command {
  const program = new Command('tufa')
    .description('TUF client, signing tools and verify-before-pull for OCI images')
    .version(version(), '-V, --version', 'print the version')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => out.line(s.trimEnd()),
      writeErr: (s) => out.error(s.trimEnd()),
    });
  addImageCommands(program, out, setCode);
  addAdmissionCommands(program, out);
  addKeyCommands(program, out);
  addNotaryCommands(program, out, setCode);
  addProxyCommand(program, out);
  addRepoCommands(program, out);
  addPolicyCommands(program, out, setCode);
  program
    .command('tuf')
    .description(
      'generic TUF client: tuf --metadata-dir MD [--metadata-url URL] init|refresh|download (see docs)',
    )
    .allowUnknownOption();
  program
    .command('demo')
    .description(
      'sign a TUF repository with test-only keys, verify it, and show tampered copies refused (offline)',
    )
    .option('--dir <dir>', 'where to write the demo repository (default: a new temp folder)')
    .action(async (opts: { dir?: string }) => {
      const ok = await runDemo(out, opts.dir === undefined ? {} : { dir: opts.dir });
      setCode(ok ? EXIT.ok : EXIT.refused);
    });
  return program;
}

/** main runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(argv: readonly string[], out: Output = processOutput): Promise<number> {
  // `tufa tuf …` speaks the conformance protocol: its own parser, exit status exactly 0 or 1.
  if (argv[0] === 'tuf') return runTufClient(argv.slice(1), out);
  let code: number = EXIT.ok;
  const program = build(out, (n) => {
    code = n;
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (e) {
    const message = (e as Error)?.message ?? String(e);
    // --json prints JSON on a failure too (commander's usage errors included); the message
    // also goes to stderr
    const failed = !(e instanceof CommanderError && e.exitCode === 0);
    if (failed && argv.includes('--json')) out.json({ error: { code: errorCode(e), message } }, 2);
    if (e instanceof CommanderError) return failed ? EXIT.usage : EXIT.ok;
    out.error(`tufa: ${errorCode(e)}: ${message}`);
    return exitCodeFor(e);
  }
}
