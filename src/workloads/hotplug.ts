// The `hp` actor (hotplug-steps.ts): pciehp removing a device from its slot, as a scripted kernel thread (comm
// `hpN`) on the one script engine, next to the processes and drivers of the sva and domains presets. A surprise
// removal pulls the device out (the device's actor aborts its DMA in flight and forgets its outstanding page
// requests — src/hw/pci/device.ts) and, once the device is gone, runs pciehp_unconfigure_device without presence
// (src/hw/pci/pci.ts: pci_dev_set_disconnected, then pci_stop_and_remove_bus_device); an orderly one runs it with
// the device present — the driver's remove stops the driver's kernel threads and its queues and disables the
// device before the IOMMU core releases it — and then powers the slot off.
import type { Boot } from '../hw/boot.js';
import type { PciDevice } from '../hw/pci/device.js';
import type { PciBus } from '../hw/pci/pci.js';
import type { KTask } from '../kernel/context.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import type { HotplugOp } from './hotplug-steps.js';
import type { ScriptActor, ScriptRunner, StepOutcome } from './script.js';

export interface HotplugEnv {
  readonly k: Kernel;
  readonly bus: PciBus;
  readonly devices: readonly PciDevice[];
  /** pciehp is probed by kernel_init: the actor starts once it is done. */
  readonly boot: Boot;
}

/** One `unplug` step of an hp actor; what it did, for the trace. */
export function* hotplugStep(env: HotplugEnv, t: KTask, st: HotplugOp): KGen<string> {
  const { k, bus } = env;
  const d = env.devices[st.dev];
  if (!d) throw new Error(`hp: no device ${st.dev}`);
  const name = d.info.name;
  const was = yield* k.step(t, `pciehp: ${name}'s slot`, () => bus.removed(d.info));
  if (st.surprise) {
    // The card leaves the slot: the link goes down at once, whatever the kernel is doing with it.
    yield* k.step(t, `${name} pulled out of its slot`, (e) => e.send(d.info.actor, { type: 'unplug' }));
    yield k.point(t, `pciehp_ist: wait for ${name}'s presence detect change`, () => d.unplugged, () => undefined, { what: `${name} to leave its slot` });
    yield* bus.unconfigure(t, d.info, false);
  } else {
    yield* bus.unconfigure(t, d.info, true);
    yield* k.step(t, `pciehp_power_off_slot(${name})`, (e) => e.send(d.info.actor, { type: 'unplug' }));
  }
  return `${st.surprise ? 'surprise' : 'orderly'} removal of ${name}${was ? ' (already removed)' : ''}`;
}

/** The hp actors of a script (names `hp/N`). */
export function hotplugActors<Op extends { readonly op: string }>(actors: readonly ScriptActor<Op>[]): ScriptActor<Op>[] {
  return actors.filter((a) => a.name.startsWith('hp/'));
}

/**
 * Declare the hp actors' task kind (`hotplug_actor`, a kernel thread) on a script's runner, where actor `i` of the
 * runner is `first + j` for the j-th hp actor; returns their initial tasks.
 */
export function defineHotplugActors<Op extends { readonly op: string }>(
  env: HotplugEnv,
  runner: ScriptRunner<Op | HotplugOp>,
  actors: readonly ScriptActor<Op | HotplugOp>[],
  first: number,
  other: (t: KTask, st: Op) => KGen<StepOutcome>,
): { task: string; args: number; name: string }[] {
  if (actors.length === 0) return [];
  env.k.task('hotplug_actor', 'kthread', function* (t, args) {
    const a = args as number;
    yield* env.boot.wait(t);
    yield* runner.run(t, a, (t2, st) => (st.op === 'unplug' ? hotplugStep(env, t2, st as HotplugOp) : other(t2, st as Op)));
  });
  return actors.map((a, j) => ({ task: 'hotplug_actor', args: first + j, name: a.comm }));
}
