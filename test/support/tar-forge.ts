/** Tar builders for tests that need archives no well-behaved tar writer makes (the strict tar reader). */
import { createHash } from 'node:crypto';

export const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** header builds one ustar header block. */
export function header(
  name: string,
  size: number,
  type = '0',
  sizeField?: Buffer,
  tweak?: (h: Buffer) => void,
): Buffer {
  const h = Buffer.alloc(512);
  tweak?.(h);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  if (sizeField) sizeField.copy(h, 124);
  else h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write(type, 156);
  if (type === '2') h.write('target', 157);
  if (type === '1') h.write('oci-layout', 157);
  if (h[257] === 0) {
    h.write('ustar\0', 257);
    h.write('00', 263);
  }
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}
export const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);
export const entry = (name: string, data: Buffer, type = '0') =>
  Buffer.concat([header(name, data.length, type), pad(data)]);
export const pax = (records: Record<string, string>) => {
  let body = '';
  for (const [k, v] of Object.entries(records)) {
    const rec = ` ${k}=${v}\n`;
    let len = rec.length + 1;
    while (`${len}${rec}`.length !== len) len++;
    body += `${len}${rec}`;
  }
  return entry('PaxHeader', Buffer.from(body), 'x');
};

/** An image: config + manifest blobs, and an index.json naming the manifest. */
export function image(label: string) {
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      label,
      rootfs: { type: 'layers', diff_ids: [] },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: `sha256:${sha(config)}`,
        size: config.length,
      },
      layers: [],
    }),
  );
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: `sha256:${sha(manifest)}`,
          size: manifest.length,
          annotations: { 'org.opencontainers.image.ref.name': 'latest' },
        },
      ],
    }),
  );
  return {
    digest: `sha256:${sha(manifest)}`,
    index,
    blobs: Buffer.concat([
      entry(`blobs/sha256/${sha(config)}`, config),
      entry(`blobs/sha256/${sha(manifest)}`, manifest),
    ]),
  };
}
