// The list schedule behind scripts/contention.mjs's estimate: a run's steps, in the order one deterministic
// schedule performed them, placed on n workers as a greedy scheduler would run them — each worker, at each unit
// of time, runs the lowest-numbered of its steps whose predecessors have all ended. A step's predecessors:
//   - the previous step of its thread (an actor's or a task's program order);
//   - the step that sent the message it handles;
//   - through the words of its footprint: a word's last writer, and for a write also the readers since — in the
//     order the schedule accessed them, as the threaded runtime's locks and its recording keep it;
//   - a step on the coarse fallback (fp null) follows every step since the previous fallback, and every later
//     step follows it.
// Every step lasts one unit; the makespan is the number of units. Unlike a replay of the recorded order worker by
// worker, a worker does not wait for one of its steps while another of them is ready: the estimate is what the
// dependencies allow, not what one interleaving did.

/**
 * steps[i] = { thread, fp, sendStep } (fp: the footprint entries the runtime orders by, or null for the fallback;
 * sendStep: the index of the step that sent the message step i handles, or -1). workerOf(i): its worker.
 */
export function listSchedule(steps, n, workerOf, { isRead, wordOf }) {
  const N = steps.length;
  const preds = predecessors(steps, isRead, wordOf);
  const indeg = new Int32Array(N);
  const succ = Array.from({ length: N }, () => []);
  preds.forEach((ps, i) => {
    const distinct = new Set(ps.map(([p]) => p));
    distinct.delete(i);
    indeg[i] = distinct.size;
    for (const p of distinct) succ[p].push(i);
  });
  const heaps = Array.from({ length: n }, () => new MinHeap());
  for (let i = 0; i < N; i++) if (indeg[i] === 0) heaps[workerOf(i)].push(i);
  let done = 0;
  let t = 0;
  const ran = [];
  while (done < N) {
    ran.length = 0;
    for (const h of heaps) if (h.size > 0) ran.push(h.pop());
    if (ran.length === 0) throw new Error(`list schedule: ${N - done} steps can never run (a cycle in the dependencies)`);
    for (const i of ran) {
      done++;
      for (const s of succ[i]) if (--indeg[s] === 0) heaps[workerOf(s)].push(s);
    }
    t++;
  }
  return t;
}

/** Why one step follows another: its thread's previous step, the sender of its message, the fallback, a word. */
export const PROGRAM_ORDER = -1;
export const MESSAGE = -2;
export const FALLBACK = -3;

/** Each step's predecessors as [step, why] (why: PROGRAM_ORDER, MESSAGE, FALLBACK, or the word they share). */
export function predecessors(steps, isRead, wordOf) {
  const lastOfThread = new Map();
  const lastWrite = new Map();
  const readsSince = new Map();
  let lastFallback = -1;
  let sinceFallback = [];
  return steps.map(({ thread, fp, sendStep }, i) => {
    const ps = [];
    const prev = lastOfThread.get(thread);
    if (prev !== undefined) ps.push([prev, PROGRAM_ORDER]);
    lastOfThread.set(thread, i);
    if (sendStep >= 0) ps.push([sendStep, MESSAGE]);
    if (lastFallback >= 0) ps.push([lastFallback, FALLBACK]);
    if (fp === null) {
      for (const j of sinceFallback) ps.push([j, FALLBACK]);
      sinceFallback = [];
      lastFallback = i;
      return ps;
    }
    sinceFallback.push(i);
    for (const e of fp) {
      const w = wordOf(e);
      const lw = lastWrite.get(w);
      if (lw !== undefined) ps.push([lw, w]);
      if (isRead(e)) {
        const rs = readsSince.get(w);
        if (rs) rs.push(i);
        else readsSince.set(w, [i]);
      } else {
        for (const r of readsSince.get(w) ?? []) ps.push([r, w]);
        readsSince.delete(w);
        lastWrite.set(w, i);
      }
    }
    return ps;
  });
}

/**
 * The longest chain of dependent steps (what bounds the speed-up on any number of workers: steps ÷ its length),
 * and what links it: per reason (PROGRAM_ORDER, MESSAGE, FALLBACK, or a word), how many of its links are that —
 * where a step's start is set by several predecessors, the link is the one of the latest, a word's before the
 * step's own thread's (the word is why the thread could not go on sooner).
 */
export function criticalPath(steps, { isRead, wordOf }) {
  const preds = predecessors(steps, isRead, wordOf);
  const depth = new Int32Array(steps.length);
  const via = new Array(steps.length);
  preds.forEach((ps, i) => {
    let best = 0;
    let link;
    for (const [p, why] of ps) {
      const d = depth[p];
      if (d > best || (d === best && link !== undefined && link[1] < 0 && why >= 0)) {
        best = d;
        link = [p, why];
      }
    }
    depth[i] = best + 1;
    via[i] = link;
  });
  let end = 0;
  for (let i = 1; i < steps.length; i++) if (depth[i] > depth[end]) end = i;
  const links = new Map();
  for (let l = via[end]; l !== undefined; l = via[l[0]]) links.set(l[1], (links.get(l[1]) ?? 0) + 1);
  return { length: steps.length === 0 ? 0 : depth[end], links };
}

/** A binary min-heap of step indices (the lowest-numbered ready step first). */
class MinHeap {
  a = [];
  get size() {
    return this.a.length;
  }
  push(x) {
    const a = this.a;
    a.push(x);
    for (let i = a.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (a[p] <= x) break;
      a[i] = a[p];
      a[p] = x;
      i = p;
    }
  }
  pop() {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0) {
      a[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l] < a[m]) m = l;
        if (r < a.length && a[r] < a[m]) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}
