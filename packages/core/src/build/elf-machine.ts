import { open } from 'node:fs/promises';
import { BuildError } from '../errors.ts';
import type { Platform } from '../types.ts';

/** ELF e_machine values of the architectures pyml builds for. */
const MACHINE: Record<Platform['architecture'], number> = { amd64: 62, arm64: 183 };
const NAMES: Record<number, string> = { 3: 'x86 (32-bit)', 40: 'arm (32-bit)', 62: 'amd64 (x86-64)', 183: 'arm64 (aarch64)', 243: 'riscv' };

/** The ELF machine of a file, or undefined when it is not an ELF file. */
export async function elfMachine(file: string): Promise<number | undefined> {
  const handle = await open(file, 'r');
  try {
    const header = Buffer.alloc(20);
    const { bytesRead } = await handle.read(header, 0, 20, 0);
    if (bytesRead < 20 || header.readUInt32BE(0) !== 0x7f454c46) return undefined;
    return header[5] === 2 ? header.readUInt16BE(18) : header.readUInt16LE(18);
  } finally {
    await handle.close();
  }
}

/** Refuses an ELF file built for another machine than the platform's: an arm64 image holds arm64 binaries only. */
export async function checkElfMachine(file: string, architecture: Platform['architecture'], what: string): Promise<void> {
  const machine = await elfMachine(file);
  if (machine === undefined || machine === MACHINE[architecture]) return;
  throw new BuildError(`${what} is an ELF file for ${NAMES[machine] ?? `machine ${machine}`}, but the image is for linux/${architecture}`,
    `a linux/${architecture} image carries ${architecture} binaries only: take the dependency's ${architecture} build`);
}
