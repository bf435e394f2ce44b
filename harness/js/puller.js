'use strict'
// Pulls from an SPSP pull pointer the way JS clients do, over a BTP plugin.
//
//   node puller.js --pointer URL --btp-port N [--amount 1000] [--mode direct|spsp] [--concurrency 1]
//                  [--timeout 60000] [--btp-host 127.0.0.1] [--user-prefix puller] [--token T]
//
// --mode direct: ilp-protocol-stream 2.7.1: SPSP query, createConnection, createStream, receiveTotal(amount), end.
// --mode spsp:   SPSP.pull of ilp-protocol-spsp 3.0.0 (which uses its own ilp-protocol-stream 1.8.9).
// --pointer:     an http(s) URL, or a $host/path payment pointer (resolved to https:// as RFC 0026 says).
// --btp-port:    any BTP server: the connector (connector.js) or a server with its own BTP endpoint.
// --timeout:     receiveTotal timeout in ms; the whole pull is abandoned 2 s after it.
// --token:       one token for every pull; by default each username gets tokenFor(username).
//
// Every pull has its own plugin (one BTP connection, username <prefix><pid>x<i>x<random>) because a STREAM
// connection takes over its plugin's data handler. One JSON line per finished pull on stdout:
//   {"ok":true,"received":"1000","error":null,"ms":41.2,"user":"...","prepares_sent":9,"prepares_received":7}
// ok = the full amount arrived. The exit status is 0 whatever the pulls did (2 for bad arguments).
const crypto = require('crypto')
const BtpPlugin = require('ilp-plugin-btp')
const fetch = require('node-fetch')
const { createConnection } = require('ilp-protocol-stream')
const SPSP = require('ilp-protocol-spsp')
const { LOOPBACK, btpUrl, tokenFor, isU64, fail, parseArgs, countPrepares } = require('./lib')

const SPSP_ACCEPT = 'application/spsp4+json, application/spsp+json'
const ABANDON_AFTER_TIMEOUT_MS = 2000

function readOptions () {
  const args = parseArgs(process.argv.slice(2), {
    pointer: null,
    'btp-port': null,
    'btp-host': LOOPBACK,
    amount: '1000',
    mode: 'direct',
    concurrency: '1',
    timeout: '60000',
    'user-prefix': 'puller',
    token: ''
  })
  const options = {
    pointer: args.pointer,
    btpHost: args['btp-host'],
    btpPort: Number(args['btp-port']),
    amount: args.amount,
    mode: args.mode,
    concurrency: Number(args.concurrency),
    timeoutMs: Number(args.timeout),
    userPrefix: args['user-prefix'],
    token: args.token
  }
  if (!isU64(options.amount)) fail('--amount must be an unsigned 64-bit integer')
  if (!['direct', 'spsp'].includes(options.mode)) fail('--mode must be direct or spsp')
  if (!Number.isInteger(options.btpPort) || options.btpPort < 1 || options.btpPort > 65535) fail('bad --btp-port')
  if (!Number.isInteger(options.concurrency) || options.concurrency < 1) fail('bad --concurrency')
  if (!Number.isInteger(options.timeoutMs) || options.timeoutMs < 1) fail('bad --timeout')
  if (!/^[A-Za-z0-9_~-]+$/.test(options.userPrefix)) fail('--user-prefix must be an ILP address segment')
  return options
}

function endpointOf (pointer) {
  if (!pointer.startsWith('$')) return pointer
  const url = new URL('https://' + pointer.slice(1))
  if (url.pathname === '/') url.pathname = '/.well-known/pay'
  return url.href
}

async function spspQuery (pointer) {
  const response = await fetch(endpointOf(pointer), { headers: { accept: SPSP_ACCEPT } })
  const body = await response.text()
  if (response.status !== 200) throw new Error(`SPSP query answered ${response.status}: ${body.slice(0, 200)}`)
  const json = JSON.parse(body)
  return { destinationAccount: json.destination_account, sharedSecret: Buffer.from(json.shared_secret, 'base64') }
}

// Returns the amount received; throws an Error carrying `received` when the pull stops short.
async function pullWithStream (plugin, { pointer, amount, timeoutMs }) {
  await plugin.connect()
  const { destinationAccount, sharedSecret } = await spspQuery(pointer)
  const connection = await createConnection({ plugin, destinationAccount, sharedSecret })
  const stream = connection.createStream()
  try {
    await stream.receiveTotal(amount, { timeout: timeoutMs })
  } catch (err) {
    err.received = stream.totalReceived
    connection.destroy()
    throw err
  }
  const received = stream.totalReceived
  await connection.end()
  return received
}

async function pullWithSpsp (plugin, { pointer, amount, timeoutMs }) {
  try {
    const { totalReceived } = await SPSP.pull(plugin, { pointer, amount, streamOpts: { timeout: timeoutMs } })
    return totalReceived
  } catch (err) {
    if (err.totalReceived !== undefined) err.received = err.totalReceived
    throw err
  }
}

function abandonAfter (ms) {
  let timer
  const promise = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`pull abandoned after ${ms} ms`)), ms)
  })
  return { promise, cancel: () => clearTimeout(timer) }
}

async function onePull (options, index) {
  const user = `${options.userPrefix}${process.pid}x${index}x${crypto.randomBytes(4).toString('hex')}`
  const token = options.token || tokenFor(user)
  const plugin = new BtpPlugin({ server: btpUrl(options.btpPort, user, token, options.btpHost) })
  const counts = countPrepares(plugin)
  const pull = options.mode === 'spsp' ? pullWithSpsp : pullWithStream
  const started = process.hrtime.bigint()
  const guard = abandonAfter(options.timeoutMs + ABANDON_AFTER_TIMEOUT_MS)
  let received = '0'
  let error = null
  try {
    received = String(await Promise.race([pull(plugin, options), guard.promise]))
  } catch (err) {
    error = String((err && err.message) || err)
    if (err && err.received !== undefined) received = String(err.received)
  } finally {
    guard.cancel()
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  try { await plugin.disconnect() } catch (err) { /* the result is already known */ }
  const ok = error === null && BigInt(received) >= BigInt(options.amount)
  if (error === null && !ok) error = `received ${received} of ${options.amount}`
  return { ok, received, error, ms, user, prepares_sent: counts.sent, prepares_received: counts.received }
}

async function main () {
  const options = readOptions()
  const pulls = Array.from({ length: options.concurrency }, (_, index) =>
    onePull(options, index).then((result) => process.stdout.write(JSON.stringify(result) + '\n')))
  await Promise.all(pulls)
}

main().then(
  () => process.exit(0),
  (err) => { process.stderr.write(`puller failed: ${err && err.stack ? err.stack : err}\n`); process.exit(1) })
