/** One definition per dev-stack server: how to prepare, start, probe and stop it. */
import type { ServerName } from '../paths';
import { milvus } from './milvus';
import { postgres } from './postgres';
import { s3 } from './s3';
import { temporal } from './temporal';
import type { ServerDef } from './types';

export * from './types';

export const SERVERS: Readonly<Record<ServerName, ServerDef>> = { postgres, temporal, milvus, s3 };
