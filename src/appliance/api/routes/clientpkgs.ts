// The anonymous client-package downloads of diskful nodes (seed: "download" endpoint). A node installing
// itself has no credentials, like a booting one; the names are checked before any file is looked at,
// and only files of STORAGE/clientpkgs are ever read: RPMs and DEBs as they are, TARs converted from the
// newest RPM. The listing of every package is for admins.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
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
// Installers and registration (the block at the end).
import { headUrlOf } from '../../boot/ipxe/script.js';
import { hashNodeSecret, newNodeSecret } from '../../boot/node-secret.js';
import { normalizeMac } from '../../../lib/validate.js';
import { clientAddress } from './boot.js';
import { isIP } from 'node:net';
import type { Node } from '../../db/nodes.js';
import { ConflictError, ValidationError } from '../../db/errors.js';
import {
  ARCHES as INSTALLER_ARCHES,
  findInstaller,
  InstallerError,
  OSES,
  PKGS,
  platformOfDetected,
  platformOfQuery,
  type Detected,
  type Installer,
  type Platform,
} from '../../clientpkgs/installers.js';

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
          'The newest package NAME as it is (application/x-rpm or application/vnd.debian.binary-package, not an envelope): the newest RPM of clientpkgs/rpm by rpm\'s version order, or the newest DEB of clientpkgs/deb (Package, Version and Architecture from its control file) by dpkg\'s; files that are not packages are skipped; other types 404',
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

// --- Installers and registration of diskful nodes (README, "Installers and registration") -----------

export interface InstallerRouteOptions {
  /** STORAGE/clientpkgs/installers: an admin's installers, which come before the shipped ones. */
  paths?: Pick<StoragePaths, 'clientInstallersDir'> | undefined;
  /** Where the shipped installers are (default: the package's rootfs/clientpkgs/installers). */
  shippedDir?: string;
  /** Installer requests per source: default a burst of 20, then 2 a second. */
  rate?: RateOptions;
  /** Registrations per source: default a burst of 5, then one a minute. */
  registerRate?: RateOptions;
  /** New nodes created by registration, from all sources together: default a burst of 10, then one every 10 s. */
  createRate?: RateOptions;
  /** At most this many nodes in the registration group (default 256): past it, no new node is created. */
  createCap?: number;
  clock?: () => number;
  log?: (line: string) => void;
}

/** The pre-installer's report is a few hundred bytes. */
const DETECTED_BODY_LIMIT = 4096;

const WORD = '^[A-Za-z0-9._-]{1,64}$';

const detectedBody = {
  type: 'object',
  description: 'what the pre-installer found; a feature it could not determine is "unknown" or left out',
  properties: {
    arch: { type: 'string', pattern: WORD, description: 'uname -m' },
    os_id: { type: 'string', pattern: WORD, description: '/etc/os-release ID' },
    os_like: { type: 'string', pattern: '^[A-Za-z0-9._ -]{0,200}$', description: '/etc/os-release ID_LIKE' },
    tools: { type: 'array', maxItems: 8, uniqueItems: true, items: { enum: ['rpm', 'dnf', 'yum', 'dpkg', 'apt-get'] } },
    init: { enum: ['systemd', 'other', 'unknown'] },
  },
  additionalProperties: false,
};

const registerBody = {
  type: 'object',
  properties: { mac: { type: 'string', minLength: 1, maxLength: 64, description: 'MAC of the interface that reaches the head node' } },
  required: ['mac'],
  additionalProperties: false,
};

function sendInstaller(reply: FastifyReply, installer: Installer): FastifyReply {
  return reply
    .header('content-type', 'text/x-shellscript; charset=utf-8')
    .header('content-disposition', `inline; filename="${installer.name}"`)
    .header('x-cw-installer', `${installer.origin}/${installer.name}`)
    .header('cache-control', 'no-store')
    .send(installer.text);
}

/** `/install/client/installer` (GET, POST) and `/install/client/register`. */
export const installerRoutes: FastifyPluginAsync<InstallerRouteOptions> = async (app, options) => {
  const store = app.store;
  const clock = options.clock ?? Date.now;
  const log = options.log ?? (() => {});
  const rate = new RateLimiter(options.rate ?? { burst: 20, perSecond: 2 }, clock);
  const registerRate = new RateLimiter(options.registerRate ?? { burst: 5, perSecond: 1 / 60 }, clock);
  const createRate = new RateLimiter(options.createRate ?? { burst: 10, perSecond: 0.1 }, clock);
  const createCap = options.createCap ?? 256;

  /** A new node for an unknown MAC, if the admin turned registration on (README, "Installers and registration"). */
  const createRegistered = async (mac: string, source: string): Promise<Node> => {
    const group = await store.getSetting('diskful_register');
    if (group === undefined) {
      log(`registration refused: no node with MAC ${mac} (from ${source}); creating nodes is off`);
      throw HttpError.notFound(`no node with MAC ${mac}: an admin adds it first (cw-nodectl add), with the address it has`);
    }
    if (isIP(source) !== 4) throw HttpError.forbidden(`a new node registers only from an IPv4 address, not ${source}`);
    const wait = createRate.take('all');
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      log(`registration of ${mac} from ${source} refused: too many new nodes at once`);
      throw new HttpError(429, `too many new nodes at once; try again in ${seconds} s`, { 'retry-after': String(seconds) });
    }
    const members = (await store.listNodes()).filter((n) => n.groups.includes(group)).length;
    if (members >= createCap) {
      log(`registration of ${mac} from ${source} refused: group ${group} has ${members} nodes, the cap`);
      throw HttpError.forbidden(`no more nodes are created by registration: group ${group} has reached ${createCap} nodes`);
    }
    try {
      const node = await store.createNode({ mac, ip: source, groups: [group] });
      log(`diskful node ${node.name} (${mac}, ${source}) created by registration in group ${group}`);
      return node;
    } catch (err) {
      if (!(err instanceof ValidationError || err instanceof ConflictError)) throw err;
      log(`registration of ${mac} from ${source} refused: ${err.message}`);
      throw HttpError.forbidden(`cannot create a node for ${mac} at ${source}: ${err.message}`);
    }
  };
  const dirs = { adminDir: options.paths?.clientInstallersDir, ...(options.shippedDir ? { shippedDir: options.shippedDir } : {}) };

  const limit = (limiter: RateLimiter, request: FastifyRequest, what: string): void => {
    const wait = limiter.take(sourceOf(request));
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      throw new HttpError(429, `too many ${what}; try again in ${seconds} s`, { 'retry-after': String(seconds) });
    }
  };

  const serve = async (request: FastifyRequest, reply: FastifyReply, platform: Platform | null): Promise<FastifyReply> => {
    const head = headUrlOf(request.headers.host);
    if (head === null) throw HttpError.badRequest('the request had no usable Host header: cannot tell the installer where the head node is');
    let installer;
    try {
      installer = await findInstaller(platform, head, dirs);
    } catch (err) {
      if (!(err instanceof InstallerError)) throw err;
      log(`installer not served: ${err.message}`);
      throw new HttpError(500, `the head node's installer is unusable: ${err.message}`);
    }
    if (!installer) throw HttpError.notFound(`no installer for ${JSON.stringify(platform ?? {})} in clientpkgs/installers`);
    return sendInstaller(reply, installer);
  };

  const installerQuery = {
    type: 'object',
    properties: {
      arch: { type: 'string', description: `${INSTALLER_ARCHES.join(', ')} or unknown` },
      os: { type: 'string', description: `${OSES.join(', ')} or unknown` },
      pkg: { type: 'string', description: `${PKGS.join(', ')} or unknown` },
    },
    additionalProperties: false,
  };

  app.get(
    '/install/client/installer',
    {
      schema: { querystring: installerQuery },
      config: {
        anonymous: true,
        summary:
          'Without a query: the pre-installer. With arch, os, pkg: the most specific installer there is (text/x-shellscript, not an envelope), the head URL filled in',
        tags,
      },
    },
    async (request, reply) => {
      limit(rate, request, 'installer requests');
      const query = request.query as Record<string, unknown>;
      if (Object.keys(query).length === 0) return serve(request, reply, null);
      let platform;
      try {
        platform = platformOfQuery(query);
      } catch (err) {
        if (err instanceof InstallerError) throw HttpError.badRequest(err.message);
        throw err;
      }
      return serve(request, reply, platform);
    },
  );

  app.post(
    '/install/client/installer',
    {
      bodyLimit: DETECTED_BODY_LIMIT,
      schema: { body: detectedBody },
      config: {
        anonymous: true,
        summary: 'The pre-installer posts what it detected (JSON) and receives its installer (text/x-shellscript, not an envelope)',
        tags,
      },
    },
    async (request, reply) => {
      limit(rate, request, 'installer requests');
      return serve(request, reply, platformOfDetected((request.body ?? {}) as Detected));
    },
  );

  app.post(
    '/install/client/register',
    {
      bodyLimit: DETECTED_BODY_LIMIT,
      schema: { body: registerBody },
      config: {
        anonymous: true,
        logsOwnRefusals: true,
        summary:
          'An installed diskful node asks for its node secret: only a node in the database with this MAC, asking from its own assigned address, gets a fresh one (the previous stops working)',
        tags,
        data: { type: 'object', properties: { name: { type: 'string' }, secret: { type: 'string' } } },
      },
    },
    async (request, reply) => {
      limit(registerRate, request, 'registrations');
      const { mac: raw } = request.body as { mac: string };
      const mac = normalizeMac(raw);
      if (mac === null) throw HttpError.badRequest(`mac: invalid MAC ${JSON.stringify(raw.slice(0, 40))}: expected six hex pairs like 52:54:00:00:00:01`);
      const source = clientAddress(request);
      const known = await store.getNode(mac);
      const node = known && (known.mac === mac || known.macs.includes(mac)) ? known : await createRegistered(mac, source);
      if (node.ip === null || node.ip !== source) {
        log(`registration of ${node.name} refused: asked from ${source}, its address is ${node.ip ?? 'not set'}`);
        throw HttpError.forbidden(`node ${node.name} registers only from its own address ${node.ip ?? '(none set: an admin sets one)'}`);
      }
      const secret = newNodeSecret();
      await store.setNodeSecretHash(node.uid, hashNodeSecret(secret), new Date(clock()));
      log(`diskful node ${node.name} (${mac}) registered from ${source}: new node secret`);
      reply.header('cache-control', 'no-store');
      return ok({ name: node.name, secret });
    },
  );
};
