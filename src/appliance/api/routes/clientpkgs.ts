// The anonymous client-package downloads of diskful nodes (seed: "download" endpoint). A node installing
// itself has no credentials, like a booting one; the names are checked before any file is looked at,
// and only files of STORAGE/clientpkgs are ever read: RPMs and DEBs as they are, TARs converted from the
// newest RPM. The listing of every package is for admins.
import type { FastifyPluginAsync } from 'fastify';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { StoragePaths } from '../../../lib/storage-layout.js';
import { ClientPackages, PACKAGE_NAME_MAX, packageNameProblem, type DownloadType } from '../../clientpkgs/repository.js';
import { RpmFormatError } from '../../clientpkgs/rpm/header.js';
import { RateLimiter, type RateOptions } from '../auth/limits.js';
import { sourceOf } from '../auth/index.js';
import { ok } from '../envelope.js';
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

const CONTENT_TYPES: Record<DownloadType, string> = { rpm: 'application/x-rpm', deb: 'application/vnd.debian.binary-package' };

/** A file name safe inside a quoted Content-Disposition filename. */
function dispositionName(name: string): string {
  return basename(name).replace(/[^A-Za-z0-9._+~^-]/g, '_');
}

const nameParams = {
  type: 'object',
  properties: { name: { type: 'string', description: `package name, at most ${PACKAGE_NAME_MAX} characters` } },
  required: ['name'],
  additionalProperties: false,
} as const;

const archQuery = {
  type: 'object',
  properties: { arch: { enum: ARCHES, description: 'only packages for this architecture (or noarch)' } },
  additionalProperties: false,
} as const;

/** `/install/client/download/{tar,rpm,deb}/:name` (anonymous) and `/install/client/packages` (admins). */
export const clientPkgRoutes: FastifyPluginAsync<ClientPkgRouteOptions> = async (app, options) => {
  const log = options.log ?? (() => {});
  const packages = options.paths ? new ClientPackages(options.paths, log) : null;
  if (packages) options.onPackages?.(packages);
  const rate = new RateLimiter(options.rate ?? { burst: 20, perSecond: 5 }, options.clock ?? Date.now);
  const limit = (request: Parameters<typeof sourceOf>[0]): void => {
    const wait = rate.take(sourceOf(request));
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      throw new HttpError(429, `too many downloads; try again in ${seconds} s`, { 'retry-after': String(seconds) });
    }
  };
  const checkName = (name: string): void => {
    const problem = packageNameProblem(name);
    if (problem !== null) throw HttpError.badRequest(`package name ${JSON.stringify(name.slice(0, 40))} ${problem}`);
  };
  const unavailable = () => new HttpError(503, 'client packages are not available: no storage directory configured');

  app.get(
    '/install/client/download/tar/:name',
    {
      schema: { params: nameParams, querystring: archQuery },
      config: {
        anonymous: true,
        summary:
          'The newest package NAME as a .tar.gz for the tar installer (application/gzip, not an envelope): clientpkgs/tar/NAME.tar.gz if an admin put one there, else the newest RPM NAME converted once and cached; a DEB cannot be converted (422)',
        tags,
      },
    },
    async (request, reply) => {
      limit(request);
      const { name } = request.params as { name: string };
      const { arch } = request.query as { arch?: string };
      checkName(name);
      if (!packages) throw unavailable();
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
        .header('content-disposition', `attachment; filename="${dispositionName(tar.filename)}"`)
        .header('cache-control', 'no-cache');
      if (tar.rpmSha256) reply.header('etag', `"${tar.rpmSha256}"`);
      return reply.send(createReadStream(tar.path));
    },
  );

  app.get(
    '/install/client/download/:type/:name',
    {
      schema: {
        params: {
          type: 'object',
          properties: { type: { type: 'string', description: 'rpm or deb (tar has its own route)' }, name: nameParams.properties.name },
          required: ['type', 'name'],
          additionalProperties: false,
        },
        querystring: archQuery,
      },
      config: {
        anonymous: true,
        summary:
          'The newest package NAME as it is (application/x-rpm or application/vnd.debian.binary-package, not an envelope): the newest RPM of clientpkgs/rpm by rpm\'s version order, or the newest DEB of clientpkgs/deb (NAME_VERSION_ARCH.deb) by dpkg\'s; files that are not packages are skipped; other types 404',
        tags,
      },
    },
    async (request, reply) => {
      const { type, name } = request.params as { type: string; name: string };
      const { arch } = request.query as { arch?: string };
      if (type !== 'rpm' && type !== 'deb') throw HttpError.notFound(`no package type ${JSON.stringify(type.slice(0, 20))}: rpm, deb or tar`);
      limit(request);
      checkName(name);
      if (!packages) throw unavailable();
      const found = await packages.packageFor(type, name, arch);
      if (!found) throw HttpError.notFound(`no ${type.toUpperCase()} package ${name}${arch ? ` for ${arch}` : ''} in the head node's client packages (clientpkgs/${type})`);
      const info = await stat(found.path);
      reply
        .header('content-type', CONTENT_TYPES[type])
        .header('content-length', String(info.size))
        .header('content-disposition', `attachment; filename="${dispositionName(found.filename)}"`)
        .header('cache-control', 'no-cache');
      return reply.send(createReadStream(found.path));
    },
  );

  app.get(
    '/install/client/packages',
    {
      config: {
        summary: 'Every file of clientpkgs/rpm, clientpkgs/deb and the admins\' own TARs: name, version, type, file, size, for RPMs whether the converted TAR is cached; files that are not packages flagged invalid with the reason',
        tags,
        data: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              type: { enum: ['rpm', 'deb', 'tar'] },
              file: { type: 'string' },
              size: { type: 'integer' },
              name: { type: ['string', 'null'] },
              version: { type: ['string', 'null'] },
              arch: { type: ['string', 'null'] },
              valid: { type: 'boolean' },
              problem: { type: 'string' },
              tar_cached: { type: 'boolean' },
            },
          },
        },
      },
    },
    async () => {
      if (!packages) throw unavailable();
      return ok(await packages.list());
    },
  );
};
