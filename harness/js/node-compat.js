'use strict'
// Preload (`node -r ./node-compat.js program.js`) that lets ilp-protocol-stream 2.7.1 and the 1.8.9 copy inside
// ilp-protocol-spsp 3.0.0 run on Node >= 18.
//
// Their DataAndMoneyStream constructor assigns `this.closed`; since Node 18, stream.Duplex inherits a `closed`
// accessor without a setter, so creating any stream throws "Cannot set property closed of #<Readable> which has
// only a getter". The library only uses `closed` as its own flag, and Node's stream machinery keeps its state in
// _readableState/_writableState, so DataAndMoneyStream gets a plain read/write property of its own.
// On Node 16 (no such accessor) this file does nothing.
const path = require('path')
const { Duplex } = require('stream')

const OWN_CLOSED = Symbol('DataAndMoneyStream.closed')

function hasGetterOnlyClosed (proto) {
  for (let p = proto; p; p = Object.getPrototypeOf(p)) {
    const descriptor = Object.getOwnPropertyDescriptor(p, 'closed')
    if (descriptor) return typeof descriptor.get === 'function' && descriptor.set === undefined
  }
  return false
}

function patch (DataAndMoneyStream) {
  Object.defineProperty(DataAndMoneyStream.prototype, 'closed', {
    configurable: true,
    get () { return this[OWN_CLOSED] === true },
    set (value) { this[OWN_CLOSED] = value }
  })
}

function streamLibraries () {
  const here = [__dirname]
  const found = [require.resolve('ilp-protocol-stream', { paths: here })]
  try {
    const spspDir = path.dirname(require.resolve('ilp-protocol-spsp', { paths: here }))
    found.push(require.resolve('ilp-protocol-stream', { paths: [spspDir] }))
  } catch (err) {
    // ilp-protocol-spsp not installed: only the top-level library needs the fix
  }
  return [...new Set(found)]
}

if (hasGetterOnlyClosed(Duplex.prototype)) {
  for (const file of streamLibraries()) patch(require(file).DataAndMoneyStream)
}
