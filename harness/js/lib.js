'use strict'
// Helpers shared by the interop programs in this folder. Every socket is on loopback.
const crypto = require('crypto')
const net = require('net')

const LOOPBACK = '127.0.0.1'
const U64_MAX = (1n << 64n) - 1n

// mini-accounts pins the first token it sees for a username, so a username always gets the same token.
// harness/js_stack.py derives tokens the same way (token_for).
function tokenFor (user) {
  return crypto.createHash('sha256').update('spsp-pull-interop:' + user).digest('hex').slice(0, 32)
}

function btpUrl (port, user, token = tokenFor(user), host = LOOPBACK) {
  return `btp+ws://${encodeURIComponent(user)}:${encodeURIComponent(token)}@${host}:${port}`
}

function isU64 (text) {
  return /^\d{1,20}$/.test(text) && BigInt(text) <= U64_MAX
}

function fail (message) {
  process.stderr.write(message + '\n')
  process.exit(2)
}

function envPort (name) {
  const text = process.env[name]
  const port = Number(text)
  if (!text || !Number.isInteger(port) || port < 1 || port > 65535) fail(`${name} must be a TCP port, got ${text}`)
  return port
}

function envU64 (name) {
  const text = process.env[name]
  if (text === undefined || text === '') return undefined
  if (!isU64(text)) fail(`${name} must be an unsigned 64-bit integer, got ${text}`)
  return text
}

// --name value pairs; `defaults` lists every accepted option (null = required).
function parseArgs (argv, defaults) {
  const out = { ...defaults }
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].startsWith('--') ? argv[i].slice(2) : null
    if (key === null || !(key in defaults) || i + 1 >= argv.length) fail(`bad argument: ${argv[i]}`)
    out[key] = argv[i + 1]
  }
  for (const [key, value] of Object.entries(out)) if (value === null) fail(`--${key} is required`)
  return out
}

// Counts ILP Prepares in both directions through a plugin.
function countPrepares (plugin) {
  const counts = { sent: 0, received: 0 }
  const sendData = plugin.sendData.bind(plugin)
  plugin.sendData = (data) => { counts.sent++; return sendData(data) }
  const register = plugin.registerDataHandler.bind(plugin)
  plugin.registerDataHandler = (handler) => register((data) => { counts.received++; return handler(data) })
  return counts
}

// Resolves once something accepts TCP connections on host:port, bounded by timeoutMs.
async function waitForListener (port, timeoutMs = 5000, host = LOOPBACK) {
  const deadline = Date.now() + timeoutMs
  while (true) {
    const open = await new Promise((resolve) => {
      const socket = net.connect({ host, port })
      socket.once('connect', () => { socket.destroy(); resolve(true) })
      socket.once('error', () => resolve(false))
    })
    if (open) return
    if (Date.now() > deadline) throw new Error(`nothing listening on ${host}:${port} after ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

// On SIGTERM/SIGINT run `cleanup` (at most graceMs), then exit 0.
function exitOnSignal (cleanup, graceMs = 1000) {
  const stop = () => {
    setTimeout(() => process.exit(0), graceMs).unref()
    Promise.resolve().then(cleanup).catch(() => {}).finally(() => process.exit(0))
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}

module.exports = {
  LOOPBACK, U64_MAX, tokenFor, btpUrl, isU64, fail, envPort, envU64, parseArgs, countPrepares, waitForListener, exitOnSignal
}
