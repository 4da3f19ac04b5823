import type { ChildServiceSpec, ServiceSpec } from '../supervisor/types.js';
import { apiService } from './api/index.js';
import type { ServiceContext } from './context.js';
import { dhcpdService } from './dhcpd/index.js';
import { dnsService } from './dns/index.js';
import { etcdService } from './etcd/index.js';
import { httpdService } from './httpd/index.js';
import { sshdService } from './sshd/index.js';
import { createSyslogSink } from './syslog/index.js';
import { tftpdService } from './tftpd/index.js';

export interface ServiceTableOptions {
  /** Test hook (CW_FAIL_SERVICE): this service's command becomes `/bin/false`, so it must end FATAL. */
  failService?: string | null;
}

/** The appliance's services, in the order ARCHITECTURE.md lists them. */
export function buildServiceTable(ctx: ServiceContext, options: ServiceTableOptions = {}): ServiceSpec[] {
  const syslog = createSyslogSink({
    socketPath: ctx.paths.syslogSocket,
    accessLogFifo: ctx.paths.accessLogFifo,
    write: (source, line) => ctx.log(source, line),
  });
  const api = apiService(ctx);
  const table: ServiceSpec[] = [
    syslog.spec,
    // The cluster database's member on this head comes first: the API opens the store on it.
    ...(ctx.etcdMember ? [etcdService(ctx, ctx.etcdMember)] : []),
    ctx.etcdMember ? { ...api, dependsOn: [...api.dependsOn, 'etcd'] } : api,
    httpdService(ctx, syslog.accessLogPath),
    tftpdService(ctx),
    dhcpdService(ctx),
    dnsService(ctx),
    sshdService(ctx),
  ];
  const fail = options.failService;
  if (!fail) return table;
  if (!table.some((s) => s.name === fail)) {
    ctx.log('supervisor', `CW_FAIL_SERVICE=${fail} names no service; ignored`);
    return table;
  }
  ctx.log('supervisor', `test hook CW_FAIL_SERVICE: ${fail} will always fail`);
  return table.map((spec): ServiceSpec => {
    if (spec.name !== fail) return spec;
    if (spec.kind === 'internal') {
      return { ...spec, start: () => Promise.reject(new Error('failing on purpose (CW_FAIL_SERVICE)')) };
    }
    // No prepare: a precondition (dhcpd without network) must not turn the failure into a wait.
    const failing: ChildServiceSpec = { ...spec, command: () => ({ command: '/bin/false', args: [], env: ctx.baseEnv }) };
    delete failing.prepare;
    return failing;
  });
}
