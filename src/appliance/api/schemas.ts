// Request schemas shared by the route plugins; the field schemas themselves come from the model specs.
import type { JsonSchema } from '../db/fields.js';

/** `:id` of a single object: a uid or a name (nodes also a MAC or an IP). */
export const idParams: JsonSchema = {
  type: 'object',
  properties: { id: { type: 'string', minLength: 1, maxLength: 128, description: 'uid or name (nodes: also MAC or IP)' } },
  required: ['id'],
  additionalProperties: false,
};

export const arrayOf = (items: JsonSchema): JsonSchema => ({ type: 'array', items });

/** Whether a query flag like `?resolved=1` is on. */
export function flag(value: string | undefined): boolean {
  return value !== undefined && /^(1|true|yes|on|)$/i.test(value);
}
