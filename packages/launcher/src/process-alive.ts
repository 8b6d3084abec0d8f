/** Whether a process with this id exists on this host (EPERM: it does, as another user's): how leftovers of killed runs are told from live ones. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
