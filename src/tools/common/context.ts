import { homedir } from 'node:os';
import { ApiClient, type KeyAgent, type TokenCache } from './client/api-client.js';
import { ExitError, errorMessage } from '../../lib/errors.js';
import { loadSettings, normalizeBaseUrl } from './client/settings.js';
import type { ParsedArgs } from './args.js';

/** Everything a tool takes from its process; tests pass their own. */
export interface ToolIo {
  /** Environment: `HOME`, `SSH_AUTH_SOCK`, `CW_BASE_URL`, `CW_AUTHUSER`, `USER` (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Directory relative file names are resolved from (default process.cwd()). */
  cwd?: string;
  /** Receives stdout text, complete lines with their newlines. */
  out?: (text: string) => void;
  /** Receives stderr text, complete lines with their newlines (warnings, progress). */
  err?: (text: string) => void;
  /** Token cache (default: the process-wide one). */
  tokens?: TokenCache;
  /** Key agent (default: the one at SSH_AUTH_SOCK). */
  agent?: KeyAgent;
}

export interface ToolContext {
  tool: string;
  args: ParsedArgs;
  env: NodeJS.ProcessEnv;
  cwd: string;
  home: string;
  out: (text: string) => void;
  err: (text: string) => void;
  /** The API client, created (and settings read) on first use. */
  api(): ApiClient;
  /** Closes the client if one was made. */
  close(): Promise<void>;
}

export function makeContext(tool: string, args: ParsedArgs, io: ToolIo = {}): ToolContext {
  const env = io.env ?? process.env;
  const home = env.HOME?.trim() || homedir();
  const out = io.out ?? ((text: string) => void process.stdout.write(text));
  const err = io.err ?? ((text: string) => void process.stderr.write(text));
  let client: ApiClient | undefined;
  return {
    tool,
    args,
    env,
    cwd: io.cwd ?? process.cwd(),
    home,
    out,
    err,
    api() {
      if (client) return client;
      let settings;
      try {
        settings = loadSettings({ home, env });
      } catch (e) {
        throw new ExitError(errorMessage(e));
      }
      for (const w of settings.warnings) err(`WARNING: ${w}\n`);
      let baseUrl = settings.baseUrl;
      if (args.common.baseUrl !== undefined) {
        const url = normalizeBaseUrl(args.common.baseUrl);
        if (!url.ok) throw new ExitError(`--base-url ${url.reason}`);
        baseUrl = url.value;
      }
      client = new ApiClient({
        baseUrl,
        user: settings.authUser,
        // The same precedence as loadSettings: CW_AUTHUSER replaces the file's client.authuser.
        userSetting: env.CW_AUTHUSER?.trim() ? 'CW_AUTHUSER' : `client.authuser in ${settings.path}`,
        sslVerify: settings.sslVerify,
        env,
        warn: (line) => err(`${line}\n`),
        tokens: io.tokens,
        agent: io.agent,
      });
      return client;
    },
    async close() {
      await client?.close();
    },
  };
}
