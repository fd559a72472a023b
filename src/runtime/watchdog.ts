// The host-time watchdog: stops a run whose model code spins without reaching a scheduling point — a patch's
// generator that loops, an extension's extend() or module body, a `.ts` scenario's top level — instead of
// letting it hang for ever. This is not the kernel's soft-lockup watchdog (that one counts simulated time): it
// counts seconds of the machine's time spent in one stretch of model code between two scheduling points.
//
// Every thread that runs model code (the main thread, the threaded runtime's workers, the exploration pool's
// workers) keeps a heartbeat in a small SharedArrayBuffer: a sequence number bumped at each stretch's start, a
// flag saying it is inside one, and what it is (the task and its last point, as text). A watchdog thread,
// started by the CLI, samples every heartbeat; one inside the same stretch for longer than the timeout fires.
// JavaScript on a thread that spins cannot be interrupted by that thread, so the watchdog thread ends the run
// from outside: it tells the main thread (which prints the report and exits) and, when the main thread is the
// one spinning, terminates its execution through the inspector — the main thread's exit handler then prints
// the report. Exit status 1, or 2 when the stretch was the loading of the user's input (an extension, a
// scenario module): a spin there is the input's fault.
import { writeSync } from 'node:fs';
import { BroadcastChannel, isMainThread, threadId, Worker } from 'node:worker_threads';

/** The watchdog's timeout when the CLI is not told otherwise (seconds of host time). */
export const DEFAULT_WATCHDOG_SECONDS = 10;

const CHANNEL = 'iommu-sim:watchdog';
// Heartbeat words (Int32), then the text (Uint16) of what runs.
const H_SEQ = 0;
const H_INSIDE = 1;
const H_LEN = 2;
const H_WORDS = 4;
const TEXT_CHARS = 240;
// Control words of the watchdog thread.
const C_FIRED = 0; // 0, or 1 + the index of the heartbeat that fired
const C_STATUS = 1; // the exit status it asked for
const C_SECONDS = 2;
const C_WORDS = 4;

/** What a stretch of model code is: a task between two points, or the loading of the user's input. */
export type Stretch = 'task' | 'input';

interface Beat {
  readonly i32: Int32Array;
  readonly text: Uint16Array;
}

function newBeat(): Beat {
  const sab = new SharedArrayBuffer(H_WORDS * 4 + TEXT_CHARS * 2);
  return { i32: new Int32Array(sab, 0, H_WORDS), text: new Uint16Array(sab, H_WORDS * 4, TEXT_CHARS) };
}

let beat: Beat | undefined;
/** What the last watchEnter wrote before its point (kind, what, into which heartbeat) and where that text ends. */
let lastWhat: string | undefined;
let lastKind: Stretch | undefined;
let lastBeat: Beat | undefined;
let whatEnd = 0;
let channel: BroadcastChannel | undefined;

/** This thread's heartbeat, registered with the watchdog thread (if the process has one) the first time. */
function threadBeat(): Beat {
  if (beat) return beat;
  const b = newBeat();
  beat = b;
  if (!isMainThread) {
    channel = new BroadcastChannel(CHANNEL);
    (channel as unknown as { unref?: () => void }).unref?.();
    channel.postMessage({ sab: b.i32.buffer, thread: threadId });
  }
  return b;
}

/**
 * Model code of `what` starts running (a task resumed from `point`, or input being loaded): from here until
 * watchLeave() no scheduling point is reached. Cheap: two stores and a short text copy.
 */
export function watchEnter(kind: Stretch, what: string, point: string): void {
  const b = beat ?? threadBeat();
  const t = b.text;
  let n: number;
  // The same task as the stretch before (the same string: a task's name is made once) keeps its text: only its
  // point is written again.
  if (what === lastWhat && kind === lastKind && b === lastBeat) {
    n = whatEnd;
  } else {
    n = 0;
    t[n++] = kind === 'input' ? 0x49 : 0x54; // I / T
    for (let i = 0; i < what.length && n < TEXT_CHARS - 1; i++) t[n++] = what.charCodeAt(i);
    if (n < TEXT_CHARS) t[n++] = 0;
    lastWhat = what;
    lastKind = kind;
    lastBeat = b;
    whatEnd = n;
  }
  for (let i = 0; i < point.length && n < TEXT_CHARS; i++) t[n++] = point.charCodeAt(i);
  b.i32[H_LEN] = n;
  b.i32[H_SEQ] = (b.i32[H_SEQ] as number) + 1;
  Atomics.store(b.i32, H_INSIDE, 1);
}

/** The stretch watchEnter began has reached a scheduling point (or the loading is done). */
export function watchLeave(): void {
  if (beat) Atomics.store(beat.i32, H_INSIDE, 0);
}

/** Run fn as one stretch of input loading (an extension's module and extend(), a scenario module). */
export function watchInput<T>(what: string, fn: () => T): T {
  watchEnter('input', what, '(loading)');
  try {
    return fn();
  } finally {
    watchLeave();
  }
}

/**
 * Say whose code the stretch running now is in, without starting another (its timer keeps running): a patch's
 * function, `in iommu_sva_unbind_device as patched by p.cjs` (the innermost such note wins). Returns what puts
 * the text back. Outside a stretch, nothing to note.
 */
export function watchNote(note: string): () => void {
  const b = beat;
  if (!b || Atomics.load(b.i32, H_INSIDE) === 0) return () => {};
  const len = b.i32[H_LEN] as number;
  const saved = b.text.slice(0, len);
  const { kind, what, point } = readText(b.i32, b.text);
  const t = b.text;
  let n = 0;
  t[n++] = kind === 'input' ? 0x49 : 0x54;
  for (const [i, part] of [what, point, note].entries()) {
    if (i > 0 && n < TEXT_CHARS) t[n++] = 0;
    for (let i = 0; i < part.length && n < TEXT_CHARS; i++) t[n++] = part.charCodeAt(i);
  }
  b.i32[H_LEN] = n;
  return () => {
    b.text.set(saved);
    b.i32[H_LEN] = len;
  };
}

/** Decode a heartbeat's text: kind, what runs, its last point, whose code it is in (watchNote). */
function readText(i32: Int32Array, text: Uint16Array): { kind: Stretch; what: string; point: string; note: string } {
  const n = Math.min(i32[H_LEN] as number, TEXT_CHARS);
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(text[i] as number);
  const [what = '', point = '', note = ''] = s.slice(1).split('\u0000');
  return { kind: s.charCodeAt(0) === 0x49 ? 'input' : 'task', what, point, note };
}

/** The report's first line, in host-time words (not the kernel's soft-lockup wording: that one is simulated time). */
export function watchdogMessage(kind: Stretch, what: string, point: string, seconds: number, note = ''): string {
  const subject = kind === 'input' ? what : `task ${what}`;
  const last = kind === 'input' ? '' : ` (last point: ${point})`;
  const inside = note === '' ? '' : ` ${note}`;
  return `iommu-sim: watchdog: ${subject} has run ${seconds} s of host time without reaching a scheduling point${last}${inside}; --watchdog sets the limit (0: off)`;
}


// The watchdog thread: CommonJS, evaluated (it must not load the project's modules, which may be what spins).
const THREAD = `
const { parentPort, workerData, BroadcastChannel } = require('node:worker_threads');
const { Session } = require('node:inspector');
const { timeoutMs, control, copy, main, H_SEQ, H_INSIDE, H_LEN, H_WORDS, C_FIRED, C_STATUS, C_SECONDS } = workerData;
const beats = [{ i32: new Int32Array(main, 0, 4), seq: -1, since: 0, main: true }];
const channel = new BroadcastChannel(${JSON.stringify(CHANNEL)});
channel.onmessage = (e) => beats.push({ i32: new Int32Array(e.data.sab, 0, 4), seq: -1, since: 0, main: false, sab: e.data.sab });
function terminateMain() {
  try {
    const s = new Session();
    s.connectToMainThread();
    // Disconnected at once: the main thread, terminated, never answers, and a session still attached when it
    // exits makes Node print "Waiting for the debugger to disconnect..." (the message is on its way already).
    s.post('Runtime.terminateExecution');
    s.disconnect();
  } catch {}
}
const tick = setInterval(() => {
  const now = Date.now();
  for (let i = 0; i < beats.length; i++) {
    const b = beats[i];
    const seq = Atomics.load(b.i32, H_SEQ);
    if (Atomics.load(b.i32, H_INSIDE) !== 1 || seq !== b.seq) { b.seq = seq; b.since = now; continue; }
    if (now - b.since < timeoutMs) continue;
    clearInterval(tick);
    // What fired, copied where the main thread reads it even if it is stuck too (and only its exit handler runs).
    const from = new Uint16Array(b.i32.buffer, H_WORDS * 4);
    new Uint16Array(copy, H_WORDS * 4).set(from);
    new Int32Array(copy, 0, H_WORDS)[H_LEN] = Atomics.load(b.i32, H_LEN);
    Atomics.store(control, C_SECONDS, Math.round((now - b.since) / 1000));
    Atomics.store(control, C_FIRED, i + 1);
    parentPort.postMessage({ fired: i });
    // The main thread answers the message unless it is the one spinning (or stays stuck behind it).
    setTimeout(terminateMain, b.main ? 0 : 2000);
    return;
  }
}, Math.max(10, Math.min(200, timeoutMs / 10)));
`;

/** Heartbeats of the other threads, as the main thread hears of them (listening once asked to). */
const others: { i32: Int32Array; text: Uint16Array }[] = [];
let listening: BroadcastChannel | undefined;

/** Main thread: hear of the heartbeats of threads started from now on (for lastTasks). */
export function listenForHeartbeats(): void {
  if (!isMainThread || listening) return;
  listening = new BroadcastChannel(CHANNEL);
  (listening as unknown as { unref?: () => void }).unref?.();
  listening.onmessage = (e: unknown) => {
    const sab = (e as { data: { sab: SharedArrayBuffer } }).data.sab;
    others.push({ i32: new Int32Array(sab, 0, H_WORDS), text: new Uint16Array(sab, H_WORDS * 4, TEXT_CHARS) });
  };
}

/** The task each thread (of those heard of) ran last, and its point: `proc0 at 'unbind (patched): again'`. */
export function lastTasks(): string[] {
  const out: string[] = [];
  for (const b of [...(beat ? [beat] : []), ...others]) {
    if ((b.i32[H_LEN] as number) === 0) continue;
    const r = readText(b.i32, b.text);
    if (r.kind === 'task') out.push(`${r.what} at '${r.point}'`);
  }
  return out;
}

/** The limit the CLI set (seconds; 0: off); DEFAULT_WATCHDOG_SECONDS where none was started. */
let limitSeconds = DEFAULT_WATCHDOG_SECONDS;

/** The watchdog's limit in seconds (0: off), for code that bounds its own stretches (a scenario module loading). */
export function watchdogSeconds(): number {
  return limitSeconds;
}

let started: { worker: Worker; control: Int32Array; main: Beat; reported: boolean } | undefined;

/**
 * Start the process's watchdog (main thread only; once). Stretches longer than `seconds` of host time end the
 * process with a report: exit status 1, or 2 for input that spins while it loads.
 */
export function startWatchdog(seconds: number): void {
  if (!isMainThread || started) return;
  limitSeconds = seconds;
  listenForHeartbeats();
  if (seconds <= 0) return;
  const main = beat ?? threadBeat();
  const control = new Int32Array(new SharedArrayBuffer(C_WORDS * 4));
  const copy = newBeat();
  const worker = new Worker(THREAD, {
    eval: true,
    workerData: { timeoutMs: seconds * 1000, control, copy: copy.i32.buffer, main: main.i32.buffer, H_SEQ, H_INSIDE, H_LEN, H_WORDS, C_FIRED, C_STATUS, C_SECONDS },
  });
  const s = { worker, control, main, reported: false };
  started = s;
  const report = (): number => {
    if (s.reported) return Atomics.load(control, C_STATUS);
    s.reported = true;
    const r = readText(copy.i32, copy.text);
    const status = r.kind === 'input' ? 2 : 1;
    Atomics.store(control, C_STATUS, status);
    writeSync(2, `${watchdogMessage(r.kind, r.what, r.point, Atomics.load(control, C_SECONDS), r.note)}\n`);
    return status;
  };
  worker.on('message', () => process.exit(report()));
  // After the listener (which would ref it again): the watchdog never keeps the process alive.
  worker.unref();
  // The main thread spun (or was stuck behind a thread that did) and was terminated: its exit handler still runs.
  process.on('exit', () => {
    if (Atomics.load(control, C_FIRED) !== 0) process.exitCode = report();
  });
}
