import Fastify, { type FastifyInstance, type FastifySchemaValidationError } from 'fastify';
import { hostname } from 'node:os';
import type { Store } from '../db/store.js';
import type { StoragePaths } from '../../lib/storage-layout.js';
import { AuthState, authRoutes, installAuthHook, type AuthOptions } from './auth/index.js';
import { failure } from './envelope.js';
import { HttpError, httpErrorOf } from './errors.js';
import { RouteCatalog } from './openapi.js';
import { installSecretMasking } from './secrets.js';
import { packageInfo } from './package-info.js';
import { bootRoutes, type BootRouteOptions } from './routes/boot.js';
import { clientPkgRoutes, type ClientPkgRouteOptions } from './routes/clientpkgs.js';
import { installerRoutes, type InstallerRouteOptions } from './routes/clientpkgs.js';
import { clusterRoutes } from './routes/cluster.js';
import { headRoutes } from './routes/heads.js';
import type { Heads } from '../heads/heads.js';
import { collectionRoutes } from './routes/collections.js';
import { healthRoutes } from './routes/health.js';
import { nodeRoutes } from './routes/nodes.js';
import { consoleRoutes, type ConsoleRouteOptions } from './routes/console.js';
import { execRoutes, type ExecRouteOptions } from './routes/exec.js';
import { powerRoutes, type PowerRouteOptions } from './routes/power.js';
import { uploadRoutes } from './routes/uploads.js';
import { versionRoutes } from './routes/version.js';
import type { SupervisorHealth } from './supervisor-client.js';

export const API_PREFIX = '/api/v1';

/** Requests that take longer than this are logged even without the access log. */
export const SLOW_REQUEST_MS = 1000;

/** Whether a finished request is worth a line without the access log: server errors, refused credentials, slow answers. */
export function isNotableRequest(statusCode: number, elapsedMs: number): boolean {
  return statusCode >= 500 || statusCode === 401 || statusCode === 403 || statusCode === 429 || elapsedMs >= SLOW_REQUEST_MS;
}

/** Largest JSON body: a 100,000-node bulk create or a 4 MiB cluster.conf fits with room to spare. */
export const JSON_BODY_LIMIT = 64 * 1024 * 1024;

export interface ApiOptions {
  store: Store;
  supervisorHealth: SupervisorHealth;
  /** Defaults to the version in package.json. */
  version?: string;
  /** Lines about unexpected errors and notable requests; silent by default (tests). */
  log?: (line: string) => void;
  /**
   * Log every request (`CW_API_ACCESS_LOG=1`). Off by default: at thousands of requests a second the
   * lines are noise and cost CPU twice (here and in the supervisor); server errors, refused credentials
   * and requests slower than SLOW_REQUEST_MS are always logged.
   */
  accessLog?: boolean;
  /** Milliseconds since the epoch; tokens and challenges expire by it (default Date.now). */
  clock?: () => number;
  auth?: AuthOptions;
  /**
   * Called after each committed change that may affect dhcpd.conf (node MACs/IPs/indexes, nets).
   * Bursts are the hook's business: the real one coalesces reloads.
   */
  onDhcpChange?: () => void;
  /**
   * Called after every successful change request (POST, PUT, PATCH, DELETE answered below 400): things
   * that follow more of the model than DHCP does (the console log workers) look again.
   */
  onChange?: () => void;
  /** After a change of the backup settings (`PATCH /cluster`): the schedule plans again. */
  onBackupSettings?: () => void;
  /** The storage directory, for uploads (boot files, image content); uploads answer 503 without it. */
  paths?: StoragePaths;
  /** This head node's name in `GET /heads` (default: the host name; its etcd member's name with etcd). */
  headName?: string;
  /** The etcd members (`/heads`), when the database is etcd. */
  heads?: Heads;
  /** Boot files and images copied among several heads: a node asking for one this head lacks is redirected. */
  blobs?: BootRouteOptions['blobs'];
  /** Largest upload in bytes (default 512 MiB). */
  uploadLimitBytes?: number;
  /** How power actions run (tests: fake programs or plugins); the storage's ssh/ holds the appliance key. */
  power?: Omit<PowerRouteOptions, 'paths'>;
  /** How exec, reboot and shutdown reach nodes (tests: a fake ssh, another sshd port). */
  exec?: Omit<ExecRouteOptions, 'paths'>;
  /** The console routes' sshd port and follow interval. */
  console?: Omit<ConsoleRouteOptions, 'paths'>;
  /** The client-package downloads' rate limit (tests: a hook to see the conversions). */
  clientPkgs?: Omit<ClientPkgRouteOptions, 'paths'>;
  installers?: Omit<InstallerRouteOptions, 'paths'>;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The cluster store, for route plugins. */
    store: Store;
  }
}

/** `body has unknown field "x"`, `body/mac must be string`: Fastify's form, naming unknown fields too. */
function formatSchemaErrors(errors: FastifySchemaValidationError[], dataVar: string): Error {
  const first = errors[0];
  if (!first) return new Error(`${dataVar} is invalid`);
  const at = `${dataVar}${first.instancePath}`;
  const params = first.params as Record<string, unknown>;
  if (first.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') {
    return new Error(`${at} has unknown field ${JSON.stringify(params.additionalProperty)}`);
  }
  if (first.keyword === 'type') {
    const types = Array.isArray(params.type) ? params.type : String(params.type).split(',');
    return new Error(`${at} must be ${types.map((t) => (t === 'null' ? 'null' : `${/^[aeiou]/.test(String(t)) ? 'an' : 'a'} ${String(t)}`)).join(' or ')}`);
  }
  if (first.keyword === 'enum' && Array.isArray(params.allowedValues)) {
    return new Error(`${at} must be one of ${params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}`);
  }
  return new Error(`${at} ${first.message ?? 'is invalid'}`);
}

/**
 * The CW API as a Fastify app, not yet listening: `main.ts` binds it to the unix socket and tests call
 * `app.inject()`. Example: `const app = buildApi({ store, supervisorHealth }); await app.inject('/api/v1/version')`.
 */
export function buildApi(options: ApiOptions): FastifyInstance {
  const log = options.log ?? (() => {});
  const clock = options.clock ?? Date.now;
  const app = Fastify({
    logger: false,
    return503OnClosing: true,
    bodyLimit: JSON_BODY_LIMIT,
    // Unknown fields are refused (not silently dropped), and values are taken as sent (no coercion).
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
    schemaErrorFormatter: formatSchemaErrors,
  });
  app.decorate('store', options.store);
  const catalog = new RouteCatalog(app);
  const auth = new AuthState(options.store, clock, options.auth);
  installAuthHook(app, auth);
  installSecretMasking(app);

  if (options.onDhcpChange) {
    const hook = options.onDhcpChange;
    const unsubscribe = options.store.onCommit((change) => {
      if (!change.dhcp) return;
      try {
        hook();
      } catch (err) {
        log(`DHCP change notification failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
    app.addHook('onClose', async () => unsubscribe());
  }

  if (options.onChange) {
    const hook = options.onChange;
    app.addHook('onResponse', async (request, reply) => {
      if (request.method === 'GET' || request.method === 'HEAD' || request.method === 'OPTIONS' || reply.statusCode >= 400) return;
      try {
        hook();
      } catch (err) {
        log(`change notification failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
  }

  const accessLog = options.accessLog ?? false;
  app.addHook('onResponse', async (request, reply) => {
    const ms = reply.elapsedTime;
    // Routes that log their own refusals (rate limited, e.g. forged node reports) are not logged twice.
    const ownRefusal = request.routeOptions.config.logsOwnRefusals === true && (reply.statusCode === 401 || reply.statusCode === 403);
    if (accessLog || (isNotableRequest(reply.statusCode, ms) && !ownRefusal)) log(`${request.method} ${request.url} ${reply.statusCode} ${ms.toFixed(1)}ms`);
  });

  app.setNotFoundHandler(async (request, reply) => {
    reply.code(404);
    return failure(`no such endpoint: ${request.method} ${request.url.split('?')[0]}`);
  });

  app.setErrorHandler(async (err, request, reply) => {
    const { statusCode, message, expected } = httpErrorOf(err);
    if (!expected) log(`${request.method} ${request.url} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    if (err instanceof HttpError) reply.headers(err.headers);
    reply.code(statusCode);
    return failure(message);
  });

  const version = options.version ?? packageInfo().version;
  app.register(
    async (v1) => {
      await v1.register(healthRoutes, { supervisorHealth: options.supervisorHealth, log });
      await v1.register(versionRoutes, { version });
      await v1.register(authRoutes, { state: auth });
      await v1.register(nodeRoutes, { clock });
      await v1.register(powerRoutes, { log, ...options.power, paths: options.paths });
      await v1.register(execRoutes, { log, clock, ...options.exec, paths: options.paths });
      await v1.register(consoleRoutes, { ...options.console, paths: options.paths });
      await v1.register(collectionRoutes, { paths: options.paths });
      await v1.register(clusterRoutes, { paths: options.paths, onBackupSettings: options.onBackupSettings });
      await v1.register(headRoutes, { version, headName: options.headName ?? hostname(), heads: options.heads, log });
      await v1.register(uploadRoutes, { paths: options.paths, clock, limit: options.uploadLimitBytes });
      // Anonymous: booting nodes have no credentials (docs/BOOT.md).
      await v1.register(bootRoutes, { paths: options.paths, clock, log, blobs: options.blobs });
      // Anonymous too: diskful nodes installing themselves have no credentials either.
      await v1.register(clientPkgRoutes, { clock, log, ...options.clientPkgs, paths: options.paths });
      await v1.register(installerRoutes, { clock, log, ...options.installers, paths: options.paths });
      v1.get(
        '/openapi.json',
        { config: { anonymous: true, summary: 'This document (the document itself, not in an envelope)', tags: ['meta'] } },
        async () => catalog.document({ title: 'CW API', version, prefix: API_PREFIX }),
      );
    },
    { prefix: API_PREFIX },
  );
  return app;
}
