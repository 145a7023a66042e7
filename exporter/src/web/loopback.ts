import type { AddressInfo, Server } from 'net';
import { isIP } from 'net';
import { canonicalAddress } from './peer-uid';

/**
 * Whether an IP address is a loopback address: 127.0.0.0/8, ::1, and IPv4-mapped 127.x
 * (::ffff:127.0.0.1). Judges addresses, never host names: "127.evil.example" or "localhost.lan"
 * are names, and what they resolve to is only known once bound (see boundToLoopback).
 */
export function isLoopbackAddress(addr: string | undefined): boolean {
  if (!addr || isIP(addr.replace(/%.*$/, '')) === 0) return false;
  const c = canonicalAddress(addr);
  return /^127\.\d+\.\d+\.\d+$/.test(c) || c === '0:0:0:0:0:0:0:1';
}

/** Whether a listening server is reachable only from this host: judged on the address it is bound to. */
export function boundToLoopback(server: Pick<Server, 'address'>): boolean {
  const a = server.address();
  return typeof a === 'object' && a !== null && isLoopbackAddress((a as AddressInfo).address);
}
