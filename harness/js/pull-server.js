'use strict'
// A JS pull server: an ilp-protocol-stream 2.7.1 server attached to a connector as the mini-accounts user
// $BTP_USER, and an SPSP endpoint on http://127.0.0.1:$SPSP_PORT/pull/<amount>. A puller that opens a stream
// gets setSendMax(amount), and the stream is ended once the amount is sent.
//
// Env:
//   BTP_PORT           the connector's BTP port (required)
//   SPSP_PORT          SPSP HTTP port (required)
//   BTP_USER           mini-accounts username (default pullserver); give each server on one connector its own
//   MAX_PACKET_AMOUNT  STREAM-side cap on the amount per packet this server sends
// Prints `ready` on stdout once both sides are up.
const BtpPlugin = require('ilp-plugin-btp')
const { createServer } = require('ilp-protocol-stream')
const { btpUrl, envPort, envU64, exitOnSignal } = require('./lib')
const { listenSpsp, servePulls } = require('./spsp-http')

async function main () {
  const btpPort = envPort('BTP_PORT')
  const spspPort = envPort('SPSP_PORT')
  const user = process.env.BTP_USER || 'pullserver'
  const maximumPacketAmount = envU64('MAX_PACKET_AMOUNT')

  const plugin = new BtpPlugin({ server: btpUrl(btpPort, user) })
  const streamServer = await createServer(maximumPacketAmount ? { plugin, maximumPacketAmount } : { plugin })
  servePulls(streamServer)
  const http = await listenSpsp(streamServer, spspPort)
  exitOnSignal(async () => {
    http.close()
    await streamServer.close()
  }, 500)
  process.stdout.write('ready\n')
}

main().catch((err) => {
  process.stderr.write(`pull server failed: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
})
