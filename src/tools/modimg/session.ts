// What every cw-modimg step shares: the tool context, the workspace, the arguments, how to ask and
// report, and the head node's image list (fetched once per invocation).
import { parseRemoteImage, parseRemoteImages, type RemoteImage, type Workspace } from '../../images/workspace.js';
import { ApiError } from '../common/client/api-client.js';
import type { ToolContext } from '../common/context.js';
import type { ModimgArgs } from './args.js';
import type { Reporter } from './report.js';

export interface ModimgSession {
  readonly ctx: ToolContext;
  readonly workspace: Workspace;
  readonly args: ModimgArgs;
  /** Whether questions may be asked and progress drawn in place. */
  readonly interactive: boolean;
  readonly ask: (question: string, defaultYes: boolean) => Promise<boolean>;
  readonly reporter: Reporter;
  /** Prints `cw-modimg: TEXT` (stderr). */
  say(text: string): void;
  /** The head node's images, asked for once. */
  remoteImages(): Promise<RemoteImage[]>;
  /** The head node's image `name`, or undefined when it has none. */
  remoteImage(name: string): Promise<RemoteImage | undefined>;
}

export interface SessionOptions {
  interactive: boolean;
  ask: (question: string, defaultYes: boolean) => Promise<boolean>;
  reporter: Reporter;
}

export function createSession(ctx: ToolContext, workspace: Workspace, args: ModimgArgs, opts: SessionOptions): ModimgSession {
  let remoteList: RemoteImage[] | undefined;
  return {
    ctx,
    workspace,
    args,
    interactive: opts.interactive,
    ask: opts.ask,
    reporter: opts.reporter,
    say: (text) => opts.reporter.info(`cw-modimg: ${text}`),
    async remoteImages() {
      // Checked here, where they arrive: uids and names become workspace file names.
      remoteList ??= parseRemoteImages(await ctx.api().get<unknown>('/images'), 'GET /images');
      return remoteList;
    },
    async remoteImage(name) {
      const path = `/image/${encodeURIComponent(name)}`;
      let answer: unknown;
      try {
        answer = await ctx.api().get<unknown>(path);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) return undefined;
        throw err;
      }
      return parseRemoteImage(answer, `GET ${path}`);
    },
  };
}
