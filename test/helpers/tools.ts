import { execFileSync } from 'node:child_process';

/** Fails with a clear message when a tool the tests need is missing (scripts/setup.sh installs them). */
export function requireTool(name: string, debianPackage = name): void {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
  } catch {
    throw new Error(`the tests need '${name}' (Debian package ${debianPackage}); run 'npm run setup' or apt-get install ${debianPackage}`);
  }
}
