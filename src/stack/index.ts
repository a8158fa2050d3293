/**
 * Programmatic API of the dev stack, for tests and tools:
 *   stackEnv()            the variables of the running stack (from <home>/stack.env.json)
 *   startServer(name)     start one server (the stack must have been installed by `stack up`)
 *   stopServer(name)      stop our instance of one server
 *   serverHealthy(name)   does it answer its health check?
 */
import { readEnvJson, type StackEnv } from './envvars';
import { homeForRead, isServerName, SERVER_NAMES, type ServerName } from './paths';
import { ensureStarted, makeContext, statusOf, stopServerIn, withLock, type ServerStatus } from './stack';
import { SERVERS } from './servers';

export type { StackEnv, ServerName, ServerStatus };
export { SERVER_NAMES };

export const NOT_RUNNING_MESSAGE = 'dev stack not running: run npm run stack -- up';

export function stackEnv(): StackEnv {
  const env = readEnvJson(homeForRead());
  if (!env) throw new Error(NOT_RUNNING_MESSAGE);
  return env;
}

function def(name: string) {
  if (!isServerName(name)) throw new Error(`unknown server ${name}: one of ${SERVER_NAMES.join(', ')}`);
  return SERVERS[name];
}

export async function startServer(name: ServerName): Promise<ServerStatus> {
  const ctx = makeContext();
  return withLock(ctx.p, () => ensureStarted(ctx, def(name)));
}

export async function stopServer(name: ServerName): Promise<string> {
  const ctx = makeContext();
  return withLock(ctx.p, () => stopServerIn(ctx, def(name)));
}

export async function serverHealthy(name: ServerName): Promise<boolean> {
  return SERVERS[def(name).name].healthy(makeContext()).catch(() => false);
}

export async function serverStatus(name: ServerName): Promise<ServerStatus> {
  return statusOf(makeContext(), def(name));
}
