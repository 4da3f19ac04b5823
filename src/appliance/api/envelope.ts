/** The response shape of every CW API endpoint. */
export type Envelope<T> = { success: true; data: T } | { success: false; error: string };

export function ok<T>(data: T): { success: true; data: T } {
  return { success: true, data };
}

export function failure(error: string): { success: false; error: string } {
  return { success: false, error };
}
