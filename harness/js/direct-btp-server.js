'use strict'
// A JS pull server without a connector: it hosts its own BTP endpoint (any username/token is accepted; account =
// username, else base64url(sha256(token))), answers IL-DCP itself (clients get <SERVER_ADDRESS>.<account>, XRP
// scale 9), and runs an ilp-protocol-stream 2.7.1 server in-process behind a small plugin object. The SPSP
// endpoint is the one of pull-server.js. Unmodified JS pullers connect with --btp-port $BTP_PORT.
//
// Env:
//   BTP_PORT           BTP websocket port to listen on (required)
//   SPSP_PORT          SPSP HTTP port (required)
//   SERVER_ADDRESS     ILP address of this server (default private.pullsrv)
//   MAX_PACKET_AMOUNT  STREAM-side cap on the amount per packet this server sends
// Prints `ready` on stdout once both ports listen.
const crypto = require('crypto')
const WebSocket = require('ws')
const Btp = require('btp-packet')
const IlpPacket = require('ilp-packet')
const ILDCP = require('ilp-protocol-ildcp')
const { createServer } = require('ilp-protocol-stream')
const { LOOPBACK, envPort, envU64, exitOnSignal } = require('./lib')
const { listenSpsp, servePulls } = require('./spsp-http')

const ASSET = { assetCode: 'XRP', assetScale: 9 }
const ILDCP_DESTINATION = 'peer.config'

function reject (address, code, message) {
  return IlpPacket.serializeIlpReject({ code, triggeredBy: address, message, data: Buffer.alloc(0) })
}

function ildcpFulfill (clientAddress) {
  return ILDCP.serializeIldcpResponse({ clientAddress, ...ASSET })
}

function ilpEntry (protocolData) {
  const entry = protocolData.find((p) => p.protocolName === 'ilp')
  return entry ? entry.data : null
}

function accountOf (protocolData) {
  const user = protocolData.find((p) => p.protocolName === 'auth_username')
  const token = protocolData.find((p) => p.protocolName === 'auth_token')
  if (user && user.data.length > 0) return user.data.toString('utf8')
  if (token) return crypto.createHash('sha256').update(token.data).digest('base64url')
  return null
}

// The BTP side: one websocket per client account, Prepares in both directions.
class BtpHub {
  constructor (address) {
    this.address = address
    this.sockets = new Map()
    this.pending = new Map()
    this.nextRequestId = crypto.randomBytes(4).readUInt32BE(0)
    this.dataHandler = null
  }

  requestId () {
    this.nextRequestId = (this.nextRequestId + 1) >>> 0
    return this.nextRequestId
  }

  attach (socket) {
    let account = null
    socket.on('error', () => {})
    socket.on('close', () => { if (account !== null && this.sockets.get(account) === socket) this.sockets.delete(account) })
    socket.on('message', async (raw) => {
      let frame
      try { frame = Btp.deserialize(Buffer.from(raw)) } catch (err) { socket.close(); return }
      if (account === null) {
        account = this.authenticate(socket, frame)
        return
      }
      if (frame.type === Btp.TYPE_RESPONSE || frame.type === Btp.TYPE_ERROR) return this.settle(frame)
      if (frame.type !== Btp.TYPE_MESSAGE) return this.refuse(socket, frame.requestId, `unsupported BTP type ${frame.type}`)
      const prepare = ilpEntry(frame.data.protocolData)
      if (!prepare) return this.refuse(socket, frame.requestId, 'no ilp protocol data')
      const reply = await this.handlePrepare(account, prepare)
      if (socket.readyState === WebSocket.OPEN) {
        socket.send(Btp.serializeResponse(frame.requestId, [{ protocolName: 'ilp', contentType: Btp.MIME_APPLICATION_OCTET_STREAM, data: reply }]))
      }
    })
  }

  authenticate (socket, frame) {
    const names = frame.type === Btp.TYPE_MESSAGE ? frame.data.protocolData.map((p) => p.protocolName) : []
    const account = names[0] === 'auth' ? accountOf(frame.data.protocolData) : null
    if (account === null || !/^[A-Za-z0-9_~-]+$/.test(account)) {
      this.refuse(socket, frame.requestId, 'first message must be a valid auth message')
      socket.close()
      return null
    }
    this.sockets.set(account, socket)
    socket.send(Btp.serializeResponse(frame.requestId, []))
    return account
  }

  refuse (socket, requestId, message) {
    const error = { code: 'F00', name: 'NotAcceptedError', triggeredAt: new Date(), data: message }
    if (socket.readyState === WebSocket.OPEN) socket.send(Btp.serializeError(error, requestId, []))
  }

  async handlePrepare (account, data) {
    try {
      const prepare = IlpPacket.deserializeIlpPrepare(data)
      if (prepare.destination === ILDCP_DESTINATION) return ildcpFulfill(`${this.address}.${account}`)
      if (!prepare.destination.startsWith(this.address + '.') || !this.dataHandler) {
        return reject(this.address, 'F02', 'unreachable')
      }
      return await this.dataHandler(data)
    } catch (err) {
      return reject(this.address, 'F01', 'invalid packet')
    }
  }

  // Sends a Prepare to the client account named by its destination; resolves with its Fulfill or Reject.
  sendPrepare (data) {
    const prepare = IlpPacket.deserializeIlpPrepare(data)
    if (prepare.destination === ILDCP_DESTINATION) return Promise.resolve(ildcpFulfill(this.address))
    const rest = prepare.destination.startsWith(this.address + '.') ? prepare.destination.slice(this.address.length + 1) : ''
    const socket = this.sockets.get(rest.split('.')[0])
    if (!socket || socket.readyState !== WebSocket.OPEN) return Promise.resolve(reject(this.address, 'F02', 'no such client'))
    const requestId = this.requestId()
    return new Promise((resolve) => {
      const expiry = setTimeout(() => {
        this.pending.delete(requestId)
        resolve(reject(this.address, 'R00', 'Packet expired'))
      }, Math.max(0, prepare.expiresAt.getTime() - Date.now()))
      this.pending.set(requestId, (reply) => { clearTimeout(expiry); resolve(reply) })
      socket.send(Btp.serializeMessage(requestId, [{ protocolName: 'ilp', contentType: Btp.MIME_APPLICATION_OCTET_STREAM, data }]))
    })
  }

  settle (frame) {
    const resolve = this.pending.get(frame.requestId)
    if (!resolve) return
    this.pending.delete(frame.requestId)
    const reply = frame.type === Btp.TYPE_RESPONSE ? ilpEntry(frame.data.protocolData) : null
    resolve(reply || reject(this.address, 'T01', 'peer answered without an ILP packet'))
  }

  // The plugin interface ilp-protocol-stream's server uses.
  plugin () {
    let connected = false
    return {
      connect: async () => { connected = true },
      disconnect: async () => { connected = false },
      isConnected: () => connected,
      sendData: (data) => this.sendPrepare(data),
      registerDataHandler: (handler) => { this.dataHandler = handler },
      deregisterDataHandler: () => { this.dataHandler = null }
    }
  }
}

function listenBtp (hub, port) {
  const wss = new WebSocket.Server({ host: LOOPBACK, port })
  wss.on('connection', (socket) => hub.attach(socket))
  return new Promise((resolve, reject) => {
    wss.once('error', reject)
    wss.once('listening', () => resolve(wss))
  })
}

async function main () {
  const btpPort = envPort('BTP_PORT')
  const spspPort = envPort('SPSP_PORT')
  const maximumPacketAmount = envU64('MAX_PACKET_AMOUNT')
  const hub = new BtpHub(process.env.SERVER_ADDRESS || 'private.pullsrv')

  const plugin = hub.plugin()
  const streamServer = await createServer(maximumPacketAmount ? { plugin, maximumPacketAmount } : { plugin })
  servePulls(streamServer)
  const wss = await listenBtp(hub, btpPort)
  const http = await listenSpsp(streamServer, spspPort)
  exitOnSignal(() => { http.close(); wss.close() }, 500)
  process.stdout.write('ready\n')
}

main().catch((err) => {
  process.stderr.write(`direct BTP server failed: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
})
