import { isValidAdminName, isValidDomain } from '../../lib/validate.js';
import { ValidationError } from './errors.js';

/** The cluster id is opaque to us but ends up in configs and headers, so it is kept to a safe alphabet. */
export const CLUSTER_ID_RE = /^[A-Za-z0-9._~+/=-]{8,512}$/;

/** Throws ValidationError unless `name` is an acceptable admin name. */
export function validateAdminName(name: string): string {
  const check = isValidAdminName(name);
  if (check !== true) throw new ValidationError(`invalid admin name ${JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}...` : name)}: ${check}`);
  return name;
}

/** Throws ValidationError unless `token` is an acceptable cluster id. */
export function validateClusterId(token: string): string {
  if (!CLUSTER_ID_RE.test(token)) {
    throw new ValidationError('invalid cluster id: use 8-512 characters of A-Z a-z 0-9 . _ ~ + / = -');
  }
  return token;
}

/** Throws ValidationError unless `domain` is an acceptable cluster DNS domain (see isValidDomain). */
export function validateDomain(domain: string): string {
  const check = isValidDomain(domain);
  if (check !== true) throw new ValidationError(`invalid domain ${JSON.stringify(domain.length > 40 ? `${domain.slice(0, 40)}...` : domain)}: ${check}`);
  return domain;
}
