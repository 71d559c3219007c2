// The CommonJS face: require() gives the class, also as .WebSession and
// .default (websession.d.ts). Checked with tsc, never run.
import WebSession = require('../websession.js');

const Named: typeof WebSession = WebSession.WebSession;
const Default: typeof WebSession = WebSession.default;
const options: WebSession.Options = { transport: 'sse', heartbeatTimeout: 0 };
const s: WebSession = new Named('http://localhost/ws/count', options);
const t = new Default('/ws/echo');
s.onclose = (e: WebSession.CloseEvent) => void e.code;
t.addEventListener('sessionlost', (e: WebSession.SessionLostEvent) => void e.detail.reason);
const state: WebSession.ReadyState = s.readyState;
void state;
// @ts-expect-error: not a transport
const bad: WebSession.TransportName = 'auto';
void bad;
