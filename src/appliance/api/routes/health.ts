import type { FastifyPluginAsync } from 'fastify';
import { ok } from '../envelope.js';
import type { SupervisorHealth, SupervisorHealthReport } from '../supervisor-client.js';

export interface HealthRoutesOptions {
  supervisorHealth: SupervisorHealth;
  log: (line: string) => void;
}

/** `GET /health`: the supervisor's view of every service; 200 only when healthy. */
export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, { supervisorHealth, log }) => {
  app.get('/health', { config: { anonymous: true, summary: 'Health of every service (200 only when healthy)', tags: ['meta'] } }, async (_request, reply) => {
    let report: SupervisorHealthReport;
    try {
      report = await supervisorHealth();
    } catch (err) {
      log(`health: ${err instanceof Error ? err.message : String(err)}`);
      report = { status: 'unknown', services: {} };
    }
    reply.code(report.status === 'healthy' ? 200 : 503);
    return ok(report);
  });
};
