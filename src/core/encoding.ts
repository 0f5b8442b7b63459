/**
 * Byte encodings used by metadata: hex (TUF hashes, signatures, Ed25519 keys) and base64
 * (PEM bodies, Notary's hashes and keys). Decoders are strict and return `undefined` on bad
 * input, so callers decide whether that is a format error or an invalid signature.
 */
import { bytesToHex as nobleBytesToHex } from '@noble/hashes/utils.js';

const HEX = /^(?:[0-9a-fA-F]{2})*$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** hexToBytes decodes an even-length hex string (either case), or returns undefined. */
export function hexToBytes(hex: string): Uint8Array | undefined {
  if (!HEX.test(hex)) return undefined;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** bytesToHex encodes bytes as lowercase hex. */
export function bytesToHex(bytes: Uint8Array): string {
  return nobleBytesToHex(bytes);
}

/** base64ToBytes decodes padded standard base64 (no whitespace), or returns undefined. */
export function base64ToBytes(b64: string): Uint8Array | undefined {
  if (!BASE64.test(b64)) return undefined;
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** bytesToBase64 encodes bytes as padded standard base64. */
export function bytesToBase64(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

/** bytesToBase64Url encodes bytes as unpadded base64url (JWK members). */
export function bytesToBase64Url(bytes: Uint8Array): string {
  return bytesToBase64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** bytesEqual compares two byte arrays in time independent of where they differ. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

/**
 * pemToDer extracts the DER body of the first PEM block with the given label
 * (e.g. `PUBLIC KEY`), or returns undefined.
 */
export function pemToDer(pem: string, label: string): Uint8Array | undefined {
  const begin = `-----BEGIN ${label}-----`;
  const end = `-----END ${label}-----`;
  const a = pem.indexOf(begin);
  if (a < 0) return undefined;
  const b = pem.indexOf(end, a + begin.length);
  if (b < 0) return undefined;
  return base64ToBytes(pem.slice(a + begin.length, b).replace(/[\r\n\t ]/g, ''));
}
