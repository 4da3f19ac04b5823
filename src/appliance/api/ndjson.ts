// Streamed answers of the bulk routes (`POST /nodes/power`, `/nodes/exec`, `/nodes/reboot`,
// `/nodes/shutdown`): a client that sends `Accept: application/x-ndjson` gets one JSON line per node as
// its result arrives, then a summary line `{"done":true,"count":N,"failed":["n7"]}`. Any other Accept
// gets the usual envelope once every node has answered.
//
// Blank lines are keep-alives: one is sent at once (so the headers leave before the first node has
// answered) and then after every KEEPALIVE_MS without a line, so that nginx's read timeout and the
// client's body timeout measure silence of the head node, not the length of the whole run. Clients
// skip blank lines.
//
// A client that goes away frees the stream, nothing more: the nodes' work goes on to its end and is
// logged by the route as always (a power off half-sent is worse than one finished unread).
import { PassThrough } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { JsonSchema } from '../db/fields.js';
import { ok } from './envelope.js';

export const NDJSON = 'application/x-ndjson';
/** Longest silence on a stream before a keep-alive line. */
export const KEEPALIVE_MS = 20_000;

/** Whether the request asks for a stream: `Accept: application/x-ndjson` (alone or listed). */
export function wantsNdjson(request: FastifyRequest): boolean {
  const accept = request.headers.accept;
  if (typeof accept !== 'string') return false;
  return accept.split(',').some((part) => part.split(';')[0]?.trim().toLowerCase() === NDJSON);
}

/** The last line of a stream. `error` only when the run itself failed (not a node). */
export interface StreamSummary {
  done: true;
  count: number;
  failed: string[];
  error?: string;
}

/** The OpenAPI description of a stream of `item` lines ending with the summary. */
export function ndjsonSchema(item: JsonSchema): JsonSchema {
  return {
    description: 'one line per node as it answers, then {"done": true, "count": N, "failed": [names]}; blank lines are keep-alives',
    oneOf: [
      item,
      {
        type: 'object',
        properties: { done: { const: true }, count: { type: 'integer' }, failed: { type: 'array', items: { type: 'string' } }, error: { type: 'string' } },
        required: ['done', 'count', 'failed'],
      },
    ],
  };
}

/** Writes lines to one streamed answer; writes after the client has gone are dropped. */
export interface LineSink {
  line(value: unknown): void;
  end(summary: StreamSummary): void;
}

/**
 * Starts a streamed answer on `reply` and gives the sink to write it with. Example:
 * `const sink = startNdjson(reply); sink.line({ name: 'n3', ok: true }); sink.end({ done: true, count: 1, failed: [] })`.
 */
export function startNdjson(reply: FastifyReply, keepaliveMs = KEEPALIVE_MS): LineSink {
  const stream = new PassThrough();
  let last = Date.now();
  const write = (text: string) => {
    if (stream.destroyed || stream.writableEnded) return;
    last = Date.now();
    stream.write(text);
  };
  const timer = setInterval(() => {
    if (Date.now() - last >= keepaliveMs) write('\n');
  }, Math.max(10, Math.floor(keepaliveMs / 2)));
  timer.unref();
  stream.once('close', () => clearInterval(timer));
  write('\n');
  void reply
    .code(200)
    .header('content-type', `${NDJSON}; charset=utf-8`)
    .header('cache-control', 'no-store')
    // nginx passes the lines on as they come (the API's location has proxy_buffering off as well).
    .header('x-accel-buffering', 'no')
    .send(stream);
  return {
    line: (value) => write(`${JSON.stringify(value)}\n`),
    end: (summary) => {
      write(`${JSON.stringify(summary)}\n`);
      clearInterval(timer);
      if (!stream.destroyed) stream.end();
    },
  };
}

/**
 * The answer of a bulk route: streamed when asked for (each result as `run` reports it), else the
 * envelope of all results in node order. `after` sees every result once the run is over, in both
 * cases, even when the client of a stream has gone (the route's log line).
 */
export async function perNodeAnswer<R extends { name: string; ok: boolean }>(
  request: FastifyRequest,
  reply: FastifyReply,
  run: (onResult?: (result: R) => void) => Promise<R[]>,
  after: (results: R[]) => void,
): Promise<unknown> {
  if (!wantsNdjson(request)) {
    const results = await run();
    after(results);
    return ok(results);
  }
  const sink = startNdjson(reply);
  try {
    const results = await run((result) => sink.line(result));
    after(results);
    sink.end({ done: true, count: results.length, failed: results.filter((r) => !r.ok).map((r) => r.name) });
  } catch (err) {
    sink.end({ done: true, count: 0, failed: [], error: (err instanceof Error ? err.message : String(err)).replace(/[\r\n]+/g, ' ') });
  }
  return reply;
}
