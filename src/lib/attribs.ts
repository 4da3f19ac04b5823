// Names of the cluster model both the head node and the admin tools rely on.

/** The name of the global default attribute group: every node inherits from it. */
export const DEFAULT_ATTRIBS = 'DefaultAttribs';
