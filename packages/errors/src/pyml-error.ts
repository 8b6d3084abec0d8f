import { EXIT } from './exit-codes.ts';

/** An error meant for the user: the message says what, where, and what to do (the hint). */
export class PymlError extends Error {
  constructor(message: string, readonly exitCode: number = EXIT.failure, readonly hint?: string) {
    super(message);
    this.name = new.target.name;
  }
}
