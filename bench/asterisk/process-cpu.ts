// CPU time a child process has used so far (user + system, all its
// threads), from Linux's /proc/<pid>/stat: what a subject costs, whoever
// else shares the machine.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

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

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 });
    const n = Number(out.stdout?.trim());
    ticksPerSecond = Number.isInteger(n) && n > 0 ? n : 100;
  }
  return ticksPerSecond;
}

/** CPU ms used by `pid` so far (to the clock tick, 10 ms on most Linux), or undefined when it cannot be read. */
export function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    return (cpuTicksOfStat(readFileSync(`/proc/${pid}/stat`, 'utf8')) * 1000) / clockTicks();
  } catch {
    return undefined;
  }
}
