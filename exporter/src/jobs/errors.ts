/**
 * What can go wrong with a job request, by kind; the API maps kinds to HTTP codes (api.ts), other
 * callers (the `run` command, discovery) to their own reactions.
 */
export type JobErrorKind = 'invalid' | 'not_found' | 'conflict' | 'cap';

export class JobError extends Error {
  constructor(
    readonly kind: JobErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'JobError';
  }
}
