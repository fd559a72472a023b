// errno values (include/uapi/asm-generic/errno-base.h, errno.h). Kernel functions here return them negated,
// as the kernel does (`return -ENOSPC;`), so a caller tests `ret < 0`.

export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EINTR = 4;
export const EIO = 5;
export const ENXIO = 6;
export const EBADF = 9;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const ENOSPC = 28;
export const ETIMEDOUT = 110;
export const EOPNOTSUPP = 95;

const NAMES: Readonly<Record<number, string>> = {
  [EPERM]: 'EPERM',
  [ENOENT]: 'ENOENT',
  [ESRCH]: 'ESRCH',
  [EINTR]: 'EINTR',
  [EIO]: 'EIO',
  [ENXIO]: 'ENXIO',
  [EBADF]: 'EBADF',
  [EAGAIN]: 'EAGAIN',
  [ENOMEM]: 'ENOMEM',
  [EACCES]: 'EACCES',
  [EFAULT]: 'EFAULT',
  [EBUSY]: 'EBUSY',
  [EEXIST]: 'EEXIST',
  [ENODEV]: 'ENODEV',
  [EINVAL]: 'EINVAL',
  [ENFILE]: 'ENFILE',
  [EMFILE]: 'EMFILE',
  [ENOSPC]: 'ENOSPC',
  [ETIMEDOUT]: 'ETIMEDOUT',
  [EOPNOTSUPP]: 'EOPNOTSUPP',
};

/** `-ENOSPC` for -28 (either sign accepted), for messages; unknown values print as the number. */
export function errname(err: number): string {
  const n = NAMES[Math.abs(err)];
  return n === undefined ? String(err) : `${err < 0 ? '-' : ''}${n}`;
}

/** IS_ERR_VALUE for the int returns used here: a negated errno. */
export function isErr(ret: number): boolean {
  return ret < 0 && ret >= -4095;
}
