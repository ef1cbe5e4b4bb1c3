import { createHmac } from 'node:crypto';

/**
 * The `Job-Signature` header value: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`. The time
 * is inside the signed text, so a receiver that refuses old timestamps also refuses replays.
 */
export function jobSignature(secret: string, rawBody: Buffer, unixSeconds: number): string {
  const hmac = createHmac('sha256', secret);
  hmac.update(`${unixSeconds}.`);
  hmac.update(rawBody);
  return `t=${unixSeconds},v1=${hmac.digest('hex')}`;
}
