import { promises as fsp } from 'fs';
import { endianness } from 'os';
import * as path from 'path';

/**
 * Who is on the other end of a TCP connection, asked of the kernel.
 *
 * Why /proc/net/tcp and not a Unix-domain socket with SO_PEERCRED: the exporter already serves
 * HTTP on TCP (`npm start` listens on :10042, `jouleflow run` talks to it there), Node exposes no
 * SO_PEERCRED, and a second listener would be one more thing to configure. The kernel lists every
 * TCP socket of this network namespace in /proc/net/tcp and tcp6 with the uid that created it; the
 * client end of a connection from this host is the row whose local address:port is the
 * connection's remote one and whose remote address:port is the connection's local one. That
 * 4-tuple is unique while the connection is open, so no other user can claim it. A caller in
 * another host or network namespace has no such row: it is remote and needs the bearer token.
 *
 * Rows with inode 0 (TIME_WAIT, orphaned sockets after close) carry uid 0 without any process
 * owning them: they are never taken as the caller.
 */

export interface TcpRow {
  local: string;
  localPort: number;
  remote: string;
  remotePort: number;
  uid: number;
  inode: number;
}

const LITTLE_ENDIAN = endianness() === 'LE';

/** One 32-bit word as the kernel prints it (%08X of the in-memory __be32) → its 4 bytes in network order. */
function wordBytes(hex: string): number[] {
  const v = parseInt(hex, 16) >>> 0;
  const be = [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
  return LITTLE_ENDIAN ? be.reverse() : be;
}

/** "0100007F" or a 32-digit tcp6 address → canonical text (IPv4-mapped IPv6 becomes plain IPv4). */
export function decodeProcAddress(hex: string): string {
  if (hex.length === 8) return wordBytes(hex).join('.');
  if (hex.length !== 32) throw new Error(`unexpected address "${hex}" in /proc/net/tcp6`);
  const bytes = [0, 8, 16, 24].flatMap((i) => wordBytes(hex.slice(i, i + 8)));
  return canonicalAddress(bytesToIpv6(bytes));
}

/** 4 bytes in network order → the kernel's %08X of the in-memory word. */
function bytesWord(b: number[]): string {
  const [x, y, z, w] = LITTLE_ENDIAN ? [b[3], b[2], b[1], b[0]] : b;
  return (((x << 24) | (y << 16) | (z << 8) | w) >>> 0).toString(16).toUpperCase().padStart(8, '0');
}

/** The 16 bytes of a canonical address (IPv4 as IPv4-mapped IPv6). */
function addressBytes(canonical: string): number[] {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(canonical)) return [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...canonical.split('.').map(Number)];
  return canonical.split(':').flatMap((g) => {
    const v = parseInt(g, 16);
    return [v >> 8, v & 0xff];
  });
}

/** A canonical address as /proc/net/tcp (8 digits; undefined for non-IPv4) or tcp6 (32 digits) prints it. */
export function encodeProcAddress(canonical: string, v6: boolean): string | undefined {
  const b = addressBytes(canonical);
  if (!v6) return canonical.includes('.') ? bytesWord(b.slice(12)) : undefined;
  return [0, 4, 8, 12].map((i) => bytesWord(b.slice(i, i + 4))).join('');
}

function bytesToIpv6(b: number[]): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] << 8) | b[i + 1]).toString(16));
  return groups.join(':');
}

/** Canonical form for comparisons: IPv4 dotted quad (also for ::ffff:a.b.c.d), IPv6 fully expanded lower-case. */
export function canonicalAddress(addr: string): string {
  const a = addr.toLowerCase().replace(/%.*$/, '');
  if (/^\d+\.\d+\.\d+\.\d+$/.test(a)) return a;
  // Expand "::" and an embedded IPv4 tail into 8 groups.
  let text = a;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const n = v4.slice(1).map(Number);
    text = text.slice(0, v4.index) + `${((n[0] << 8) | n[1]).toString(16)}:${((n[2] << 8) | n[3]).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const fill = tail === undefined ? [] : new Array<string>(8 - h.length - t.length).fill('0');
  const groups = [...h, ...fill, ...t].map((g) => parseInt(g || '0', 16).toString(16));
  const full = groups.join(':');
  // ::ffff:7f00:1 is IPv4-mapped too.
  if (/^0:0:0:0:0:ffff:/.test(full)) {
    const hi = parseInt(groups[6], 16);
    const lo = parseInt(groups[7], 16);
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  }
  return full;
}

/** Parses /proc/net/tcp or tcp6 (header line first). */
export function parseProcNetTcp(text: string): TcpRow[] {
  const rows: TcpRow[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [la, lp] = f[1].split(':');
    const [ra, rp] = f[2].split(':');
    if (!la || !lp || !ra || !rp) continue;
    rows.push({
      local: decodeProcAddress(la),
      localPort: parseInt(lp, 16),
      remote: decodeProcAddress(ra),
      remotePort: parseInt(rp, 16),
      uid: Number(f[7]),
      inode: Number(f[9]),
    });
  }
  return rows;
}

export interface ConnectionEnds {
  /** The server's end (req.socket.localAddress / localPort). */
  localAddress?: string;
  localPort?: number;
  /** The client's end (req.socket.remoteAddress / remotePort). */
  remoteAddress?: string;
  remotePort?: number;
}

/**
 * The uid owning the client end of `conn`, read from `<procfs>/net/tcp` and `tcp6`; undefined when
 * the client is not a socket of this host's network namespace (a remote caller).
 */
export async function peerUid(procfs: string, conn: ConnectionEnds): Promise<number | undefined> {
  const { localAddress, localPort, remoteAddress, remotePort } = conn;
  if (!localAddress || !remoteAddress || localPort === undefined || remotePort === undefined) return undefined;
  const server = canonicalAddress(localAddress);
  const client = canonicalAddress(remoteAddress);
  const port = (p: number) => p.toString(16).toUpperCase().padStart(4, '0');
  for (const v6 of [false, true]) {
    const c = encodeProcAddress(client, v6);
    const s = encodeProcAddress(server, v6);
    if (c === undefined || s === undefined) continue;
    let text: string;
    try {
      text = await fsp.readFile(path.join(procfs, 'net', v6 ? 'tcp6' : 'tcp'), 'utf8');
    } catch {
      continue; // no IPv6, or a procfs without net/ (a fixture): no row here
    }
    // Thousands of rows on a busy node: find the client's row by its text, parse only that line.
    const needle = ` ${c}:${port(remotePort)} ${s}:${port(localPort)} `;
    for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) {
      const line = text.slice(text.lastIndexOf('\n', at) + 1, (text.indexOf('\n', at) + 1 || text.length + 1) - 1);
      const row = parseProcNetTcp(`header\n${line}`)[0];
      if (row && row.inode !== 0 && Number.isInteger(row.uid)) return row.uid;
    }
  }
  return undefined;
}
