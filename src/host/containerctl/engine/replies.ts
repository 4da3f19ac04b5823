// Pure parsers for engine replies that are not plain JSON documents.

/**
 * Splits a stream of concatenated JSON objects (newline-separated for Docker, a single object without
 * a newline for Podman) into parsed values; text that is not JSON is returned as a string.
 */
export function splitJsonObjects(text: string): unknown[] {
  const out: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  let escaped = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (ch === '\\') escaped = true;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = depth > 0;
    else if (ch === '{') {
      if (depth === 0) start = i;
      depth++;
    } else if (ch === '}' && depth > 0) {
      depth--;
      if (depth === 0) {
        const chunk = text.slice(start, i + 1);
        try {
          out.push(JSON.parse(chunk));
        } catch {
          out.push(chunk);
        }
      }
    }
  }
  return out;
}

export interface LoadReply {
  /** Names (or `sha256:` ids for untagged images) the engine reports as loaded. */
  loaded: string[];
  /** The first error the engine embedded in its 200 reply, if any. */
  error: string | undefined;
}

interface LoadMessage {
  stream?: unknown;
  error?: unknown;
  errorDetail?: { message?: unknown } | null;
}

/**
 * Reads the reply of `POST /images/load`. Docker reports failures *inside* a 200 reply
 * (`{"errorDetail":{...},"error":"..."}`), so a 200 alone does not mean success.
 * Docker: one `Loaded image: NAME:TAG` line per tag; Podman: `Loaded image: a,b` in one message.
 */
export function parseLoadReply(text: string): LoadReply {
  const loaded: string[] = [];
  let error: string | undefined;
  for (const item of splitJsonObjects(text)) {
    if (typeof item !== 'object' || item === null) continue;
    const message = item as LoadMessage;
    const detail = typeof message.errorDetail?.message === 'string' ? message.errorDetail.message : undefined;
    const failure = typeof message.error === 'string' && message.error ? message.error : detail;
    if (failure && error === undefined) error = failure;
    if (typeof message.stream !== 'string') continue;
    for (const line of message.stream.split('\n')) {
      const m = /^\s*Loaded image(?: ID)?:\s*(.+?)\s*$/.exec(line);
      if (!m) continue;
      for (const name of m[1]!.split(',')) {
        const trimmed = name.trim();
        if (trimmed && !loaded.includes(trimmed)) loaded.push(trimmed);
      }
    }
  }
  return { loaded, error };
}

export interface LogFrame {
  /** 1 = stdout, 2 = stderr. */
  stream: 1 | 2;
  data: Buffer;
}

/**
 * Splits the engine's multiplexed log format (8-byte header: stream type, 3 zero bytes, big-endian
 * length) into frames. A buffer that does not start with a valid header (a TTY container) is one
 * stdout frame.
 */
export function demuxFrames(buffer: Buffer): LogFrame[] {
  const frames: LogFrame[] = [];
  let offset = 0;
  while (offset < buffer.length) {
    const type = buffer[offset];
    if (buffer.length - offset < 8 || (type !== 0 && type !== 1 && type !== 2)) {
      frames.push({ stream: 1, data: buffer.subarray(offset) });
      break;
    }
    const length = buffer.readUInt32BE(offset + 4);
    const data = buffer.subarray(offset + 8, offset + 8 + length);
    frames.push({ stream: type === 2 ? 2 : 1, data });
    offset += 8 + length;
  }
  return frames;
}

/** The `ERROR: ...` line a failed `cw-appliance` command printed, without its prefix. */
export function errorLine(stderr: string): string | undefined {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const marked = lines.filter((l) => l.startsWith('ERROR:'));
  const chosen = marked.at(-1);
  return chosen?.slice('ERROR:'.length).trim();
}
