// Labels of points that name a long-lived object (an mm, a page of it): made once per object, op and argument.
// Every step's label is hashed into the trace; a label built anew at each step is a new string to flatten and
// hash, one made once keeps its hash.
const plain = new WeakMap<object, Map<string, string>>();
const withArg = new WeakMap<object, Map<string, string[]>>();

/** `op(name)` for obj. */
export function objLabel(obj: object, op: string, name: string): string {
  let m = plain.get(obj);
  if (!m) {
    m = new Map();
    plain.set(obj, m);
  }
  let s = m.get(op);
  if (s === undefined) {
    s = `${op}(${name})`;
    m.set(op, s);
  }
  return s;
}

/** `op(name, arg<suffix>)` for obj and a small non-negative integer arg (a page number). */
export function objArgLabel(obj: object, op: string, name: string, arg: number, suffix = ''): string {
  if (!Number.isInteger(arg) || arg < 0 || arg > 0xffff) return `${op}(${name}, ${arg}${suffix})`;
  let m = withArg.get(obj);
  if (!m) {
    m = new Map();
    withArg.set(obj, m);
  }
  const key = suffix === '' ? op : `${op}${suffix}`;
  let a = m.get(key);
  if (!a) {
    a = [];
    m.set(key, a);
  }
  let s = a[arg];
  if (s === undefined) {
    s = `${op}(${name}, ${arg}${suffix})`;
    a[arg] = s;
  }
  return s;
}
