// websession.d.mts -- the declarations of websession.mjs, the ES module face
// of websession.js: WebSession as a named and as the default export. The
// declarations themselves are in websession.d.ts.
import WebSession from './websession.js';

export { WebSession };
export default WebSession;

export type WebSessionOptions = WebSession.Options;
export type WebSessionReadyState = WebSession.ReadyState;
export type WebSessionTransportName = WebSession.TransportName;
export type WebSessionBinaryType = WebSession.BinaryType;
export type WebSessionWebSocketConstructor = WebSession.WebSocketConstructor;
export type WebSessionWebSocketLike = WebSession.WebSocketLike;
export type WebSessionEventMap = WebSession.EventMap;
export type WebSessionMessageEvent = WebSession.MessageEvent;
export type WebSessionCloseEvent = WebSession.CloseEvent;
export type WebSessionErrorEvent = WebSession.ErrorEvent;
export type WebSessionReconnectingEvent = WebSession.ReconnectingEvent;
export type WebSessionResumedEvent = WebSession.ResumedEvent;
export type WebSessionSessionLostEvent = WebSession.SessionLostEvent;
