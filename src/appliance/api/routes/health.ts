import type { FastifyPluginAsync } from 'fastify';
import { ok } from '../envelope.js';
import type { SupervisorHealth, SupervisorHealthReport } from '../supervisor-client.js';

export interface HealthRoutesOptions {
  supervisorHealth: SupervisorHealth;
  log: (line: string) => void;
}

/**
 * `GET /health`: 200 only when healthy. Anyone gets the overall status; an admin (token or root basic
 * auth) also gets the supervisor's view of every service (pids, restarts, exit codes), which says too
 * much about the head node to hand to any host on the cluster network.
 */
export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, { supervisorHealth, log }) => {
  app.get('/health', { config: { anonymous: true, credentialsOptional: true, summary: 'Health: the status for anyone, every service for admins (200 only when healthy)', tags: ['meta'] } }, async (request, reply) => {
    let report: SupervisorHealthReport;
    try {
      report = await supervisorHealth();
    } catch (err) {
      log(`health: ${err instanceof Error ? err.message : String(err)}`);
      report = { status: 'unknown', services: {} };
    }
    reply.code(report.status === 'healthy' ? 200 : 503);
    return ok(request.user ? report : { status: report.status });
  });
};
