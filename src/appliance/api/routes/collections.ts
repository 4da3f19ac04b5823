// CRUD routes of every collection but nodes, generated from the model specs: the same field descriptors
// give the request schemas, the store's checks and the OpenAPI document.
import type { FastifyPluginAsync } from 'fastify';
import { constants } from 'node:fs';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import {
  COLLECTIONS,
  COLLECTION_NAMES,
  objectSchema,
  writeSchema,
  type BootConfig,
  type CollectionInputs,
  type CollectionName,
  type Image,
} from '../../db/collections.js';
import type { StoragePaths } from '../../../lib/storage-layout.js';
import { ok } from '../envelope.js';
import { HttpError } from '../errors.js';
import { arrayOf, idParams } from '../schemas.js';
import { bootFilePath, bootFilesDir, imageFilePath } from './uploads.js';

export interface CollectionRoutesOptions {
  /** For deleting and cloning the files of boot configs and images. */
  paths?: StoragePaths;
}

/** Collections whose objects can be cloned (a net's copy would always overlap the original). */
const CLONABLE: readonly CollectionName[] = ['attribs', 'bootconfigs', 'images', 'distros', 'repos'];

export const collectionRoutes: FastifyPluginAsync<CollectionRoutesOptions> = async (app, { paths }) => {
  const store = app.store;
  for (const kind of COLLECTION_NAMES) {
    const spec = COLLECTIONS[kind];
    const one = `/${spec.singular}/:id`;
    const shown = objectSchema(spec);
    const create = writeSchema(spec, 'create');
    const patch = writeSchema(spec, 'patch');
    const tags = [kind];
    type Input = CollectionInputs[typeof kind];

    const find = async (id: string) => {
      const found = await store.get(kind, id);
      if (!found) throw HttpError.notFound(`no such ${spec.singular}: ${id}`);
      return found;
    };

    app.get(`/${kind}`, { config: { summary: `List ${kind}`, tags, data: arrayOf(shown) } }, async () => ok(await store.list(kind)));

    app.post(
      `/${kind}`,
      { schema: { body: create }, config: { summary: `Create a ${spec.singular}`, tags, successStatus: 201, data: shown } },
      async (request, reply) => {
        const created = await store.create(kind, request.body as Input);
        reply.code(201);
        return ok(created);
      },
    );

    app.get(one, { schema: { params: idParams }, config: { summary: `One ${spec.singular} by uid or name`, tags, data: shown } }, async (request) =>
      ok(await find((request.params as { id: string }).id)),
    );

    app.put(
      one,
      { schema: { params: idParams, body: create }, config: { summary: `Replace the writable fields of a ${spec.singular}`, tags, data: shown } },
      async (request) => ok(await store.replace(kind, (request.params as { id: string }).id, request.body as Input)),
    );

    app.patch(
      one,
      {
        schema: { params: idParams, body: patch },
        config: {
          summary: `Change fields of a ${spec.singular}${spec.freezable ? ' (when frozen, only {"frozen": false})' : ''}`,
          tags,
          data: shown,
        },
      },
      async (request) => ok(await store.update(kind, (request.params as { id: string }).id, request.body as Input)),
    );

    app.delete(one, { schema: { params: idParams }, config: { summary: `Delete a ${spec.singular}`, tags, data: shown } }, async (request) => {
      const removed = await store.remove(kind, (request.params as { id: string }).id);
      if (paths && kind === 'bootconfigs') await rm(bootFilesDir(paths, removed.uid), { recursive: true, force: true });
      if (paths && kind === 'images') await rm(imageFilePath(paths, removed.uid), { force: true });
      return ok(removed);
    });

    if (CLONABLE.includes(kind)) {
      app.post(
        `${one}/clone`,
        {
          schema: { params: idParams, body: { ...patch, required: ['name'] } },
          config: {
            summary: `Copy a ${spec.singular} (and its files) under a new name; other fields in the body override`,
            tags,
            successStatus: 201,
            data: shown,
          },
        },
        async (request, reply) => {
          const source = (await find((request.params as { id: string }).id)) as unknown as Record<string, unknown>;
          const input: Record<string, unknown> = {};
          for (const [name, field] of Object.entries(spec.fields)) if (field.writable) input[name] = source[name];
          if (spec.freezable) input.frozen = false;
          Object.assign(input, request.body as Record<string, unknown>);
          let created = (await store.create(kind, input as Input)) as unknown as Record<string, unknown>;
          created = await copyFiles(kind, source, created);
          reply.code(201);
          return ok(created);
        },
      );
    }
  }

  /** Gives a clone the files of its source (copy-on-write where the filesystem can). */
  async function copyFiles(kind: CollectionName, source: Record<string, unknown>, created: Record<string, unknown>) {
    if (kind === 'bootconfigs') {
      const from = source as unknown as BootConfig;
      let result = created;
      for (const which of ['kernel', 'initramfs'] as const) {
        const file = from[which];
        if (!file) continue;
        if (!paths) throw new HttpError(503, 'cannot copy boot files: no storage directory configured');
        await mkdir(bootFilesDir(paths, created.uid as string), { recursive: true, mode: 0o755 });
        await copyFile(bootFilePath(paths, from.uid, which), bootFilePath(paths, created.uid as string, which), constants.COPYFILE_FICLONE);
        result = (await store.attachBootFile(created.uid as string, which, file, null)) as unknown as Record<string, unknown>;
      }
      return result;
    }
    if (kind === 'images') {
      const from = source as unknown as Image;
      if (!from.checksum) return created;
      if (!paths) throw new HttpError(503, 'cannot copy image content: no storage directory configured');
      await mkdir(paths.imagesDir, { recursive: true, mode: 0o755 });
      await copyFile(imageFilePath(paths, from.uid), imageFilePath(paths, created.uid as string), constants.COPYFILE_FICLONE);
      return (await store.setImageContent(created.uid as string, { size: from.size, checksum: from.checksum })) as unknown as Record<string, unknown>;
    }
    return created;
  }
};
