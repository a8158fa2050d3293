#!/usr/bin/env node
import { Command } from 'commander';
import { exitQuietlyOnBrokenPipe } from '../stdio';
import { reportError } from './output';
import { packageVersion } from '../build-info';
import { registerConfigCommand } from './commands/config';
import { registerWorkerCommand } from './commands/worker';
import { registerDoctorCommand } from './commands/doctor';
import { registerMigrateCommand } from './commands/migrate';
import { registerDbCommand } from './commands/db';
import { registerMilvusCommand } from './commands/milvus';
import { registerPartitionsCommand } from './commands/partitions';
import { dbCommandGroup, registerDbLifecycleCommands } from './commands/db-lifecycle';
import { registerRestoreCommand } from './commands/restore';
import { registerVerifyCommand } from './commands/verify';
import { registerBackupCommand } from './commands/backup';
import { registerBackupsCommand } from './commands/backups';
import { registerBaseBackupCommand } from './commands/basebackup';
import { registerBaseBackupsCommand } from './commands/basebackups';
import { registerSchedulesCommand } from './commands/schedules';
import { registerCodecServerCommand } from './commands/codec-server';
import { registerWalCommand } from './commands/wal';

export function buildProgram(): Command {
  const program = new Command('dbops')
    .description('Durable database operations for the recommender platform (PostgreSQL + Milvus) on Temporal')
    .version(packageVersion(), '-V, --version', 'print the dbops version')
    // Options of dbops itself only before the command: `dbops baseline --version 3` is baseline's.
    .enablePositionalOptions()
    .showHelpAfterError()
    .configureOutput({ outputError: (text, write) => write(text) });
  registerConfigCommand(program);
  registerWorkerCommand(program);
  registerDoctorCommand(program);
  registerMigrateCommand(program);
  registerDbCommand(program);
  registerMilvusCommand(program);
  registerPartitionsCommand(program);
  registerRestoreCommand(program);
  registerVerifyCommand(program);
  registerBackupCommand(program);
  registerBackupsCommand(program);
  registerBaseBackupCommand(program);
  registerBaseBackupsCommand(program);
  registerSchedulesCommand(program);
  registerCodecServerCommand(program);
  registerWalCommand(program);
  registerDbLifecycleCommands(dbCommandGroup(program));
  return program;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  exitQuietlyOnBrokenPipe();
  try {
    await buildProgram().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    return reportError(err);
  }
}

if (require.main === module) {
  void main().then((code) => {
    process.exitCode = code;
  });
}
