import { readFileSync } from 'node:fs';

/** USER_HZ: the unit of /proc/PID/stat's CPU times (100 on every Linux build Node supports). */
const CLOCK_TICKS = 100;

/**
 * CPU seconds (user + system) process `pid` has used so far, from /proc (Linux, 10 ms resolution); undefined
 * elsewhere, or once the process is gone.
 */
export function processCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined || process.platform !== 'linux') return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After the command name (which may hold spaces), utime and stime are the 12th and 13th fields.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** CPU seconds this process has used so far: every thread's, DuckDB's included. */
export function ownCpuSeconds(): number {
  const used = process.cpuUsage();
  return (used.user + used.system) / 1e6;
}
