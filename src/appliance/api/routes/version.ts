import type { FastifyPluginAsync } from 'fastify';
import { ok } from '../envelope.js';

export interface VersionInfo {
  name: string;
  version: string;
  api: 'v1';
  node: string;
}

export interface VersionRoutesOptions {
  version: string;
}

/** `GET /version`: what is running; also the supervisor's readiness probe for the API. */
export const versionRoutes: FastifyPluginAsync<VersionRoutesOptions> = async (app, { version }) => {
  const info: VersionInfo = { name: 'cw-headnode', version, api: 'v1', node: process.version };
  app.get(
    '/version',
    {
      config: {
        anonymous: true,
        summary: 'What is running',
        tags: ['meta'],
        data: {
          type: 'object',
          properties: { name: { type: 'string' }, version: { type: 'string' }, api: { const: 'v1' }, node: { type: 'string' } },
        },
      },
    },
    async () => ok(info),
  );
};
