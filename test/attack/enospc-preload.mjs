// Fault injection for attack tests: the first open() (in write mode) of a temp file whose name
// matches $ATTACK_ENOSPC fails with ENOSPC, as on a full disk. Load with `node --import`.
import fsp from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
const re = process.env.ATTACK_ENOSPC ? new RegExp(process.env.ATTACK_ENOSPC) : undefined;
if (re) {
  const open = fsp.open;
  let fired = false;
  fsp.open = async function (path, flags, ...rest) {
    if (!fired && typeof path === 'string' && re.test(path) && String(flags).includes('w')) {
      fired = true;
      const e = new Error(`ENOSPC: no space left on device, open '${path}'`);
      e.code = 'ENOSPC';
      e.errno = -28;
      throw e;
    }
    return open.call(this, path, flags, ...rest);
  };
  syncBuiltinESMExports();
}
