'use strict'
// The SPSP HTTP endpoint shared by the JS pull servers: GET /pull/<amount> answers application/spsp4+json with
// a fresh destination account and shared secret from `stream.generateAddressAndSecret`, the amount riding in the
// STREAM connection tag (see amountOfConnection). Anything else gets RFC 0036's 404.
const http = require('http')
const { LOOPBACK, isU64 } = require('./lib')

const SPSP_TYPE = 'application/spsp4+json'
const PULL_PATH = /^\/pull\/(\d{1,20})$/
const TAG_PREFIX = 'pull-'

function send (response, status, body, headers = {}) {
  response.writeHead(status, { 'content-type': SPSP_TYPE, 'cache-control': 'no-cache', ...headers })
  response.end(JSON.stringify(body))
}

function handle (streamServer, request, response) {
  const match = PULL_PATH.exec(new URL(request.url, `http://${LOOPBACK}`).pathname)
  if (request.method !== 'GET') return send(response, 405, { id: 'MethodNotAllowed', message: 'GET only' }, { allow: 'GET' })
  if (!match || !isU64(match[1])) return send(response, 404, { id: 'InvalidPointerError', message: 'Pointer does not exist.' })
  const amount = match[1]
  const { destinationAccount, sharedSecret } = streamServer.generateAddressAndSecret({ connectionTag: TAG_PREFIX + amount })
  return send(response, 200, {
    destination_account: destinationAccount,
    shared_secret: sharedSecret.toString('base64'),
    pull: { balance: { total: '0', interval: '0', available: amount } }
  })
}

// The amount a connection may pull, from its tag; null for connections not made through this endpoint.
function amountOfConnection (connection) {
  const tag = connection.connectionTag || ''
  const amount = tag.startsWith(TAG_PREFIX) ? tag.slice(TAG_PREFIX.length) : ''
  return isU64(amount) ? amount : null
}

// Serves every stream of a pull connection: send the amount, then end the stream (RFC 0036).
function servePulls (streamServer) {
  streamServer.on('connection', (connection) => {
    const amount = amountOfConnection(connection)
    if (amount === null) return connection.destroy()
    connection.on('error', () => {})
    connection.on('stream', (stream) => {
      stream.on('error', () => {})
      stream.once('outgoing_total_sent', () => stream.end())
      stream.setSendMax(amount)
    })
  })
}

function listenSpsp (streamServer, port) {
  const server = http.createServer((request, response) => handle(streamServer, request, response))
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, LOOPBACK, () => resolve(server))
  })
}

module.exports = { listenSpsp, servePulls }
