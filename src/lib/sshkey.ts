import sshpk from 'sshpk';

export interface PublicKeyInfo {
  /** OpenSSH algorithm name, e.g. `ssh-ed25519`. */
  type: string;
  /** `SHA256:...` as printed by `ssh-keygen -lf`. */
  fingerprint: string;
  comment: string;
  bits: number;
  /** The normalized single line `TYPE BASE64 [COMMENT]`, safe to write to authorized_keys. */
  line: string;
}

const ALLOWED = new Set([
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
]);
const LINE_RE = /^([a-z0-9@.-]+) ([A-Za-z0-9+/]+={0,2})(?: ([\x20-\x7e]{0,200}))?$/;

/**
 * Validates one OpenSSH public key line (`ssh-ed25519 AAAA... comment`) and returns its normalized form.
 * Throws an Error with a one-line reason for anything else: options prefixes, several keys, DSA, short RSA.
 */
export function parsePublicKey(input: string): PublicKeyInfo {
  const text = input.trim();
  if (text.length === 0) throw new Error('empty ssh public key');
  // Checked before the single-line rule: a private key file spans lines, and the hint matters more.
  if (text.includes('PRIVATE KEY')) throw new Error('that is a private key; give the .pub file');
  if (/[\r\n\0]/.test(text)) throw new Error('ssh public key must be a single line');
  const m = LINE_RE.exec(text.replace(/\s+/g, ' '));
  if (!m) throw new Error('not an OpenSSH public key line ("TYPE BASE64 [COMMENT]")');
  const [, type, blob, comment = ''] = m as unknown as [string, string, string, string | undefined];
  if (type === 'ssh-dss') throw new Error('DSA keys are obsolete and refused by OpenSSH; use ssh-ed25519 or ssh-rsa');
  if (!ALLOWED.has(type)) throw new Error(`unsupported ssh key type "${type}"`);
  let key: sshpk.Key;
  try {
    key = sshpk.parseKey(`${type} ${blob}`, 'ssh');
  } catch {
    throw new Error(`invalid ${type} key data`);
  }
  const decodedType = Buffer.from(blob, 'base64').subarray(4, 4 + type.length).toString('latin1');
  if (decodedType !== type) throw new Error(`key data does not match its type "${type}"`);
  if (key.type === 'rsa' && key.size < 2048) throw new Error(`RSA key of ${key.size} bits is too short (need at least 2048)`);
  const cleanComment = comment.trim();
  return {
    type,
    fingerprint: key.fingerprint('sha256').toString(),
    comment: cleanComment,
    bits: key.size,
    line: cleanComment ? `${type} ${blob} ${cleanComment}` : `${type} ${blob}`,
  };
}
