import { DefaultFailureConverter } from '@temporalio/common';

/**
 * The failure converter of a worker and client with DBOPS_PAYLOAD_KEYS set: a failure's message
 * and stack trace (error text names databases, S3 keys, row counts) move into its encoded
 * attributes, a payload the codec encrypts like any other (Temporal's `encodeCommonAttributes`).
 * The history then shows only "Encoded failure"; dbops' own clients, the codec server and the Web
 * UI with the codec endpoint set decode the text. Without keys dbops keeps the default converter,
 * so error text stays readable in every tool.
 *
 * Loaded by path (Temporal's `failureConverterPath`), in the worker and inside the workflow
 * bundle, so it must stay workflow-safe: nothing but @temporalio/common.
 */
export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
