/**
 * Histories as proto3 JSON (the format `temporal workflow show --output json` and the Web UI's
 * download give), written and read with the protobufjs copy that @temporalio/proto's types belong
 * to. Why not @temporalio/common's historyToJSON/historyFromJSON: in this install they throw "type
 * must be a Type". npm keeps three copies of protobufjs 8 (nested in @temporalio/common, proto and
 * worker: the top-level protobufjs is 7, which Milvus' SDK and grpc need), and common's protojson
 * checks the History type against its own copy's classes. (The replay worker calls
 * historyFromJSON for JSON it is given, so the replay test hands it decoded histories.)
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type { History } from '@temporalio/common/lib/proto-utils';

interface ProtoJson {
  toJson(type: unknown, message: unknown): unknown;
  fromJson(type: unknown, json: unknown, options?: { ignoreUnknownFields?: boolean }): unknown;
}

// CommonJS modules as the SDK loads them (an ESM import under vitest would wrap the generated root).
const load = createRequire(__filename);
const protoRequire = createRequire(path.join(path.dirname(load.resolve('@temporalio/proto')), 'index.js'));
const protojson = protoRequire('protobufjs/ext/protojson') as ProtoJson;
const { patchProtobufRoot } = load('@temporalio/proto/lib/patch-protobuf-root') as {
  patchProtobufRoot: (root: unknown) => { lookupType(name: string): unknown };
};
const historyType = patchProtobufRoot(load('@temporalio/proto')).lookupType(
  'temporal.api.history.v1.History',
);

export function historyToJson(history: History): string {
  return JSON.stringify(protojson.toJson(historyType, history));
}

export function historyFromJson(text: string): History {
  const loaded = protojson.fromJson(historyType, JSON.parse(text), { ignoreUnknownFields: true });
  if (!loaded) throw new TypeError('not a history');
  return loaded;
}
