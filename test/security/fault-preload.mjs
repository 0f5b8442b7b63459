// Fault injection for the security battery, loaded into a CLI run with
// NODE_OPTIONS=--import=<this file>:
// - TUFA_FAULT_ENOSPC=<regexp>: the first open() for writing of a path matching it fails with
//   ENOSPC, as on a full disk;
// - TUFA_FAULT_KILL_AFTER_RENAME=<regexp>: the process is killed (SIGKILL) right after the
//   first rename() onto a path matching it, as by kill -9 or a power cut midway.
import fsp from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';

const enospc = process.env.TUFA_FAULT_ENOSPC
  ? new RegExp(process.env.TUFA_FAULT_ENOSPC)
  : undefined;
const kill = process.env.TUFA_FAULT_KILL_AFTER_RENAME
  ? new RegExp(process.env.TUFA_FAULT_KILL_AFTER_RENAME)
  : undefined;
if (enospc) {
  const open = fsp.open;
  let fired = false;
  fsp.open = async function (path, flags, ...rest) {
    if (!fired && typeof path === 'string' && enospc.test(path) && String(flags).includes('w')) {
      fired = true;
      throw Object.assign(new Error(`ENOSPC: no space left on device, open '${path}'`), {
        code: 'ENOSPC',
        errno: -28,
      });
    }
    return open.call(this, path, flags, ...rest);
  };
}
if (kill) {
  const rename = fsp.rename;
  fsp.rename = async function (from, to) {
    await rename.call(this, from, to);
    if (typeof to === 'string' && kill.test(to)) process.kill(process.pid, 'SIGKILL');
  };
}
syncBuiltinESMExports();
