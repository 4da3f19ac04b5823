import { ValidationError } from './errors.js';

/** Admin names become Unix-style login names and comment lines in authorized_keys. */
export const ADMIN_NAME_RE = /^[a-z_][a-z0-9_-]{0,31}$/;

/** The cluster id is opaque to us but ends up in configs and headers, so it is kept to a safe alphabet. */
export const CLUSTER_ID_RE = /^[A-Za-z0-9._~+/=-]{8,512}$/;

/** Throws ValidationError unless `name` is an acceptable admin name. */
export function validateAdminName(name: string): string {
  if (!ADMIN_NAME_RE.test(name)) {
    throw new ValidationError(
      `invalid admin name ${JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}...` : name)}: use 1-32 of a-z 0-9 _ -, starting with a letter or _`,
    );
  }
  return name;
}

/** Throws ValidationError unless `token` is an acceptable cluster id. */
export function validateClusterId(token: string): string {
  if (!CLUSTER_ID_RE.test(token)) {
    throw new ValidationError('invalid cluster id: use 8-512 characters of A-Z a-z 0-9 . _ ~ + / = -');
  }
  return token;
}
