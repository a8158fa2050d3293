/**
 * Samples the argv and environment of every descendant of a process while it runs (Linux /proc):
 * a worker thread walks /proc/<pid>/task/<tid>/children from the root every few milliseconds and
 * reads /proc/<pid>/cmdline, environ and exe of each process it finds, reporting each distinct
 * (process, argv) once. It runs beside the test's event loop, so a busy test never stalls it.
 * A process caught between fork and exec still shows its parent's argv and environment: `exe`
 * tells them apart (the parent's executable). A sample is kept only when the executable was the same
 * before and after reading argv and environment (no exec in between).
 */
import { Worker } from 'node:worker_threads';

export interface ProcSample {
  pid: number;
  /** /proc/<pid>/exe, resolved. */
  exe: string;
  argv: string[];
  /** The environment it was started with (execve's envp). */
  env: Record<string, string>;
}

export interface ProcSampler {
  /** Every distinct sample so far. */
  samples(): ProcSample[];
  /** Completed scans of the process tree so far (proves the sampler was running). */
  scans(): number;
  stop(): Promise<void>;
}

// Plain JavaScript, run as the thread's code: no TypeScript loader needed in the thread.
const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const flag = new Int32Array(workerData.flag);
const seen = new Set();
const read = (file) => { try { return fs.readFileSync(file); } catch { return undefined; } };
const children = (pid) => {
  let tids;
  try { tids = fs.readdirSync('/proc/' + pid + '/task'); } catch { return []; }
  const out = [];
  for (const tid of tids) {
    const text = read('/proc/' + pid + '/task/' + tid + '/children');
    if (text) for (const c of text.toString().split(' ')) if (c.trim()) out.push(Number(c));
  }
  return out;
};
const exeOf = (pid) => { try { return fs.readlinkSync('/proc/' + pid + '/exe'); } catch { return ''; } };
let scans = 0;
while (Atomics.load(flag, 0) === 0) {
  const stack = children(workerData.root);
  while (stack.length) {
    const pid = stack.pop();
    const exe = exeOf(pid);
    const cmdline = read('/proc/' + pid + '/cmdline');
    if (cmdline) {
      const key = pid + ' ' + cmdline.toString('base64');
      if (!seen.has(key)) {
        const environ = read('/proc/' + pid + '/environ');
        // An exec between the reads would mix the old image's argv or environment with the new
        // executable: such a sample is dropped (the next scan reads the new image whole).
        if (environ && exeOf(pid) === exe) {
          seen.add(key);
          const env = {};
          for (const kv of environ.toString().split('\\0')) {
            const i = kv.indexOf('=');
            if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
          }
          parentPort.postMessage({ pid, exe, argv: cmdline.toString().split('\\0').filter((a, i, all) => i < all.length - 1 || a), env });
        }
      }
    }
    stack.push(...children(pid));
  }
  scans++;
  Atomics.store(flag, 1, scans);
  Atomics.wait(flag, 0, 0, workerData.intervalMs);
}
`;

/** Starts sampling the descendants of `rootPid` every `intervalMs` (default 3 ms). */
export function startProcSampler(rootPid: number, intervalMs = 3): ProcSampler {
  const flag = new SharedArrayBuffer(8);
  const flags = new Int32Array(flag);
  const samples: ProcSample[] = [];
  const worker = new Worker(THREAD, { eval: true, workerData: { root: rootPid, flag, intervalMs } });
  worker.on('message', (s: ProcSample) => samples.push(s));
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  return {
    samples: () => [...samples],
    scans: () => Atomics.load(flags, 1),
    async stop() {
      Atomics.store(flags, 0, 1);
      Atomics.notify(flags, 0);
      await exited;
    },
  };
}
