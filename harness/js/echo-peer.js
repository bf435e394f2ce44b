'use strict'
// A plain ilp-plugin-btp client for plugin-level tests (no STREAM). It connects to $BTP_URL, learns its address
// by IL-DCP, fulfills every Prepare whose data starts with the preimage of its condition (echoing the data in
// the Fulfill), optionally sends Prepares of its own, then prints `ready` and keeps answering until SIGTERM.
//
// Env:
//   BTP_URL            btp+ws://user:token@host:port (required)
//   SEND_TO            destination of the Prepares to send (none are sent without it)
//   SEND_COUNT         how many (default 0)
//   SEND_CONCURRENCY   how many in flight at once (default 1)
//
// stdout, one JSON line each, then `ready`:
//   {"event":"ildcp","address":"...","assetCode":"XRP","assetScale":9}
//   {"event":"sent","count":N,"fulfilled":N,"rejects":{"F02":1},"wrong":0,"ms":12.3}   (only with SEND_TO)
// `wrong` counts Fulfills whose fulfillment or data did not match what was sent.
const crypto = require('crypto')
const BtpPlugin = require('ilp-plugin-btp')
const IlpPacket = require('ilp-packet')
const ILDCP = require('ilp-protocol-ildcp')
const { fail, exitOnSignal } = require('./lib')

const EXPIRY_MS = 30000

function sha256 (data) {
  return crypto.createHash('sha256').update(data).digest()
}

function envCount (name, fallback) {
  const text = process.env[name]
  if (text === undefined || text === '') return fallback
  const value = Number(text)
  if (!Number.isInteger(value) || value < 0) fail(`${name} must be a non-negative integer, got ${text}`)
  return value
}

function answer (raw, ownAddress) {
  const prepare = IlpPacket.deserializeIlpPrepare(raw)
  const preimage = prepare.data.slice(0, 32)
  if (preimage.length === 32 && sha256(preimage).equals(prepare.executionCondition)) {
    return IlpPacket.serializeIlpFulfill({ fulfillment: preimage, data: prepare.data })
  }
  return IlpPacket.serializeIlpReject({
    code: 'F05', triggeredBy: ownAddress(), message: 'data does not hold the preimage', data: Buffer.alloc(0)
  })
}

async function sendOne (plugin, destination, index, tally) {
  const preimage = crypto.randomBytes(32)
  const suffix = Buffer.alloc(4)
  suffix.writeUInt32BE(index)
  const data = Buffer.concat([preimage, suffix])
  const raw = await plugin.sendData(IlpPacket.serializeIlpPrepare({
    amount: '1',
    executionCondition: sha256(preimage),
    expiresAt: new Date(Date.now() + EXPIRY_MS),
    destination,
    data
  }))
  const reply = IlpPacket.deserializeIlpPacket(raw)
  if (reply.type === IlpPacket.Type.TYPE_ILP_FULFILL) {
    const ok = reply.data.fulfillment.equals(preimage) && reply.data.data.equals(data)
    if (ok) tally.fulfilled++
    else tally.wrong++
  } else {
    const code = reply.data.code
    tally.rejects[code] = (tally.rejects[code] || 0) + 1
  }
}

async function sendAll (plugin, destination, count, concurrency) {
  const tally = { fulfilled: 0, wrong: 0, rejects: {} }
  let next = 0
  const started = process.hrtime.bigint()
  const worker = async () => {
    while (next < count) await sendOne(plugin, destination, next++, tally)
  }
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker))
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  return { event: 'sent', count, ...tally, ms }
}

async function main () {
  const url = process.env.BTP_URL
  if (!url) fail('BTP_URL is required')
  const sendTo = process.env.SEND_TO || ''
  const count = envCount('SEND_COUNT', 0)
  const concurrency = envCount('SEND_CONCURRENCY', 1)

  const plugin = new BtpPlugin({ server: url })
  let address = ''
  plugin.registerDataHandler(async (raw) => answer(raw, () => address))
  exitOnSignal(() => plugin.disconnect(), 500)
  await plugin.connect()

  const info = await ILDCP.fetch(plugin.sendData.bind(plugin))
  address = info.clientAddress
  process.stdout.write(JSON.stringify({ event: 'ildcp', address, assetCode: info.assetCode, assetScale: info.assetScale }) + '\n')
  if (sendTo && count > 0) {
    process.stdout.write(JSON.stringify(await sendAll(plugin, sendTo, count, concurrency)) + '\n')
  }
  process.stdout.write('ready\n')
}

main().catch((err) => {
  process.stderr.write(`echo peer failed: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
})
