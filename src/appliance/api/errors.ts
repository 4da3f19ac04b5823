import { ClusterConfError } from '../../lib/clusterconf.js';
import { BusyError, ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../db/errors.js';

/** A failure with the HTTP status the client gets; the message is sent as the envelope's `error`. */
export class HttpError extends Error {
  readonly statusCode: number;
  /** Extra response headers, e.g. `WWW-Authenticate` on a 401. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(statusCode: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'HttpError';
    this.statusCode = statusCode;
    this.headers = headers;
  }

  static badRequest(message: string): HttpError {
    return new HttpError(400, message);
  }
  static unauthorized(message = 'authentication required', headers: Record<string, string> = {}): HttpError {
    return new HttpError(401, message, headers);
  }
  static forbidden(message = 'forbidden'): HttpError {
    return new HttpError(403, message);
  }
  static notFound(message: string): HttpError {
    return new HttpError(404, message);
  }
  static conflict(message: string): HttpError {
    return new HttpError(409, message);
  }
}

/** The status and client-visible message for any thrown value; internals of unexpected errors stay hidden. */
export function httpErrorOf(err: unknown): { statusCode: number; message: string; expected: boolean } {
  if (err instanceof HttpError) return { statusCode: err.statusCode, message: err.message, expected: err.statusCode < 500 || err.statusCode === 503 };
  if (err instanceof ValidationError) return { statusCode: 400, message: err.message, expected: true };
  if (err instanceof ClusterConfError) return { statusCode: 400, message: err.message, expected: true };
  if (err instanceof ForbiddenError) return { statusCode: 403, message: err.message, expected: true };
  if (err instanceof NotFoundError) return { statusCode: 404, message: err.message, expected: true };
  if (err instanceof ConflictError) return { statusCode: 409, message: err.message, expected: true };
  if (err instanceof BusyError) return { statusCode: 503, message: err.message, expected: true };
  // Fastify's own client errors (schema validation, bad JSON, wrong content type, body too large).
  if (err instanceof Error) {
    const statusCode = (err as { statusCode?: unknown }).statusCode;
    if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
      return { statusCode, message: err.message, expected: true };
    }
  }
  return { statusCode: 500, message: 'internal server error', expected: false };
}
