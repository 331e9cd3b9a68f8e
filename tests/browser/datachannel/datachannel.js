// Browser side of the data channel interop tests: the same behaviour as the Python
// agent in tests/browser/dc_agent.py, so either end can face either.
//
// - The page opens its own channels ("remote-*" labels: it is the remote end as seen
//   from the Python peer) and records every message that comes back on them.
// - Every message arriving on a channel the other side opened is echoed back on that
//   channel, unchanged (string stays string, binary stays binary).
// - dc.* lets the test send the message suite, close a channel, and read what was
//   received, channel states and getStats() data-channel counters.
'use strict';

const harness = {
  state: 'idle', error: null, mode: null, localSdp: null, remoteSdp: null,
  log: [], pc: null,
};
window.harness = harness;

const statusEl = document.getElementById('status');

function log(message) {
  harness.log.push(`${(performance.now() / 1000).toFixed(3)} ${message}`);
  console.log(message);
  statusEl.textContent = harness.log.slice(-40).join('\n');
}

async function postJson(path, body) {
  const response = await fetch(path, {
    method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify(body || {}),
  });
  if (!response.ok) {
    throw new Error(`${path}: HTTP ${response.status} ${await response.text()}`);
  }
  return response.status === 204 ? null : response.json();
}

function gatheringComplete(pc, timeoutMs) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

// --- the message suite (same bytes as tests/browser/dc_agent.py) -----------------------

function pattern(length, seed) {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

function repeatText(unit, length) {
  return unit.repeat(Math.ceil(length / unit.length)).slice(0, length);
}

// [name, value]; names are shared with the Python side
function suite() {
  return [
    ['text', 'hello from the other end'],
    ['text-unicode', 'gr\u00fc\u00dfe \u2713 \u{1F600} \u65e5\u672c'],
    ['binary', pattern(1000, 7)],
    ['empty-text', ''],
    ['empty-binary', new Uint8Array(0)],
    ['text-64k', repeatText('abcdefghijklmnopqrstuvwxyz0123456789', 65536)],
    ['binary-256k', pattern(262144, 11)],
  ];
}

function unorderedSuite() {
  const out = [];
  for (let i = 0; i < 20; i++) out.push([`u-text-${i}`, `unordered ${i}`]);
  for (let i = 0; i < 20; i++) out.push([`u-binary-${i}`, pattern(100 + i, i)]);
  return out;
}

const encoder = new TextEncoder();

async function describe(data) {
  const isText = typeof data === 'string';
  let bytes;
  if (isText) bytes = encoder.encode(data);
  else if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
  else bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
  return {type: isText ? 'string' : 'binary', length: bytes.length, sha256: hex};
}

// --- channels ---------------------------------------------------------------------------

const dc = {
  channels: {},      // label -> RTCDataChannel (ours and theirs)
  own: [],           // labels we opened
  theirs: [],        // labels the other side opened (ondatachannel)
  received: {},      // label -> [description] in arrival order
  pending: {},       // label -> number of descriptions still being hashed
  events: [],        // [label, event] in order
  sendErrors: [],
  openInfo: {},      // label -> properties as seen at open
};
window.dc = dc;

function channelInfo(channel) {
  return {
    label: channel.label, id: channel.id, ordered: channel.ordered,
    maxRetransmits: channel.maxRetransmits, maxPacketLifeTime: channel.maxPacketLifeTime,
    protocol: channel.protocol, negotiated: channel.negotiated,
    readyState: channel.readyState, bufferedAmount: channel.bufferedAmount,
  };
}

function watch(channel, echo) {
  const label = channel.label;
  channel.binaryType = 'arraybuffer';
  dc.channels[label] = channel;
  dc.received[label] = [];
  dc.pending[label] = 0;
  channel.addEventListener('open', () => {
    dc.events.push([label, 'open']);
    dc.openInfo[label] = channelInfo(channel);
    log(`${label}: open (id ${channel.id})`);
  });
  channel.addEventListener('close', () => {
    dc.events.push([label, 'close']);
    log(`${label}: close`);
  });
  channel.addEventListener('closing', () => dc.events.push([label, 'closing']));
  channel.addEventListener('error', (event) => {
    dc.events.push([label, `error: ${event.error && event.error.message}`]);
  });
  channel.addEventListener('message', (event) => {
    const data = event.data;
    if (echo) {
      try {
        channel.send(data);
      } catch (error) {
        dc.sendErrors.push(`${label}: echo: ${error}`);
      }
    }
    // keep arrival order although hashing is asynchronous
    const slot = dc.received[label].length;
    dc.received[label].push(null);
    dc.pending[label] += 1;
    describe(data).then((d) => {
      dc.received[label][slot] = d;
      dc.pending[label] -= 1;
    });
  });
}

dc.open = (label, options) => {
  const channel = harness.pc.createDataChannel(label, options || {});
  dc.own.push(label);
  watch(channel, false);
  if (channel.readyState === 'open') dc.openInfo[label] = channelInfo(channel);
  return channelInfo(channel);
};

dc.openDefaults = () => {
  dc.open('remote-reliable', {protocol: 'interop'});
  dc.open('remote-unordered', {ordered: false, maxRetransmits: 0});
};

// Send the suite on one of our channels; resolves to the descriptions sent, in order.
dc.send = async (label, which) => {
  const channel = dc.channels[label];
  const messages = which === 'unordered' ? unorderedSuite() : suite();
  const sent = [];
  for (const [name, value] of messages) {
    channel.send(value);
    sent.push({name, ...(await describe(value))});
  }
  return sent;
};

dc.close = (label) => {
  dc.channels[label].close();
  return dc.channels[label].readyState;
};

dc.state = () => {
  const channels = {};
  for (const [label, channel] of Object.entries(dc.channels)) {
    channels[label] = channelInfo(channel);
  }
  return {
    channels, own: dc.own, theirs: dc.theirs, events: dc.events, openInfo: dc.openInfo,
    sendErrors: dc.sendErrors,
    received: Object.fromEntries(Object.entries(dc.received).map(
      ([label, list]) => [label, dc.pending[label] ? null : list])),
    connectionState: harness.pc ? harness.pc.connectionState : null,
    sctp: harness.pc && harness.pc.sctp ? {
      state: harness.pc.sctp.state, maxMessageSize: harness.pc.sctp.maxMessageSize,
      maxChannels: harness.pc.sctp.maxChannels,
    } : null,
  };
};

// getStats(): per-channel counters, the peer-connection open/close counts, the transport
dc.stats = async () => {
  const out = {channels: {}, peerConnection: null, transport: null};
  if (!harness.pc) return out;
  (await harness.pc.getStats()).forEach((s) => {
    if (s.type === 'data-channel') {
      out.channels[s.label] = {
        id: s.id, label: s.label, protocol: s.protocol,
        dataChannelIdentifier: s.dataChannelIdentifier, state: s.state,
        messagesSent: s.messagesSent, bytesSent: s.bytesSent,
        messagesReceived: s.messagesReceived, bytesReceived: s.bytesReceived,
      };
    } else if (s.type === 'peer-connection') {
      out.peerConnection = {
        dataChannelsOpened: s.dataChannelsOpened, dataChannelsClosed: s.dataChannelsClosed,
      };
    } else if (s.type === 'transport') {
      out.transport = {
        dtlsState: s.dtlsState, tlsVersion: s.tlsVersion, dtlsCipher: s.dtlsCipher,
        dtlsRole: s.dtlsRole, bytesSent: s.bytesSent, bytesReceived: s.bytesReceived,
        packetsSent: s.packetsSent, packetsReceived: s.packetsReceived,
      };
    }
  });
  return out;
};

// --- signaling --------------------------------------------------------------------------

async function start(mode = 'offer') {
  if (harness.pc) throw new Error('already started');
  harness.mode = mode;
  try {
    harness.state = 'signaling';
    const pc = new RTCPeerConnection({iceServers: []});
    harness.pc = pc;
    pc.addEventListener('datachannel', (event) => {
      dc.theirs.push(event.channel.label);
      dc.events.push([event.channel.label, 'datachannel']);
      dc.openInfo[event.channel.label] = channelInfo(event.channel);
      log(`datachannel from the other side: ${event.channel.label}`);
      watch(event.channel, true);
    });
    pc.addEventListener('connectionstatechange', () => {
      log(`connection: ${pc.connectionState}`);
      if (['connected', 'failed', 'closed'].includes(pc.connectionState)) {
        harness.state = pc.connectionState;
      }
    });
    if (mode === 'offer') {
      // our channels exist before the offer, so it carries m=application
      dc.openDefaults();
      await pc.setLocalDescription(await pc.createOffer());
      await gatheringComplete(pc, 3000);
      harness.localSdp = pc.localDescription.sdp;
      const answer = await postJson('/offer', pc.localDescription);
      harness.remoteSdp = answer.sdp;
      await pc.setRemoteDescription(answer);
    } else if (mode === 'answer') {
      const offer = await postJson('/server-offer', {});
      harness.remoteSdp = offer.sdp;
      await pc.setRemoteDescription(offer);
      dc.openDefaults();  // the offer's m=application carries them
      await pc.setLocalDescription(await pc.createAnswer());
      await gatheringComplete(pc, 3000);
      harness.localSdp = pc.localDescription.sdp;
      await postJson('/server-answer', pc.localDescription);
    } else {
      throw new Error(`unknown mode ${mode}`);
    }
    if (harness.state === 'signaling') harness.state = 'connecting';
    return {mode, localSdp: harness.localSdp, remoteSdp: harness.remoteSdp};
  } catch (error) {
    harness.error = String(error);
    harness.state = 'failed';
    throw error;
  }
}
window.start = start;

// the session helper polls window.stats(); keep its shape (state, error) available
window.stats = async () => ({state: harness.state, error: harness.error, dc: dc.state(),
                             ...(await dc.stats())});
