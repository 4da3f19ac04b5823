// What a booting NIC gets: finds the node by MAC, its boot config, kernel, initramfs and image (in the
// store and on disk) and renders its script, or a retry script saying what is missing.
import * as path from 'node:path';
import { normalizeMac } from '../../../lib/validate.js';
import type { Node } from '../../db/nodes.js';
import type { Store } from '../../db/store.js';
import { hexOfChecksum, type LocalBlobs } from '../../blobs/local.js';
import { bootstrapUrl, nodeScriptUrl, renderNodeScript, renderRetryScript, type NoSecret } from './script.js';

export interface BootFiles {
  /** `STORAGE/boot`: `<bootconfig uid>/kernel` and `/initramfs`. */
  bootDir: string;
  /** `STORAGE/images`: `<image uid>.img`. */
  imagesDir: string;
  /** `STORAGE/blobs`: the same files by content, what the scripts name. */
  blobs: LocalBlobs;
  /**
   * Whether there are other heads, which may hold a file this head lacks (nginx then sends the node to
   * one that holds it). Default: none, so a missing file is said to be missing.
   */
  elsewhere?: () => boolean;
}

/** Whether the file with `checksum` (`size` bytes, kept as `file`) is here, or may be fetched from another head. */
async function reachable(files: BootFiles, checksum: string | null, size: number, file: string): Promise<boolean> {
  const hex = hexOfChecksum(checksum);
  if (hex === null) return false;
  if (await files.blobs.adopt(hex, size, [file])) return true;
  return files.elsewhere?.() ?? false;
}

export interface PlannedScript {
  /** The iPXE script (always `#!ipxe`). */
  text: string;
  /** The node the MAC belongs to, or null for an unknown or malformed MAC. */
  node: Node | null;
  /** Why the node does not boot (the script says so and retries), or null when it boots. */
  refused: string | null;
}

/**
 * This boot's node secret for a script that boots `node`, or why it gets none (docs/BOOT.md, "Node
 * secrets"). Asked only once the script is known to boot, so a refused script never replaces a node's secret.
 */
export type SecretFor = (node: Node) => Promise<string | NoSecret>;

/**
 * The script for the NIC with `mac`, as reached at `headUrl` (`http://HEAD[:PORT]`). Reads only, apart
 * from what `secretFor` does (default: no secret).
 * Example: await planNodeScript(store, files, '52:54:00:00:00:01', 'http://10.0.0.1').
 */
export async function planNodeScript(store: Store, files: BootFiles | null, rawMac: string, headUrl: string, secretFor?: SecretFor): Promise<PlannedScript> {
  const mac = normalizeMac(rawMac);
  if (mac === null) {
    const reason = `${rawMac.slice(0, 40)} is not a MAC address`;
    return { text: renderRetryScript(reason, bootstrapUrl(headUrl)), node: null, refused: reason };
  }
  const retry = (node: Node | null, reason: string): PlannedScript => ({ text: renderRetryScript(reason, nodeScriptUrl(headUrl, mac)), node, refused: reason });

  const node = await store.getNode(mac);
  if (!node || (node.mac !== mac && !node.macs.includes(mac))) {
    return retry(null, `unknown MAC ${mac}: add the node, e.g. cw-nodectl create mac=${mac}`);
  }
  const attributes = await store.resolveAttributes(node);
  const bootName = attributes._boot_config?.value;
  if (bootName === undefined || bootName === '') {
    return retry(node, `${node.name} has no boot config: set one, e.g. cw-nodectl -i ${node.name} set _boot_config=DefaultBoot`);
  }
  const bootConfig = await store.get('bootconfigs', bootName);
  if (!bootConfig) return retry(node, `${node.name}: boot config ${bootName} does not exist`);
  const bc = `boot config ${bootConfig.name}`;
  if (!files) return retry(node, 'the head node has no storage directory for boot files');
  for (const which of ['kernel', 'initramfs'] as const) {
    const file = bootConfig[which];
    if (file === null) return retry(node, `${node.name}: ${bc} has no ${which} (cw-bootctl -i ${bootConfig.name} update ${which}=@FILE)`);
    if (!(await reachable(files, file.checksum, file.size, path.join(files.bootDir, bootConfig.uid, which)))) {
      return retry(node, `${node.name}: the ${which} file of ${bc} is missing on the head node (upload it again)`);
    }
  }
  if (bootConfig.image === null) return retry(node, `${node.name}: ${bc} has no image (cw-bootctl -i ${bootConfig.name} update image=NAME)`);
  const image = await store.get('images', bootConfig.image);
  if (!image) return retry(node, `${node.name}: image ${bootConfig.image} of ${bc} does not exist`);
  if (image.checksum === null) return retry(node, `${node.name}: image ${image.name} has no content yet (upload it, e.g. cw-modimg -i ${image.name} --upload)`);
  if (!(await reachable(files, image.checksum, image.size, path.join(files.imagesDir, `${image.uid}.img`)))) {
    return retry(node, `${node.name}: the file of image ${image.name} is missing on the head node (upload it again)`);
  }
  const input = { node, resolvedAttributes: attributes, bootConfig, image, headUrl, mac };
  const script = renderNodeScript(input);
  if (script.refused !== null || !secretFor) return { text: script.text, node, refused: script.refused };
  const secret = await secretFor(node);
  if (secret === 'elsewhere') return { text: script.text, node, refused: null };
  const withSecret = renderNodeScript(secret === 'unstored' ? { ...input, noSecret: secret } : { ...input, secret });
  return { text: withSecret.text, node, refused: withSecret.refused };
}
