// lockdep (stub: held-lock bookkeeping only; the dependency graph and its reports come next).
import type { StepEnv } from '../runtime/task.js';
import type { HeldLock, KTask, LockKind } from './context.js';
import type { Kernel } from './kernel.js';
import type { LockRef } from './lock.js';

export class Lockdep {
  private readonly classes = new Map<string, number>();

  constructor(readonly k: Kernel) {}

  classOf(name: string): number {
    let id = this.classes.get(name);
    if (id === undefined) {
      id = this.classes.size;
      this.classes.set(name, id);
    }
    return id;
  }

  acquire(t: KTask, l: LockRef, kind: LockKind): void {
    void t;
    void l;
    void kind;
  }

  acquired(t: KTask, h: HeldLock, env: StepEnv): void {
    void t;
    void h;
    void env;
  }

  badUnlock(t: KTask, name: string): void {
    void t;
    void name;
  }
}
