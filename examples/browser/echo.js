// Browser side of the echo harness: fake camera + mic and a data channel on one
// RTCPeerConnection, non-trickle signaling over HTTP, and a JSON view of getStats()
// for tests.
'use strict';

const harness = {
  state: 'idle',
  error: null,
  mode: null,
  localSdp: null,
  remoteSdp: null,
  log: [],
  pc: null,
  // the "chat" data channel: pings sent, and how many came back
  chat: {state: 'new', sent: 0, echoed: 0},
};
window.harness = harness;

const statusEl = document.getElementById('status');
const localVideo = document.getElementById('local');
const remoteVideo = document.getElementById('remote');

function log(message) {
  harness.log.push(`${(performance.now() / 1000).toFixed(3)} ${message}`);
  console.log(message);
}

function setState(state) {
  harness.state = state;
  log(`state: ${state}`);
  render();
}

function render() {
  const pc = harness.pc;
  const lines = [`harness: ${harness.state}${harness.error ? ' (' + harness.error + ')' : ''}`];
  if (pc) {
    lines.push(`connection: ${pc.connectionState}  ice: ${pc.iceConnectionState}` +
               `  signaling: ${pc.signalingState}`);
    lines.push(`data channel: ${harness.chat.state}, ` +
               `${harness.chat.echoed}/${harness.chat.sent} pings echoed`);
  }
  statusEl.textContent = lines.join('\n');
}

async function postJson(path, body) {
  const response = await fetch(path, {
    method: 'POST',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify(body || {}),
  });
  if (!response.ok) {
    throw new Error(`${path}: HTTP ${response.status} ${await response.text()}`);
  }
  return response.status === 204 ? null : response.json();
}

// Non-trickle: the SDP we send must already carry every candidate.
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

async function start(mode = 'offer') {
  if (harness.pc) throw new Error('already started');
  harness.mode = mode;
  try {
    setState('media');
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: true,
      video: {width: 320, height: 240, frameRate: 15},
    });
    localVideo.srcObject = stream;

    const pc = new RTCPeerConnection({iceServers: []});
    harness.pc = pc;
    openChat(pc);
    const remoteStream = new MediaStream();
    remoteVideo.srcObject = remoteStream;
    pc.addEventListener('track', (event) => {
      log(`remote track: ${event.track.kind}`);
      remoteStream.addTrack(event.track);
    });
    for (const name of ['connectionstatechange', 'iceconnectionstatechange',
                        'signalingstatechange']) {
      pc.addEventListener(name, () => {
        log(`${name}: ${pc.connectionState}/${pc.iceConnectionState}/${pc.signalingState}`);
        if (name === 'connectionstatechange' && harness.state !== 'failed' &&
            ['connected', 'failed', 'closed'].includes(pc.connectionState)) {
          harness.state = pc.connectionState;
        }
        render();
      });
    }

    setState('signaling');
    if (mode === 'offer') {
      for (const track of stream.getTracks()) pc.addTrack(track, stream);
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
      // Reuses the transceivers the offer created, making them sendrecv.
      for (const track of stream.getTracks()) pc.addTrack(track, stream);
      await pc.setLocalDescription(await pc.createAnswer());
      await gatheringComplete(pc, 3000);
      harness.localSdp = pc.localDescription.sdp;
      await postJson('/server-answer', pc.localDescription);
    } else {
      throw new Error(`unknown mode ${mode}`);
    }
    if (harness.state === 'signaling') setState('connecting');
    return {mode, localSdp: harness.localSdp, remoteSdp: harness.remoteSdp};
  } catch (error) {
    harness.error = String(error);
    setState('failed');
    throw error;
  }
}
window.start = start;

// A data channel beside the media: five pings a second, which the peer echoes.
function openChat(pc) {
  const chat = pc.createDataChannel('chat');
  let timer = null;
  harness.chat.state = 'connecting';
  chat.addEventListener('open', () => {
    harness.chat.state = 'open';
    log(`data channel open (id ${chat.id})`);
    timer = setInterval(() => {
      chat.send(`ping ${harness.chat.sent}`);
      harness.chat.sent += 1;
    }, 200);
  });
  chat.addEventListener('message', (event) => {
    if (typeof event.data === 'string' && event.data.startsWith('ping ')) {
      harness.chat.echoed += 1;
      render();
    }
  });
  chat.addEventListener('close', () => {
    harness.chat.state = 'closed';
    clearInterval(timer);
    render();
  });
}

function candidate(stat) {
  if (!stat) return null;
  return {
    address: stat.address, port: stat.port, protocol: stat.protocol,
    candidateType: stat.candidateType,
  };
}

// A JSON-friendly summary of getStats(): DTLS/ICE transport, selected pair, RTP counters.
async function stats() {
  const pc = harness.pc;
  const out = {
    state: harness.state, error: harness.error, mode: harness.mode,
    connectionState: pc ? pc.connectionState : null,
    iceConnectionState: pc ? pc.iceConnectionState : null,
    transport: null, candidatePair: null,
    inbound: {audio: null, video: null}, outbound: {audio: null, video: null},
    certificates: [],
    datachannel: {...harness.chat},
    video: {
      width: remoteVideo.videoWidth, height: remoteVideo.videoHeight,
      currentTime: remoteVideo.currentTime, readyState: remoteVideo.readyState,
      paused: remoteVideo.paused,
    },
  };
  if (!pc) return out;
  const report = await pc.getStats();
  const byId = new Map();
  report.forEach((s) => byId.set(s.id, s));
  const codec = (id) => (byId.get(id) || {}).mimeType || null;
  report.forEach((s) => {
    if (s.type === 'transport') {
      out.transport = {
        dtlsState: s.dtlsState, tlsVersion: s.tlsVersion, dtlsCipher: s.dtlsCipher,
        srtpCipher: s.srtpCipher, dtlsRole: s.dtlsRole, iceRole: s.iceRole,
        iceState: s.iceState, selectedCandidatePairId: s.selectedCandidatePairId,
        bytesSent: s.bytesSent, bytesReceived: s.bytesReceived,
        tlsGroup: s.tlsGroup, localCertificateId: s.localCertificateId,
        remoteCertificateId: s.remoteCertificateId,
      };
    } else if (s.type === 'inbound-rtp') {
      out.inbound[s.kind] = {
        ssrc: s.ssrc, codec: codec(s.codecId), packetsReceived: s.packetsReceived,
        bytesReceived: s.bytesReceived, packetsLost: s.packetsLost,
        framesDecoded: s.framesDecoded, framesReceived: s.framesReceived,
        frameWidth: s.frameWidth, frameHeight: s.frameHeight,
        totalSamplesReceived: s.totalSamplesReceived, audioLevel: s.audioLevel,
      };
    } else if (s.type === 'outbound-rtp') {
      out.outbound[s.kind] = {
        ssrc: s.ssrc, codec: codec(s.codecId), packetsSent: s.packetsSent,
        bytesSent: s.bytesSent, framesEncoded: s.framesEncoded,
      };
    } else if (s.type === 'certificate') {
      out.certificates.push({
        id: s.id, fingerprint: s.fingerprint,
        fingerprintAlgorithm: s.fingerprintAlgorithm,
      });
    }
  });
  const pairId = out.transport && out.transport.selectedCandidatePairId;
  const pair = pairId ? byId.get(pairId) : null;
  if (pair) {
    out.candidatePair = {
      state: pair.state, nominated: pair.nominated,
      bytesSent: pair.bytesSent, bytesReceived: pair.bytesReceived,
      currentRoundTripTime: pair.currentRoundTripTime,
      local: candidate(byId.get(pair.localCandidateId)),
      remote: candidate(byId.get(pair.remoteCandidateId)),
    };
  }
  return out;
}
window.stats = stats;

const params = new URLSearchParams(location.search);
if (params.get('autostart') === '1') {
  start(params.get('mode') || 'offer').catch((error) => log(`start failed: ${error}`));
}
render();
