/**
 * The part of net-snmp (https://github.com/markabrahams/node-net-snmp, no bundled types) that
 * jouleflow uses: v2c/v3 sessions and GET.
 */
declare module 'net-snmp' {
  export interface Varbind {
    oid: string;
    type: number;
    /** Integers and gauges: number; OctetString, Opaque and Counter64: Buffer. */
    value: number | Buffer | string | boolean | null;
  }
  export interface SessionOptions {
    port?: number;
    retries?: number;
    timeout?: number;
    backoff?: number;
    transport?: 'udp4' | 'udp6';
    version?: number;
    idBitsSize?: 16 | 32;
  }
  export interface User {
    name: string;
    level: number;
    authProtocol?: number;
    authKey?: string;
    privProtocol?: number;
    privKey?: string;
  }
  export interface Session {
    get(oids: string[], cb: (error: Error | null, varbinds: Varbind[]) => void): void;
    close(): void;
    on(event: 'error', cb: (err: Error) => void): void;
  }
  export function createSession(target: string, community: string, options?: SessionOptions): Session;
  export function createV3Session(target: string, user: User, options?: SessionOptions): Session;
  export function isVarbindError(vb: Varbind): boolean;
  export function varbindError(vb: Varbind): string;
  export const Version1: number;
  export const Version2c: number;
  export const Version3: number;
  export const ObjectType: Record<string, number>;
  export const SecurityLevel: { noAuthNoPriv: number; authNoPriv: number; authPriv: number };
  export const AuthProtocols: Record<'md5' | 'sha' | 'sha224' | 'sha256' | 'sha384' | 'sha512', number>;
  export const PrivProtocols: Record<'des' | 'aes' | 'aes256b' | 'aes256r', number>;
}
