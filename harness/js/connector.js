'use strict'
// A local connector configured like `moneyd local` (moneyd 4.3.0): ilp-connector at address private.moneyd with
// one child account `local` (XRP, scale 9, 1:1 rates, memory store) served by ilp-plugin-mini-accounts over BTP.
// Unlike `moneyd local`, which always uses port 7768, it listens on 127.0.0.1:$BTP_PORT.
// Clients connect with btp+ws://<user>:<token>@127.0.0.1:$BTP_PORT and get private.moneyd.local.<user>.
//
// Env:
//   BTP_PORT            mini-accounts websocket port (required)
//   MAX_PACKET_AMOUNT   maxPacketAmount of account `local`: bigger Prepares are rejected with F08
//   DISABLE_RATE_LIMIT  '1' turns off the connector's rateLimit middleware (10,000 Prepares/min for `local`,
//                       shared by every client)
// Prints `ready` on stdout once the BTP port accepts connections; logs go to stderr.
const path = require('path')
const { LOOPBACK, envPort, envU64, waitForListener, exitOnSignal } = require('./lib')

const MONEYD_MODULES = path.join(__dirname, '..', 'js-moneyd', 'node_modules')
const Connector = require(path.join(MONEYD_MODULES, 'ilp-connector'))
const connectorLog = require(path.join(MONEYD_MODULES, 'ilp-connector', 'src', 'common', 'log'))

function connectorConfig ({ port, maxPacketAmount, disableRateLimit }) {
  const local = {
    relation: 'child',
    plugin: 'ilp-plugin-mini-accounts',
    assetCode: 'XRP',
    assetScale: 9,
    balance: { minimum: '-Infinity', maximum: 'Infinity', settleThreshold: '-Infinity' },
    options: { wsOpts: { host: LOOPBACK, port } }
  }
  if (maxPacketAmount !== undefined) local.maxPacketAmount = maxPacketAmount
  const config = {
    ilpAddress: 'private.moneyd',
    env: 'production',
    backend: 'one-to-one',
    spread: 0,
    store: 'ilp-store-memory',
    initialConnectTimeout: 60000,
    adminApi: false,
    accounts: { local }
  }
  if (disableRateLimit) config.disableMiddleware = ['rateLimit']
  return config
}

async function main () {
  const port = envPort('BTP_PORT')
  connectorLog.setOutputStream(process.stderr)
  const app = Connector.createApp(connectorConfig({
    port,
    maxPacketAmount: envU64('MAX_PACKET_AMOUNT'),
    disableRateLimit: process.env.DISABLE_RATE_LIMIT === '1'
  }))
  exitOnSignal(() => app.shutdown(), 500)
  await app.listen()
  await waitForListener(port)
  process.stdout.write('ready\n')
}

main().catch((err) => {
  process.stderr.write(`connector failed: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
})
