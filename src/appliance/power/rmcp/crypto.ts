// The cryptography of cipher suite 3 (IPMI 2.0 spec §13.28–13.29): RAKP-HMAC-SHA1 authentication,
// HMAC-SHA1-96 integrity, AES-CBC-128 confidentiality. Every formula here is the spec's, over node:crypto.
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** IPMI 2.0 keys (passwords) are at most 20 bytes; user names at most 16. */
export const MAX_PASSWORD_BYTES = 20;
export const MAX_USER_BYTES = 16;

/** HMAC-SHA1 of the concatenated parts. */
export function hmacSha1(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const mac = createHmac('sha1', key);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

/** K_UID: the password's UTF-8 bytes, zero-padded to 20. Throws for a longer one (parsePowerTarget refuses those first). */
export function userKey(password: string): Buffer {
  const bytes = Buffer.from(password, 'utf8');
  if (bytes.length > MAX_PASSWORD_BYTES) throw new Error(`an IPMI password has at most ${MAX_PASSWORD_BYTES} bytes`);
  const key = Buffer.alloc(MAX_PASSWORD_BYTES);
  bytes.copy(key);
  return key;
}

/** Little-endian 32-bit, as session ids travel. */
export function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0);
  return b;
}

/** What both sides know after RAKP message 2, for the authentication codes and keys. */
export interface RakpExchange {
  /** Remote console (our) session id, SID_M. */
  consoleSessionId: number;
  /** Managed system (the BMC's) session id, SID_C. */
  bmcSessionId: number;
  /** Our random number R_M (16 bytes). */
  consoleRandom: Buffer;
  /** The BMC's random number R_C (16 bytes). */
  bmcRandom: Buffer;
  /** The BMC's GUID (16 bytes). */
  bmcGuid: Buffer;
  /** The role byte of RAKP 1: privilege level and the name-only lookup bit. */
  role: number;
  /** The user name as sent. */
  user: Buffer;
}

const nameParts = (x: RakpExchange): Buffer[] => [Buffer.from([x.role, x.user.length]), x.user];

/** RAKP 2's key exchange authentication code: HMAC_KUID(SID_M | SID_C | R_M | R_C | GUID_C | ROLE_M | ULENGTH_M | UNAME_M). */
export function rakp2Code(kuid: Buffer, x: RakpExchange): Buffer {
  return hmacSha1(kuid, u32(x.consoleSessionId), u32(x.bmcSessionId), x.consoleRandom, x.bmcRandom, x.bmcGuid, ...nameParts(x));
}

/** RAKP 3's key exchange authentication code: HMAC_KUID(R_C | SID_M | ROLE_M | ULENGTH_M | UNAME_M). */
export function rakp3Code(kuid: Buffer, x: RakpExchange): Buffer {
  return hmacSha1(kuid, x.bmcRandom, u32(x.consoleSessionId), ...nameParts(x));
}

/** The session integrity key SIK = HMAC_KG(R_M | R_C | ROLE_M | ULENGTH_M | UNAME_M); K_G is K_UID when the BMC has no K_G. */
export function sessionIntegrityKey(kg: Buffer, x: RakpExchange): Buffer {
  return hmacSha1(kg, x.consoleRandom, x.bmcRandom, ...nameParts(x));
}

/** RAKP 4's integrity check value: HMAC_SIK(R_M | SID_C | GUID_C), first 12 bytes (HMAC-SHA1-96). */
export function rakp4Check(sik: Buffer, x: RakpExchange): Buffer {
  return hmacSha1(sik, x.consoleRandom, u32(x.bmcSessionId), x.bmcGuid).subarray(0, 12);
}

/** The keys of an established session. */
export interface SessionKeys {
  /** K1 = HMAC_SIK(0x01 × 20): the integrity key. */
  k1: Buffer;
  /** The first 16 bytes of K2 = HMAC_SIK(0x02 × 20): the AES key. */
  aesKey: Buffer;
}

export function sessionKeys(sik: Buffer): SessionKeys {
  return {
    k1: hmacSha1(sik, Buffer.alloc(20, 0x01)),
    aesKey: hmacSha1(sik, Buffer.alloc(20, 0x02)).subarray(0, 16),
  };
}

/** Whether two codes are equal, in constant time. */
export function sameCode(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** HMAC-SHA1-96: the first 12 bytes of HMAC_K1(covered). */
export function authCode(k1: Buffer, covered: Uint8Array): Buffer {
  return hmacSha1(k1, covered).subarray(0, 12);
}

/**
 * AES-CBC-128 payload: a fresh 16-byte IV, then the ciphertext of the payload followed by the
 * confidentiality pad 1, 2, 3, … and its length, so that the plaintext fills whole blocks.
 */
export function encryptPayload(aesKey: Buffer, payload: Uint8Array, iv: Buffer = randomBytes(16)): Buffer {
  const padLength = (16 - ((payload.length + 1) % 16)) % 16;
  const pad = Array.from({ length: padLength }, (_, i) => i + 1);
  const plain = Buffer.concat([payload, Buffer.from([...pad, padLength])]);
  const cipher = createCipheriv('aes-128-cbc', aesKey, iv).setAutoPadding(false);
  return Buffer.concat([iv, cipher.update(plain), cipher.final()]);
}

/** The payload inside an AES-CBC-128 payload, or undefined when its length or pad is not valid. */
export function decryptPayload(aesKey: Buffer, data: Uint8Array): Buffer | undefined {
  if (data.length < 32 || data.length % 16 !== 0) return undefined;
  const decipher = createDecipheriv('aes-128-cbc', aesKey, data.subarray(0, 16)).setAutoPadding(false);
  const plain = Buffer.concat([decipher.update(data.subarray(16)), decipher.final()]);
  const padLength = plain[plain.length - 1]!;
  if (padLength > 15 || padLength + 1 > plain.length) return undefined;
  const end = plain.length - 1 - padLength;
  for (let i = 0; i < padLength; i++) if (plain[end + i] !== i + 1) return undefined;
  return plain.subarray(0, end);
}
