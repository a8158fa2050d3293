import { SECRET_VARIABLES } from './variables';
import type { Config } from './index';

/** The effective settings as `NAME value (source)` rows, secrets redacted, for `dbops config`. */
export function describeConfig(config: Config, env: NodeJS.ProcessEnv = process.env) {
  const rows: { name: string; value: string; source: string }[] = [];
  const effective: Record<string, string | number | boolean | undefined> = {
    PGHOST: config.pg.host,
    PGPORT: config.pg.port,
    PGUSER: config.pg.user,
    PGPASSWORD: config.pg.password,
    PGPASSFILE: config.pg.passfile,
    PGDATABASE: config.pg.database,
    PGSSLMODE: config.pg.sslmode,
    PGSSLROOTCERT: config.pg.ssl.rootCert,
    PGSSLCERT: config.pg.ssl.cert,
    PGSSLKEY: config.pg.ssl.key,
    PGSSLCRL: config.pg.ssl.crl,
    DBOPS_PG_BIN_DIR: config.pg.binDir,
    ...(config.verifyPg && {
      DBOPS_VERIFY_PGHOST: config.verifyPg.host,
      DBOPS_VERIFY_PGPORT: config.verifyPg.port,
      DBOPS_VERIFY_PGUSER: config.verifyPg.user,
      DBOPS_VERIFY_PGPASSWORD: config.verifyPg.password,
      DBOPS_VERIFY_PGPASSFILE: config.verifyPg.passfile,
      DBOPS_VERIFY_PGDATABASE: config.verifyPg.database,
    }),
    DBOPS_DATABASES: config.databases.join(','),
    DBOPS_APP_ROLE: config.appRole,
    DBOPS_TEMPORAL_ADDRESS: config.temporal.address,
    DBOPS_TEMPORAL_NAMESPACE: config.temporal.namespace,
    DBOPS_TASK_QUEUE: config.temporal.taskQueue,
    DBOPS_TEMPORAL_UI_URL: config.temporal.uiUrl,
    DBOPS_TEMPORAL_TLS: config.temporal.tls,
    DBOPS_TEMPORAL_TLS_CA: config.temporal.tlsFiles.ca,
    DBOPS_TEMPORAL_TLS_CERT: config.temporal.tlsFiles.cert,
    DBOPS_TEMPORAL_TLS_KEY: config.temporal.tlsFiles.key,
    DBOPS_TEMPORAL_TLS_SERVER_NAME: config.temporal.tlsFiles.serverName,
    DBOPS_TEMPORAL_API_KEY: config.temporal.apiKey,
    DBOPS_MILVUS_ADDRESS: config.milvus.address,
    DBOPS_MILVUS_TOKEN: config.milvus.token,
    DBOPS_MILVUS_TLS: config.milvus.tls.on,
    DBOPS_MILVUS_TLS_CA: config.milvus.tls.ca,
    DBOPS_MILVUS_TLS_CERT: config.milvus.tls.cert,
    DBOPS_MILVUS_TLS_KEY: config.milvus.tls.key,
    DBOPS_MILVUS_TLS_SERVER_NAME: config.milvus.tls.serverName,
    DBOPS_MILVUS_DIM: config.milvus.dim,
    DBOPS_STORAGE: config.storage.kind,
    ...(config.storage.kind === 'local'
      ? { DBOPS_BACKUP_DIR: config.storage.dir }
      : {
          DBOPS_S3_BUCKET: config.storage.bucket,
          DBOPS_S3_ENDPOINT: config.storage.endpoint,
          // Shown where it matters: the config refuses an http:// endpoint without it.
          DBOPS_S3_ALLOW_HTTP: /^http:/i.test(config.storage.endpoint ?? '') || undefined,
          DBOPS_S3_PREFIX: config.storage.prefix,
          DBOPS_BACKUP_MIRROR: config.storage.mirror?.kind ?? 'none',
          ...(config.storage.mirror && { DBOPS_BACKUP_DIR: config.storage.mirror.dir }),
          AWS_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID,
          AWS_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY,
        }),
    DBOPS_BACKUP_FORMAT: config.backup.format,
    DBOPS_BACKUP_COMPRESSION: config.backup.compression,
    DBOPS_RETENTION_DAYS: config.backup.retentionDays,
    DBOPS_RETENTION_MIN_KEEP: config.backup.minKeep,
    DBOPS_DUMP_NO_OWNER: config.backup.noOwner,
    DBOPS_DUMP_NO_PRIVILEGES: config.backup.noPrivileges,
    DBOPS_SCRATCH_DIR: config.scratchDir,
    DBOPS_WAL_SLOT: config.wal.slot,
    DBOPS_WAL_SPOOL_DIR: config.wal.spoolDir,
    DBOPS_BASEBACKUP_SCHEDULE: config.basebackup.schedule ? 'on' : 'off',
    DBOPS_BASEBACKUP_TIME: `${config.basebackup.time} ${config.backup.timezone}`,
    DBOPS_BASEBACKUP_FULL_DAY: config.basebackup.fullDay,
    DBOPS_BASEBACKUP_KEEP_FULL: config.basebackup.keepFull,
    DBOPS_RESTORE_FOUR_EYES: config.restore.fourEyes,
    DBOPS_RESTORE_KEEP_DAYS: config.restore.keepDays,
    DBOPS_APPROVERS_FILE: config.restore.approversFile,
    DBOPS_SIGNING_KEY: config.restore.signingKey,
    DBOPS_MANIFEST_KEY: config.manifestKeyFile,
    DBOPS_BACKUP_AGE_RECIPIENTS: config.age.recipients.length ? config.age.recipients.join(',') : undefined,
    DBOPS_BACKUP_AGE_IDENTITY: config.age.identityFile,
    DBOPS_AGE_BIN: config.age.bin,
    // The file and key ids (the first encrypts), never a key.
    DBOPS_PAYLOAD_KEYS:
      config.payloadKeys && `${config.payloadKeys.file} (keys ${config.payloadKeys.ids.join(', ')})`,
    DBOPS_BACKUP_TIME: `${config.backup.scheduleTime} ${config.backup.timezone}`,
    DBOPS_SLACK_WEBHOOK_URL: config.slackWebhookUrl,
    DBOPS_LOG_LEVEL: config.log.level,
    DBOPS_LOG_FORMAT: config.log.format,
    DBOPS_MIGRATIONS_DIR: config.migrations.dir,
    DBOPS_STACK_HOME: config.stackHome,
    DBOPS_FAILPOINTS: config.failpoints
      .map(([name, a]) => `${name}=${a.kind === 'crash' ? 'crash' : `pause:${a.ms}`}`)
      .join(','),
  };
  for (const [name, value] of Object.entries(effective)) {
    const shown =
      value === undefined || value === ''
        ? '(not set)'
        : SECRET_VARIABLES.has(name)
          ? '<redacted>'
          : String(value);
    rows.push({ name, value: shown, source: config.source[name] ?? (env[name] ? 'env' : 'default') });
  }
  return rows;
}
