/**
 * Reading values the server sent, defensively: a field an older server (or an old stored event) lacks reads as
 * the fallback rather than as `undefined` in the panel.
 */
export const str = (value: unknown, fallback = ''): string => (typeof value === 'string' ? value : fallback);

export const num = (value: unknown, fallback = 0): number => (typeof value === 'number' && isFinite(value) ? value : fallback);

export const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));
