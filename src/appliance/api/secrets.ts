// Secrets in API answers: power URIs carry BMC passwords. Every answer shows them masked
// (`ipmi:///admin:********@10.1.15.1`), wherever they appear (a node's power_uri, a `_power_uri`
// attribute of a node or a group, a resolved attribute); only root, asking with the header
// `X-CW-Show-Secrets: 1`, gets them as stored.
import type { FastifyInstance } from 'fastify';
import { redactPowerUri } from '../power/uri.js';
import { HttpError } from './errors.js';

/** The request header with which root asks for secrets. */
export const SHOW_SECRETS_HEADER = 'x-cw-show-secrets';

/** Keys whose string values are power URIs. */
const SECRET_KEYS = new Set(['power_uri', '_power_uri']);
/** Deep enough for `{data: [{attributes: {_power_uri: {value}}}]}`, shallow enough to stay cheap. */
const MAX_DEPTH = 6;

/**
 * A copy of `value` with every power URI masked; parts without one are shared, not copied.
 * Example: `redactSecrets({ power_uri: 'ipmi:///a:pw@h' })` is `{ power_uri: 'ipmi:///a:********@h' }`.
 */
export function redactSecrets<T>(value: T, depth = 0): T {
  if (depth > MAX_DEPTH || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    value.forEach((item, i) => {
      const shown = redactSecrets(item, depth + 1);
      if (shown !== item) (copy ??= [...value])[i] = shown;
    });
    return (copy ?? value) as T;
  }
  let copy: Record<string, unknown> | undefined;
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    let shown: unknown;
    if (SECRET_KEYS.has(key) && typeof item === 'string') shown = redactPowerUri(item);
    else if (key === '_power_uri' && item !== null && typeof item === 'object' && typeof (item as { value?: unknown }).value === 'string') {
      // A resolved attribute: {value, from, group}.
      shown = { ...(item as object), value: redactPowerUri((item as { value: string }).value) };
    } else shown = redactSecrets(item, depth + 1);
    if (shown !== item) (copy ??= { ...(value as Record<string, unknown>) })[key] = shown;
  }
  return (copy ?? value) as T;
}

/** Whether `header` asks for secrets (`1`, `true`, `yes`). */
function asksForSecrets(header: unknown): boolean {
  return typeof header === 'string' && /^(1|true|yes)$/i.test(header.trim());
}

/**
 * Masks the power URIs of every answer, unless root (root password, HTTP basic) asked for them with
 * `X-CW-Show-Secrets: 1`; an admin asking for them is refused with 403.
 */
export function installSecretMasking(app: FastifyInstance): void {
  app.addHook('preHandler', async (request) => {
    if (!asksForSecrets(request.headers[SHOW_SECRETS_HEADER])) return;
    const user = request.user;
    if (!user || user.name !== 'root' || user.via !== 'basic') {
      throw HttpError.forbidden(`only root (with the root password) may see secrets; send no ${SHOW_SECRETS_HEADER} header`);
    }
  });
  app.addHook('preSerialization', async (request, _reply, payload) => {
    const user = request.user;
    if (user?.name === 'root' && user.via === 'basic' && asksForSecrets(request.headers[SHOW_SECRETS_HEADER])) return payload;
    return redactSecrets(payload);
  });
}
