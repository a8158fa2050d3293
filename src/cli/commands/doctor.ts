import type { Command } from 'commander';
import { getConfig } from '../../config';
import { doctorPassed, runDoctor, type CheckStatus } from '../../doctor/checks';
import { printJson, printTable } from '../output';

const mark: Record<CheckStatus, string> = { ok: '✔ ok', fail: '✘ FAIL', warn: '! warn', skip: '- skip' };

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description(
      'check every dependency (PostgreSQL, client tools, Temporal, worker, Milvus, storage, Slack) and the signing setup (restore approvals, manifest key)',
    )
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const results = await runDoctor(getConfig());
      const passed = doctorPassed(results);
      if (opts.json) printJson({ passed, checks: results });
      else {
        printTable(
          ['check', 'status', 'detail', 'fix'],
          results.map((r) => [r.name, mark[r.status], r.detail, r.hint ?? '']),
        );
        // Warnings are advice (e.g. unsigned approvals on the dev stack): they never fail the command.
        const warned = results.some((r) => r.status === 'warn');
        process.stdout.write(
          !passed
            ? 'some required checks failed: see "fix"\n'
            : warned
              ? 'all required checks passed, with warnings: see "fix"\n'
              : 'all required checks passed\n',
        );
      }
      if (!passed) process.exitCode = 1;
    });
}
