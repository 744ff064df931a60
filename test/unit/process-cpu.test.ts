// The real-Asterisk benchmark's reading of a process's CPU time from
// /proc (bench/asterisk/process-cpu.ts).
import { describe, expect, it } from 'vitest';
import { cpuNsOfSchedstat, cpuTicksOfStat } from '../../bench/asterisk/process-cpu.js';

describe('/proc/<pid>/task/<tid>/schedstat', () => {
  it('reads the nanoseconds on the CPU (first field)', () => {
    expect(cpuNsOfSchedstat('179071263 30956036 601\n')).toBe(179_071_263);
  });

  it('refuses a line it cannot read', () => {
    expect(() => cpuNsOfSchedstat('')).toThrow(/unreadable/);
  });
});

describe('/proc/<pid>/stat', () => {
  it('adds utime and stime (fields 14 and 15)', () => {
    const stat = '4373 (node) S 4357 4344 4344 0 -1 4194304 21873 0 0 0 1234 567 0 0 20 0 11 0 1284101 1195008000 28411 18446744073709551615';
    expect(cpuTicksOfStat(stat)).toBe(1234 + 567);
  });

  it('counts the fields from the last parenthesis: a command name may hold spaces and parentheses', () => {
    const stat = '99 (my (odd) cmd) R 1 99 99 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 5 1000 10 18446744073709551615';
    expect(cpuTicksOfStat(stat)).toBe(10);
  });

  it('refuses a line it cannot read', () => {
    expect(() => cpuTicksOfStat('99 (x) R 1')).toThrow(/unreadable/);
  });
});
