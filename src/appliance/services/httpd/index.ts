import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import { tcpProbe } from '../../supervisor/probes.js';
import type { ChildServiceSpec } from '../../supervisor/types.js';
import { DAEMON_RESTART, type ServiceContext } from '../context.js';
import { installConfig } from '../../config/files.js';
import { tail } from '../run.js';
import { absPath, integer, oneOf, port, renderTemplateFile } from '../../config/template.js';
import { ensureCertificate } from './tls.js';

export function nginxConfPath(ctx: ServiceContext): string {
  return path.join(ctx.paths.generatedDir, 'nginx.conf');
}

/**
 * nginx.conf: boot files at /boot/, images at /images/, both by content at /blobs/, the CW API proxied at /api/, on the HTTP port
 * and, with the certificate of `tls/`, on the HTTPS port. The access log goes to the supervisor's FIFO
 * (shown as `[httpd] ...`; only root may open it), or nowhere without one.
 */
export async function renderNginxConf(ctx: ServiceContext, accessLogFifo: string | null, workers = 2): Promise<string> {
  const accessLog = accessLogFifo === null ? oneOf('off', ['off']) : absPath(accessLogFifo);
  const { text } = await renderTemplateFile('nginx.conf.template', ctx.paths.templates, {
    access_log: accessLog,
    http_port: port(ctx.ports.http),
    https_port: port(ctx.ports.https),
    tls_certificate: absPath(ctx.paths.tlsCertFile),
    tls_certificate_key: absPath(ctx.paths.tlsKeyFile),
    worker_processes: integer(workers, 1, 64),
    boot_dir: absPath(ctx.paths.bootDir),
    images_dir: absPath(ctx.paths.imagesDir),
    blobs_dir: absPath(ctx.paths.blobsDir),
    api_socket: absPath(ctx.paths.apiSocket),
    run_dir: absPath(ctx.paths.runDir),
  });
  return text;
}

/**
 * nginx in the foreground; SIGHUP re-reads a re-rendered config without dropping connections.
 * It starts after the API (which it proxies) and the syslog sink (which takes its access log).
 */
export function httpdService(ctx: ServiceContext, accessLogFifo: () => string | null = () => null): ChildServiceSpec {
  const config = nginxConfPath(ctx);
  return {
    kind: 'child',
    name: 'httpd',
    dependsOn: ['api', 'syslog'],
    essential: true,
    async prepare() {
      await mkdir(path.join(ctx.paths.runDir, 'nginx'), { recursive: true, mode: 0o755 });
      const fifo = accessLogFifo();
      if (fifo === null) ctx.log('httpd', 'no FIFO for the access log; access logging is off');
      const tls = await ensureCertificate(ctx);
      const until = tls.info.validTo.toISOString().slice(0, 10);
      if (tls.generated) ctx.log('httpd', `made a self-signed TLS certificate (valid until ${until}) for ${tls.info.subjectAltName}`);
      ctx.log('httpd', `HTTPS on port ${ctx.ports.https} with certificate ${tls.info.pin} (cw-containerctl tool-config prints the tools' settings)`);
      if (tls.info.validTo.getTime() < Date.now()) ctx.log('httpd', `WARNING: the TLS certificate expired on ${until}; tools that check it against a CA (client.sslverify = a file) will refuse it`);
      const text = await renderNginxConf(ctx, fifo);
      // An override of the template from before boot files were served by content would leave every
      // node's boot script pointing at URLs this nginx does not answer.
      if (!text.includes(ctx.paths.blobsDir)) {
        ctx.log('httpd', 'WARNING: nginx.conf serves no /blobs/ (an nginx.conf.template override older than it?): nodes cannot load their kernels; copy the /blobs/ locations from the built-in template');
      }
      const result = await installConfig(config, text, async (candidate) => {
        const check = await ctx.run(ctx.bins.nginx, ['-t', '-q', '-e', 'stderr', '-c', candidate]);
        if (check.exitCode !== 0) throw new Error(tail(check.output, 5) || `nginx -t exited with ${check.exitCode}`);
      });
      if (result.refused) ctx.log('httpd', `new nginx.conf rejected, keeping the last good one: ${result.refused}`);
    },
    command: () => ({
      command: ctx.bins.nginx,
      args: ['-e', 'stderr', '-c', config, '-g', 'daemon off;'],
      env: ctx.baseEnv,
    }),
    readiness: { probe: tcpProbe(ctx.ports.http), intervalMs: 100, timeoutMs: 10_000 },
    restart: DAEMON_RESTART,
    reload: { kind: 'signal', signal: 'SIGHUP' },
    stopDeadlineMs: 2500,
  };
}
