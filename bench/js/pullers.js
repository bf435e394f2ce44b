'use strict'
// Benchmark puller: one ilp-protocol-stream 2.7.1 pull per pointer, at most --concurrency at once (default:
// all), exactly as
// harness/js/puller.js --mode direct does each pull (own BTP plugin and username per pull:
// SPSP query, createConnection, createStream, receiveTotal, end). Unlike puller.js it takes many pointers.
//
//   NODE_PATH=harness/js/node_modules node bench/js/pullers.js --btp-port N --amount 1000 \
//       --pointers-file FILE [--concurrency 50] [--timeout 60000]
//
// FILE holds one SPSP URL per line. Prints one JSON line per pull, then {"batch_ms": ...}: the time from
// the first pull's start to the last pull's end.
const crypto = require('crypto')
const fs = require('fs')
const path = require('path')
const BtpPlugin = require('ilp-plugin-btp')
const fetch = require('node-fetch')
const { createConnection } = require('ilp-protocol-stream')
const { btpUrl, tokenFor, fail, parseArgs, countPrepares } = require(
  path.join(__dirname, '..', '..', 'harness', 'js', 'lib'))

async function spspQuery (url) {
  const response = await fetch(url, { headers: { accept: 'application/spsp4+json, application/spsp+json' } })
  const body = await response.text()
  if (response.status !== 200) throw new Error(`SPSP query answered ${response.status}: ${body.slice(0, 200)}`)
  const json = JSON.parse(body)
  return { destinationAccount: json.destination_account, sharedSecret: Buffer.from(json.shared_secret, 'base64') }
}

async function onePull (options, pointer, index) {
  const user = `bench${process.pid}x${index}x${crypto.randomBytes(4).toString('hex')}`
  const plugin = new BtpPlugin({ server: btpUrl(options.btpPort, user, tokenFor(user)) })
  const counts = countPrepares(plugin)
  const started = process.hrtime.bigint()
  let received = '0'
  let error = null
  try {
    await plugin.connect()
    const { destinationAccount, sharedSecret } = await spspQuery(pointer)
    const connection = await createConnection({ plugin, destinationAccount, sharedSecret })
    const stream = connection.createStream()
    try {
      await stream.receiveTotal(options.amount, { timeout: options.timeoutMs })
    } finally {
      received = stream.totalReceived
    }
    await connection.end()
  } catch (err) {
    error = String((err && err.message) || err)
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  try { await plugin.disconnect() } catch (err) { /* the result is known */ }
  const ok = error === null && BigInt(received) >= BigInt(options.amount)
  return { ok, received: String(received), error, ms, prepares_sent: counts.sent, prepares_received: counts.received }
}

async function main () {
  const args = parseArgs(process.argv.slice(2), { 'btp-port': null, amount: '1000', 'pointers-file': null, concurrency: '0', timeout: '60000' })
  const options = { btpPort: Number(args['btp-port']), amount: args.amount, timeoutMs: Number(args.timeout) }
  if (!Number.isInteger(options.btpPort)) fail('bad --btp-port')
  const pointers = fs.readFileSync(args['pointers-file'], 'utf8').split('\n').map((l) => l.trim()).filter(Boolean)
  const concurrency = Number(args.concurrency) || pointers.length
  let next = 0
  async function worker () {  // takes the next pointer as soon as its pull ends
    while (next < pointers.length) {
      const i = next++
      process.stdout.write(JSON.stringify(await onePull(options, pointers[i], i)) + '\n')
    }
  }
  const started = process.hrtime.bigint()
  await Promise.all(Array.from({ length: Math.min(concurrency, pointers.length) }, worker))
  process.stdout.write(JSON.stringify({ batch_ms: Number(process.hrtime.bigint() - started) / 1e6 }) + '\n')
}

main().then(() => process.exit(0), (err) => { process.stderr.write(String(err && err.stack) + '\n'); process.exit(1) })
