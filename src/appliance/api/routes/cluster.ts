import type { FastifyPluginAsync } from 'fastify';
import { parseClusterConf, renderClusterConf } from '../../../lib/clusterconf.js';
import { COLLECTIONS, objectSchema } from '../../db/collections.js';
import type { JsonSchema } from '../../db/fields.js';
import { DEFAULT_DOMAIN } from '../../../lib/validate.js';
import { validateAdminName, validateClusterId, validateDomain } from '../../db/model.js';
import type { Admin } from '../../db/store.js';
import { removeAdminAndKey } from '../../services/sshd/authorized-keys.js';
import type { StoragePaths } from '../../../lib/storage-layout.js';
import {
  DEFAULT_BACKUP_INTERVAL_S,
  DEFAULT_BACKUP_KEEP,
  MAX_BACKUP_KEEP,
  backupSettings,
  formatBackupInterval,
  parseBackupInterval,
} from '../../backup/schedule.js';
import { ok } from '../envelope.js';
import { HttpError } from '../errors.js';
import { arrayOf } from '../schemas.js';

export interface ClusterRoutesOptions {
  /** The storage directory, for sshd's authorized_keys; removing an admin answers 503 without it. */
  paths?: StoragePaths | undefined;
  /** Called after a change of the backup settings (the schedule plans again). */
  onBackupSettings?: (() => void) | undefined;
}

const clusterSchema: JsonSchema = {
  type: 'object',
  properties: {
    cluster_id: { type: 'object', properties: { set: { type: 'boolean' } }, description: 'write-only; reads say whether it is set' },
    default_distro: { type: ['string', 'null'], description: 'distro name' },
    domain: { type: 'string', description: `DNS domain of the node names (n3.DOMAIN), ${DEFAULT_DOMAIN} unless set` },
    diskful_register: { type: ['string', 'null'], description: 'attribute group that unknown diskful nodes are created in when they register; null: off' },
    backup_interval: { type: 'string', description: `time between the scheduled backups in STORAGE/backup/ (e.g. 24h, 90m, 7d; off: none), ${formatBackupInterval(DEFAULT_BACKUP_INTERVAL_S)} unless set` },
    backup_keep: { type: 'integer', description: `how many scheduled backups are kept, ${DEFAULT_BACKUP_KEEP} unless set` },
  },
};

const clusterPatch: JsonSchema = {
  type: 'object',
  properties: {
    cluster_id: { type: 'string', maxLength: 512, description: 'the cluster id token' },
    default_distro: { type: ['string', 'null'], maxLength: 128, description: 'distro name or uid; null clears' },
    domain: { type: ['string', 'null'], maxLength: 253, description: `DNS domain of the node names; null restores ${DEFAULT_DOMAIN}` },
    diskful_register: { type: ['string', 'null'], maxLength: 128, description: 'an existing attribute group: unknown diskful nodes that register are created in it (README, "Installers and registration"); null: off' },
    backup_interval: { type: ['string', 'null'], maxLength: 32, description: 'time between scheduled backups: 24h, 90m, 7d (1m .. 366d), or off; null restores the default' },
    backup_keep: { type: ['integer', 'null'], minimum: 1, maximum: MAX_BACKUP_KEEP, description: 'how many scheduled backups are kept; null restores the default' },
  },
  additionalProperties: false,
};

const confChange: JsonSchema = {
  type: 'object',
  properties: { name: { type: 'string' }, mac: { type: ['string', 'null'] }, ip: { type: 'string' } },
};

const adminSchema: JsonSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    keyType: { type: 'string' },
    fingerprint: { type: 'string' },
    comment: { type: 'string' },
    addedAt: { type: 'string', format: 'date-time' },
  },
};

const adminView = (a: Admin) => ({ name: a.name, keyType: a.keyType, fingerprint: a.fingerprint, comment: a.comment, addedAt: a.addedAt });

/** `/cluster`, `/cluster/conf`, `/admins` (`/heads` is in heads.ts). */
export const clusterRoutes: FastifyPluginAsync<ClusterRoutesOptions> = async (app, { paths, onBackupSettings }) => {
  const store = app.store;

  const clusterView = async () => {
    const distroUid = await store.getSetting('default_distro');
    const distro = distroUid === undefined ? undefined : await store.get('distros', distroUid);
    return {
      cluster_id: { set: (await store.getSetting('cluster_id')) !== undefined },
      default_distro: distro?.name ?? null,
      domain: (await store.getSetting('domain')) ?? DEFAULT_DOMAIN,
      diskful_register: (await store.getSetting('diskful_register')) ?? null,
      ...(await backupView()),
    };
  };

  const backupView = async () => {
    const { intervalS, keep } = backupSettings({ interval: await store.getSetting('backup_interval'), keep: await store.getSetting('backup_keep') });
    return { backup_interval: formatBackupInterval(intervalS), backup_keep: keep };
  };

  app.get('/cluster', { config: { summary: 'Cluster settings', tags: ['cluster'], data: clusterSchema } }, async () => ok(await clusterView()));

  app.patch(
    '/cluster',
    { schema: { body: clusterPatch }, config: { summary: 'Change cluster settings', tags: ['cluster'], data: clusterSchema } },
    async (request) => {
      const body = request.body as {
        cluster_id?: string;
        default_distro?: string | null;
        domain?: string | null;
        diskful_register?: string | null;
        backup_interval?: string | null;
        backup_keep?: number | null;
      };
      const clusterId = body.cluster_id === undefined ? undefined : validateClusterId(body.cluster_id);
      let backupInterval: number | null | undefined = body.backup_interval === null ? null : undefined;
      if (typeof body.backup_interval === 'string') {
        try {
          backupInterval = parseBackupInterval(body.backup_interval);
        } catch (err) {
          throw HttpError.badRequest(`backup_interval: ${(err as Error).message}`);
        }
      }
      const domain = typeof body.domain === 'string' ? validateDomain(body.domain) : body.domain;
      await store.transaction(async (tx) => {
        if (clusterId !== undefined) await tx.setSetting('cluster_id', clusterId);
        if (domain === null) await tx.deleteSetting('domain');
        else if (domain !== undefined && domain !== (await tx.getSetting('domain'))) await tx.setSetting('domain', domain);
        if (body.diskful_register === null) await tx.deleteSetting('diskful_register');
        else if (body.diskful_register !== undefined) {
          const group = await tx.get('attribs', body.diskful_register);
          if (!group) throw HttpError.badRequest(`diskful_register: no attribute group ${JSON.stringify(body.diskful_register)} (create it first)`);
          await tx.setSetting('diskful_register', group.name);
        }
        if (body.default_distro === null) await tx.deleteSetting('default_distro');
        else if (body.default_distro !== undefined) {
          const distro = await tx.get('distros', body.default_distro);
          if (!distro) throw HttpError.badRequest(`default_distro: no distro ${JSON.stringify(body.default_distro)}`);
          // Stored by uid, so renaming the distro keeps it the default.
          await tx.setSetting('default_distro', distro.uid);
        }
        if (backupInterval === null) await tx.deleteSetting('backup_interval');
        else if (backupInterval !== undefined) await tx.setSetting('backup_interval', String(backupInterval));
        if (body.backup_keep === null) await tx.deleteSetting('backup_keep');
        else if (body.backup_keep !== undefined) await tx.setSetting('backup_keep', String(body.backup_keep));
      });
      if (body.backup_interval !== undefined || body.backup_keep !== undefined) onBackupSettings?.();
      return ok(await clusterView());
    },
  );

  app.post(
    '/cluster/conf',
    {
      schema: {
        body: {
          type: 'object',
          properties: {
            text: { type: 'string', description: 'the cluster.conf file' },
            dryRun: { type: 'boolean', description: 'report what would change, change nothing' },
            fileName: { type: 'string', maxLength: 255, description: 'name used in messages (default cluster.conf)' },
          },
          required: ['text'],
          additionalProperties: false,
        },
      },
      config: {
        summary: 'Apply a cluster.conf (nets for its ipranges, nodes from n0 up) in one transaction',
        tags: ['cluster'],
        data: {
          type: 'object',
          properties: {
            nets: arrayOf(objectSchema(COLLECTIONS.nets)),
            created: arrayOf(confChange),
            updated: arrayOf(confChange),
            unchanged: { type: 'integer' },
            dryRun: { type: 'boolean' },
          },
        },
      },
    },
    async (request) => {
      const body = request.body as { text: string; dryRun?: boolean; fileName?: string };
      const fileName = body.fileName && /^[\x21-\x7e]{1,255}$/.test(body.fileName) ? body.fileName : 'cluster.conf';
      const conf = parseClusterConf(body.text, { fileName });
      return ok(await store.applyClusterConf(conf, { dryRun: body.dryRun === true }));
    },
  );

  app.get(
    '/cluster/conf',
    {
      config: {
        summary: 'The nets and nodes as a cluster.conf',
        tags: ['cluster'],
        data: { type: 'object', properties: { text: { type: 'string' } } },
      },
    },
    async () => {
      const model = await store.clusterConf();
      let text: string;
      try {
        text = renderClusterConf(model);
      } catch (err) {
        throw HttpError.conflict((err as Error).message);
      }
      return ok({ text });
    },
  );

  app.get('/admins', { config: { summary: 'Admins (added with add-admin)', tags: ['admins'], data: arrayOf(adminSchema) } }, async () =>
    ok((await store.listAdmins()).map(adminView)),
  );

  const adminParams = { type: 'object', properties: { name: { type: 'string', maxLength: 64 } }, required: ['name'] } as const;

  app.get(
    '/admin/:name',
    {
      schema: { params: adminParams },
      config: { summary: 'One admin', tags: ['admins'], data: adminSchema },
    },
    async (request) => {
      const { name } = request.params as { name: string };
      const admin = await store.getAdmin(name);
      if (!admin) throw HttpError.notFound(`no such admin: ${name}`);
      return ok(adminView(admin));
    },
  );

  app.delete(
    '/admin/:name',
    {
      schema: { params: adminParams },
      config: { summary: "Remove an admin (root only): its ssh key and API tokens stop working at once", tags: ['admins'], data: adminSchema },
    },
    async (request) => {
      // Admins are managed by whoever holds the root password (or the container), not by one another.
      if (request.user?.via !== 'basic' || request.user.name !== 'root') throw HttpError.forbidden('only root (basic auth with the root password) may remove admins');
      const { name } = request.params as { name: string };
      validateAdminName(name);
      if (!paths) throw new HttpError(503, 'removing admins is not available: no storage directory configured');
      const admin = await removeAdminAndKey(store, paths, name);
      if (!admin) throw HttpError.notFound(`no such admin: ${name}`);
      return ok(adminView(admin));
    },
  );
};
