/** Base of the failures a store reports on purpose; the API maps each kind to an HTTP status. */
export class StoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The object (or a unique field of it) already exists. */
export class ConflictError extends StoreError {}

/** The object does not exist. */
export class NotFoundError extends StoreError {}

/** A value breaks an invariant of the model (e.g. a name that could break a generated config). */
export class ValidationError extends StoreError {}

/** The database is locked by another writer for longer than the busy timeout; retrying later may work. */
export class BusyError extends StoreError {}

/** The object refuses the change as it stands (e.g. a frozen boot config or image). */
export class ForbiddenError extends StoreError {}
