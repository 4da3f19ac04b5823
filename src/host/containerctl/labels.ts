// Labels shared by the image and the containers (see docs/ARCHITECTURE.md, "Labels").

/** On images and containers; `img-ls`, `status` and `start` find ours by it, never by name. */
export const APPLIANCE_LABEL = 'io.cw-headnode.appliance';
export const TITLE_LABEL = 'org.opencontainers.image.title';
export const VERSION_LABEL = 'org.opencontainers.image.version';
/** On containers: the absolute host path of the storage directory. */
export const STORAGE_LABEL = 'io.cw-headnode.storage';
/** On containers started with --ip: the fixed address (Podman does not report it back in inspect). */
export const FIXED_IP_LABEL = 'io.cw-headnode.ip';

export const APPLIANCE_TITLE = 'cw-headnode';
/** The container name `start` uses unless told otherwise. */
export const DEFAULT_CONTAINER_NAME = 'cw-headnode';
