// The anonymous client-package downloads of diskful nodes (seed: "download" endpoint). A node installing
// itself has no credentials, like a booting one; the names are checked before any file is looked at,
// and only files of STORAGE/clientpkgs are ever read. For now: TARs, converted from the newest RPM.
import type { FastifyPluginAsync } from 'fastify';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { StoragePaths } from '../../../lib/storage-layout.js';
import { ClientPackages, PACKAGE_NAME_MAX, packageNameProblem } from '../../clientpkgs/repository.js';
import { RpmFormatError } from '../../clientpkgs/rpm/header.js';
import { RateLimiter, type RateOptions } from '../auth/limits.js';
import { sourceOf } from '../auth/index.js';
import { HttpError } from '../errors.js';

export interface ClientPkgRouteOptions {
  paths?: Pick<StoragePaths, 'clientRpmDir' | 'clientDebDir' | 'clientTarDir'> | undefined;
  /** Downloads per source: default a burst of 20, then 5 a second. */
  rate?: RateOptions;
  clock?: () => number;
  log?: (line: string) => void;
  /** Tests read the conversion count through it. */
  onPackages?: (packages: ClientPackages) => void;
}

const tags = ['install'];

const ARCHES = ['x86_64', 'aarch64', 'noarch'];

/** `/install/client/download/tar/:name` (the rpm and deb downloads will join it). */
export const clientPkgRoutes: FastifyPluginAsync<ClientPkgRouteOptions> = async (app, options) => {
  const log = options.log ?? (() => {});
  const packages = options.paths ? new ClientPackages(options.paths, log) : null;
  if (packages) options.onPackages?.(packages);
  const rate = new RateLimiter(options.rate ?? { burst: 20, perSecond: 5 }, options.clock ?? Date.now);

  app.get(
    '/install/client/download/tar/:name',
    {
      schema: {
        params: {
          type: 'object',
          properties: { name: { type: 'string', description: `package name, at most ${PACKAGE_NAME_MAX} characters` } },
          required: ['name'],
          additionalProperties: false,
        },
        querystring: {
          type: 'object',
          properties: { arch: { enum: ARCHES, description: 'only packages for this architecture (or noarch)' } },
          additionalProperties: false,
        },
      },
      config: {
        anonymous: true,
        summary:
          'The newest package NAME as a .tar.gz for the tar installer (application/gzip, not an envelope): clientpkgs/tar/NAME.tar.gz if an admin put one there, else the newest RPM NAME converted once and cached; a DEB cannot be converted (422)',
        tags,
      },
    },
    async (request, reply) => {
      const wait = rate.take(sourceOf(request));
      if (wait > 0) {
        const seconds = Math.ceil(wait / 1000);
        throw new HttpError(429, `too many downloads; try again in ${seconds} s`, { 'retry-after': String(seconds) });
      }
      const { name } = request.params as { name: string };
      const { arch } = request.query as { arch?: string };
      const problem = packageNameProblem(name);
      if (problem !== null) throw HttpError.badRequest(`package name ${JSON.stringify(name.slice(0, 40))} ${problem}`);
      if (!packages) throw new HttpError(503, 'client packages are not available: no storage directory configured');
      let tar;
      try {
        tar = await packages.tarFor(name, arch);
      } catch (err) {
        if (err instanceof RpmFormatError) {
          // The admin's RPM is broken: say which and why, without the storage path.
          const message = err.message.replace(/^.*\/([^/]+\.rpm): /, '$1: ');
          log(`TAR of ${name} not made: ${err.message}`);
          throw new HttpError(422, `cannot convert package ${name} to a TAR: ${message}`);
        }
        throw err;
      }
      if (!tar) throw HttpError.notFound(`no package ${name}${arch ? ` for ${arch}` : ''} in the head node's client packages (clientpkgs/rpm, clientpkgs/tar)`);
      const info = await stat(tar.path);
      reply
        .header('content-type', 'application/gzip')
        .header('content-length', String(info.size))
        .header('content-disposition', `attachment; filename="${basename(tar.filename).replace(/[^A-Za-z0-9._+~^-]/g, '_')}"`)
        .header('cache-control', 'no-cache');
      if (tar.rpmSha256) reply.header('etag', `"${tar.rpmSha256}"`);
      return reply.send(createReadStream(tar.path));
    },
  );
};
