import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { parseCommandArgs } from '../args.ts';
import { EXIT, PymlError } from '@pyml/errors';
import { printJson, showProgress, usage } from '../output.ts';
import { Progress } from '../progress.ts';

export const help = `Usage: pyml login REGISTRY [-u USER] [-p PASSWORD | --password-stdin] [options]

Checks a user name and password against the registry (GET /v2/, with its Basic or Bearer token flow, as docker
login does) and saves them where pyml push/pull, docker, podman and skopeo read them: through the credential
helper the Docker config names for this registry ("credHelpers") or for all ("credsStore"), with
docker-credential-NAME store; else in the config's "auths" (base64, as docker login writes it). The config is
$DOCKER_CONFIG/config.json or ~/.docker/config.json, written under a temp name (mode 0600) and renamed; its other
keys are kept. Nothing is saved when the registry refuses the credentials.

REGISTRY is HOST[:PORT] (a URL such as https://HOST/v2/ is accepted; docker.io for Docker Hub). On a terminal,
a missing user name or password is asked for (the password is not echoed).

Options:
  -u, --username USER   the user name
  -p, --password PASS   the password or token (visible in shell history and ps: prefer --password-stdin)
  --password-stdin      read the password or token from stdin (a trailing newline is dropped)
  --json                print one JSON object (schemas/login-output.schema.json)
  -h, --help            show this help

Exit codes: 0 saved; 1 the registry refused the credentials or could not be reached; 2 usage error.

Examples:
  echo "$REGISTRY_TOKEN" | pyml login registry.example.com -u ci --password-stdin
  pyml login 127.0.0.1:5000 -u alice
`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('login', {
    args, allowPositionals: true,
    options: {
      username: { type: 'string', short: 'u' }, password: { type: 'string', short: 'p' }, 'password-stdin': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) { process.stdout.write(help); return EXIT.ok; }
  if (positionals.length !== 1) throw usage(`pyml login takes one REGISTRY (HOST[:PORT]), got ${positionals.length} arguments`);
  if (values.password !== undefined && values['password-stdin']) throw usage('give the password once: --password or --password-stdin');
  const { checkCredentials, registryHost, saveCredentials } = await import('@pyml/registry');
  let registry: string;
  try {
    registry = registryHost(positionals[0]!);
  } catch (error) {
    throw usage((error as Error).message);
  }
  const progress = new Progress(showProgress({ json: values.json! }));
  const interactive = Boolean(process.stdin.isTTY) && !values['password-stdin'];
  const prompter = new Prompter();
  const username = values.username ?? (interactive ? await prompter.ask('Username: ', false) : undefined);
  if (!username) throw usage('pyml login needs a user name: --username USER');
  let password = values.password;
  if (password !== undefined) progress.warn('--password on the command line is visible in shell history and to ps; use --password-stdin');
  else if (values['password-stdin']) password = (await readStdin()).replace(/\r?\n$/, '');
  else if (interactive) password = await prompter.ask('Password: ', true);
  prompter.close();
  if (!password) throw usage('pyml login needs a password: --password-stdin (or --password PASS)');

  let check;
  try {
    progress.step(`checking the credentials of ${username} against ${registry}`);
    check = await checkCredentials(registry, { username, password, from: 'pyml login' }, (m) => progress.warn(m));
  } catch (error) {
    throw new PymlError((error as Error).message, EXIT.failure, 'check the user name and password (or token); nothing was saved');
  }
  if (check.auth === 'none') progress.warn(`${registry} asks for no credentials; saving them anyway, as docker login does`);
  let saved;
  try {
    saved = await saveCredentials(registry, username, password);
  } catch (error) {
    throw new PymlError((error as Error).message);
  }
  progress.clear();
  if (saved.kind === 'config') progress.warn(`the password is saved unencrypted in ${saved.where}; a credential helper ("credsStore" in that file) keeps it elsewhere`);
  if (values.json) {
    printJson({ ok: true, registry, username, auth: check.auth, savedIn: saved });
    return EXIT.ok;
  }
  process.stdout.write(`Login Succeeded: ${username} at ${registry} (${check.auth === 'none' ? 'no auth asked' : `${check.auth} auth`}), saved ${saved.kind === 'config' ? `in ${saved.where}` : `with ${saved.where}`}\n`);
  return EXIT.ok;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > 64 * 1024) throw usage('--password-stdin: more than 64 KiB on stdin; a password or token is expected');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Asks on the terminal (prompts on stderr), a secret without echo. One readline for every question: lines typed ahead
 * (or pasted together) are not lost between questions.
 */
class Prompter {
  private muted = false;
  private rl?: ReturnType<typeof createInterface>;

  ask(question: string, secret: boolean): Promise<string> {
    if (!this.rl) {
      const output = new Writable({
        write: (chunk: Buffer, _enc, done) => {
          if (!this.muted) process.stderr.write(chunk);
          done();
        },
      });
      this.rl = createInterface({ input: process.stdin, output, terminal: true });
    }
    const rl = this.rl;
    return new Promise((resolve) => {
      rl.question(question, (answer) => {
        this.muted = false;
        if (secret) process.stderr.write('\n');
        resolve(answer.trim());
      });
      this.muted = secret;
    });
  }

  close(): void {
    this.rl?.close();
  }
}
