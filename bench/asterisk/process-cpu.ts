// CPU time a child process has used so far, all its threads, from Linux's
// /proc: what a subject costs, whoever else shares the machine. Summed over
// /proc/<pid>/task/*/schedstat (nanoseconds on the CPU per thread) where
// the kernel keeps it, else utime + stime of /proc/<pid>/stat (clock ticks,
// 10 ms on most systems: too coarse for one transfer).
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** utime + stime, in clock ticks, from the text of /proc/<pid>/stat. */
export function cpuTicksOfStat(stat: string): number {
  // The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`unreadable /proc stat line: ${stat.slice(0, 120)}`);
  return utime + stime;
}

/** Nanoseconds on the CPU, the first field of a /proc/.../schedstat line. */
export function cpuNsOfSchedstat(schedstat: string): number {
  const field = schedstat.trim().split(/\s+/)[0] ?? '';
  const ns = Number(field);
  if (!/^\d+$/.test(field) || !Number.isFinite(ns)) throw new Error(`unreadable schedstat line: ${schedstat.slice(0, 120)}`);
  return ns;
}

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 });
    const n = Number(out.stdout?.trim());
    ticksPerSecond = Number.isInteger(n) && n > 0 ? n : 100;
  }
  return ticksPerSecond;
}

/** Sum over the process's threads; a thread that ends takes its time with it (Node's threads live as long as the process). */
function schedstatMs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += cpuNsOfSchedstat(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8'));
    } catch (err) {
      // The thread ended between the listing and the read.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return ns / 1e6;
}

/** CPU ms used by `pid` so far, or undefined when it cannot be read. */
export function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    return schedstatMs(pid);
  } catch {
    try {
      return (cpuTicksOfStat(readFileSync(`/proc/${pid}/stat`, 'utf8')) * 1000) / clockTicks();
    } catch {
      return undefined;
    }
  }
}
