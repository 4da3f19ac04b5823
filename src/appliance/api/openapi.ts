// The OpenAPI document is built from the routes as Fastify registers them: the same body, params and
// query schemas that validate requests, plus the documentation each route carries in its config.
import type { FastifyInstance, RouteOptions } from 'fastify';
import type { JsonSchema } from '../db/fields.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** One line for the OpenAPI document. */
    summary?: string;
    tags?: readonly string[];
    /** Schema of the envelope's `data` on success. */
    data?: JsonSchema;
    /** Status of a success (default 200). */
    successStatus?: number;
    /** The body is raw bytes (application/octet-stream), not JSON. */
    rawBody?: boolean;
    /** Schema of each line when the answer is streamed (`Accept: application/x-ndjson`). */
    ndjson?: JsonSchema;
  }
}

interface CatalogEntry {
  method: string;
  url: string;
  schema: Record<string, unknown>;
  config: {
    summary?: string;
    tags?: readonly string[];
    data?: JsonSchema;
    successStatus?: number;
    rawBody?: boolean;
    ndjson?: JsonSchema;
    anonymous?: boolean;
  };
}

/** Collects every route registered on `app` from now on; `document()` renders them. */
export class RouteCatalog {
  readonly #entries: CatalogEntry[] = [];

  constructor(app: FastifyInstance) {
    app.addHook('onRoute', (route: RouteOptions) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      for (const method of methods) {
        if (method === 'HEAD') continue;
        this.#entries.push({
          method: method.toLowerCase(),
          url: route.url,
          schema: (route.schema ?? {}) as Record<string, unknown>,
          config: (route.config ?? {}) as CatalogEntry['config'],
        });
      }
    });
  }

  /** An OpenAPI 3.1 document of the collected routes under `prefix`. */
  document(info: { title: string; version: string; prefix: string }): Record<string, unknown> {
    const paths: Record<string, Record<string, unknown>> = {};
    for (const entry of this.#entries) {
      if (!entry.url.startsWith(info.prefix)) continue;
      const path = entry.url.slice(info.prefix.length).replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}') || '/';
      (paths[path] ??= {})[entry.method] = operation(entry);
    }
    return {
      openapi: '3.1.0',
      info: {
        title: info.title,
        version: info.version,
        description:
          'Every response is {"success": true, "data": ...} or {"success": false, "error": "one line"}. ' +
          'Objects are addressed by uid or name; nodes also by MAC or IP.',
      },
      servers: [{ url: info.prefix }],
      security: [{ bearer: [] }, { rootBasic: [] }],
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'token from POST /auth/token' },
          rootBasic: { type: 'http', scheme: 'basic', description: 'root and the root password' },
        },
        schemas: { Error: errorSchema },
      },
      paths: Object.fromEntries(Object.entries(paths).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    };
  }
}

const errorSchema: JsonSchema = {
  type: 'object',
  properties: { success: { const: false }, error: { type: 'string' } },
  required: ['success', 'error'],
};

function operation(entry: CatalogEntry): Record<string, unknown> {
  const { schema, config } = entry;
  const op: Record<string, unknown> = {};
  if (config.summary) op.summary = config.summary;
  if (config.tags) op.tags = [...config.tags];
  const parameters = [...parametersOf(schema.params, 'path'), ...parametersOf(schema.querystring, 'query')];
  if (parameters.length > 0) op.parameters = parameters;
  if (config.rawBody) {
    op.requestBody = { required: true, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } };
  } else if (schema.body) {
    op.requestBody = { required: true, content: { 'application/json': { schema: schema.body } } };
  }
  const status = String(config.successStatus ?? 200);
  const data = config.data ?? {};
  const errorResponse = { content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
  op.responses = {
    [status]: {
      description: 'success',
      content: {
        'application/json': {
          schema: { type: 'object', properties: { success: { const: true }, data }, required: ['success', 'data'] },
        },
        ...(config.ndjson ? { 'application/x-ndjson': { schema: config.ndjson } } : {}),
      },
    },
    default: { description: 'failure (400 validation, 401, 403, 404, 409, 413, 429, 503)', ...errorResponse },
  };
  if (config.anonymous) op.security = [];
  return op;
}

function parametersOf(schema: unknown, where: 'path' | 'query'): Array<Record<string, unknown>> {
  if (!schema || typeof schema !== 'object') return [];
  const s = schema as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(s.properties ?? {}).map(([name, p]) => ({
    name,
    in: where,
    required: where === 'path' || (s.required ?? []).includes(name),
    ...(typeof p.description === 'string' ? { description: p.description } : {}),
    schema: p,
  }));
}
