/**
 * `dbops backups list | head -1` and `npm run stack -- status | head`: when the reader goes away,
 * the next write fails with EPIPE. Without a handler Node prints a stack trace for an "unhandled
 * error event"; a command-line tool stops quietly instead, like `ls | head` does.
 */
const guarded = new WeakSet<NodeJS.WriteStream>();

export function exitQuietlyOnBrokenPipe(stream: NodeJS.WriteStream = process.stdout): void {
  if (guarded.has(stream)) return; // main() may run more than once in a process (tests)
  guarded.add(stream);
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}
