// Which boot style a node uses: its `_boot_style` attribute (own, group or DefaultAttribs), else its
// boot config's `boot_style`, else rwram; and the writable layer of a read-only root (`_boot_rw_layer`).
import { BOOT_RW_LAYERS, BOOT_STYLES, type BootStyle } from '../../db/fields.js';
import type { ResolvedAttributes } from '../../db/nodes.js';

export type RwLayer = (typeof BOOT_RW_LAYERS)[number];

/** Styles the initramfs implements; the other valid names are refused until a later issue. */
export const SUPPORTED_BOOT_STYLES: readonly BootStyle[] = ['rwram', 'roram'];
export const DEFAULT_BOOT_STYLE: BootStyle = 'rwram';
export const DEFAULT_RW_LAYER: RwLayer = 'overlayfs';

export type BootStyleChoice =
  | { ok: true; style: BootStyle; rw: RwLayer; from: string }
  | { ok: false; reason: string };

/**
 * The style and writable layer of a node, or why it cannot boot that way.
 * Example: resolveBootStyle({_boot_style: {value: 'roram', from: 'node'}}, 'rwram') → {ok, style: 'roram', rw: 'overlayfs'}.
 */
export function resolveBootStyle(attributes: ResolvedAttributes, bootConfigStyle: string | null | undefined): BootStyleChoice {
  const attr = attributes._boot_style;
  const raw = attr?.value ?? bootConfigStyle ?? DEFAULT_BOOT_STYLE;
  const from = attr ? `_boot_style of ${attr.from === 'node' ? 'the node' : `group ${attr.group}`}` : bootConfigStyle ? 'the boot config' : 'the default';
  if (!(BOOT_STYLES as readonly string[]).includes(raw)) return { ok: false, reason: `unknown boot style ${printable(raw)} (from ${from})` };
  const style = raw as BootStyle;
  if (!SUPPORTED_BOOT_STYLES.includes(style)) return { ok: false, reason: `boot style ${style} is not yet supported` };
  const rwRaw = attributes._boot_rw_layer?.value ?? DEFAULT_RW_LAYER;
  if (!(BOOT_RW_LAYERS as readonly string[]).includes(rwRaw)) return { ok: false, reason: `unknown _boot_rw_layer ${printable(rwRaw)}` };
  const rw = rwRaw as RwLayer;
  if (style === 'roram' && rw === 'rwtab') return { ok: false, reason: 'boot style roram with _boot_rw_layer=rwtab is not yet supported' };
  return { ok: true, style, rw, from };
}

function printable(value: string): string {
  return JSON.stringify(value.replace(/[^\x20-\x7e]/g, '?').slice(0, 40));
}
