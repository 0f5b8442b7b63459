/**
 * Image locations with transports like skopeo's: `docker://REF` (the default when no transport
 * is given), `oci:DIR[:REF]` (an OCI image layout) and `oci-archive:FILE[:REF]` (a tar of one).
 * For the local transports, REF is the image's ref name in the layout's index.json.
 */
import { OciError } from './errors.js';

export type ImageLocation =
  | { transport: 'docker'; reference: string }
  | { transport: 'oci' | 'oci-archive'; path: string; refName: string | undefined };

/** parseLocation splits a transport prefix off an image argument. */
export function parseLocation(input: string): ImageLocation {
  if (input.startsWith('docker://'))
    return { transport: 'docker', reference: input.slice('docker://'.length) };
  for (const transport of ['oci-archive', 'oci'] as const) {
    const prefix = `${transport}:`;
    if (!input.startsWith(prefix)) continue;
    const rest = input.slice(prefix.length);
    const colon = rest.indexOf(':');
    const path = colon < 0 ? rest : rest.slice(0, colon);
    const refName = colon < 0 ? undefined : rest.slice(colon + 1);
    if (path.length === 0)
      throw new OciError('BAD_REFERENCE', `${input}: the ${transport} path is empty`);
    return { transport, path, refName: refName === '' ? undefined : refName };
  }
  if (/^[a-z-]+:\/\//.test(input))
    throw new OciError('BAD_REFERENCE', `${input}: unknown transport`);
  return { transport: 'docker', reference: input };
}

/** formatLocation writes a location back as an argument. */
export function formatLocation(l: ImageLocation): string {
  if (l.transport === 'docker') return `docker://${l.reference}`;
  return `${l.transport}:${l.path}${l.refName === undefined ? '' : `:${l.refName}`}`;
}
