import Fastify, { type FastifyInstance } from 'fastify';
import type { Store } from '../db/store.js';
import { failure } from './envelope.js';
import { httpErrorOf } from './errors.js';
import { packageInfo } from './package-info.js';
import { healthRoutes } from './routes/health.js';
import { versionRoutes } from './routes/version.js';
import type { SupervisorHealth } from './supervisor-client.js';

export const API_PREFIX = '/api/v1';

export interface ApiOptions {
  store: Store;
  supervisorHealth: SupervisorHealth;
  /** Defaults to the version in package.json. */
  version?: string;
  /** One line per request and per unexpected error; silent by default (tests). */
  log?: (line: string) => void;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The cluster store, for route plugins. */
    store: Store;
  }
}

/**
 * The CW API as a Fastify app, not yet listening: `main.ts` binds it to the unix socket and tests call
 * `app.inject()`. Example: `const app = buildApi({ store, supervisorHealth }); await app.inject('/api/v1/version')`.
 */
export function buildApi(options: ApiOptions): FastifyInstance {
  const log = options.log ?? (() => {});
  const app = Fastify({ logger: false, return503OnClosing: true });
  app.decorate('store', options.store);

  app.addHook('onResponse', async (request, reply) => {
    log(`${request.method} ${request.url} ${reply.statusCode} ${reply.elapsedTime.toFixed(1)}ms`);
  });

  app.setNotFoundHandler(async (request, reply) => {
    reply.code(404);
    return failure(`no such endpoint: ${request.method} ${request.url.split('?')[0]}`);
  });

  app.setErrorHandler(async (err, request, reply) => {
    const { statusCode, message, expected } = httpErrorOf(err);
    if (!expected) log(`${request.method} ${request.url} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    reply.code(statusCode);
    return failure(message);
  });

  const version = options.version ?? packageInfo().version;
  app.register(
    async (v1) => {
      await v1.register(healthRoutes, { supervisorHealth: options.supervisorHealth, log });
      await v1.register(versionRoutes, { version });
    },
    { prefix: API_PREFIX },
  );
  return app;
}
