// How a command ends with a given exit status after it has printed what it had to say.
export class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}
