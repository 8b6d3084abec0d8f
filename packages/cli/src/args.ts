import { parseArgs, type ParseArgsConfig } from 'node:util';
import { didYouMean } from '@pyml/errors';
import { usage } from './output.ts';

/**
 * Node's parseArgs, strict, with its errors said in pyml's voice: an unknown option names the closest one the
 * command has (`unknown option --ot for pyml build; did you mean --out?`), a missing or unwanted value says
 * which. The report adds `see pyml COMMAND --help`.
 */
export function parseCommandArgs<T extends ParseArgsConfig>(command: string, config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs<T>({ strict: true, ...config });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (!code?.startsWith('ERR_PARSE_ARGS')) throw error;
    throw usage(parserMessage(command, code, (error as Error).message, config));
  }
}

function flags(config: ParseArgsConfig): string[] {
  const out: string[] = [];
  for (const [name, o] of Object.entries(config.options ?? {})) {
    out.push(`--${name}`);
    if (o.short) out.push(`-${o.short}`);
  }
  return out;
}

function parserMessage(command: string, code: string, message: string, config: ParseArgsConfig): string {
  // Node names an option with a short form as '-h, --help'.
  const option = /'(?:-\w, )?(--?[^' <=,]+)/.exec(message)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option) {
    const suggestion = didYouMean(option.replace(/^-+/, ''), Object.keys(config.options ?? {}), (w) => `--${w}`);
    return `unknown option ${option} for pyml ${command}${suggestion ? `; ${suggestion}` : ''}`
      + (suggestion ? '' : ` (a value starting with '-' goes after '--': pyml ${command} -- ${option})`);
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option) {
    if (/does not take an argument/.test(message)) return `${option} takes no value`;
    if (/ambiguous/.test(message)) return `${option} needs a value, but the next argument is an option (write ${option}=VALUE if the value starts with '-')`;
    if (/argument missing/.test(message)) return `${option} needs a value`;
  }
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') return `pyml ${command} takes no arguments besides its options`;
  // Another parser complaint: its first sentence, without Node's advice about '--'.
  return `${message.split(/\.\s|\n/)[0]!.replace(/^Unknown option/, 'unknown option')} (options of pyml ${command}: ${flags(config).join(', ')})`;
}
