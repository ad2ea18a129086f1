/**
 * Encrypted links (docs/link.md): Noise XK over TCP or WebSocket, framed, with keepalive, rekey,
 * bounded buffers and clean close. This is the Node entry; `./portable.js` is the browser's.
 */
export { Link, LINK_PROTOCOL, LINK_PROLOGUE, MAX_FRAME_LENGTH, MAX_LINK_MESSAGE, CloseReason } from './link.js';
export type { CloseReasonCode, InitiatorOptions, LinkCloseInfo, LinkOptions, LinkStats, ResponderOptions } from './link.js';
export { LinkAcceptor } from './acceptor.js';
export type { LinkServer, LinkServerOptions, LinkServerStats } from './acceptor.js';
export type { ByteTransport, TransportHandlers } from './transport.js';
export { TcpTransport, connectTcp, listenTcp, DEFAULT_HIGH_WATER_MARK } from './tcp.js';
export type { TcpConnectOptions, TcpListenOptions } from './tcp.js';
export { NodeWsTransport, connectWs, listenWs } from './ws-node.js';
export type { WsConnectOptions, WsLinkServer, WsListenOptions } from './ws-node.js';
export { BrowserWsTransport, connectBrowserWs } from './ws-browser.js';
export type { BrowserWsConnectOptions } from './ws-browser.js';
