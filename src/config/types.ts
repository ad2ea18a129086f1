/**
 * The shapes of server configuration files (JSON). Validation and loading: load.ts. Every path in
 * a config file is resolved against the folder of that file. Keys live in files under `dataDir`,
 * never in the config itself; configs carry only public keys (hex).
 */
import type { AuthorityInfo, NetworkParameters, NodeRole } from '../pki/types.js';

export type ServerRole = 'authority' | 'mix' | 'gateway';
export type LogLevelName = 'debug' | 'info' | 'warn' | 'error';

export interface ListenAddress {
  readonly host: string;
  /** 0 lets the system choose (tests). */
  readonly port: number;
}

/** What every server's config holds. */
export interface CommonConfig {
  readonly role: ServerRole;
  /** 1 to 64 characters of [A-Za-z0-9._-]; used in logs and metrics as the node's label. */
  readonly name: string;
  /** Keys and state. Created (mode 0700) when missing. */
  readonly dataDir: string;
  /** Health (`/healthz`) and Prometheus metrics (`/metrics`). */
  readonly ops: ListenAddress;
  readonly logLevel: LogLevelName;
  /** Every directory authority, with its Ed25519 public key. */
  readonly authorities: readonly AuthorityInfo[];
  /** Signatures a document needs: a majority of `authorities` unless set. */
  readonly threshold: number;
  /**
   * The network's parameters (the same in every config of a network). Authorities publish them in
   * each document; mixes and gateways need the epoch period and the Sphinx geometry before the first
   * document exists, and refuse a document whose parameters differ from these.
   */
  readonly params: NetworkParameters;
}

/** A node an authority accepts descriptors from. */
export interface AuthorizedNode {
  readonly name: string;
  readonly identityKey: Uint8Array;
  readonly role: NodeRole;
  /** 1..layers for a mix, 0 for a gateway. */
  readonly layer: number;
}

export interface AuthorityConfig extends CommonConfig {
  readonly role: 'authority';
  /** The HTTP API (descriptors, votes, signatures, documents). */
  readonly listen: ListenAddress;
  readonly nodes: readonly AuthorizedNode[];
}

/** Bounds and tuning of a packet-handling node (mix or gateway). */
export interface NodeLimits {
  /** Longest delay a packet may ask for; longer ones are dropped. Default 60 000 ms. */
  readonly maxDelayMs: number;
  /** Packets held (waiting to unwrap, delayed, waiting to be sent) before new ones are dropped. Default 100 000. */
  readonly maxQueuedPackets: number;
  /** Replay tags remembered per mix key. Default 4 000 000. */
  readonly replayCacheEntries: number;
  /** Unwrap worker threads; 0 unwraps on the main thread. Default: the number of cores. */
  readonly workers: number;
}

export interface MixConfig extends CommonConfig {
  readonly role: 'mix';
  readonly layer: number;
  /** Where the previous layer connects (Noise XK over TCP). */
  readonly listen: ListenAddress;
  /** The "host:port" put in the descriptor; `listen` when unset. */
  readonly advertise: string | null;
  readonly limits: NodeLimits;
}

export interface GatewayConfig extends CommonConfig {
  readonly role: 'gateway';
  /** Where clients and layer-3 mixes connect (Noise XK over TCP). */
  readonly listen: ListenAddress;
  readonly advertise: string | null;
  /** WebSocket listener for browser clients; null for none. */
  readonly wsListen: ListenAddress | null;
  readonly wsAdvertise: string | null;
  readonly limits: NodeLimits;
  readonly mailbox: {
    /** SQLite file; default `<dataDir>/mailbox.sqlite`. */
    readonly path: string;
    /** Entries kept per mailbox. Default 10 000. */
    readonly maxPerMailbox: number;
    /** Entries kept in all. Default 1 000 000. */
    readonly maxTotal: number;
    /**
     * Entries one mailbox address (main, extra or own) takes per second and at once; null (the
     * default): fetchRatePerS / 2 with 10 s of burst for a main mailbox, fetchRatePerS / 3 with
     * 20 s for an extra one, sendRatePerS + 2 × loopRatePerS with 10 s for a client's own one
     * (src/pki/intake.ts, intakeRates).
     */
    readonly intake: { readonly perSecond: number; readonly burst: number } | null;
    /** Fetches one client makes per second and at once; null (the default): 2 × fetchRatePerS with 10 s of burst (rate-limit.ts, fetchBucketRate). */
    readonly fetchRate: { readonly perSecond: number; readonly burst: number } | null;
  };
  /** Per-client token bucket for packets a client sends. Defaults 50/s, burst 100. */
  readonly clientRate: { readonly perSecond: number; readonly burst: number };
  /** Admission of new clients (src/server/admission.ts, docs/network.md "Admission"). */
  readonly admission: {
    /**
     * `proof-of-work` (default): a new client key shows `workBits` of work; `token`: an invitation
     * token minted with `backchannel gateway token`; `open`: anyone (tests and local networks only).
     */
    readonly mode: 'proof-of-work' | 'token' | 'open';
    /** Work a new client shows, in bits (2^bits SHA-256 evaluations expected). Default 20. */
    readonly workBits: number;
    /** Client records held at most; a new client past it is refused and health says degraded. Default 100 000. */
    readonly maxClients: number;
    /** Days a client record (and its mailboxes) is kept after its client was last seen. Default 30. */
    readonly retentionDays: number;
  };
}

export type ServerConfig = AuthorityConfig | MixConfig | GatewayConfig;
