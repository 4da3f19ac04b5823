import { ExitError } from '../../../lib/errors.js';
import { readCertificate } from '../../services/httpd/tls.js';
import type { CommandContext } from '../context.js';

/**
 * Prints the HTTPS certificate as JSON (`{pin, subject, subjectAltName, validFrom, validTo, selfSigned, certFile}`):
 * `cw-containerctl tool-config` proposes its pin for the tools' `client.sslverify`. Never the key.
 */
export async function tlsInfo(ctx: CommandContext): Promise<void> {
  const info = await readCertificate(ctx.paths.tlsCertFile);
  if (!info) throw new ExitError(`no TLS certificate yet at ${ctx.paths.tlsCertFile} (it is made when the appliance first starts)`);
  ctx.out(JSON.stringify({ ...info, validFrom: info.validFrom.toISOString(), validTo: info.validTo.toISOString(), certFile: ctx.paths.tlsCertFile }));
}
