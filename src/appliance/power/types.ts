// What every power plugin offers, whatever it talks to.

/**
 * Actions a plugin runs: `soft` asks the OS to shut down (ACPI), `restart` asks it to reboot (where the
 * interface has that), `cycle` is off then on, `reset` a hard reset.
 */
export const PLUGIN_ACTIONS = ['status', 'on', 'off', 'soft', 'restart', 'cycle', 'reset'] as const;
export type PowerAction = (typeof PLUGIN_ACTIONS)[number];

/** Actions the API offers: the plugin's, plus `boot` (on when off, reset when on). */
export const POWER_ACTIONS = [...PLUGIN_ACTIONS, 'boot'] as const;
export type NodePowerAction = (typeof POWER_ACTIONS)[number];

export type PowerState = 'on' | 'off';

export interface PowerPlugin {
  /** The power state. `deadlineS` is the time left, for tools with their own timeouts. */
  status(signal: AbortSignal, deadlineS: number): Promise<PowerState>;
  /** Runs an action other than status; resolves once the BMC (or hypervisor) accepted it. */
  act(action: Exclude<PowerAction, 'status'>, signal: AbortSignal, deadlineS: number): Promise<void>;
}
